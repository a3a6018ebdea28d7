/* SPDX-License-Identifier: MIT */
/*
 * fork beside busy threads: what tracing adds to a program that forks (to run a
 * command, as servers and build tools do) while its other threads allocate. Run it
 * untraced and under LD_PRELOAD (bench/interleave.sh does both, interleaved).
 *
 *   steady THREADS FORKS  THREADS threads each make 2 M allocations (mixed sizes,
 *                         a window of 256 live blocks) while the main thread forks
 *                         FORKS children that leave through _exit at once, one at a
 *                         time. Every fork copies the parent's page tables and
 *                         write-protects its private pages: memory the tracer's
 *                         threads write (their rings) then faults again, page by
 *                         page, unless the child does not inherit it.
 *   churn FORKS           one thread starts and joins threads that allocate once,
 *                         without pause, while the main thread forks FORKS
 *                         children as above (a reviewer's case: handles of ended
 *                         threads pile up and every child had to unmap them).
 *
 * Prints the forks' median latency (fork to the child's reaped exit) and the
 * workers' allocations per second; time(1) or interleave.sh give wall and CPU.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_util.h"

#define KEEP(p)	   __asm__ volatile("" ::"r"(p) : "memory")
#define PER_THREAD 2000000
#define WINDOW	   256

static atomic_int stop;

static void *worker(void *arg)
{
	uint64_t x = (uintptr_t)arg * 0x9E3779B97F4A7C15ull + 1;
	void *live[WINDOW] = {0};
	for (long i = 0; i < PER_THREAD; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		unsigned r = (unsigned)(x % 100);
		size_t n = r < 80 ? 16 + x % 497 : r < 95 ? 1024 + x % 9216 : 10240 + x % 92160;
		char *p = malloc(n);
		KEEP(p);
		p[0] = 1;
		free(live[i % WINDOW]);
		live[i % WINDOW] = p;
	}
	for (int i = 0; i < WINDOW; i++)
		free(live[i]);
	return NULL;
}

static void *short_lived(void *arg)
{
	(void)arg;
	void *p = malloc(100);
	KEEP(p);
	free(p);
	return NULL;
}

static void *creator(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		pthread_t t;
		if (pthread_create(&t, NULL, short_lived, NULL) == 0)
			pthread_join(t, NULL);
	}
	return NULL;
}

/* FORKS children through _exit, one at a time: their latencies into lat[]. */
static int fork_loop(int forks, double *lat)
{
	for (int i = 0; i < forks; i++) {
		double t0 = bench_now();
		pid_t p = fork();
		if (p < 0)
			return -1;
		if (p == 0)
			_exit(0);
		int st;
		if (waitpid(p, &st, 0) != p || !WIFEXITED(st))
			return -1;
		lat[i] = bench_now() - t0;
	}
	return 0;
}

int main(int argc, char **argv)
{
	bool steady = argc == 4 && !strcmp(argv[1], "steady");
	if (!steady && !(argc == 3 && !strcmp(argv[1], "churn"))) {
		fprintf(stderr, "usage: bench_fork steady THREADS FORKS | churn FORKS\n");
		return 2;
	}
	int threads = steady ? atoi(argv[2]) : 1, forks = atoi(argv[argc - 1]);
	if (threads < 1 || forks < 1) {
		fprintf(stderr, "bench_fork: THREADS and FORKS must be >= 1\n");
		return 2;
	}
	pthread_t *t = calloc((size_t)threads, sizeof(*t));
	double *lat = calloc((size_t)forks, sizeof(*lat));
	double t0 = bench_now();
	for (int i = 0; i < threads; i++)
		pthread_create(&t[i], NULL, steady ? worker : creator, (void *)(uintptr_t)(i + 1));
	int rc = fork_loop(forks, lat);
	if (!steady)
		atomic_store(&stop, 1);
	double forked = bench_now() - t0;
	for (int i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	double all = bench_now() - t0;
	if (rc != 0) {
		fprintf(stderr, "bench_fork: a fork or its child failed\n");
		return 1;
	}
	printf("forks %d in %.3f s, median %.3f ms a fork", forks, forked,
	       bench_median(lat, forks) * 1e3);
	if (steady)
		printf("; %d threads x %d allocations in %.3f s (%.1f M/s)", threads, PER_THREAD,
		       all, threads * (double)PER_THREAD / all / 1e6);
	printf("\n");
	free(lat);
	free(t);
	return 0;
}
