/* SPDX-License-Identifier: MIT */
/*
 * Estimation end to end: victim_estimate (known allocations per site) runs under
 * the preloaded tracer with the default sampling, the merge estimates every site,
 * split stack, leak and cross-thread free, and the figures are checked against the
 * truth the victim printed. With and without frame pointers in the victim.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <fcntl.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../src/analysis/merge.h"
#include "../src/analysis/resolve.h"
#include "support.h"

extern char **environ;

#define MAXW 16

struct want {
	char name[64];
	double calls, bytes, live;		   /* the truth */
	double est_bytes, est_calls, est_live, ci; /* the estimate, summed over stacks */
	double ci_calls;			   /* 95 % half-width of est_calls */
	unsigned stacks;
	uint64_t samples;
};

static int nwant;
static struct want wants[MAXW];

/* Run the victim preloaded, its stdout into out; returns its exit status. */
static int run(const char *victim, const char *const *args, const char *dir, char *out, size_t cap)
{
	char exe[1024], preload[1100], odir[700], stdout_path[800];
	snprintf(exe, sizeof(exe), "%s/%s", getenv("VICTIM_DIR"), victim);
	snprintf(preload, sizeof(preload), "LD_PRELOAD=%s", getenv("THAGTRACE_LIB"));
	snprintf(odir, sizeof(odir), "THAGTRACE_OUT=%s", dir);
	snprintf(stdout_path, sizeof(stdout_path), "%s.stdout", dir);
	const char *envp[64];
	int n = 0;
	for (char **e = environ; *e && n < 56; e++)
		if (strncmp(*e, "THAGTRACE_", 10) && strncmp(*e, "LD_PRELOAD=", 11))
			envp[n++] = *e;
	envp[n++] = preload;
	envp[n++] = odir;
	/* A fixed seed; each thread's draws also depend on the order threads register
	 * in, which the scheduler may vary, so the checks below are statistical bounds. */
	envp[n++] = "THAGTRACE_SEED=20261123";
	/* Rings large enough that no event is dropped even when the machine is busy
	 * with other tests (the writer then runs late): drops are tested elsewhere,
	 * here they would only blur what estimation does. Sampling stays the default. */
	envp[n++] = "THAGTRACE_RING_KB=8192";
	envp[n] = NULL;
	const char *argv[8] = {exe};
	for (int i = 0; args && args[i] && i < 6; i++)
		argv[i + 1] = args[i];
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, stdout_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	pid_t pid;
	cr_assert_eq(posix_spawn(&pid, exe, &fa, NULL, (char *const *)argv, (char *const *)envp),
		     0);
	posix_spawn_file_actions_destroy(&fa);
	int st;
	waitpid(pid, &st, 0);
	FILE *f = fopen(stdout_path, "r");
	cr_assert_not_null(f);
	size_t k = fread(out, 1, cap - 1, f);
	out[k] = 0;
	fclose(f);
	unlink(stdout_path);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void parse_wants(const char *out)
{
	nwant = 0;
	for (const char *l = out; (l = strstr(l, "want ")) && nwant < MAXW; l++) {
		struct want *w = &wants[nwant];
		memset(w, 0, sizeof(*w));
		if (sscanf(l, "want %63s %lf %lf %lf", w->name, &w->calls, &w->bytes, &w->live) ==
		    4)
			nwant++;
	}
	cr_assert_eq(nwant, 9, "victim printed %d want lines:\n%s", nwant, out);
}

static struct want *find(const char *name)
{
	for (int i = 0; i < nwant; i++)
		if (name && !strcmp(wants[i].name, name))
			return &wants[i];
	return NULL;
}

/* Attribute each stack to the victim function that made it: its leaf function, or
 * for the shared wrapper the caller above it. */
static void attribute(const struct tt_profile *p, struct tt_resolver *r)
{
	for (unsigned i = 0; i < p->nstacks; i++) {
		const struct tt_stack *s = &p->stacks[i];
		const struct tt_rframe *fr;
		unsigned n = tt_resolve_stack(r, s, &fr);
		if (!n || !fr[0].function)
			continue;
		const char *name = fr[0].function;
		if (!strcmp(name, "wrapped"))
			name = n > 1 ? fr[1].function : NULL;
		struct want *w = find(name);
		if (!w)
			continue;
		w->est_bytes += s->alloc_bytes;
		w->est_calls += s->alloc_count;
		w->est_live += s->live_bytes;
		/* The wider side of each interval, added in quadrature. */
		double hb =
		    fmax(s->alloc_bytes_hi - s->alloc_bytes, s->alloc_bytes - s->alloc_bytes_lo);
		double hc =
		    fmax(s->alloc_count_hi - s->alloc_count, s->alloc_count - s->alloc_count_lo);
		w->ci += hb * hb;
		w->ci_calls += hc * hc;
		w->samples += s->samples;
		w->stacks++;
	}
	for (int i = 0; i < nwant; i++) {
		wants[i].ci = sqrt(wants[i].ci);
		wants[i].ci_calls = sqrt(wants[i].ci_calls);
	}
}

/* The trace in dir, merged and estimated, with a resolver. */
static void open_profile(const char *dir, struct tt_trace **t, struct tt_profile **p,
			 struct tt_resolver **r)
{
	char err[1024];
	*t = tt_trace_open(dir, err, sizeof(err));
	cr_assert_not_null(*t, "%s", err);
	*p = tt_profile_build(*t, NULL, NULL, NULL, err, sizeof(err));
	cr_assert_not_null(*p, "%s", err);
	*r = tt_resolver_create(*t, true);
	cr_assert_not_null(*r);
}

static void check(const char *victim)
{
	char out[8192];
	const char *dir = support_tmpdir(victim);
	cr_assert_not_null(dir);
	char dirbuf[512];
	snprintf(dirbuf, sizeof(dirbuf), "%s", dir);
	cr_assert_eq(run(victim, NULL, dirbuf, out, sizeof(out)), 0);
	parse_wants(out);

	struct tt_trace *t;
	struct tt_profile *p;
	struct tt_resolver *r;
	open_profile(dirbuf, &t, &p, &r);
	attribute(p, r);
	cr_assert_eq(p->dropped, 0, "events dropped: the figures would not test estimation");

	double total = 0;
	for (int i = 0; i < nwant; i++)
		total += wants[i].bytes;
	for (int i = 0; i < nwant; i++) {
		struct want *w = &wants[i];
		cr_log_info(
		    "%s %-16s bytes %.0f est %.0f (%+.2f%%, ci95 +/- %.0f) calls %.0f est %.0f "
		    "live %.0f est %.0f samples %llu stacks %u",
		    victim, w->name, w->bytes, w->est_bytes,
		    100.0 * (w->est_bytes - w->bytes) / w->bytes, w->ci, w->calls, w->est_calls,
		    w->live, w->est_live, (unsigned long long)w->samples, w->stacks);
		cr_expect_gt(w->stacks, 0, "%s: no stack found (unwinding or symbols?)", w->name);
		/* Within 5 %, or within twice the 95 % interval (about 4 standard errors)
		 * where sampling leaves more spread than that: a site of 50000 small
		 * calls has ~1000 samples, a 3 % standard error. */
		double tol_bytes = fmax(0.05 * w->bytes, 2 * w->ci);
		double tol_calls = fmax(0.05 * w->calls, 2 * w->ci_calls);
		if (w->bytes >= 0.01 * total)
			cr_expect_leq(fabs(w->est_bytes - w->bytes), tol_bytes,
				      "%s: estimated %.0f bytes, truth %.0f, ci95 %.0f", w->name,
				      w->est_bytes, w->bytes, w->ci);
		cr_expect_leq(fabs(w->est_calls - w->calls), tol_calls,
			      "%s: estimated %.0f calls, truth %.0f, ci95 %.0f", w->name,
			      w->est_calls, w->calls, w->ci_calls);
	}
	/* >= 10 KiB: recorded with probability 1, so exact (no interval). */
	for (const char *const *n = (const char *const[]){"site_large", "site_leak_large", NULL};
	     *n; n++) {
		struct want *w = find(*n);
		cr_expect_eq(w->samples, (uint64_t)w->calls, "%s: %llu samples of %.0f calls", *n,
			     (unsigned long long)w->samples, w->calls);
		cr_expect_leq(fabs(w->est_bytes - w->bytes), 0.5, "%s: %.0f, exact %.0f", *n,
			      w->est_bytes, w->bytes);
		cr_expect_leq(fabs(w->est_live - w->live), 0.5, "%s live: %.0f, exact %.0f", *n,
			      w->est_live, w->live);
	}
	/* Two callers share one site: split by the samples, both within 5 %, each with
	 * an interval (the site's total is exact, the split is not). */
	cr_expect_gt(find("caller_a")->ci, 0);
	cr_expect_gt(find("caller_b")->ci, 0);
	/* A site with one stack is the site's exact total. */
	cr_expect_leq(fabs(find("site_tiny")->est_bytes - find("site_tiny")->bytes), 0.5);
	/* Leaks within 10 %; freed memory (also by another thread) is not live. */
	struct want *leak = find("site_leak");
	cr_expect_leq(fabs(leak->est_live - leak->live), 0.10 * leak->live,
		      "leak: estimated %.0f live bytes, truth %.0f", leak->est_live, leak->live);
	for (int i = 0; i < nwant; i++)
		if (wants[i].live == 0)
			cr_expect_lt(wants[i].est_live, 1.0,
				     "%s: %.0f bytes read as live, none are", wants[i].name,
				     wants[i].est_live);
	cr_expect_eq(p->freeset_full, 0);

	tt_resolver_destroy(r);
	tt_profile_destroy(p);
	tt_trace_destroy(t);
	support_rmdir(dirbuf);
}

Test(estimate, frame_pointers, .timeout = 120)
{
	check("victim_estimate");
}

Test(estimate, no_frame_pointers, .timeout = 120)
{
	check("victim_estimate_nofp");
}

/* A library closed and another loaded at its address: the same return addresses
 * are then the other library's code. Each one's allocations are its own stack
 * (10 and 30 blocks), named after its own library. */
Test(estimate, library_replaced_at_the_same_address, .timeout = 60)
{
	char a[1024], b[1024], out[4096], dirbuf[512];
	snprintf(a, sizeof(a), "%s/libvictim_plugin.so", getenv("VICTIM_DIR"));
	snprintf(b, sizeof(b), "%s/libvictim_plugin_b.so", getenv("VICTIM_DIR"));
	snprintf(dirbuf, sizeof(dirbuf), "%s", support_tmpdir("swap"));
	const char *args[] = {a, "swap", b, NULL};
	cr_assert_eq(run("victim_dlopen", args, dirbuf, out, sizeof(out)), 0, "%s", out);
	void *at[2] = {0};
	const char *l = strstr(out, "plugin_big 0 ");
	cr_assert(l && sscanf(l, "plugin_big 0 %p", &at[0]) == 1, "%s", out);
	l = strstr(out, "plugin_big 1 ");
	cr_assert(l && sscanf(l, "plugin_big 1 %p", &at[1]) == 1, "%s", out);
	cr_log_info("plugin_big at %p, then %p", at[0], at[1]);

	struct tt_trace *t;
	struct tt_profile *p;
	struct tt_resolver *r;
	open_profile(dirbuf, &t, &p, &r);
	double calls[2] = {0};
	for (unsigned i = 0; i < p->nstacks; i++) {
		const struct tt_rframe *fr;
		unsigned n = tt_resolve_stack(r, &p->stacks[i], &fr);
		if (!n || !fr[0].function || strcmp(fr[0].function, "plugin_big") || !fr[0].module)
			continue;
		calls[strstr(fr[0].module, "plugin_b.so") != NULL] += p->stacks[i].alloc_count;
	}
	cr_expect_eq(calls[0], 10, "blocks through the first library: %.0f", calls[0]);
	cr_expect_eq(calls[1], 30, "blocks through the second library: %.0f", calls[1]);
	tt_resolver_destroy(r);
	tt_profile_destroy(p);
	tt_trace_destroy(t);
	support_rmdir(dirbuf);
}

/* The merged profile of victim_fork in `mode` (which prints "MODE ok"), its
 * live and peak totals logged; free with fork_profile_close. */
struct fork_run {
	char dir[512];
	struct tt_trace *t;
	struct tt_profile *p;
	struct tt_resolver *r;
};

static void fork_profile(struct fork_run *f, const char *mode)
{
	char out[4096], ok[64];
	snprintf(f->dir, sizeof(f->dir), "%s", support_tmpdir(mode));
	const char *args[] = {mode, NULL};
	cr_assert_eq(run("victim_fork", args, f->dir, out, sizeof(out)), 0, "%s", out);
	snprintf(ok, sizeof(ok), "%s ok", mode);
	cr_assert(strstr(out, ok), "%s", out);
	open_profile(f->dir, &f->t, &f->p, &f->r);
	const struct tt_profile *p = f->p;
	cr_log_info("%s: live at end %.0f [%.0f, %.0f], peak %.0f [%.0f, %.0f]", mode,
		    p->live_bytes, p->live_bytes_lo, p->live_bytes_hi, p->peak_bytes,
		    p->peak_bytes_lo, p->peak_bytes_hi);
}

static void fork_profile_close(struct fork_run *f)
{
	tt_resolver_destroy(f->r);
	tt_profile_destroy(f->p);
	tt_trace_destroy(f->t);
	support_rmdir(f->dir);
}

/* Four processes one after another, each holding 128 KiB (and 10 KiB of small
 * blocks) until it exits: the peak is one child's, not the sum of their leaks,
 * which is what is live at the end. */
Test(estimate, processes_one_after_another_peak_alone, .timeout = 60)
{
	struct fork_run f;
	fork_profile(&f, "sequential");
	cr_expect_geq(f.p->live_bytes_hi, 4 * 131072, "every child's blocks leaked");
	cr_expect_geq(f.p->peak_bytes, 131072, "a child held 128 KiB");
	cr_expect_lt(f.p->peak_bytes, 2 * 131072, "no two children lived together");
	fork_profile_close(&f);
}

/* Three children killed (no clean end) while they and their parent held 128 KiB
 * each: they may have lived until the kill, and did; the peak is all four. */
Test(estimate, killed_processes_count_until_the_end, .timeout = 60)
{
	struct fork_run f;
	fork_profile(&f, "killed");
	cr_expect_geq(f.p->peak_bytes, 4 * 131072, "four processes held 128 KiB each at once");
	fork_profile_close(&f);
}
