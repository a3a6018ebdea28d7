/* SPDX-License-Identifier: MIT */
/*
 * Output files: create one with its header, append one complete zstd frame per
 * flush. One compression context serves every file (the writer is single-threaded),
 * so 200 threads cost 200 file descriptors, not 200 zstd contexts.
 */
#ifndef TT_SINK_H
#define TT_SINK_H

#include <stddef.h>
#include <zstd.h>

#include "../common/format.h"

struct sink {
	ZSTD_CCtx *cctx;
	void *out;
	size_t out_cap;
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

#endif /* TT_SINK_H */
