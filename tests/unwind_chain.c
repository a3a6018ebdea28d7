/* SPDX-License-Identifier: MIT */
/*
 * test_unwind's call chain, built -O2 -fomit-frame-pointer (tests/meson.build):
 * unwind_chain_top -> chain_realigned -> chain_leaf -> probe. Each records the return
 * address it will go back to, the truth a walk from probe must find. chain_realigned
 * realigns its stack and calls alloca, so gcc keeps a saved argument pointer (DRAP): its rules are
 * DWARF expressions.
 */
#include "unwind_chain.h"

uintptr_t unwind_chain_ras[3];

__attribute__((noinline)) static unsigned chain_leaf(unsigned n, unwind_chain_probe probe,
						     void *arg)
{
	volatile unsigned pad[3] = {n, n + 1, n + 2};
	unwind_chain_ras[0] = (uintptr_t)__builtin_return_address(0);
	unsigned r = probe(arg);
	__asm__ volatile("" ::: "memory"); /* no tail call: the frame stays */
	return r + pad[n % 3];
}

__attribute__((noinline, force_align_arg_pointer)) static unsigned
chain_realigned(unsigned n, unwind_chain_probe probe, void *arg)
{
	_Alignas(64) volatile char aligned[64];
	volatile char *vla = __builtin_alloca(n + 1);
	aligned[0] = (char)n;
	vla[0] = 1;
	unwind_chain_ras[1] = (uintptr_t)__builtin_return_address(0);
	unsigned r = chain_leaf(n, probe, arg);
	__asm__ volatile("" ::: "memory");
	return r + (unsigned)aligned[0] + (unsigned)vla[0];
}

__attribute__((noinline)) unsigned unwind_chain_top(unsigned n, unwind_chain_probe probe, void *arg)
{
	volatile unsigned pad[5] = {n, n, n, n, n};
	unwind_chain_ras[2] = (uintptr_t)__builtin_return_address(0);
	unsigned r = chain_realigned(n, probe, arg);
	__asm__ volatile("" ::: "memory");
	return r + pad[n % 5];
}
