/* SPDX-License-Identifier: MIT */
/*
 * The merge: every thread's events of a trace in time order across threads and
 * processes, aggregated per distinct stack (frames, not per-file ids): estimated
 * bytes and counts allocated (sum of size/p and 1/p with their variances), live
 * bytes at the end, live bytes at the global peak; per-thread and size-histogram
 * figures; drops. Memory: the distinct stacks, the live sampled allocations and
 * one decoder per thread whose lifetime overlaps the current time (plus, with the
 * decode thread, a fixed pool of decoded batches and one or two per open file).
 */
#ifndef TT_MERGE_H
#define TT_MERGE_H

#include <stdbool.h>
#include <stdint.h>

#include "../common/format.h"
#include "interval.h"
#include "trace.h"

#define TT_Z95		1.959963984540054 /* the normal quantile of a 95 % interval */
#define TT_HIST_BUCKETS 40 /* sizes [2^i, 2^(i+1)), the first from 0, the last open */

struct tt_stack {
	unsigned proc; /* index in tt_trace.procs */
	unsigned nframes;
	uint32_t flags;		/* TT_STACK_TRUNCATED */
	const uint64_t *frames; /* leaf first; frames[0] is the call site */
	uint64_t first_ts;	/* first allocation from it (module map lookup) */
	bool synthetic;		/* made from a .freq site that no sample reached */
	uint64_t modkey;	/* the objects its frames were in (see tt_profile_stack) */

	/* Sums over its recorded allocations (interval.h): bytes (x = size), calls
	 * (x = 1); and over those of them still live. */
	struct tt_sums sb, sc, live_b, live_c;
	uint64_t samples, sampled_bytes;

	/* After estimate.c: estimates of the true totals with 95 % intervals. */
	double alloc_bytes, alloc_bytes_lo, alloc_bytes_hi;
	double alloc_count, alloc_count_lo, alloc_count_hi;
	double live_bytes, live_bytes_lo, live_bytes_hi,
	    live_count;		       /* still allocated at the end */
	double peak_bytes, peak_count; /* live at the global peak */

	unsigned nthreads; /* distinct threads that allocated from it */
	int32_t *tids;	   /* the first TT_STACK_TIDS of them */

	/* merge.c's bookkeeping */
	uint32_t mod_epoch, last_file;
	struct tt_sums peak_b, peak_c; /* live_b and live_c at the latest peak */
	bool gone;		       /* its process has ended in the timeline */
};
#define TT_STACK_TIDS 16

struct tt_thread_stats {
	bool selected;		 /* passes the --pid / --thread filter */
	uint64_t samples, frees; /* ALLOC and FREE records */
	uint64_t emitted, recorded, dropped, dropped_bytes;
	uint64_t shed; /* sampled allocations shed under load (not recorded, not dropped) */
	bool has_end, truncated;
	uint64_t end_ts;
};

struct tt_hist_bucket {
	uint64_t min, max;   /* sizes [min, max] */
	double count, bytes; /* estimates (sum of 1/p, size/p) */
	uint64_t samples;
};

struct tt_filter {
	int32_t pid; /* 0: every process */
	int32_t tid; /* 0: every thread */
};

struct tt_profile {
	struct tt_trace *trace; /* not owned */
	struct tt_filter filter;
	unsigned nstacks;
	struct tt_stack *stacks;
	struct tt_thread_stats *threads; /* parallel to trace->threads */
	struct tt_hist_bucket hist[TT_HIST_BUCKETS];

	/* Totals over the selection (estimates unless said otherwise). */
	double alloc_bytes, alloc_bytes_lo, alloc_bytes_hi;
	double alloc_count, alloc_count_lo, alloc_count_hi;
	double live_bytes, live_bytes_lo, live_bytes_hi, live_count;
	/* The peak: the moment the live total's 95 % low bound was highest (a
	 * noisy curve's own maximum sits above the truth), the estimate there, and
	 * around it that moment's half-width, reaching up to the highest high bound
	 * of any moment. */
	double peak_bytes, peak_bytes_lo, peak_bytes_hi, peak_count;
	uint64_t peak_ts;   /* ticks of the peak */
	unsigned peak_proc; /* the process whose clock peak_ts is on */
	uint64_t samples, sampled_bytes, frees_matched, frees_unmatched;
	uint64_t exact_calls, exact_bytes; /* from .freq (selected threads) */
	uint64_t dropped, dropped_bytes, untraced_allocs, untraced_bytes, freeset_full;
	uint64_t shed;		       /* sampled allocations shed under load (shed.h) */
	uint64_t events;	       /* ALLOC + FREE records read */
	uint64_t first_ts, last_ts;    /* over the events */
	unsigned last_proc;	       /* the process whose clock last_ts is on */
	unsigned nthreads, nprocesses; /* selected */
	unsigned calibrated_sites, uncalibrated_stacks;
};

/* Progress callback: events so far, thread files finished, thread files in all. */
typedef void (*tt_progress_fn)(uint64_t events, unsigned files_done, unsigned files, void *ctx);

/*
 * Read every .bin of trace in time order and aggregate, then calibrate and estimate
 * (estimate.c). Returns a profile (free with tt_profile_destroy) or NULL with
 * "FILE: offset N: what" in err. progress may be NULL. Decoding runs on a second
 * thread (decode_thread.c) when the process may use two CPUs, unless the
 * environment says THAGTRACE_MERGE_THREADS=1 (2 asks for it regardless); the
 * result, errors included, is the same either way. Calls progress on the calling
 * thread.
 */
struct tt_profile *tt_profile_build(struct tt_trace *trace, const struct tt_filter *filter,
				    tt_progress_fn progress, void *progress_ctx, char *err,
				    size_t errcap);
void tt_profile_destroy(struct tt_profile *p); /* NULL is a no-op */

/* Intern a stack (merge.c): the index of the stack with these frames in process
 * proc and these objects under them (modkey: merge.c's modules_key, 0 for a call
 * site alone), created when new; -1 when out of memory. */
int tt_profile_stack(struct tt_profile *p, unsigned proc, const uint64_t *frames, unsigned nframes,
		     uint32_t flags, uint64_t modkey);

/* estimate.c: calibrate each stack's HT sums to its call site's exact totals and
 * fill the alloc_* estimates and intervals, the totals, and synthetic stacks for
 * sites no sample reached. Returns 0 or -1 (memory). */
int tt_estimate(struct tt_profile *p);

#endif /* TT_MERGE_H */
