/* SPDX-License-Identifier: MIT */
/* The SPSC ring: wrap-around, full-ring drops, and real producer/consumer concurrency. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../src/core/prefault.h"
#include "../src/core/ring.h"

struct rec {
	struct ring_rec h;
	uint64_t seq;
	uint64_t check; /* seq * golden, so torn or stale bytes show */
	uint64_t payload[];
};

#define GOLDEN 0x9E3779B97F4A7C15ull

static struct ring *ring_new(uint64_t cap)
{
	struct ring *r = aligned_alloc(TT_CACHELINE, sizeof(*r));
	ring_init(r, aligned_alloc(TT_CACHELINE, cap), cap);
	return r;
}

static void ring_free(struct ring *r)
{
	free(r->data);
	free(r);
}

/* Variable sizes: 24..24+8*15 bytes, chosen from seq, so wrap points move around. */
static uint32_t rec_len(uint64_t seq)
{
	return (uint32_t)(sizeof(struct rec) + 8 * (seq % 16));
}

static bool produce(struct ring *r, uint64_t seq)
{
	uint32_t len = rec_len(seq);
	struct rec *p = ring_reserve(r, len);
	if (!p) {
		ring_drop(r, 0);
		return false;
	}
	p->h.len = len;
	p->h.type = 1;
	p->h.aux = 0;
	p->seq = seq;
	p->check = seq * GOLDEN;
	for (unsigned i = 0; i < seq % 16; i++)
		p->payload[i] = seq + i;
	ring_commit(r, len);
	return true;
}

struct consumer {
	uint64_t next_expected; /* strict mode: exactly this seq next */
	uint64_t last_seen;	/* lossy mode: strictly increasing */
	uint64_t got;
	bool strict;
	bool bad;
};

static int consume(const struct ring_rec *h, void *arg)
{
	struct consumer *c = arg;
	const struct rec *p = (const struct rec *)h;
	bool ok = h->len == rec_len(p->seq) && p->check == p->seq * GOLDEN;
	for (unsigned i = 0; ok && i < p->seq % 16; i++)
		ok = p->payload[i] == p->seq + i;
	if (c->strict)
		ok = ok && p->seq == c->next_expected;
	else
		ok = ok && (c->got == 0 || p->seq > c->last_seen);
	if (!ok)
		c->bad = true;
	c->next_expected = p->seq + 1;
	c->last_seen = p->seq;
	c->got++;
	return 0;
}

Test(ring, fills_then_drops_and_counts)
{
	struct ring *r = ring_new(RING_MIN_BYTES);
	uint64_t kept = 0, seq = 0;
	while (produce(r, seq++))
		kept++;
	cr_assert_gt(kept, 50);
	cr_assert_leq(ring_used(r), r->capacity);
	for (int i = 0; i < 10; i++)
		cr_assert(!produce(r, seq++), "a full ring must refuse, not overwrite");
	cr_assert_eq(load_relaxed(&r->dropped), 11);
	cr_assert_eq(load_relaxed(&r->emitted), kept + 11);

	struct consumer c = {.strict = true};
	cr_assert_eq(ring_drain(r, consume, &c), kept);
	cr_assert(!c.bad);
	cr_assert_eq(ring_used(r), 0);
	cr_assert_eq(load_relaxed(&r->recorded), kept);
	ring_free(r);
}

Test(ring, wraps_many_times_single_thread)
{
	struct ring *r = ring_new(RING_MIN_BYTES);
	struct consumer c = {.strict = true};
	for (uint64_t seq = 0; seq < 200000; seq++) {
		if (!produce(r, seq)) {
			ring_drain(r, consume, &c);
			cr_assert(produce(r, seq), "space after a drain");
		}
	}
	while (ring_drain(r, consume, &c))
		;
	cr_assert(!c.bad, "records intact and in order across wrap-arounds");
	cr_assert_eq(c.got, 200000);
	ring_free(r);
}

/* Resident pages of [p, p + n), by mincore. */
static unsigned resident(const unsigned char *p, size_t n)
{
	unsigned char vec[512];
	size_t page = (size_t)sysconf(_SC_PAGESIZE), pages = n / page;
	cr_assert_leq(pages, sizeof(vec));
	cr_assert_eq(mincore((void *)p, n, vec), 0);
	unsigned k = 0;
	for (size_t i = 0; i < pages; i++)
		k += vec[i] & 1;
	return k;
}

Test(ring, maps_its_pages_ahead_of_the_producer_on_the_first_lap_only)
{
	const uint64_t cap = 256 * 1024;
	const size_t page = (size_t)sysconf(_SC_PAGESIZE);
	unsigned char *buf =
	    mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(buf, MAP_FAILED);
	struct ring *r = aligned_alloc(TT_CACHELINE, sizeof(*r));
	ring_init(r, buf, cap);
	cr_assert_eq(r->fault_mark, UINT64_MAX, "ring_init alone maps nothing ahead");
	if (!prefault(buf, RING_FAULT_FIRST))
		cr_skip_test("this kernel has no MADV_POPULATE_WRITE");
	ring_fault_init(r, RING_FAULT_FIRST);
	cr_assert_eq(resident(buf, cap), RING_FAULT_FIRST / page, "the first stretch, no more");

	/* Records up to just past the first stretch: the next (as long again) is mapped
	 * before the record is written, and nothing past it. */
	struct consumer c = {.strict = true};
	uint64_t seq = 0;
	errno = 12345;
	while (load_relaxed(&r->head) <= RING_FAULT_FIRST)
		cr_assert(produce(r, seq++));
	cr_assert_eq(errno, 12345, "errno kept across the madvise");
	cr_assert_eq(r->fault_mark, 2 * RING_FAULT_FIRST);
	cr_assert_eq(resident(buf, cap), 2 * RING_FAULT_FIRST / page);

	/* Stretches double (16, 32, 64 KiB ... ), and once the producer has gone round,
	 * everything is mapped and reserves stop looking. */
	while (load_relaxed(&r->head) <= 4 * RING_FAULT_FIRST)
		cr_assert(produce(r, seq++));
	cr_assert_eq(r->fault_mark, 8 * RING_FAULT_FIRST);
	cr_assert_eq(resident(buf, cap), 8 * RING_FAULT_FIRST / page);
	while (load_relaxed(&r->head) < 2 * cap) {
		if (!produce(r, seq))
			ring_drain(r, consume, &c);
		else
			seq++;
	}
	while (ring_drain(r, consume, &c))
		;
	cr_assert_eq(r->fault_mark, UINT64_MAX);
	cr_assert_eq(resident(buf, cap), cap / page);
	cr_assert(!c.bad);
	cr_assert_eq(c.got, seq);
	munmap(buf, cap);
	free(r);
}

/* However large the ring, a stretch is at most RING_FAULT_MAX: no allocation call
 * waits for megabytes to be mapped. */
Test(ring, maps_ahead_in_bounded_stretches)
{
	const uint64_t cap = 2 * 1024 * 1024;
	unsigned char *buf =
	    mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(buf, MAP_FAILED);
	struct ring *r = aligned_alloc(TT_CACHELINE, sizeof(*r));
	ring_init(r, buf, cap);
	if (!prefault(buf, RING_FAULT_FIRST))
		cr_skip_test("this kernel has no MADV_POPULATE_WRITE");
	ring_fault_init(r, RING_FAULT_FIRST);
	uint64_t seq = 0, last = r->fault_mark;
	while (load_relaxed(&r->head) <= 2 * RING_FAULT_MAX) {
		cr_assert(produce(r, seq++));
		cr_assert_leq(r->fault_mark - last, RING_FAULT_MAX);
		last = r->fault_mark;
	}
	cr_assert_eq(r->fault_mark, 3 * RING_FAULT_MAX, "16, 32 ... 256 KiB, then 256 KiB more");
	munmap(buf, cap);
	free(r);
}

/* Fill a ring of 32-byte records with no consumer: commit asks for a wake-up at
 * half full, then once a quarter ring later while nobody drains (3 in all, at 1/2,
 * 3/4 and full), never once an event. */
/* Put one 32-byte record: -1 when the ring is full, else whether its commit asks
 * for the consumer. */
static int put32(struct ring *r, uint64_t seq)
{
	struct rec *p = ring_reserve(r, 32);
	if (!p)
		return -1;
	p->h = (struct ring_rec){32, 1, 0};
	p->seq = seq;
	return ring_commit(r, 32);
}

Test(ring, commit_asks_for_the_consumer_at_half_then_each_quarter)
{
	struct ring *r = ring_new(RING_MIN_BYTES);
	int wakes = 0, rc;
	uint64_t at[4] = {0};
	for (uint64_t seq = 0; seq < 400 && (rc = put32(r, seq)) >= 0; seq++)
		if (rc && wakes < 4)
			at[wakes++] = load_relaxed(&r->head);
	cr_assert_eq(wakes, 3, "%d wake-ups", wakes);
	cr_assert_eq(at[0], RING_MIN_BYTES / 2);
	cr_assert_eq(at[1], RING_MIN_BYTES * 3 / 4);
	cr_assert_eq(at[2], RING_MIN_BYTES);
	ring_free(r);
}

static int take_one(const struct ring_rec *h, void *arg)
{
	(void)h;
	return --*(int *)arg <= 0; /* stop once the count is taken */
}

/* The consumer was woken at half and drained only a little (a pass that took its
 * one ring's worth elsewhere, say): the producer, still past half by the real tail,
 * must ask again before the ring fills, not wait for its next drop. The old rule
 * (wake when the cached tail shows a crossing) never did: a reload at "full" that
 * found the ring 7/8 full crossed nothing. */
Test(ring, a_consumer_that_drained_part_is_woken_again_before_the_ring_fills)
{
	struct ring *r = ring_new(RING_MIN_BYTES);
	int wakes = 0, drained = 0, rc;
	for (uint64_t seq = 0; seq < 1000 && (rc = put32(r, seq)) >= 0; seq++) {
		if (rc) {
			wakes++;
			if (!drained) { /* the first wake: take 32 records (1/8) */
				int n = 32;
				ring_drain(r, take_one, &n);
				drained = 1;
			} else {
				break; /* woken again: what the test wants */
			}
		}
	}
	cr_assert_eq(wakes, 2, "woken %d times before the ring filled", wakes);
	cr_assert(ring_reserve(r, 32) != NULL, "asked again while there was room");
	cr_assert_eq(load_relaxed(&r->dropped), 0);
	ring_free(r);
}

struct prod_arg {
	struct ring *r;
	uint64_t n;
	bool retry; /* wait for space (lossless) instead of dropping */
	uint64_t kept;
	_Atomic int *done;
};

static void *producer_main(void *p)
{
	struct prod_arg *a = p;
	for (uint64_t seq = 0; seq < a->n; seq++) {
		while (!produce(a->r, seq)) {
			if (!a->retry)
				break;
			sched_yield();
		}
	}
	store_release(a->done, 1);
	return NULL;
}

/* Lossless under real concurrency: a producer that waits for space, a consumer
 * draining in parallel: every one of 4M records arrives intact and in order. */
Test(ring, concurrent_no_loss_when_consumer_keeps_up, .timeout = 60)
{
	struct ring *r = ring_new(64 * 1024);
	_Atomic int done = 0;
	struct prod_arg a = {r, 4000000, true, 0, &done};
	pthread_t th;
	pthread_create(&th, NULL, producer_main, &a);
	struct consumer c = {.strict = true};
	while (!load_acquire(&done) || ring_used(r))
		if (!ring_drain(r, consume, &c))
			sched_yield();
	pthread_join(th, NULL);
	cr_assert(!c.bad, "a record arrived torn, out of order or twice");
	cr_assert_eq(c.got, 4000000);
	/* Every refused reserve counted a drop and its retry emitted again. */
	cr_assert_eq(load_relaxed(&r->emitted) - load_relaxed(&r->dropped), 4000000);
	ring_free(r);
}

/* Lossy: the consumer is slow, the producer never waits. Exact accounting:
 * emitted == recorded + dropped, and what arrived is intact and increasing. */
Test(ring, concurrent_exact_accounting_when_consumer_is_slow, .timeout = 60)
{
	struct ring *r = ring_new(RING_MIN_BYTES);
	_Atomic int done = 0;
	struct prod_arg a = {r, 2000000, false, 0, &done};
	pthread_t th;
	pthread_create(&th, NULL, producer_main, &a);
	struct consumer c = {.strict = false};
	while (!load_acquire(&done)) {
		ring_drain(r, consume, &c);
		for (volatile int spin = 0; spin < 20000; spin++)
			;
	}
	pthread_join(th, NULL);
	while (ring_drain(r, consume, &c))
		;
	uint64_t emitted = load_relaxed(&r->emitted), dropped = load_relaxed(&r->dropped);
	cr_assert(!c.bad, "a record arrived torn or out of order");
	cr_assert_eq(emitted, 2000000);
	cr_assert_gt(dropped, 0, "the slow consumer should have forced drops");
	cr_assert_eq(c.got + dropped, emitted, "emitted %lu != recorded %lu + dropped %lu",
		     (unsigned long)emitted, (unsigned long)c.got, (unsigned long)dropped);
	cr_assert_eq(load_relaxed(&r->recorded), c.got);
	ring_free(r);
}
