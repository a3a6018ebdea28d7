/* SPDX-License-Identifier: MIT */
/*
 * The event path, shared by the explicit API (record.c) and the malloc interposer
 * (interpose.c): what runs on the application thread for every allocation and free.
 * No lock, no malloc, no syscall in the common case, errno untouched; a nested call
 * (a signal handler on the same thread) is dropped and counted.
 */
#ifndef TT_RECORD_H
#define TT_RECORD_H

#include <stdbool.h>
#include <stdint.h>

#include "freeset.h"
#include "sampler.h"
#include "shed.h"
#include "thread.h"
#include "tracer.h"

/*
 * Enter the event path on `t`. Steps:
 *  A. busy already set: we interrupted our own thread's event (signal handler).
 *     Count a drop with an RMW add (the interrupted code may be mid-update of the
 *     plain counters) and leave.
 *  B. Set busy, then read the session generation. stop() clears the generation,
 *     issues membarrier (a full barrier on every running thread) and then waits for
 *     busy == 0: either it sees our busy from B, or we see its cleared generation.
 *     Without membarrier the fence here does the same job.
 */
static inline int thread_enter(struct thagtrace_thread *t)
{
	/* A */
	if (load_relaxed(&t->busy)) {
		fetch_add_relaxed(&t->nested_drops, 1);
		return THAGTRACE_EDROPPED;
	}
	/* B */
	store_relaxed(&t->busy, 1);
	signal_fence();
	if (tt_need_fence)
		fence_seq_cst();
	if (load_relaxed(&tt_active_gen) != t->generation) {
		store_release(&t->busy, 0);
		return THAGTRACE_EDISABLED;
	}
	return 0;
}

static inline void thread_leave(struct thagtrace_thread *t)
{
	/* Pairs with stop()'s load_acquire(&busy): our ring writes are done. */
	store_release(&t->busy, 0);
}

/* Put an allocation event with a given stack (leaf first) in the ring and, when
 * `in_set` and not every event is recorded, its pointer in the freeset (a tagged
 * block is not: its tag says it was recorded); the caller has entered. */
int record_push_alloc(struct thagtrace_thread *t, const void *ptr, uint64_t size,
		      double probability, const uintptr_t *frames, unsigned n, uint32_t flags,
		      bool in_set);

/* Put a free event stamped `ts` in the ring; the caller has entered. */
int record_push_free(struct thagtrace_thread *t, const void *ptr, uint64_t ts);

/* Slow path: walk the stack from frame `fp` (the frame whose return address is the
 * call site) and put an allocation event recorded with probability p in the ring,
 * unless `size` is below the minimum tracked. Out of line: only sampled
 * allocations come here. Preserves errno. */
int record_sampled_alloc(struct thagtrace_thread *t, const void *ptr, uint64_t size, double p,
			 uintptr_t site, uintptr_t fp, bool in_set);

/*
 * Count an allocation of `size` at `site` and draw: its probability, 0 when it is
 * not recorded (nor when it is below the minimum size tracked). The caller has
 * entered. With block tags (blocktag.h) the interposer decides before it allocates
 * (the block's size depends on the draw), and record_uncount takes the count back
 * if the allocation then fails.
 */
double record_decide_at(struct thagtrace_thread *t, uint64_t size, uintptr_t site);

/*
 * An allocation of `size` bytes at `ptr` from call site `site` (a return address),
 * the caller's frame being `fp`; the caller has entered. Counts it exactly, draws,
 * and records it when sampled. Returns 0 or THAGTRACE_EDROPPED. The general path:
 * any site, any mode.
 */
static inline __attribute__((always_inline)) int record_alloc_at(struct thagtrace_thread *t,
								 const void *ptr, uint64_t size,
								 uintptr_t site, uintptr_t fp)
{
	double p = record_decide_at(t, size, site);
	if (p == 0.0)
		return 0;
	return record_sampled_alloc(t, ptr, size, p, site, fp, true);
}

/* Out of line part of record_count_draw: the modes other than tiered, the large
 * tier, the minimum size and the boost's threshold refresh. */
double record_decide_rare(struct thagtrace_thread *t, struct site_entry *e, uint64_t size);

/* Take back the count of an allocation that failed; the caller has entered. */
void record_uncount(struct thagtrace_thread *t, uintptr_t site, uint64_t size);

/*
 * The common case of an allocation in one pass, for a live handle `t` (not NULL,
 * not THREAD_EXITED) and a call site it has seen before: enter, count, draw (*p:
 * the probability, 0 when not recorded); the caller records if it wants and leaves.
 * Returns false, having changed nothing and left, when anything is uncommon (busy: a
 * signal handler interrupted us; another session's handle; producers need a fence;
 * a new site): the caller then takes the general path. The tiered draw is the one
 * of sampler_decide_cached, with its always-certain cases (a site's first
 * allocation, the large tier) on the other side of the early exits.
 */
static inline __attribute__((always_inline)) bool
record_count_draw(struct thagtrace_thread *t, uint64_t size, uintptr_t site, double *p)
{
	if (__builtin_expect(load_relaxed(&t->busy) != 0, 0))
		return false;
	/* thread_enter's step B, with the fence folded into tt_fast_gen. */
	store_relaxed(&t->busy, 1);
	signal_fence();
	struct site_entry *e;
	if (__builtin_expect(t->generation != load_relaxed(&tt_fast_gen), 0) ||
	    __builtin_expect((e = sites_find(&t->sites, site)) == NULL, 0)) {
		store_release(&t->busy, 0);
		return false;
	}
	uint64_t count = sites_count(e, size);
	const struct sampler_params *sp = &tt_sampling;
	/* Not tiered, the large tier, below the minimum size, or a refresh. */
	if (__builtin_expect(size - sp->fast_lo >= sp->fast_span || (count & 63) == 0, 0)) {
		*p = record_decide_rare(t, e, size);
	} else {
		uint64_t thr = e->thr[size >= sp->medium];
		/* thr == UINT64_MAX (certain) misses once in 2^64 draws: far below the
		 * rounding of the recorded double probability. */
		*p = 0.0;
		if (__builtin_expect(sampler_bits(&t->sampler) < thr, 0))
			*p = shed_apply(t, (double)thr * 0x1.0p-64);
	}
	return true;
}

/* Count, draw and record an allocation already made (no tags), in one pass. */
static inline __attribute__((always_inline)) bool record_alloc_fast(struct thagtrace_thread *t,
								    const void *ptr, uint64_t size,
								    uintptr_t site, uintptr_t fp)
{
	double p;
	if (!record_count_draw(t, size, site, &p))
		return false;
	if (__builtin_expect(p != 0.0, 0))
		record_sampled_alloc(t, ptr, size, p, site, fp, true);
	thread_leave(t);
	return true;
}

/* Count and draw an allocation about to be made (tags: record_decide_at's common
 * case). */
static inline __attribute__((always_inline)) bool
record_decide_fast(struct thagtrace_thread *t, uint64_t size, uintptr_t site, double *p)
{
	if (!record_count_draw(t, size, site, p))
		return false;
	thread_leave(t);
	return true;
}

/*
 * A free of `ptr`; the caller has entered. Recorded when every event is (mode all),
 * or when ptr's allocation was recorded (it is in the freeset): an unsampled free
 * costs one filter load.
 */
static inline __attribute__((always_inline)) int record_free_at(struct thagtrace_thread *t,
								const void *ptr)
{
	if (tt_sampling.mode != THAGTRACE_SAMPLE_ALL &&
	    (!freeset_maybe((uintptr_t)ptr) || !freeset_remove((uintptr_t)ptr)))
		return 0;
	return record_push_free(t, ptr, tt_ticks());
}

#endif /* TT_RECORD_H */
