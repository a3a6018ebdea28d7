/* SPDX-License-Identifier: MIT */
/*
 * Victim: threads ending every way. usage: victim_threads MODE [N]
 *   exit      threads end with pthread_exit
 *   main_exits  the main thread leaves through pthread_exit while 16 threads work
 *             (the process ends, exit status 0, when the last of them does)
 *   rename    4 threads name themselves once their .bin exists in $THAGTRACE_OUT
 *   cancel    threads are cancelled while allocating
 *   detached  detached threads, the main thread waits on a counter
 *   many N    N short-lived threads, 8 at a time
 *   stress N  N threads at once, cross-thread frees (every one allocates 2000)
 *   serial N  N threads one after another, 10 ms apart (time for the writer to take
 *             each one's handle back, so the next reuses it)
 *   flood N   N threads each allocating and freeing FLOOD blocks of FLOOD_SIZE bytes
 *             (the large tier: every one sampled) as fast as they can
 * Each worker but flood's does ALLOCS allocations of 64 bytes from one site. Prints
 * "threads T allocs A" for what ran.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ALLOCS 2000

static _Atomic int finished;
static void **handoff[1024];

__attribute__((noinline)) static void **allocate(int n)
{
	void **v = malloc(sizeof(void *) * (size_t)n);
	for (int i = 0; i < n; i++)
		v[i] = malloc(64);
	return v;
}

static void release(void **v, int n)
{
	for (int i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void *worker_exit(void *arg)
{
	(void)arg;
	pthread_setname_np(pthread_self(), "tt-worker"); /* after its registration */
	release(allocate(ALLOCS), ALLOCS);
	pthread_exit(NULL);
}

static void *worker_rename(void *arg)
{
	(void)arg;
	release(allocate(ALLOCS), ALLOCS);
	/* Wait (5 s at most) for the writer to have written this thread's first frame,
	 * its THREAD record in it, past the 24-byte file header. */
	char path[4096];
	const char *dir = getenv("THAGTRACE_OUT");
	snprintf(path, sizeof(path), "%s/%d-%d.bin", dir ? dir : ".", (int)getpid(), gettid());
	struct stat st;
	for (int i = 0; i < 5000 && (stat(path, &st) != 0 || st.st_size <= 24); i++)
		usleep(1000);
	pthread_setname_np(pthread_self(), "tt-worker");
	release(allocate(ALLOCS), ALLOCS);
	return NULL;
}

static void *worker_cancel(void *arg)
{
	(void)arg;
	for (;;) {
		release(allocate(100), 100);
		pthread_testcancel();
	}
	return NULL;
}

static void *worker_detached(void *arg)
{
	(void)arg;
	release(allocate(ALLOCS), ALLOCS);
	atomic_fetch_add(&finished, 1);
	return NULL;
}

static void *worker_short(void *arg)
{
	(void)arg;
	release(allocate(10), 10);
	return NULL;
}

#define FLOOD	   50000
#define FLOOD_SIZE 16384

static void *worker_flood(void *arg)
{
	(void)arg;
	for (int i = 0; i < FLOOD; i++) {
		char *volatile p = malloc(FLOOD_SIZE);
		p[0] = 1;
		free(p);
	}
	return NULL;
}

static pthread_barrier_t barrier;
static int nstress;

static void *worker_stress(void *arg)
{
	int me = (int)(intptr_t)arg;
	handoff[me] = allocate(ALLOCS);
	pthread_barrier_wait(&barrier);
	release(handoff[(me + 1) % nstress], ALLOCS); /* the neighbour's blocks */
	return NULL;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "exit";
	int n = argc > 2 ? atoi(argv[2]) : 16;
	pthread_t th[1024];
	int threads = 0;
	if (!strcmp(mode, "exit") || !strcmp(mode, "cancel")) {
		int cancel = !strcmp(mode, "cancel");
		for (int i = 0; i < 16; i++)
			pthread_create(&th[i], NULL, cancel ? worker_cancel : worker_exit, NULL);
		if (cancel) {
			usleep(20000);
			for (int i = 0; i < 16; i++)
				pthread_cancel(th[i]);
		}
		for (int i = 0; i < 16; i++)
			pthread_join(th[i], NULL);
		threads = 16;
	} else if (!strcmp(mode, "main_exits")) {
		for (int i = 0; i < 16; i++)
			pthread_create(&th[i], NULL, worker_exit, NULL);
		printf("threads 16\n");
		fflush(stdout);
		pthread_exit(NULL);
	} else if (!strcmp(mode, "rename")) {
		for (int i = 0; i < 4; i++)
			pthread_create(&th[i], NULL, worker_rename, NULL);
		for (int i = 0; i < 4; i++)
			pthread_join(th[i], NULL);
		threads = 4;
	} else if (!strcmp(mode, "detached")) {
		pthread_attr_t a;
		pthread_attr_init(&a);
		pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
		for (int i = 0; i < 16; i++)
			pthread_create(&th[i], &a, worker_detached, NULL);
		while (atomic_load(&finished) < 16)
			usleep(1000);
		usleep(20000); /* let them finish exiting */
		threads = 16;
	} else if (!strcmp(mode, "many")) {
		for (int done = 0; done < n; done += 8) {
			int k = n - done < 8 ? n - done : 8;
			for (int i = 0; i < k; i++)
				pthread_create(&th[i], NULL, worker_short, NULL);
			for (int i = 0; i < k; i++)
				pthread_join(th[i], NULL);
		}
		threads = n;
	} else if (!strcmp(mode, "serial")) {
		for (int i = 0; i < n; i++) {
			pthread_create(&th[0], NULL, worker_detached, NULL);
			pthread_join(th[0], NULL);
			usleep(10000);
		}
		threads = n;
	} else if (!strcmp(mode, "flood")) {
		for (int i = 0; i < n && i < 1024; i++)
			pthread_create(&th[threads++], NULL, worker_flood, NULL);
		for (int i = 0; i < threads; i++)
			pthread_join(th[i], NULL);
	} else if (!strcmp(mode, "stress")) {
		nstress = n > 1024 ? 1024 : n;
		pthread_barrier_init(&barrier, NULL, (unsigned)nstress);
		for (int i = 0; i < nstress; i++)
			pthread_create(&th[i], NULL, worker_stress, (void *)(intptr_t)i);
		for (int i = 0; i < nstress; i++)
			pthread_join(th[i], NULL);
		threads = nstress;
	} else {
		fprintf(stderr, "unknown mode %s\n", mode);
		return 2;
	}
	printf("threads %d\n", threads);
	return 0;
}
