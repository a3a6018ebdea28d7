/* SPDX-License-Identifier: MIT */
/* Live sampled pointers: counting filter plus a lock-free two-level set of cache-line
 * buckets. */
#include "freeset.h"

#include <sys/mman.h>

#include "thagtrace.h"

#define GATE_BYTES   ((1ull << FREESET_GATE_LOG) * sizeof(uint16_t))
#define FILTER_BYTES (1ull << FREESET_FILTER_LOG)
#define BUCKET_BYTES (FREESET_BUCKET * sizeof(uintptr_t))
#define L0_BYTES     ((1ull << FREESET_L0_LOG) * BUCKET_BYTES)
#define L1_BYTES     ((1ull << FREESET_L1_LOG) * BUCKET_BYTES)
#define HOT_BYTES    (2ull << 20) /* filter + level 0: one huge page */
_Static_assert(GATE_BYTES + FILTER_BYTES + L0_BYTES <= HOT_BYTES,
	       "the filters and level 0 share 2 MiB");

_Atomic(_Atomic uint8_t *) freeset_filter;
static _Atomic uint16_t *gate_filter;
_Atomic(_Atomic uint16_t *) freeset_gate;
static _Atomic uintptr_t *level0, *level1;
static _Atomic bool level1_used; /* sticky until clear: lookups may skip level 1 */
static _Atomic uint64_t overflows;

/* 2 MiB aligned, so the kernel can back it with one huge page. */
static void *map_hot(void)
{
	size_t len = 2 * HOT_BYTES;
	unsigned char *m =
	    mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return NULL;
	uintptr_t start = ((uintptr_t)m + HOT_BYTES - 1) & ~(uintptr_t)(HOT_BYTES - 1);
	if (start > (uintptr_t)m)
		munmap(m, start - (uintptr_t)m);
	munmap((void *)(start + HOT_BYTES), (uintptr_t)m + len - (start + HOT_BYTES));
#ifdef MADV_HUGEPAGE
	madvise((void *)start, HOT_BYTES, MADV_HUGEPAGE);
#endif
	return (void *)start;
}

int freeset_init(void)
{
	if (load_acquire(&freeset_filter))
		return 0;
	unsigned char *hot = map_hot();
	void *l1 = mmap(NULL, L1_BYTES, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (!hot || l1 == MAP_FAILED) {
		if (hot)
			munmap(hot, HOT_BYTES);
		if (l1 != MAP_FAILED)
			munmap(l1, L1_BYTES);
		return THAGTRACE_ENOMEM;
	}
	gate_filter = (_Atomic uint16_t *)hot;
	level0 = (_Atomic uintptr_t *)(hot + GATE_BYTES + FILTER_BYTES);
	level1 = l1;
	store_release(&freeset_filter, (_Atomic uint8_t *)(hot + GATE_BYTES));
	return 0;
}

void freeset_clear(void)
{
	_Atomic uint8_t *f = load_relaxed(&freeset_filter);
	if (!f)
		return;
	/* Give the pages back rather than write zeros over them. */
	madvise((void *)gate_filter, HOT_BYTES, MADV_DONTNEED);
	if (load_relaxed(&level1_used))
		madvise((void *)level1, L1_BYTES, MADV_DONTNEED);
	store_relaxed(&level1_used, false);
	store_relaxed(&overflows, 0);
}

void freeset_gate_open(bool record_all)
{
	store_release(&freeset_gate, record_all ? FREESET_GATE_ALL : NULL);
}

void freeset_gate_close(void)
{
	store_release(&freeset_gate, NULL);
}

/* Bucket w of h's window in a level of 2^log buckets. */
static inline _Atomic uintptr_t *bucket_of(_Atomic uintptr_t *level, unsigned log, uint64_t h,
					   unsigned w)
{
	uint64_t b = ((h >> (64 - log)) + w) & ((1ull << log) - 1);
	return &level[b * FREESET_BUCKET];
}

/*
 * The fine filter's counter of h is also its home bucket in level 1 (the same top
 * bits, and level 0's home is a prefix of them): the pointers it counts all live in
 * those two windows, so it never passes 2 * 8 * FREESET_WINDOW = 64 (plus inserts
 * in flight that are about to give up), far from wrapping at 256. A gate counter
 * covers 2^(19 - 14) = 32 of them: at most 2048, in 16 bits. Plain atomic adds
 * then, no saturation loop.
 */
_Static_assert(FREESET_FILTER_LOG == FREESET_L1_LOG && FREESET_L0_LOG <= FREESET_L1_LOG &&
		   FREESET_GATE_LOG <= FREESET_FILTER_LOG,
	       "a filter counter covers one level-1 home, a gate counter whole filter counters");

static void counters_add(_Atomic uint8_t *f, uint64_t h, int d)
{
	atomic_fetch_add_explicit(&gate_filter[h >> (64 - FREESET_GATE_LOG)], (uint16_t)d,
				  memory_order_release);
	atomic_fetch_add_explicit(&f[h >> (64 - FREESET_FILTER_LOG)], (uint8_t)d,
				  memory_order_release);
}

static bool window_put(_Atomic uintptr_t *level, unsigned log, uint64_t h, uintptr_t p)
{
	for (unsigned w = 0; w < FREESET_WINDOW; w++) {
		_Atomic uintptr_t *b = bucket_of(level, log, h, w);
		for (unsigned i = 0; i < FREESET_BUCKET; i++) {
			uintptr_t v = load_relaxed(&b[i]);
			if (v == 0 && atomic_compare_exchange_strong_explicit(
					  &b[i], &v, p, memory_order_release, memory_order_relaxed))
				return true;
		}
	}
	return false;
}

static bool window_take(_Atomic uintptr_t *level, unsigned log, uint64_t h, uintptr_t p)
{
	for (unsigned w = 0; w < FREESET_WINDOW; w++) {
		_Atomic uintptr_t *b = bucket_of(level, log, h, w);
		for (unsigned i = 0; i < FREESET_BUCKET; i++) {
			uintptr_t v = p;
			if (load_relaxed(&b[i]) == p &&
			    atomic_compare_exchange_strong_explicit(
				&b[i], &v, 0, memory_order_acq_rel, memory_order_relaxed))
				return true;
		}
	}
	return false;
}

bool freeset_insert(uintptr_t p)
{
	_Atomic uint8_t *f = load_relaxed(&freeset_filter);
	if (!f || p == 0)
		return false;
	uint64_t h = freeset_hash(p);
	/* The gate opens before the first pointer enters (p's free is ordered after
	 * this insert returns); it stays open until the session ends. An insert still
	 * in flight as a session ends may open it again: frees then look at the gate
	 * and, finding no session, record nothing, until the next session sets it. */
	if (__builtin_expect(load_relaxed(&freeset_gate) == NULL, 0))
		store_release(&freeset_gate, gate_filter);
	/* The filters first, so that p is never in the set behind a zero counter. */
	counters_add(f, h, 1);
	if (window_put(level0, FREESET_L0_LOG, h, p))
		return true;
	/* Published before p is there: a lookup that finds level 0 without p then
	 * looks in level 1 (p's free is ordered after this insert returns). */
	if (!load_relaxed(&level1_used))
		store_release(&level1_used, true);
	if (window_put(level1, FREESET_L1_LOG, h, p))
		return true;
	counters_add(f, h, -1);
	fetch_add_relaxed(&overflows, 1);
	return false;
}

bool freeset_remove(uintptr_t p)
{
	_Atomic uint8_t *f = load_relaxed(&freeset_filter);
	if (!f || p == 0)
		return false;
	uint64_t h = freeset_hash(p);
	if (!window_take(level0, FREESET_L0_LOG, h, p) &&
	    !(load_acquire(&level1_used) && window_take(level1, FREESET_L1_LOG, h, p)))
		return false;
	counters_add(f, h, -1);
	return true;
}

uint64_t freeset_overflows(void)
{
	return load_relaxed(&overflows);
}
