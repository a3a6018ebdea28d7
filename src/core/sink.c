/* SPDX-License-Identifier: MIT */
/* zstd frames to files. */
#include "sink.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd_errors.h>

#include "../common/log.h"
#include "pagemem.h"
#include "thagtrace.h"

int sink_init(struct sink *s, int level)
{
	/* The context, its workspace and the frame buffer are mapped, not malloc'd:
	 * see pagemem.h for what they did to the program's heap through malloc. */
	s->cctx = ZSTD_createCCtx_advanced(pagemem_zstd_mem(&s->mem));
	s->out = NULL;
	s->out_cap = 0;
	s->frames = s->bytes_in = s->bytes_out = 0;
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
	pagemem_zstd_fini(&s->mem);
	pagemem_free(s->out);
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

#define PATH_CAP (4096 + 256)

/* dir/name into out[PATH_CAP]: 0, or -ENAMETOOLONG. */
static int join_path(char *out, const char *dir, const char *name)
{
	return (size_t)snprintf(out, PATH_CAP, "%s/%s", dir, name) >= PATH_CAP ? -ENAMETOOLONG : 0;
}

int sink_create(const char *dir, const char *name, enum tt_file_kind kind)
{
	char path[PATH_CAP];
	if (join_path(path, dir, name) != 0)
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

int sink_compress(struct sink *s, const void *src, size_t n, const void **out, size_t *len)
{
	size_t bound = ZSTD_compressBound(n);
	if (bound > s->out_cap) {
		void *p = pagemem_realloc(s->out, bound);
		if (!p)
			return -ENOMEM;
		s->out = p;
		s->out_cap = bound;
	}
	size_t c = ZSTD_compress2(s->cctx, s->out, s->out_cap, src, n);
	if (ZSTD_isError(c))
		return ZSTD_getErrorCode(c) == ZSTD_error_memory_allocation ? -ENOMEM : -EIO;
	s->frames++;
	s->bytes_in += n;
	s->bytes_out += c;
	*out = s->out;
	*len = c;
	return 0;
}

int sink_frame(struct sink *s, int fd, const void *src, size_t n)
{
	const void *out;
	size_t len;
	int rc = sink_compress(s, src, n, &out, &len);
	return rc != 0 ? rc : sink_write_all(fd, out, len);
}

/*
 * A file of ours holds no descriptor between writes: each frame opens the file by
 * name, checks it is the one created (device and inode), appends and closes.
 * Programs close descriptors they did not open (daemons sweep everything above 2,
 * shells close what they think are stale pipes) and put their own files on the
 * numbers (dup2 onto a fixed number, close(1) then open): a descriptor kept across
 * passes was written after the program had reused its number (its own file got a
 * zstd frame), closed under it, and counted against its RLIMIT_NOFILE (two a live
 * thread: 600 threads left a program of 1024 descriptors one). Now a number is
 * ours only between an open and the close two calls later, under the writer's pass
 * lock or the lifecycle lock, so never across a fork. An open takes the lowest
 * free number: one of 0-2 (a program about to reopen stdout there) is moved above
 * them at once.
 */
int sink_open(const char *path, int flags)
{
	int fd = open(path, flags | O_CLOEXEC);
	if (fd < 0 || fd > 2)
		return fd;
	int hi = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	close(fd);
	return hi;
}

static bool same_file(int fd, const struct sink_file *f)
{
	struct stat st;
	return fstat(fd, &st) == 0 && st.st_dev == f->dev && st.st_ino == f->ino;
}

int sink_file_create(const char *dir, const char *name, enum tt_file_kind kind, struct sink_file *f)
{
	*f = SINK_FILE_NONE;
	if (strlen(name) >= sizeof(f->name))
		return -ENAMETOOLONG;
	int fd = sink_create(dir, name, kind);
	if (fd < 0)
		return fd;
	struct stat st;
	int rc = fstat(fd, &st) == 0 ? 0 : -errno;
	close(fd);
	if (rc != 0)
		return rc;
	f->created = true;
	f->dev = st.st_dev;
	f->ino = st.st_ino;
	snprintf(f->name, sizeof(f->name), "%s", name);
	return 0;
}

/* Open f by name for appending, as the file it was created as. Returns the
 * descriptor or -errno (-ESTALE: the name is another file's now). */
static int open_append(const char *dir, const struct sink_file *f)
{
	char path[PATH_CAP];
	if (join_path(path, dir, f->name) != 0)
		return -ENAMETOOLONG;
	int fd = sink_open(path, O_WRONLY | O_APPEND);
	if (fd < 0)
		return -errno;
	if (!same_file(fd, f)) {
		close(fd);
		return -ESTALE; /* replaced by another file of that name */
	}
	return fd;
}

int sink_file_frame(struct sink *s, const char *dir, struct sink_file *f, const void *src, size_t n)
{
	if (!f->created)
		return -EBADF;
	/* Compressed first: the descriptor is then ours for an open, a write and a
	 * close. A program that sweeps descriptors in that moment costs one retry. */
	const void *out;
	size_t len;
	int rc = sink_compress(s, src, n, &out, &len);
	if (rc != 0)
		return rc;
	for (int attempt = 0;; attempt++) {
		int fd = open_append(dir, f);
		if (fd < 0)
			return fd;
		rc = sink_write_all(fd, out, len);
		close(fd);
		if (rc != -EBADF || attempt == 1)
			return rc;
	}
}

ssize_t sink_read_file(const char *path, char *buf, size_t cap)
{
	int fd = sink_open(path, O_RDONLY);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, cap);
	int e = errno;
	close(fd);
	return n < 0 ? -e : n;
}
