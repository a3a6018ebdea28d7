/* SPDX-License-Identifier: MIT */
/*
 * thagtrace-run as a user runs it: exit codes, stdout passed through byte for byte,
 * the output directory and what the tracer wrote into it, the settings reaching the
 * tracer, signals, and the merge/report tools (stand-in scripts via
 * THAGTRACE_RUN_TOOLDIR). thagtrace-run is a child; it runs the victims.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../src/analysis/decode.h"
#include "../support.h"

extern char **environ;

/* Every test's files under one directory, removed after the test. */
static char root[512];
static int ntmp;

static void rm_rf(const char *path)
{
	char cmd[1200];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", path);
}

static void setup(void)
{
	const char *p = support_tmpdir("run");
	cr_assert(p, "a temporary directory");
	snprintf(root, sizeof(root), "%s", p);
}

static void teardown(void)
{
	rm_rf(root);
}

TestSuite(run, .init = setup, .fini = teardown);

/* A new empty directory; the path stays valid for the whole test. */
static char *tmp(const char *tag)
{
	char *p;
	cr_assert_geq(asprintf(&p, "%s/%s-%d", root, tag, ++ntmp), 0);
	cr_assert_eq(mkdir(p, 0755), 0, "%s: %s", p, strerror(errno));
	return p;
}

struct result {
	int status; /* exit code, or -signal if thagtrace-run itself died */
	pid_t pid;  /* thagtrace-run's */
	char *out;  /* its stdout, exactly (malloc'd) */
	size_t out_len;
	char err[32768]; /* its stderr */
};

/* Called in the child between fork and exec (may be NULL). */
typedef void (*child_hook)(void *ctx);
/* Called in the parent once thagtrace-run runs, with its pid and stdout's fd; it
 * reads what it wants first (may be NULL). */
typedef void (*parent_hook)(pid_t pid, int out_fd, void *ctx);

/* Run `argv` (argv[0] a path) in `cwd` (NULL: here) with THAGTRACE_* and LD_PRELOAD
 * removed from this environment, plus THAGTRACE_LIB and the `env` entries (NULL
 * terminated, may be NULL). stdout comes back through a pipe, stderr through a file. */
static void spawn_capture(struct result *r, const char *cwd, const char *const *env,
			  char *const *argv, child_hook ch, parent_hook ph, void *ctx)
{
	static char lib[4200];
	snprintf(lib, sizeof(lib), "THAGTRACE_LIB=%s", getenv("THAGTRACE_LIB"));
	const char *envp[256];
	int n = 0;
	for (char **e = environ; *e && n < 200; e++)
		if (strncmp(*e, "THAGTRACE_", 10) && strncmp(*e, "LD_PRELOAD=", 11))
			envp[n++] = *e;
	for (; env && *env && n < 254; env++)
		envp[n++] = *env; /* first: getenv finds them before the default below */
	envp[n++] = lib;
	envp[n] = NULL;

	char errpath[600];
	snprintf(errpath, sizeof(errpath), "%s/stderr-XXXXXX", root);
	int errfd = mkstemp(errpath);
	cr_assert_geq(errfd, 0);
	int p[2];
	cr_assert_eq(pipe(p), 0);
	fflush(NULL);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		/* As a user's shell would start it: default signals, nothing blocked. */
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		int sigs[] = {SIGINT, SIGQUIT, SIGTERM, SIGHUP, SIGPIPE};
		for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
			signal(sigs[i], SIG_DFL);
		setpgid(0, 0);
		dup2(p[1], 1);
		dup2(errfd, 2);
		close(p[0]);
		close(p[1]);
		close(errfd);
		if (cwd && chdir(cwd) != 0)
			_exit(99);
		if (ch)
			ch(ctx);
		execve(argv[0], argv, (char *const *)envp);
		_exit(98);
	}
	close(p[1]);
	r->pid = pid;
	if (ph)
		ph(pid, p[0], ctx);
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap);
	for (;;) {
		if (len == cap)
			buf = realloc(buf, cap *= 2);
		ssize_t k = read(p[0], buf + len, cap - len);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		len += (size_t)k;
	}
	close(p[0]);
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	r->status = WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
	r->out = buf;
	r->out_len = len;
	ssize_t k = pread(errfd, r->err, sizeof(r->err) - 1, 0);
	r->err[k > 0 ? k : 0] = '\0';
	close(errfd);
	unlink(errpath);
}

static char *run_path(void)
{
	return getenv("THAGTRACE_RUN");
}

static char *victim(const char *name)
{
	static char path[1024];
	snprintf(path, sizeof(path), "%s/%s", getenv("VICTIM_DIR"), name);
	return path;
}

/* thagtrace-run with `args` (NULL terminated) in cwd, plus env entries. */
static void run(struct result *r, const char *cwd, const char *const *env, ...)
{
	char *argv[64] = {run_path()};
	int n = 1;
	va_list ap;
	va_start(ap, env);
	for (char *a; (a = va_arg(ap, char *)) && n < 63;)
		argv[n++] = a;
	va_end(ap);
	argv[n] = NULL;
	spawn_capture(r, cwd, env, argv, NULL, NULL, NULL);
}

static void result_free(struct result *r)
{
	free(r->out);
}

/* Names in dir (one level, no dot files) into names[], sorted; returns the count. */
static int list_dir(const char *dir, char names[][256], int max)
{
	DIR *d = opendir(dir);
	cr_assert(d, "%s: %s", dir, strerror(errno));
	int n = 0;
	for (struct dirent *e; (e = readdir(d));)
		if (e->d_name[0] != '.' && n < max)
			snprintf(names[n++], 256, "%s", e->d_name);
	closedir(d);
	qsort(names, (size_t)n, 256, (int (*)(const void *, const void *))strcmp);
	return n;
}

static int count_suffix(const char *dir, const char *suffix)
{
	char names[256][256];
	int n = list_dir(dir, names, 256), k = 0;
	for (int i = 0; i < n; i++) {
		size_t l = strlen(names[i]), s = strlen(suffix);
		k += l > s && !strcmp(names[i] + l - s, suffix);
	}
	return k;
}

/* ---- the PROCESS record of a .meta file ---- */

static const msgpack_object *map_get(const msgpack_object *m, const char *key)
{
	if (!m || m->type != MSGPACK_OBJECT_MAP)
		return NULL;
	for (uint32_t i = 0; i < m->via.map.size; i++) {
		const msgpack_object *k = &m->via.map.ptr[i].key;
		if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == strlen(key) &&
		    !memcmp(k->via.str.ptr, key, k->via.str.size))
			return &m->via.map.ptr[i].val;
	}
	return NULL;
}

struct process_facts {
	char mode[32];
	uint64_t ring_kb, max_frames, min_size;
};

/* The facts of the only .meta file in dir. */
static void read_process(const char *dir, struct process_facts *pf)
{
	char names[256][256], path[1400] = "";
	int n = list_dir(dir, names, 256), metas = 0;
	for (int i = 0; i < n; i++)
		if (strstr(names[i], ".meta")) {
			metas++;
			snprintf(path, sizeof(path), "%s/%.255s", dir, names[i]);
		}
	cr_assert_eq(metas, 1, "one process traced in %s", dir);
	char err[512];
	struct tt_decoder *d = tt_decoder_open(path, err, sizeof(err));
	cr_assert(d, "%s: %s", path, err);
	struct tt_record rec;
	bool seen = false;
	while (tt_decoder_next(d, &rec) > 0) {
		if (rec.tag != TT_REC_PROCESS)
			continue;
		seen = true;
		const msgpack_object *s = map_get(rec.meta.body, "sampling");
		const msgpack_object *mode = map_get(s, "mode");
		cr_assert(mode && mode->type == MSGPACK_OBJECT_STR);
		snprintf(pf->mode, sizeof(pf->mode), "%.*s", (int)mode->via.str.size,
			 mode->via.str.ptr);
		const msgpack_object *v = map_get(s, "max_frames");
		pf->max_frames = v ? v->via.u64 : 0;
		v = map_get(s, "min_size");
		pf->min_size = v ? v->via.u64 : 0;
		v = map_get(map_get(rec.meta.body, "settings"), "ring_kb");
		pf->ring_kb = v ? v->via.u64 : 0;
	}
	tt_decoder_destroy(d);
	cr_assert(seen, "%s holds a PROCESS record", path);
}

/* ---- exit codes and pass-through ---- */

Test(run, exit_code_is_progs)
{
	struct result r;
	run(&r, tmp("cwd"), NULL, "--no-report", "--", "/bin/sh", "-c", "exit 7", NULL);
	cr_assert_eq(r.status, 7, "stderr: %s", r.err);
	result_free(&r);
	run(&r, tmp("cwd"), NULL, "--no-report", victim("victim_sites"), NULL);
	cr_assert_eq(r.status, 0, "stderr: %s", r.err);
	cr_assert(strstr(r.out, "want site_malloc"), "the victim ran and printed");
	result_free(&r);
}

/* What PROG writes to stdout comes through exactly, also with the tools' output
 * around (stand-ins that print on their stdout). */
Test(run, stdout_passes_through_byte_exact)
{
	const char *script = "printf 'a\\000b\\377\\r\\n'; i=0; while [ $i -lt 3000 ]; do "
			     "echo \"line $i\"; i=$((i+1)); done; printf 'no newline'";
	char *plain[] = {"/bin/sh", "-c", (char *)script, NULL};
	struct result u, t;
	spawn_capture(&u, NULL, NULL, plain, NULL, NULL, NULL);
	cr_assert_eq(u.status, 0);
	cr_assert_gt(u.out_len, 20000u);

	const char *tools = tmp("tools");
	char path[700];
	snprintf(path, sizeof(path), "%s/thagtrace-merge", tools);
	cr_assert_eq(support_spit(path, "#!/bin/sh\necho merged-on-stdout\n", 32), 0);
	chmod(path, 0755);
	snprintf(path, sizeof(path), "%s/thagtrace-report", tools);
	cr_assert_eq(support_spit(path, "#!/bin/sh\necho report-on-stdout\n", 32), 0);
	chmod(path, 0755);
	char tooldir[800];
	snprintf(tooldir, sizeof(tooldir), "THAGTRACE_RUN_TOOLDIR=%s", tools);
	const char *env[] = {tooldir, NULL};
	run(&t, tmp("cwd"), env, "--", "/bin/sh", "-c", script, NULL);
	cr_assert_eq(t.status, 0, "stderr: %s", t.err);
	cr_assert_eq(t.out_len, u.out_len, "%zu bytes traced, %zu untraced", t.out_len, u.out_len);
	cr_assert(!memcmp(t.out, u.out, u.out_len), "the same bytes");
	cr_assert(strstr(t.err, "merged-on-stdout") && strstr(t.err, "report-on-stdout"),
		  "the tools' stdout went to stderr: %s", t.err);
	result_free(&u);
	result_free(&t);
}

Test(run, death_by_signal_is_128_plus_signo)
{
	struct result r;
	run(&r, tmp("cwd"), NULL, "--no-report", "/bin/sh", "-c", "kill -TERM $$", NULL);
	cr_assert_eq(r.status, 128 + SIGTERM, "stderr: %s", r.err);
	cr_assert(strstr(r.err, "signal 15"), "said on stderr: %s", r.err);
	result_free(&r);
	run(&r, tmp("cwd"), NULL, "--no-report", "/bin/sh", "-c", "kill -KILL $$", NULL);
	cr_assert_eq(r.status, 128 + SIGKILL, "stderr: %s", r.err);
	result_free(&r);
}

Test(run, missing_program_127_not_executable_126)
{
	const char *cwd = tmp("cwd");
	char names[8][256];
	struct result r;
	run(&r, cwd, NULL, "--no-report", "no-such-program-thagtrace", NULL);
	cr_assert_eq(r.status, 127, "stderr: %s", r.err);
	cr_assert(strstr(r.err, "no-such-program-thagtrace"), "%s", r.err);
	cr_assert_eq(list_dir(cwd, names, 8), 0, "no empty output directory left behind");
	result_free(&r);

	char path[700];
	snprintf(path, sizeof(path), "%s/not-exec", tmp("noexec"));
	cr_assert_eq(support_spit(path, "#!/bin/sh\n", 10), 0);
	chmod(path, 0644);
	run(&r, cwd, NULL, "--no-report", path, NULL);
	cr_assert_eq(r.status, 126, "stderr: %s", r.err);
	result_free(&r);
}

/* Bad arguments: exit 2, a usage line on stderr, and PROG never runs. */
Test(run, bad_arguments_exit_2_with_usage)
{
	const char *cwd = tmp("cwd");
	const char *bad[][2] = {
	    {"--bogus", NULL},	    {"-x", NULL},
	    {"--ring-kb", "12"}, /* not a power of two */
	    {"--ring-kb", "4"},	    {"--max-frames", "0"},
	    {"--max-frames", "x"},  {"--unwind", "dwarf"},
	    {"--sample", "some"},   {"--sample", "tiered:rate_small=2"},
	    {"--flush-ms", "0"},    {"--top", "0"},
	    {"--min-size", "-1"},   {"--seed", "1x"},
	    {"--zstd-level", "20"}, {"--zstd-level", "x"},
	    {"--block-tags", "2"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *argv[8] = {run_path(), "--no-report", (char *)bad[i][0]};
		int n = 3;
		if (bad[i][1])
			argv[n++] = (char *)bad[i][1];
		argv[n++] = "/bin/sh";
		argv[n++] = "-c";
		argv[n++] = "touch ran";
		struct result r;
		spawn_capture(&r, cwd, NULL, argv, NULL, NULL, NULL);
		cr_assert_eq(r.status, 2, "%s %s: exit %d, stderr: %s", bad[i][0],
			     bad[i][1] ? bad[i][1] : "", r.status, r.err);
		cr_assert(strstr(r.err, "usage: thagtrace-run"), "%s: %s", bad[i][0], r.err);
		cr_assert_eq(r.out_len, 0u);
		result_free(&r);
	}
	struct result r;
	run(&r, cwd, NULL, NULL); /* no PROG */
	cr_assert_eq(r.status, 2);
	cr_assert(strstr(r.err, "usage: thagtrace-run"));
	result_free(&r);
	run(&r, cwd, NULL, "-o", NULL); /* missing argument */
	cr_assert_eq(r.status, 2);
	cr_assert(strstr(r.err, "usage: thagtrace-run"));
	result_free(&r);
	/* A bad setting from the environment is as bad as a bad option. */
	const char *env[] = {"THAGTRACE_SAMPLE=sometimes", NULL};
	run(&r, cwd, env, "--no-report", "/bin/sh", "-c", "touch ran", NULL);
	cr_assert_eq(r.status, 2, "stderr: %s", r.err);
	cr_assert(strstr(r.err, "THAGTRACE_SAMPLE=sometimes"), "%s", r.err);
	result_free(&r);
	char names[8][256];
	cr_assert_eq(list_dir(cwd, names, 8), 0, "PROG never ran, no directory was made");
}

Test(run, help_and_version)
{
	struct result r;
	run(&r, NULL, NULL, "--help", NULL);
	cr_assert_eq(r.status, 0);
	cr_assert_str_empty(r.err);
	const char *opts[] = {"-o, --output DIR",
			      "--sample",
			      "--unwind",
			      "--max-frames",
			      "--ring-kb",
			      "--min-size",
			      "--flush-ms",
			      "--seed",
			      "--debug",
			      "--zstd-level",
			      "--block-tags",
			      "--no-report",
			      "--top",
			      "--help",
			      "--version",
			      "(default 10)",
			      "(default 64)",
			      "(default tiered)",
			      "(default auto)",
			      "(default 100)"};
	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
		cr_expect(memmem(r.out, r.out_len, opts[i], strlen(opts[i])), "--help names %s",
			  opts[i]);
	result_free(&r);
	run(&r, NULL, NULL, "-h", NULL);
	cr_assert_eq(r.status, 0);
	result_free(&r);
	run(&r, NULL, NULL, "--version", NULL);
	cr_assert_eq(r.status, 0);
	cr_assert_eq(r.out_len, strlen("thagtrace-run 0.1.0\n"));
	cr_assert(!memcmp(r.out, "thagtrace-run 0.1.0\n", r.out_len));
	result_free(&r);
}

/* ---- the output directory ---- */

static void check_default_name(const char *name, const char *prog)
{
	regex_t re;
	char pat[256];
	snprintf(pat, sizeof(pat), "^thagtrace-%s-[0-9]{8}-[0-9]{6}-[0-9]+(-[0-9]+)?$", prog);
	cr_assert_eq(regcomp(&re, pat, REG_EXTENDED | REG_NOSUB), 0);
	cr_assert_eq(regexec(&re, name, 0, NULL, 0), 0, "%s matches %s", name, pat);
	regfree(&re);
}

Test(run, default_dir_is_new_every_run)
{
	const char *cwd = tmp("cwd");
	struct result r;
	run(&r, cwd, NULL, "--no-report", "/bin/true", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	result_free(&r);
	run(&r, cwd, NULL, "--no-report", "true", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	result_free(&r);
	char names[8][256];
	cr_assert_eq(list_dir(cwd, names, 8), 2, "two runs, two directories");
	for (int i = 0; i < 2; i++) {
		check_default_name(names[i], "true");
		char dir[1400];
		snprintf(dir, sizeof(dir), "%s/%.255s", cwd, names[i]);
		cr_assert_eq(count_suffix(dir, ".meta"), 1, "%s: one run's files", names[i]);
	}
	/* The stderr line names the absolute directory. */
	run(&r, cwd, NULL, "--no-report", "true", NULL);
	cr_assert(strstr(r.err, "trace in /"), "%s", r.err);
	result_free(&r);
}

/* The name thagtrace-run with this pid would pick now and a second later are taken
 * (as if by an old run with the same pid): it must make a new one, not reuse them. */
struct precreate {
	const char *cwd;
	int go[2];
};

static void child_wait(void *ctx)
{
	struct precreate *pc = ctx;
	char c;
	close(pc->go[1]);
	if (read(pc->go[0], &c, 1) != 1)
		_exit(97);
}

static void parent_precreate(pid_t pid, int out_fd, void *ctx)
{
	(void)out_fd;
	struct precreate *pc = ctx;
	time_t now = time(NULL);
	for (int s = 0; s < 3; s++) {
		time_t t = now + s;
		struct tm tm;
		localtime_r(&t, &tm);
		char stamp[32], dir[1024];
		strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);
		snprintf(dir, sizeof(dir), "%s/thagtrace-true-%s-%d", pc->cwd, stamp, (int)pid);
		cr_assert_eq(mkdir(dir, 0755), 0);
	}
	close(pc->go[0]);
	cr_assert_eq(write(pc->go[1], "g", 1), 1);
	close(pc->go[1]);
}

Test(run, default_dir_never_reuses_an_existing_one)
{
	struct precreate pc = {.cwd = tmp("cwd")};
	cr_assert_eq(pipe(pc.go), 0);
	char *argv[] = {run_path(), "--no-report", "true", NULL};
	struct result r;
	spawn_capture(&r, pc.cwd, NULL, argv, child_wait, parent_precreate, &pc);
	cr_assert_eq(r.status, 0, "%s", r.err);
	result_free(&r);
	char names[8][256];
	int n = list_dir(pc.cwd, names, 8), fresh = 0;
	cr_assert_eq(n, 4, "three taken names and a new one");
	for (int i = 0; i < n; i++) {
		char dir[1400];
		snprintf(dir, sizeof(dir), "%s/%.255s", pc.cwd, names[i]);
		check_default_name(names[i], "true");
		int metas = count_suffix(dir, ".meta");
		if (metas) {
			fresh++;
			cr_assert(strstr(names[i] + strlen("thagtrace-true-YYYYmmdd-HHMMSS-"), "-"),
				  "%s has a suffix", names[i]);
		}
	}
	cr_assert_eq(fresh, 1, "the run went to one new directory, none of the old ones");
}

/* -o makes the directory with its parents; the program was really traced there. */
Test(run, output_dir_made_and_traced_with_options)
{
	char dir[700];
	snprintf(dir, sizeof(dir), "%s/a/b/out", tmp("out"));
	struct result r;
	run(&r, NULL, NULL, "--no-report", "-o", dir, "--sample", "all", "--ring-kb", "1024",
	    "--max-frames", "32", "--min-size", "0", "--seed", "42", "--flush-ms", "50", "--unwind",
	    "fp", "--", victim("victim_sites"), NULL);
	cr_assert_eq(r.status, 0, "stderr: %s", r.err);
	cr_assert(strstr(r.err, dir), "stderr names the directory: %s", r.err);
	result_free(&r);

	char names[64][256];
	int n = list_dir(dir, names, 64), bins = 0, freqs = 0;
	int meta_pid = 0;
	for (int i = 0; i < n; i++) {
		int pid = 0;
		char ext[16];
		if (sscanf(names[i], "%d.%15s", &pid, ext) == 2 && !strcmp(ext, "meta"))
			meta_pid = pid;
	}
	cr_assert_gt(meta_pid, 0, "a <pid>.meta in %s", dir);
	for (int i = 0; i < n; i++) {
		int pid = 0, tid = 0;
		char ext[16];
		if (sscanf(names[i], "%d-%d.%15s", &pid, &tid, ext) == 3 && pid == meta_pid) {
			bins += !strcmp(ext, "bin");
			freqs += !strcmp(ext, "freq");
		}
	}
	cr_assert_geq(bins, 2, "main and the freer thread have .bin files");
	cr_assert_eq(freqs, bins);

	struct support_dir d;
	cr_assert_eq(support_read_dir(dir, &d), 0, "%s", d.first_error);
	cr_assert_eq(d.nmeta, 1);
	uint64_t allocs = 0, sites = 0, site_count = 0;
	double weighted = 0, bytes = 0;
	for (size_t i = 0; i < d.nthreads; i++) {
		allocs += d.threads[i].allocs;
		sites += d.threads[i].nsites;
		site_count += d.threads[i].site_count;
		weighted += d.threads[i].weighted_bytes;
		bytes += (double)d.threads[i].alloc_bytes;
	}
	cr_assert_gt(sites, 7, "SITE records for the victim's call sites");
	cr_assert_geq(site_count, 6 * 3000 + 300, "every allocation counted per site");
	/* Mode all: each of the victim's allocations recorded with probability 1. */
	cr_assert_geq(allocs, 6 * 3000 + 300, "%lu allocations recorded", (unsigned long)allocs);
	cr_assert_eq(weighted, bytes, "every probability is 1");
	support_dir_free(&d);

	struct process_facts pf;
	read_process(dir, &pf);
	cr_assert_str_eq(pf.mode, "all");
	cr_assert_eq(pf.ring_kb, 1024);
	cr_assert_eq(pf.max_frames, 32);
}

/* THAGTRACE_* already in the environment reach the tracer; an option overrides. */
Test(run, environment_settings_kept_unless_overridden)
{
	char dir[700];
	snprintf(dir, sizeof(dir), "%s/env", tmp("out"));
	const char *env[] = {"THAGTRACE_SAMPLE=all", "THAGTRACE_RING_KB=256", NULL};
	struct result r;
	run(&r, NULL, env, "--no-report", "-o", dir, "/bin/true", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	result_free(&r);
	struct process_facts pf;
	read_process(dir, &pf);
	cr_assert_str_eq(pf.mode, "all");
	cr_assert_eq(pf.ring_kb, 256);

	snprintf(dir, sizeof(dir), "%s/override", tmp("out"));
	run(&r, NULL, env, "--no-report", "-o", dir, "--sample", "poisson:4K", "/bin/true", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	result_free(&r);
	read_process(dir, &pf);
	cr_assert_str_eq(pf.mode, "poisson");
	cr_assert_eq(pf.ring_kb, 256);
}

/* PROG's environment: the tracer first in LD_PRELOAD, the old list after it,
 * THAGTRACE_OUT absolute, everything else as it was. */
Test(run, prog_environment)
{
	char plugin[1100], old[1200];
	snprintf(plugin, sizeof(plugin), "%s/libvictim_plugin.so", getenv("VICTIM_DIR"));
	snprintf(old, sizeof(old), "LD_PRELOAD=%s", plugin);
	const char *env[] = {old, "THAGTRACE_OUT=/nonexistent/ignored", "SOME_VAR=kept value",
			     NULL};
	const char *cwd = tmp("cwd");
	struct result r;
	run(&r, cwd, env, "--no-report", "-o", "rel/dir", "/bin/sh", "-c",
	    "printf '%s\\n%s\\n%s\\n' \"$LD_PRELOAD\" \"$THAGTRACE_OUT\" \"$SOME_VAR\"", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	char want[12288], real_lib[4096], real_cwd[4096];
	cr_assert(realpath(getenv("THAGTRACE_LIB"), real_lib));
	cr_assert(realpath(cwd, real_cwd));
	snprintf(want, sizeof(want), "%s:%s\n%s/rel/dir\nkept value\n", real_lib, plugin, real_cwd);
	cr_assert_eq(r.out_len, strlen(want), "got:\n%.*s\nwant:\n%s", (int)r.out_len, r.out, want);
	cr_assert(!memcmp(r.out, want, r.out_len), "got:\n%.*s\nwant:\n%s", (int)r.out_len, r.out,
		  want);
	result_free(&r);
}

Test(run, existing_nonempty_dir_warns_and_keeps_both)
{
	char dir[700];
	snprintf(dir, sizeof(dir), "%s/same", tmp("out"));
	struct result r;
	run(&r, NULL, NULL, "--no-report", "-o", dir, "true", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_null(strstr(r.err, "warning"), "%s", r.err);
	result_free(&r);
	run(&r, NULL, NULL, "--no-report", "-o", dir, "true", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert(strstr(r.err, "merged together"), "warned: %s", r.err);
	result_free(&r);
	cr_assert_eq(count_suffix(dir, ".meta"), 2);
}

Test(run, missing_library_is_setup_error)
{
	const char *cwd = tmp("cwd");
	const char *env[] = {"THAGTRACE_LIB=/nonexistent/libthagtrace.so", NULL};
	struct result r;
	run(&r, cwd, env, "--no-report", "/bin/sh", "-c", "touch ran", NULL);
	cr_assert_eq(r.status, 125, "%s", r.err);
	cr_assert(strstr(r.err, "/nonexistent/libthagtrace.so"), "%s", r.err);
	result_free(&r);
	char names[8][256];
	cr_assert_eq(list_dir(cwd, names, 8), 0, "PROG did not run untraced");
}

/* ---- the merge and report tools ---- */

static const char *make_tools(const char *merge_exit)
{
	const char *tools = tmp("tools");
	char path[700], body[1400];
	snprintf(path, sizeof(path), "%s/thagtrace-merge", tools);
	snprintf(body, sizeof(body),
		 "#!/bin/sh\necho \"MERGE-OUT $*\"\necho \"merge $*\" >> '%s/calls'\nexit %s\n",
		 tools, merge_exit);
	cr_assert_eq(support_spit(path, body, strlen(body)), 0);
	chmod(path, 0755);
	snprintf(path, sizeof(path), "%s/thagtrace-report", tools);
	snprintf(body, sizeof(body),
		 "#!/bin/sh\necho \"REPORT-OUT $*\"\necho \"report $*\" >> '%s/calls'\n", tools);
	cr_assert_eq(support_spit(path, body, strlen(body)), 0);
	chmod(path, 0755);
	return tools;
}

static void read_calls(const char *tools, char *buf, size_t cap)
{
	char path[700];
	snprintf(path, sizeof(path), "%s/calls", tools);
	buf[0] = '\0';
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	size_t k = fread(buf, 1, cap - 1, f);
	buf[k] = '\0';
	fclose(f);
}

Test(run, merge_and_report_run_on_the_directory)
{
	const char *tools = make_tools("0");
	char tooldir[800], dir[700], want[4096], calls[4096];
	snprintf(tooldir, sizeof(tooldir), "THAGTRACE_RUN_TOOLDIR=%s", tools);
	snprintf(dir, sizeof(dir), "%s/traced", tmp("out"));
	const char *env[] = {tooldir, NULL};
	struct result r;
	run(&r, NULL, env, "-o", dir, "--top", "3", "--", "/bin/sh", "-c", "echo prog; exit 4",
	    NULL);
	cr_assert_eq(r.status, 4, "PROG's code: %s", r.err);
	cr_assert_eq(r.out_len, 5u, "stdout holds only PROG's: %.*s", (int)r.out_len, r.out);
	cr_assert(!memcmp(r.out, "prog\n", 5));
	read_calls(tools, calls, sizeof(calls));
	snprintf(want, sizeof(want), "merge %s\nreport %s --top 3\n", dir, dir);
	cr_assert_str_eq(calls, want);
	snprintf(want, sizeof(want), "MERGE-OUT %s\nREPORT-OUT %s --top 3\n", dir, dir);
	cr_assert(strstr(r.err, want), "the tools' output on stderr, in order: %s", r.err);
	snprintf(want, sizeof(want),
		 "thagtrace-run: trace in %s; flamegraph input: %s/merged/alloc_bytes.folded; "
		 "pprof: %s/merged/profile.pb.gz\n",
		 dir, dir, dir);
	size_t el = strlen(r.err), wl = strlen(want);
	cr_assert(el >= wl && !strcmp(r.err + el - wl, want), "the last line: %s", r.err);
	result_free(&r);

	/* Default --top 10; --no-report runs neither. */
	snprintf(dir, sizeof(dir), "%s/traced2", tmp("out"));
	char calls_path[800];
	snprintf(calls_path, sizeof(calls_path), "%s/calls", tools);
	unlink(calls_path);
	run(&r, NULL, env, "-o", dir, "true", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	result_free(&r);
	read_calls(tools, calls, sizeof(calls));
	snprintf(want, sizeof(want), "merge %s\nreport %s --top 10\n", dir, dir);
	cr_assert_str_eq(calls, want);
	unlink(calls_path);
	run(&r, NULL, env, "--no-report", "-o", dir, "true", NULL);
	result_free(&r);
	read_calls(tools, calls, sizeof(calls));
	cr_assert_str_empty(calls);
}

Test(run, failing_or_missing_merge_keeps_progs_code)
{
	const char *tools = make_tools("3");
	char tooldir[800], calls[4096];
	snprintf(tooldir, sizeof(tooldir), "THAGTRACE_RUN_TOOLDIR=%s", tools);
	const char *env[] = {tooldir, NULL};
	struct result r;
	run(&r, tmp("cwd"), env, "/bin/sh", "-c", "exit 5", NULL);
	cr_assert_eq(r.status, 5, "%s", r.err);
	cr_assert(strstr(r.err, "thagtrace-merge failed"), "%s", r.err);
	result_free(&r);
	read_calls(tools, calls, sizeof(calls));
	cr_assert_null(strstr(calls, "report"), "no report without a merge");

	snprintf(tooldir, sizeof(tooldir), "THAGTRACE_RUN_TOOLDIR=%s", tmp("empty"));
	run(&r, tmp("cwd"), env, "/bin/sh", "-c", "exit 6", NULL);
	cr_assert_eq(r.status, 6, "%s", r.err);
	cr_assert(strstr(r.err, "thagtrace-merge not found"), "%s", r.err);
	result_free(&r);
}

/* ---- signals ---- */

struct sig_plan {
	int sig;
	bool group; /* to the whole process group (a terminal's Ctrl-C) */
};

/* Once PROG said "started", send the signal. */
static void parent_signal(pid_t pid, int out_fd, void *ctx)
{
	struct sig_plan *sp = ctx;
	char buf[16];
	ssize_t k;
	while ((k = read(out_fd, buf, sizeof(buf))) < 0 && errno == EINTR)
		;
	cr_assert_gt(k, 0, "PROG started");
	usleep(50000);
	cr_assert_eq(kill(sp->group ? -pid : pid, sp->sig), 0);
}

Test(run, sigint_ignored_sigterm_forwarded)
{
	const char *cwd = tmp("cwd");
	char *argv[] = {run_path(), "--no-report", "/bin/sh", "-c", "echo started; sleep 1; exit 3",
			NULL};
	struct result r;
	/* SIGINT to thagtrace-run alone: it ignores it and PROG finishes. */
	struct sig_plan sp = {SIGINT, false};
	spawn_capture(&r, cwd, NULL, argv, NULL, parent_signal, &sp);
	cr_assert_eq(r.status, 3, "%d: %s", r.status, r.err);
	result_free(&r);
	/* SIGQUIT likewise. */
	sp.sig = SIGQUIT;
	spawn_capture(&r, cwd, NULL, argv, NULL, parent_signal, &sp);
	cr_assert_eq(r.status, 3, "%d: %s", r.status, r.err);
	result_free(&r);

	/* Ctrl-C to the group: PROG dies of it, thagtrace-run lives on and says so. */
	char *sleeper[] = {
	    run_path(), "--no-report", "/bin/sh", "-c", "echo started; exec sleep 30", NULL};
	sp = (struct sig_plan){SIGINT, true};
	spawn_capture(&r, cwd, NULL, sleeper, NULL, parent_signal, &sp);
	cr_assert_eq(r.status, 128 + SIGINT, "%d: %s", r.status, r.err);
	cr_assert(strstr(r.err, "trace in"), "the summary still came: %s", r.err);
	result_free(&r);

	/* SIGTERM to thagtrace-run alone reaches PROG. */
	sp = (struct sig_plan){SIGTERM, false};
	spawn_capture(&r, cwd, NULL, sleeper, NULL, parent_signal, &sp);
	cr_assert_eq(r.status, 128 + SIGTERM, "%d: %s", r.status, r.err);
	result_free(&r);
	sp.sig = SIGHUP;
	spawn_capture(&r, cwd, NULL, sleeper, NULL, parent_signal, &sp);
	cr_assert_eq(r.status, 128 + SIGHUP, "%d: %s", r.status, r.err);
	result_free(&r);
}
