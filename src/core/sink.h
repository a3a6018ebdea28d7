/* SPDX-License-Identifier: MIT */
/*
 * Output files: create one with its header, append one complete zstd frame per
 * flush. One compression context serves every file (the writer is single-threaded),
 * so 200 threads cost 200 file descriptors, not 200 zstd contexts.
 */
#ifndef TT_SINK_H
#define TT_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <zstd.h>

#include "../common/format.h"
#include "pagemem.h"

struct sink {
	ZSTD_CCtx *cctx;
	struct pagemem_zstd mem; /* the context's allocator */
	void *out;		 /* pagemem */
	size_t out_cap;
	uint64_t frames, bytes_in, bytes_out; /* what it compressed, for the debug summary */
};

/* Returns 0 or THAGTRACE_ENOMEM. */
int sink_init(struct sink *s, int level);
void sink_fini(struct sink *s);

/* Create dir/name exclusively (O_EXCL) and write the file header for `kind`.
 * Returns the fd, or -errno (-EEXIST when the name is taken). */
int sink_create(const char *dir, const char *name, enum tt_file_kind kind);

/* Compress src[0..n) as one complete frame (with checksum) and append it to fd.
 * Returns 0 or -errno. */
int sink_frame(struct sink *s, int fd, const void *src, size_t n);

/* write(2) all of buf, retrying on EINTR and short writes. Returns 0 or -errno. */
int sink_write_all(int fd, const void *buf, size_t n);

/*
 * A file of the tracer's own, kept apart from the program's descriptors. Programs
 * close descriptors they did not open (daemons close everything above 2, shells
 * close what they think are stale pipes) and reuse the numbers. The descriptor is
 * moved high (F_DUPFD_CLOEXEC at 512 or more), and before each write it must still
 * be this file (device and inode, one fstat): if it is not, the number belongs to
 * the program now and is never written or closed by us again; the file is reopened
 * by name (O_APPEND: whole frames, the stream goes on).
 */
struct sink_file {
	int fd; /* -1: none */
	dev_t dev;
	ino_t ino;
	char name[64]; /* in the sink's directory */
};

#define SINK_FILE_NONE ((struct sink_file){.fd = -1})

/* sink_create, then the move and the identity. Returns 0 or -errno. */
int sink_file_create(const char *dir, const char *name, enum tt_file_kind kind,
		     struct sink_file *f);

/* sink_frame to f, checked (and reopened in dir if the program took the number).
 * Returns 0 or -errno. */
int sink_file_frame(struct sink *s, const char *dir, struct sink_file *f, const void *src,
		    size_t n);

/* Open path read-only as one of ours (moved high, identity kept, closed in a fork
 * child like the rest; no name to reopen it by). Returns 0 or -errno. */
int sink_file_open_read(const char *path, struct sink_file *f);

/* Is f's descriptor still the file it was opened on (the program may have closed
 * it and reused the number)? */
bool sink_file_ours(const struct sink_file *f);

/* Close f if its descriptor is still ours; f becomes SINK_FILE_NONE. */
void sink_file_close(struct sink_file *f);

/* In a fork child: close every descriptor a sink_file held in the parent (if still
 * that file), reading only the table sink.c keeps of them; the parent's sink_files
 * are to be forgotten (SINK_FILE_NONE), not closed. */
void sink_files_fork_child(void);

#endif /* TT_SINK_H */
