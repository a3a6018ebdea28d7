/* SPDX-License-Identifier: MIT */
/*
 * Producer-side cost: ns per event on the application thread, for
 *   alloc_sampled  an allocation with a caller-given 12-frame stack (cache hit),
 *   alloc          thagtrace_record_alloc: site count + frame-pointer walk + event,
 *   free           a free event,
 * all recorded (sample mode "all"); then, in a second session with the default
 * "tiered" sampling, thagtrace_record_alloc of small blocks from one call site:
 *   tiered 1%      the boost held off (threshold 1e12): 99 % only counted,
 *   tiered hot     the default boost: a site this hot is recorded at 10 %.
 * Batches of BATCH events are timed while the writer drains on the other core; the
 * ring (16 MiB) never fills, which the benchmark checks (a drop is cheaper than a
 * record and would flatter the figure). Prints the median over ROUNDS batches.
 * usage: bench_producer [ROUNDS]
 */
#include <sched.h>

#include "bench_util.h"
#include "thagtrace.h"

#define BATCH 100000

static struct thagtrace_thread *t;

static void wait_drained(void)
{
	struct thagtrace_thread_stats st;
	do {
		sched_yield();
		thagtrace_thread_stats(t, &st);
	} while (st.recorded + st.dropped < st.emitted);
}

/* A few real frames below the record call, as in a program. */
static __attribute__((noinline)) void nested(int depth, int kind, uintptr_t base)
{
	if (depth > 0) {
		nested(depth - 1, kind, base);
		__asm__ volatile("" ::: "memory");
		return;
	}
	static const uintptr_t frames[12] = {0x401000, 0x401100, 0x401200, 0x401300,
					     0x401400, 0x401500, 0x401600, 0x401700,
					     0x401800, 0x401900, 0x401a00, 0x401b00};
	for (uintptr_t i = 0; i < BATCH; i++) {
		void *p = (void *)(base + 16 * i);
		if (kind == 0)
			thagtrace_record_alloc_sampled(t, p, 64, 0.25, frames, 12);
		else if (kind == 1)
			thagtrace_record_alloc(t, p, 64);
		else
			thagtrace_record_free(t, p);
	}
}

static double measure(int kind, int rounds)
{
	double *ns = calloc((size_t)rounds, sizeof(double));
	/* Warm-up: defines the stacks, and under tiered sampling lets the set of
	 * sampled pointers touch its pages: a one-time cost per process, spread over
	 * its first millions of allocations (at 1 % sampling, ~70 K inserts touch its
	 * 8192 slot pages), so the median is the steady state. */
	for (int w = 0; w < 40; w++) {
		nested(10, kind, 0x100000);
		wait_drained();
	}
	for (int r = 0; r < rounds; r++) {
		double t0 = bench_now();
		nested(10, kind, 0x100000);
		ns[r] = (bench_now() - t0) * 1e9 / BATCH;
		wait_drained();
	}
	double m = bench_median(ns, rounds);
	free(ns);
	return m;
}

static int session(uint32_t mode, double threshold, const char *dir)
{
	struct thagtrace_config c;
	thagtrace_config_init(&c);
	snprintf(c.output_dir, sizeof(c.output_dir), "%s", dir);
	c.ring_kb = 16 * 1024;
	c.sample_mode = mode;
	if (threshold > 0)
		c.boost_threshold = (uint64_t)threshold;
	if (thagtrace_start(&c) != 0)
		return -1;
	t = thagtrace_thread_register("bench", NULL);
	return 0;
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 15;
	if (rounds < 1 || rounds > 1000)
		rounds = 15;
	const char *dir = support_tmpdir("producer");
	if (session(THAGTRACE_SAMPLE_ALL, 0, dir) != 0)
		return 1;
	static const char *const names[] = {
	    "alloc_sampled (12-frame stack given)", "alloc (site + frame-pointer walk)", "free",
	    "alloc, tiered 1% (boost off)", "alloc, tiered hot site (10%)"};
	double result[5];
	for (int kind = 0; kind < 3; kind++)
		result[kind] = measure(kind, rounds);
	struct thagtrace_thread_stats st;
	thagtrace_thread_stats(t, &st);
	uint64_t emitted = st.emitted, dropped = st.dropped;
	thagtrace_thread_unregister(t);
	thagtrace_stop();
	/* Unsampled path: counted in the site table, the draw says no. */
	session(THAGTRACE_SAMPLE_TIERED, 1e12, dir);
	result[3] = measure(1, rounds);
	thagtrace_thread_unregister(t);
	thagtrace_stop();
	session(THAGTRACE_SAMPLE_TIERED, 0, dir);
	result[4] = measure(1, rounds);
	thagtrace_thread_stats(t, &st);
	dropped += st.dropped;
	thagtrace_thread_unregister(t);
	thagtrace_stop();
	for (int kind = 0; kind < 5; kind++)
		printf("producer %-38s %6.1f ns/event (median of %d batches of %d)\n", names[kind],
		       result[kind], rounds, BATCH);
	printf("producer events recorded in mode all %llu, dropped %llu\n",
	       (unsigned long long)emitted, (unsigned long long)dropped);
	support_rmdir(dir);
	return dropped ? 1 : 0;
}
