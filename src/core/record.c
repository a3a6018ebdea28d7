/* SPDX-License-Identifier: MIT */
/*
 * The event path's out-of-line parts (stack walk, ring records) and the explicit
 * API's entry points. The inline fast path is in record.h.
 */
#include <errno.h>
#include <string.h>

#include "record.h"

#include "../common/clock.h"
#include "../common/format.h"
#include "modules.h"
#include "unwind_cfi.h"
#include "unwind_fp.h"
#include "unwind_libunwind.h"

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

int record_push_alloc(struct thagtrace_thread *t, const void *ptr, uint64_t size,
		      double probability, const uintptr_t *frames, unsigned n, uint32_t flags,
		      bool in_set)
{
	uint64_t h = stack_hash(frames, n, flags);
	struct stack_cache_entry *e = &t->stack_cache[h & (STACK_CACHE_SLOTS - 1)];
	uint32_t epoch = atomic_load_explicit(&tt_modules_epoch, memory_order_relaxed);
	bool known = e->hash == h && e->epoch == epoch;
	unsigned nf = known ? 0 : n;
	uint32_t len = (uint32_t)(sizeof(struct ev_alloc) + nf * sizeof(uint64_t));
	/* The pointer joins the set of sampled pointers before the event's stores: the
	 * set's atomic operations would otherwise wait for the ring lines those stores
	 * fill (often still on the writer's core) instead of leaving them to drain. */
	in_set =
	    in_set && tt_sampling.mode != THAGTRACE_SAMPLE_ALL && freeset_insert((uintptr_t)ptr);
	/* The last eighth of the ring is kept for frees: a lost free would make its
	 * recorded allocation look live (a false leak), a lost allocation only costs
	 * a sample (its free is then not recorded either). */
	struct ev_alloc *ev =
	    ring_reserve_within(&t->ring, len, t->ring.capacity - t->ring.capacity / 8);
	if (!ev) {
		/* Only a recorded allocation's free is recorded. */
		if (in_set)
			freeset_remove((uintptr_t)ptr);
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
		e->epoch = epoch;
		e->id = t->next_stack_id++;
	}
	if (ring_commit(&t->ring, len))
		tt_wake_writer();
	return 0;
}

int record_sampled_alloc(struct thagtrace_thread *t, const void *ptr, uint64_t size, double p,
			 uintptr_t site, uintptr_t fp, bool in_set)
{
	if (size < tt_sampling.min_size)
		return 0; /* counted in .freq, not tracked */
	int saved = errno;
	uintptr_t frames[THAGTRACE_MAX_FRAMES_LIMIT];
	bool truncated = false, broken = true;
	unsigned n = 0;
	const uintptr_t *frame = (const uintptr_t *)fp;
	if (tt_unwind_cfi && t->stack_hi && fp >= t->stack_lo && fp + 16 <= t->stack_hi &&
	    frame[1] == site)
		/* The site's frame as it is at the return: its stack pointer just above
		 * the return address, its rbp what the callee's prologue saved. */
		n = unwind_cfi(site, fp + 16, frame[0], t->stack_lo, t->stack_hi, frames,
			       t->max_frames, &truncated, &broken);
	else if (t->stack_hi && tt_cfg.unwind != THAGTRACE_UNWIND_LIBUNWIND)
		n = unwind_fp(fp, t->stack_lo, t->stack_hi, frames, t->max_frames, &truncated,
			      &broken);
	if (broken && !tt_unwind_cfi && tt_cfg.unwind != THAGTRACE_UNWIND_FP && t->stack_hi) {
		/* Code without frame pointers: DWARF unwinding, microseconds, sampled
		 * events only. libunwind may allocate: under the guard. */
		uintptr_t more[THAGTRACE_MAX_FRAMES_LIMIT];
		bool more_truncated;
		tt_guard_enter();
		unsigned m = unwind_libunwind(site, more, t->max_frames, &more_truncated);
		tt_guard_leave();
		if (m > n) {
			memcpy(frames, more, m * sizeof(*frames));
			n = m;
			truncated = more_truncated;
			broken = false;
		}
	}
	if (n == 0) {
		frames[0] = site; /* at least the call site */
		n = 1;
	}
	/* A walk that stopped short of the outermost frame (code without frame
	 * pointers under --unwind fp, frames no unwinder could read) is marked like
	 * one cut at the depth limit: the stack is not whole. */
	truncated |= broken;
	int rc = record_push_alloc(t, ptr, size, p, frames, n, truncated ? TT_STACK_TRUNCATED : 0,
				   in_set);
	errno = saved;
	return rc;
}

double record_decide_rare(struct thagtrace_thread *t, struct site_entry *e, uint64_t size)
{
	if (size < tt_sampling.min_size)
		return 0.0; /* counted in .freq, not tracked */
	uint64_t count = load_relaxed(&e->count);
	double p = sampler_decide_cached(&t->sampler, &tt_sampling, size, count, e->thr);
	/* A site's first allocation keeps its stack; mode all drops, never sheds. */
	if (p != 0.0 && count > 1 && tt_sampling.mode != THAGTRACE_SAMPLE_ALL)
		p = shed_apply(t, p);
	return p;
}

double record_decide_at(struct thagtrace_thread *t, uint64_t size, uintptr_t site)
{
	return record_decide_rare(t, sites_add(&t->sites, site, size), size);
}

void record_uncount(struct thagtrace_thread *t, uintptr_t site, uint64_t size)
{
	struct site_entry *e = site ? sites_find(&t->sites, site) : NULL;
	if (e == NULL)
		e = &t->sites.other; /* where sites_add counted it */
	store_relaxed(&e->count, load_relaxed(&e->count) - 1);
	store_relaxed(&e->bytes, load_relaxed(&e->bytes) - size);
}

int record_push_free(struct thagtrace_thread *t, const void *ptr, uint64_t ts)
{
	struct ev_free *ev = ring_reserve(&t->ring, sizeof(*ev));
	if (!ev) {
		ring_drop(&t->ring, 0);
		return THAGTRACE_EDROPPED;
	}
	ev->h.len = sizeof(*ev);
	ev->h.type = EV_FREE;
	ev->h.aux = 0;
	ev->ts = ts;
	ev->ptr = (uint64_t)(uintptr_t)ptr;
	if (ring_commit(&t->ring, sizeof(*ev)))
		tt_wake_writer();
	return 0;
}

int thagtrace_record_alloc(struct thagtrace_thread *t, const void *ptr, size_t size)
{
	if (!t)
		return THAGTRACE_EINVAL;
	int rc = thread_enter(t);
	if (rc == 0) {
		rc = record_alloc_at(t, ptr, size, (uintptr_t)__builtin_return_address(0),
				     (uintptr_t)__builtin_frame_address(0));
		thread_leave(t);
	}
	return rc;
}

int thagtrace_record_alloc_sampled(struct thagtrace_thread *t, const void *ptr, size_t size,
				   double probability, const uintptr_t *frames, unsigned nframes)
{
	if (!t || !(probability > 0.0 && probability <= 1.0) || (nframes && !frames))
		return THAGTRACE_EINVAL;
	int rc = thread_enter(t);
	if (rc == 0) {
		uint32_t flags = 0;
		if (nframes > t->max_frames) {
			nframes = t->max_frames;
			flags |= TT_STACK_TRUNCATED;
		}
		int saved = errno;
		rc = record_push_alloc(t, ptr, size, probability, frames, nframes, flags, true);
		errno = saved;
		thread_leave(t);
	}
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
	int rc = thread_enter(t);
	if (rc == 0) {
		rc = record_free_at(t, ptr);
		thread_leave(t);
	}
	return rc;
}
