/* SPDX-License-Identifier: MIT */
/*
 * Fixture for test_symbolize: functions at known lines (the test finds the lines by
 * their "LINE:" markers), one call through a forced-inline function, one C++ name.
 */
#include <stdint.h>

/* Looked up by the test with dlsym. */
int fixture_leaf(int x);
int fixture_plain(int x);
int fixture_outer(int x);

/* The return address of fixture_leaf's latest call: a call site in its caller. */
extern void *fixture_ra;
void *fixture_ra;

__attribute__((noinline, noipa)) int fixture_leaf(int x)
{
	fixture_ra = __builtin_return_address(0);
	return x * 3;
}

__attribute__((noinline, noipa)) int fixture_plain(int x)
{
	int r = fixture_leaf(x + 1); /* LINE:plain_call */
	return r + 7;
}

static inline __attribute__((always_inline)) int fixture_inl(int x)
{
	int r = fixture_leaf(x ^ 5); /* LINE:inl_call */
	return r - 2;
}

__attribute__((noinline, noipa)) int fixture_outer(int x)
{
	int r = fixture_inl(x * 2); /* LINE:outer_call */
	return r + 11;
}

/* tt::fixture::add(int, int), as a C++ compiler would name it. */
int fixture_cxx_add(int a, int b) __asm__("_ZN2tt7fixture3addEii");
__attribute__((noinline)) int fixture_cxx_add(int a, int b)
{
	return a + b;
}
