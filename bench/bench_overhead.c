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
 * LD_PRELOAD=libthagtrace.so with the default sampling and with THAGTRACE_SAMPLE=all,
 * ROUNDS times each, interleaved, and prints the median wall time of each and the
 * ratios traced/untraced. "default" is every default setting (64 KiB rings);
 * "all" uses 1 MiB rings, to keep every event. It also times a single-thread malloc(32)+free loop
 * the same ways ("pair"), with the boost held off so the path measured is the unsampled one: the
 * added ns per malloc+free pair.
 *
 * usage: bench_overhead [THREADS... ] [--total N] [--rounds R] [--lib PATH]
 *        default: 1 4 16 200 threads, 8000000 allocations, 5 rounds
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
		live[slot] = malloc(pick_size(r >> 16));
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

static _Atomic int finished;

static void *work_and_count(void *arg)
{
	work(arg);
	atomic_fetch_add(&finished, 1);
	/* Keep draining until everyone is done, so no mailbox is left full. */
	while (atomic_load(&finished) < nthreads)
		drain(&boxes[(int)(intptr_t)arg]);
	drain(&boxes[(int)(intptr_t)arg]);
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
	for (int i = 0; i < threads; i++)
		pthread_create(&th[i], &a, work_and_count, (void *)(intptr_t)i);
	for (int i = 0; i < threads; i++)
		pthread_join(th[i], NULL);
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

/* Run this program with --work (or --pair) under `how`; return wall seconds, or
 * the child's own figure for --pair. */
static double run(const char *self, const char *how, const char *kind, int threads, long total)
{
	char t[32], n[32], preload[1100], out[512], sample[64];
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
		snprintf(out, sizeof(out), "THAGTRACE_OUT=%s/%s-%s-%d", out_base, kind + 2, how,
			 threads);
		envp[k++] = preload;
		envp[k++] = out;
		if (!strcmp(how, "all")) {
			envp[k++] = "THAGTRACE_SAMPLE=all";
			envp[k++] = "THAGTRACE_RING_KB=1024"; /* every event: room to keep them */
		} else if (!strcmp(how, "unsampled")) {
			snprintf(sample, sizeof(sample), "THAGTRACE_SAMPLE=tiered:boost_max=1");
			envp[k++] = sample;
		}
	}
	envp[k] = NULL;
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
	waitpid(pid, &st, 0);
	double wall = now() - t0;
	close(fd[0]);
	posix_spawn_file_actions_destroy(&fa);
	if (!WIFEXITED(st) || WEXITSTATUS(st)) {
		fprintf(stderr, "bench_overhead: %s run failed\n", how);
		exit(1);
	}
	if (!strcmp(kind, "--pair"))
		return got > 0 ? atof(buf) : -1;
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
	if (argc == 4 && !strcmp(argv[1], "--work"))
		return run_work(atoi(argv[2]), atol(argv[3]));
	if (argc == 4 && !strcmp(argv[1], "--pair"))
		return run_pair(atol(argv[3]));

	int threads[16], nt = 0, rounds = 5;
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
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--total") && i + 1 < argc)
			total = atol(argv[++i]);
		else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
			rounds = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--lib") && i + 1 < argc)
			lib_path = argv[++i];
		else if (nt < 16 && atoi(argv[i]) > 0)
			threads[nt++] = atoi(argv[i]);
		else {
			fprintf(stderr,
				"usage: bench_overhead [THREADS...] [--total N] [--rounds R] "
				"[--lib PATH]\n");
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

	/* Unsampled path: one thread, malloc(32) + free, ns per pair. */
	const char *pair_how[] = {"untraced", "unsampled", "tiered"};
	double pair[3][64];
	for (int r = 0; r < rounds; r++)
		for (int h = 0; h < 3; h++)
			pair[h][r] = run(self, pair_how[h], "--pair", 1, 20000000);
	double p0 = median(pair[0], rounds), p1 = median(pair[1], rounds),
	       p2 = median(pair[2], rounds);
	printf("pair: malloc(32)+free, 20M pairs, median of %d: untraced %.2f ns, traced "
	       "(boost off, 1%% sampled) %.2f ns: +%.2f ns/pair; default tiered (hot site "
	       "boosted to 10%%) %.2f ns: +%.2f ns/pair\n",
	       rounds, p0, p1, p1 - p0, p2, p2 - p0);

	const char *how[] = {"untraced", "tiered", "all"};
	printf("workload: %ld allocations, mixed sizes, 1/4 of frees cross-thread; "
	       "median wall time of %d runs\n",
	       total, rounds);
	printf("%8s %12s %12s %12s %10s %10s\n", "threads", "untraced s", "default s", "all s",
	       "default x", "all x");
	for (int i = 0; i < nt; i++) {
		double wall[3][64];
		for (int r = 0; r < rounds; r++)
			for (int h = 0; h < 3; h++)
				wall[h][r] = run(self, how[h], "--work", threads[i], total);
		double u = median(wall[0], rounds), d = median(wall[1], rounds),
		       a = median(wall[2], rounds);
		printf("%8d %12.3f %12.3f %12.3f %10.3f %10.3f\n", threads[i], u, d, a, d / u,
		       a / u);
		fflush(stdout);
	}
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf %s-* %s", out_base, out_base);
	if (system(cmd) != 0)
		return 1;
	return 0;
}
