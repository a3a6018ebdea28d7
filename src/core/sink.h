/* SPDX-License-Identifier: MIT */
/*
 * Output files: create one with its header, append one complete zstd frame per
 * flush. One compression context serves every file (the writer is single-threaded),
 * so 200 threads cost no descriptor and one zstd context, not 200 of each.
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

/* Compress src[0..n) as one complete frame (with checksum) into the sink's buffer:
 * *out, *len until the next call. Returns 0 or -errno (-ENOMEM, -EIO). */
int sink_compress(struct sink *s, const void *src, size_t n, const void **out, size_t *len);

/* sink_compress, then append the frame to fd. Returns 0 or -errno. */
int sink_frame(struct sink *s, int fd, const void *src, size_t n);

/* write(2) all of buf, retrying on EINTR and short writes. Returns 0 or -errno. */
int sink_write_all(int fd, const void *buf, size_t n);

/*
 * A file of the tracer's own, by name and identity, with no descriptor held
 * between writes (programs close, sweep and reuse descriptor numbers they did not
 * open; see sink.c): each frame opens it by name, checks device and inode, appends
 * (O_APPEND: whole frames) and closes.
 */
struct sink_file {
	bool created; /* false: none */
	dev_t dev;
	ino_t ino;
	char name[64]; /* in the sink's directory */
};

#define SINK_FILE_NONE ((struct sink_file){.created = false})

/* sink_create, its identity taken, closed. Returns 0 or -errno. */
int sink_file_create(const char *dir, const char *name, enum tt_file_kind kind,
		     struct sink_file *f);

/* sink_compress, then append to f in dir (which must still be the file created).
 * Returns 0 or -errno (-ESTALE: another file has its name now). */
int sink_file_frame(struct sink *s, const char *dir, struct sink_file *f, const void *src,
		    size_t n);

/* Forget f (nothing is held open). */
static inline void sink_file_forget(struct sink_file *f)
{
	*f = SINK_FILE_NONE;
}

/* open(path, flags | O_CLOEXEC, mode) for a moment's use, moved to a number far
 * above the program's (see sink.c). Returns the descriptor, or -1 with errno set
 * (EAGAIN: the program took the number in between; try again). */
int sink_open(const char *path, int flags, mode_t mode);

/* Read up to cap bytes of path from its start (open, read, close). Returns the
 * count or -errno. */
ssize_t sink_read_file(const char *path, char *buf, size_t cap);

#endif /* TT_SINK_H */
