/* SPDX-License-Identifier: MIT */
/*
 * The tracer's own memory at many threads: RSS with THREADS threads parked, before
 * and after each registers and records enough events to cycle its whole ring (every
 * ring page touched, the worst case). The difference is the tracer's cost: rings,
 * handles, site tables, the writer and its buffers.
 * usage: bench_rss [THREADS [RING_KB]]
 */
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include "bench_util.h"
#include "thagtrace.h"

static unsigned nthreads = 200, ring_kb = 64;
static pthread_barrier_t parked, registered, done;

static void *worker(void *arg)
{
	(void)arg;
	pthread_barrier_wait(&parked); /* RSS measured without the tracer */
	pthread_barrier_wait(&parked);
	struct thagtrace_thread *t = thagtrace_thread_register("rss", NULL);
	uintptr_t frames[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	unsigned events = ring_kb * 1024 / 48 * 3; /* three times round the ring */
	for (unsigned i = 0; i < events; i++) {
		frames[0] = 0x400000 + 16 * (i % 32);
		thagtrace_record_alloc_sampled(t, (void *)(uintptr_t)(i * 16 + 16), 100, 1.0,
					       frames, 8);
		thagtrace_record_site(t, 0x500000 + 16 * (i % 50), 100);
		if (i % 256 == 0) {
			struct thagtrace_thread_stats st;
			do {
				thagtrace_thread_stats(t, &st);
				if (st.emitted - st.recorded - st.dropped > 600)
					sched_yield();
			} while (st.emitted - st.recorded - st.dropped > 600);
		}
	}
	pthread_barrier_wait(&registered); /* RSS measured with the tracer */
	pthread_barrier_wait(&done);
	thagtrace_thread_unregister(t);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc > 1)
		nthreads = (unsigned)atoi(argv[1]);
	if (argc > 2)
		ring_kb = (unsigned)atoi(argv[2]);
	const char *dir = support_tmpdir("rss");
	char outdir[512];
	snprintf(outdir, sizeof(outdir), "%s", dir);
	pthread_barrier_init(&parked, NULL, nthreads + 1);
	pthread_barrier_init(&registered, NULL, nthreads + 1);
	pthread_barrier_init(&done, NULL, nthreads + 1);
	pthread_t *th = calloc(nthreads, sizeof(*th));
	for (unsigned i = 0; i < nthreads; i++) {
		pthread_attr_t a;
		pthread_attr_init(&a);
		pthread_attr_setstacksize(&a, 128 * 1024);
		pthread_create(&th[i], &a, worker, NULL);
		pthread_attr_destroy(&a);
	}
	pthread_barrier_wait(&parked);
	long before = bench_rss_kb();

	struct thagtrace_config c;
	thagtrace_config_init(&c);
	snprintf(c.output_dir, sizeof(c.output_dir), "%s", outdir);
	c.ring_kb = ring_kb;
	c.sample_mode = THAGTRACE_SAMPLE_ALL;
	if (thagtrace_start(&c) != 0)
		return 1;
	pthread_barrier_wait(&parked);
	pthread_barrier_wait(&registered);
	usleep(300000); /* let the writer open every file and flush */
	long after = bench_rss_kb();
	pthread_barrier_wait(&done);
	for (unsigned i = 0; i < nthreads; i++)
		pthread_join(th[i], NULL);
	thagtrace_stop();
	printf("rss: %u threads, %u KiB rings: process %ld KiB untraced, %ld KiB traced: "
	       "tracer %.1f MiB (%.0f KiB per thread)\n",
	       nthreads, ring_kb, before, after, (double)(after - before) / 1024,
	       (double)(after - before) / nthreads);
	support_rmdir(outdir);
	free(th);
	return 0;
}
