/* SPDX-License-Identifier: MIT */
/*
 * Known allocations for the estimation test (test_estimate.c): every site's calls
 * and bytes, what stays live, what another thread frees, all decided by a fixed
 * seed and printed as "want FUNCTION CALLS BYTES LIVE_BYTES" lines.
 * Built twice: with frame pointers and without (the unwinder's other path).
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define NOINLINE __attribute__((noinline))

struct want {
	const char *name;
	unsigned long long calls, bytes, live;
};

enum { TINY, SMALL, MEDIUM, LARGE, CALLER_A, CALLER_B, LEAK, LEAK_LARGE, XTHREAD, NWANT };
static struct want want[NWANT] = {
    [TINY] = {"site_tiny"},   [SMALL] = {"site_small"},		  [MEDIUM] = {"site_medium"},
    [LARGE] = {"site_large"}, [CALLER_A] = {"caller_a"},	  [CALLER_B] = {"caller_b"},
    [LEAK] = {"site_leak"},   [LEAK_LARGE] = {"site_leak_large"}, [XTHREAD] = {"site_xthread"},
};

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static size_t between(size_t lo, size_t hi)
{
	return lo + (size_t)(next() % (hi - lo + 1));
}

/* Each site is one call of malloc in its own function: the .freq call site. */
NOINLINE void *site_tiny(size_t n)
{
	return malloc(n);
}
NOINLINE void *site_small(size_t n)
{
	return malloc(n);
}
NOINLINE void *site_medium(size_t n)
{
	return malloc(n);
}
NOINLINE void *site_large(size_t n)
{
	return malloc(n);
}
NOINLINE void *site_leak(size_t n)
{
	return malloc(n);
}
NOINLINE void *site_leak_large(size_t n)
{
	return malloc(n);
}
NOINLINE void *site_xthread(size_t n)
{
	return malloc(n);
}
/* One site, two callers: two stacks sharing the site's exact total. */
NOINLINE void *wrapped(size_t n)
{
	return malloc(n);
}
NOINLINE void *caller_a(size_t n)
{
	return wrapped(n);
}
NOINLINE void *caller_b(size_t n)
{
	return wrapped(n);
}

static void churn(void *(*fn)(size_t), struct want *w, unsigned long calls, size_t lo, size_t hi)
{
	for (unsigned long i = 0; i < calls; i++) {
		size_t n = between(lo, hi);
		void *p = fn(n);
		w->calls++;
		w->bytes += n;
		free(p);
	}
}

#define XCOUNT 40000
static void *handoff[XCOUNT];

static void *freer(void *arg)
{
	(void)arg;
	for (unsigned i = 0; i < XCOUNT; i++)
		free(handoff[i]);
	return NULL;
}

int main(void)
{
	churn(site_tiny, &want[TINY], 300000, 16, 64);
	churn(site_small, &want[SMALL], 60000, 100, 900);
	churn(site_medium, &want[MEDIUM], 20000, 1024, 9 * 1024);
	churn(site_large, &want[LARGE], 400, 10 * 1024, 100 * 1024);
	churn(caller_a, &want[CALLER_A], 150000, 96, 160);
	churn(caller_b, &want[CALLER_B], 50000, 96, 160);

	/* Leaks: never freed. */
	for (unsigned i = 0; i < 20000; i++) {
		size_t n = between(128, 384);
		if (!site_leak(n))
			return 1;
		want[LEAK].calls++;
		want[LEAK].bytes += n;
		want[LEAK].live += n;
	}
	for (unsigned i = 0; i < 40; i++) {
		size_t n = between(16 * 1024, 48 * 1024);
		if (!site_leak_large(n))
			return 1;
		want[LEAK_LARGE].calls++;
		want[LEAK_LARGE].bytes += n;
		want[LEAK_LARGE].live += n;
	}

	/* Allocated here, freed by another thread: not a leak. */
	for (unsigned i = 0; i < XCOUNT; i++) {
		size_t n = between(64, 512);
		handoff[i] = site_xthread(n);
		want[XTHREAD].calls++;
		want[XTHREAD].bytes += n;
	}
	pthread_t t;
	if (pthread_create(&t, NULL, freer, NULL) || pthread_join(t, NULL))
		return 1;

	for (unsigned i = 0; i < NWANT; i++)
		printf("want %s %llu %llu %llu\n", want[i].name, want[i].calls, want[i].bytes,
		       want[i].live);
	return 0;
}
