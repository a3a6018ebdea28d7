/* SPDX-License-Identifier: MIT */
/*
 * Unmodified programs under LD_PRELOAD=libthagtrace.so: victims (tests/victims/)
 * run in a child with the tracer preloaded (never this test runner); their files
 * are decoded and checked against what the victim says it did.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../src/analysis/decode.h"
#include "../src/analysis/trace.h"
#include "support.h"

extern char **environ;

static char outdir[512], stdout_path[600], stderr_path[600];

struct run {
	int status;	 /* exit code, or -signal */
	char out[65536]; /* the victim's stdout */
	char err[8192];	 /* its stderr */
};

/* Run victim `name` (args NULL-terminated) with the tracer preloaded and extra
 * environment entries `env` (NULL-terminated, may be NULL). */
static void run_victim(struct run *r, const char *const *env, const char *name, ...)
{
	snprintf(outdir, sizeof(outdir), "%s", support_tmpdir(name));
	snprintf(stdout_path, sizeof(stdout_path), "%s.stdout", outdir);
	snprintf(stderr_path, sizeof(stderr_path), "%s.stderr", outdir);
	char exe[1024], preload[1100], out[700];
	snprintf(exe, sizeof(exe), "%s/%s", getenv("VICTIM_DIR"), name);
	snprintf(preload, sizeof(preload), "LD_PRELOAD=%s", getenv("THAGTRACE_LIB"));
	snprintf(out, sizeof(out), "THAGTRACE_OUT=%s", outdir);
	const char *argv[16] = {exe};
	int argc = 1;
	va_list ap;
	va_start(ap, name);
	for (const char *a; (a = va_arg(ap, const char *)) && argc < 15;)
		argv[argc++] = a;
	va_end(ap);
	argv[argc] = NULL;
	const char *envp[64];
	int n = 0;
	for (char **e = environ; *e && n < 40; e++)
		if (strncmp(*e, "THAGTRACE_", 10) && strncmp(*e, "LD_PRELOAD=", 11))
			envp[n++] = *e;
	bool own_out = false;
	for (; env && *env && n < 61; env++) {
		own_out |= !strncmp(*env, "THAGTRACE_OUT=", 14);
		envp[n++] = *env; /* first, so they win over the defaults below */
	}
	envp[n++] = preload;
	if (!own_out)
		envp[n++] = out;
	envp[n] = NULL;

	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, stdout_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	posix_spawn_file_actions_addopen(&fa, 2, stderr_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	pid_t pid;
	cr_assert_eq(posix_spawn(&pid, exe, &fa, NULL, (char *const *)argv, (char *const *)envp), 0,
		     "spawn %s", exe);
	posix_spawn_file_actions_destroy(&fa);
	int st;
	waitpid(pid, &st, 0);
	r->status = WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
	FILE *f = fopen(stdout_path, "r");
	size_t k = fread(r->out, 1, sizeof(r->out) - 1, f);
	r->out[k] = '\0';
	fclose(f);
	f = fopen(stderr_path, "r");
	k = fread(r->err, 1, sizeof(r->err) - 1, f);
	r->err[k] = '\0';
	fclose(f);
	unlink(stdout_path);
	unlink(stderr_path);
}

/* ---- exact sites: attribute each .freq site to the victim function holding it ---- */

struct fn {
	char name[64];
	uint64_t addr;
	uint64_t want_count, want_bytes;
	uint64_t got_count, got_bytes;
};

static int parse_fns(const char *out, struct fn *fns, int max)
{
	int n = 0;
	for (const char *l = out; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		char name[64];
		unsigned long long a, b;
		void *p;
		if (sscanf(l, "fn %63s %p", name, &p) == 2 && n < max) {
			snprintf(fns[n].name, sizeof(fns[n].name), "%s", name);
			fns[n].addr = (uint64_t)(uintptr_t)p;
			fns[n].want_count = fns[n].want_bytes = fns[n].got_count =
			    fns[n].got_bytes = 0;
			n++;
		} else if (sscanf(l, "want %63s %llu %llu", name, &a, &b) == 3) {
			for (int i = 0; i < n; i++)
				if (!strcmp(fns[i].name, name)) {
					fns[i].want_count = a;
					fns[i].want_bytes = b;
				}
		}
	}
	return n;
}

/* Function holding `site`: the nearest start below it, within 4 KiB. */
static struct fn *owner(struct fn *fns, int n, uint64_t site)
{
	struct fn *best = NULL;
	for (int i = 0; i < n; i++)
		if (fns[i].addr <= site && site - fns[i].addr < 4096 &&
		    (!best || fns[i].addr > best->addr))
			best = &fns[i];
	return best;
}

struct event {
	uint64_t ptr, ts;
	int is_free;
};

struct tally {
	struct fn *fns;
	int nfns;
	int pid; /* when set: only <pid>-*.bin/.freq */
	uint64_t allocs, frees, files, ends, threads, dropped;
	/* The session's shared handle for threads that ended or, with the writer
	 * RETIRING_MAX threads behind, started (its files have tid 0): how many files,
	 * and the calls its .freq counts. */
	uint64_t spare_files, spare_calls;
	unsigned named;	      /* .bin files whose thread's last name is "tt-worker" */
	unsigned renames;     /* NAME records */
	unsigned max_depth;   /* deepest stack recorded */
	unsigned stacks, cut; /* STACK records, and those marked truncated */
	unsigned over_2000;   /* .freq files counting over 2000 calls of one site */
	struct event *ev;
	size_t nev, cap;
	/* From matching frees to allocations per pointer in time order: */
	uint64_t matched, unmatched_frees, unfreed;
	int errors;
	char error[1024];
};

static void add_event(struct tally *t, uint64_t ptr, uint64_t ts, int is_free)
{
	if (t->nev == t->cap) {
		t->cap = t->cap ? 2 * t->cap : 4096;
		t->ev = realloc(t->ev, t->cap * sizeof(*t->ev));
	}
	t->ev[t->nev++] = (struct event){ptr, ts, is_free};
}

static int cmp_event(const void *a, const void *b)
{
	const struct event *x = a, *y = b;
	if (x->ptr != y->ptr)
		return x->ptr < y->ptr ? -1 : 1;
	if (x->ts != y->ts)
		return x->ts < y->ts ? -1 : 1;
	return x->is_free - y->is_free; /* same tick: the allocation first */
}

/* Per pointer, in time order across threads: a free must follow an allocation. */
static void match_events(struct tally *t)
{
	qsort(t->ev, t->nev, sizeof(*t->ev), cmp_event);
	for (size_t i = 0; i < t->nev;) {
		bool live = false;
		size_t j = i;
		for (; j < t->nev && t->ev[j].ptr == t->ev[i].ptr; j++) {
			if (!t->ev[j].is_free) {
				t->unfreed += live; /* allocated again: a free was missed */
				live = true;
			} else if (live) {
				t->matched++;
				live = false;
			} else {
				t->unmatched_frees++;
			}
		}
		t->unfreed += live;
		i = j;
	}
	free(t->ev);
	t->ev = NULL;
}

/* Last cumulative value per site within one .freq file, added to the owners. */
static void tally_file(const char *path, void *ctx)
{
	struct tally *t = ctx;
	size_t len = strlen(path);
	bool freq = len > 5 && !strcmp(path + len - 5, ".freq");
	bool bin = len > 4 && !strcmp(path + len - 4, ".bin");
	if (!freq && !bin)
		return;
	if (t->pid) {
		const char *base = strrchr(path, '/');
		if (atoi(base ? base + 1 : path) != t->pid)
			return;
	}
	char err[512];
	struct tt_decoder *d = tt_decoder_open(path, err, sizeof(err));
	if (!d) {
		if (!t->errors++)
			snprintf(t->error, sizeof(t->error), "%s: %s", path, err);
		return;
	}
	t->files++;
	uint64_t sites[4096], counts[4096], bytes[4096];
	size_t nsites = 0;
	char name[32] = ""; /* the thread's last name: THREAD, then any NAME */
	struct tt_record r;
	int rc;
	while ((rc = tt_decoder_next(d, &r)) > 0) {
		if (r.tag == TT_REC_SITE) {
			size_t i = 0;
			while (i < nsites && sites[i] != r.site.site)
				i++;
			if (i == nsites && nsites < 4096)
				nsites++;
			sites[i] = r.site.site;
			counts[i] = r.site.count;
			bytes[i] = r.site.bytes;
		} else if (r.tag == TT_REC_ALLOC) {
			t->allocs++;
			add_event(t, r.alloc.ptr, r.alloc.ts, 0);
		} else if (r.tag == TT_REC_FREE) {
			t->frees++;
			add_event(t, r.free.ptr, r.free.ts, 1);
		} else if (r.tag == TT_REC_STACK) {
			t->stacks++;
			t->cut += (r.stack.flags & TT_STACK_TRUNCATED) != 0;
			if (r.stack.nframes > t->max_depth)
				t->max_depth = r.stack.nframes;
		} else if (r.tag == TT_REC_END) {
			t->ends++;
			t->dropped += r.end.dropped;
		} else if (r.tag == TT_REC_THREAD) {
			t->threads++;
			snprintf(name, sizeof(name), "%s", r.thread.name);
		} else if (r.tag == TT_REC_NAME) { /* renamed after its file opened */
			snprintf(name, sizeof(name), "%s", r.name.name);
			t->renames++;
		}
	}
	t->named += !strcmp(name, "tt-worker");
	const char *base = strrchr(path, '-');
	bool spare = base && !strncmp(base, "-0.", 3);
	t->spare_files += spare && bin;
	if (spare && freq)
		for (size_t i = 0; i < nsites; i++)
			t->spare_calls += counts[i];
	if (rc < 0 && !t->errors++)
		snprintf(t->error, sizeof(t->error), "%s: %s", path, tt_decoder_error(d));
	tt_decoder_destroy(d);
	bool over = false;
	for (size_t i = 0; i < nsites; i++) {
		over = over || counts[i] > 2000;
		struct fn *f = owner(t->fns, t->nfns, sites[i]);
		if (f) {
			f->got_count += counts[i];
			f->got_bytes += bytes[i];
		}
	}
	t->over_2000 += over;
}

static void tally_dir(struct tally *t)
{
	support_each_file(outdir, tally_file, t);
	cr_assert_eq(t->errors, 0, "%s", t->error);
	match_events(t);
	/* The loader frees a few blocks it allocated before the tracer started; in mode
	 * all, a dropped allocation's free is still recorded. */
	cr_assert_leq(t->unmatched_frees, 16 + t->dropped,
		      "%lu frees without an allocation before them (%lu events dropped)",
		      (unsigned long)t->unmatched_frees, (unsigned long)t->dropped);
}

static void check_exact_sites(struct fn *fns, int n)
{
	int checked = 0;
	for (int i = 0; i < n; i++) {
		if (!fns[i].want_count)
			continue;
		checked++;
		cr_expect_eq(fns[i].got_count, fns[i].want_count,
			     "%s: %lu allocations counted, %lu made", fns[i].name,
			     (unsigned long)fns[i].got_count, (unsigned long)fns[i].want_count);
		cr_expect_eq(fns[i].got_bytes, fns[i].want_bytes, "%s: %lu bytes counted, %lu made",
			     fns[i].name, (unsigned long)fns[i].got_bytes,
			     (unsigned long)fns[i].want_bytes);
	}
	cr_assert_gt(checked, 0, "the victim said what it did");
}

/* The victim's "fn"/"want" lines against the trace: tally every file, then check
 * the exact .freq count and bytes of each site it named. */
static void tally_sites(const struct run *r, struct fn *fns, int max, struct tally *t)
{
	int n = parse_fns(r->out, fns, max);
	*t = (struct tally){.fns = fns, .nfns = n};
	tally_dir(t);
	check_exact_sites(fns, n);
}

static void sites_test(const char *sample)
{
	char env[64];
	snprintf(env, sizeof(env), "THAGTRACE_SAMPLE=%s", sample);
	const char *e[] = {env, NULL};
	struct run r;
	run_victim(&r, e, "victim_sites", NULL);
	cr_assert_eq(r.status, 0, "stderr: %s", r.err);
	cr_assert_str_empty(r.err, "the tracer said nothing");
	struct fn fns[32];
	struct tally t;
	tally_sites(&r, fns, 32, &t);
	cr_assert_eq(t.ends, t.threads, "every thread's file was closed cleanly");
	/* Recorded frees follow their recorded allocations, also the calloc'd blocks
	 * another thread freed; in "all" mode every one of the victim's frees is there,
	 * and what stays unfreed is libc's own (stdio, thread bookkeeping). */
	if (!strcmp(sample, "all")) {
		unsigned frees = 0, cross = 0;
		const char *fl = strstr(r.out, "frees ");
		cr_assert(fl && sscanf(fl, "frees %u cross %u", &frees, &cross) == 2);
		cr_assert_geq(t.matched + t.dropped, frees, "%lu frees matched, %u made",
			      (unsigned long)t.matched, frees);
		cr_assert_leq(t.unfreed, 64 + t.dropped, "%lu blocks never freed",
			      (unsigned long)t.unfreed);
	} else {
		cr_assert_gt(t.matched, 100);
		cr_assert_leq(t.unfreed, 16, "sampled blocks never freed: %lu",
			      (unsigned long)t.unfreed);
	}
	support_rmdir(outdir);
}

/* THAGTRACE_OUT relative to where the program started, and the program changes
 * directory before its first allocation: its files still go there, whole (the
 * tracer once failed to create them and switched itself off). */
Test(preload, relative_output_directory_survives_chdir)
{
	char base[400], cwd[1024];
	snprintf(base, sizeof(base), "%s", support_tmpdir("reldir"));
	cr_assert_not_null(getcwd(cwd, sizeof(cwd)));
	cr_assert_eq(chdir(base), 0);
	const char *e[] = {"THAGTRACE_OUT=rel", NULL};
	struct run r;
	run_victim(&r, e, "victim_sites", "chdir", NULL);
	cr_assert_eq(chdir(cwd), 0);
	cr_assert_eq(r.status, 0, "stderr: %s", r.err);
	cr_assert_str_empty(r.err, "the tracer said nothing");
	support_rmdir(outdir); /* run_victim's, unused */
	snprintf(outdir, sizeof(outdir), "%s/rel", base);
	struct fn fns[32];
	struct tally t;
	tally_sites(&r, fns, 32, &t);
	cr_assert_gt(t.threads, 0, "the files are in %s", outdir);
	cr_assert_eq(t.ends, t.threads, "every thread's file was closed cleanly");
	support_rmdir(outdir);
	rmdir(base);
}

Test(preload, exact_site_counts_every_mode_all)
{
	sites_test("all");
}

Test(preload, exact_site_counts_tiered)
{
	sites_test("tiered");
}

/* A program with its own malloc: new must reach it, as libstdc++'s would, not go
 * straight to glibc's. */
Test(preload, new_reaches_the_programs_own_malloc)
{
	struct run r;
	run_victim(&r, NULL, "victim_own_malloc", NULL);
	cr_assert_eq(r.status, 0, "stderr: %s", r.err);
	long saw = -1;
	const char *at = strstr(r.out, "own malloc saw ");
	cr_assert(at && sscanf(at, "own malloc saw %ld", &saw) == 1, "output: %s", r.out);
	cr_assert_geq(saw, 1000, "the program's malloc saw %ld of 1000 news", saw);
}

Test(preload, cxx_operators_and_exceptions)
{
	struct run r;
	run_victim(&r, NULL, "victim_cxx", NULL);
	cr_assert_eq(r.status, 0, "stderr: %s", r.err);
	cr_assert(strstr(r.out, "caught 4"), "bad_alloc propagated through the interposer");
	cr_assert(strstr(r.out, "new-handler ran 1"), "a failed new ran the new-handler: %s",
		  r.out);
	struct fn fns[32];
	/* site_new counts 2000: 1000 after the throws, so the guard came back down. */
	struct tally t;
	tally_sites(&r, fns, 32, &t);
	/* 400 large blocks, always sampled (tagged), each one's delete recorded. */
	cr_assert_geq(t.matched, 400, "%lu frees matched", (unsigned long)t.matched);
	cr_assert_leq(t.unfreed, 16, "sampled blocks never freed: %lu", (unsigned long)t.unfreed);
	support_rmdir(outdir);
}

/*
 * Every C allocation function under each way a free is known to be sampled (block
 * tags, the freeset alone, every free recorded): the victim checks what it may rely
 * on (alignment, usable size, contents across realloc) and the trace has every
 * count exact and every recorded allocation's free.
 */
static void blocks_test(const char *const *env)
{
	struct run r;
	run_victim(&r, env, "victim_blocks", NULL);
	cr_assert_eq(r.status, 0, "the victim saw a broken promise:\n%.2000s\nstderr: %s", r.out,
		     r.err);
	cr_assert_str_empty(r.err, "the tracer said nothing");
	struct fn fns[32];
	struct tally t;
	tally_sites(&r, fns, 32, &t);
	unsigned long frees = 0;
	const char *fl = strstr(r.out, "frees ");
	cr_assert(fl && sscanf(fl, "frees %lu", &frees) == 1);
	/* 2400 blocks of 10 KiB and more (8 a round), all recorded, all freed. */
	cr_assert_geq(t.matched, 2400, "%lu frees matched", (unsigned long)t.matched);
	cr_assert_leq(t.unfreed, 16 + t.dropped, "recorded blocks never freed: %lu",
		      (unsigned long)t.unfreed);
	support_rmdir(outdir);
}

Test(preload, every_allocation_function_with_block_tags)
{
	blocks_test(NULL);
}

Test(preload, every_allocation_function_without_block_tags)
{
	const char *e[] = {"THAGTRACE_BLOCK_TAGS=0", NULL};
	blocks_test(e);
}

Test(preload, every_allocation_function_every_event)
{
	const char *e[] = {"THAGTRACE_SAMPLE=all", "THAGTRACE_RING_KB=4096", NULL};
	blocks_test(e);
}

/* Returns the number of thread files named "tt-worker". */
static unsigned threads_test(const char *mode, const char *count, unsigned want_threads,
			     unsigned calls_each, unsigned *over_2000)
{
	struct run r;
	/* Default sampling; rings large enough that 16 tight loops on 2 cores rarely
	 * overflow (what drops anyway is accounted for below). */
	const char *e[] = {"THAGTRACE_RING_KB=1024", NULL};
	run_victim(&r, e, "victim_threads", mode, count, NULL);
	cr_assert_eq(r.status, 0, "stderr: %s", r.err);
	cr_assert_str_empty(r.err);
	struct tally t = {0};
	tally_dir(&t);
	/* Threads the writer could not keep up with starting (it was RETIRING_MAX
	 * behind, thread.h: a slow file system, a loaded host) share the spare handle,
	 * each with its calls_each allocations counted there; none vanish. */
	uint64_t own = t.threads - t.spare_files;
	cr_assert_geq(own + t.spare_calls / calls_each, want_threads + 1,
		      "%lu thread files for %u threads and main (and %lu calls in the shared "
		      "handle's)",
		      (unsigned long)own, want_threads, (unsigned long)t.spare_calls);
	cr_assert_eq(t.ends, t.threads, "every thread unregistered and was closed");
	/* Sampled blocks are freed, even those glibc frees after a thread unregistered
	 * (its TLS blocks: recorded through the spare handle). */
	cr_assert_leq(t.unfreed, 16 + t.dropped, "%lu sampled blocks never freed, %lu dropped",
		      (unsigned long)t.unfreed, (unsigned long)t.dropped);
	cr_assert_gt(t.matched, want_threads / 10, "%lu frees matched", (unsigned long)t.matched);
	support_rmdir(outdir);
	*over_2000 = t.over_2000;
	return t.named;
}

/* The main thread leaves through pthread_exit: untraced, the process ends with
 * status 0 when the last thread does. The writer used to keep it alive for ever
 * (and, blocking every signal, deaf to SIGTERM); it now ends the session when it is
 * the last thread, and glibc's exit(0) comes from it. */
Test(preload, main_thread_leaving_through_pthread_exit, .timeout = 60)
{
	threads_test("main_exits", NULL, 16, 2001, &(unsigned){0});
}

/* Those workers name themselves (pthread_setname_np) after they were registered:
 * their files carry the new name. */
Test(preload, threads_ending_with_pthread_exit)
{
	unsigned named = threads_test("exit", NULL, 16, 2001, &(unsigned){0});
	cr_assert_eq(named, 16, "%u of 16 thread files carry the name the thread gave itself",
		     named);
}

/* Those workers name themselves only once their files exist (the writer opened them
 * for their first events): the new name follows in a NAME record. */
Test(preload, threads_renamed_after_their_files_opened)
{
	unsigned named = threads_test("rename", NULL, 4, 4002, &(unsigned){0});
	cr_assert_eq(named, 4, "%u of 4 thread files end with the name the thread gave itself",
		     named);
}

Test(preload, cancelled_threads)
{
	threads_test("cancel", NULL, 16, 101, &(unsigned){0});
}

Test(preload, detached_threads)
{
	threads_test("detached", NULL, 16, 2001, &(unsigned){0});
}

Test(preload, ten_thousand_short_lived_threads, .timeout = 240)
{
	threads_test("many", "10000", 10000, 11, &(unsigned){0});
}

/* Threads one after another: each gets the handle the one before left (thread.c
 * keeps them), and its files count its own calls, 2000 of its one site, not the
 * sum over the handle's owners; only the main thread's file may count more. */
Test(preload, threads_reusing_handles_count_only_their_own)
{
	unsigned over;
	threads_test("serial", "40", 40, 2001, &over);
	cr_assert_leq(over, 1, "%u files count over 2000 calls of one site", over);
}

Test(preload, two_hundred_threads_cross_frees, .timeout = 120)
{
	threads_test("stress", "200", 200, 2001, &(unsigned){0});
}

/* After fork the child traces into its own files: exactly its own allocations
 * (1000 at churn), never the parent's buffered events; the parent's files hold the
 * parent's (2000). Exit codes as untraced. With "_exit" the child leaves through
 * _exit at once (no destructor runs), and a vfork child through _exit before it. */
static void fork_test(const char *mode)
{
	struct run r;
	run_victim(&r, NULL, "victim_fork", mode, NULL);
	cr_assert_eq(r.status, 0, "exit code as untraced; stderr: %s", r.err);
	cr_assert(strstr(r.out, "child done") && strstr(r.out, "parent done, child 7"));
	int child = 0, parent = 0;
	cr_assert(sscanf(strstr(r.out, "child pid"), "child pid %d", &child) == 1);
	cr_assert(sscanf(strstr(r.out, "parent pid"), "parent pid %d", &parent) == 1);
	char meta[800];
	snprintf(meta, sizeof(meta), "%s/%d.meta", outdir, child);
	cr_assert_eq(access(meta, R_OK), 0, "the child has its own process file");
	int want[2] = {2000, 1000}, pids[2] = {parent, child};
	for (int k = 0; k < 2; k++) {
		struct fn fns[4];
		int n = parse_fns(r.out, fns, 4);
		struct tally t = {.fns = fns, .nfns = n, .pid = pids[k]};
		tally_dir(&t);
		cr_assert_geq(t.threads, 1, "pid %d has thread files", pids[k]);
		cr_assert_eq(t.ends, t.threads, "pid %d closed its files", pids[k]);
		cr_assert_eq(fns[0].got_count, (uint64_t)want[k],
			     "pid %d: %lu allocations at churn", pids[k],
			     (unsigned long)fns[0].got_count);
	}
	support_rmdir(outdir);
}

Test(preload, fork_child_traces_into_its_own_files)
{
	fork_test(NULL);
}

Test(preload, fork_child_leaving_through__exit_keeps_its_trace)
{
	fork_test("_exit");
}

/* exec replaces the image and its rings: the allocations made just before it are
 * in the files all the same (the exec family finishes the session first), and the
 * new image, preloaded again, traces into files of its own. */
static void kept_before(const char *mode)
{
	struct run r;
	run_victim(&r, NULL, "victim_fork", mode, NULL);
	cr_assert_eq(r.status, 0, "exit code of /bin/true; stderr: %s", r.err);
	struct fn fns[4];
	int n = parse_fns(r.out, fns, 4);
	struct tally t = {.fns = fns, .nfns = n};
	tally_dir(&t);
	cr_assert_eq(fns[0].got_count, 1000, "%s: %lu allocations at churn before it", mode,
		     (unsigned long)fns[0].got_count);
	cr_assert_eq(t.ends, t.threads, "every thread file (of both images) was closed");
	support_rmdir(outdir);
}

Test(preload, allocations_just_before_exec_are_kept)
{
	kept_before("exec");
}

Test(preload, allocations_just_before_quick_exit_are_kept)
{
	kept_before("quick_exit");
}

/* fork while other threads register and end: the fork handler once took the
 * registry's lock before the writer's, the writer the other way round (it retires
 * ended threads inside a pass), and the program hung. */
Test(preload, fork_while_threads_start_and_end, .timeout = 60)
{
	struct run r;
	run_victim(&r, NULL, "victim_fork", "churn", NULL);
	cr_assert_eq(r.status, 0, "stderr: %s", r.err);
	cr_assert(strstr(r.out, "forks ok 10"), "%s", r.out);
	support_rmdir(outdir);
}

/* The child of a fork does not inherit the parent's thread handles (they are left
 * out of it, nofork.h), so it closes the files the parent's writer holds open from a
 * table of its own: none of them may stay open in the child. */
Test(preload, fork_child_holds_none_of_the_parents_files)
{
	struct run r;
	run_victim(&r, NULL, "victim_fork", "fds", NULL);
	cr_assert_eq(r.status, 0, "stderr: %s", r.err);
	int held = -1, inherited = -1;
	cr_assert(sscanf(strstr(r.out, "parent holds"), "parent holds %d", &held) == 1, "%s",
		  r.out);
	cr_assert_eq(held, 0, "the tracer holds no descriptor between writes: %s", r.out);
	const char *in = strstr(r.out, "inherited");
	cr_assert(in && sscanf(in, "inherited %d", &inherited) == 1, "%s", r.out);
	cr_assert_eq(inherited, 0, "%s", r.out);
	support_rmdir(outdir);
}

/* A child made without fork() (_Fork, the fork system call, clone) runs no fork
 * handler and holds the parent's handle, whose memory it gets wiped (nofork.h):
 * it must run untraced, allocating, and leave through exit() (a destructor that
 * would wait for the parent's writer) or _exit with its own status. */
Test(preload, child_made_without_fork_runs_untraced, .timeout = 30)
{
	struct run r;
	run_victim(&r, NULL, "victim_fork", "raw", NULL);
	cr_assert_eq(r.status, 0, "stdout: %s stderr: %s", r.out, r.err);
	cr_assert(strstr(r.out, "raw 0: exit 3") && strstr(r.out, "raw 1: exit 4") &&
		      strstr(r.out, "raw 2: exit 4"),
		  "%s", r.out);
	struct fn fns[4];
	int n = parse_fns(r.out, fns, 4);
	struct tally t = {.fns = fns, .nfns = n};
	tally_dir(&t);
	cr_assert_eq(t.ends, t.threads, "the parent's files are whole");
	cr_assert_eq(fns[0].got_count, 2000,
		     "the parent's 2000 at churn, none of the children's: %lu",
		     (unsigned long)fns[0].got_count);
	support_rmdir(outdir);
}

/* A fork child's writer may run on its parent's writer's stack (glibc reuses the
 * stacks of ended threads): with liburcu's memb flavour it registered as a reader a
 * second time at the same address, and the next generation's fork hung for ever
 * waiting on a grace period. */
static void count_process_files(const char *path, void *ctx)
{
	size_t len = strlen(path);
	*(int *)ctx += len > 5 && !strcmp(path + len - 5, ".meta");
}

Test(preload, grandchildren_fork_while_their_parents_retire_threads, .timeout = 60)
{
	struct run r;
	run_victim(&r, NULL, "victim_fork", "generations", NULL);
	cr_assert_eq(r.status, 0, "stdout: %s stderr: %s", r.out, r.err);
	cr_assert(strstr(r.out, "generations ok"), "%s", r.out);
	/* Every generation traced into files of its own: the program and three
	 * children, each with its threads' files closed. */
	int processes = 0;
	support_each_file(outdir, count_process_files, &processes);
	cr_assert_eq(processes, 4, "%d process files", processes);
	struct tally t = {0};
	tally_dir(&t);
	/* Each generation's 4 threads, and the program's main thread (a child's main
	 * thread only starts and joins threads: no allocation of its own is traced). */
	cr_assert_geq(t.threads, 4 * 4 + 1, "%lu thread files", (unsigned long)t.threads);
	cr_assert_eq(t.ends, t.threads, "every thread file was closed");
	support_rmdir(outdir);
}

struct module_search {
	const char *needle;
	int records, found;
	int off_clock; /* MODULES records stamped on another scale than the clock's ticks */
};

/* Does any MODULES record of the .meta files list an object whose path has needle? */
static void search_modules(const char *path, void *ctx)
{
	struct module_search *s = ctx;
	size_t len = strlen(path);
	if (len < 5 || strcmp(path + len - 5, ".meta"))
		return;
	char err[512];
	struct tt_decoder *d = tt_decoder_open(path, err, sizeof(err));
	if (!d)
		return;
	struct tt_record r;
	uint64_t ticks = 0;
	while (tt_decoder_next(d, &r) > 0) {
		if (r.tag == TT_REC_CLOCK && !ticks)
			ticks = r.clock.ticks;
		if (r.tag != TT_REC_MODULES)
			continue;
		s->records++;
		/* In the clock's ticks, as every time stamp: within a run of the anchor,
		 * not on the monotonic clock's scale (the first map once was). */
		uint64_t ts = r.meta.body->via.array.ptr[1].via.u64;
		if (ticks && (ts > ticks + ticks / 100 || ts < ticks - ticks / 100))
			s->off_clock++;
		const msgpack_object *list = &r.meta.body->via.array.ptr[2];
		for (uint32_t i = 0; i < list->via.array.size; i++) {
			const msgpack_object_str *p =
			    &list->via.array.ptr[i].via.array.ptr[0].via.str;
			if (memmem(p->ptr, p->size, s->needle, strlen(s->needle)))
				s->found = 1;
		}
	}
	tt_decoder_destroy(d);
}

static void plugin_path(char *buf, size_t len)
{
	snprintf(buf, len, "%s/libvictim_plugin.so", getenv("VICTIM_DIR"));
}

Test(preload, dlopened_library_allocations)
{
	char plugin[1024];
	plugin_path(plugin, sizeof(plugin));
	struct run r;
	run_victim(&r, NULL, "victim_dlopen", plugin, NULL);
	cr_assert_eq(r.status, 0, "stderr: %s", r.err);
	struct fn fns[8];
	struct tally t;
	tally_sites(&r, fns, 8, &t);
	/* The library was loaded and closed within one flush interval: the map naming
	 * it is in the process file all the same. */
	struct module_search s = {.needle = "libvictim_plugin.so"};
	support_each_file(outdir, search_modules, &s);
	cr_assert_geq(s.records, 2, "a second module map after dlopen (%d)", s.records);
	cr_assert(s.found, "the map names the dlopened library");
	cr_assert_eq(s.off_clock, 0, "%d module maps not stamped in the clock's ticks",
		     s.off_clock);
	support_rmdir(outdir);
}

/* A library opened RTLD_DEEPBIND calls libc's free directly: blocks the program
 * allocates from then on carry no tag, so libc's free takes them as they are. */
Test(preload, deepbind_library_frees_the_programs_blocks)
{
	char plugin[1024];
	plugin_path(plugin, sizeof(plugin));
	struct run r;
	run_victim(&r, NULL, "victim_dlopen", plugin, "deepbind", NULL);
	cr_assert_eq(r.status, 0, "stderr: %s", r.err);
	cr_assert_str_empty(r.err);
	/* The library's own calls bypass the interposer (not counted: a limit of
	 * RTLD_DEEPBIND for any LD_PRELOAD tracer); the trace is still whole. */
	struct tally t = {0};
	tally_dir(&t);
	cr_assert_eq(t.ends, t.threads, "every thread's file was closed cleanly");
	support_rmdir(outdir);
}

/* Code without frame pointers: the frame-pointer walk stops at the first frame of
 * the victim, and says so (truncated); the default (auto, the call-frame tables)
 * unwinds the whole chain, as deep as libunwind does, and its stacks are whole. */
Test(preload, tables_see_through_code_without_frame_pointers)
{
	unsigned depth[3], cut[3], stacks[3];
	const char *modes[3] = {"THAGTRACE_UNWIND=fp", "THAGTRACE_UNWIND=auto",
				"THAGTRACE_UNWIND=libunwind"};
	for (int k = 0; k < 3; k++) {
		const char *e[] = {"THAGTRACE_SAMPLE=all", modes[k], NULL};
		struct run r;
		run_victim(&r, e, "victim_nofp", NULL);
		cr_assert_eq(r.status, 0, "stderr: %s", r.err);
		struct tally t = {0};
		tally_dir(&t);
		depth[k] = t.max_depth;
		cut[k] = t.cut;
		stacks[k] = t.stacks;
		support_rmdir(outdir);
	}
	cr_assert(stacks[0] > 0 && cut[0] == stacks[0], "fp: %u of %u stacks marked cut short",
		  cut[0], stacks[0]);
	cr_assert(stacks[1] > 0 && cut[1] == 0, "auto: %u of %u stacks marked cut short", cut[1],
		  stacks[1]);
	cr_log_info("deepest stack: fp %u, auto %u, libunwind %u frames", depth[0], depth[1],
		    depth[2]);
	cr_assert_leq(depth[0], 4, "fp cannot walk this code (%u frames)", depth[0]);
	cr_assert_geq(depth[1], 12, "auto unwinds the 10-deep chain, main and libc (%u)", depth[1]);
	cr_assert_eq(depth[1], depth[2], "auto %u frames, libunwind %u", depth[1], depth[2]);
}

/* A program that closes every descriptor and reuses all the numbers: its own file
 * holds only what it wrote, and tracing goes on (exact counts after the takeover). */
Test(preload, program_taking_every_descriptor_is_not_written_into)
{
	char path[1100];
	snprintf(path, sizeof(path), "%s.own", support_tmpdir("victim_closefds"));
	struct run r;
	run_victim(&r, NULL, "victim_closefds", path, NULL);
	cr_assert_eq(r.status, 0, "stderr: %s", r.err);
	cr_assert_str_empty(r.err, "the tracer said nothing");
	char buf[256] = {0};
	FILE *f = fopen(path, "r");
	cr_assert_not_null(f);
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	unlink(path);
	cr_assert_eq(n, 23, "the program's file is %zu bytes: %s", n, buf);
	cr_assert_str_eq(buf, "program data\nlast line\n");
	struct fn fns[4];
	struct tally t;
	tally_sites(&r, fns, 4, &t);
	cr_assert_eq(t.ends, t.threads, "the files were closed cleanly");
	support_rmdir(outdir);
}

/* The program puts its own file on fixed numbers (dup2) while its threads make the
 * writer write frames: the tracer must neither write there nor close them. */
Test(preload, program_reusing_descriptor_numbers_keeps_them, .timeout = 120)
{
	char path[1100];
	snprintf(path, sizeof(path), "%s.log", support_tmpdir("victim_fdreuse"));
	const char *env[] = {"THAGTRACE_FLUSH_MS=5", NULL};
	struct run r;
	run_victim(&r, env, "victim_fdreuse", path, NULL);
	unlink(path);
	cr_assert_eq(r.status, 0, "stdout: %s stderr: %s", r.out, r.err);
	long lines = -1, want = -2;
	cr_assert(sscanf(r.out, "lines %ld of %ld", &lines, &want) == 2, "%s", r.out);
	cr_assert(lines == want && lines >= 1200 && strstr(r.out, "vanished 0 foreign 0"), "%s",
		  r.out);
	cr_assert_str_empty(r.err, "the tracer said nothing");
	struct tally t = {0};
	tally_dir(&t);
	cr_assert_gt(t.threads, 0);
	cr_assert_eq(t.ends, t.threads, "the trace files are whole");
	support_rmdir(outdir);
}

struct tid_files {
	int tid;
	int files;	 /* .bin files of that thread, one per session */
	int with_allocs; /* of those, how many recorded allocations */
};

static void count_tid_files(const char *path, void *ctx)
{
	struct tid_files *c = ctx;
	const char *base = strrchr(path, '/');
	int pid, tid;
	size_t len = strlen(path);
	if (!base || sscanf(base + 1, "%d-%d", &pid, &tid) != 2 || tid != c->tid || len < 4 ||
	    strcmp(path + len - 4, ".bin"))
		return;
	c->files++;
	struct tally t = {0};
	tally_file(path, &t);
	c->with_allocs += t.allocs > 0;
}

/* What a flood's files say about shedding (shed.h). */
struct shed_tally {
	uint64_t allocs, below_one, not_power_of_two, shed_bins, dropped;
	/* Over the flooding threads' .bin files (those with 16 KiB blocks): */
	uint64_t frees, dropped_events, dropped_allocs, bad_dropped_bytes;
	unsigned flood_sites; /* .freq files whose last count of one site is 50 000 */
};

static void shed_file(const char *path, void *ctx)
{
	struct shed_tally *t = ctx;
	size_t len = strlen(path);
	bool freq = len > 5 && !strcmp(path + len - 5, ".freq");
	if (!freq && (len < 4 || strcmp(path + len - 4, ".bin")))
		return;
	char err[512];
	struct tt_decoder *d = tt_decoder_open(path, err, sizeof(err));
	cr_assert_not_null(d, "%s", err);
	struct tt_record r;
	uint64_t shed = 0, dropped = 0, dropped_bytes = 0, flood_site = 0, flood_count = 0;
	uint64_t kept = 0, frees = 0;
	int rc;
	while ((rc = tt_decoder_next(d, &r)) > 0) {
		if (r.tag == TT_REC_SITE && r.site.bytes >= (uint64_t)r.site.count * 16384 &&
		    r.site.count > 1000) { /* cumulative: the last snapshot counts */
			flood_site = r.site.site;
			flood_count = r.site.count;
		} else if (r.tag == TT_REC_ALLOC && r.alloc.size == 16384) {
			int e;
			kept++;
			t->allocs++;
			t->below_one += r.alloc.probability < 1.0;
			t->not_power_of_two += frexp(r.alloc.probability, &e) != 0.5;
		} else if (r.tag == TT_REC_FREE) {
			frees++;
		} else if (r.tag == TT_REC_DROPS) { /* cumulative: the last one counts */
			shed = r.drops.shed;
			dropped = r.drops.dropped;
			dropped_bytes = r.drops.dropped_bytes;
		}
	}
	cr_assert_geq(rc, 0, "%s: %s", path, tt_decoder_error(d));
	tt_decoder_destroy(d);
	t->shed_bins += shed;
	t->dropped += dropped;
	if (kept) { /* a flooding thread: every allocation it sampled was 16 KiB */
		t->frees += frees;
		t->dropped_events += dropped;
		t->dropped_allocs += dropped_bytes / 16384;
		t->bad_dropped_bytes += dropped_bytes % 16384;
	}
	t->flood_sites += flood_site && flood_count == 50000;
}

/*
 * Four threads allocate and free 16 KiB blocks (the large tier: each one sampled)
 * as fast as they can, into the smallest rings: the writer cannot keep up, and
 * rather than fill and drop, the rings shed. What is shed is counted in each
 * thread's DROPS record and in the process's totals, the same number; what is kept
 * carries the lower probability it was kept with, 2^-k of the rule's 1, exactly.
 */
Test(preload, rings_the_writer_cannot_keep_up_with_shed_with_honest_weights, .timeout = 60)
{
	struct run r;
	const char *e[] = {"THAGTRACE_RING_KB=8", NULL};
	run_victim(&r, e, "victim_threads", "flood", "4", NULL);
	cr_assert_eq(r.status, 0, "stderr: %s", r.err);
	cr_assert_str_empty(r.err);
	struct shed_tally t = {0};
	support_each_file(outdir, shed_file, &t);
	cr_assert_gt(t.shed_bins, 0, "nothing shed: the rings never passed 5/8");
	char err[512];
	struct tt_trace *tr = tt_trace_open(outdir, err, sizeof(err));
	cr_assert_not_null(tr, "%s", err);
	cr_assert(tr->nprocs == 1 && tr->procs[0].has_end, "no PROCESS_END in the process file");
	cr_assert_eq(tr->procs[0].end_shed, t.shed_bins,
		     "PROCESS_END says %llu shed, the threads %llu",
		     (unsigned long long)tr->procs[0].end_shed, (unsigned long long)t.shed_bins);
	tt_trace_destroy(tr);
	/* Each of the 200 000 blocks the rule sampled (all: the large tier) was kept,
	 * shed or dropped, exactly one of the three; each kept one's free was recorded
	 * or dropped, and no other free was recorded (a shed block is not tagged, nor
	 * in the freeset). */
	cr_assert_eq(t.bad_dropped_bytes, 0, "dropped allocations are 16 KiB blocks");
	cr_assert_eq(t.allocs + t.shed_bins + t.dropped_allocs, 4 * 50000,
		     "kept %llu + shed %llu + dropped %llu", (unsigned long long)t.allocs,
		     (unsigned long long)t.shed_bins, (unsigned long long)t.dropped_allocs);
	cr_assert_eq(t.frees + (t.dropped_events - t.dropped_allocs), t.allocs,
		     "frees recorded %llu + dropped %llu, for %llu blocks kept",
		     (unsigned long long)t.frees,
		     (unsigned long long)(t.dropped_events - t.dropped_allocs),
		     (unsigned long long)t.allocs);
	cr_assert_gt(t.allocs, 0, "every site's first block is kept at least");
	cr_assert_gt(t.below_one, 0, "no block kept at a thinned probability (%llu kept)",
		     (unsigned long long)t.allocs);
	cr_assert_eq(t.not_power_of_two, 0, "%llu probabilities are not 2^-k",
		     (unsigned long long)t.not_power_of_two);
	cr_assert_eq(t.flood_sites, 4, "%u thread files count 50 000 calls of the flood's site",
		     t.flood_sites);
	support_rmdir(outdir);
}

/* A program linked with the library stops and starts tracing while a thread keeps
 * allocating: that thread is traced in both sessions (its handle from the first is
 * given up, a new one registered). */
Test(preload, thread_traced_again_after_restart)
{
	char dir[700];
	snprintf(dir, sizeof(dir), "%s", support_tmpdir("restart"));
	char exe[1024];
	snprintf(exe, sizeof(exe), "%s/victim_restart", getenv("VICTIM_DIR"));
	char cmd[4096];
	snprintf(cmd, sizeof(cmd), "LD_LIBRARY_PATH=%s %s %s > %s/out.txt",
		 getenv("THAGTRACE_LIB_DIR"), exe, dir, dir);
	cr_assert_eq(system(cmd), 0);
	char outp[800];
	snprintf(outp, sizeof(outp), "%s/out.txt", dir);
	unsigned char *out;
	cr_assert_gt(support_slurp(outp, &out), 0);
	int tid = 0;
	cr_assert(sscanf(strstr((char *)out, "worker tid"), "worker tid %d", &tid) == 1);
	free(out);
	unlink(outp);
	struct tid_files c = {tid, 0, 0};
	support_each_file(dir, count_tid_files, &c);
	cr_assert_eq(c.files, 2, "one file per session for the worker, got %d", c.files);
	cr_assert_eq(c.with_allocs, 2, "allocations recorded in both sessions");
	support_rmdir(dir);
}

Test(preload, bad_setting_one_line_and_untraced)
{
	static const char *const bad[][2] = {
	    {"THAGTRACE_SAMPLE=sometimes", "expected all, tiered, tiered:key=value,... or "
					   "poisson:BYTES"},
	    {"THAGTRACE_BLOCK_TAGS=yes", "expected 0 or 1"},
	    {"THAGTRACE_ZSTD_LEVEL=20", "expected a number from -7 to 19"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *e[] = {bad[i][0], NULL};
		struct run r;
		run_victim(&r, e, "victim_fork", NULL);
		cr_assert_eq(r.status, 0);
		cr_assert(strstr(r.out, "parent done, child 7"), "output as untraced");
		char want[300];
		snprintf(want, sizeof(want),
			 "libthagtrace: %s: %s; tracing off, the program runs untraced\n",
			 bad[i][0], bad[i][1]);
		cr_assert_str_eq(r.err, want);
		support_rmdir(outdir);
	}
}

Test(preload, unwritable_output_one_line_and_untraced)
{
	const char *e[] = {"THAGTRACE_OUT=/proc/version/out", NULL};
	struct run r;
	run_victim(&r, e, "victim_fork", NULL);
	cr_assert_eq(r.status, 0);
	cr_assert(strstr(r.out, "parent done, child 7"), "output as untraced");
	cr_assert(strstr(r.err, "libthagtrace: cannot use output directory /proc/version/out"),
		  "got: %s", r.err);
	cr_assert_eq(strchr(r.err, '\n'), r.err + strlen(r.err) - 1, "one line: %s", r.err);
	support_rmdir(outdir);
}
