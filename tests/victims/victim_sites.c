/* SPDX-License-Identifier: MIT */
/*
 * Victim: known allocations at known call sites, through every C allocation entry
 * point, and cross-thread frees. Prints "fn NAME ADDR" for each site function (each
 * holds exactly one allocation call) and "want NAME COUNT BYTES" for what it did,
 * so the test can check the exact .freq counts per site. Built without inlining.
 * With "chdir" it first changes to /.
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define N 3000

static void *blocks[6][N];

#define SITE(name, expr, size_expr)                                                                \
	__attribute__((noinline)) static void name(void **out, int n)                              \
	{                                                                                          \
		for (int i = 0; i < n; i++) {                                                      \
			out[i] = expr;                                                             \
			__asm__ volatile("" ::: "memory");                                         \
		}                                                                                  \
	}

SITE(site_malloc, malloc(24 + (size_t)(i % 5)), 0)
SITE(site_calloc, calloc(3, 40), 0)
SITE(site_aligned, aligned_alloc(64, 128), 0)
SITE(site_memalign, memalign(32, 2048), 0)
SITE(site_large, malloc(20000), 0)

__attribute__((noinline)) static void site_posix_memalign(void **out, int n)
{
	for (int i = 0; i < n; i++)
		if (posix_memalign(&out[i], 16, 300) != 0)
			out[i] = NULL;
}

__attribute__((noinline)) static void site_realloc(void **out, int n)
{
	for (int i = 0; i < n; i++)
		out[i] = realloc(out[i], 500); /* grows site_malloc's blocks */
}

static void *freer(void *arg)
{
	(void)arg;
	for (int i = 0; i < N; i++)
		free(blocks[1][i]); /* calloc'd on the main thread */
	return NULL;
}

static void print_fn(const char *name, void *fn)
{
	printf("fn %s %p\n", name, fn);
}

int main(int argc, char **argv)
{
	/* "chdir": leave the directory a relative THAGTRACE_OUT was given from. */
	if (argc > 1 && !strcmp(argv[1], "chdir") && chdir("/") != 0)
		return 3;
	print_fn("site_malloc", (void *)site_malloc);
	print_fn("site_calloc", (void *)site_calloc);
	print_fn("site_aligned", (void *)site_aligned);
	print_fn("site_memalign", (void *)site_memalign);
	print_fn("site_large", (void *)site_large);
	print_fn("site_posix_memalign", (void *)site_posix_memalign);
	print_fn("site_realloc", (void *)site_realloc);
	print_fn("main", (void *)main);
	print_fn("freer", (void *)freer);

	site_malloc(blocks[0], N);
	site_calloc(blocks[1], N);
	site_aligned(blocks[2], N);
	site_memalign(blocks[3], N);
	site_large(blocks[4], N / 10);
	site_posix_memalign(blocks[5], N);
	site_realloc(blocks[0], N);

	pthread_t th;
	pthread_create(&th, NULL, freer, NULL);
	pthread_join(th, NULL);
	for (int k = 0; k < 6; k++)
		if (k != 1)
			for (int i = 0; i < (k == 4 ? N / 10 : N); i++)
				free(blocks[k][i]);

	uint64_t mb = 0;
	for (int i = 0; i < N; i++)
		mb += 24 + (uint64_t)(i % 5);
	printf("want site_malloc %d %llu\n", N, (unsigned long long)mb);
	printf("want site_calloc %d %d\n", N, N * 120);
	printf("want site_aligned %d %d\n", N, N * 128);
	printf("want site_memalign %d %d\n", N, N * 2048);
	printf("want site_large %d %d\n", N / 10, N / 10 * 20000);
	printf("want site_posix_memalign %d %d\n", N, N * 300);
	printf("want site_realloc %d %d\n", N, N * 500);
	printf("frees %d cross %d\n", 6 * N - N + N / 10, N);
	return 0;
}
