/* SPDX-License-Identifier: MIT */
/*
 * libthagtrace public API: a memory-allocation tracer for many-threaded programs.
 * The only public header. Plain C, usable from C++.
 */
#ifndef THAGTRACE_H
#define THAGTRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define THAGTRACE_API __attribute__((visibility("default")))
#else
#define THAGTRACE_API
#endif

#define THAGTRACE_VERSION_MAJOR 0
#define THAGTRACE_VERSION_MINOR 1
#define THAGTRACE_VERSION_PATCH 0
#define THAGTRACE_VERSION_NUMBER                                                                   \
	(THAGTRACE_VERSION_MAJOR * 10000 + THAGTRACE_VERSION_MINOR * 100 + THAGTRACE_VERSION_PATCH)

/* Error codes: every function returning int gives 0 or one of these. */
enum thagtrace_error {
	THAGTRACE_OK = 0,
	THAGTRACE_EINVAL = -1,	   /* a bad argument or configuration value */
	THAGTRACE_ENOMEM = -2,	   /* the tracer could not get memory for itself */
	THAGTRACE_EIO = -3,	   /* output directory or file could not be written */
	THAGTRACE_ESTATE = -4,	   /* not valid now (not started, already started) */
	THAGTRACE_EDROPPED = -5,   /* the event was dropped (ring full) and counted */
	THAGTRACE_EDISABLED = -6,  /* tracing is off (stopped or disabled by a failure) */
	THAGTRACE_ESYSTEM = -7,	   /* a system call the tracer needs failed */
	THAGTRACE_ERROR_LAST = -7, /* the most negative code */
};

/* Sampling modes (docs/format.md and the user guide give the exact rules). */
enum thagtrace_sample_mode {
	THAGTRACE_SAMPLE_ALL = 0,     /* every allocation recorded, probability 1 */
	THAGTRACE_SAMPLE_TIERED = 1,  /* size tiers plus call-site frequency boost */
	THAGTRACE_SAMPLE_POISSON = 2, /* byte-interval sampling with a mean interval */
};

/* How stacks are taken (sampled events only). */
enum thagtrace_unwind {
	THAGTRACE_UNWIND_AUTO = 0,	/* frame pointers; libunwind where the chain breaks */
	THAGTRACE_UNWIND_FP = 1,	/* frame pointers only: cheapest, stops at such code */
	THAGTRACE_UNWIND_LIBUNWIND = 2, /* libunwind (DWARF CFI) always */
};

/*
 * Tracer configuration. Fill it with thagtrace_config_init() (which sets `size` and
 * every default), then change what you need. The struct only grows at the end; the
 * library reads only the first `size` bytes, so old callers keep working.
 */
struct thagtrace_config {
	uint32_t size;		    /* sizeof(struct thagtrace_config) of the caller */
	uint32_t ring_kb;	    /* per-thread ring size in KiB, power of two, >= 4 */
	uint32_t flush_interval_ms; /* writer drains every ring at least this often */
	uint32_t max_frames;	    /* deepest stack kept, 1..THAGTRACE_MAX_FRAMES_LIMIT */
	int32_t zstd_level;	    /* compression level of the output files */
	uint32_t sample_mode;	    /* enum thagtrace_sample_mode */
	uint64_t poisson_mean;	    /* bytes, for THAGTRACE_SAMPLE_POISSON */
	uint64_t min_size;	    /* allocations smaller than this are not recorded */
	char output_dir[4096];	    /* created if missing; must be writable */
	/* Tiered sampling: sizes >= tier_large_bytes are always recorded, sizes >=
	 * tier_medium_bytes at rate_medium, smaller ones at rate_small; a call site's
	 * rate is multiplied by clamp(its count / boost_threshold, 1, boost_max), capped
	 * at 1; a site's first allocation is always recorded. */
	uint64_t tier_large_bytes;  /* 10240 */
	uint64_t tier_medium_bytes; /* 1024 */
	double rate_medium;	    /* 0.10 */
	double rate_small;	    /* 0.01 */
	uint64_t boost_threshold;   /* 1000 allocations */
	double boost_max;	    /* 2 */
	uint64_t seed;		    /* random seed; 0 = from the clock */
	uint32_t unwind;	    /* enum thagtrace_unwind */
	/* The rings of a process's first THAGTRACE_FIRST_THREADS threads, in KiB (a
	 * power of two like ring_kb): a few busy threads get room for the writer's
	 * scheduling delays on a loaded machine, hundreds keep small rings. 0 (the
	 * default here): ring_kb for every thread. Preloaded, 1024 unless
	 * THAGTRACE_RING_KB is set. */
	uint32_t ring_kb_first;
};

#define THAGTRACE_FIRST_THREADS 8

#define THAGTRACE_MAX_FRAMES_LIMIT 256

/* Fill `cfg` with the defaults: output "thagtrace-out", 256 KiB rings, 100 ms flush,
 * 64 frames, zstd level 1, sample mode "tiered" (10 KiB / 1 KiB tiers, 10 % and 1 %,
 * boost up to 2x past 1000 calls). Always succeeds on a non-NULL cfg. */
THAGTRACE_API void thagtrace_config_init(struct thagtrace_config *cfg);

/* Start the tracer: validate cfg (NULL means defaults), create the output directory,
 * write the process file and start the writer thread. Returns 0, THAGTRACE_ESTATE if
 * already running, THAGTRACE_EINVAL for a bad value, THAGTRACE_EIO if the directory
 * cannot be written, or THAGTRACE_ESYSTEM. On failure nothing is left running. */
THAGTRACE_API int thagtrace_start(const struct thagtrace_config *cfg);

/* Stop the tracer: wait for events being recorded right now, drain every ring, write
 * each file's final counters, close every file and join the writer. Harmless when not
 * running (returns 0). Handles stay valid; recording on them returns
 * THAGTRACE_EDISABLED until they are unregistered. Not from a signal handler. */
THAGTRACE_API int thagtrace_stop(void);

/* True between a successful thagtrace_start() and thagtrace_stop(). */
THAGTRACE_API bool thagtrace_is_running(void);

/* A registered thread: its ring, its sampler state and its call-site table. */
struct thagtrace_thread;

/*
 * Register the calling thread under `name` (may be NULL; copied, at most 15 bytes
 * kept). Returns a handle owned by the library, valid until thagtrace_thread_unregister()
 * of it, or NULL with *err (if err is non-NULL) set. The handle must only be used by
 * the thread that registered it. A thread that already has a handle (automatic
 * tracing registered it, or it registered before) gets that one back: each
 * register needs its unregister, and the handle ends with the last. Takes a mutex and makes system
 * calls: not from a signal handler. No TLS destructor is involved: the thread owns the handle.
 * A fork child does not inherit handles (their memory is left out of it): there
 * they must not be used, nor unregistered; the child registers anew.
 */
THAGTRACE_API struct thagtrace_thread *thagtrace_thread_register(const char *name, int *err);

/*
 * Unregister: after this returns the handle must not be used again. Every event it
 * recorded is still written: the writer drains the ring completely, closes the
 * thread's files and frees the handle after an RCU grace period. NULL is a no-op.
 */
THAGTRACE_API void thagtrace_thread_unregister(struct thagtrace_thread *t);

/*
 * Record that the calling thread allocated `size` bytes at `ptr`. The call site is the
 * caller's return address, counted exactly in the thread's frequency table; the
 * event is sampled per the configuration (the probability is recorded with it) and,
 * when kept, its stack is taken by walking frame pointers (depth max_frames).
 * Returns 0 also when the allocation was counted but not sampled.
 * Lock-free, allocation-free, no system call; async-signal-safe (a nested call from a
 * signal handler on the same thread is dropped and counted). Returns 0,
 * THAGTRACE_EDROPPED (ring full, counted), THAGTRACE_EDISABLED, or THAGTRACE_EINVAL
 * for a NULL handle.
 */
THAGTRACE_API int thagtrace_record_alloc(struct thagtrace_thread *t, const void *ptr, size_t size);

/*
 * The same for an allocation the caller sampled itself: `frames` (leaf first, return
 * addresses, `nframes` of them, at most max_frames kept and the rest marked truncated)
 * is its stack and `probability` in (0, 1] the probability it was sampled with,
 * decided before the random draw. Frequencies are not touched: report those with
 * thagtrace_record_site(). Same guarantees and returns as thagtrace_record_alloc().
 */
THAGTRACE_API int thagtrace_record_alloc_sampled(struct thagtrace_thread *t, const void *ptr,
						 size_t size, double probability,
						 const uintptr_t *frames, unsigned nframes);

/* Count one allocation of `size` bytes at call site `site` in the thread's exact
 * frequency table (what thagtrace_record_alloc() does for its own call site). */
THAGTRACE_API int thagtrace_record_site(struct thagtrace_thread *t, uintptr_t site, size_t size);

/* Record that the calling thread freed `ptr` (allocated by any thread).
 * Same guarantees and returns as thagtrace_record_alloc(). */
THAGTRACE_API int thagtrace_record_free(struct thagtrace_thread *t, const void *ptr);

/* Counters of one thread handle, read without stopping it (may lag by one event). */
struct thagtrace_thread_stats {
	uint64_t emitted;  /* events offered to the ring (recorded + dropped + in flight) */
	uint64_t recorded; /* events the writer has taken from the ring */
	uint64_t dropped;  /* events lost because the ring was full (or reentrant) */
};
THAGTRACE_API int thagtrace_thread_stats(const struct thagtrace_thread *t,
					 struct thagtrace_thread_stats *out);

/* Text for an error code; never NULL, static storage. */
THAGTRACE_API const char *thagtrace_strerror(int code);

/* The library's version as "MAJOR.MINOR.PATCH"; static storage. */
THAGTRACE_API const char *thagtrace_version(void);

#ifdef __cplusplus
}
#endif

#endif /* THAGTRACE_H */
