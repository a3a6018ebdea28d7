/* SPDX-License-Identifier: MIT */
/*
 * The live sampled pointers of the process, so that a free (on any thread) is
 * recorded exactly when its allocation was: a filter of 8-bit saturating counters
 * in front of a lock-free open-addressing set. An unsampled free costs one filter
 * load; only a positive probes the set. Memory comes from mmap at start and is
 * touched as used.
 *
 * Concurrency: any thread may insert, look up and remove at once (CAS on slots and
 * counters). A pointer is inserted before its allocation returns to the program and
 * removed by its free, which the program orders after that return.
 */
#ifndef TT_FREESET_H
#define TT_FREESET_H

#include <stdbool.h>
#include <stdint.h>

#include "../common/atomic.h"

#define FREESET_FILTER_LOG 20 /* 1 Mi counters, 1 MiB */
#define FREESET_SLOTS_LOG  22 /* 4 Mi slots, 32 MiB; holds 3 Mi live sampled blocks */
#define FREESET_TOMB	   ((uintptr_t)1)

extern _Atomic(_Atomic uint8_t *) freeset_filter; /* NULL: no set (mode all) */

/* Map the filter and the slots. Returns 0 or THAGTRACE_ENOMEM. Idempotent. */
int freeset_init(void);

/* Forget every pointer (a new session). Not concurrent with the others. */
void freeset_clear(void);

static inline uint64_t freeset_hash(uintptr_t p)
{
	return (uint64_t)(p >> 4) * 0x9E3779B97F4A7C15ull;
}

/* Any thread: may p be in the set? False means certainly not. */
static inline bool freeset_maybe(uintptr_t p)
{
	_Atomic uint8_t *f = load_relaxed(&freeset_filter);
	return f && load_relaxed(&f[freeset_hash(p) >> (64 - FREESET_FILTER_LOG)]) != 0;
}

/* Sampled allocation: add p. False when the set is full (counted). */
bool freeset_insert(uintptr_t p);

/* A free whose filter check was positive: remove p; true if it was there. */
bool freeset_remove(uintptr_t p);

/* Statistics: live entries, inserts refused because the set was full. */
uint64_t freeset_live(void);
uint64_t freeset_overflows(void);

#endif /* TT_FREESET_H */
