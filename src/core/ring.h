/* SPDX-License-Identifier: MIT */
/*
 * Single-producer / single-consumer byte ring of variable-length records.
 *
 * Who runs what, concurrently:
 *   - ring_reserve / ring_commit / ring_drop: the producer (the owning application
 *     thread) only, one call at a time. Lock-free, no syscall, no allocation.
 *   - ring_drain: the consumer (the writer thread) only. It may run at the same time
 *     as the producer's reserve/commit.
 *   - ring_used / the counters: any thread (relaxed reads, may lag).
 * A record never straddles the end of the buffer: when it does not fit in the
 * contiguous space left, the producer writes a PAD record to the end and wraps.
 * A full ring never blocks and never overwrites unread data: the event is dropped
 * and counted.
 */
#ifndef TT_RING_H
#define TT_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/atomic.h"

/* Every record starts with this header; len includes it and is a multiple of 8. */
struct ring_rec {
	uint32_t len;
	uint16_t type;
	uint16_t aux;
};

#define RING_REC_PAD   0
#define RING_ALIGN     8u
#define RING_MIN_BYTES 8192u

struct ring {
	/* Producer line. head: written by the producer (store_release in ring_commit,
	 * pairs with the consumer's load_acquire in ring_drain). The rest is written by
	 * the producer only and read relaxed by anyone for statistics. */
	tt_cacheline_aligned _Atomic uint64_t head;
	uint64_t tail_cache;	  /* producer-private copy of tail; may lag */
	uint64_t wake_at;	  /* producer-private: a commit ending here or past looks at tail */
	uint64_t reserve_pos;	  /* producer-private: where the reserved record starts */
	_Atomic uint64_t emitted; /* every event offered, kept or not */
	_Atomic uint64_t dropped; /* events not kept: ring full */
	_Atomic uint64_t dropped_bytes; /* bytes of dropped allocation events */
	uint64_t fault_mark; /* producer-private: ring_fault_ahead when a record ends past
			      * it (first lap only); UINT64_MAX: nothing to do */

	/* Consumer line. tail: written by the consumer (store_release after reading,
	 * pairs with the producer's load_acquire when it refreshes tail_cache), so the
	 * producer never reuses bytes the consumer is still reading. */
	tt_cacheline_aligned _Atomic uint64_t tail;
	_Atomic uint64_t recorded; /* records taken out, counted after their space is
				    * released (tail stored) */

	/* Read-only after ring_init: both sides read. */
	tt_cacheline_aligned unsigned char *data;
	uint64_t capacity; /* bytes, power of two */
	uint64_t mask;
};

_Static_assert(offsetof(struct ring, tail) - offsetof(struct ring, head) >= TT_CACHELINE,
	       "producer and consumer fields share a cache line");
_Static_assert(offsetof(struct ring, data) - offsetof(struct ring, tail) >= TT_CACHELINE,
	       "consumer fields share a cache line with read-only fields");

/* Set up `r` over caller-owned `data` of `capacity` bytes (power of two, at least
 * RING_MIN_BYTES). The caller keeps ownership of both. */
void ring_init(struct ring *r, void *data, uint64_t capacity);

/*
 * Pages mapped ahead of the producer (prefault.h: a fault a page is slow). A
 * ring's buffer is a private anonymous mapping, mapped by the kernel as it is first
 * written. ring_fault_init says the buffer is such a mapping, page-aligned, its
 * first `mapped` bytes already in: from then on, a record that reaches past what is
 * mapped maps the next stretch (twice the last, up to RING_FAULT_MAX, so a handful
 * of calls over a ring's first lap) with prefault(), on the producer's thread.
 * Once the ring has gone round it costs one compare a reserve. Without the call
 * (ring_init alone), nothing is mapped ahead.
 */
#define RING_FAULT_FIRST (16u * 1024)  /* the first stretch; stretches end on its multiples */
#define RING_FAULT_MAX	 (256u * 1024) /* the longest: ~0.1 ms in one allocation call */
void ring_fault_init(struct ring *r, uint64_t mapped);
void ring_fault_ahead(struct ring *r, uint64_t end);

/* The largest record ring_reserve accepts for this ring. */
static inline uint32_t ring_max_record(const struct ring *r)
{
	return (uint32_t)(r->capacity / 4);
}

/*
 * Producer: reserve `len` bytes (a multiple of RING_ALIGN, at most ring_max_record)
 * for one record and return where to write it, or NULL if the ring would then hold
 * more than `room` bytes (at most the capacity; nothing counted: the caller decides
 * whether that is a drop). Call ring_commit or nothing. A room below the capacity
 * keeps the rest for other records (allocations leave space for frees).
 * Steps:
 *  A. From head and the cached tail, compute the free space, counting the PAD needed
 *     when the record does not fit before the end of the buffer.
 *  B. If that looks too small, refresh the cached tail (load_acquire of tail) and
 *     recompute; still too small means full.
 *  C. Write the PAD header (if wrapping); it is published with the record by C's
 *     store_release in ring_commit, never before.
 */
static inline void *ring_reserve_within(struct ring *r, uint32_t len, uint64_t room)
{
	uint64_t head = load_relaxed(&r->head); /* only we write it */
	uint64_t off = head & r->mask;
	uint64_t contig = r->capacity - off;
	uint64_t need = len <= contig ? len : contig + len;
	/* A */
	if (head + need - r->tail_cache > room) {
		/* B */
		r->tail_cache = load_acquire(&r->tail);
		if (head + need - r->tail_cache > room)
			return NULL;
	}
	if (__builtin_expect(head + need > r->fault_mark, 0))
		ring_fault_ahead(r, head + need); /* first lap: map the next pages */
	/* C */
	if (len > contig) {
		struct ring_rec *pad = (struct ring_rec *)(r->data + off);
		pad->len = (uint32_t)contig;
		pad->type = RING_REC_PAD;
		pad->aux = 0;
		head += contig;
		off = 0;
	}
	r->reserve_pos = head;
	return r->data + off;
}

/* ring_reserve_within the whole capacity. */
static inline void *ring_reserve(struct ring *r, uint32_t len)
{
	return ring_reserve_within(r, len, r->capacity);
}

/*
 * Producer: publish the record reserved last (its header already filled in, len
 * equal to the reserved length). Returns true when the consumer should be woken:
 * the ring is half full by its real tail, and again every quarter ring while it
 * stays so (a consumer that drained only part of it, or that slept through the
 * first call, is told again before the ring fills).
 */
#define RING_PREFETCH 256 /* bytes ahead of head: a few records */

/* Set once at load when the CPU has PREFETCHW (x86: CPUID PRFCHW). A cache line of
 * its own: every commit reads it, and the linker had put it beside counters and a
 * lock that ending threads write. */
struct ring_cpu {
	tt_cacheline_aligned bool prefetchw;
};
extern struct ring_cpu ring_cpu;

/*
 * Ask for a line the producer will write soon, for writing. The consumer read it a
 * lap ago on another core; a store to a line held there waits for ownership, and so
 * does the next locked instruction of this thread (glibc's arena lock in the next
 * malloc or free), until that store is done: a sampled malloc+free pair took 290 ns
 * with a read prefetch, 180 ns with PREFETCHW. __builtin_prefetch(p, 1) is only a
 * read prefetch on x86-64 unless the whole build targets PRFCHW, hence the asm.
 */
static inline void ring_prefetch_write(const void *p)
{
#if defined(__x86_64__)
	if (__builtin_expect(ring_cpu.prefetchw, 1)) {
		__asm__ volatile("prefetchw %0" : : "m"(*(const char *)p));
		return;
	}
#endif
	__builtin_prefetch(p, 1, 3);
}

static inline bool ring_commit(struct ring *r, uint32_t len)
{
	uint64_t new_head = r->reserve_pos + len;
	uint64_t half = r->capacity / 2;
	/* Pairs with the consumer's load_acquire(&head): the record bytes are visible
	 * before the consumer can see the new head. */
	store_release(&r->head, new_head);
	counter_add_single_writer(&r->emitted, 1);
	/* The consumer read this part of the ring last lap, on another core: ask for
	 * the lines the next records will fill now, not when writing them. Two lines,
	 * so that commits of up to 128 bytes leave no line out. */
	ring_prefetch_write(r->data + ((new_head + RING_PREFETCH) & r->mask));
	ring_prefetch_write(r->data + ((new_head + RING_PREFETCH + 64) & r->mask));
	if (__builtin_expect(new_head < r->wake_at, 1))
		return false;
	/* Half full by the tail last read, or a quarter past the last wake: read the
	 * real one (one shared read a crossing, not an event). */
	r->tail_cache = load_acquire(&r->tail);
	if (new_head - r->tail_cache < half) {
		r->wake_at = r->tail_cache + half;
		return false;
	}
	r->wake_at = new_head + r->capacity / 4;
	return true;
}

/* Producer: count an event that could not be kept (ring full, or a nested call). */
static inline void ring_drop(struct ring *r, uint64_t alloc_bytes)
{
	counter_add_single_writer(&r->emitted, 1);
	counter_add_single_writer(&r->dropped, 1);
	counter_add_single_writer(&r->dropped_bytes, alloc_bytes);
}

/* Bytes written and not yet consumed (any thread; a snapshot). */
static inline uint64_t ring_used(struct ring *r)
{
	return load_acquire(&r->head) - load_acquire(&r->tail);
}

/* Consumer callback: one record (never a PAD). Return 0 to go on, non-zero to stop
 * the drain after this record (it still counts as consumed). */
typedef int (*ring_visit_fn)(const struct ring_rec *rec, void *ctx);

/*
 * Consumer: visit the records published so far, in order, and release their space to
 * the producer as it goes (every quarter ring, and at the end). Takes at most about
 * one ring's worth of bytes per call; call again until it returns 0 to empty a ring
 * that is still being filled. Returns the number of records visited. Consumer only.
 */
uint64_t ring_drain(struct ring *r, ring_visit_fn visit, void *ctx);

#endif /* TT_RING_H */
