/* SPDX-License-Identifier: MIT */
/* zstd frames to files. */
#include "sink.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
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

/* Tries when a program closes our descriptor between our calls (a daemon sweeping
 * every number in a loop): each retry is an open, a check and a write. */
#define SWEEP_RETRIES 8

/*
 * A file of ours holds no descriptor between writes: each frame opens the file by
 * name, checks it is the one created (device and inode), appends and closes.
 * Programs close descriptors they did not open (daemons sweep everything above 2,
 * shells close what they think are stale pipes) and put their own files on the
 * numbers (dup2 onto a fixed number, close(1) then open): a descriptor kept across
 * passes was written after the program had reused its number (its own file got a
 * zstd frame), closed under it, and counted against its RLIMIT_NOFILE (two a live
 * thread: 600 threads left a program of 1024 descriptors one). Now a number is
 * ours from an open to the close a few calls later, under the writer's pass lock
 * or the lifecycle lock, so never across a fork.
 *
 * An open takes the lowest free number, the one the program's next open gets (a
 * program that swept its descriptors reopens its files there at once): ours is
 * moved at once to a number far above (F_DUPFD_CLOEXEC, high_base), and the low
 * one is closed only if it is still the file opened (the name's device and inode,
 * then kcmp): if the program closed it and opened its own file there in between,
 * the number is the program's and stays open. A descriptor closed under us, or
 * swapped for the program's file (dup2), is never closed by us: a retry.
 */
static int high_base(void)
{
	/* Near the top of the first 4096 (programs dup2 onto numbers of their own
	 * choosing, usually low: 10, 255, 1024...; the table is not grown further,
	 * each fork copies it), below a lower limit. */
	struct rlimit rl;
	rlim_t top = 4096;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < top)
		top = rl.rlim_cur;
	return top > 512 ? (int)(top - 192) : top >= 64 ? (int)(top / 2) : 3;
}

/* Are descriptors a and b one open file (b a dup of a)? 1 yes, 0 no (or either is
 * closed), -1 cannot tell (no kcmp here). */
static int same_description(int a, int b)
{
	pid_t me = getpid();
	long r = syscall(SYS_kcmp, me, me, KCMP_FILE, a, b);
	if (r == 0)
		return 1;
	return r > 0 || errno == EBADF ? 0 : -1;
}

/* sink_open; *st: the file's status. With `expect`, a file that is it needs no
 * look at the name (the program's file cannot be ours). */
static int open_high(const char *path, int flags, mode_t mode, const struct sink_file *expect,
		     struct stat *st)
{
	int fd = open(path, flags | O_CLOEXEC, mode);
	if (fd < 0)
		return -1;
	int hi = fcntl(fd, F_DUPFD_CLOEXEC, high_base());
	if (hi < 0)
		return fstat(fd, st) == 0 ? fd : (close(fd), -1); /* no room up there: stay */
	/* Is what we duplicated the file at path (else the low number was the
	 * program's by then: ours was closed by the program; leave its own)? */
	struct stat b;
	if (fstat(hi, st) != 0 ||
	    (!(expect && st->st_dev == expect->dev && st->st_ino == expect->ino) &&
	     (stat(path, &b) != 0 || st->st_dev != b.st_dev || st->st_ino != b.st_ino))) {
		close(hi);
		errno = EAGAIN;
		return -1;
	}
	/* And is the low number still it, a moment later? One call (kcmp), then the
	 * close: the least time for the program to take the number between them. */
	if (same_description(fd, hi) != 0)
		close(fd);
	return hi;
}

int sink_open(const char *path, int flags, mode_t mode)
{
	struct stat st;
	return open_high(path, flags, mode, NULL, &st);
}

/* sink_create of path; *st: the new file's status. */
static int create_file(const char *path, enum tt_file_kind kind, struct stat *st)
{
	int fd = open_high(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND, 0644, NULL, st);
	if (fd < 0) {
		int e = errno;
		if (e == EAGAIN)
			unlink(path); /* created, then its number taken: see sink_open */
		return -e;
	}
	unsigned char hdr[TT_HEADER_SIZE];
	tt_header_encode(hdr, kind);
	int rc = sink_write_all(fd, hdr, sizeof(hdr));
	if (rc != 0) {
		if (rc != -EBADF) /* else closed under us: the number is not ours */
			close(fd);
		unlink(path);
		return rc;
	}
	return fd;
}

int sink_create(const char *dir, const char *name, enum tt_file_kind kind)
{
	char path[PATH_CAP];
	struct stat st;
	return join_path(path, dir, name) != 0 ? -ENAMETOOLONG : create_file(path, kind, &st);
}

int sink_file_create(const char *dir, const char *name, enum tt_file_kind kind, struct sink_file *f)
{
	*f = SINK_FILE_NONE;
	char path[PATH_CAP];
	if (strlen(name) >= sizeof(f->name) || join_path(path, dir, name) != 0)
		return -ENAMETOOLONG;
	int fd;
	struct stat st;
	for (int attempt = 0;; attempt++) {
		fd = create_file(path, kind, &st);
		if ((fd != -EAGAIN && fd != -EBADF) || attempt == SWEEP_RETRIES)
			break; /* create_file removed what it made of the file */
	}
	if (fd < 0)
		return fd;
	close(fd);
	f->created = true;
	f->dev = st.st_dev;
	f->ino = st.st_ino;
	snprintf(f->name, sizeof(f->name), "%s", name);
	return 0;
}

/* Open f (path) for appending, as the file it was created as; *size: its size.
 * Returns the descriptor or -errno (-ESTALE: the name is another file's now). */
static int open_append(const char *path, const struct sink_file *f, off_t *size)
{
	struct stat st;
	int fd = open_high(path, O_WRONLY | O_APPEND, 0, f, &st);
	if (fd < 0)
		return -errno;
	if (st.st_dev != f->dev || st.st_ino != f->ino) {
		close(fd); /* the file at path, ours to close: another one than f */
		return -ESTALE;
	}
	*size = st.st_size;
	return fd;
}

int sink_file_frame(struct sink *s, const char *dir, struct sink_file *f, const void *src, size_t n)
{
	if (!f->created)
		return -EBADF;
	char path[PATH_CAP];
	if (join_path(path, dir, f->name) != 0)
		return -ENAMETOOLONG;
	/* Compressed first: the descriptor is then ours for an open, a write and a
	 * close. A program that sweeps descriptors in that moment costs a retry. */
	const void *out;
	size_t len;
	int rc = sink_compress(s, src, n, &out, &len);
	if (rc != 0)
		return rc;
	for (int attempt = 0;; attempt++) {
		off_t size = 0;
		int fd = open_append(path, f, &size);
		if (fd == -EAGAIN && attempt < SWEEP_RETRIES)
			continue;
		if (fd < 0)
			return fd;
		rc = sink_write_all(fd, out, len);
		if (rc == -EBADF) {
			/* Closed under us (the number may be the program's again: not
			 * closed by us). Whatever part of the frame went out is cut. */
			if (truncate(path, size) != 0 || attempt == SWEEP_RETRIES)
				return rc;
			continue;
		}
		close(fd);
		return rc;
	}
}

ssize_t sink_read_file(const char *path, char *buf, size_t cap)
{
	int fd = sink_open(path, O_RDONLY, 0);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, cap);
	int e = errno;
	close(fd);
	return n < 0 ? -e : n;
}
