/* SPDX-License-Identifier: MIT */
/*
 * The event path: what runs on the application thread for every recorded event.
 * No lock, no malloc, no syscall, errno untouched; a nested call (signal handler on
 * the same thread) is dropped and counted.
 */
#include <errno.h>
#include <string.h>

#include "../common/clock.h"
#include "../common/format.h"
#include "thread.h"
#include "tracer.h"
#include "unwind_fp.h"

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

static inline uint64_t stack_hash(const uintptr_t *frames, unsigned n, uint32_t flags)
{
	uint64_t h = 0x243F6A8885A308D3ull ^ ((uint64_t)n << 32 | flags);
	for (unsigned i = 0; i < n; i++) {
		h ^= frames[i];
		h *= 0x9E3779B97F4A7C15ull;
		h ^= h >> 29;
	}
	h ^= h >> 32;
	h *= 0xD6E8FEB86659FD93ull;
	h ^= h >> 32;
	return h ? h : 1;
}

/* Put one allocation event in the ring; the caller has entered. */
static int push_alloc(struct thagtrace_thread *t, const void *ptr, uint64_t size,
		      double probability, const uintptr_t *frames, unsigned n, uint32_t flags)
{
	uint64_t h = stack_hash(frames, n, flags);
	struct stack_cache_entry *e = &t->stack_cache[h & (STACK_CACHE_SLOTS - 1)];
	bool known = e->hash == h;
	unsigned nf = known ? 0 : n;
	uint32_t len = (uint32_t)(sizeof(struct ev_alloc) + nf * sizeof(uint64_t));
	struct ev_alloc *ev = ring_reserve(&t->ring, len);
	if (!ev) {
		ring_drop(&t->ring, size);
		return THAGTRACE_EDROPPED;
	}
	ev->h.len = len;
	ev->h.type = EV_ALLOC;
	ev->h.aux = (uint16_t)nf;
	ev->ts = tt_ticks();
	ev->ptr = (uint64_t)(uintptr_t)ptr;
	ev->size = size;
	ev->probability = probability;
	if (known) {
		ev->stack_id = e->id;
		ev->stack_flags = flags;
	} else {
		ev->stack_id = t->next_stack_id;
		ev->stack_flags = flags | EV_STACK_DEFINES;
		memcpy(ev->frames, frames, nf * sizeof(uint64_t));
		/* Only now: had the reserve failed, the stack must not count as written. */
		e->hash = h;
		e->id = t->next_stack_id++;
	}
	if (ring_commit(&t->ring, len))
		tt_wake_writer();
	return 0;
}

int thagtrace_record_alloc(struct thagtrace_thread *t, const void *ptr, size_t size)
{
	if (!t)
		return THAGTRACE_EINVAL;
	int saved = errno;
	int rc = thread_enter(t);
	if (rc != 0)
		goto out;
	uintptr_t site = (uintptr_t)__builtin_return_address(0);
	uint64_t count = sites_add(&t->sites, site, size);
	double p =
	    size < tt_cfg.min_size ? 0.0 : sampler_decide(&t->sampler, &tt_sampling, size, count);
	if (p == 0.0) {
		thread_leave(t);
		goto out;
	}
	uintptr_t frames[THAGTRACE_MAX_FRAMES_LIMIT];
	bool truncated = false;
	unsigned n = 0;
	if (t->stack_hi)
		n = unwind_fp((uintptr_t)__builtin_frame_address(0), t->stack_lo, t->stack_hi,
			      frames, t->max_frames, &truncated);
	if (n == 0) {
		frames[0] = site; /* at least the call site */
		n = 1;
	}
	rc = push_alloc(t, ptr, size, p, frames, n, truncated ? TT_STACK_TRUNCATED : 0);
	thread_leave(t);
out:
	errno = saved;
	return rc;
}

int thagtrace_record_alloc_sampled(struct thagtrace_thread *t, const void *ptr, size_t size,
				   double probability, const uintptr_t *frames, unsigned nframes)
{
	if (!t || !(probability > 0.0 && probability <= 1.0) || (nframes && !frames))
		return THAGTRACE_EINVAL;
	int saved = errno;
	int rc = thread_enter(t);
	if (rc == 0) {
		uint32_t flags = 0;
		if (nframes > t->max_frames) {
			nframes = t->max_frames;
			flags |= TT_STACK_TRUNCATED;
		}
		rc = push_alloc(t, ptr, size, probability, frames, nframes, flags);
		thread_leave(t);
	}
	errno = saved;
	return rc;
}

int thagtrace_record_site(struct thagtrace_thread *t, uintptr_t site, size_t size)
{
	if (!t)
		return THAGTRACE_EINVAL;
	int rc = thread_enter(t);
	if (rc == 0) {
		sites_add(&t->sites, site, size);
		thread_leave(t);
	}
	return rc;
}

int thagtrace_record_free(struct thagtrace_thread *t, const void *ptr)
{
	if (!t)
		return THAGTRACE_EINVAL;
	int saved = errno;
	int rc = thread_enter(t);
	if (rc == 0) {
		struct ev_free *ev = ring_reserve(&t->ring, sizeof(*ev));
		if (ev) {
			ev->h.len = sizeof(*ev);
			ev->h.type = EV_FREE;
			ev->h.aux = 0;
			ev->ts = tt_ticks();
			ev->ptr = (uint64_t)(uintptr_t)ptr;
			if (ring_commit(&t->ring, sizeof(*ev)))
				tt_wake_writer();
		} else {
			ring_drop(&t->ring, 0);
			rc = THAGTRACE_EDROPPED;
		}
		thread_leave(t);
	}
	errno = saved;
	return rc;
}
