/* SPDX-License-Identifier: MIT */
/*
 * 200-thread stress on the explicit API. Every thread registers, records a known
 * number of allocations of known sizes, frees half of its own blocks and a quarter of
 * its neighbour's (cross-thread frees), and unregisters. After stop, the decoded
 * files must account for every event of every thread:
 *   END.emitted == emitted by the thread, recorded + dropped == emitted,
 *   records in the file == END.recorded, bytes in the file + dropped bytes == bytes
 *   allocated, .freq counts == allocations (exact, drops or not).
 * With PACE=1 a worker yields while its ring holds more than ~1000 undrained events
 * (the consumer keeping up: no drops, so every identity is checked). 1000 allocation
 * records (48 bytes) pass the half-full mark of a 64 KiB ring, so the early wake-up
 * is exercised too.; with PACE=0 it
 * never waits and the drop accounting is what is checked.
 * usage: stress_threads [THREADS [EVENTS [RING_KB [PACE]]]]   (fixed; exit 0 = pass)
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../support.h"
#include "thagtrace.h"

struct worker {
	pthread_t th;
	unsigned index;
	int32_t tid;
	uint64_t allocs, frees, bytes;
	uint64_t alloc_ptr_sum; /* pointers this thread allocated */
	uint64_t freed_ptr_sum; /* pointers this thread freed (own and neighbour's) */
	uint64_t rc_dropped;	/* record calls that returned THAGTRACE_EDROPPED */
	struct thagtrace_thread_stats stats;
};

static unsigned nthreads = 200, nevents = 20000;
static int pace = 1;
static struct worker *workers;
static pthread_barrier_t barrier;

/* A distinct fake address per (thread, event): nothing is really allocated. */
static uintptr_t ptr_of(unsigned thread, unsigned i)
{
	return ((uintptr_t)(thread + 1) << 32) | ((uintptr_t)i << 4);
}

/* Small, medium and large sizes from a fixed per-thread sequence. */
static uint64_t size_of(unsigned thread, unsigned i)
{
	uint64_t x = (uint64_t)thread * 2654435761u + i * 40503u;
	x ^= x >> 13;
	switch (x % 10) {
	case 0:
		return 16384 + x % 65536;
	case 1:
	case 2:
		return 1024 + x % 9216;
	default:
		return 8 + x % 1016;
	}
}

/* Paced mode: let the writer catch up instead of overflowing the ring. */
static void maybe_wait(struct thagtrace_thread *t, unsigned i)
{
	if (!pace || i % 64)
		return;
	struct thagtrace_thread_stats st;
	for (;;) {
		thagtrace_thread_stats(t, &st);
		if (st.emitted - st.recorded - st.dropped < 1000)
			return;
		sched_yield();
	}
}

static int count(struct worker *w, int rc)
{
	if (rc == THAGTRACE_EDROPPED)
		w->rc_dropped++;
	else if (rc != 0)
		return -1;
	return 0;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	char name[16];
	snprintf(name, sizeof(name), "w%03u", w->index);
	w->tid = (int32_t)syscall(SYS_gettid);
	int err = 0;
	struct thagtrace_thread *t = thagtrace_thread_register(name, &err);
	if (!t) {
		fprintf(stderr, "register failed: %s\n", thagtrace_strerror(err));
		exit(1);
	}
	for (unsigned i = 0; i < nevents; i++) {
		maybe_wait(t, i);
		uint64_t sz = size_of(w->index, i);
		if (count(w, thagtrace_record_alloc(t, (void *)ptr_of(w->index, i), sz)))
			exit(1);
		w->allocs++;
		w->bytes += sz;
		w->alloc_ptr_sum += ptr_of(w->index, i);
	}
	pthread_barrier_wait(&barrier);
	/* Own blocks with i % 4 in {0, 1}; the neighbour's with i % 4 == 2. */
	unsigned next = (w->index + 1) % nthreads;
	for (unsigned i = 0; i < nevents; i++) {
		uintptr_t p = 0;
		if (i % 4 < 2)
			p = ptr_of(w->index, i);
		else if (i % 4 == 2)
			p = ptr_of(next, i);
		if (!p)
			continue;
		maybe_wait(t, i);
		if (count(w, thagtrace_record_free(t, (void *)p)))
			exit(1);
		w->frees++;
		w->freed_ptr_sum += p;
	}
	thagtrace_thread_stats(t, &w->stats);
	thagtrace_thread_unregister(t);
	return NULL;
}

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "FAIL: " __VA_ARGS__);                                     \
			fputc('\n', stderr);                                                       \
			failures++;                                                                \
		}                                                                                  \
	} while (0)

int main(int argc, char **argv)
{
	unsigned ring_kb = 64;
	if (argc > 1)
		nthreads = (unsigned)atoi(argv[1]);
	if (argc > 2)
		nevents = (unsigned)atoi(argv[2]);
	if (argc > 3)
		ring_kb = (unsigned)atoi(argv[3]);
	if (argc > 4)
		pace = atoi(argv[4]);
	if (nthreads < 2 || nevents < 4) {
		fprintf(stderr,
			"usage: stress_threads [THREADS>=2 [EVENTS>=4 [RING_KB [PACE]]]]\n");
		return 2;
	}
	const char *dir = support_tmpdir("stress");
	char outdir[512];
	snprintf(outdir, sizeof(outdir), "%s", dir);

	struct thagtrace_config c;
	thagtrace_config_init(&c);
	snprintf(c.output_dir, sizeof(c.output_dir), "%s", outdir);
	c.ring_kb = ring_kb;
	c.sample_mode = THAGTRACE_SAMPLE_ALL; /* every event, so every one is accounted */
	int rc = thagtrace_start(&c);
	if (rc != 0) {
		fprintf(stderr, "start: %s\n", thagtrace_strerror(rc));
		return 1;
	}
	workers = calloc(nthreads, sizeof(*workers));
	pthread_barrier_init(&barrier, NULL, nthreads);
	for (unsigned i = 0; i < nthreads; i++) {
		workers[i].index = i;
		pthread_attr_t attr;
		pthread_attr_init(&attr);
		pthread_attr_setstacksize(&attr, 256 * 1024);
		if (pthread_create(&workers[i].th, &attr, worker_main, &workers[i]) != 0) {
			fprintf(stderr, "pthread_create %u failed\n", i);
			return 1;
		}
		pthread_attr_destroy(&attr);
	}
	for (unsigned i = 0; i < nthreads; i++)
		pthread_join(workers[i].th, NULL);
	thagtrace_stop();

	struct support_dir d;
	int failures = 0;
	CHECK(support_read_dir(outdir, &d) == 0, "decoding: %s", d.first_error);
	/* The library interposes malloc too: the main thread's own allocations give it
	 * files as well. The workers are found by tid below. */
	CHECK(d.nthreads >= nthreads, "%zu thread files, want at least %u", d.nthreads, nthreads);
	uint64_t tot_emitted = 0, tot_recorded = 0, tot_dropped = 0, tot_ptr_alloc = 0,
		 tot_ptr_free = 0, file_alloc_ptrs = 0, file_free_ptrs = 0;
	for (unsigned i = 0; i < nthreads; i++) {
		struct worker *w = &workers[i];
		struct support_thread *t = support_find_tid(&d, w->tid);
		CHECK(t, "no files for thread %u (tid %d)", i, w->tid);
		if (!t)
			continue;
		uint64_t emitted = w->allocs + w->frees;
		CHECK(t->has_end, "thread %u: no END record", i);
		CHECK(t->end_emitted == emitted, "thread %u: END emitted %" PRIu64 ", did %" PRIu64,
		      i, t->end_emitted, emitted);
		CHECK(t->end_recorded + t->end_dropped == emitted,
		      "thread %u: recorded %" PRIu64 " + dropped %" PRIu64 " != emitted %" PRIu64,
		      i, t->end_recorded, t->end_dropped, emitted);
		CHECK(t->allocs + t->frees == t->end_recorded,
		      "thread %u: %" PRIu64 " events in the file, END says %" PRIu64, i,
		      t->allocs + t->frees, t->end_recorded);
		CHECK(t->end_dropped == w->rc_dropped,
		      "thread %u: %" PRIu64 " drops on disk, %" PRIu64 " seen by the caller", i,
		      t->end_dropped, w->rc_dropped);
		CHECK(w->stats.emitted == emitted, "thread %u: stats emitted", i);
		CHECK(t->site_count == w->allocs && t->site_bytes == w->bytes,
		      "thread %u: .freq says %" PRIu64 " allocs / %" PRIu64 " bytes, did %" PRIu64
		      " / %" PRIu64,
		      i, t->site_count, t->site_bytes, w->allocs, w->bytes);
		CHECK(t->stack_ids_ok, "thread %u: an event names an undefined stack", i);
		CHECK(t->ts_monotonic, "thread %u: timestamps go backwards", i);
		if (t->end_dropped == 0) {
			CHECK(t->alloc_bytes == w->bytes,
			      "thread %u: bytes %" PRIu64 " != %" PRIu64, i, t->alloc_bytes,
			      w->bytes);
			CHECK(t->alloc_ptr_sum == w->alloc_ptr_sum, "thread %u: alloc identities",
			      i);
			CHECK(t->free_ptr_sum == w->freed_ptr_sum, "thread %u: free identities", i);
		}
		tot_emitted += emitted;
		tot_recorded += t->end_recorded;
		tot_dropped += t->end_dropped;
		tot_ptr_alloc += w->alloc_ptr_sum;
		tot_ptr_free += w->freed_ptr_sum;
		file_alloc_ptrs += t->alloc_ptr_sum;
		file_free_ptrs += t->free_ptr_sum;
	}
	CHECK(d.process_end_seen, "no process totals");
	uint64_t all_emitted = 0, all_recorded = 0, all_dropped = 0;
	for (size_t i = 0; i < d.nthreads; i++) {
		all_emitted += d.threads[i].end_emitted;
		all_recorded += d.threads[i].end_recorded;
		all_dropped += d.threads[i].end_dropped;
	}
	CHECK(d.pe_threads == d.nthreads && d.pe_emitted == all_emitted &&
		  d.pe_recorded == all_recorded && d.pe_dropped == all_dropped,
	      "process totals disagree with the threads' files");
	/* Every block freed (own or neighbour's) was allocated by someone. */
	uint64_t want_free = 0;
	for (unsigned i = 0; i < nthreads; i++)
		for (unsigned k = 0; k < nevents; k++)
			if (k % 4 < 3)
				want_free += ptr_of(i, k);
	CHECK(tot_ptr_free == want_free, "freed identities do not match allocated ones");
	if (tot_dropped == 0)
		CHECK(file_alloc_ptrs == tot_ptr_alloc && file_free_ptrs == tot_ptr_free,
		      "identities on disk differ from what was recorded");

	if (pace)
		CHECK(tot_dropped == 0, "paced run dropped %" PRIu64 " events", tot_dropped);
	else
		CHECK(tot_dropped > 0, "an unpaced run on small rings should overflow");
	printf("stress_threads: %u threads x %u allocs: emitted %" PRIu64 ", recorded %" PRIu64
	       ", dropped %" PRIu64 " (%.2f%%): %s\n",
	       nthreads, nevents, tot_emitted, tot_recorded, tot_dropped,
	       100.0 * (double)tot_dropped / (double)tot_emitted, failures ? "FAIL" : "ok");
	support_dir_free(&d);
	if (!failures)
		support_rmdir(outdir);
	free(workers);
	return failures ? 1 : 0;
}
