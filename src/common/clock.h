/* SPDX-License-Identifier: MIT */
/*
 * Clocks. Events carry ticks: the CPU's time-stamp counter where it is invariant
 * (constant rate, runs in every C-state, so comparable across cores), which costs a
 * few ns, else CLOCK_MONOTONIC in ns (vDSO; ~25 ns on some VMs). The process file
 * records which, plus anchors (ticks, ns) from which readers convert.
 */
#ifndef TT_CLOCK_H
#define TT_CLOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <x86intrin.h>
#define TT_HAVE_TSC 1
#else
#define TT_HAVE_TSC 0
#endif

static inline uint64_t tt_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint64_t tt_realtime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* True when the TSC is invariant (CPUID 0x80000007 EDX bit 8). */
static inline bool tt_tsc_invariant(void)
{
#if TT_HAVE_TSC
	unsigned a, b, c, d;
	if (!__get_cpuid(0x80000000u, &a, &b, &c, &d) || a < 0x80000007u)
		return false;
	__get_cpuid(0x80000007u, &a, &b, &c, &d);
	return (d >> 8) & 1;
#else
	return false;
#endif
}

/* Ticks of the chosen clock: tsc when use_tsc, else CLOCK_MONOTONIC ns. */
static inline uint64_t tt_ticks_of(bool use_tsc)
{
#if TT_HAVE_TSC
	if (use_tsc)
		return __rdtsc();
#endif
	(void)use_tsc;
	return tt_now_ns();
}

#endif /* TT_CLOCK_H */
