/* SPDX-License-Identifier: MIT */
/* zstd frames to files. */
#include "sink.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "thagtrace.h"

int sink_init(struct sink *s, int level)
{
	s->cctx = ZSTD_createCCtx();
	s->out = NULL;
	s->out_cap = 0;
	if (!s->cctx)
		return THAGTRACE_ENOMEM;
	ZSTD_CCtx_setParameter(s->cctx, ZSTD_c_compressionLevel, level);
	ZSTD_CCtx_setParameter(s->cctx, ZSTD_c_checksumFlag, 1);
	ZSTD_CCtx_setParameter(s->cctx, ZSTD_c_contentSizeFlag, 1);
	return 0;
}

void sink_fini(struct sink *s)
{
	ZSTD_freeCCtx(s->cctx);
	free(s->out);
	s->cctx = NULL;
	s->out = NULL;
	s->out_cap = 0;
}

int sink_write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (w == 0)
			return -EIO;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int sink_create(const char *dir, const char *name, enum tt_file_kind kind)
{
	char path[4096 + 256];
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
		return -ENAMETOOLONG;
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_APPEND, 0644);
	if (fd < 0)
		return -errno;
	unsigned char hdr[TT_HEADER_SIZE];
	tt_header_encode(hdr, kind);
	int rc = sink_write_all(fd, hdr, sizeof(hdr));
	if (rc != 0) {
		close(fd);
		unlink(path);
		return rc;
	}
	return fd;
}

int sink_frame(struct sink *s, int fd, const void *src, size_t n)
{
	size_t bound = ZSTD_compressBound(n);
	if (bound > s->out_cap) {
		void *p = realloc(s->out, bound);
		if (!p)
			return -ENOMEM;
		s->out = p;
		s->out_cap = bound;
	}
	size_t c = ZSTD_compress2(s->cctx, s->out, s->out_cap, src, n);
	if (ZSTD_isError(c))
		return -EIO;
	return sink_write_all(fd, s->out, c);
}
