/* SPDX-License-Identifier: MIT */
/*
 * The live sampled pointers of the process that carry no block tag (blocktag.h:
 * another allocator, tags off, alignments above 64 KiB, the explicit API), so that
 * a free (on any thread) is recorded exactly when its allocation was: two filters
 * of counters in front of a lock-free set of cache-line buckets. Once the set has
 * held a pointer this session, every untagged free reads one counter of the small
 * gate filter (32 KiB: it stays in cache); a positive reads the fine filter
 * (512 KiB), and only then the set, one bucket in the common case.
 *
 * The set has two levels of buckets of 8 pointer slots (one cache line each). A
 * pointer goes in the first empty slot of the FREESET_WINDOW buckets from its home
 * bucket in the small level 0, or when those are full, in the large level 1; it is
 * looked for in the same windows. A removal empties its slot (a lookup scans the
 * whole window, so no tombstones, and the table never silts up). The filters and
 * level 0 share one 2 MiB block (a transparent huge page where the kernel gives
 * one): the set a program usually has stays in cache and one TLB entry, which a
 * single large table spread over random pages did not (a miss per sampled event).
 * Level 1 is touched only once level 0 overflows somewhere. Both windows full: the
 * insert is refused and counted; that allocation's free is then not recorded (the
 * merge sees it live; the process file reports the count).
 *
 * Concurrency: any thread may insert, look up and remove at once (atomic adds on
 * counters, CAS on slots); nothing else is shared, no counter every thread writes.
 * A pointer is inserted before its allocation returns to the program and removed by
 * its free, which the program orders after that return.
 *
 * Memory: mmap at start (virtual 2 + 32 MiB), touched as used.
 */
#ifndef TT_FREESET_H
#define TT_FREESET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/atomic.h"

#define FREESET_GATE_LOG   14 /* 16 Ki 16-bit counters, 32 KiB */
#define FREESET_FILTER_LOG 19 /* 512 Ki 8-bit counters, 512 KiB */
#define FREESET_L0_LOG	   14 /* 16 Ki buckets of 8 slots: 1 MiB, 128 Ki pointers */
#define FREESET_L1_LOG	   19 /* 512 Ki buckets: 32 MiB, 4 Mi pointers */
#define FREESET_BUCKET	   8u /* slots per bucket: one cache line */
#define FREESET_WINDOW	   4u /* buckets a pointer may live in, per level */

extern _Atomic(_Atomic uint8_t *) freeset_filter; /* NULL: no set (mode all) */

static inline uint64_t freeset_hash(uintptr_t p)
{
	return (uint64_t)(p >> 4) * 0x9E3779B97F4A7C15ull;
}

/*
 * What every untagged free looks at first (interpose.c): NULL while no free needs
 * a look (no session, or nothing has entered the set this session: with block
 * tags, the common case), FREESET_GATE_ALL while every free is recorded (mode all),
 * otherwise the gate filter, from the first insert of a sampling session on. Never
 * dangling: the filters are never unmapped.
 */
#define FREESET_GATE_ALL ((_Atomic uint16_t *)(uintptr_t)1)
extern _Atomic(_Atomic uint16_t *) freeset_gate;
void freeset_gate_open(bool record_all);
void freeset_gate_close(void);

/* May freeing p need recording? Mode all: yes; else the gate, when open. */
static inline bool freeset_gate_may(uintptr_t p)
{
	_Atomic uint16_t *gate = load_relaxed(&freeset_gate);
	if (__builtin_expect(gate == NULL, 1))
		return false;
	return gate == FREESET_GATE_ALL ||
	       load_relaxed(&gate[freeset_hash(p) >> (64 - FREESET_GATE_LOG)]) != 0;
}

/* Map the filter and the slots. Returns 0 or THAGTRACE_ENOMEM. Idempotent. */
int freeset_init(void);

/* Forget every pointer (a new session). Not concurrent with the others. */
void freeset_clear(void);

/* Any thread: may p be in the set? False means certainly not. */
static inline bool freeset_maybe(uintptr_t p)
{
	_Atomic uint8_t *f = load_relaxed(&freeset_filter);
	return f && load_relaxed(&f[freeset_hash(p) >> (64 - FREESET_FILTER_LOG)]) != 0;
}

/* Sampled allocation: add p. False when its window is full (counted). */
bool freeset_insert(uintptr_t p);

/* A free whose filter check was positive: remove p; true if it was there. */
bool freeset_remove(uintptr_t p);

/* Inserts refused because both windows were full, since the last clear. */
uint64_t freeset_overflows(void);

#endif /* TT_FREESET_H */
