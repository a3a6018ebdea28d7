/* SPDX-License-Identifier: MIT */
/* Live sampled pointers: counting filter plus lock-free linear-probing set. */
#include "freeset.h"

#include <string.h>
#include <sys/mman.h>

#include "thagtrace.h"

_Atomic(_Atomic uint8_t *) freeset_filter;
static _Atomic uintptr_t *slots;
static _Atomic uint64_t live, overflows;

#define SLOTS	  (1ull << FREESET_SLOTS_LOG)
#define MAX_LIVE  (SLOTS / 4 * 3)
#define MAX_PROBE 4096u

int freeset_init(void)
{
	if (load_acquire(&freeset_filter))
		return 0;
	size_t fbytes = 1ull << FREESET_FILTER_LOG, sbytes = SLOTS * sizeof(uintptr_t);
	void *f = mmap(NULL, fbytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	void *s = mmap(NULL, sbytes, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (f == MAP_FAILED || s == MAP_FAILED) {
		if (f != MAP_FAILED)
			munmap(f, fbytes);
		if (s != MAP_FAILED)
			munmap(s, sbytes);
		return THAGTRACE_ENOMEM;
	}
	slots = s;
	store_release(&freeset_filter, (_Atomic uint8_t *)f);
	return 0;
}

void freeset_clear(void)
{
	_Atomic uint8_t *f = load_relaxed(&freeset_filter);
	if (!f)
		return;
	/* Give the pages back rather than write zeros over them. */
	madvise((void *)f, 1ull << FREESET_FILTER_LOG, MADV_DONTNEED);
	madvise((void *)slots, SLOTS * sizeof(uintptr_t), MADV_DONTNEED);
	store_relaxed(&live, 0);
	store_relaxed(&overflows, 0);
}

/* Saturating counter steps: a counter at 255 stays there (only more positives). */
static void filter_inc(_Atomic uint8_t *c)
{
	uint8_t v = load_relaxed(c);
	while (v != 255 && !atomic_compare_exchange_weak_explicit(
			       c, &v, (uint8_t)(v + 1), memory_order_release, memory_order_relaxed))
		;
}

static void filter_dec(_Atomic uint8_t *c)
{
	uint8_t v = load_relaxed(c);
	while (v != 255 && v != 0 &&
	       !atomic_compare_exchange_weak_explicit(c, &v, (uint8_t)(v - 1), memory_order_release,
						      memory_order_relaxed))
		;
}

bool freeset_insert(uintptr_t p)
{
	_Atomic uint8_t *f = load_relaxed(&freeset_filter);
	if (!f || p <= FREESET_TOMB)
		return false;
	if (fetch_add_relaxed(&live, 1) >= MAX_LIVE) {
		fetch_add_relaxed(&live, (uint64_t)-1);
		fetch_add_relaxed(&overflows, 1);
		return false;
	}
	uint64_t h = freeset_hash(p);
	/* The filter first: a concurrent free of p (cannot happen before we return)
	 * would otherwise see a negative. */
	filter_inc(&f[h >> (64 - FREESET_FILTER_LOG)]);
	uint64_t i = h >> (64 - FREESET_SLOTS_LOG);
	for (unsigned probe = 0; probe < MAX_PROBE; probe++, i = (i + 1) & (SLOTS - 1)) {
		uintptr_t v = load_relaxed(&slots[i]);
		if ((v == 0 || v == FREESET_TOMB) &&
		    atomic_compare_exchange_strong_explicit(&slots[i], &v, p, memory_order_release,
							    memory_order_relaxed))
			return true;
	}
	filter_dec(&f[h >> (64 - FREESET_FILTER_LOG)]);
	fetch_add_relaxed(&live, (uint64_t)-1);
	fetch_add_relaxed(&overflows, 1);
	return false;
}

bool freeset_remove(uintptr_t p)
{
	_Atomic uint8_t *f = load_relaxed(&freeset_filter);
	if (!f || p <= FREESET_TOMB)
		return false;
	uint64_t h = freeset_hash(p);
	uint64_t i = h >> (64 - FREESET_SLOTS_LOG);
	for (unsigned probe = 0; probe < MAX_PROBE; probe++, i = (i + 1) & (SLOTS - 1)) {
		uintptr_t v = load_acquire(&slots[i]);
		if (v == 0)
			return false; /* the end of p's probe run */
		if (v == p && atomic_compare_exchange_strong_explicit(&slots[i], &v, FREESET_TOMB,
								      memory_order_acq_rel,
								      memory_order_relaxed)) {
			filter_dec(&f[h >> (64 - FREESET_FILTER_LOG)]);
			fetch_add_relaxed(&live, (uint64_t)-1);
			return true;
		}
	}
	return false;
}

uint64_t freeset_live(void)
{
	return load_relaxed(&live);
}

uint64_t freeset_overflows(void)
{
	return load_relaxed(&overflows);
}
