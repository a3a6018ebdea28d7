/* SPDX-License-Identifier: MIT */
/*
 * Tight loops over one allocation path each, for counting what the tracer adds
 * (bench/callgrind_paths.sh runs them under callgrind, untraced and traced):
 *   malloc   malloc(32) + free
 *   calloc   calloc(1, 32) + free
 *   realloc  malloc(16), realloc to 32, to 48, free
 *   deep     malloc(16 KiB + up to 1 KiB) from a 4-deep call chain, freed 64
 *            allocations later (at the defaults every one is recorded: stack,
 *            event, free)
 * usage: bench_paths MODE N
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEEP(p) __asm__ volatile("" ::"r"(p) : "memory")

__attribute__((noinline)) static void *chain3(size_t n)
{
	void *p = malloc(n);
	KEEP(p);
	return p;
}

__attribute__((noinline)) static void *chain2(size_t n)
{
	void *p = chain3(n);
	KEEP(p);
	return p;
}

__attribute__((noinline)) static void *chain1(size_t n)
{
	void *p = chain2(n);
	KEEP(p);
	return p;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: bench_paths malloc|calloc|realloc|deep N\n");
		return 2;
	}
	const char *mode = argv[1];
	long n = atol(argv[2]);
	if (!strcmp(mode, "malloc")) {
		for (long i = 0; i < n; i++) {
			void *p = malloc(32);
			KEEP(p);
			free(p);
		}
	} else if (!strcmp(mode, "calloc")) {
		for (long i = 0; i < n; i++) {
			void *p = calloc(1, 32);
			KEEP(p);
			free(p);
		}
	} else if (!strcmp(mode, "realloc")) {
		for (long i = 0; i < n; i++) {
			void *p = malloc(16);
			p = realloc(p, 32);
			p = realloc(p, 48);
			KEEP(p);
			free(p);
		}
	} else if (!strcmp(mode, "deep")) {
		void *keep[64] = {0};
		for (long i = 0; i < n; i++) {
			void *p = chain1(16384 + (size_t)(i & 63) * 16);
			*(volatile char *)p = 1;
			free(keep[i & 63]);
			keep[i & 63] = p;
		}
		for (int i = 0; i < 64; i++)
			free(keep[i]);
	} else {
		fprintf(stderr, "bench_paths: unknown mode %s\n", mode);
		return 2;
	}
	return 0;
}
