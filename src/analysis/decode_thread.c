/* SPDX-License-Identifier: MIT */
/*
 * The merge's decode thread: which file to decode next, the batch pool, and the
 * hand-over to the merge thread (one mutex, three condition variables; the lock is
 * taken once per batch of a few thousand records, not per record).
 *
 * Which file: of the files the merge reads, one with a batch ready but fewer than
 * DEPTH, the one whose decoded records end earliest (the merge consumes in time
 * order, so that one runs dry first); then files with none ready; then files the
 * merge has not reached yet (up to LOOKAHEAD beyond the last one asked for, one
 * batch each, so that opening a file costs the merge no wait). A file the merge
 * reads with no batch ready may always get one, even beyond the pool: otherwise a
 * pool full of later files' batches would deadlock the merge.
 *
 * The merge thread helps: when the file it needs has no batch ready and nobody is
 * decoding it, it decodes that batch itself instead of waiting; it waits only for
 * a batch the decode thread is busy with. So when decoding is the slower half both
 * threads decode, and when the aggregation is (a large live set) the decode thread
 * keeps ahead alone. Files with no batch ready come last for the decode thread for
 * that reason: the merge would rather find them free than being decoded. Either
 * way one thread at a time decodes a file (busy), in file order.
 *
 * Between batches it also faults in memory the merge asks for (dthread_prefault:
 * the new half of the live table as it doubles), so the kernel zeroes those pages
 * on this core.
 */
#define _GNU_SOURCE
#include "decode_thread.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* Batches in use (ready, being read or decoded) at most, but for the one-per-file
 * guarantee above: 32 of ~144 KiB. */
#define POOL	  32u
#define DEPTH	  4u	      /* batches ready at most per file the merge reads */
#define LOOKAHEAD 2u	      /* files opened before the merge asks for them */
#define WAKE_ROOM 4u	      /* free pool batches that wake an idle decode thread */
#define PF_CHUNK  (16u << 20) /* bytes faulted in per step, between batches */

_Static_assert(DTHREAD_FRAMES >= TT_DECODE_MAX_FRAMES, "a batch holds the deepest stack");

enum stream_state {
	S_WAITING, /* not reached yet */
	S_ACTIVE,  /* being decoded */
	S_DONE,	   /* its last batch is queued; decoder closed */
	S_CLOSED,  /* the merge is done with it */
};

struct stream {
	/* Only the thread that set busy touches these, until it clears busy (and the
	 * merge thread after dthread_stop's join). */
	char *path;
	struct tt_decoder *d;
	bool opened;
	bool has_pending; /* pending (read, its frames still in d) did not fit a batch */
	struct tt_record pending;
	uint64_t last_ts; /* of the last ALLOC or FREE decoded */

	/* Under the lock. */
	enum stream_state state;
	bool merging; /* the merge has asked for it */
	bool busy;    /* a thread is decoding it (outside the lock) */
	unsigned nready;
	uint64_t ahead_ts;		   /* last_ts when its last batch was queued */
	struct dthread_batch *head, *tail; /* ready, in file order */

	/* Written before the file's last batch is queued (under the lock) by the
	 * thread that decoded it; read by the merge thread after it took that batch. */
	bool truncated;
	uint64_t truncated_at;
	char err[600];
};

struct dthread {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t work;  /* the decode thread waits: nothing it may decode */
	pthread_cond_t ready; /* the merge thread waits: its file has no batch ready */
	unsigned n;
	struct stream *s;

	/* Under the lock. */
	unsigned *active, nactive; /* ACTIVE streams, in no order */
	unsigned reached;	   /* streams [0, reached) have left WAITING */
	unsigned asked;		   /* 1 + the highest file the merge asked for */
	int waiting;		   /* the file the merge waits on; -1: none */
	bool idle;		   /* the decode thread waits on work */
	bool stop, failed;	   /* failed: no memory for a batch */
	unsigned in_use;	   /* batches not in the free list */
	struct dthread_batch *free;

	/* The prefault job, under the lock: [pf_start, pf_end) still to fault in,
	 * from the end down; pf_running while a step runs outside the lock (pf_done
	 * is then signalled). */
	char *pf_start, *pf_end;
	bool pf_running;
	pthread_cond_t pf_done;
};

static void put_free(struct dthread *t, struct dthread_batch *b)
{
	b->next = t->free;
	t->free = b;
	t->in_use--;
}

/* A batch from the pool, or NULL: the caller allocates one outside the lock. */
static struct dthread_batch *get_free(struct dthread *t)
{
	struct dthread_batch *b = t->free;
	if (b)
		t->free = b->next;
	t->in_use++;
	return b;
}

static void deactivate(struct dthread *t, unsigned i)
{
	for (unsigned k = 0; k < t->nactive; k++)
		if (t->active[k] == i) {
			t->active[k] = t->active[--t->nactive];
			return;
		}
}

static bool may_decode(const struct dthread *t, const struct stream *s)
{
	if (s->state != S_ACTIVE || s->busy || s->nready >= DEPTH)
		return false;
	if (!s->merging) /* read ahead of the merge: one batch, from the pool */
		return !s->nready && t->in_use < POOL;
	return t->in_use < POOL || !s->nready;
}

/* Streams up to LOOKAHEAD past the last one asked for become ACTIVE. Under the
 * lock. */
static void reach(struct dthread *t)
{
	unsigned limit = t->asked + LOOKAHEAD < t->n ? t->asked + LOOKAHEAD : t->n;
	for (; t->reached < limit; t->reached++) {
		if (t->s[t->reached].state != S_WAITING)
			continue; /* closed by the merge before it got here */
		t->s[t->reached].state = S_ACTIVE;
		t->active[t->nactive++] = t->reached;
	}
}

/* Whether the decode thread should rather decode a batch of s than of b (see the
 * top of the file). */
static bool better(const struct stream *s, const struct stream *b)
{
	if (s->merging != b->merging)
		return s->merging;
	if (!s->nready != !b->nready)
		return s->nready;
	return s->ahead_ts < b->ahead_ts;
}

/* The stream to decode a batch of next, or NULL; *prefault: a prefault step
 * first. Under the lock. (The file the merge waits on is busy: see above.) */
static struct stream *pick(struct dthread *t, bool *prefault)
{
	reach(t);
	*prefault = false;
	struct stream *best = NULL;
	for (unsigned k = 0; k < t->nactive; k++) {
		struct stream *s = &t->s[t->active[k]];
		if (!may_decode(t, s))
			continue;
		if (!best || better(s, best))
			best = s;
	}
	/* Prefaulting before read-ahead, unless a file the merge reads ran dry. */
	if (t->pf_start < t->pf_end && (!best || !best->merging || best->nready))
		*prefault = true;
	return best;
}

/* One prefault step (entered and left under the lock). */
static void prefault_step(struct dthread *t)
{
	size_t len = (size_t)(t->pf_end - t->pf_start);
	len = len < PF_CHUNK ? len : PF_CHUNK;
	char *a = t->pf_end - len;
	t->pf_end = a;
	t->pf_running = true;
	pthread_mutex_unlock(&t->lock);
	/* Faults the pages in without changing what they hold, so the merge may be
	 * writing there already. Kernels before 5.14 refuse: then nothing is done. */
	bool ok = madvise(a, len, MADV_POPULATE_WRITE) == 0;
	pthread_mutex_lock(&t->lock);
	t->pf_running = false;
	if (!ok)
		t->pf_start = t->pf_end = NULL;
	pthread_cond_broadcast(&t->pf_done);
}

/* Queue b, just decoded, as s's next batch. Under the lock. */
static void publish(struct dthread *t, struct stream *s, struct dthread_batch *b)
{
	b->next = NULL;
	if (s->tail)
		s->tail->next = b;
	else
		s->head = b;
	s->tail = b;
	s->nready++;
	s->ahead_ts = s->last_ts;
	if (b->end) {
		s->state = S_DONE;
		deactivate(t, (unsigned)(s - t->s));
	}
	if (t->waiting == (int)(s - t->s))
		pthread_cond_signal(&t->ready);
}

/* Decode s's next records into b (outside the lock). */
static void decode_batch(struct stream *s, struct dthread_batch *b)
{
	unsigned used = 0; /* of b->frames */
	b->n = 0;
	b->end = 0;
	if (!s->opened) {
		s->opened = true;
		if (!(s->d = tt_decoder_open(s->path, s->err, sizeof(s->err)))) {
			b->end = -1;
			return;
		}
	}
	while (b->n < DTHREAD_RECORDS) {
		struct tt_record *rec = &s->pending;
		if (!s->has_pending) {
			int rc = tt_decoder_next(s->d, rec);
			if (rc <= 0) {
				if (rc < 0)
					snprintf(s->err, sizeof(s->err), "%s",
						 tt_decoder_error(s->d));
				else
					s->truncated = tt_decoder_truncated(s->d, &s->truncated_at);
				b->end = rc < 0 ? -1 : 1;
				tt_decoder_destroy(s->d);
				s->d = NULL;
				return;
			}
			/* The merge reads only these (merge.c, fill). */
			if (rec->tag != TT_REC_ALLOC && rec->tag != TT_REC_FREE &&
			    rec->tag != TT_REC_STACK && rec->tag != TT_REC_DROPS &&
			    rec->tag != TT_REC_END && rec->tag != TT_REC_NAME)
				continue;
		}
		struct tt_record *out = &b->rec[b->n];
		*out = *rec;
		if (rec->tag == TT_REC_ALLOC)
			s->last_ts = rec->alloc.ts;
		else if (rec->tag == TT_REC_FREE)
			s->last_ts = rec->free.ts;
		else if (rec->tag == TT_REC_STACK) {
			unsigned nf = rec->stack.nframes;
			if (used + nf > DTHREAD_FRAMES) {
				s->has_pending = true; /* the next batch starts with it */
				return;
			}
			memcpy(b->frames + used, rec->stack.frames, nf * sizeof(*b->frames));
			out->stack.frames = b->frames + used;
			used += nf;
		}
		s->has_pending = false;
		b->n++;
	}
}

/* With the lock held and s marked for us: decode s's next batch outside the lock
 * (a pooled batch, or a new one when the pool is out). NULL, with the run marked
 * failed, when there is no memory for one. */
static struct dthread_batch *decode_next(struct dthread *t, struct stream *s)
{
	struct dthread_batch *b = get_free(t);
	s->busy = true;
	pthread_mutex_unlock(&t->lock);
	if (!b)
		b = malloc(sizeof(*b));
	if (b)
		decode_batch(s, b);
	pthread_mutex_lock(&t->lock);
	s->busy = false;
	if (!b) {
		t->in_use--;
		t->failed = true;
	}
	return b;
}

static void *decode_main(void *arg)
{
	struct dthread *t = arg;
	pthread_mutex_lock(&t->lock);
	while (!t->stop) {
		bool prefault;
		struct stream *s = pick(t, &prefault);
		if (prefault) {
			prefault_step(t);
			continue;
		}
		if (!s) {
			t->idle = true;
			pthread_cond_wait(&t->work, &t->lock);
			t->idle = false;
			continue;
		}
		struct dthread_batch *b = decode_next(t, s);
		if (!b) {
			pthread_cond_signal(&t->ready);
			break;
		}
		if (s->state == S_CLOSED) { /* the merge gave up on it meanwhile */
			put_free(t, b);
			tt_decoder_destroy(s->d);
			s->d = NULL;
			continue;
		}
		publish(t, s, b);
	}
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

struct dthread *dthread_start(const char *const *paths, unsigned n)
{
	struct dthread *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->n = n;
	t->waiting = -1;
	t->s = calloc(n ? n : 1, sizeof(*t->s));
	t->active = malloc((n ? n : 1) * sizeof(*t->active));
	bool ok = t->s && t->active;
	for (unsigned i = 0; ok && i < n; i++)
		ok = (t->s[i].path = strdup(paths[i])) != NULL;
	if (!ok)
		goto fail;
	if (pthread_mutex_init(&t->lock, NULL))
		goto fail;
	if (pthread_cond_init(&t->work, NULL)) {
		pthread_mutex_destroy(&t->lock);
		goto fail;
	}
	if (pthread_cond_init(&t->ready, NULL)) {
		pthread_cond_destroy(&t->work);
		pthread_mutex_destroy(&t->lock);
		goto fail;
	}
	if (pthread_cond_init(&t->pf_done, NULL)) {
		pthread_cond_destroy(&t->ready);
		pthread_cond_destroy(&t->work);
		pthread_mutex_destroy(&t->lock);
		goto fail;
	}
	if (pthread_create(&t->thread, NULL, decode_main, t) == 0)
		return t;
	pthread_cond_destroy(&t->pf_done);
	pthread_cond_destroy(&t->ready);
	pthread_cond_destroy(&t->work);
	pthread_mutex_destroy(&t->lock);
fail:
	for (unsigned i = 0; t->s && i < n; i++)
		free(t->s[i].path);
	free(t->s);
	free(t->active);
	free(t);
	return NULL;
}

void dthread_stop(struct dthread *t)
{
	if (!t)
		return;
	pthread_mutex_lock(&t->lock);
	t->stop = true;
	pthread_cond_signal(&t->work);
	pthread_mutex_unlock(&t->lock);
	pthread_join(t->thread, NULL);
	for (unsigned i = 0; i < t->n; i++) {
		struct stream *s = &t->s[i];
		while (s->head) {
			struct dthread_batch *b = s->head;
			s->head = b->next;
			free(b);
		}
		tt_decoder_destroy(s->d);
		free(s->path);
	}
	while (t->free) {
		struct dthread_batch *b = t->free;
		t->free = b->next;
		free(b);
	}
	pthread_cond_destroy(&t->pf_done);
	pthread_cond_destroy(&t->ready);
	pthread_cond_destroy(&t->work);
	pthread_mutex_destroy(&t->lock);
	free(t->s);
	free(t->active);
	free(t);
}

struct dthread_batch *dthread_next(struct dthread *t, unsigned i, struct dthread_batch *done)
{
	struct stream *s = &t->s[i];
	struct dthread_batch *b = NULL;
	pthread_mutex_lock(&t->lock);
	if (done)
		put_free(t, done);
	if (!s->merging) {
		s->merging = true;
		if (i + 1 > t->asked)
			t->asked = i + 1;
		reach(t);
	}
	while (!s->head && !t->failed) {
		if (s->state == S_ACTIVE && !s->busy) {
			/* Nothing ready and nobody on it: decode it here. */
			b = decode_next(t, s);
			if (!b)
				break;
			publish(t, s, b);
			b = NULL;
			continue;
		}
		t->waiting = (int)i; /* the decode thread is on it */
		pthread_cond_wait(&t->ready, &t->lock);
	}
	t->waiting = -1;
	if (s->head) {
		b = s->head;
		if (!(s->head = b->next))
			s->tail = NULL;
		s->nready--;
	}
	/* Wake an idle decode thread when this file ran dry, or when there is room for a
	 * few batches (not for each one: a wake-up costs more than it gains then). */
	if (t->idle && (!s->nready || (t->in_use + WAKE_ROOM <= POOL && s->nready + 2 <= DEPTH)))
		pthread_cond_signal(&t->work);
	pthread_mutex_unlock(&t->lock);
	return b;
}

void dthread_close(struct dthread *t, unsigned i, struct dthread_batch *cur)
{
	struct stream *s = &t->s[i];
	pthread_mutex_lock(&t->lock);
	if (cur)
		put_free(t, cur);
	while (s->head) {
		struct dthread_batch *b = s->head;
		s->head = b->next;
		put_free(t, b);
	}
	s->tail = NULL;
	s->nready = 0;
	if (s->state == S_ACTIVE)
		deactivate(t, i);
	s->state = S_CLOSED;
	if (t->idle)
		pthread_cond_signal(&t->work);
	pthread_mutex_unlock(&t->lock);
}

const char *dthread_error(const struct dthread *t, unsigned i)
{
	return t->s[i].err[0] ? t->s[i].err : "out of memory";
}

bool dthread_truncated(const struct dthread *t, unsigned i, uint64_t *offset)
{
	if (offset)
		*offset = t->s[i].truncated_at;
	return t->s[i].truncated;
}

void dthread_prefault(struct dthread *t, void *addr, size_t len)
{
	pthread_mutex_lock(&t->lock);
	while (t->pf_running)
		pthread_cond_wait(&t->pf_done, &t->lock);
	t->pf_start = addr;
	t->pf_end = (char *)addr + len;
	if (len && t->idle)
		pthread_cond_signal(&t->work);
	pthread_mutex_unlock(&t->lock);
}
