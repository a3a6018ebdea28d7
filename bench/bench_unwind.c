/* SPDX-License-Identifier: MIT */
/*
 * Cost of a stack walk, per walk and per frame: the frame-pointer walk, the
 * call-frame-table walk (unwind_cfi) with its rule cache warm and cold, and
 * libunwind, at the bottom of call chains DEPTH deep built with and without frame
 * pointers (bench_unwind_chain.c). The frame-pointer walk cannot pass the frames
 * of the second build: its frame count says so.
 *
 * usage: bench_unwind [DEPTH...]       default: 8 32 64
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "../src/core/modules.h"
#include "../src/core/unwind_cfi.h"
#include "../src/core/unwind_fp.h"
#include "../src/core/unwind_libunwind.h"
#include "bench_unwind.h"

#define MAX_FRAMES 256

enum method { FP, CFI_WARM, CFI_COLD, LIBUNWIND, METHODS };
static const char *const method_name[METHODS] = {"frame pointers", "cfi, cache warm",
						 "cfi, cache cold", "libunwind"};

struct probe_ctx {
	enum method method;
	unsigned iters;
	double ns;
	unsigned frames;
	bool broken;
};

static uintptr_t stack_lo, stack_hi;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static unsigned walk(enum method m, uintptr_t site, uintptr_t fp, uintptr_t *out, bool *broken)
{
	bool truncated;
	switch (m) {
	case FP:
		return unwind_fp(fp, stack_lo, stack_hi, out, MAX_FRAMES, &truncated, broken);
	case CFI_WARM:
	case CFI_COLD:
		return unwind_cfi(site, fp + 16, ((const uintptr_t *)fp)[0], stack_lo, stack_hi,
				  out, MAX_FRAMES, &truncated, broken);
	default:
		*broken = false;
		return unwind_libunwind(site, out, MAX_FRAMES, &truncated);
	}
}

/* At the bottom of a chain: time c->iters walks from the caller's frame. */
__attribute__((noinline)) static unsigned probe(void *arg)
{
	struct probe_ctx *c = arg;
	uintptr_t site = (uintptr_t)__builtin_return_address(0);
	uintptr_t fp = (uintptr_t)__builtin_frame_address(0);
	uintptr_t out[MAX_FRAMES];
	double spent = 0;
	for (unsigned i = 0; i < c->iters; i++) {
		if (c->method == CFI_COLD)
			unwind_cfi_flush(); /* outside the timed span */
		double t0 = now();
		c->frames = walk(c->method, site, fp, out, &c->broken);
		__asm__ volatile("" : : "r"(out) : "memory");
		spent += now() - t0;
	}
	c->ns = spent * 1e9 / c->iters;
	return c->frames;
}

int main(int argc, char **argv)
{
	unsigned depths[8] = {8, 32, 64}, nd = 3;
	if (argc > 1)
		for (nd = 0; nd < 8 && (int)nd + 1 < argc; nd++)
			depths[nd] = (unsigned)atoi(argv[nd + 1]);
	pthread_attr_t a;
	void *addr;
	size_t size;
	if (pthread_getattr_np(pthread_self(), &a) != 0 ||
	    pthread_attr_getstack(&a, &addr, &size) != 0)
		return 1;
	stack_lo = (uintptr_t)addr;
	stack_hi = stack_lo + size;
	modules_destroy(modules_publish(modules_snapshot()));
	bool have_cfi = unwind_cfi_available(), have_lu = unwind_libunwind_load();
	printf("%-6s %-6s %-16s %10s %9s %7s\n", "depth", "build", "method", "ns/walk", "ns/frame",
	       "frames");
	for (unsigned d = 0; d < nd; d++) {
		for (int build = 0; build < 2; build++) {
			for (enum method m = 0; m < METHODS; m++) {
				if ((m == CFI_WARM || m == CFI_COLD) && !have_cfi)
					continue;
				if (m == LIBUNWIND && !have_lu)
					continue;
				struct probe_ctx c = {m, m == LIBUNWIND ? 200 : 20000, 0, 0, 0};
				if (m == CFI_COLD)
					c.iters = 2000;
				(build ? chain_nofp : chain_fp)(depths[d], probe, &c);
				printf("%-6u %-6s %-16s %10.0f %9.1f %7u%s\n", depths[d],
				       build ? "no-fp" : "fp", method_name[m], c.ns,
				       c.frames ? c.ns / c.frames : 0.0, c.frames,
				       c.broken ? " (broken)" : "");
			}
		}
	}
	return 0;
}
