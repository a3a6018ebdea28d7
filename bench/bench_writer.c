/* SPDX-License-Identifier: MIT */
/*
 * Writer drain rate: events per second taken from the rings, encoded (MessagePack),
 * compressed (zstd) and written. THREADS producers each record EVENTS
 * allocation/free events (2:1) from 64 distinct stacks into rings large enough to
 * hold them all (nothing drops). Two figures:
 *   - capacity: events / CPU time of the writer thread (its schedstat), what one
 *     core of writer sustains, independent of how fast the producers are;
 *   - end to end: events / wall time from the first event until the writer has
 *     taken the last (bounded below by the producers' own time).
 * Also prints bytes per event on disk.
 * usage: bench_writer [THREADS [EVENTS]]   (THAGTRACE_ZSTD_LEVEL: the level, default 1)
 */
#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include "bench_util.h"
#include "thagtrace.h"

static unsigned nthreads = 2, nevents = 3000000;

/* CPU ns used so far by the thread named `comm` in this process, or 0. */
static uint64_t thread_cpu_ns(const char *comm)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	uint64_t ns = 0;
	char path[300], buf[64];
	while (d && (e = readdir(d))) {
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		int match = fgets(buf, sizeof(buf), f) && !strncmp(buf, comm, strlen(comm));
		fclose(f);
		if (!match)
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/schedstat", e->d_name);
		f = fopen(path, "r");
		unsigned long long v = 0;
		if (f && fscanf(f, "%llu", &v) == 1)
			ns = v;
		if (f)
			fclose(f);
	}
	if (d)
		closedir(d);
	return ns;
}
static struct thagtrace_thread **handles;

static void *producer(void *arg)
{
	unsigned idx = (unsigned)(uintptr_t)arg;
	/* A handle belongs to the thread that registers it (single producer). */
	struct thagtrace_thread *t = thagtrace_thread_register("producer", NULL);
	handles[idx] = t;
	uintptr_t frames[16];
	uint64_t x = 88172645463325252ull + idx;
	for (unsigned i = 0; i < nevents; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		uintptr_t p = ((uintptr_t)(idx + 1) << 40) + 16 * (uintptr_t)i;
		if (i % 3 == 2) {
			thagtrace_record_free(t, (void *)(p - 32));
			continue;
		}
		unsigned s = (unsigned)(x % 64), depth = 8 + s % 8;
		for (unsigned k = 0; k < depth; k++)
			frames[k] = 0x400000 + 0x1000 * s + 0x10 * k;
		thagtrace_record_alloc_sampled(t, (void *)p, 16 + x % 4000, 1.0, frames, depth);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc > 1)
		nthreads = (unsigned)atoi(argv[1]);
	if (argc > 2)
		nevents = (unsigned)atoi(argv[2]);
	if (nthreads < 1 || nthreads > 64 || nevents < 1000)
		return 2;
	const char *dir = support_tmpdir("writer");
	char outdir[512];
	snprintf(outdir, sizeof(outdir), "%s", dir);
	struct thagtrace_config c;
	thagtrace_config_init(&c);
	snprintf(c.output_dir, sizeof(c.output_dir), "%s", outdir);
	/* Room for every event: 48 bytes an allocation, 24 a free, plus stacks. */
	unsigned need_kb = (unsigned)((uint64_t)nevents * 40 / 1024) + 1024;
	c.ring_kb = 1024;
	c.sample_mode = THAGTRACE_SAMPLE_ALL;
	if (getenv("THAGTRACE_ZSTD_LEVEL")) /* compare levels */
		c.zstd_level = atoi(getenv("THAGTRACE_ZSTD_LEVEL"));
	while (c.ring_kb < need_kb)
		c.ring_kb *= 2;
	if (thagtrace_start(&c) != 0)
		return 1;
	handles = calloc(nthreads, sizeof(*handles));

	double t0 = bench_now();
	pthread_t th[64];
	for (unsigned i = 0; i < nthreads; i++)
		pthread_create(&th[i], NULL, producer, (void *)(uintptr_t)i);
	for (unsigned i = 0; i < nthreads; i++)
		pthread_join(th[i], NULL);
	double t_produced = bench_now();
	uint64_t emitted = 0, recorded = 0, dropped = 0;
	for (;;) {
		emitted = recorded = dropped = 0;
		for (unsigned i = 0; i < nthreads; i++) {
			struct thagtrace_thread_stats st;
			thagtrace_thread_stats(handles[i], &st);
			emitted += st.emitted;
			recorded += st.recorded;
			dropped += st.dropped;
		}
		if (recorded + dropped >= emitted)
			break;
		usleep(500); /* sleep, not yield: 2 cores, the writer needs one */
	}
	double t_drained = bench_now();
	double writer_cpu = (double)thread_cpu_ns("thagtrace-wr") * 1e-9;
	for (unsigned i = 0; i < nthreads; i++)
		thagtrace_thread_unregister(handles[i]);
	thagtrace_stop();
	long long disk = support_dir_bytes(outdir);
	double secs = t_drained - t0;
	printf("writer capacity: %llu events in %.3f s of writer CPU: %.2f M events/s per "
	       "core\n",
	       (unsigned long long)recorded, writer_cpu, (double)recorded / writer_cpu / 1e6);
	printf("writer end to end: %u threads, %.3f s wall: %.2f M events/s "
	       "(producers done after %.3f s)\n",
	       nthreads, secs, (double)recorded / secs / 1e6, t_produced - t0);
	printf("writer on disk: %lld bytes, %.2f bytes/event; dropped %llu\n", disk,
	       (double)disk / (double)recorded, (unsigned long long)dropped);
	support_rmdir(outdir);
	free(handles);
	return dropped ? 1 : 0;
}
