/* SPDX-License-Identifier: MIT */
/*
 * The event path, shared by the explicit API (record.c) and the malloc interposer
 * (interpose.c): what runs on the application thread for every allocation and free.
 * No lock, no malloc, no syscall in the common case, errno untouched; a nested call
 * (a signal handler on the same thread) is dropped and counted.
 */
#ifndef TT_RECORD_H
#define TT_RECORD_H

#include <stdint.h>

#include "freeset.h"
#include "sampler.h"
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

/* Slow path: walk the stack from frame `fp` (the frame whose return address is the
 * call site) and put an allocation event recorded with probability p in the ring.
 * Out of line: only sampled allocations come here. Preserves errno. */
int record_sampled_alloc(struct thagtrace_thread *t, const void *ptr, uint64_t size, double p,
			 uintptr_t site, uintptr_t fp);

/* Put an allocation event with a given stack (leaf first) in the ring and, unless
 * every event is recorded, its pointer in the freeset; the caller has entered. */
int record_push_alloc(struct thagtrace_thread *t, const void *ptr, uint64_t size,
		      double probability, const uintptr_t *frames, unsigned n, uint32_t flags);

/* Put a free event stamped `ts` in the ring; the caller has entered. */
int record_push_free(struct thagtrace_thread *t, const void *ptr, uint64_t ts);

/*
 * An allocation of `size` bytes at `ptr` from call site `site` (a return address),
 * the caller's frame being `fp`; the caller has entered. Counts it exactly, draws,
 * and records it when sampled. Returns 0 or THAGTRACE_EDROPPED.
 */
static inline __attribute__((always_inline)) int record_alloc_at(struct thagtrace_thread *t,
								 const void *ptr, uint64_t size,
								 uintptr_t site, uintptr_t fp)
{
	struct site_entry *e = sites_add(&t->sites, site, size);
	if (size < tt_cfg.min_size)
		return 0;
	double p =
	    sampler_decide_cached(&t->sampler, &tt_sampling, size, load_relaxed(&e->count), e->thr);
	if (p == 0.0)
		return 0;
	return record_sampled_alloc(t, ptr, size, p, site, fp);
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
