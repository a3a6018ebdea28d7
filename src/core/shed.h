/* SPDX-License-Identifier: MIT */
/*
 * Load shedding: sampling that gives way when the writer falls behind, with honest
 * weights, instead of rings that fill and drop.
 *
 * One writer drains every ring. With more busy threads than cores, a fair
 * scheduler gives it 1/(threads + 1) of the machine, and an allocation-bound
 * program then makes events faster than it can take them: without shedding, 16
 * busy threads on 2 cores lost a quarter of their events to full rings, and a
 * lost event biases what is live (a lost free leaves its block live for ever; a
 * lost allocation takes its bytes out of every live total it was part of).
 *
 * So a sampled allocation (its probability p decided and drawn as sampler.h says)
 * is kept with probability 2^-k more, where k grows with how full its thread's
 * ring is when it is decided: 0 below 5/8 of the ring (the writer is woken at
 * half, so a writer keeping up leaves it there), then one more halving each 1/32
 * of the ring up to 7/8, where allocation events stop fitting (record.c keeps the
 * last eighth for frees). The event records p * 2^-k, the product of two
 * independent draws each decided before it is made, so sum(size / p) stays
 * unbiased; what is shed is counted (the thread's DROPS record) and the report
 * says so. Frees are never shed (only recorded allocations' frees are recorded);
 * neither are a call site's first allocation (every site keeps a stack), mode
 * `all` (a full trace drops and counts instead), nor probabilities a caller gives
 * (thagtrace_record_alloc_sampled).
 *
 * The common case is one compare of the producer's own head with its own copy of
 * the tail, on the sampled path only: the shared tail is read when that copy says
 * the ring may be past 5/8.
 */
#ifndef TT_SHED_H
#define TT_SHED_H

#include <stdint.h>

#include "ring.h"
#include "sampler.h"
#include "thread.h"

#define SHED_MAX_K 16 /* 2^-16: a ring at 7/8 is past every step anyway */

/* k for t's ring now: 0 (keep everything) below 5/8 full. The owner only. */
static inline unsigned shed_level(struct thagtrace_thread *t)
{
	struct ring *r = &t->ring;
	uint64_t head = load_relaxed(&r->head), from = r->capacity / 2 + r->capacity / 8;
	if (__builtin_expect(head - r->tail_cache < from, 1))
		return 0;
	/* The shared tail on every sampled allocation while the copy says 5/8 or
	 * more. Reading it less often (each 1/64 of the ring the head moved) saved
	 * nothing measurable and kept a thread shedding for thousands of allocations
	 * after the writer had emptied its ring: while shedding hard the head hardly
	 * moves. Pairs with the consumer's store_release of tail, as ring_reserve's
	 * refresh. */
	r->tail_cache = load_acquire(&r->tail);
	uint64_t used = head - r->tail_cache;
	if (used < from)
		return 0;
	uint64_t k = 1 + (used - from) / (r->capacity / 32);
	return k < SHED_MAX_K ? (unsigned)k : SHED_MAX_K;
}

/* Out of line: the ring is past 5/8. p thinned by 2^-k, or 0 (shed, counted). */
double shed_thin(struct thagtrace_thread *t, double p, unsigned k);

/* A sampled allocation's probability p (> 0) after shedding: p, p * 2^-k, or 0. */
static inline double shed_apply(struct thagtrace_thread *t, double p)
{
	unsigned k = shed_level(t);
	if (__builtin_expect(k == 0, 1))
		return p;
	return shed_thin(t, p, k);
}

#endif /* TT_SHED_H */
