/* SPDX-License-Identifier: MIT */
/*
 * Writes the golden-merge trace: one process (pid 4242), two threads, three known
 * stacks sampled with probabilities 1, 0.5 and 0.01, cross-thread frees, leaks,
 * drops, exact .freq sites and a clean PROCESS_END. Built on the writer's own
 * encoder (encode.c) and sink (sink.c) with fixed pid, tids and ticks, so the output
 * is the same bytes on every run. tests/data/golden-merge/README.md lists every
 * event and the figures a correct merge must give.
 * usage: make_golden_merge DIR
 */
#define _GNU_SOURCE
#include <errno.h>
#include <msgpack.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../src/core/encode.h"
#include "../../src/core/meta.h"
#include "../../src/core/sink.h"

#define PID	   4242
#define TID_MAIN   4242
#define TID_WORKER 4243
#define BASE	   1000000000ull /* ticks; the clock is "monotonic", ticks = ns */
#define REALTIME   1700000000000000000ull
#define PTR(i)	   (0x7f0000010000ull + 0x100ull * (i))

/* leaf first */
static const uint64_t s1[] = {0x401100, 0x402200, 0x403300}; /* p = 1 */
static const uint64_t s2[] = {0x404400, 0x402200, 0x403300}; /* p = 0.5 */
static const uint64_t s3[] = {0x405500, 0x406600, 0x403300}; /* p = 0.01 */

static struct sink sk;
static msgpack_sbuffer buf;
static msgpack_packer pk;
static const char *outdir;
static int failed;

static int create(const char *name, enum tt_file_kind kind)
{
	int fd = sink_create(outdir, name, kind);
	if (fd < 0) {
		fprintf(stderr, "make_golden_merge: %s/%s: %s\n", outdir, name, strerror(-fd));
		failed = 1;
	}
	return fd;
}

/* What was packed so far, as one zstd frame (one writer flush). */
static void flush(int fd)
{
	if (fd >= 0 && buf.size && sink_frame(&sk, fd, buf.data, buf.size) != 0)
		failed = 1;
	msgpack_sbuffer_clear(&buf);
}

static void write_meta(void)
{
	int fd = create("4242.meta", TT_FILE_META);
	msgpack_pack_array(&pk, 2);
	msgpack_pack_uint8(&pk, TT_REC_PROCESS);
	msgpack_pack_map(&pk, 10);
	encode_kv_i64(&pk, "pid", PID);
	encode_kv_i64(&pk, "ppid", 1);
	encode_kv_str(&pk, "exe", "/usr/bin/golden");
	encode_str(&pk, "cmdline");
	msgpack_pack_array(&pk, 2);
	encode_str(&pk, "golden");
	encode_str(&pk, "--merge");
	encode_kv_str(&pk, "clock", "monotonic");
	encode_kv_u64(&pk, "format_version", TT_FORMAT_VERSION);
	encode_kv_str(&pk, "library_version", "0.1.0");
	encode_kv_u64(&pk, "page_size", 4096);
	encode_str(&pk, "sampling");
	msgpack_pack_map(&pk, 4);
	encode_kv_str(&pk, "mode", "tiered");
	encode_kv_u64(&pk, "min_size", 0);
	encode_kv_u64(&pk, "poisson_mean", 0);
	encode_kv_u64(&pk, "max_frames", 64);
	encode_str(&pk, "settings");
	msgpack_pack_map(&pk, 3);
	encode_kv_u64(&pk, "ring_kb", 64);
	encode_kv_u64(&pk, "flush_interval_ms", 100);
	encode_kv_i64(&pk, "zstd_level", 1);
	encode_clock(&pk, BASE, BASE, REALTIME);
	flush(fd);
	encode_clock(&pk, BASE + 2000, BASE + 2000, REALTIME + 2000);
	/* main: 7 events recorded; worker: 8 emitted, 6 recorded, 2 dropped, 3 shed */
	meta_encode_end(&pk,
			&(struct meta_totals){
			    .threads = 2, .emitted = 15, .recorded = 13, .dropped = 2, .shed = 3});
	flush(fd);
	if (fd >= 0)
		close(fd);
}

/* Timeline (ticks after BASE; live = sampled bytes / p, the merged live total):
 *   100 main   alloc #1 s1 100 B p=1      live  100
 *   200 main   alloc #2 s2  64 B p=0.5    live  228
 *   300 main   alloc #3 s3  32 B p=0.01   live 3428
 *   400 main   alloc #4 s1 200 B p=1      live 3628
 *   500 worker alloc #5 s2  64 B p=0.5    live 3756
 *   600 worker free  #2 (cross-thread)    live 3628
 *   650 worker alloc #6 s3  32 B p=0.01   live 6828  <- the peak
 *   700 main   free  #1                   live 6728
 *   800 worker free  #4 (cross-thread)    live 6528
 *   900 main   alloc #7 s1 250 B p=1      live 6778
 *  1000 main   free  #3                   live 3578
 *  1100 worker alloc #8 s2  64 B p=0.5    live 3706
 *  1200 worker free  #5                   live 3578
 * Leaked: #6 (s3), #7 (s1), #8 (s2). */
static void write_main(void)
{
	int fd = create("4242-4242.bin", TT_FILE_EVENTS);
	struct encode_events ev;
	encode_events_init(&ev, BASE);
	encode_thread(&pk, PID, TID_MAIN, "main", BASE);
	encode_stack(&pk, 0, 0, s1, 3);
	encode_stack(&pk, 1, 0, s2, 3);
	encode_stack(&pk, 2, 0, s3, 3);
	encode_alloc(&pk, &ev, BASE + 100, PTR(1), 100, 0, 1.0);
	encode_alloc(&pk, &ev, BASE + 200, PTR(2), 64, 1, 0.5);
	flush(fd); /* a second frame, so a cut inside it keeps the first */
	encode_alloc(&pk, &ev, BASE + 300, PTR(3), 32, 2, 0.01);
	encode_alloc(&pk, &ev, BASE + 400, PTR(4), 200, 0, 1.0);
	encode_free(&pk, &ev, BASE + 700, PTR(1));
	encode_alloc(&pk, &ev, BASE + 900, PTR(7), 250, 0, 1.0);
	encode_free(&pk, &ev, BASE + 1000, PTR(3));
	encode_end(&pk, 7, 7, 0, BASE + 1300);
	flush(fd);
	if (fd >= 0)
		close(fd);

	fd = create("4242-4242.freq", TT_FILE_FREQ);
	encode_site(&pk, s1[0], 3, 550); /* every s1 call was sampled (p = 1) */
	encode_site(&pk, s2[0], 2, 128);
	encode_site(&pk, s3[0], 90, 2900);
	encode_snapshot(&pk, BASE + 1300, 3);
	flush(fd);
	if (fd >= 0)
		close(fd);
}

static void write_worker(void)
{
	int fd = create("4242-4243.bin", TT_FILE_EVENTS);
	struct encode_events ev;
	encode_events_init(&ev, BASE + 50);
	encode_thread(&pk, PID, TID_WORKER, "worker", BASE + 50);
	/* the same frames as main's, under this file's own ids */
	encode_stack(&pk, 7, 0, s2, 3);
	encode_alloc(&pk, &ev, BASE + 500, PTR(5), 64, 7, 0.5);
	encode_free(&pk, &ev, BASE + 600, PTR(2));
	encode_stack(&pk, 8, 0, s3, 3);
	encode_alloc(&pk, &ev, BASE + 650, PTR(6), 32, 8, 0.01);
	encode_free(&pk, &ev, BASE + 800, PTR(4));
	encode_drops(&pk, 6, 2, 96, 3); /* and 3 sampled allocations shed under load */
	encode_alloc(&pk, &ev, BASE + 1100, PTR(8), 64, 7, 0.5);
	encode_free(&pk, &ev, BASE + 1200, PTR(5));
	encode_end(&pk, 8, 6, 2, BASE + 1250);
	flush(fd);
	if (fd >= 0)
		close(fd);

	fd = create("4242-4243.freq", TT_FILE_FREQ);
	encode_site(&pk, s2[0], 3, 192);
	encode_site(&pk, s3[0], 60, 1800);
	encode_snapshot(&pk, BASE + 600, 2);
	flush(fd);
	/* cumulative: the last SITE record of a site holds its totals */
	encode_site(&pk, s2[0], 4, 256);
	encode_site(&pk, s3[0], 110, 3300);
	encode_snapshot(&pk, BASE + 1250, 2);
	flush(fd);
	if (fd >= 0)
		close(fd);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: make_golden_merge DIR\n");
		return 2;
	}
	outdir = argv[1];
	if (mkdir(outdir, 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, "make_golden_merge: %s: %s\n", outdir, strerror(errno));
		return 1;
	}
	if (sink_init(&sk, 1) != 0)
		return 1;
	msgpack_sbuffer_init(&buf);
	msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
	write_meta();
	write_main();
	write_worker();
	msgpack_sbuffer_destroy(&buf);
	sink_fini(&sk);
	return failed;
}
