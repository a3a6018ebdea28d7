/* SPDX-License-Identifier: MIT */
/*
 * Merge throughput: sampled events per second through the offline pipeline,
 * decompression and decoding included. A child process first writes a large
 * synthetic trace with the writer's own encoder and sink (encode.c, sink.c; zstd
 * level 1, ~1 MiB frames): EVENTS sampled events (ALLOC and FREE records, 2:1, so
 * half the allocations are freed, a quarter of the frees on another thread) over 8
 * threads, 5000 distinct stacks of depth 20 on 2500 call sites, probabilities
 * 0.01..0.1 (boosted small sizes), 0.1 (medium) and 1 (large), exact .freq tables
 * consistent with the samples. Then these timings (wall clock):
 *   - decode only: tt_decoder_next over every .bin (zstd + MessagePack), one core;
 *   - merge, twice, each in a child process of its own: tt_trace_open +
 *     tt_profile_build (decode, time-ordered merge, live set, peak, estimates)
 *     with the decode thread (THAGTRACE_MERGE_THREADS=2) and without it (=1), one
 *     after the other in the same run so that their ratio is comparable; the
 *     figures of the two must be bit-identical (exit 1 otherwise);
 *   - outputs, in the two-thread child: tt_resolver (symbols off) +
 *     tt_merged_write (folded, pprof, JSON);
 * and each child's peak RSS (ru_maxrss: the two-thread child's before and after
 * its outputs, the other's from wait4) and the trace's size on disk. Target:
 * merge >= 5 M events/s with two threads.
 * --live N bounds each thread's live sampled blocks (a program whose memory stays
 * bounded: frees come when it is reached); without it the live set grows to a third
 * of the events (a worst case for the merge's live table).
 * usage: bench_merge [EVENTS] [--live N] [--keep DIR]   (DIR holding a trace: reused)
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <msgpack.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../src/analysis/decode.h"
#include "../src/analysis/merge.h"
#include "../src/analysis/merged.h"
#include "../src/analysis/resolve.h"
#include "../src/core/encode.h"
#include "../src/core/meta.h"
#include "../src/core/sink.h"
#include "bench_util.h"
#include "thagtrace.h"

#define PID	    4242
#define NTHREADS    8
#define NSTACKS	    5000
#define NSITES	    2500
#define DEPTH	    20
#define FRAME_BYTES (1u << 20) /* the writer closes a frame at about 1 MiB */
#define BASE_TICKS  1000000000ull

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static inline uint64_t next_rand(void) /* xorshift64*, fixed seed */
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 0x2545F4914F6CDD1Dull;
}

struct gstack {
	uint64_t frames[DEPTH];
	double p;
	uint64_t min_size, size_span;
};

struct gsite {
	uint64_t count, bytes;
};

struct gthread {
	int fd;
	msgpack_sbuffer buf;
	msgpack_packer pk;
	struct encode_events ev;
	uint64_t emitted;
	int32_t *ids; /* stack -> this file's id, -1 until defined */
	uint32_t nids;
	uint64_t *live; /* pointers allocated by this thread, not yet freed */
	size_t nlive, cap;
	uint64_t next_ptr;
	struct gsite *sites; /* per site index */
};

static struct gstack stacks[NSTACKS];
static struct gthread th[NTHREADS];
static struct sink sk;

static int flush(struct gthread *t)
{
	int rc = t->buf.size ? sink_frame(&sk, t->fd, t->buf.data, t->buf.size) : 0;
	msgpack_sbuffer_clear(&t->buf);
	return rc;
}

static void make_stacks(void)
{
	for (unsigned s = 0; s < NSTACKS; s++) {
		struct gstack *g = &stacks[s];
		unsigned site = s % NSITES; /* two stacks per call site */
		g->frames[0] = 0x400000 + 0x40ull * site;
		for (unsigned k = 1; k < DEPTH; k++) /* callers: a shared trunk, then branches */
			g->frames[k] = k < 6 ? 0x500000 + 0x100ull * k
					     : 0x600000 + 0x10ull * (next_rand() % 20000);
		uint64_t r = next_rand() % 100;
		if (r < 60) { /* small, boosted by call-site frequency: 1 % to 10 % */
			g->p = 0.01 * (double)(1 + next_rand() % 10);
			g->min_size = 16;
			g->size_span = 1000;
		} else if (r < 90) { /* medium */
			g->p = 0.1;
			g->min_size = 1024;
			g->size_span = 9000;
		} else { /* large: always */
			g->p = 1.0;
			g->min_size = 10240;
			g->size_span = 100000;
		}
	}
}

static int write_meta(const char *dir, uint64_t end_ticks, uint64_t events)
{
	int fd = sink_create(dir, "4242.meta", TT_FILE_META);
	if (fd < 0)
		return fd;
	struct thagtrace_config cfg;
	thagtrace_config_init(&cfg);
	msgpack_sbuffer b;
	msgpack_packer pk;
	msgpack_sbuffer_init(&b);
	msgpack_packer_init(&pk, &b, msgpack_sbuffer_write);
	meta_encode_process(&pk, &cfg, "monotonic");
	encode_clock(&pk, BASE_TICKS, BASE_TICKS, 1700000000000000000ull);
	encode_clock(&pk, end_ticks, end_ticks, 1700000000000000000ull + end_ticks - BASE_TICKS);
	meta_encode_end(
	    &pk, &(struct meta_totals){.threads = NTHREADS, .emitted = events, .recorded = events});
	int rc = sink_frame(&sk, fd, b.data, b.size);
	msgpack_sbuffer_destroy(&b);
	close(fd);
	return rc;
}

/* Writes the trace; runs in a child process so its memory is not this one's. */
static uint64_t live_cap = UINT64_MAX; /* --live */

static int generate(const char *dir, uint64_t nevents)
{
	if (sink_init(&sk, 1) != 0)
		return 1;
	make_stacks();
	char name[64];
	for (int i = 0; i < NTHREADS; i++) {
		struct gthread *t = &th[i];
		snprintf(name, sizeof(name), "%d-%d.bin", PID, PID + i);
		if ((t->fd = sink_create(dir, name, TT_FILE_EVENTS)) < 0) {
			fprintf(stderr, "bench_merge: %s/%s: %s\n", dir, name, strerror(-t->fd));
			return 1;
		}
		msgpack_sbuffer_init(&t->buf);
		msgpack_packer_init(&t->pk, &t->buf, msgpack_sbuffer_write);
		t->ids = malloc(NSTACKS * sizeof(*t->ids));
		t->sites = calloc(NSITES, sizeof(*t->sites));
		if (!t->ids || !t->sites)
			return 1;
		memset(t->ids, 0xff, NSTACKS * sizeof(*t->ids));
		encode_events_init(&t->ev, BASE_TICKS + (uint64_t)i);
		t->next_ptr = ((uint64_t)(i + 1) << 40);
		snprintf(name, sizeof(name), "worker-%d", i);
		encode_thread(&t->pk, PID, PID + i, name, BASE_TICKS + (uint64_t)i);
	}
	uint64_t now = BASE_TICKS + NTHREADS;
	for (uint64_t e = 0; e < nevents; e++) {
		uint64_t r = next_rand();
		struct gthread *t = &th[r % NTHREADS];
		now += 1 + (r >> 8) % 64;
		if ((r >> 16) % 3 == 0 || t->nlive >= live_cap) {
			/* A free: of this thread's blocks, or (a quarter) another's. */
			struct gthread *owner = (r >> 24) % 4 ? t : &th[(r >> 28) % NTHREADS];
			if (!owner->nlive)
				owner = t;
			if (owner->nlive) {
				size_t k = next_rand() % owner->nlive;
				uint64_t ptr = owner->live[k];
				owner->live[k] = owner->live[--owner->nlive];
				encode_free(&t->pk, &t->ev, now, ptr);
				t->emitted++;
				goto flushed;
			}
		}
		unsigned s = (unsigned)((r >> 32) % NSTACKS);
		struct gstack *g = &stacks[s];
		if (t->ids[s] < 0) {
			t->ids[s] = (int32_t)t->nids++;
			encode_stack(&t->pk, (uint32_t)t->ids[s], 0, g->frames, DEPTH);
		}
		uint64_t size = g->min_size + next_rand() % g->size_span, ptr = t->next_ptr;
		t->next_ptr += 16 + (size & ~15ull);
		encode_alloc(&t->pk, &t->ev, now, ptr, size, (uint32_t)t->ids[s], g->p);
		t->emitted++;
		/* exact site counts consistent with the sample: 1/p calls of this size */
		uint64_t w = (uint64_t)(1.0 / g->p + 0.5);
		t->sites[s % NSITES].count += w;
		t->sites[s % NSITES].bytes += w * size;
		if (t->nlive == t->cap) {
			t->cap = t->cap ? t->cap * 2 : 4096;
			if (!(t->live = realloc(t->live, t->cap * sizeof(*t->live))))
				return 1;
		}
		t->live[t->nlive++] = ptr;
	flushed:
		if (t->buf.size >= FRAME_BYTES && flush(t) != 0)
			return 1;
	}
	uint64_t total = 0;
	for (int i = 0; i < NTHREADS; i++) {
		struct gthread *t = &th[i];
		encode_end(&t->pk, t->emitted, t->emitted, 0, now + 1);
		total += t->emitted;
		if (flush(t) != 0)
			return 1;
		close(t->fd);
		snprintf(name, sizeof(name), "%d-%d.freq", PID, PID + i);
		if ((t->fd = sink_create(dir, name, TT_FILE_FREQ)) < 0)
			return 1;
		uint64_t n = 0;
		for (unsigned s = 0; s < NSITES; s++) {
			if (!t->sites[s].count)
				continue;
			encode_site(&t->pk, 0x400000 + 0x40ull * s, t->sites[s].count,
				    t->sites[s].bytes);
			n++;
		}
		encode_snapshot(&t->pk, now + 1, n);
		if (flush(t) != 0)
			return 1;
		close(t->fd);
	}
	if (write_meta(dir, now + 2, total) != 0)
		return 1;
	sink_fini(&sk);
	return 0;
}

static bool has_trace(const char *dir)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/%d.meta", dir, PID);
	return access(path, R_OK) == 0;
}

/* Decode every .bin of dir; returns the ALLOC + FREE records, or -1. */
static long long decode_all(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	long long n = 0;
	char path[4200], err[512];
	while (d && (e = readdir(d))) {
		size_t len = strlen(e->d_name);
		if (len < 4 || strcmp(e->d_name + len - 4, ".bin"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		struct tt_decoder *dec = tt_decoder_open(path, err, sizeof(err));
		if (!dec) {
			fprintf(stderr, "bench_merge: %s: %s\n", path, err);
			n = -1;
			break;
		}
		struct tt_record rec;
		int rc;
		while ((rc = tt_decoder_next(dec, &rec)) == 1)
			n += rec.tag == TT_REC_ALLOC || rec.tag == TT_REC_FREE;
		if (rc < 0) {
			fprintf(stderr, "bench_merge: %s: %s\n", path, tt_decoder_error(dec));
			n = -1;
		}
		tt_decoder_destroy(dec);
		if (n < 0)
			break;
	}
	if (d)
		closedir(d);
	return n;
}

static long maxrss_kb(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

static double cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* What a merge child reports through its pipe. */
struct merge_result {
	int ok;
	double merge_s, merge_cpu, out_s;
	long rss_merge_kb; /* peak RSS after the merge, before the outputs */
	uint64_t events, samples;
	unsigned nstacks, nthreads;
	/* compared bit for bit between the two modes */
	double figures[8];
	uint64_t peak_ts, frees_matched, frees_unmatched;
};

/* In a child: merge dir with THAGTRACE_MERGE_THREADS=threads; with outputs, also
 * write dir/merged. */
static void merge_child(const char *dir, const char *threads, bool outputs, int fd)
{
	struct merge_result res = {0};
	char err[1024];
	setenv("THAGTRACE_MERGE_THREADS", threads, 1);
	double w0 = bench_now(), c0 = cpu_now();
	struct tt_trace *t = tt_trace_open(dir, err, sizeof(err));
	struct tt_filter filter = {0};
	struct tt_profile *p =
	    t ? tt_profile_build(t, &filter, NULL, NULL, err, sizeof(err)) : NULL;
	res.merge_s = bench_now() - w0;
	res.merge_cpu = cpu_now() - c0;
	if (!p) {
		fprintf(stderr, "bench_merge: %s\n", err);
		_exit(1);
	}
	res.events = p->events;
	res.samples = p->samples;
	res.nstacks = p->nstacks;
	res.nthreads = p->nthreads;
	double fig[] = {p->alloc_bytes, p->alloc_count,	  p->alloc_bytes_hi, p->live_bytes,
			p->live_count,	p->live_bytes_hi, p->peak_bytes,     p->peak_count};
	memcpy(res.figures, fig, sizeof(fig));
	res.peak_ts = p->peak_ts;
	res.frees_matched = p->frees_matched;
	res.frees_unmatched = p->frees_unmatched;
	res.rss_merge_kb = maxrss_kb();
	if (outputs) {
		char outdir[4200];
		snprintf(outdir, sizeof(outdir), "%s/merged", dir);
		w0 = bench_now();
		struct tt_resolver *r = tt_resolver_create(t, false);
		if (!r || tt_merged_write(outdir, p, r, err, sizeof(err)) != 0) {
			fprintf(stderr, "bench_merge: outputs: %s\n", r ? err : "out of memory");
			_exit(1);
		}
		res.out_s = bench_now() - w0;
		tt_resolver_destroy(r);
	}
	res.ok = 1;
	if (write(fd, &res, sizeof(res)) != (ssize_t)sizeof(res))
		_exit(1);
	_exit(0);
}

/* Run merge_child in a child process; its result in *res and its peak RSS in KiB. */
static int merge_in_child(const char *dir, const char *threads, bool outputs,
			  struct merge_result *res, long *rss_kb)
{
	int fds[2];
	if (pipe(fds) != 0)
		return -1;
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		close(fds[0]);
		merge_child(dir, threads, outputs, fds[1]);
	}
	close(fds[1]);
	ssize_t n = pid > 0 ? read(fds[0], res, sizeof(*res)) : -1;
	close(fds[0]);
	int status = 0;
	struct rusage ru;
	if (pid < 0 || wait4(pid, &status, 0, &ru) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status) || n != (ssize_t)sizeof(*res) || !res->ok)
		return -1;
	*rss_kb = ru.ru_maxrss;
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t nevents = 20000000;
	const char *keep = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--keep") && i + 1 < argc) {
			keep = argv[++i];
		} else if (!strcmp(argv[i], "--live") && i + 1 < argc) {
			live_cap = strtoull(argv[++i], NULL, 10);
		} else {
			char *end;
			unsigned long long v = strtoull(argv[i], &end, 10);
			if (*end || v < 1000) {
				fprintf(stderr,
					"usage: bench_merge [EVENTS] [--live N] [--keep DIR]\n");
				return 2;
			}
			nevents = v;
		}
	}
	char dir[4096];
	if (keep) {
		snprintf(dir, sizeof(dir), "%s", keep);
		if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
			fprintf(stderr, "bench_merge: %s: %s\n", dir, strerror(errno));
			return 1;
		}
	} else {
		snprintf(dir, sizeof(dir), "%s", support_tmpdir("merge"));
	}

	if (keep && has_trace(dir)) {
		printf("bench_merge: reusing the trace in %s\n", dir);
	} else {
		double t0 = bench_now();
		pid_t pid = fork();
		if (pid == 0)
			_exit(generate(dir, nevents));
		int status;
		if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
		    WEXITSTATUS(status)) {
			fprintf(stderr, "bench_merge: writing the trace in %s failed\n", dir);
			return 1;
		}
		printf("bench_merge: wrote %llu events, 8 threads, 5000 stacks of depth 20 in "
		       "%.1f s\n",
		       (unsigned long long)nevents, bench_now() - t0);
	}
	long long disk = support_dir_bytes(dir);

	double w0 = bench_now(), c0 = cpu_now();
	long long decoded = decode_all(dir);
	double dec_s = bench_now() - w0, dec_cpu = cpu_now() - c0;
	if (decoded < 0)
		return 1;

	/* Two threads first: the page cache is as warm for both (decode_all read all). */
	struct merge_result two, one;
	long rss_two, rss_one;
	if (merge_in_child(dir, "2", true, &two, &rss_two) ||
	    merge_in_child(dir, "1", false, &one, &rss_one)) {
		fprintf(stderr, "bench_merge: a merge failed\n");
		return 1;
	}
	bool same = two.events == one.events && two.samples == one.samples &&
		    two.nstacks == one.nstacks && two.peak_ts == one.peak_ts &&
		    two.frees_matched == one.frees_matched &&
		    two.frees_unmatched == one.frees_unmatched &&
		    !memcmp(two.figures, one.figures, sizeof(two.figures));
	uint64_t ev = two.events;

	printf("bench_merge: %llu events (%llu allocs sampled), %u stacks, %u threads; "
	       "%.1f MB on disk (%.2f bytes/event)\n",
	       (unsigned long long)ev, (unsigned long long)two.samples, two.nstacks, two.nthreads,
	       (double)disk / 1e6, (double)disk / (double)ev);
	printf("decode only:       %.3f s wall (%.3f s CPU): %.2f M events/s\n", dec_s, dec_cpu,
	       (double)decoded / dec_s / 1e6);
	printf("merge, 2 threads:  %.3f s wall (%.3f s CPU): %.2f M events/s   (target >= 5); "
	       "peak RSS %.1f MiB\n",
	       two.merge_s, two.merge_cpu, (double)ev / two.merge_s / 1e6,
	       (double)two.rss_merge_kb / 1024);
	printf("merge, 1 thread:   %.3f s wall (%.3f s CPU): %.2f M events/s; peak RSS %.1f "
	       "MiB\n",
	       one.merge_s, one.merge_cpu, (double)ev / one.merge_s / 1e6, (double)rss_one / 1024);
	printf("2 threads / 1:     %.2fx; figures %s\n", one.merge_s / two.merge_s,
	       same ? "bit-identical" : "DIFFER");
	printf("outputs:           %.3f s wall (resolver, symbols off + folded, pprof, JSON)\n",
	       two.out_s);
	printf("merge + outputs:   %.3f s wall: %.2f M events/s (2 threads); peak RSS %.1f MiB\n",
	       two.merge_s + two.out_s, (double)ev / (two.merge_s + two.out_s) / 1e6,
	       (double)rss_two / 1024);
	char outdir[4200];
	snprintf(outdir, sizeof(outdir), "%s/merged", dir);
	if (!keep) {
		support_rmdir(outdir);
		support_rmdir(dir);
	}
	return (uint64_t)decoded == ev && same && one.events == ev ? 0 : 1;
}
