/* SPDX-License-Identifier: MIT */
/*
 * Victim: what a program may rely on from every C allocation function, checked by
 * the program itself while the tracer moves sampled blocks behind a tag: alignment,
 * malloc_usable_size (every usable byte written), calloc's zeros, realloc keeping
 * the contents across every change of size class (plain to sampled and back, in
 * place and moved), realloc(p, 0), reallocarray, valloc/pvalloc pages, alignments
 * too large to tag, a failing allocation not counted. Blocks of 10 KiB and more
 * are always sampled, small ones at the first call of a site and then now and then.
 * Prints "fn"/"want" lines for the exact-count check, "frees N", and "bad ..." for
 * each broken promise (exit 1).
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int bad;
static unsigned long frees;

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			printf("bad " __VA_ARGS__);                                                \
			printf("\n");                                                              \
			bad = 1;                                                                   \
		}                                                                                  \
	} while (0)

/* Every usable byte written, then read back: the tag below the block survives. */
static void fill(void *p, size_t n, size_t align, unsigned char v, const char *what)
{
	CHECK(p != NULL, "%s: NULL", what);
	if (!p)
		return;
	CHECK((uintptr_t)p % align == 0, "%s: %p not aligned to %zu", what, p, align);
	size_t u = malloc_usable_size(p);
	CHECK(u >= n, "%s: usable %zu < %zu", what, u, n);
	memset(p, v, u);
	const unsigned char *c = p;
	CHECK(c[0] == v && c[u - 1] == v, "%s: bytes", what);
}

static void release(void *p)
{
	free(p);
	frees++;
}

/* One site per allocation function (noinline: the call site is in it). */
__attribute__((noinline)) static void *site_malloc(size_t n)
{
	return malloc(n);
}
__attribute__((noinline)) static void *site_calloc(size_t n, size_t m)
{
	return calloc(n, m);
}
__attribute__((noinline)) static void *site_realloc(void *p, size_t n)
{
	return realloc(p, n);
}
__attribute__((noinline)) static void *site_reallocarray(void *p, size_t n, size_t m)
{
	return reallocarray(p, n, m);
}
__attribute__((noinline)) static void *site_aligned_alloc(size_t a, size_t n)
{
	return aligned_alloc(a, n);
}
__attribute__((noinline)) static void *site_memalign(size_t a, size_t n)
{
	return memalign(a, n);
}
__attribute__((noinline)) static int site_posix_memalign(void **out, size_t a, size_t n)
{
	return posix_memalign(out, a, n);
}
__attribute__((noinline)) static void *site_valloc(size_t n)
{
	return valloc(n);
}
__attribute__((noinline)) static void *site_pvalloc(size_t n)
{
	return pvalloc(n);
}

static unsigned long want_count[16];
static unsigned long long want_bytes[16];
enum { MALLOC, CALLOC, REALLOC, REALLOCARRAY, ALIGNED, MEMALIGN, POSIX, VALLOC, PVALLOC };

static void counted(int site, size_t n)
{
	want_count[site]++;
	want_bytes[site] += n;
}

/* A block grown and shrunk through every size class: its first bytes stay. */
static void realloc_walk(unsigned char v)
{
	static const size_t sizes[] = {40, 200, 12000, 50000, 300, 20000, 20000, 64, 150000, 16};
	unsigned char *p = site_malloc(8);
	counted(MALLOC, 8);
	memset(p, v, 8);
	size_t have = 8;
	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t n = sizes[i];
		p = site_realloc(p, n);
		counted(REALLOC, n);
		CHECK(p != NULL, "realloc to %zu", n);
		size_t keep = have < n ? have : n;
		for (size_t j = 0; j < keep; j++)
			if (p[j] != v) {
				CHECK(0, "realloc to %zu lost byte %zu", n, j);
				break;
			}
		size_t u = malloc_usable_size(p);
		CHECK(u >= n, "realloc to %zu: usable %zu", n, u);
		memset(p, v, u);
		have = n;
	}
	release(p);
}

int main(void)
{
	printf("fn site_malloc %p\nfn site_calloc %p\nfn site_realloc %p\n"
	       "fn site_reallocarray %p\nfn site_aligned_alloc %p\nfn site_memalign %p\n"
	       "fn site_posix_memalign %p\nfn site_valloc %p\nfn site_pvalloc %p\n",
	       (void *)site_malloc, (void *)site_calloc, (void *)site_realloc,
	       (void *)site_reallocarray, (void *)site_aligned_alloc, (void *)site_memalign,
	       (void *)site_posix_memalign, (void *)site_valloc, (void *)site_pvalloc);
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	for (int round = 0; round < 300; round++) {
		unsigned char v = (unsigned char)(round + 1);
		size_t big = 10240 + (size_t)round * 97, small = 1 + (size_t)round % 200;

		void *a = site_malloc(big), *b = site_malloc(small);
		counted(MALLOC, big);
		counted(MALLOC, small);
		fill(a, big, 16, v, "malloc big");
		fill(b, small, 16, v, "malloc small");

		unsigned char *c = site_calloc(3, big / 3);
		counted(CALLOC, 3 * (big / 3));
		CHECK(c && c[0] == 0 && c[3 * (big / 3) - 1] == 0, "calloc not zeroed");
		fill(c, 3 * (big / 3), 16, v, "calloc");

		void *d = site_aligned_alloc(64, big), *e = site_memalign(4096, big);
		counted(ALIGNED, big);
		counted(MEMALIGN, big);
		fill(d, big, 64, v, "aligned_alloc 64");
		fill(e, big, 4096, v, "memalign 4096");

		void *f = NULL, *g = NULL;
		CHECK(site_posix_memalign(&f, 256, big) == 0, "posix_memalign 256");
		counted(POSIX, big);
		fill(f, big, 256, v, "posix_memalign 256");
		/* Too aligned to move behind a tag: kept in the set instead. */
		CHECK(site_posix_memalign(&g, 128 * 1024, big) == 0, "posix_memalign 128K");
		counted(POSIX, big);
		fill(g, big, 128 * 1024, v, "posix_memalign 128K");

		void *h = site_valloc(big), *k = site_pvalloc(small);
		counted(VALLOC, big);
		counted(PVALLOC, small);
		fill(h, big, page, v, "valloc");
		fill(k, small, page, v, "pvalloc");
		CHECK(malloc_usable_size(k) >= page, "pvalloc rounds up to a page");

		void *m = site_reallocarray(NULL, 4, big / 4);
		counted(REALLOCARRAY, 4 * (big / 4));
		fill(m, 4 * (big / 4), 16, v, "reallocarray");

		void *pieces[] = {a, b, c, d, e, f, g, h, k, m};
		for (unsigned i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++)
			release(pieces[i]);

		if (round % 10 == 0)
			realloc_walk(v);
	}
	/* realloc(p, 0) frees p (glibc returns NULL); realloc(NULL, n) allocates. */
	void *z = site_realloc(NULL, 30000);
	counted(REALLOC, 30000);
	fill(z, 30000, 16, 7, "realloc(NULL)");
	CHECK(site_realloc(z, 0) == NULL, "realloc(p, 0)");
	frees++;
	/* Failing allocations are not counted; the errno is the allocator's. */
	CHECK(site_malloc(SIZE_MAX / 2) == NULL, "malloc(SIZE_MAX / 2)");
	void *q = NULL;
	CHECK(site_posix_memalign(&q, 3, 100) != 0, "posix_memalign(3)");

	static const char *names[] = {"site_malloc",	     "site_calloc",	   "site_realloc",
				      "site_reallocarray",   "site_aligned_alloc", "site_memalign",
				      "site_posix_memalign", "site_valloc",	   "site_pvalloc"};
	for (int i = 0; i < 9; i++)
		printf("want %s %lu %llu\n", names[i], want_count[i], want_bytes[i]);
	printf("frees %lu\n", frees);
	return bad;
}
