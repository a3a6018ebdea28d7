/* SPDX-License-Identifier: MIT */
/* Frame-pointer and call-frame-table walks, module map: real chains, broken chains,
 * bounds, truncation. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>

#include "../src/core/modules.h"
#include "../src/core/unwind_cfi.h"
#include "../src/core/unwind_fp.h"
#include "unwind_chain.h"

/* A fake stack: frame k at words[2k] = {next fp, return address}. */
static uintptr_t words[64];

static uintptr_t code_addr(void)
{
	return (uintptr_t)&code_addr + 4; /* inside this test's text */
}

static void build_chain(unsigned nframes, uintptr_t (*ret_of)(unsigned))
{
	memset(words, 0, sizeof(words));
	for (unsigned k = 0; k < nframes; k++) {
		words[2 * k] = k + 1 < nframes ? (uintptr_t)&words[2 * (k + 1)] : 0;
		words[2 * k + 1] = ret_of(k);
	}
}

static uintptr_t good(unsigned k)
{
	return code_addr() + k;
}

static uintptr_t third_is_counter(unsigned k)
{
	return k == 2 ? 0x10015 + 0x1000000 * k : code_addr() + k; /* data, not code */
}

/* Walk the fake stack from its first frame, within its own bounds. */
static unsigned walk(uintptr_t *out, unsigned max, bool *trunc, bool *broken)
{
	return unwind_fp((uintptr_t)&words[0], (uintptr_t)words, (uintptr_t)(words + 64), out, max,
			 trunc, broken);
}

static void setup(void)
{
	modules_destroy(modules_publish(modules_snapshot()));
}

static void teardown(void)
{
	modules_destroy(modules_publish(NULL));
}

TestSuite(unwind, .init = setup, .fini = teardown);

Test(unwind, module_map_knows_code_from_data)
{
	size_t hint = 0;
	cr_assert(modules_is_code(code_addr(), &hint));
	cr_assert(modules_is_code((uintptr_t)&memcpy, &hint), "libc is mapped");
	cr_assert_not(modules_is_code((uintptr_t)&words[0], &hint), "data is not code");
	cr_assert_not(modules_is_code(0x10015, &hint));
	const struct module_map *m = modules_current();
	cr_assert_not_null(m);
	cr_assert_gt(m->nmods, 2);
	for (size_t i = 1; i < m->nranges; i++)
		cr_assert_geq(m->ranges[i].start, m->ranges[i - 1].end, "sorted, disjoint");
}

Test(unwind, walks_a_valid_chain)
{
	build_chain(10, good);
	uintptr_t out[16];
	bool trunc, broken;
	unsigned n = walk(out, 16, &trunc, &broken);
	cr_assert_eq(n, 10);
	cr_assert_not(trunc);
	cr_assert_not(broken, "reached the outermost frame: the whole stack");
	for (unsigned k = 0; k < n; k++)
		cr_assert_eq(out[k], code_addr() + k);
}

Test(unwind, truncates_at_max)
{
	build_chain(10, good);
	uintptr_t out[16];
	bool trunc, broken;
	unsigned n = walk(out, 4, &trunc, &broken);
	cr_assert_eq(n, 4);
	cr_assert(trunc, "frames were left: marked truncated");
	cr_assert_not(broken, "cut at max, not broken");
}

Test(unwind, stops_at_a_word_that_is_not_code)
{
	build_chain(10, third_is_counter);
	uintptr_t out[16];
	bool trunc, broken;
	unsigned n = walk(out, 16, &trunc, &broken);
	cr_assert_eq(n, 2, "garbage ends the walk instead of becoming a frame");
	cr_assert_not(trunc);
	cr_assert(broken, "a broken chain: another unwinder should try");
}

/* Inside libc's code as the module map knows it (&memcpy would be a sanitizer's
 * interceptor under ASan). */
static uintptr_t libc_addr(void)
{
	return modules_current()->libc_lo + 16;
}

/* The program's frames, then the start code in libc whose frame register is data:
 * the whole stack. Only libc frames before the break: broken (the allocation was
 * made inside libc, built without frame pointers), for libunwind to redo. */
static uintptr_t program_then_libc(unsigned k)
{
	return k == 3 ? libc_addr() : k == 4 ? 0x10015 : code_addr() + k;
}

static uintptr_t libc_only(unsigned k)
{
	return k == 0 ? libc_addr() : 0x10015;
}

Test(unwind, ends_in_libc_after_the_program_only)
{
	cr_assert(modules_is_libc(libc_addr()));
	build_chain(6, program_then_libc);
	uintptr_t out[16];
	bool trunc, broken;
	unsigned n = walk(out, 16, &trunc, &broken);
	cr_assert_eq(n, 4);
	cr_assert_eq(out[3], libc_addr());
	cr_assert_not(broken, "the program's frames, then libc's start code");
	build_chain(6, libc_only);
	n = walk(out, 16, &trunc, &broken);
	cr_assert_eq(n, 1);
	cr_assert(broken, "never left libc: not the whole stack");
}

Test(unwind, never_leaves_the_stack_bounds)
{
	build_chain(10, good);
	words[2 * 3] = (uintptr_t)&words[63] + 4096; /* frame 3 points past the stack */
	uintptr_t out[16];
	bool trunc, broken;
	unsigned n = walk(out, 16, &trunc, &broken);
	cr_assert_eq(n, 4);
	/* A chain that goes down (a loop) stops too. */
	build_chain(10, good);
	words[2 * 5] = (uintptr_t)&words[0];
	n = walk(out, 16, &trunc, &broken);
	cr_assert_eq(n, 6);
	/* Outside the bounds from the start: nothing. */
	n = unwind_fp((uintptr_t)&words[0], 0x1000, 0x2000, out, 16, &trunc, &broken);
	cr_assert_eq(n, 0);
}

/* ---- the call-frame-table walk, through real frames without frame pointers ---- */

struct cfi_probe {
	uintptr_t lo, hi; /* the bounds handed to the walk */
	bool flush;	  /* forget the cached rules first */
	uintptr_t out[64];
	unsigned n;
	bool truncated, broken;
};

static void this_stack(uintptr_t *lo, uintptr_t *hi)
{
	pthread_attr_t a;
	void *addr;
	size_t size;
	cr_assert_eq(pthread_getattr_np(pthread_self(), &a), 0);
	cr_assert_eq(pthread_attr_getstack(&a, &addr, &size), 0);
	pthread_attr_destroy(&a);
	*lo = (uintptr_t)addr;
	*hi = *lo + size;
}

/* As the event path starts it: from the frame whose return address is the site. */
__attribute__((noinline)) static unsigned cfi_probe(void *arg)
{
	struct cfi_probe *c = arg;
	uintptr_t site = (uintptr_t)__builtin_return_address(0);
	const uintptr_t *fp = __builtin_frame_address(0);
	if (c->flush)
		unwind_cfi_flush();
	c->n = unwind_cfi(site, (uintptr_t)(fp + 2), fp[0], c->lo, c->hi, c->out, 64, &c->truncated,
			  &c->broken);
	return c->n;
}

/* The chain's frames and this one's return address are the same from every test;
 * the frames above differ with the caller. */
#define CHAIN_FRAMES 4
__attribute__((noinline)) static void cfi_walk(struct cfi_probe *c, bool flush)
{
	c->flush = flush;
	unwind_chain_top(3, cfi_probe, c);
	__asm__ volatile("" ::: "memory");
}

Test(unwind, cfi_walks_frames_without_frame_pointers)
{
	cr_assert(unwind_cfi_available(), "glibc has _dl_find_object, our code has tables");
	struct cfi_probe c = {0};
	this_stack(&c.lo, &c.hi);
	cfi_walk(&c, true);
	cr_assert_geq(c.n, 5, "the chain and its callers (%u frames)", c.n);
	/* out[0] is the site in chain_leaf; then each frame's recorded return address. */
	for (unsigned k = 0; k < 3; k++)
		cr_assert_eq(c.out[k + 1], unwind_chain_ras[k], "frame %u: %#lx, not %#lx", k + 1,
			     (unsigned long)c.out[k + 1], (unsigned long)unwind_chain_ras[k]);
	cr_assert_not(c.broken, "reached the outermost frame (the start code)");
	cr_assert_not(c.truncated);
	size_t hint = 0;
	for (unsigned k = 0; k < c.n; k++)
		cr_assert(modules_is_code(c.out[k], &hint), "frame %u is code", k);

	/* The rules now come from the cache: the same walk. */
	struct cfi_probe warm = c;
	cfi_walk(&warm, false);
	cr_assert_eq(warm.n, c.n);
	cr_assert_arr_eq(warm.out, c.out, CHAIN_FRAMES * sizeof(uintptr_t));
	cr_assert_eq(warm.broken, c.broken);
}

Test(unwind, cfi_rules_of_a_realigned_frame_and_of_plain_ones)
{
	struct cfi_probe c = {0};
	this_stack(&c.lo, &c.hi);
	cfi_walk(&c, true);
	struct cfi_rule r;
	unwind_cfi_rule(unwind_chain_ras[0] - 1, &r); /* the call in chain_realigned */
	cr_assert_eq(r.kind, CFI_REALIGNED, "gcc's DRAP frame: cfa = *(rbp - 8)");
	unwind_cfi_rule(unwind_chain_ras[1] - 1, &r); /* the call in unwind_chain_top */
	cr_assert_eq(r.kind, CFI_RULE);
	cr_assert_not(r.cfa_rbp, "no frame pointer: the frame address is from rsp");
	cr_assert_geq(r.cfa_off, 8 + 5 * 4, "its locals are on the stack");
	unwind_cfi_rule((uintptr_t)&words[0], &r);
	cr_assert_eq(r.kind, CFI_NONE, "data has no call-frame information");
}

Test(unwind, cfi_stays_inside_the_stack_bounds)
{
	struct cfi_probe c = {0};
	this_stack(&c.lo, &c.hi);
	cfi_walk(&c, false);
	unsigned whole = c.n;
	/* A top of stack just above probe's own frame: the walk stops, it does not read
	 * past it. */
	struct cfi_probe cut = c;
	cut.hi = (uintptr_t)__builtin_frame_address(0) - 1024;
	cut.hi &= ~(uintptr_t)7;
	cfi_walk(&cut, false);
	cr_assert_lt(cut.n, whole, "%u frames of %u", cut.n, whole);
	cr_assert(cut.broken, "stopped short of the outermost frame");
	for (unsigned k = 0; k < cut.n && k < CHAIN_FRAMES; k++)
		cr_assert_eq(cut.out[k], c.out[k], "what it found is right");
	/* Truncation at max. */
	uintptr_t out[2];
	bool trunc, broken;
	const uintptr_t *fp = __builtin_frame_address(0);
	unsigned n = unwind_cfi((uintptr_t)__builtin_return_address(0), (uintptr_t)(fp + 2), fp[0],
				c.lo, c.hi, out, 2, &trunc, &broken);
	cr_assert_eq(n, 2);
	cr_assert(trunc);
	cr_assert_not(broken);
	/* A stack pointer outside the bounds: nothing. */
	n = unwind_cfi(out[0], 0x1000, 0, c.lo, c.hi, out, 2, &trunc, &broken);
	cr_assert_eq(n, 0);
	/* An address with no tables and no frame pointer behind it: that one frame. */
	n = unwind_cfi((uintptr_t)&words[0], (uintptr_t)(fp + 2), 0, c.lo, c.hi, out, 2, &trunc,
		       &broken);
	cr_assert_eq(n, 1);
	cr_assert(broken);
}

/* From inside a signal handler: through the kernel's signal frame into the code
 * that was interrupted (here raise's system call), and on to its callers. */
static struct cfi_probe in_handler;
static uintptr_t raiser_ra;

static void on_usr1(int sig)
{
	(void)sig;
	cfi_probe(&in_handler);
}

__attribute__((noinline)) static void raiser(void)
{
	raiser_ra = (uintptr_t)__builtin_return_address(0);
	raise(SIGUSR1);
	__asm__ volatile("" ::: "memory");
}

Test(unwind, cfi_walks_through_a_signal_frame)
{
	this_stack(&in_handler.lo, &in_handler.hi);
	in_handler.flush = true;
	struct sigaction sa = {.sa_handler = on_usr1}, old;
	sigemptyset(&sa.sa_mask);
	cr_assert_eq(sigaction(SIGUSR1, &sa, &old), 0);
	raiser();
	sigaction(SIGUSR1, &old, NULL);
	bool found = false;
	for (unsigned k = 0; k < in_handler.n; k++)
		found |= in_handler.out[k] == raiser_ra;
	cr_assert(found, "the frames before the signal are on the stack (%u frames)", in_handler.n);
	cr_assert_not(in_handler.broken, "and it goes on to the outermost frame");
	bool trampoline = false; /* on_usr1's frame may be gone: a tail call */
	for (unsigned k = 0; k < 2 && k < in_handler.n; k++) {
		struct cfi_rule r;
		unwind_cfi_rule(in_handler.out[k] - 1, &r);
		trampoline |= r.kind == CFI_SIGNAL;
	}
	cr_assert(trampoline, "the handler returns to the signal trampoline");
}
