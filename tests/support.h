/* SPDX-License-Identifier: MIT */
/* Test helpers: temporary output directories and whole-directory decoding. */
#ifndef TT_TEST_SUPPORT_H
#define TT_TEST_SUPPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Make a fresh directory under $TMPDIR (or /tmp); returns a static path. */
const char *support_tmpdir(const char *tag);

/* Call fn for every file in dir (one level, dot files skipped); -1 if unreadable. */
int support_each_file(const char *dir, void (*fn)(const char *path, void *ctx), void *ctx);

/* Remove a directory and the files in it (one level). */
void support_rmdir(const char *dir);

/* Bytes in the files of dir (one level). */
long long support_dir_bytes(const char *dir);

/* What one thread's .bin and .freq files say. */
struct support_thread {
	int32_t pid, tid;
	char name[32];
	uint64_t allocs, frees, stacks, alloc_bytes;
	uint64_t free_ptr_sum; /* sum of freed pointers, to check identity */
	uint64_t alloc_ptr_sum;
	double weighted_bytes; /* sum of size / probability */
	bool has_end;
	uint64_t end_emitted, end_recorded, end_dropped;
	uint64_t drops_dropped;		 /* last DROPS record */
	uint64_t site_count, site_bytes; /* sum over the last value of every site */
	uint64_t nsites;
	bool stack_ids_ok; /* every alloc named a stack defined before it */
	bool ts_monotonic;
};

struct support_dir {
	size_t nthreads;
	struct support_thread *threads; /* malloc'd; free with support_dir_free */
	size_t nmeta;
	bool process_end_seen;
	uint64_t pe_threads, pe_emitted, pe_recorded, pe_dropped;
	int errors; /* files that failed to decode */
	char first_error[2048];
};

/* Decode every file in dir; returns 0 when all decoded. */
int support_read_dir(const char *dir, struct support_dir *out);
void support_dir_free(struct support_dir *d);

/* The thread entry with this tid, or NULL. */
struct support_thread *support_find_tid(struct support_dir *d, int32_t tid);

/* Read a whole file into malloc'd memory; returns its size or -1. */
long support_slurp(const char *path, unsigned char **data);
/* Write data to path; returns 0 or -1. */
int support_spit(const char *path, const void *data, size_t n);

#endif
