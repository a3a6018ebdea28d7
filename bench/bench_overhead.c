/* SPDX-License-Identifier: MIT */
/*
 * Overhead of tracing an unmodified program, measured on its wall time.
 *
 * The workload (this program with --work): THREADS threads make TOTAL allocations
 * between them: 80 % small (16..512 B), 15 % medium (1..10 KiB), 5 % large
 * (10..100 KiB), each thread keeping a window of 512 live blocks and freeing a
 * random one per allocation; one free in four goes to the next thread through a
 * lock-free mailbox and is freed there (cross-thread frees).
 *
 * The driver (no --work) runs the workload untraced, then under
 * LD_PRELOAD=libthagtrace.so with the default sampling, with THAGTRACE_SAMPLE=all and
 * with each --also SPEC (a THAGTRACE_SAMPLE value), ROUNDS times each, interleaved,
 * and prints the median wall time, CPU time (user + system of every thread, the
 * writer's included) and user time of each and their ratios to untraced. On a
 * shared, noisy machine the CPU ratio is the steadier figure; the user ratio leaves
 * out the kernel's share, which for this workload is mostly glibc trimming its
 * heaps (madvise) and arena lock waits, and moves with the threads' interleaving
 * (run with GLIBC_TUNABLES=glibc.malloc.trim_threshold=4294967295 to take the
 * trimming out of both). "default" is every default setting (256 KiB rings, 1 MiB
 * for the first 8 threads); "all" uses 1 MiB rings, to keep every event.
 *
 * First it times a single-thread malloc(32)+free loop ("pair"): untraced, with
 * nothing past the site's first call sampled (the unsampled path alone), with 1 %
 * sampled, and at the defaults: the added ns per malloc+free pair. Then the same
 * for blocks of 16 KiB, each freed 64 allocations later ("sampled pair"): at the
 * defaults every one is recorded (the large tier), stack, event and free.
 *
 * With --touch the workload writes every byte of each block (as a program
 * initialising what it allocates) instead of one: a less allocation-bound mix.
 *
 * Each traced row also gives the median share of its events dropped (rings full)
 * and of the allocations shed under load (src/core/shed.h), from the trace's
 * PROCESS_END totals (read with thagtrace-dump, beside the build's bench/): an
 * event dropped costs nothing, so a ratio means little without them.
 *
 * usage: bench_overhead [THREADS... ] [--total N] [--rounds R] [--pair-rounds R]
 *                       [--touch] [--also SPEC]... [--lib PATH]
 *        default: 1 4 16 200 threads, 8000000 allocations, 5 rounds
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- the workload ---- */

#define WINDOW	512
#define MAILBOX 1024

struct mailbox { /* single producer (thread i), single consumer (thread i + 1) */
	_Alignas(64) _Atomic uint64_t head;
	_Alignas(64) _Atomic uint64_t tail;
	void *slot[MAILBOX];
};

static struct mailbox *boxes;
static int nthreads;
static long per_thread;
static bool touch; /* write every byte of each block, not one */

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static size_t pick_size(uint64_t r)
{
	unsigned k = (unsigned)(r % 100);
	if (k < 80)
		return 16 + (r >> 8) % 497;
	if (k < 95)
		return 1024 + (r >> 8) % 9217;
	return 10240 + (r >> 8) % 92161;
}

static void drain(struct mailbox *in)
{
	uint64_t t = atomic_load_explicit(&in->tail, memory_order_relaxed);
	uint64_t h = atomic_load_explicit(&in->head, memory_order_acquire);
	for (; t != h; t++)
		free(in->slot[t % MAILBOX]);
	atomic_store_explicit(&in->tail, t, memory_order_release);
}

static void *work(void *arg)
{
	int me = (int)(intptr_t)arg;
	struct mailbox *out = &boxes[(me + 1) % nthreads], *in = &boxes[me];
	void *live[WINDOW] = {0};
	uint64_t s = 0x9E3779B97F4A7C15ull ^ (uint64_t)(me + 1) * 0xD1B54A32D192ED03ull;
	for (long i = 0; i < per_thread; i++) {
		uint64_t r = rnd(&s);
		unsigned slot = (unsigned)(r % WINDOW);
		void *old = live[slot];
		size_t size = pick_size(r >> 16);
		live[slot] = malloc(size);
		if (touch) /* as a program initialising what it allocates */
			memset(live[slot], (int)i, size);
		else
			((volatile char *)live[slot])[0] = (char)i;
		if (old) {
			uint64_t h = atomic_load_explicit(&out->head, memory_order_relaxed);
			if (nthreads > 1 && (r >> 40) % 4 == 0 &&
			    h - atomic_load_explicit(&out->tail, memory_order_acquire) < MAILBOX) {
				out->slot[h % MAILBOX] = old;
				atomic_store_explicit(&out->head, h + 1, memory_order_release);
			} else {
				free(old);
			}
		}
		if ((i & 63) == 0)
			drain(in);
	}
	for (unsigned k = 0; k < WINDOW; k++)
		free(live[k]);
	return NULL;
}

static pthread_barrier_t done;
static _Atomic long long workers_us; /* CPU of the workload's own threads */

static void *work_and_drain(void *arg)
{
	work(arg);
	/* Blocked, not spinning, until every thread has stopped sending: then this
	 * thread's mailbox gets nothing more. (A spin here burnt CPU in proportion to
	 * the threads' imbalance, noise in the CPU figures.) */
	pthread_barrier_wait(&done);
	drain(&boxes[(int)(intptr_t)arg]);
	struct rusage ru;
	if (getrusage(RUSAGE_THREAD, &ru) == 0)
		workers_us += (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000ll +
			      ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
	return NULL;
}

static int run_work(int threads, long total)
{
	nthreads = threads;
	per_thread = total / threads;
	boxes = aligned_alloc(64, sizeof(struct mailbox) * (size_t)threads);
	memset(boxes, 0, sizeof(struct mailbox) * (size_t)threads);
	pthread_t *th = calloc((size_t)threads, sizeof(*th));
	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setstacksize(&a, 256 * 1024);
	pthread_barrier_init(&done, NULL, (unsigned)threads);
	for (int i = 0; i < threads; i++)
		pthread_create(&th[i], &a, work_and_drain, (void *)(intptr_t)i);
	for (int i = 0; i < threads; i++)
		pthread_join(th[i], NULL);
	printf("%.6f\n", (double)workers_us * 1e-6); /* for the driver */
	return 0;
}

/* One thread, blocks of 16 KiB and a little more (the large tier: every one
 * sampled at the defaults), each freed 64 allocations later: ns per pair. */
__attribute__((noinline)) static void *large_site(size_t n)
{
	void *p = malloc(n);
	__asm__ volatile("" : : "r"(p) : "memory");
	return p;
}

static int run_pair_large(long n)
{
	void *keep[64] = {0};
	double t0 = now();
	for (long i = 0; i < n; i++) {
		void *p = large_site(16384 + (size_t)(i & 63) * 16);
		*(volatile char *)p = 1;
		free(keep[i & 63]);
		keep[i & 63] = p;
	}
	double t = now() - t0;
	for (unsigned k = 0; k < 64; k++)
		free(keep[k]);
	printf("%.3f\n", t * 1e9 / (double)n);
	return 0;
}

static int run_pair(long n)
{
	double t0 = now();
	for (long i = 0; i < n; i++) {
		void *p = malloc(32);
		__asm__ volatile("" : : "r"(p) : "memory");
		free(p);
	}
	printf("%.3f\n", (now() - t0) * 1e9 / (double)n);
	return 0;
}

/* ---- the driver ---- */

static const char *lib_path;
static char out_base[256];

/* CPU seconds (user + system, every thread) of the last child run. */
static double last_cpu, last_sys; /* the last child's user + system, and system */
static double last_app;		  /* user + system of the workload's threads alone (no writer) */
static char last_out[512];	  /* the last traced child's THAGTRACE_OUT, or "" */
static char dump_path[1024];	  /* thagtrace-dump */

/* Percent of the last traced run's events dropped, and of its `total` allocations
 * shed, from its .meta files; -1 when unknown. */
static void last_losses(long total, double *drop_pct, double *shed_pct)
{
	*drop_pct = *shed_pct = -1;
	if (!last_out[0])
		return;
	char cmd[2200];
	snprintf(cmd, sizeof(cmd), "'%s' %s/*.meta 2>/dev/null", dump_path, last_out);
	FILE *f = popen(cmd, "r");
	if (!f)
		return;
	char line[4096];
	double emitted = 0, dropped = 0, shed = 0;
	bool seen = false;
	while (fgets(line, sizeof(line), f)) {
		const char *e = strstr(line, "\"emitted\"=>"), *d = strstr(line, "\"dropped\"=>"),
			   *s = strstr(line, "\"shed\"=>");
		if (strncmp(line, "process-end", 11) || !e || !d)
			continue;
		seen = true;
		emitted += atof(e + 11);
		dropped += atof(d + 11);
		if (s)
			shed += atof(s + 8);
	}
	pclose(f);
	if (seen && emitted > 0) {
		*drop_pct = 100 * dropped / emitted;
		*shed_pct = 100 * shed / (double)total;
	}
}

/* Run this program with --work (or --pair) under `how`; return wall seconds, or
 * the child's own figure for --pair. */
static double run(const char *self, const char *how, const char *kind, int threads, long total)
{
	char t[32], n[32], preload[1100], out[512], sample[300];
	snprintf(t, sizeof(t), "%d", threads);
	snprintf(n, sizeof(n), "%ld", total);
	const char *argv[] = {self, kind, t, n, NULL};
	const char *envp[64];
	int k = 0;
	for (char **e = environ; *e && k < 50; e++)
		if (strncmp(*e, "THAGTRACE_", 10) && strncmp(*e, "LD_PRELOAD=", 11))
			envp[k++] = *e;
	if (strcmp(how, "untraced")) {
		snprintf(preload, sizeof(preload), "LD_PRELOAD=%s", lib_path);
		static unsigned seq;
		snprintf(out, sizeof(out), "THAGTRACE_OUT=%s/%s-%u-%d", out_base, kind + 2, seq++,
			 threads);
		envp[k++] = preload;
		envp[k++] = out;
		snprintf(last_out, sizeof(last_out), "%s", out + strlen("THAGTRACE_OUT="));
		if (!strcmp(how, "all")) {
			envp[k++] = "THAGTRACE_SAMPLE=all";
			envp[k++] = "THAGTRACE_RING_KB=1024"; /* every event: room to keep them */
		} else if (!strcmp(how, "unsampled")) {
			/* Nothing past each site's first call is recorded: the unsampled path. */
			snprintf(sample, sizeof(sample),
				 "THAGTRACE_SAMPLE=tiered:boost_max=1,rate_small=1e-9");
			envp[k++] = sample;
		} else if (!strcmp(how, "1%")) {
			snprintf(sample, sizeof(sample), "THAGTRACE_SAMPLE=tiered:boost_max=1");
			envp[k++] = sample;
		} else if (strcmp(how, "tiered")) {
			snprintf(sample, sizeof(sample), "THAGTRACE_SAMPLE=%s", how);
			envp[k++] = sample;
		}
	}
	envp[k] = NULL;
	if (!strcmp(how, "untraced"))
		last_out[0] = '\0';
	int fd[2];
	if (pipe(fd) != 0)
		exit(1);
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fd[1], 1);
	posix_spawn_file_actions_addclose(&fa, fd[0]);
	pid_t pid;
	double t0 = now();
	if (posix_spawn(&pid, self, &fa, NULL, (char *const *)argv, (char *const *)envp) != 0)
		exit(1);
	close(fd[1]);
	char buf[64] = "";
	ssize_t got = read(fd[0], buf, sizeof(buf) - 1);
	int st;
	struct rusage ru;
	wait4(pid, &st, 0, &ru);
	double wall = now() - t0;
	last_sys = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
	last_cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 + last_sys;
	close(fd[0]);
	posix_spawn_file_actions_destroy(&fa);
	if (!WIFEXITED(st) || WEXITSTATUS(st)) {
		fprintf(stderr, "bench_overhead: %s run failed\n", how);
		exit(1);
	}
	if (!strncmp(kind, "--pair", 6))
		return got > 0 ? atof(buf) : -1;
	last_app = got > 0 ? atof(buf) : -1;
	return wall;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "--work-touch"))
		touch = true;
	if (argc == 4 && (!strcmp(argv[1], "--work") || !strcmp(argv[1], "--work-touch")))
		return run_work(atoi(argv[2]), atol(argv[3]));
	if (argc == 4 && !strcmp(argv[1], "--pair"))
		return run_pair(atol(argv[3]));
	if (argc == 4 && !strcmp(argv[1], "--pair-large"))
		return run_pair_large(atol(argv[3]));

	int threads[16], nt = 0, rounds = 5, nalso = 0, pair_rounds = -1;
	const char *also[4];
	long total = 8000000;
	static char lib[1024];
	char self[1024];
	ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
	self[len > 0 ? len : 0] = '\0';
	snprintf(lib, sizeof(lib), "%s", self);
	char *slash = strrchr(lib, '/');
	if (slash)
		*slash = '\0';
	slash = strrchr(lib, '/');
	if (slash)
		strcpy(slash, "/libthagtrace.so");
	lib_path = lib;
	snprintf(dump_path, sizeof(dump_path), "%s", lib);
	slash = strrchr(dump_path, '/');
	if (slash)
		strcpy(slash, "/thagtrace-dump");
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--total") && i + 1 < argc)
			total = atol(argv[++i]);
		else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
			rounds = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--touch"))
			touch = true;
		else if (!strcmp(argv[i], "--pair-rounds") && i + 1 < argc)
			pair_rounds = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--also") && i + 1 < argc && nalso < 4)
			also[nalso++] = argv[++i];
		else if (!strcmp(argv[i], "--lib") && i + 1 < argc)
			lib_path = argv[++i];
		else if (nt < 16 && atoi(argv[i]) > 0)
			threads[nt++] = atoi(argv[i]);
		else {
			fprintf(
			    stderr,
			    "usage: bench_overhead [THREADS...] [--total N] [--rounds R] "
			    "[--pair-rounds R] [--touch] [--also SAMPLE_SPEC]... [--lib PATH]\n");
			return 2;
		}
	}
	if (!nt) {
		int def[] = {1, 4, 16, 200};
		memcpy(threads, def, sizeof(def));
		nt = 4;
	}
	if (access(lib_path, R_OK) != 0) {
		fprintf(stderr, "bench_overhead: %s: not found (use --lib)\n", lib_path);
		return 2;
	}
	snprintf(out_base, sizeof(out_base), "%s/thagtrace-bench-overhead-%d",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());

	/* One thread, malloc(32) + free, ns per pair: untraced; traced with nothing
	 * sampled (the unsampled path alone); with 1 % of them sampled (the boost held
	 * off); at the defaults (this hot site boosted). */
	const char *pair_how[] = {"untraced", "unsampled", "1%", "tiered"};
	double pair[4][64];
	if (pair_rounds < 0)
		pair_rounds = rounds;
	for (int r = 0; r < pair_rounds; r++)
		for (int h = 0; h < 4; h++)
			pair[h][r] = run(self, pair_how[h], "--pair", 1, 20000000);
	double p0 = pair_rounds ? median(pair[0], pair_rounds) : 0;
	if (pair_rounds)
		printf("pair: malloc(32)+free, 20M pairs, median of %d: untraced %.2f ns\n",
		       pair_rounds, p0);
	for (int h = 1; pair_rounds && h < 4; h++) {
		double ph = median(pair[h], pair_rounds);
		printf("  %-10s %.2f ns: +%.2f ns/pair\n",
		       h == 1	? "unsampled"
		       : h == 2 ? "1%"
				: "default",
		       ph, ph - p0);
	}
	/* The sampled path: every block of the large tier is recorded, with its stack,
	 * and so is its free. */
	double large[2][64];
	for (int r = 0; r < pair_rounds; r++)
		for (int h = 0; h < 2; h++)
			large[h][r] =
			    run(self, h ? "tiered" : "untraced", "--pair-large", 1, 2000000);
	if (pair_rounds) {
		double l0 = median(large[0], pair_rounds), l1 = median(large[1], pair_rounds);
		printf("sampled pair: malloc(16 KiB)+free, 2M pairs, every one recorded at the "
		       "defaults: untraced %.2f ns, default %.2f ns: +%.2f ns/pair\n",
		       l0, l1, l1 - l0);
	}

	/* untraced, default, all, then the --also specs */
	const char *how[3 + 4] = {"untraced", "tiered", "all"};
	for (int i = 0; i < nalso; i++)
		how[3 + i] = also[i];
	int nhow = 3 + nalso;
	printf("workload: %ld allocations, mixed sizes, 1/4 of frees cross-thread, %s; "
	       "median of %d interleaved runs; ratios to untraced (wall; CPU of all threads, the "
	       "writer's "
	       "included; user CPU alone, without the kernel's share, which the program's glibc "
	       "heap trimming makes vary; app: CPU of the workload's own threads, the writer "
	       "left out)\n",
	       total, touch ? "every byte written" : "one byte written per block", rounds);
	for (int i = 0; i < nt; i++) {
		double wall[3 + 4][64], cpu[3 + 4][64], user[3 + 4][64], app[3 + 4][64];
		double drop[3 + 4][64], shed[3 + 4][64];
		for (int r = 0; r < rounds; r++)
			for (int h = 0; h < nhow; h++) {
				wall[h][r] = run(self, how[h], touch ? "--work-touch" : "--work",
						 threads[i], total);
				cpu[h][r] = last_cpu;
				user[h][r] = last_cpu - last_sys;
				app[h][r] = last_app;
				last_losses(total, &drop[h][r], &shed[h][r]);
			}
		double uw = median(wall[0], rounds), uc = median(cpu[0], rounds),
		       uu = median(user[0], rounds), ua = median(app[0], rounds);
		printf("%d threads: untraced wall %.3f s, cpu %.3f s, user %.3f s, app %.3f s\n",
		       threads[i], uw, uc, uu, ua);
		for (int h = 1; h < nhow; h++) {
			double w = median(wall[h], rounds), c = median(cpu[h], rounds),
			       u = median(user[h], rounds), a = median(app[h], rounds),
			       d = median(drop[h], rounds), s = median(shed[h], rounds);
			printf("  %-28s wall %.3f s (%.3fx)  cpu %.3f s (%.3fx)  user %.3f s "
			       "(%.3fx)  app %.3f s (%.3fx)",
			       h == 1 ? "default" : how[h], w, w / uw, c, c / uc, u, u / uu, a,
			       a / ua);
			if (d >= 0)
				printf("  dropped %.2f %% of events, shed %.2f %% of allocations",
				       d, s);
			else
				printf("  (no trace totals: %s)", dump_path);
			printf("\n");
		}
		fflush(stdout);
	}
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf %s-* %s", out_base, out_base);
	if (system(cmd) != 0)
		return 1;
	return 0;
}
