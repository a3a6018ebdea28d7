/* SPDX-License-Identifier: MIT */
/* Public API lifecycle: start/stop, register/unregister, errors, bad settings. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "../src/core/thread.h" /* a handle's ring size */
#include "support.h"
#include "thagtrace.h"

static struct thagtrace_config cfg_in(const char *dir)
{
	struct thagtrace_config c;
	thagtrace_config_init(&c);
	snprintf(c.output_dir, sizeof(c.output_dir), "%s", dir);
	c.sample_mode = THAGTRACE_SAMPLE_ALL; /* these tests count every event */
	return c;
}

Test(api, config_defaults)
{
	struct thagtrace_config c;
	thagtrace_config_init(&c);
	cr_assert_eq(c.size, sizeof(c));
	cr_assert_eq(c.ring_kb, 256);
	cr_assert_eq(c.sample_mode, THAGTRACE_SAMPLE_TIERED);
	cr_assert_eq(c.tier_large_bytes, 10240);
	cr_assert_eq(c.tier_medium_bytes, 1024);
	cr_assert_eq(c.rate_medium, 0.10);
	cr_assert_eq(c.rate_small, 0.01);
	cr_assert_leq(c.flush_interval_ms, 100);
	cr_assert_geq(c.max_frames, 64);
	cr_assert_str_eq(c.output_dir, "thagtrace-out");
}

Test(api, stop_twice_and_record_after_stop_are_harmless)
{
	const char *dir = support_tmpdir("api");
	struct thagtrace_config c = cfg_in(dir);
	cr_assert_eq(thagtrace_stop(), 0, "stop before start");
	cr_assert_eq(thagtrace_start(&c), 0);
	cr_assert(thagtrace_is_running());
	cr_assert_eq(thagtrace_start(&c), THAGTRACE_ESTATE, "second start");
	struct thagtrace_thread *t = thagtrace_thread_register("main", NULL);
	cr_assert_not_null(t);
	int x;
	cr_assert_eq(thagtrace_record_alloc(t, &x, 4), 0);
	cr_assert_eq(thagtrace_stop(), 0);
	cr_assert_eq(thagtrace_stop(), 0);
	cr_assert(!thagtrace_is_running());
	errno = 1234;
	cr_assert_eq(thagtrace_record_alloc(t, &x, 4), THAGTRACE_EDISABLED);
	cr_assert_eq(thagtrace_record_free(t, &x), THAGTRACE_EDISABLED);
	cr_assert_eq(errno, 1234, "errno preserved");
	thagtrace_thread_unregister(t); /* after stop: frees it, no crash */
	cr_assert_null(thagtrace_thread_register("late", &x));
	cr_assert_eq(x, THAGTRACE_EDISABLED);

	struct support_dir d;
	cr_assert_eq(support_read_dir(dir, &d), 0, "%s", d.first_error);
	cr_assert_eq(d.nthreads, 1);
	cr_assert_eq(d.threads[0].allocs, 1, "the event before stop is on disk");
	cr_assert(d.threads[0].has_end);
	cr_assert(d.process_end_seen);
	support_dir_free(&d);
	support_rmdir(dir);
}

Test(api, restart_in_same_process_keeps_sessions_apart)
{
	const char *tmp = support_tmpdir("restart");
	char dir[600];
	snprintf(dir, sizeof(dir), "%s", tmp);
	struct thagtrace_config c = cfg_in(dir);
	int x;
	for (int round = 0; round < 3; round++) {
		cr_assert_eq(thagtrace_start(&c), 0);
		struct thagtrace_thread *t = thagtrace_thread_register(NULL, NULL);
		for (int i = 0; i <= round; i++)
			cr_assert_eq(thagtrace_record_alloc(t, &x, 8), 0);
		thagtrace_thread_unregister(t);
		cr_assert_eq(thagtrace_stop(), 0);
	}
	struct support_dir d;
	cr_assert_eq(support_read_dir(dir, &d), 0, "%s", d.first_error);
	cr_assert_eq(d.nmeta, 3, "one process file per session");
	/* Same tid each round: the files are suffixed, not appended to. */
	cr_assert_eq(d.nthreads, 1);
	cr_assert_eq(d.threads[0].allocs, 1 + 2 + 3);
	support_dir_free(&d);
	support_rmdir(dir);
}

Test(api, bad_arguments)
{
	cr_assert_eq(thagtrace_record_alloc(NULL, NULL, 1), THAGTRACE_EINVAL);
	cr_assert_eq(thagtrace_record_free(NULL, NULL), THAGTRACE_EINVAL);
	cr_assert_eq(thagtrace_thread_stats(NULL, NULL), THAGTRACE_EINVAL);
	thagtrace_thread_unregister(NULL);
	for (int code = 0; code >= THAGTRACE_ERROR_LAST; code--)
		cr_assert_str_neq(thagtrace_strerror(code), "unknown error code");
	cr_assert_str_eq(thagtrace_strerror(-999), "unknown error code");
	cr_assert_str_eq(thagtrace_version(), "0.1.0");
}

Test(api, invalid_settings_are_refused_with_one_line, .init = cr_redirect_stderr)
{
	struct thagtrace_config c;
	thagtrace_config_init(&c);
	c.ring_kb = 100; /* not a power of two */
	cr_assert_eq(thagtrace_start(&c), THAGTRACE_EINVAL);
	thagtrace_config_init(&c);
	c.max_frames = 0;
	cr_assert_eq(thagtrace_start(&c), THAGTRACE_EINVAL);
	thagtrace_config_init(&c);
	c.ring_kb = 8;
	c.max_frames = 256; /* stacks would not fit a quarter ring */
	cr_assert_eq(thagtrace_start(&c), THAGTRACE_EINVAL);
	cr_assert(!thagtrace_is_running());
	fflush(stderr);
	cr_assert_stderr_eq_str(
	    "libthagtrace: ring size 100 KiB (THAGTRACE_RING_KB) must be a power of two from 8 "
	    "to 1048576; tracing off\n"
	    "libthagtrace: max frames 0 (THAGTRACE_MAX_FRAMES) must be from 1 to 256; tracing "
	    "off\n"
	    "libthagtrace: a ring of 8 KiB is too small for stacks of 256 frames "
	    "(THAGTRACE_RING_KB, THAGTRACE_MAX_FRAMES: a stack takes a quarter ring at most); "
	    "tracing off\n");
}

Test(api, unwritable_output_directory, .init = cr_redirect_stderr)
{
	/* A path below a regular file: unwritable even for root. */
	const char *tmp = support_tmpdir("unwritable");
	char file[600], dir[700];
	snprintf(file, sizeof(file), "%s/plainfile", tmp);
	support_spit(file, "x", 1);
	snprintf(dir, sizeof(dir), "%s/sub", file);
	struct thagtrace_config c = cfg_in(dir);
	cr_assert_eq(thagtrace_start(&c), THAGTRACE_EIO);
	cr_assert(!thagtrace_is_running());
	cr_assert_null(thagtrace_thread_register("x", NULL));
	fflush(stderr);
	char want[900];
	snprintf(want, sizeof(want),
		 "libthagtrace: cannot use output directory %s: Not a directory; tracing off\n",
		 dir);
	cr_assert_stderr_eq_str(want);
	unlink(file);
	support_rmdir(tmp);
}

Test(api, stats_and_unregister_flushes_everything)
{
	const char *dir = support_tmpdir("stats");
	struct thagtrace_config c = cfg_in(dir);
	c.flush_interval_ms = 60000; /* only unregister/stop make the writer drain */
	c.ring_kb = 256;	     /* holds all 2000 events: no drop, whatever the timing */
	cr_assert_eq(thagtrace_start(&c), 0);
	struct thagtrace_thread *t = thagtrace_thread_register("worker", NULL);
	static char block[64];
	for (int i = 0; i < 1000; i++) {
		cr_assert_eq(thagtrace_record_alloc(t, block + (i % 64), 32), 0);
		cr_assert_eq(thagtrace_record_free(t, block + (i % 64)), 0);
	}
	struct thagtrace_thread_stats st;
	cr_assert_eq(thagtrace_thread_stats(t, &st), 0);
	cr_assert_eq(st.emitted, 2000);
	cr_assert_eq(st.dropped, 0);
	thagtrace_thread_unregister(t);
	cr_assert_eq(thagtrace_stop(), 0);

	struct support_dir d;
	cr_assert_eq(support_read_dir(dir, &d), 0, "%s", d.first_error);
	cr_assert_eq(d.nthreads, 1);
	struct support_thread *th = &d.threads[0];
	cr_assert_str_eq(th->name, "worker");
	cr_assert_eq(th->allocs, 1000);
	cr_assert_eq(th->frees, 1000);
	cr_assert_eq(th->alloc_bytes, 32000);
	cr_assert_eq(th->alloc_ptr_sum, th->free_ptr_sum);
	cr_assert(th->has_end);
	cr_assert_eq(th->end_emitted, 2000);
	cr_assert_eq(th->end_recorded, 2000);
	cr_assert_eq(th->end_dropped, 0);
	cr_assert(th->stack_ids_ok);
	cr_assert(th->ts_monotonic);
	/* One call site in the loop: exact count and bytes in .freq. */
	cr_assert_eq(th->nsites, 1);
	cr_assert_eq(th->site_count, 1000);
	cr_assert_eq(th->site_bytes, 32000);
	cr_assert_eq(d.pe_threads, 1);
	cr_assert_eq(d.pe_emitted, 2000);
	support_dir_free(&d);
	support_rmdir(dir);
}

/* The writer's buffers (encode buffer, frame buffer, zstd's workspace, each 128 KiB
 * or more) are mapped directly: glibc serves blocks that large by mmap, and freeing
 * one raises its mmap and trim thresholds for the whole program. Through malloc they
 * showed up here as mmapped chunks (hblks) while the writer ran. */
Test(api, writer_buffers_stay_out_of_the_programs_heap)
{
	/* Freed only at the end: its free would raise the thresholds itself. */
	char *volatile probe = malloc(1 << 20); /* volatile: kept, not folded away */
	struct mallinfo2 before = mallinfo2();
	if (before.hblks == 0)
		cr_skip_test("mallinfo2 does not see mmapped chunks (a sanitizer's allocator)");
	const char *dir = support_tmpdir("heap");
	struct thagtrace_config c = cfg_in(dir);
	c.ring_kb = 4096;
	cr_assert_eq(thagtrace_start(&c), 0);
	struct thagtrace_thread *t = thagtrace_thread_register("heap", NULL);
	static char block[4096];
	/* Bursts of growing size (the last 32768 events, well within the ring): frames
	 * from a few records to half a MiB, so the encode buffer grows and zstd sizes
	 * its workspace up and down. */
	for (int burst = 1; burst <= 1024; burst *= 4) {
		for (int i = 0; i < burst * 16; i++) {
			uintptr_t frames[3] = {0x401000u + (uintptr_t)(i % 97), 0x402000, 0x403000};
			cr_assert_eq(
			    thagtrace_record_alloc_sampled(t, block + i % 4096, 64, 1.0, frames, 3),
			    0);
			cr_assert_eq(thagtrace_record_free(t, block + i % 4096), 0);
		}
		struct thagtrace_thread_stats st;
		do {
			usleep(1000);
			thagtrace_thread_stats(t, &st);
		} while (st.recorded + st.dropped < st.emitted);
		struct mallinfo2 now = mallinfo2();
		cr_assert_eq(now.hblks, before.hblks, "burst %d: %zu mmapped chunks, %zu before",
			     burst, now.hblks, before.hblks);
	}
	thagtrace_thread_unregister(t);
	cr_assert_eq(thagtrace_stop(), 0);
	struct support_dir d;
	cr_assert_eq(support_read_dir(dir, &d), 0, "%s", d.first_error);
	cr_assert_eq(d.threads[0].allocs, 16 * (1 + 4 + 16 + 64 + 256 + 1024));
	cr_assert_eq(d.threads[0].frees, d.threads[0].allocs);
	support_dir_free(&d);
	support_rmdir(dir);
	free(probe);
}

/* The disk fills while tracing (simulated with RLIMIT_FSIZE): one line on stderr,
 * tracing turns itself off, the program goes on and stop still works. */
Test(api, write_failure_disables_tracing_once, .init = cr_redirect_stderr)
{
	const char *dir = support_tmpdir("diskfull");
	char path[600];
	snprintf(path, sizeof(path), "%s", dir);
	signal(SIGXFSZ, SIG_IGN);
	struct rlimit rl = {2048, 2048}; /* every file may grow to 2 KiB */
	cr_assert_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
	struct thagtrace_config c = cfg_in(path);
	c.flush_interval_ms = 5;
	cr_assert_eq(thagtrace_start(&c), 0);
	struct thagtrace_thread *t = thagtrace_thread_register("filler", NULL);
	int rc = 0, x;
	for (int i = 0; i < 200000 && rc == 0; i++) {
		rc = thagtrace_record_alloc(t, &x + (i % 1000), 1 + i % 977);
		if (rc == THAGTRACE_EDROPPED)
			rc = 0;
		if (i % 1000 == 0)
			usleep(1000);
	}
	cr_assert_eq(rc, THAGTRACE_EDISABLED, "the writer's failure turns recording off");
	cr_assert(!thagtrace_is_running());
	cr_assert_eq(thagtrace_record_free(t, &x), THAGTRACE_EDISABLED);
	thagtrace_thread_unregister(t);
	cr_assert_eq(thagtrace_stop(), 0);
	cr_assert_eq(thagtrace_stop(), 0);
	fflush(stderr);
	char want[900];
	snprintf(want, sizeof(want), "libthagtrace: cannot write %s/", path);
	FILE *err = cr_get_redirected_stderr();
	char line[1024] = "";
	cr_assert_not_null(fgets(line, sizeof(line), err));
	cr_assert(strncmp(line, want, strlen(want)) == 0, "got: %s", line);
	cr_assert(strstr(line, "File too large; tracing disabled, the program runs on untraced"),
		  "got: %s", line);
	cr_assert_null(fgets(line, sizeof(line), err), "said once only");
	support_rmdir(path);
}

struct cross_arg {
	void **ptrs;
	int n;
};

static void *free_on_other_thread(void *p)
{
	struct cross_arg *a = p;
	struct thagtrace_thread *t = thagtrace_thread_register("freer", NULL);
	for (int i = 0; i < a->n; i++)
		thagtrace_record_free(t, a->ptrs[i]);
	thagtrace_thread_unregister(t);
	return NULL;
}

/* Tiered sampling: a free is recorded exactly when its allocation was, whichever
 * thread frees it; every other free costs only the filter check. */
Test(api, tiered_records_frees_of_sampled_allocations_only)
{
	const char *tmp = support_tmpdir("freeset");
	char dir[600];
	snprintf(dir, sizeof(dir), "%s", tmp);
	struct thagtrace_config c = cfg_in(dir);
	c.sample_mode = THAGTRACE_SAMPLE_TIERED;
	c.seed = 99;
	c.ring_kb = 1024; /* about freeset semantics: never a drop, however loaded the host */
	cr_assert_eq(thagtrace_start(&c), 0);
	struct thagtrace_thread *t = thagtrace_thread_register("alloc", NULL);
	enum { N = 50000 };
	static void *ptrs[N / 2];
	uintptr_t base = 0x7e0000000000;
	for (int i = 0; i < N; i++) /* 40-byte blocks: 1 % (boosted to 2 % as the site warms) */
		cr_assert_eq(thagtrace_record_alloc(t, (void *)(base + 64 * (uintptr_t)i), 40), 0);
	for (int i = 0; i < N / 2; i++) /* this thread frees the first half */
		cr_assert_eq(thagtrace_record_free(t, (void *)(base + 64 * (uintptr_t)i)), 0);
	for (int i = 0; i < N / 2; i++)
		ptrs[i] = (void *)(base + 64 * (uintptr_t)(N / 2 + i));
	struct cross_arg a = {ptrs, N / 2};
	pthread_t th;
	pthread_create(&th, NULL, free_on_other_thread, &a); /* another frees the rest */
	pthread_join(th, NULL);
	thagtrace_thread_unregister(t);
	cr_assert_eq(thagtrace_stop(), 0);

	struct support_dir d;
	cr_assert_eq(support_read_dir(dir, &d), 0, "%s", d.first_error);
	cr_assert_eq(d.nthreads, 2);
	struct support_thread *al =
	    strcmp(d.threads[0].name, "alloc") ? &d.threads[1] : &d.threads[0];
	struct support_thread *fr = al == &d.threads[0] ? &d.threads[1] : &d.threads[0];
	cr_assert_gt(al->allocs, 500, "sampled: %lu", (unsigned long)al->allocs);
	cr_assert_lt(al->allocs, N / 4, "not everything: %lu", (unsigned long)al->allocs);
	cr_assert_eq(al->frees + fr->frees, al->allocs, "one recorded free per recorded alloc");
	cr_assert_eq(al->free_ptr_sum + fr->free_ptr_sum, al->alloc_ptr_sum,
		     "and for the same pointers");
	cr_assert_gt(fr->frees, 0, "cross-thread frees found their allocations");
	/* Unbiased: sum(size / p) estimates the N * 40 bytes within a few percent. */
	double rel = al->weighted_bytes / (N * 40.0) - 1;
	cr_assert(rel > -0.10 && rel < 0.10, "estimate off by %.1f%%", rel * 100);
	cr_assert_eq(al->site_count, N, ".freq exact");
	support_dir_free(&d);
	support_rmdir(dir);
}

static struct thagtrace_thread *sig_handle;
static volatile sig_atomic_t sig_handled;
static char sig_block[64];

static void on_timer(int s)
{
	(void)s;
	/* Lands anywhere, the event path included: a nested call is dropped and counted,
	 * never corrupts the ring or deadlocks. */
	thagtrace_record_alloc(sig_handle, sig_block + 8, 8);
	thagtrace_record_free(sig_handle, sig_block + 8);
	sig_handled++;
}

Test(api, signal_handler_records_on_the_same_thread, .timeout = 60)
{
	const char *tmp = support_tmpdir("signal");
	char dir[600];
	snprintf(dir, sizeof(dir), "%s", tmp);
	struct thagtrace_config c = cfg_in(dir);
	c.ring_kb = 1024;
	cr_assert_eq(thagtrace_start(&c), 0);
	sig_handle = thagtrace_thread_register("main", NULL);
	struct sigaction sa = {0};
	sa.sa_handler = on_timer;
	sigaction(SIGALRM, &sa, NULL);
	struct itimerval it = {{0, 100}, {0, 100}};
	setitimer(ITIMER_REAL, &it, NULL);
	uint64_t loops = 0;
	while (sig_handled < 3000) {
		thagtrace_record_alloc(sig_handle, sig_block, 16);
		thagtrace_record_free(sig_handle, sig_block);
		loops++;
	}
	struct itimerval off = {{0, 0}, {0, 0}};
	setitimer(ITIMER_REAL, &off, NULL);
	signal(SIGALRM, SIG_DFL);
	uint64_t handled = (uint64_t)sig_handled;
	thagtrace_thread_unregister(sig_handle);
	cr_assert_eq(thagtrace_stop(), 0);

	struct support_dir d;
	cr_assert_eq(support_read_dir(dir, &d), 0, "%s", d.first_error);
	struct support_thread *t = &d.threads[0];
	cr_assert(t->has_end);
	cr_assert_eq(t->end_emitted, 2 * (loops + handled), "every event accounted: %lu vs %lu",
		     (unsigned long)t->end_emitted, (unsigned long)(2 * (loops + handled)));
	cr_assert_eq(t->end_recorded + t->end_dropped, t->end_emitted);
	cr_assert_eq(t->allocs + t->frees, t->end_recorded, "the file holds what was recorded");
	cr_assert(t->stack_ids_ok && t->ts_monotonic, "the ring stayed consistent");
	cr_log_info("signal test: %lu loops, %lu handled, %lu nested events dropped",
		    (unsigned long)loops, (unsigned long)handled, (unsigned long)t->end_dropped);
	support_dir_free(&d);
	support_rmdir(dir);
}

static void *ring_size_of_new_thread(void *arg)
{
	struct thagtrace_thread *t = thagtrace_thread_register("ring", NULL);
	*(uint64_t *)arg = t ? t->ring.capacity : 0;
	thagtrace_thread_unregister(t);
	return NULL;
}

/* ring_kb_first: a session's first THAGTRACE_FIRST_THREADS handles get the larger
 * ring, later ones ring_kb; 0 gives every thread ring_kb. */
Test(api, first_threads_get_the_larger_rings)
{
	const char *dir = support_tmpdir("ringfirst");
	for (int round = 0; round < 2; round++) {
		struct thagtrace_config c = cfg_in(dir);
		c.ring_kb = 16;
		c.ring_kb_first = round == 0 ? 64 : 0;
		cr_assert_eq(thagtrace_start(&c), 0);
		for (int i = 0; i < THAGTRACE_FIRST_THREADS + 2; i++) {
			uint64_t cap = 0;
			pthread_t th;
			cr_assert_eq(pthread_create(&th, NULL, ring_size_of_new_thread, &cap), 0);
			pthread_join(th, NULL);
			uint64_t want = round == 0 && i < THAGTRACE_FIRST_THREADS ? 64 : 16;
			cr_expect_eq(cap, want * 1024,
				     "round %d thread %d: ring %llu bytes, want %llu KiB", round, i,
				     (unsigned long long)cap, (unsigned long long)want);
		}
		cr_assert_eq(thagtrace_stop(), 0);
	}
	support_rmdir(dir);
}
