/* SPDX-License-Identifier: MIT */
/*
 * What an event's time stamp costs: ns per tt_ticks_of() call with the TSC (what
 * every recorded allocation and free reads, where the TSC is invariant) and with
 * CLOCK_MONOTONIC (the fallback), in a loop of 10 M calls, best of 5.
 *
 * usage: bench_clock
 */
#include <stdio.h>

#include "../src/common/clock.h"

static double per_call(bool tsc)
{
	const long n = 10000000;
	double best = 1e9;
	for (int r = 0; r < 5; r++) {
		uint64_t sum = 0, t0 = tt_now_ns();
		for (long i = 0; i < n; i++)
			sum += tt_ticks_of(tsc);
		uint64_t t1 = tt_now_ns();
		__asm__ volatile("" ::"r"(sum));
		double ns = (double)(t1 - t0) / (double)n;
		if (ns < best)
			best = ns;
	}
	return best;
}

int main(void)
{
	printf("time stamp, ns a call (best of 5 x 10 M):\n");
	if (TT_HAVE_TSC && tt_tsc_invariant())
		printf("  tsc (invariant)    %.2f\n", per_call(true));
	else
		printf("  tsc                not used here (not invariant)\n");
	printf("  CLOCK_MONOTONIC    %.2f\n", per_call(false));
	return 0;
}
