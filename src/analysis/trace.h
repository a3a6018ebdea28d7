/* SPDX-License-Identifier: MIT */
/*
 * A trace directory as the offline tools see it: its processes (from .meta: facts,
 * clock anchors, module maps, totals), its threads (one .bin with its .freq), and
 * each thread's exact call-site table. Loading reads every .meta and .freq whole
 * (they are small) and only the first record of each .bin; events are streamed
 * later by merge.c.
 */
#ifndef TT_TRACE_H
#define TT_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tt_module {
	const char *path;
	uint64_t bias, start, end; /* [start, end) runtime; ELF vaddr = addr - bias */
	unsigned build_id_len;
	uint8_t build_id[40];
};

/* The objects loaded from ts on (one MODULES record), sorted by start. */
struct tt_modmap {
	uint64_t ts;
	unsigned n;
	struct tt_module *mods;
};

struct tt_anchor {
	uint64_t ticks, mono_ns, real_ns;
};

struct tt_site {
	uint64_t site; /* return address of the allocation call; 0: unattributed */
	uint64_t count, bytes;
};

struct tt_process {
	int32_t pid, ppid;
	const char *exe;      /* "" when unknown */
	const char *cmdline;  /* arguments joined by spaces */
	const char *exec_exe; /* the last image's, when the process exec'd; else NULL */
	const char *clock;    /* "tsc", "monotonic" */
	const char *mode;     /* sampling mode: "tiered", "all", "poisson" */
	uint64_t min_size, poisson_mean, max_frames;
	bool has_meta;
	bool uncalibrated; /* a thread has a .bin or a .freq without the other */
	unsigned nanchors, nmaps;
	struct tt_anchor *anchors; /* in time order (over all its .meta files) */
	struct tt_modmap *maps;	   /* in time order */
	bool has_end;		   /* PROCESS_END present: tracing stopped cleanly */
	bool last_image_ended;	   /* ... in its last image (the one after every exec) */
	uint64_t end_ticks;	   /* then: when (its last PROCESS_END's clock record) */
	uint64_t end_threads, end_emitted, end_recorded, end_dropped;
	uint64_t end_shed; /* sampled allocations shed under load (0 in older files) */
	uint64_t untraced_allocs, untraced_bytes, untraced_frees, freeset_full;
};

struct tt_thread {
	unsigned proc;	  /* index in tt_trace.procs */
	const char *bin;  /* path; NULL when only the .freq exists */
	const char *freq; /* path; NULL when only the .bin exists */
	int32_t pid, tid;
	char name[32];
	uint64_t start; /* ticks: registration (THREAD record) */
	unsigned nsites;
	struct tt_site *sites;		 /* exact, last cumulative SITE record per site */
	uint64_t freq_count, freq_bytes; /* sums over sites */
	bool freq_truncated;
};

struct tt_trace {
	const char *dir;
	unsigned nprocs, nthreads;
	struct tt_process *procs;
	struct tt_thread *threads; /* sorted by (pid, start, tid) */
	unsigned nnotes;
	char **notes; /* warnings for the report: truncated files, missing .meta */
};

/*
 * Load the trace in dir. Returns a trace (free with tt_trace_destroy) or NULL with
 * "FILE: offset N: what" (or "DIR: what") in err. Truncated files are notes, not
 * errors.
 */
struct tt_trace *tt_trace_open(const char *dir, char *err, size_t errcap);
void tt_trace_destroy(struct tt_trace *t); /* NULL is a no-op */

/* Process index of pid, or -1. */
int tt_trace_find_proc(const struct tt_trace *t, int32_t pid);

/* Append a warning for the report (copied). */
void tt_trace_note(struct tt_trace *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Ticks of process p to nanoseconds since its first clock anchor, using the first
 * and last anchors (the clock is linear: invariant TSC or CLOCK_MONOTONIC). Returns
 * false when the rate is unknown (fewer than two anchors on a TSC clock). */
bool tt_process_ticks_ns(const struct tt_process *p, uint64_t ticks, double *ns);

/* Wall-clock start (ns since the epoch) and duration (ns) of process p; 0 when
 * unknown. */
void tt_process_span(const struct tt_process *p, int64_t *start_real_ns, int64_t *duration_ns);

/* The module of process p holding runtime address addr at time ts (ticks; 0 when
 * unknown: the latest map holding it), or NULL. */
const struct tt_module *tt_process_module(const struct tt_process *p, uint64_t addr, uint64_t ts);

#endif /* TT_TRACE_H */
