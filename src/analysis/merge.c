/* SPDX-License-Identifier: MIT */
/*
 * The merge's timeline: a k-way merge of the threads' event streams by timestamp
 * (a binary heap of open decoders, each opened when the timeline reaches its
 * thread's start), per-stack sums, the live set of sampled allocations and the
 * global peak.
 *
 * The peak's stacks without a snapshot per new maximum: a new maximum bumps an
 * epoch (O(1)); a stack about to change whose last change predates the current
 * epoch first saves its live value, which is then its value at the latest peak
 * (it has not changed since). At the end, stacks untouched since the latest peak
 * take their current value.
 *
 * Processes end: a program traced through a shell or a wrapper is many processes
 * one after another, whose blocks were never live together. When the timeline
 * has passed both a process's end (the clock record of its last image's
 * PROCESS_END, written as its session stopped) and its last event, its live
 * blocks leave the total that finds the peak, and its stacks count for nothing at
 * a later peak (they stay live at the end: its leaks). A process without that
 * record (killed, crashed) may have lived on past its last event: it stays.
 *
 * Decoding runs on a second thread when there are two CPUs (decode_thread.c): the
 * cursors then read batches of decoded records instead of decoders, through the
 * same fill below, so both ways intern, aggregate and fail at the same points.
 */
#define _GNU_SOURCE
#include "merge.h"

#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/parse.h"
#include "decode.h"
#include "decode_thread.h"
#include "live.h"
#include "u64map.h"

/* ---- stacks ---- */

#define ARENA_CHUNK (1u << 16) /* frames per arena chunk */

struct arena {
	uint64_t **chunks;
	unsigned nchunks;
	size_t used; /* in the last chunk */
};

/* Horvitz-Thompson sums of live blocks: bytes, count, variance of the bytes. */
struct live_sum {
	double bytes, count, var;
};

static void live_sum_add(struct live_sum *to, const struct live_sum *d, double sign)
{
	to->bytes += sign * d->bytes;
	to->count += sign * d->count;
	to->var += sign * d->var;
}

struct proc_live {
	struct live_sum live; /* its part of the total */
	bool gone, end_passed;
	unsigned files_left;
};

struct proc_end {
	uint64_t ts;
	unsigned proc;
};

struct merge_state {
	struct tt_profile *p;
	size_t cap_stacks;
	struct u64map by_hash; /* stack hash -> index (a collision moves to hash + 1) */
	struct arena arena;
	uint32_t peak_epoch;
	struct live_sum live; /* the live total's HT sums */
	double peak_lo;	      /* its 95 % low bound at the peak */
	double peak_half;     /* and its half-width there */
	bool peak_set;
	/* Per process: its part of the live total's sums, whether it has ended, and
	 * its thread files still open in the timeline; the ends known from clock
	 * records, in time order, and the next of them. */
	struct proc_live *procs;
	struct proc_end *ends;
	unsigned nends, next_end;
};

/* tt_profile_stack needs the state; one merge runs at a time per profile. */
struct profile_private {
	struct tt_profile pub;
	struct merge_state ms;
};

static uint64_t hash_frames(unsigned proc, const uint64_t *f, unsigned n, uint32_t flags,
			    uint64_t modkey)
{
	uint64_t h = u64map_hash(((uint64_t)proc << 32) ^ ((uint64_t)flags << 24) ^ n ^ modkey);
	for (unsigned i = 0; i < n; i++)
		h = u64map_hash(h ^ f[i]) + i;
	return h ? h : 1;
}

static uint64_t *arena_alloc(struct arena *a, unsigned n)
{
	if (n > ARENA_CHUNK)
		return NULL;
	if (!a->nchunks || a->used + n > ARENA_CHUNK) {
		uint64_t **c = realloc(a->chunks, (a->nchunks + 1) * sizeof(*c));
		if (!c)
			return NULL;
		a->chunks = c;
		if (!(c[a->nchunks] = malloc(ARENA_CHUNK * sizeof(uint64_t))))
			return NULL;
		a->nchunks++;
		a->used = 0;
	}
	uint64_t *r = a->chunks[a->nchunks - 1] + a->used;
	a->used += n;
	return r;
}

int tt_profile_stack(struct tt_profile *pub, unsigned proc, const uint64_t *frames,
		     unsigned nframes, uint32_t flags, uint64_t modkey)
{
	struct merge_state *ms = &((struct profile_private *)pub)->ms;
	struct tt_profile *p = ms->p;
	uint64_t h = hash_frames(proc, frames, nframes, flags, modkey);
	uint32_t idx;
	while (u64map_get(&ms->by_hash, h, &idx)) {
		const struct tt_stack *s = &p->stacks[idx];
		if (s->proc == proc && s->nframes == nframes && s->flags == flags &&
		    s->modkey == modkey && !memcmp(s->frames, frames, nframes * sizeof(*frames)))
			return (int)idx;
		h = h + 1 ? h + 1 : 1; /* a 64-bit collision: the next key */
	}
	if (p->nstacks == ms->cap_stacks) {
		size_t ncap = ms->cap_stacks ? ms->cap_stacks * 2 : 1024;
		struct tt_stack *ns = realloc(p->stacks, ncap * sizeof(*ns));
		if (!ns)
			return -1;
		p->stacks = ns;
		ms->cap_stacks = ncap;
	}
	uint64_t *copy = arena_alloc(&ms->arena, nframes ? nframes : 1);
	if (!copy || u64map_put(&ms->by_hash, h, p->nstacks))
		return -1;
	memcpy(copy, frames, nframes * sizeof(*frames));
	p->stacks[p->nstacks] = (struct tt_stack){.proc = proc,
						  .nframes = nframes,
						  .flags = flags,
						  .modkey = modkey,
						  .frames = copy,
						  .last_file = UINT32_MAX};
	return (int)p->nstacks++;
}

static void stack_add_tid(struct tt_stack *s, unsigned file, int32_t tid)
{
	if (s->last_file == file)
		return;
	s->last_file = file;
	for (unsigned i = 0; i < s->nthreads && i < TT_STACK_TIDS; i++)
		if (s->tids[i] == tid)
			return;
	if (s->nthreads < TT_STACK_TIDS) {
		if (!s->tids && !(s->tids = malloc(TT_STACK_TIDS * sizeof(*s->tids))))
			return;
		s->tids[s->nthreads] = tid;
	}
	s->nthreads++;
}

/* ---- the timeline ---- */

/* An ALLOC or FREE read ahead of its turn (the stack id already mapped to the
 * global stack, since a file may define an id again later). */
struct event {
	unsigned tag;
	int32_t stack;	 /* ALLOC: global stack index, -1 undefined */
	uint32_t raw_id; /* ALLOC: the file's stack id, for messages */
	uint64_t ts, ptr, size;
	double probability;
	uint64_t offset; /* of its frame, for messages */
};

/* Events a cursor decodes ahead, so that the next ones are known early enough to
 * prefetch their live-table slots. */
#define QUEUE 32u

struct cursor {
	struct tt_decoder *d; /* NULL when the decode thread reads the file */
	struct dthread *dt;   /* the decode thread, or NULL */
	struct dthread_batch *b;
	unsigned bpos;	 /* next record in b */
	unsigned file;	 /* the decode thread's index of the file */
	unsigned thread; /* index in trace->threads */
	unsigned proc;	 /* its process */
	unsigned nids;
	int32_t *ids;	      /* file-local stack id -> global index, -1 undefined */
	struct tt_record rec; /* decoder scratch */
	/* A STACK record waits for the ALLOC after it: the objects its frames belong
	 * to are looked up at that allocation's time (define_stack). */
	uint64_t *pend;
	unsigned pend_n, pend_cap;
	uint32_t pend_id, pend_flags;
	bool pending;
	unsigned head, len;
	bool eof;
	struct event q[QUEUE];
	uint64_t ts; /* of q[head] */
};

static inline const struct event *cursor_event(const struct cursor *c)
{
	return &c->q[c->head];
}

struct timeline {
	struct cursor **heap;
	unsigned n;
};

static bool before(const struct cursor *a, const struct cursor *b)
{
	return a->ts < b->ts || (a->ts == b->ts && a->thread < b->thread);
}

static void heap_down(struct timeline *tl, unsigned i)
{
	for (;;) {
		unsigned l = 2 * i + 1, r = l + 1, m = i;
		if (l < tl->n && before(tl->heap[l], tl->heap[m]))
			m = l;
		if (r < tl->n && before(tl->heap[r], tl->heap[m]))
			m = r;
		if (m == i)
			return;
		struct cursor *x = tl->heap[i];
		tl->heap[i] = tl->heap[m];
		tl->heap[m] = x;
		i = m;
	}
}

static void heap_push(struct timeline *tl, struct cursor *c)
{
	unsigned i = tl->n++;
	tl->heap[i] = c;
	while (i > 0) {
		unsigned up = (i - 1) / 2;
		if (!before(tl->heap[i], tl->heap[up]))
			break;
		struct cursor *x = tl->heap[i];
		tl->heap[i] = tl->heap[up];
		tl->heap[up] = x;
		i = up;
	}
}

struct run {
	struct profile_private *pp;
	struct tt_profile *p;
	struct live_table live;
	unsigned key_shift; /* live_key_shift of the trace's processes */
	struct dthread *dt; /* NULL: decode on this thread */
	char *err;
	size_t errcap;
};

static int fail_file(struct run *r, const char *path, const char *msg)
{
	snprintf(r->err, r->errcap, "%s: %s", path, msg);
	return -1;
}

static void stack_touch(struct merge_state *ms, struct tt_stack *s)
{
	if (s->mod_epoch != ms->peak_epoch) {
		s->peak_b = s->live_b;
		s->peak_c = s->live_c;
		s->mod_epoch = ms->peak_epoch;
	}
}

/* A recorded block of x bytes and weight w = 1/p joins (sign 1) or leaves (-1) the
 * live sums of its stack and the live total. */
static void live_move(struct merge_state *ms, struct tt_stack *s, double x, double w, int sign)
{
	tt_sums_move(&s->live_b, x, w, sign);
	tt_sums_move(&s->live_c, 1.0, w, sign);
	struct proc_live *pl = &ms->procs[s->proc];
	if (pl->gone)
		return; /* out of the total already */
	struct live_sum d = {x * w, w, x * x * (w - 1.0) * w};
	live_sum_add(&ms->live, &d, sign);
	live_sum_add(&pl->live, &d, sign);
}

/* Process `proc` has ended: its blocks leave the total; its stacks keep their
 * value at the latest peak so far, and count nothing at a later one. */
static void proc_gone(struct merge_state *ms, unsigned proc)
{
	struct proc_live *pl = &ms->procs[proc];
	if (pl->gone)
		return;
	live_sum_add(&ms->live, &pl->live, -1);
	pl->live = (struct live_sum){0};
	pl->gone = true;
	struct tt_profile *p = ms->p;
	for (unsigned i = 0; i < p->nstacks; i++) {
		struct tt_stack *s = &p->stacks[i];
		if (s->proc == proc) {
			stack_touch(ms, s);
			s->gone = true;
		}
	}
}

/* Every process whose known end the timeline has passed, at time ts: gone once its
 * files have no more events either. */
static void procs_ended_before(struct merge_state *ms, uint64_t ts)
{
	while (ms->next_end < ms->nends && ms->ends[ms->next_end].ts < ts) {
		unsigned proc = ms->ends[ms->next_end++].proc;
		ms->procs[proc].end_passed = true;
		if (!ms->procs[proc].files_left)
			proc_gone(ms, proc);
	}
}

static int cmp_end(const void *a, const void *b)
{
	const struct proc_end *x = a, *y = b;
	return (x->ts > y->ts) - (x->ts < y->ts);
}

/* The per-process state; ends of the processes whose last image stopped cleanly
 * (PROCESS_END). Returns -1 when out of memory. */
static int procs_init(struct merge_state *ms, const struct tt_trace *t)
{
	unsigned n = t->nprocs ? t->nprocs : 1;
	ms->procs = calloc(n, sizeof(*ms->procs));
	ms->ends = calloc(n, sizeof(*ms->ends));
	if (!ms->procs || !ms->ends)
		return -1;
	for (unsigned i = 0; i < t->nprocs; i++) {
		const struct tt_process *pr = &t->procs[i];
		if (pr->last_image_ended)
			ms->ends[ms->nends++] = (struct proc_end){pr->end_ticks, i};
	}
	qsort(ms->ends, ms->nends, sizeof(*ms->ends), cmp_end);
	return 0;
}

static unsigned hist_bucket(uint64_t size)
{
	unsigned b = size ? 64u - (unsigned)__builtin_clzll(size) : 0; /* 1 -> 1, 2..3 -> 2 */
	return b < TT_HIST_BUCKETS ? b : TT_HIST_BUCKETS - 1;
}

static void note_peak(struct run *r, const struct cursor *c)
{
	struct merge_state *ms = &r->pp->ms;
	struct tt_profile *p = r->p;
	double sd = TT_Z95 * sqrt(ms->live.var > 0 ? ms->live.var : 0);
	if (ms->live.bytes + sd > p->peak_bytes_hi)
		p->peak_bytes_hi = ms->live.bytes + sd;
	if (ms->live.bytes - sd > ms->peak_lo || !ms->peak_set) {
		ms->peak_set = true;
		ms->peak_lo = ms->live.bytes - sd;
		ms->peak_half = sd;
		p->peak_bytes = ms->live.bytes;
		p->peak_count = ms->live.count;
		p->peak_ts = c->ts;
		p->peak_proc = r->p->trace->threads[c->thread].proc;
		ms->peak_epoch++;
	}
}

static int on_alloc(struct run *r, struct cursor *c)
{
	struct tt_profile *p = r->p;
	const struct tt_thread *th = &p->trace->threads[c->thread];
	struct tt_thread_stats *ts = &p->threads[c->thread];
	const struct event *ev = cursor_event(c);
	double prob = ev->probability;
	ts->samples++;
	if (!ts->selected)
		return 0;
	if (ev->stack < 0) {
		char msg[160];
		snprintf(msg, sizeof(msg),
			 "offset %llu: alloc names stack %u, not defined before it",
			 (unsigned long long)ev->offset, ev->raw_id);
		return fail_file(r, th->bin, msg);
	}
	if (!(prob > 0.0 && prob <= 1.0)) {
		char msg[160];
		snprintf(msg, sizeof(msg), "offset %llu: alloc with probability %g, not in (0, 1]",
			 (unsigned long long)ev->offset, prob);
		return fail_file(r, th->bin, msg);
	}
	struct tt_stack *s = &p->stacks[ev->stack];
	double w = 1.0 / prob, x = (double)ev->size;
	if (!s->samples)
		s->first_ts = c->ts;
	tt_sums_add(&s->sb, x, prob);
	tt_sums_add(&s->sc, 1.0, prob);
	s->samples++;
	s->sampled_bytes += ev->size;
	p->samples++;
	p->sampled_bytes += ev->size;
	struct tt_hist_bucket *hb = &p->hist[hist_bucket(ev->size)];
	hb->count += w;
	hb->bytes += x * w;
	hb->samples++;

	struct merge_state *ms = &r->pp->ms;
	bool found;
	struct live_entry *e =
	    live_upsert(&r->live, live_key(ev->ptr, th->proc, r->key_shift), &found);
	if (!e)
		return fail_file(r, th->bin, "out of memory");
	if (found) {
		/* Allocated again without a recorded free (the free was dropped, or the
		 * tracer's set of sampled pointers was full): the old block is gone. */
		struct tt_stack *old = &p->stacks[e->stack];
		stack_touch(ms, old);
		live_move(ms, old, (double)e->size, e->w, -1);
		p->frees_unmatched++;
	}
	e->stack = (uint32_t)ev->stack;
	e->size = ev->size;
	e->w = (float)w;
	w = e->w; /* what the free will subtract */
	stack_touch(ms, s);
	live_move(ms, s, x, w, 1);
	note_peak(r, c);
	return 0;
}

static void on_free(struct run *r, struct cursor *c)
{
	struct tt_profile *p = r->p;
	const struct tt_thread *th = &p->trace->threads[c->thread];
	p->threads[c->thread].frees++;
	struct live_entry *e =
	    live_find(&r->live, live_key(cursor_event(c)->ptr, th->proc, r->key_shift));
	if (!e) {
		/* Mode all records every free; others free blocks allocated before
		 * tracing, or not selected by a filter. */
		p->frees_unmatched++;
		return;
	}
	struct merge_state *ms = &r->pp->ms;
	struct tt_stack *s = &p->stacks[e->stack];
	stack_touch(ms, s);
	live_move(ms, s, (double)e->size, e->w, -1);
	p->frees_matched++;
	live_remove(&r->live, e);
}

/* Which objects a stack's frames are in, at time ts: the same addresses in another
 * object (a library unloaded, another loaded in its place) make another stack. */
static uint64_t modules_key(const struct tt_process *pr, const uint64_t *f, unsigned n, uint64_t ts)
{
	uint64_t k = 0x9E3779B97F4A7C15ull;
	for (unsigned i = 0; i < n; i++) {
		const struct tt_module *m = tt_process_module(pr, f[i], ts);
		uint64_t h = 0;
		if (m) {
			h = m->start;
			for (const char *c = m->path; c && *c; c++)
				h = (h ^ (unsigned char)*c) * 0x100000001B3ull;
		}
		k = u64map_hash(k ^ h) + i;
	}
	return k;
}

/* Intern the waiting stack as of time ts (its first allocation's). */
static int intern_pending(struct run *r, struct cursor *c, uint64_t ts)
{
	struct tt_profile *p = r->p;
	const struct tt_thread *th = &p->trace->threads[c->thread];
	c->pending = false;
	uint64_t key = modules_key(&p->trace->procs[th->proc], c->pend, c->pend_n, ts);
	int idx = tt_profile_stack(p, th->proc, c->pend, c->pend_n, c->pend_flags, key);
	if (idx < 0)
		return fail_file(r, th->bin, "out of memory");
	c->ids[c->pend_id] = idx;
	stack_add_tid(&p->stacks[idx], c->thread, th->tid);
	return 0;
}

static int define_stack(struct run *r, struct cursor *c, const struct tt_record *rec)
{
	struct tt_profile *p = r->p;
	const struct tt_thread *th = &p->trace->threads[c->thread];
	uint32_t id = rec->stack.id;
	if (id >= (1u << 24)) {
		char msg[96];
		snprintf(msg, sizeof(msg), "offset %llu: stack id %u too large (2^24 at most)",
			 (unsigned long long)rec->frame_offset, id);
		return fail_file(r, th->bin, msg);
	}
	if (id >= c->nids) {
		unsigned n = c->nids ? c->nids : 256;
		while (n <= id)
			n *= 2;
		int32_t *ids = realloc(c->ids, n * sizeof(*ids));
		if (!ids)
			return fail_file(r, th->bin, "out of memory");
		memset(ids + c->nids, 0xff, (n - c->nids) * sizeof(*ids));
		c->ids = ids;
		c->nids = n;
	}
	if (!p->threads[c->thread].selected)
		return 0;
	if (c->pending && intern_pending(r, c, c->ts))
		return -1;
	unsigned n = rec->stack.nframes;
	if (n > c->pend_cap) {
		uint64_t *f = realloc(c->pend, n * sizeof(*f));
		if (!f)
			return fail_file(r, th->bin, "out of memory");
		c->pend = f;
		c->pend_cap = n;
	}
	memcpy(c->pend, rec->stack.frames, n * sizeof(*c->pend));
	c->pend_n = n;
	c->pend_id = id;
	c->pend_flags = rec->stack.flags & TT_STACK_TRUNCATED;
	c->pending = true;
	return 0;
}

static inline void cursor_prefetch(const struct live_table *t, const struct cursor *c,
				   unsigned ahead, unsigned shift)
{
	if (ahead < c->len)
		live_prefetch(t,
			      live_key(c->q[(c->head + ahead) & (QUEUE - 1)].ptr, c->proc, shift));
}

/* c's next record into *rec: 1, 0 at the file's end, -1 on an error (cursor_error
 * says what). From its decoder, or from the decode thread's batches, in the same
 * order either way. */
static inline int cursor_next(struct cursor *c, const struct tt_record **rec)
{
	if (!c->dt) {
		*rec = &c->rec;
		return tt_decoder_next(c->d, &c->rec);
	}
	while (!c->b || c->bpos == c->b->n) {
		if (c->b && c->b->end)
			return c->b->end < 0 ? -1 : 0;
		c->b = dthread_next(c->dt, c->file, c->b);
		c->bpos = 0;
		if (!c->b)
			return -1; /* out of memory */
	}
	*rec = &c->b->rec[c->bpos++];
	return 1;
}

static const char *cursor_error(const struct cursor *c)
{
	return c->dt ? dthread_error(c->dt, c->file) : tt_decoder_error(c->d);
}

static bool cursor_truncated(const struct cursor *c, uint64_t *off)
{
	return c->dt ? dthread_truncated(c->dt, c->file, off) : tt_decoder_truncated(c->d, off);
}

/* Decode c's events ahead until its queue is full or the file ends, handling
 * definitions and counters on the way. Returns 0 or -1. */
static int fill(struct run *r, struct cursor *c)
{
	struct tt_thread_stats *ts = &r->p->threads[c->thread];
	const char *path = r->p->trace->threads[c->thread].bin;
	const struct tt_record *rec;
	int rc = 1;
	while (c->len < QUEUE && (rc = cursor_next(c, &rec)) > 0) {
		struct event *ev = &c->q[(c->head + c->len) & (QUEUE - 1)];
		switch (rec->tag) {
		case TT_REC_ALLOC: {
			uint32_t id = rec->alloc.stack_id;
			if (c->pending && intern_pending(r, c, rec->alloc.ts))
				return -1;
			*ev = (struct event){.tag = TT_REC_ALLOC,
					     .stack = id < c->nids ? c->ids[id] : -1,
					     .raw_id = id,
					     .ts = rec->alloc.ts,
					     .ptr = rec->alloc.ptr,
					     .size = rec->alloc.size,
					     .probability = rec->alloc.probability,
					     .offset = rec->frame_offset};
			c->len++;
			break;
		}
		case TT_REC_FREE:
			*ev = (struct event){.tag = TT_REC_FREE,
					     .ts = rec->free.ts,
					     .ptr = rec->free.ptr,
					     .offset = rec->frame_offset};
			c->len++;
			break;
		case TT_REC_STACK:
			if (define_stack(r, c, rec))
				return -1;
			break;
		case TT_REC_DROPS:
			ts->emitted = rec->drops.emitted;
			ts->dropped = rec->drops.dropped;
			ts->dropped_bytes = rec->drops.dropped_bytes;
			ts->shed = rec->drops.shed;
			break;
		case TT_REC_NAME: { /* the thread renamed itself: its last name */
			struct tt_thread *th = &r->p->trace->threads[c->thread];
			snprintf(th->name, sizeof(th->name), "%s", rec->name.name);
			break;
		}
		case TT_REC_END:
			ts->has_end = true;
			ts->emitted = rec->end.emitted;
			ts->recorded = rec->end.recorded;
			ts->dropped = rec->end.dropped;
			ts->end_ts = rec->end.end;
			break;
		}
	}
	if (rc > 0)
		return 0;
	if (c->pending && intern_pending(r, c, c->ts))
		return -1;
	c->eof = true;
	if (rc < 0)
		return fail_file(r, path, cursor_error(c));
	uint64_t off;
	if (cursor_truncated(c, &off)) {
		ts->truncated = true;
		tt_trace_note(r->p->trace,
			      "%s: truncated at offset %llu (the process crashed or the disk "
			      "filled?): events before it are used",
			      path, (unsigned long long)off);
	}
	return 0;
}

/* Move c to its next event: 1 (c->ts is its time), 0 (no more) or -1. */
static int advance(struct run *r, struct cursor *c, bool consume)
{
	if (consume) {
		c->head = (c->head + 1) & (QUEUE - 1);
		c->len--;
	}
	if (c->len < QUEUE / 2 && !c->eof && fill(r, c))
		return -1;
	if (!c->len)
		return 0;
	c->ts = c->q[c->head].ts;
	return 1;
}

static void close_cursor(struct cursor *c)
{
	if (c->dt)
		dthread_close(c->dt, c->file, c->b);
	tt_decoder_destroy(c->d);
	free(c->ids);
	free(c->pend);
	free(c);
}

/* Open the cursor of trace thread `thread`, the file-th file in opening order. */
static int open_cursor(struct run *r, struct timeline *tl, unsigned thread, unsigned file)
{
	const struct tt_thread *th = &r->p->trace->threads[thread];
	struct cursor *c = calloc(1, sizeof(*c));
	char err[600];
	if (!c)
		return fail_file(r, th->bin, "out of memory");
	c->thread = thread;
	c->proc = th->proc;
	c->file = file;
	/* With a decode thread, it opens the file: an error there comes as the
	 * file's first record, through this same advance. */
	c->dt = r->dt;
	if (!c->dt && !(c->d = tt_decoder_open(th->bin, err, sizeof(err)))) {
		free(c);
		return fail_file(r, th->bin, err);
	}
	int rc = advance(r, c, false);
	if (rc <= 0) {
		close_cursor(c);
		return rc;
	}
	heap_push(tl, c);
	return 0;
}

/* The live table's growth has the decode thread fault its new half in. */
static void live_prefault(void *ctx, void *addr, size_t len)
{
	dthread_prefault(ctx, addr, len);
}

/* Decode on a second thread? THAGTRACE_MERGE_THREADS=1: no; 2 (or more): yes;
 * unset: when this process may run on two CPUs or more. Any other value is said
 * once on stderr and treated as unset (the merge's results do not depend on it). */
static bool decode_thread_wanted(void)
{
	static bool said;
	const char *v = getenv("THAGTRACE_MERGE_THREADS");
	int32_t n;
	if (v && tt_parse_id(v, &n))
		return n >= 2;
	if (v && !said) {
		said = true;
		fprintf(stderr,
			"thagtrace: THAGTRACE_MERGE_THREADS=%s: expected a number of threads "
			"(1 or more); deciding by the CPUs available\n",
			v);
	}
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		return CPU_COUNT(&set) >= 2;
	return sysconf(_SC_NPROCESSORS_ONLN) >= 2;
}

/* A thread file of process `proc` has no more events: the last one ends the
 * process if the timeline has passed its known end. */
static void file_done(struct merge_state *ms, unsigned proc)
{
	struct proc_live *pl = &ms->procs[proc];
	if (pl->files_left && --pl->files_left == 0 && pl->end_passed)
		proc_gone(ms, proc);
}

static int cmp_start(const void *a, const void *b, void *ctx)
{
	const struct tt_thread *t = ctx;
	const unsigned *x = a, *y = b;
	uint64_t sx = t[*x].start, sy = t[*y].start;
	return sx < sy ? -1 : sx > sy ? 1 : (*x > *y) - (*x < *y);
}

static int run_timeline(struct run *r, tt_progress_fn progress, void *progress_ctx)
{
	struct tt_trace *t = r->p->trace;
	unsigned nfiles = 0, next = 0, done = 0;
	unsigned *order = malloc((t->nthreads + 1) * sizeof(*order));
	struct timeline tl = {.heap = malloc((t->nthreads + 1) * sizeof(*tl.heap))};
	int rc = -1;
	if (!order || !tl.heap) {
		snprintf(r->err, r->errcap, "%s: out of memory", t->dir);
		goto out;
	}
	for (unsigned i = 0; i < t->nthreads; i++)
		/* With --thread, the other threads are read too: their frees of the
		 * selected thread's blocks. */
		if (t->threads[i].bin &&
		    (!r->p->filter.pid || t->threads[i].pid == r->p->filter.pid))
			order[nfiles++] = i;
	qsort_r(order, nfiles, sizeof(*order), cmp_start, t->threads);
	for (unsigned i = 0; i < nfiles; i++)
		r->pp->ms.procs[t->threads[order[i]].proc].files_left++;
	if (nfiles && decode_thread_wanted()) {
		const char **paths = malloc(nfiles * sizeof(*paths));
		for (unsigned i = 0; paths && i < nfiles; i++)
			paths[i] = t->threads[order[i]].bin;
		/* No thread (or no memory for it): decode here, as on one CPU. */
		r->dt = paths ? dthread_start(paths, nfiles) : NULL;
		free(paths);
		if (r->dt) {
			r->live.prefault = live_prefault;
			r->live.prefault_ctx = r->dt;
		}
	}
	for (;;) {
		/* Open every thread that starts before the earliest pending event. */
		while (next < nfiles &&
		       (tl.n == 0 || t->threads[order[next]].start <= tl.heap[0]->ts)) {
			unsigned before = tl.n;
			if (open_cursor(r, &tl, order[next], next))
				goto out;
			if (tl.n == before) /* a file without events */
				file_done(&r->pp->ms, t->threads[order[next]].proc);
			next++;
			if (tl.n == 0)
				done++;
		}
		if (tl.n == 0)
			break;
		struct cursor *c = tl.heap[0];
		procs_ended_before(&r->pp->ms, c->ts);
		/* Start the live-table miss of this thread's event ten ahead (measured:
		 * 8 to 12 beat 4 by 5 to 20 %, more with the decode thread, whose merge
		 * thread spends less per event; the children's heads, prefetched too,
		 * cost more than they saved). */
		cursor_prefetch(&r->live, c, 10, r->key_shift);
		r->p->events++;
		if (cursor_event(c)->tag == TT_REC_ALLOC) {
			if (on_alloc(r, c))
				goto out;
		} else {
			on_free(r, c);
		}
		if (!r->p->first_ts || c->ts < r->p->first_ts)
			r->p->first_ts = c->ts;
		if (c->ts > r->p->last_ts) {
			r->p->last_ts = c->ts;
			r->p->last_proc = r->p->trace->threads[c->thread].proc;
		}
		int a = advance(r, c, true);
		if (a < 0)
			goto out;
		if (a == 0) {
			tl.heap[0] = tl.heap[--tl.n];
			file_done(&r->pp->ms, c->proc);
			close_cursor(c);
			done++;
		}
		if (tl.n)
			heap_down(&tl, 0);
		if (progress && (r->p->events & 0xfffff) == 0)
			progress(r->p->events, done, nfiles, progress_ctx);
	}
	if (progress)
		progress(r->p->events, nfiles, nfiles, progress_ctx);
	rc = 0;
out:
	for (unsigned i = 0; i < tl.n; i++)
		close_cursor(tl.heap[i]);
	dthread_stop(r->dt);
	r->dt = NULL;
	r->live.prefault = NULL;
	free(tl.heap);
	free(order);
	return rc;
}

/* Stacks untouched since the latest peak hold their peak sums now. */
static void finish_peak(struct merge_state *ms, struct tt_profile *p)
{
	for (unsigned i = 0; i < p->nstacks; i++) {
		struct tt_stack *s = &p->stacks[i];
		if (s->mod_epoch != ms->peak_epoch) {
			/* Gone before the latest peak: nothing of it was live then. */
			s->peak_b = s->gone ? (struct tt_sums){0} : s->live_b;
			s->peak_c = s->gone ? (struct tt_sums){0} : s->live_c;
		}
	}
	if (ms->peak_set)
		p->peak_bytes_lo = ms->peak_half; /* estimate.c centres it on the estimate */
}

struct tt_profile *tt_profile_build(struct tt_trace *trace, const struct tt_filter *filter,
				    tt_progress_fn progress, void *progress_ctx, char *err,
				    size_t errcap)
{
	struct profile_private *pp = calloc(1, sizeof(*pp));
	if (!pp) {
		snprintf(err, errcap, "%s: out of memory", trace->dir);
		return NULL;
	}
	struct tt_profile *p = &pp->pub;
	pp->ms.p = p;
	p->trace = trace;
	if (filter)
		p->filter = *filter;
	p->threads = calloc(trace->nthreads ? trace->nthreads : 1, sizeof(*p->threads));
	if (!p->threads) {
		snprintf(err, errcap, "%s: out of memory", trace->dir);
		tt_profile_destroy(p);
		return NULL;
	}
	for (unsigned i = 0; i < trace->nthreads; i++) {
		const struct tt_thread *th = &trace->threads[i];
		p->threads[i].selected = (!p->filter.pid || th->pid == p->filter.pid) &&
					 (!p->filter.tid || th->tid == p->filter.tid);
	}
	for (unsigned b = 0; b < TT_HIST_BUCKETS; b++) {
		p->hist[b].min = b ? 1ull << (b - 1) : 0;
		p->hist[b].max = b + 1 < TT_HIST_BUCKETS ? (b ? (1ull << b) - 1 : 0) : UINT64_MAX;
	}
	if (trace->nprocs > LIVE_MAX_PROCS) {
		snprintf(err, errcap,
			 "%s: %u processes in one directory: more than %u; merge them "
			 "one at a time with --pid",
			 trace->dir, trace->nprocs, LIVE_MAX_PROCS);
		tt_profile_destroy(p);
		return NULL;
	}
	if (procs_init(&pp->ms, trace)) {
		snprintf(err, errcap, "%s: out of memory", trace->dir);
		tt_profile_destroy(p);
		return NULL;
	}
	struct run r = {.pp = pp,
			.p = p,
			.err = err,
			.errcap = errcap,
			.key_shift = live_key_shift(trace->nprocs)};
	int rc = run_timeline(&r, progress, progress_ctx);
	live_fini(&r.live);
	if (rc) {
		tt_profile_destroy(p);
		return NULL;
	}
	finish_peak(&pp->ms, p);
	if (tt_estimate(p)) {
		snprintf(err, errcap, "%s: out of memory", trace->dir);
		tt_profile_destroy(p);
		return NULL;
	}
	return p;
}

void tt_profile_destroy(struct tt_profile *p)
{
	if (!p)
		return;
	struct profile_private *pp = (struct profile_private *)p;
	for (unsigned i = 0; i < p->nstacks; i++)
		free(p->stacks[i].tids);
	free(p->stacks);
	free(p->threads);
	u64map_fini(&pp->ms.by_hash);
	for (unsigned i = 0; i < pp->ms.arena.nchunks; i++)
		free(pp->ms.arena.chunks[i]);
	free(pp->ms.arena.chunks);
	free(pp->ms.procs);
	free(pp->ms.ends);
	free(pp);
}
