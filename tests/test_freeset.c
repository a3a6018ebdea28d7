/* SPDX-License-Identifier: MIT */
/* The set of live sampled pointers: membership, a full window, no silting up under
 * churn, and concurrent inserts and removes from several threads. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdlib.h>

#include "../src/core/freeset.h"

static void setup(void)
{
	cr_assert_eq(freeset_init(), 0);
	freeset_clear();
}

/* Pointers with one home bucket in both levels. */
static uint64_t home(uintptr_t p)
{
	return freeset_hash(p) >> (64 - FREESET_L1_LOG);
}

Test(freeset, insert_lookup_remove, .init = setup)
{
	uintptr_t p = 0x7f0000001230;
	freeset_gate_open(false);
	cr_assert_null(load_relaxed(&freeset_gate), "closed while nothing entered the set");
	cr_assert_not(freeset_gate_may(p));
	cr_assert_not(freeset_maybe(p));
	cr_assert_not(freeset_remove(p));
	cr_assert(freeset_insert(p));
	_Atomic uint16_t *gate = load_relaxed(&freeset_gate);
	cr_assert(gate != NULL && gate != FREESET_GATE_ALL, "the first insert opens the gate");
	cr_assert(freeset_maybe(p));
	cr_assert(freeset_gate_may(p));
	cr_assert(freeset_remove(p));
	cr_assert_not(freeset_maybe(p), "the filter counter is back to zero");
	cr_assert_not(freeset_gate_may(p), "the gate counter too");
	cr_assert_eq(load_relaxed(&freeset_gate), gate, "and the gate stays open");
	freeset_gate_open(true);
	cr_assert_eq(load_relaxed(&freeset_gate), FREESET_GATE_ALL);
	cr_assert(freeset_gate_may(p), "mode all: every free goes through");
	freeset_gate_close();
	cr_assert_null(load_relaxed(&freeset_gate));
	cr_assert_not(freeset_gate_may(p));
	cr_assert_not(freeset_remove(p), "removed once only");
	cr_assert_not(freeset_insert(0));
	cr_assert_eq(freeset_overflows(), 0);
}

/* Pointers that share one home bucket fill its whole window in level 0, then in
 * level 1, then are refused and counted; a removal makes room again. */
Test(freeset, full_window_refuses_and_counts, .init = setup)
{
	enum { WANT = 2 * FREESET_BUCKET * FREESET_WINDOW + 1 };
	uintptr_t same[WANT];
	unsigned n = 0;
	uintptr_t first = 0x10000000;
	for (uintptr_t p = first; n < WANT; p += 16)
		if (home(p) == home(first))
			same[n++] = p;
	for (unsigned i = 0; i + 1 < WANT; i++)
		cr_assert(freeset_insert(same[i]), "slot %u of the window", i);
	cr_assert_not(freeset_insert(same[WANT - 1]));
	cr_assert_eq(freeset_overflows(), 1);
	for (unsigned i = 0; i + 1 < WANT; i++)
		cr_assert(freeset_maybe(same[i]));
	cr_assert_not(freeset_remove(same[WANT - 1]), "the refused one is not there");
	cr_assert(freeset_remove(same[3]), "from level 0");
	cr_assert(freeset_remove(same[WANT - 2]), "from level 1");
	cr_assert(freeset_insert(same[WANT - 2]), "its slot is free again");
	cr_assert(freeset_insert(same[WANT - 1]));
	cr_assert_eq(freeset_overflows(), 1);
	cr_assert(freeset_remove(same[WANT - 1]));
	for (unsigned i = 0; i + 1 < WANT; i++)
		if (i != 3)
			cr_assert(freeset_remove(same[i]));
}

/* Millions of insert/remove pairs over a window of live pointers (a program's
 * churn): every removal finds its pointer, nothing overflows, nothing is left. */
Test(freeset, churn_does_not_silt_up, .init = setup)
{
	enum { LIVE = 200000, ROUNDS = 2000000 }; /* more than level 0 holds */
	static uintptr_t live[LIVE];
	uint64_t x = 88172645463325252ull;
	for (unsigned i = 0; i < LIVE; i++) {
		live[i] = 0x5000000000 + 16 * (uintptr_t)i;
		cr_assert(freeset_insert(live[i]));
	}
	uintptr_t next = 0x6000000000;
	for (unsigned r = 0; r < ROUNDS; r++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		unsigned i = (unsigned)(x % LIVE);
		if (!freeset_remove(live[i]))
			cr_assert_fail("round %u: %#lx not found", r, (unsigned long)live[i]);
		live[i] = next;
		next += 48;
		if (!freeset_insert(live[i]))
			cr_assert_fail("round %u: insert refused", r);
	}
	for (unsigned i = 0; i < LIVE; i++)
		cr_assert(freeset_remove(live[i]));
	cr_assert_eq(freeset_overflows(), 0);
}

/* Threads insert their own pointers and free a share of the others' (cross-thread
 * frees): every pointer is removed exactly once, by whoever frees it. */
#define THREADS 4
#define PER	200000
static _Atomic unsigned removed_ok, removed_twice;

static void *worker(void *arg)
{
	uintptr_t base = 0x100000000000 * (1 + (uintptr_t)arg);
	uintptr_t other = 0x100000000000 * (1 + ((uintptr_t)arg + 1) % THREADS);
	for (uintptr_t i = 0; i < PER; i++) {
		if (!freeset_insert(base + 16 * i))
			cr_assert_fail("insert refused");
		/* Remove ours two behind; try the neighbour's (it may not be there yet). */
		if (i >= 2 && i % 2 == 0 && freeset_remove(base + 16 * (i - 2)))
			fetch_add_relaxed(&removed_ok, 1);
		if (i % 2 == 1 && freeset_remove(other + 16 * (i - 1)))
			fetch_add_relaxed(&removed_ok, 1);
	}
	return NULL;
}

Test(freeset, concurrent_threads, .init = setup)
{
	pthread_t th[THREADS];
	for (uintptr_t i = 0; i < THREADS; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, worker, (void *)i), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	/* Whatever is left is removed now: each pointer exactly once overall. */
	unsigned left = 0;
	for (uintptr_t t = 0; t < THREADS; t++)
		for (uintptr_t i = 0; i < PER; i++) {
			uintptr_t p = 0x100000000000 * (1 + t) + 16 * i;
			if (freeset_remove(p))
				left++;
			if (freeset_remove(p))
				removed_twice++;
		}
	cr_assert_eq(load_relaxed(&removed_ok) + left, THREADS * PER);
	cr_assert_eq(removed_twice, 0);
	cr_assert_eq(freeset_overflows(), 0);
}
