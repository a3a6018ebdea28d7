/* SPDX-License-Identifier: MIT */
/*
 * The merge's live table (src/analysis/live.c): inserts, finds and removes in
 * random order against a plain array, across the doublings in place; once with
 * keys spread evenly, once with one in twenty crowding the last slots of every
 * table size (runs of thousands that wrap around from the end, the hard case of the
 * in-place rehash). Fixed seeds.
 */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "../src/analysis/live.h"

static uint64_t rng;

static uint64_t next_rand(void) /* xorshift64 */
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* A key whose home slot is in the last 1/64 of every table from 2^16 slots to
 * 2^18 (bits 10..17 of its hash set). */
static uint64_t crowded_key(void)
{
	uint64_t k;
	do
		k = (next_rand() >> 8) | 1;
	while (((u64map_hash(k) >> 10) & 0xff) != 0xff);
	return k;
}

static void churn(long steps, bool crowd)
{
	struct live_table t = {0};
	uint64_t *keys = malloc((size_t)steps * sizeof(*keys));
	size_t n = 0;
	cr_assert(keys);
	for (long i = 0; i < steps; i++) {
		uint64_t k =
		    crowd && next_rand() % 20 == 0 ? crowded_key() : (next_rand() >> 8) | 1;
		bool found;
		struct live_entry *e = live_upsert(&t, k, &found);
		cr_assert(e);
		if (!found) {
			e->size = k * 3;
			e->stack = (uint32_t)k;
			keys[n++] = k;
		}
		if (n && next_rand() % 3 == 0) {
			size_t j = next_rand() % n;
			uint64_t gone = keys[j];
			keys[j] = keys[--n];
			struct live_entry *f = live_find(&t, gone);
			cr_assert(f && f->size == gone * 3, "key %zu of %zu lost", j, n + 1);
			live_remove(&t, f);
			cr_assert_null(live_find(&t, gone));
		}
	}
	cr_assert_eq(t.len, n);
	size_t used = 0;
	for (size_t i = 0; i < t.cap; i++)
		used += t.e[i].key != 0;
	cr_assert_eq(used, n);
	cr_assert_leq(2 * t.len, t.cap);
	for (size_t j = 0; j < n; j++) {
		struct live_entry *f = live_find(&t, keys[j]);
		cr_assert(f && f->size == keys[j] * 3 && f->stack == (uint32_t)keys[j],
			  "key %zu of %zu lost", j, n);
	}
	live_fini(&t);
	free(keys);
}

Test(live, spread_keys_grow_in_place)
{
	rng = 88172645463325252ull;
	churn(1500000, false); /* ~1 M live: 2^16 .. 2^21 slots */
}

Test(live, crowded_keys_wrap_around)
{
	rng = 0x9E3779B97F4A7C15ull;
	churn(300000, true); /* ~200 k live: 2^16 .. 2^19 slots */
}
