/* SPDX-License-Identifier: MIT */
/* Frame-pointer walk and module map: real chains, broken chains, bounds, truncation. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "../src/core/modules.h"
#include "../src/core/unwind_fp.h"

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
