/* SPDX-License-Identifier: MIT */
/* Page-backed buffers for the writer (see pagemem.h). */
#define _GNU_SOURCE
#include "pagemem.h"

#include <stdint.h>
#include <sys/mman.h>

#include "nofork.h"

#define HEADER 64u

struct header {
	size_t map_len; /* the whole mapping, header included */
};

static inline struct header *header_of(void *p)
{
	return (struct header *)(void *)((char *)p - HEADER);
}

static size_t map_len_for(size_t n)
{
	size_t page = 4096;
	if (n > SIZE_MAX - HEADER - page)
		return 0;
	return (n + HEADER + page - 1) & ~(page - 1);
}

void *pagemem_alloc(size_t n)
{
	size_t len = map_len_for(n);
	if (len == 0)
		return NULL;
	void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return NULL;
	((struct header *)m)->map_len = len;
	return (char *)m + HEADER;
}

void *pagemem_realloc(void *p, size_t n)
{
	if (!p)
		return pagemem_alloc(n);
	size_t len = map_len_for(n);
	if (len == 0)
		return NULL;
	struct header *h = header_of(p);
	if (len == h->map_len)
		return p;
	void *m = mremap(h, h->map_len, len, MREMAP_MAYMOVE);
	if (m == MAP_FAILED)
		return NULL;
	((struct header *)m)->map_len = len;
	return (char *)m + HEADER;
}

void pagemem_free(void *p)
{
	if (p) {
		struct header *h = header_of(p);
		munmap(h, h->map_len);
	}
}

void pagemem_nofork(void *p)
{
	struct header *h = header_of(p);
	nofork(h, h->map_len);
}

static size_t capacity(void *p)
{
	return header_of(p)->map_len - HEADER;
}

static void *zstd_alloc(void *opaque, size_t n)
{
	struct pagemem_zstd *z = opaque;
	if (z->kept && capacity(z->kept) >= n) {
		void *p = z->kept;
		z->kept = NULL;
		return p; /* zstd initialises what it uses */
	}
	return pagemem_alloc(n);
}

static void zstd_free(void *opaque, void *p)
{
	struct pagemem_zstd *z = opaque;
	if (!p)
		return;
	if (z->kept && capacity(z->kept) >= capacity(p)) {
		pagemem_free(p);
		return;
	}
	pagemem_free(z->kept); /* keep the larger of the two */
	z->kept = p;
}

ZSTD_customMem pagemem_zstd_mem(struct pagemem_zstd *z)
{
	z->kept = NULL;
	return (ZSTD_customMem){zstd_alloc, zstd_free, z};
}

void pagemem_zstd_fini(struct pagemem_zstd *z)
{
	pagemem_free(z->kept);
	z->kept = NULL;
}
