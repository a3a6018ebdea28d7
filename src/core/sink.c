/* SPDX-License-Identifier: MIT */
/* zstd frames to files. */
#include "sink.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

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

int sink_frame(struct sink *s, int fd, const void *src, size_t n)
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
		return -EIO;
	s->frames++;
	s->bytes_in += n;
	s->bytes_out += c;
	return sink_write_all(fd, s->out, c);
}

/* Lowest number for our descriptors: above what programs use and close by number,
 * below the limit. */
static int high_base(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
	    rl.rlim_cur >= 2048)
		return 1024;
	return rl.rlim_cur >= 64 ? (int)(rl.rlim_cur / 2) : 3;
}

static int move_high(int fd)
{
	int hi = fcntl(fd, F_DUPFD_CLOEXEC, high_base());
	if (hi < 0)
		return fd; /* no room up there: stay */
	close(fd);
	return hi;
}

static bool same_file(int fd, const struct sink_file *f)
{
	struct stat st;
	return fstat(fd, &st) == 0 && st.st_dev == f->dev && st.st_ino == f->ino;
}

/*
 * Every descriptor a sink_file holds, by number, with its file's identity: a fork
 * child closes them without reading the sink_files, which live in per-thread memory
 * wiped in the child (nofork.h). Changed only under the writer's pass lock or
 * the tracer's lifecycle lock, which a fork holds; mapped memory, inherited. An
 * entry of zeros is free, so the table needs no initialising (its pages stay
 * unmapped until used), and only the numbers in [held_lo, held_hi) are looked at.
 */
#define HELD_MAX (1u << 20) /* a number above: left open in a fork child (CLOEXEC) */

struct held {
	dev_t dev;
	ino_t ino;
	bool used; /* false: free */
};
static struct held *held;
static size_t held_cap, held_lo = SIZE_MAX, held_hi;

static void hold(const struct sink_file *f)
{
	size_t fd = (size_t)f->fd;
	if (fd >= held_cap) {
		if (fd >= HELD_MAX)
			return;
		size_t cap = held_cap ? held_cap : 4096;
		while (cap <= fd)
			cap *= 2;
		struct held *p = pagemem_realloc(held, cap * sizeof(*held)); /* zeroed */
		if (!p)
			return; /* as above */
		held = p;
		held_cap = cap;
	}
	held[fd] = (struct held){f->dev, f->ino, true};
	held_lo = fd < held_lo ? fd : held_lo;
	held_hi = fd + 1 > held_hi ? fd + 1 : held_hi;
}

/* f's descriptor is no longer ours, or closed: drop its entry (not another file's
 * that the number went to since). */
static void unhold(const struct sink_file *f)
{
	size_t fd = (size_t)f->fd;
	if (f->fd >= 0 && fd < held_cap && held[fd].used && held[fd].dev == f->dev &&
	    held[fd].ino == f->ino)
		held[fd].used = false;
}

void sink_files_fork_child(void)
{
	/* Read, not written (each page written would be copied), then unmapped. */
	for (size_t i = held_lo; i < held_hi; i++) {
		struct sink_file f = {.fd = (int)i, .dev = held[i].dev, .ino = held[i].ino};
		if (held[i].used && same_file(f.fd, &f))
			close(f.fd);
	}
	pagemem_free(held);
	held = NULL;
	held_cap = held_hi = 0;
	held_lo = SIZE_MAX;
}
/* A descriptor just opened becomes f: moved high, its identity taken, held.
 * Returns 0 or -errno (fd closed, f NONE). */
static int adopt(int fd, const char *name, struct sink_file *f)
{
	fd = move_high(fd);
	struct stat st;
	if (fstat(fd, &st) != 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	f->fd = fd;
	f->dev = st.st_dev;
	f->ino = st.st_ino;
	snprintf(f->name, sizeof(f->name), "%s", name);
	hold(f);
	return 0;
}

int sink_file_create(const char *dir, const char *name, enum tt_file_kind kind, struct sink_file *f)
{
	*f = SINK_FILE_NONE;
	if (strlen(name) >= sizeof(f->name))
		return -ENAMETOOLONG;
	int fd = sink_create(dir, name, kind);
	return fd < 0 ? fd : adopt(fd, name, f);
}

int sink_file_open_read(const char *path, struct sink_file *f)
{
	*f = SINK_FILE_NONE;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	return fd < 0 ? -errno : adopt(fd, "", f);
}

bool sink_file_ours(const struct sink_file *f)
{
	return f->fd >= 0 && same_file(f->fd, f);
}

/* f->fd is no longer our file: forget the number, find the file again by name. */
static int reopen(const char *dir, struct sink_file *f)
{
	unhold(f);
	f->fd = -1;
	char path[PATH_CAP];
	if (join_path(path, dir, f->name) != 0)
		return -ENAMETOOLONG;
	int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (!same_file(fd, f)) {
		close(fd);
		return -ESTALE; /* replaced by another file of that name */
	}
	f->fd = move_high(fd);
	hold(f);
	tt_debug("the program closed or reused the descriptor of %s; reopened", f->name);
	return 0;
}

int sink_file_frame(struct sink *s, const char *dir, struct sink_file *f, const void *src, size_t n)
{
	if (f->fd < 0)
		return -EBADF;
	if (!same_file(f->fd, f)) {
		int rc = reopen(dir, f);
		if (rc != 0)
			return rc;
	}
	return sink_frame(s, f->fd, src, n);
}

void sink_file_close(struct sink_file *f)
{
	unhold(f);
	if (sink_file_ours(f))
		close(f->fd);
	*f = SINK_FILE_NONE;
}
