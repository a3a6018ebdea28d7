/* SPDX-License-Identifier: MIT */
/*
 * Producer-side cost: ns per recorded event on the application thread, for
 *   alloc_sampled  an allocation with a caller-given 12-frame stack (cache hit),
 *   alloc          thagtrace_record_alloc: site count + frame-pointer walk + event,
 *   free           a free event.
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

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 15;
	if (rounds < 1 || rounds > 1000)
		rounds = 15;
	const char *dir = support_tmpdir("producer");
	struct thagtrace_config c;
	thagtrace_config_init(&c);
	snprintf(c.output_dir, sizeof(c.output_dir), "%s", dir);
	c.ring_kb = 16 * 1024;
	c.sample_mode = THAGTRACE_SAMPLE_ALL; /* the cost of a recorded event */
	if (thagtrace_start(&c) != 0)
		return 1;
	t = thagtrace_thread_register("bench", NULL);
	static const char *const names[] = {"alloc_sampled (12-frame stack given)",
					    "alloc (site + frame-pointer walk)", "free"};
	double result[3];
	for (int kind = 0; kind < 3; kind++) {
		double *ns = calloc((size_t)rounds, sizeof(double));
		nested(10, kind, 0x100000); /* warm-up: defines the stacks */
		wait_drained();
		for (int r = 0; r < rounds; r++) {
			double t0 = bench_now();
			nested(10, kind, 0x100000);
			ns[r] = (bench_now() - t0) * 1e9 / BATCH;
			wait_drained();
		}
		result[kind] = bench_median(ns, rounds);
		free(ns);
	}
	struct thagtrace_thread_stats st;
	thagtrace_thread_stats(t, &st);
	thagtrace_thread_unregister(t);
	thagtrace_stop();
	for (int kind = 0; kind < 3; kind++)
		printf("producer %-38s %6.1f ns/event (median of %d batches of %d)\n", names[kind],
		       result[kind], rounds, BATCH);
	printf("producer events %llu, dropped %llu\n", (unsigned long long)st.emitted,
	       (unsigned long long)st.dropped);
	support_rmdir(dir);
	return st.dropped ? 1 : 0;
}
