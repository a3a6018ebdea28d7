/* SPDX-License-Identifier: MIT */
/* Victim linked with -lthagtrace: tracing is stopped and started again through the
 * API while a thread keeps allocating. That thread must be traced in both sessions.
 * usage: victim_restart DIR   Prints "worker tid N" and "allocs N". */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "thagtrace.h"

static atomic_int stop_worker, worker_tid;
static atomic_long allocs;

static void *worker(void *arg)
{
	(void)arg;
	atomic_store(&worker_tid, (int)syscall(SYS_gettid));
	while (!atomic_load(&stop_worker)) {
		void *p = malloc(48);
		__asm__ volatile("" : : "r"(p) : "memory");
		free(p);
		atomic_fetch_add(&allocs, 1);
		if (atomic_load(&allocs) % 1000 == 0)
			usleep(100);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	struct thagtrace_config c;
	thagtrace_config_init(&c);
	snprintf(c.output_dir, sizeof(c.output_dir), "%s", argv[1]);
	c.sample_mode = THAGTRACE_SAMPLE_ALL;
	if (thagtrace_start(&c) != 0)
		return 1;
	pthread_t th;
	pthread_create(&th, NULL, worker, NULL);
	usleep(50000);
	thagtrace_stop();
	if (thagtrace_start(&c) != 0)
		return 1;
	long between = atomic_load(&allocs); /* counted from the second start on */
	while (atomic_load(&allocs) < between + 2000)
		usleep(1000);
	atomic_store(&stop_worker, 1);
	pthread_join(th, NULL);
	thagtrace_stop();
	printf("worker tid %d\nallocs %ld\n", atomic_load(&worker_tid), atomic_load(&allocs));
	return 0;
}
