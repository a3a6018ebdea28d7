/* SPDX-License-Identifier: MIT */
/*
 * How often realloc moves a block, for comparing the heap's behaviour traced and
 * untraced: 200 buffers grown round-robin by realloc in 64-byte steps to 16 KiB
 * (51200 calls), each step writing the new last byte. Sampled blocks carry a
 * 16-byte pad (design.md, "Block tags"); a realloc that gains or loses it should
 * still resize in place where glibc would.
 *
 * usage: bench_realloc                     (untraced)
 *        LD_PRELOAD=libthagtrace.so THAGTRACE_OUT=DIR bench_realloc
 */
#include <stdio.h>
#include <stdlib.h>

enum { BUFFERS = 200, STEP = 64, MAX = 16384 };

int main(void)
{
	static char *b[BUFFERS];
	size_t moved = 0, calls = 0;
	for (size_t n = STEP; n <= MAX; n += STEP)
		for (int i = 0; i < BUFFERS; i++) {
			char *o = b[i], *p = realloc(o, n);
			if (!p) {
				fprintf(stderr, "bench_realloc: realloc to %zu failed\n", n);
				return 1;
			}
			calls++;
			moved += o != NULL && o != p;
			p[n - 1] = 1;
			b[i] = p;
		}
	printf("%zu of %zu reallocs moved\n", moved, calls);
	for (int i = 0; i < BUFFERS; i++)
		free(b[i]);
	return 0;
}
