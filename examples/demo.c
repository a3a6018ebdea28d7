/* SPDX-License-Identifier: MIT */
/*
 * The demo scripts/demo.sh traces: an ordinary program (plain malloc/free, no tracer
 * linked) with 200 threads and allocation sites a report should tell apart:
 *   tokenize       many tiny blocks (8-64 B): the "thousand cuts"
 *   xmalloc        a C-style wrapper, called from parse_request (64-511 B) and
 *                  format_reply (1-4 KiB): one call site, two stacks
 *   read_image     few large blocks (16-256 KiB, always sampled: exact figures)
 *   send_message   192-447 B, freed by the next thread (a queue between threads)
 *   cache_insert   4 blocks of 2500 B per thread, never freed: the leak
 * Sizes come from fixed seeds, so every run prints the same totals: compare them
 * with thagtrace-report's. usage: demo (no arguments)
 */
#define _GNU_SOURCE /* pthread_setname_np */
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define THREADS	    200
#define TINY_PER    12000 /* tokenize: 2.4 M blocks in all */
#define TINY_LIVE   16	  /* each thread keeps its last 16 tokens live */
#define REQUEST_PER 400
#define REPLY_PER   100
#define IMAGE_PER   5
#define MESSAGE_PER 200
#define LEAK_PER    4
#define LEAK_SIZE   2500
#define ROUNDS	    4  /* work is done in rounds so threads overlap */
#define HASH_ROUNDS 24 /* work per token, between allocations */

/* Totals per site, summed over threads after they are joined. */
enum site { TOKENIZE, REQUEST, REPLY, IMAGE, MESSAGE, LEAK, NSITES };
static const char *const site_name[NSITES] = {
    "tokenize",	  "parse_request>xmalloc", "format_reply>xmalloc",
    "read_image", "send_message",	   "cache_insert (leaked)",
};

struct message {
	struct message *next;
	size_t size;
	unsigned char body[];
};

/* One queue per thread: thread i sends to queue i+1 and receives on queue i, so
 * every message is freed by a thread other than the one that allocated it. */
struct queue {
	pthread_mutex_t lock;
	pthread_cond_t nonempty;
	struct message *head, *tail;
};

struct worker {
	unsigned id;
	uint64_t rng;
	uint64_t calls[NSITES], bytes[NSITES];
	uint64_t checksum; /* keeps the compiler from dropping unused blocks */
	void *leaked[LEAK_PER];
};

static struct queue queues[THREADS];
static struct worker workers[THREADS];
static volatile uint64_t checksum_sink;

static uint64_t next_rand(struct worker *w)
{
	/* xorshift64*: deterministic per thread */
	w->rng ^= w->rng >> 12;
	w->rng ^= w->rng << 25;
	w->rng ^= w->rng >> 27;
	return w->rng * 0x2545F4914F6CDD1DULL;
}

static size_t pick(struct worker *w, size_t lo, size_t hi)
{
	return lo + (size_t)(next_rand(w) % (hi - lo + 1));
}

static void count(struct worker *w, enum site s, size_t size)
{
	w->calls[s]++;
	w->bytes[s] += size;
}

/* Touch a block so the allocation is real work the compiler must keep. */
static void fill(struct worker *w, void *p, size_t size)
{
	memset(p, (int)(w->id & 0xff), size);
	w->checksum += ((unsigned char *)p)[size - 1];
}

/* What a program does with its tokens between allocations: hash them (FNV-1a). */
static void hash(struct worker *w, const unsigned char *p, size_t size)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (unsigned round = 0; round < HASH_ROUNDS; round++)
		for (size_t i = 0; i < size; i++)
			h = (h ^ p[i] ^ round) * 0x100000001b3ULL;
	w->checksum += h & 1;
}

/* The wrapper: every block it returns has this one call site (its call to malloc);
 * only the stacks tell its callers apart. Not inlined, not a tail call. */
__attribute__((noinline)) static void *xmalloc(size_t size)
{
	void *p = malloc(size);
	if (!p) {
		fputs("demo: out of memory\n", stderr);
		exit(1);
	}
	return p;
}

__attribute__((noinline)) static void tokenize(struct worker *w, unsigned n)
{
	void *live[TINY_LIVE] = {0};
	for (unsigned i = 0; i < n; i++) {
		size_t size = pick(w, 8, 64);
		char *tok = malloc(size);
		if (!tok)
			exit(1);
		fill(w, tok, size);
		hash(w, (unsigned char *)tok, size);
		count(w, TOKENIZE, size);
		free(live[i % TINY_LIVE]);
		live[i % TINY_LIVE] = tok;
	}
	for (unsigned i = 0; i < TINY_LIVE; i++)
		free(live[i]);
}

__attribute__((noinline)) static void parse_request(struct worker *w, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		size_t size = pick(w, 64, 511);
		char *req = xmalloc(size);
		fill(w, req, size);
		count(w, REQUEST, size);
		free(req);
	}
}

__attribute__((noinline)) static void format_reply(struct worker *w, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		size_t size = pick(w, 1024, 4095);
		char *reply = xmalloc(size);
		fill(w, reply, size);
		count(w, REPLY, size);
		free(reply);
	}
}

__attribute__((noinline)) static void read_image(struct worker *w, unsigned n)
{
	void *img[IMAGE_PER];
	for (unsigned i = 0; i < n; i++) {
		size_t size = pick(w, 16 << 10, 256 << 10);
		img[i] = malloc(size);
		if (!img[i])
			exit(1);
		fill(w, img[i], size);
		count(w, IMAGE, size);
	}
	for (unsigned i = 0; i < n; i++)
		free(img[i]);
}

__attribute__((noinline)) static void send_message(struct worker *w, unsigned n)
{
	struct queue *q = &queues[(w->id + 1) % THREADS];
	for (unsigned i = 0; i < n; i++) {
		size_t size = pick(w, 192, 447);
		struct message *m = malloc(size);
		if (!m)
			exit(1);
		fill(w, m, size);
		m->next = NULL;
		m->size = size;
		count(w, MESSAGE, size);
		pthread_mutex_lock(&q->lock);
		if (q->tail)
			q->tail->next = m;
		else
			q->head = m;
		q->tail = m;
		pthread_cond_signal(&q->nonempty);
		pthread_mutex_unlock(&q->lock);
	}
}

/* Receive and free n messages sent by the previous thread. */
__attribute__((noinline)) static void receive_messages(struct worker *w, unsigned n)
{
	struct queue *q = &queues[w->id];
	for (unsigned i = 0; i < n; i++) {
		pthread_mutex_lock(&q->lock);
		while (!q->head)
			pthread_cond_wait(&q->nonempty, &q->lock);
		struct message *m = q->head;
		q->head = m->next;
		if (!q->head)
			q->tail = NULL;
		pthread_mutex_unlock(&q->lock);
		w->checksum += m->body[m->size - sizeof(*m) - 1];
		free(m);
	}
}

__attribute__((noinline)) static void cache_insert(struct worker *w, unsigned slot)
{
	void *entry = malloc(LEAK_SIZE);
	if (!entry)
		exit(1);
	fill(w, entry, LEAK_SIZE);
	count(w, LEAK, LEAK_SIZE);
	w->leaked[slot] = entry; /* never freed */
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	char name[16];
	snprintf(name, sizeof(name), "worker-%u", w->id);
	pthread_setname_np(pthread_self(), name);
	for (unsigned r = 0; r < ROUNDS; r++) {
		tokenize(w, TINY_PER / ROUNDS);
		parse_request(w, REQUEST_PER / ROUNDS);
		format_reply(w, REPLY_PER / ROUNDS);
		send_message(w, MESSAGE_PER / ROUNDS);
		cache_insert(w, r % LEAK_PER);
		receive_messages(w, MESSAGE_PER / ROUNDS);
	}
	read_image(w, IMAGE_PER);
	return NULL;
}

int main(void)
{
	_Static_assert(ROUNDS == LEAK_PER, "one leaked block per round");
	pthread_t th[THREADS];
	for (unsigned i = 0; i < THREADS; i++) {
		pthread_mutex_init(&queues[i].lock, NULL);
		pthread_cond_init(&queues[i].nonempty, NULL);
		workers[i].id = i;
		workers[i].rng = 0x9E3779B97F4A7C15ULL * (i + 1); /* fixed seeds */
	}
	for (unsigned i = 0; i < THREADS; i++) {
		int rc = pthread_create(&th[i], NULL, worker_main, &workers[i]);
		if (rc) {
			fprintf(stderr, "demo: pthread_create: %s\n", strerror(rc));
			return 1;
		}
	}
	for (unsigned i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);

	uint64_t calls[NSITES] = {0}, bytes[NSITES] = {0}, checksum = 0;
	for (unsigned i = 0; i < THREADS; i++) {
		for (unsigned s = 0; s < NSITES; s++) {
			calls[s] += workers[i].calls[s];
			bytes[s] += workers[i].bytes[s];
		}
		checksum += workers[i].checksum;
	}
	uint64_t all_calls = 0, all_bytes = 0;
	for (unsigned s = 0; s < NSITES; s++) {
		all_calls += calls[s];
		all_bytes += bytes[s];
	}
	checksum_sink = checksum;
	printf("demo: %u threads made %" PRIu64 " allocations, %" PRIu64 " bytes; %" PRIu64
	       " blocks freed by another thread; leaked %" PRIu64 " blocks, %" PRIu64 " bytes\n",
	       THREADS, all_calls, all_bytes, calls[MESSAGE], calls[LEAK], bytes[LEAK]);
	printf("demo: exact totals per call site (the report's estimates should match):\n");
	for (unsigned s = 0; s < NSITES; s++)
		printf("  %-22s %9" PRIu64 " calls %11" PRIu64 " bytes (%.2f MiB)\n", site_name[s],
		       calls[s], bytes[s], (double)bytes[s] / (1 << 20));
	return 0;
}
