/* SPDX-License-Identifier: MIT */
/*
 * The merge's decode thread: a second thread decodes the .bin files the merge reads
 * (zstd and MessagePack, decode.c) into batches of records ahead of the merge. Each
 * file's records still reach the merge thread in file order; interning and
 * aggregation stay there. Memory: a fixed pool of batches, plus at most two per
 * file the merge has open (so that the file it waits on can always progress).
 */
#ifndef TT_DECODE_THREAD_H
#define TT_DECODE_THREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "decode.h"

#define DTHREAD_RECORDS 2048u /* records per batch */
#define DTHREAD_FRAMES	4096u /* stack frames per batch (>= TT_DECODE_MAX_FRAMES) */

/* A file's records, in file order: only ALLOC, FREE, STACK, DROPS and END (the
 * others are skipped). A STACK record's frames point into the batch. */
struct dthread_batch {
	struct dthread_batch *next; /* in its file's queue or in the free list */
	unsigned n;		    /* records */
	int end;		    /* 0: more batches follow; 1: the file's end; -1: an
				       error after the n records (dthread_error) */
	uint64_t frames[DTHREAD_FRAMES];
	struct tt_record rec[DTHREAD_RECORDS];
};

struct dthread;

/*
 * Start a decode thread for files paths[0..n) (copied), which the merge will open
 * in that order; it decodes a few files ahead of the last one asked for. Returns
 * NULL when the thread or memory cannot be had: the caller decodes itself.
 */
struct dthread *dthread_start(const char *const *paths, unsigned n);

/* Stop and join the thread, free every batch and decoder. NULL is a no-op. The
 * merge thread's batches must have been given back (dthread_close). */
void dthread_stop(struct dthread *t);

/*
 * The next batch of file i (merge thread). done, the previous batch of that file
 * (NULL on the first call), goes back to the pool. Blocks until a batch is ready.
 * Returns it (the caller's until the next call or dthread_close), or NULL when the
 * decode thread ran out of memory. Not to be called again after a batch with end
 * set.
 */
struct dthread_batch *dthread_next(struct dthread *t, unsigned i, struct dthread_batch *done);

/* The merge is done with file i (its end, or giving up): cur (may be NULL) and any
 * batches decoded ahead go back to the pool, and decoding of it stops. */
void dthread_close(struct dthread *t, unsigned i, struct dthread_batch *cur);

/* After a batch of file i with end -1 (or NULL from dthread_next): "offset N:
 * what" (decode.c's words). */
const char *dthread_error(const struct dthread *t, unsigned i);

/* After a batch of file i with end 1: true if the file was cut inside a frame;
 * *offset is where that frame starts (tt_decoder_truncated). */
bool dthread_truncated(const struct dthread *t, unsigned i, uint64_t *offset);

/*
 * Have the decode thread fault in [addr, addr + len) between batches, from the end
 * down (the caller works up from the start: they meet halfway), replacing any
 * earlier request; len 0 only ends the earlier one. The kernel's zeroing of fresh
 * pages then runs on that core. The contents are left alone: the caller may use the
 * memory meanwhile. Returns once no step of an earlier request runs, so the caller
 * may then unmap that memory (dthread_stop ends requests too).
 */
void dthread_prefault(struct dthread *t, void *addr, size_t len);

#endif /* TT_DECODE_THREAD_H */
