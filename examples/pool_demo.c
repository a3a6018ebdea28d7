/* SPDX-License-Identifier: MIT */
/*
 * A custom allocator traced through the explicit API: a per-thread pool of
 * fixed-size blocks that never calls malloc, so only its own calls to
 * thagtrace_record_alloc/free make it visible. Eight threads allocate from their
 * pools, pass a quarter of their blocks to a neighbour, which frees them
 * (cross-thread frees), and keep a few (a leak).
 * usage: pool_demo [OUTPUT_DIR]   (default: pool-demo-out)
 */
#define _POSIX_C_SOURCE 200809L /* pthread barriers under -std=c11 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "thagtrace.h"

#define THREADS	   8
#define BLOCKS	   20000
#define BLOCK_SIZE 256

struct pool {
	unsigned char *mem;
	void **free_list;
	size_t nfree;
	struct thagtrace_thread *trace;
	pthread_mutex_t lock; /* a neighbour returns blocks too */
};

static struct pool pools[THREADS];
static pthread_barrier_t barrier;
static void *handoff[THREADS][BLOCKS / 4];

static void *pool_alloc(struct pool *p, struct thagtrace_thread *t)
{
	pthread_mutex_lock(&p->lock);
	void *b = p->nfree ? p->free_list[--p->nfree] : NULL;
	pthread_mutex_unlock(&p->lock);
	if (b)
		thagtrace_record_alloc(t, b, BLOCK_SIZE); /* call site: here */
	return b;
}

static void pool_free(struct pool *p, struct thagtrace_thread *t, void *b)
{
	thagtrace_record_free(t, b); /* recorded by the thread that frees */
	pthread_mutex_lock(&p->lock);
	p->free_list[p->nfree++] = b;
	pthread_mutex_unlock(&p->lock);
}

static void *worker(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	char name[16];
	snprintf(name, sizeof(name), "pool-%u", id);
	struct thagtrace_thread *t = thagtrace_thread_register(name, NULL);
	struct pool *mine = &pools[id];
	void **kept = calloc(BLOCKS, sizeof(void *));
	size_t nkept = 0;
	for (unsigned i = 0; i < BLOCKS; i++) {
		void *b = pool_alloc(mine, t);
		if (!b)
			break;
		memset(b, (int)i, 16);
		if (i % 4 == 0)
			handoff[id][i / 4] = b; /* the neighbour frees these */
		else if (i % 97 == 0)
			continue; /* leaked on purpose */
		else
			kept[nkept++] = b;
	}
	for (size_t i = 0; i < nkept; i++)
		pool_free(mine, t, kept[i]);
	pthread_barrier_wait(&barrier);
	unsigned left = (id + THREADS - 1) % THREADS;
	for (unsigned i = 0; i < BLOCKS / 4; i++)
		if (handoff[left][i])
			pool_free(&pools[left], t, handoff[left][i]);
	free(kept);
	thagtrace_thread_unregister(t);
	return NULL;
}

int main(int argc, char **argv)
{
	struct thagtrace_config cfg;
	thagtrace_config_init(&cfg);
	snprintf(cfg.output_dir, sizeof(cfg.output_dir), "%s",
		 argc > 1 ? argv[1] : "pool-demo-out");
	/* Every event is recorded and 8 threads share 2 cores with the writer: give each
	 * ring room for a scheduler time slice of a tight allocation loop. */
	cfg.ring_kb = 1024;
	int rc = thagtrace_start(&cfg);
	if (rc != 0) {
		fprintf(stderr, "pool_demo: tracing not started: %s\n", thagtrace_strerror(rc));
		/* The program runs on untraced: recording on NULL handles is refused. */
	}
	for (unsigned i = 0; i < THREADS; i++) {
		pools[i].mem = malloc((size_t)BLOCKS * BLOCK_SIZE);
		pools[i].free_list = malloc(BLOCKS * sizeof(void *));
		for (unsigned k = 0; k < BLOCKS; k++)
			pools[i].free_list[k] =
			    pools[i].mem + (size_t)(BLOCKS - 1 - k) * BLOCK_SIZE;
		pools[i].nfree = BLOCKS;
		pthread_mutex_init(&pools[i].lock, NULL);
	}
	pthread_barrier_init(&barrier, NULL, THREADS);
	pthread_t th[THREADS];
	for (unsigned i = 0; i < THREADS; i++)
		pthread_create(&th[i], NULL, worker, (void *)(uintptr_t)i);
	for (unsigned i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	thagtrace_stop();
	printf("pool_demo: %u threads x %u blocks of %u bytes traced into %s\n", THREADS, BLOCKS,
	       BLOCK_SIZE, cfg.output_dir);
	return 0;
}
