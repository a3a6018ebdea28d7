/* SPDX-License-Identifier: MIT */
/* A call chain for bench_unwind, built once with frame pointers and once without
 * (CHAIN names each build's entry). Each frame keeps a little stack of its own. */
#include "bench_unwind.h"

__attribute__((noinline)) unsigned CHAIN(unsigned depth, unwind_probe_fn probe, void *arg)
{
	volatile unsigned pad[4] = {depth, depth + 1, depth + 2, depth + 3};
	unsigned r = depth ? CHAIN(depth - 1, probe, arg) : probe(arg);
	__asm__ volatile("" ::: "memory"); /* no tail call: the frame stays */
	return r + pad[depth & 3];
}
