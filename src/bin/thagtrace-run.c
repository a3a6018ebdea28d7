/* SPDX-License-Identifier: MIT */
/*
 * thagtrace-run: run an unmodified program with libthagtrace preloaded, then merge
 * and summarize its trace. Owns the options, the child's environment and signals.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../common/parse.h"

#ifndef THAGTRACE_LIBDIR
#error "THAGTRACE_LIBDIR must be defined by the build (meson.build)"
#endif
#ifndef THAGTRACE_VERSION
#error "THAGTRACE_VERSION must be defined by the build (meson.build)"
#endif

extern char **environ;

/* Our own exit codes; otherwise the exit code is PROG's (128+N for signal N). The
 * 125/126/127 split is env(1)'s and timeout(1)'s: the wrapper failed / PROG found but
 * not runnable / PROG not found. */
enum {
	EXIT_USAGE = 2,
	EXIT_SETUP = 125,
	EXIT_CANNOT_EXEC = 126,
	EXIT_NOT_FOUND = 127,
};

#define TOP_DEFAULT "10"

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	char line[8192];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "thagtrace-run: %s\n", line);
}

/* ---- setting checks: the same rules as src/core/env.c, so that a bad value is a
 * usage error here instead of a trace that silently stays off ---- */

static const char *check_tiered(const char *p)
{
	while (*p) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		const char *eq = memchr(p, '=', n);
		if (!eq)
			return "a tiered option needs key=value";
		size_t klen = (size_t)(eq - p), vlen = n - klen - 1;
		const char *v = eq + 1;
		uint64_t u;
#define KEY(k) (klen == sizeof(k) - 1 && !memcmp(p, k, klen))
		bool ok = ((KEY("large") || KEY("medium")) && tt_parse_size(v, vlen, &u)) ||
			  ((KEY("rate_medium") || KEY("rate_small")) &&
			   tt_parse_double(v, vlen, 1e-9, 1, NULL)) ||
			  (KEY("boost_threshold") && tt_parse_size(v, vlen, &u) && u >= 1) ||
			  (KEY("boost_max") && tt_parse_double(v, vlen, 1, 1e6, NULL));
#undef KEY
		if (!ok)
			return "tiered options are large=BYTES, medium=BYTES, rate_medium=P, "
			       "rate_small=P (0 < P <= 1), boost_threshold=N, boost_max=X (1..1e6)";
		p += n + (comma != NULL);
	}
	return NULL;
}

/* Each check returns NULL for a good value, else what it expected. */
static const char *check_sample(const char *s)
{
	uint64_t u;
	if (!strcmp(s, "all") || !strcmp(s, "tiered"))
		return NULL;
	if (!strncmp(s, "tiered:", 7))
		return check_tiered(s + 7);
	if (!strncmp(s, "poisson:", 8) && tt_parse_size(s + 8, strlen(s + 8), &u) && u >= 1)
		return NULL;
	return "expected all, tiered, tiered:key=value,... or poisson:BYTES";
}

static const char *check_unwind(const char *s)
{
	if (!strcmp(s, "auto") || !strcmp(s, "fp") || !strcmp(s, "libunwind"))
		return NULL;
	return "expected auto, fp or libunwind";
}

static const char *check_range(const char *s, uint64_t lo, uint64_t hi)
{
	static char want[96];
	uint64_t v;
	if (tt_parse_size(s, strlen(s), &v) && v >= lo && v <= hi)
		return NULL;
	snprintf(want, sizeof(want), "expected a number from %llu to %llu", (unsigned long long)lo,
		 (unsigned long long)hi);
	return want;
}

static const char *check_any_size(const char *s)
{
	return check_range(s, 0, UINT64_MAX);
}

static const char *check_max_frames(const char *s)
{
	return check_range(s, 1, 256); /* THAGTRACE_MAX_FRAMES_LIMIT */
}

static const char *check_ring_kb(const char *s)
{
	const char *why = check_range(s, 8, 1u << 20);
	uint64_t v;
	if (!why && tt_parse_size(s, strlen(s), &v) && (v & (v - 1)))
		why = "expected a power of two";
	return why;
}

static const char *check_flush_ms(const char *s)
{
	return check_range(s, 1, 60000);
}

static const char *check_zstd_level(const char *s)
{
	char *end;
	long l = strtol(s, &end, 10);
	return *s && !*end && l >= -7 && l <= 19 ? NULL : "expected a number from -7 to 19";
}

static const char *check_bool(const char *s)
{
	return !strcmp(s, "0") || !strcmp(s, "1") ? NULL : "expected 0 or 1";
}

static const char *check_nothing(const char *s)
{
	(void)s;
	return NULL;
}

/* The settings the options set; `value` is the option's, NULL when not given. */
static struct setting {
	const char *var, *opt;
	const char *(*check)(const char *value);
	const char *value;
} settings[] = {
    {"THAGTRACE_SAMPLE", "--sample", check_sample, NULL},
    {"THAGTRACE_UNWIND", "--unwind", check_unwind, NULL},
    {"THAGTRACE_MAX_FRAMES", "--max-frames", check_max_frames, NULL},
    {"THAGTRACE_RING_KB", "--ring-kb", check_ring_kb, NULL},
    {"THAGTRACE_MIN_SIZE", "--min-size", check_any_size, NULL},
    {"THAGTRACE_FLUSH_MS", "--flush-ms", check_flush_ms, NULL},
    {"THAGTRACE_SEED", "--seed", check_any_size, NULL},
    {"THAGTRACE_ZSTD_LEVEL", "--zstd-level", check_zstd_level, NULL},
    {"THAGTRACE_BLOCK_TAGS", "--block-tags", check_bool, NULL},
    {"THAGTRACE_DEBUG", "--debug", check_nothing, NULL},
};
#define NSETTINGS (sizeof(settings) / sizeof(settings[0]))

/* ---- usage ---- */

static void usage_short(void)
{
	fprintf(stderr, "usage: thagtrace-run [OPTIONS] [--] PROG [ARGS...]\n"
			"Try 'thagtrace-run --help' for the options.\n");
}

static void usage_long(void)
{
	printf("usage: thagtrace-run [OPTIONS] [--] PROG [ARGS...]\n"
	       "Run PROG with the libthagtrace allocation tracer preloaded, then merge the\n"
	       "trace (thagtrace-merge) and show the hottest stacks (thagtrace-report).\n"
	       "PROG's stdin, stdout and stderr are its own; the summary goes to stderr.\n"
	       "\n"
	       "  -o, --output DIR     write the trace to DIR (created with its parents);\n"
	       "                       default: a new ./thagtrace-PROG-YYYYmmdd-HHMMSS-PID\n"
	       "      --sample SPEC    all, tiered, tiered:KEY=VALUE,..., poisson:BYTES\n"
	       "                       (default tiered)\n"
	       "      --unwind MODE    auto, fp or libunwind (default auto)\n"
	       "      --max-frames N   deepest stack kept, 1-256 (default 64)\n"
	       "      --ring-kb N      per-thread ring in KiB, a power of two, 8-1048576\n"
	       "                       (default 256, and 1024 for the first 8 threads)\n"
	       "      --min-size BYTES record only allocations of at least BYTES (default 0)\n"
	       "      --flush-ms N     writer flush interval in ms, 1-60000 (default 100)\n"
	       "      --seed N         sampling seed; 0: from the clock (default 0)\n"
	       "      --zstd-level N   compression level of the files, -7 to 19 (default 1)\n"
	       "      --block-tags 0|1 1: sampled blocks carry a tag their free is known by\n"
	       "                       (glibc's malloc only); 0: a shared set of sampled\n"
	       "                       pointers instead, slower (default 1)\n"
	       "      --debug          the tracer says more on stderr (default off)\n"
	       "      --no-report      trace only: run neither thagtrace-merge nor\n"
	       "                       thagtrace-report (default: run both)\n"
	       "      --top N          stacks thagtrace-report shows (default " TOP_DEFAULT ")\n"
	       "  -h, --help           show this help and exit\n"
	       "      --version        show the version and exit\n"
	       "\n"
	       "BYTES and N take a K, M or G suffix. Each option sets the THAGTRACE_*\n"
	       "variable of the same name for PROG; THAGTRACE_* settings already in the\n"
	       "environment are kept unless an option overrides them. THAGTRACE_LIB names\n"
	       "the library to preload (default: libthagtrace.so next to thagtrace-run, else\n"
	       "" THAGTRACE_LIBDIR "/libthagtrace.so.0).\n"
	       "\n"
	       "Exit status: PROG's; 128+N if PROG was killed by signal N; 2 for bad\n"
	       "arguments; 125 if the trace could not be set up (no libthagtrace.so, no\n"
	       "output directory); 126 if PROG cannot be run; 127 if PROG was not found.\n");
}

/* ---- paths ---- */

/* The directory holding this executable, or "" if /proc cannot say. */
static void self_dir(char *out, size_t cap)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	out[0] = '\0';
	if (n <= 0)
		return;
	exe[n] = '\0';
	char *slash = strrchr(exe, '/');
	if (!slash)
		return;
	*slash = '\0';
	snprintf(out, cap, "%s", slash == exe ? "/" : exe);
}

/* libthagtrace.so as an absolute path: $THAGTRACE_LIB, next to this executable, or
 * the installed one; out holds PATH_MAX bytes. Returns false (having said why)
 * when there is none. */
static bool find_library(const char *selfdir, char *out)
{
	const char *env = getenv("THAGTRACE_LIB");
	char cand[PATH_MAX + 32];
	if (env && *env) {
		if (!realpath(env, out) || access(out, R_OK) != 0) {
			say("THAGTRACE_LIB=%s: %s", env, strerror(errno));
			return false;
		}
	} else {
		snprintf(cand, sizeof(cand), "%s/libthagtrace.so", selfdir);
		if (!*selfdir || access(cand, R_OK) != 0)
			snprintf(cand, sizeof(cand), "%s", THAGTRACE_LIBDIR "/libthagtrace.so.0");
		if (access(cand, R_OK) != 0 || !realpath(cand, out)) {
			say("libthagtrace.so not found (looked in %s and %s); set THAGTRACE_LIB to "
			    "its path",
			    *selfdir ? selfdir : "(unknown directory)", THAGTRACE_LIBDIR);
			return false;
		}
	}
	/* LD_PRELOAD splits on spaces and colons: such a path cannot be preloaded. */
	if (strpbrk(out, " :\t\n")) {
		say("%s: LD_PRELOAD cannot name a path with spaces or colons", out);
		return false;
	}
	return true;
}

/* mkdir -p: DIR and its missing parents. Returns 0 or -1 with errno set. */
static int mkdir_parents(const char *dir)
{
	char path[PATH_MAX];
	if (snprintf(path, sizeof(path), "%s", dir) >= (int)sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0777) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(path, 0777) != 0 && errno != EEXIST)
		return -1;
	return 0;
}

/* Files in dir whose names end with `suffix` (all of them for ""); -1 if unreadable. */
static long count_files(const char *dir, const char *suffix)
{
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	long n = 0;
	size_t sl = strlen(suffix);
	for (struct dirent *e; (e = readdir(d));) {
		size_t l = strlen(e->d_name);
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		n += l >= sl && !strcmp(e->d_name + l - sl, suffix);
	}
	closedir(d);
	return n;
}

/*
 * The output directory, made now, as an absolute path in `out`. With -o: DIR and its
 * parents (an existing one is used, with a warning when it already holds files).
 * Without: a new ./thagtrace-PROG-TIME-PID, never an existing one. *created says
 * whether this call made the directory (to remove it again if PROG never starts).
 */
static bool make_outdir(const char *opt_dir, const char *prog, char *out, bool *created)
{
	char name[PATH_MAX];
	*created = false;
	if (opt_dir) {
		struct stat st;
		bool existed = stat(opt_dir, &st) == 0;
		if (existed && !S_ISDIR(st.st_mode)) {
			say("%s: exists and is not a directory", opt_dir);
			return false;
		}
		if (!existed && mkdir_parents(opt_dir) != 0) {
			say("cannot create %s: %s", opt_dir, strerror(errno));
			return false;
		}
		*created = !existed;
		if (existed && count_files(opt_dir, "") > 0)
			say("warning: %s is not empty; files from other runs in it will be merged "
			    "together with this one",
			    opt_dir);
		snprintf(name, sizeof(name), "%s", opt_dir);
	} else {
		const char *base = strrchr(prog, '/');
		base = base ? base + 1 : prog;
		if (!*base)
			base = "prog";
		char stamp[32];
		time_t now = time(NULL);
		struct tm tm;
		localtime_r(&now, &tm);
		strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);
		int made = -1;
		for (unsigned n = 1; n < 10000; n++) {
			if (n == 1)
				snprintf(name, sizeof(name), "thagtrace-%.200s-%s-%d", base, stamp,
					 (int)getpid());
			else
				snprintf(name, sizeof(name), "thagtrace-%.200s-%s-%d-%u", base,
					 stamp, (int)getpid(), n);
			made = mkdir(name, 0777);
			if (made == 0 || errno != EEXIST)
				break;
		}
		if (made != 0) {
			say("cannot create %s: %s", name, strerror(errno));
			return false;
		}
		*created = true;
	}
	if (!realpath(name, out)) {
		say("%s: %s", name, strerror(errno));
		return false;
	}
	if (access(out, W_OK | X_OK) != 0) {
		say("%s: not writable: %s", out, strerror(errno));
		return false;
	}
	return true;
}

/* ---- PROG's environment ---- */

static bool has_var(const char *entry, const char *var)
{
	size_t n = strlen(var);
	return !strncmp(entry, var, n) && entry[n] == '=';
}

/* A copy of environ with LD_PRELOAD (the tracer first), THAGTRACE_OUT and the options'
 * settings replaced or added; everything else as it is. NULL if out of memory. */
static char **child_environment(const char *lib, const char *outdir)
{
	size_t n = 0;
	while (environ[n])
		n++;
	char **envp = calloc(n + NSETTINGS + 3, sizeof(*envp));
	if (!envp)
		return NULL;
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		bool drop =
		    has_var(environ[i], "LD_PRELOAD") || has_var(environ[i], "THAGTRACE_OUT");
		for (size_t s = 0; s < NSETTINGS && !drop; s++)
			drop = settings[s].value && has_var(environ[i], settings[s].var);
		if (!drop)
			envp[k++] = environ[i];
	}
	const char *old = getenv("LD_PRELOAD"), *sep = old && *old ? ":" : "";
	if (asprintf(&envp[k++], "LD_PRELOAD=%s%s%s", lib, sep, old ? old : "") < 0 ||
	    asprintf(&envp[k++], "THAGTRACE_OUT=%s", outdir) < 0)
		return NULL;
	for (size_t s = 0; s < NSETTINGS; s++)
		if (settings[s].value &&
		    asprintf(&envp[k++], "%s=%s", settings[s].var, settings[s].value) < 0)
			return NULL;
	envp[k] = NULL;
	return envp;
}

/* ---- children and signals ---- */

/* The child running now (PROG, then each tool), for the SIGTERM/SIGHUP forwarder.
 * Written by the main flow with those signals blocked; read by the handler. */
static volatile sig_atomic_t current_child;

static void forward_signal(int sig)
{
	int saved = errno;
	if (current_child > 0)
		kill((pid_t)current_child, sig);
	errno = saved;
}

static struct sigaction old_int, old_quit, old_term, old_hup;
static sigset_t forwarded, old_mask, child_default;

/* Like system(3): ignore SIGINT and SIGQUIT (the terminal sends them to PROG too, and
 * the trace still gets merged); forward SIGTERM and SIGHUP to the child. A signal the
 * caller ignores (nohup, a background job) stays ignored, also in the children. */
static void setup_signals(void)
{
	struct sigaction ign = {.sa_handler = SIG_IGN},
			 fwd = {.sa_handler = forward_signal, .sa_flags = SA_RESTART};
	sigemptyset(&ign.sa_mask);
	sigemptyset(&fwd.sa_mask);
	sigemptyset(&forwarded);
	sigemptyset(&child_default);
	sigaction(SIGINT, &ign, &old_int);
	sigaction(SIGQUIT, &ign, &old_quit);
	if (old_int.sa_handler != SIG_IGN)
		sigaddset(&child_default, SIGINT);
	if (old_quit.sa_handler != SIG_IGN)
		sigaddset(&child_default, SIGQUIT);
	sigaction(SIGTERM, NULL, &old_term);
	sigaction(SIGHUP, NULL, &old_hup);
	if (old_term.sa_handler != SIG_IGN) {
		sigaction(SIGTERM, &fwd, NULL);
		sigaddset(&forwarded, SIGTERM);
		sigaddset(&child_default, SIGTERM);
	}
	if (old_hup.sa_handler != SIG_IGN) {
		sigaction(SIGHUP, &fwd, NULL);
		sigaddset(&forwarded, SIGHUP);
		sigaddset(&child_default, SIGHUP);
	}
	sigprocmask(SIG_SETMASK, NULL, &old_mask);
}

/*
 * Start `file` (searched on PATH when it has no slash) with stdout sent to stderr
 * when `stdout_to_stderr`; returns its pid, or -1 with errno from the exec (ENOENT:
 * not found). The forwarded signals are blocked until current_child is set, so none
 * is lost in between.
 */
static pid_t spawn(const char *file, char *const argv[], char *const envp[], bool stdout_to_stderr)
{
	posix_spawnattr_t attr;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_init(&attr);
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_setsigdefault(&attr, &child_default);
	posix_spawnattr_setsigmask(&attr, &old_mask);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
	if (stdout_to_stderr)
		posix_spawn_file_actions_adddup2(&fa, 2, 1);
	sigset_t mask;
	sigprocmask(SIG_BLOCK, &forwarded, &mask);
	pid_t pid;
	int rc = posix_spawnp(&pid, file, &fa, &attr, argv, envp);
	if (rc == 0)
		current_child = pid;
	sigprocmask(SIG_SETMASK, &mask, NULL);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	if (rc != 0) {
		errno = rc;
		return -1;
	}
	return pid;
}

/* Wait for the current child; returns its wait status. */
static int wait_child(pid_t pid)
{
	int st = 0;
	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR) {
			say("waitpid: %s", strerror(errno));
			st = EXIT_SETUP << 8;
			break;
		}
	}
	sigset_t mask;
	sigprocmask(SIG_BLOCK, &forwarded, &mask);
	current_child = 0;
	sigprocmask(SIG_SETMASK, &mask, NULL);
	return st;
}

/*
 * Run tool `name` (thagtrace-merge, thagtrace-report) with its stdout on our stderr:
 * from $THAGTRACE_RUN_TOOLDIR when set, else from this executable's directory, else
 * from PATH. Returns true when it ran and exited 0; otherwise says why.
 */
static bool run_tool(const char *selfdir, const char *name, char **args)
{
	const char *tooldir = getenv("THAGTRACE_RUN_TOOLDIR");
	char path[PATH_MAX + 64];
	if (tooldir && *tooldir)
		snprintf(path, sizeof(path), "%s/%s", tooldir, name);
	else if (*selfdir && snprintf(path, sizeof(path), "%s/%s", selfdir, name) > 0 &&
		 access(path, X_OK) == 0)
		;
	else
		snprintf(path, sizeof(path), "%s", name); /* on PATH */
	args[0] = path;
	fflush(stderr);
	pid_t pid = spawn(path, args, environ, true);
	if (pid < 0) {
		if (errno != ENOENT)
			say("cannot run %s: %s", path, strerror(errno));
		else if (tooldir && *tooldir)
			say("%s not found in THAGTRACE_RUN_TOOLDIR=%s", name, tooldir);
		else
			say("%s not found next to thagtrace-run or on PATH", name);
		return false;
	}
	int st = wait_child(pid);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return true;
	if (WIFEXITED(st))
		say("%s failed (exit status %d)", name, WEXITSTATUS(st));
	else
		say("%s was killed by signal %d (%s)", name, WTERMSIG(st), strsignal(WTERMSIG(st)));
	return false;
}

/* ---- main ---- */

int main(int argc, char **argv)
{
	enum {
		OPT_SAMPLE = 256,
		OPT_UNWIND,
		OPT_MAX_FRAMES,
		OPT_RING_KB,
		OPT_MIN_SIZE,
		OPT_FLUSH_MS,
		OPT_SEED,
		OPT_ZSTD_LEVEL,
		OPT_BLOCK_TAGS,
		OPT_DEBUG,
		OPT_NO_REPORT,
		OPT_TOP,
		OPT_VERSION
	};
	static const struct option longopts[] = {
	    {"output", required_argument, NULL, 'o'},
	    {"sample", required_argument, NULL, OPT_SAMPLE},
	    {"unwind", required_argument, NULL, OPT_UNWIND},
	    {"max-frames", required_argument, NULL, OPT_MAX_FRAMES},
	    {"ring-kb", required_argument, NULL, OPT_RING_KB},
	    {"min-size", required_argument, NULL, OPT_MIN_SIZE},
	    {"flush-ms", required_argument, NULL, OPT_FLUSH_MS},
	    {"seed", required_argument, NULL, OPT_SEED},
	    {"zstd-level", required_argument, NULL, OPT_ZSTD_LEVEL},
	    {"block-tags", required_argument, NULL, OPT_BLOCK_TAGS},
	    {"debug", no_argument, NULL, OPT_DEBUG},
	    {"no-report", no_argument, NULL, OPT_NO_REPORT},
	    {"top", required_argument, NULL, OPT_TOP},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, OPT_VERSION},
	    {NULL, 0, NULL, 0},
	};
	const char *opt_dir = NULL, *top = TOP_DEFAULT;
	bool report = true;
	opterr = 0;
	/* "+": options end at PROG, so PROG's own options stay PROG's. */
	for (int c; (c = getopt_long(argc, argv, "+:o:h", longopts, NULL)) != -1;) {
		if (c >= OPT_SAMPLE && c <= OPT_DEBUG) {
			struct setting *s = &settings[c - OPT_SAMPLE];
			s->value = c == OPT_DEBUG ? "1" : optarg;
			const char *why = s->check(s->value);
			if (why) {
				say("%s %s: %s", s->opt, s->value, why);
				usage_short();
				return EXIT_USAGE;
			}
			continue;
		}
		switch (c) {
		case 'o':
			if (!*optarg) {
				say("-o: an empty directory name");
				usage_short();
				return EXIT_USAGE;
			}
			opt_dir = optarg;
			break;
		case OPT_NO_REPORT:
			report = false;
			break;
		case OPT_TOP: {
			uint64_t v;
			if (!tt_parse_size(optarg, strlen(optarg), &v) || v < 1 || v > INT_MAX) {
				say("--top %s: expected a number from 1 to %d", optarg, INT_MAX);
				usage_short();
				return EXIT_USAGE;
			}
			top = optarg;
			break;
		}
		case 'h':
			usage_long();
			return fflush(stdout) == 0 ? 0 : 1;
		case OPT_VERSION:
			printf("thagtrace-run %s\n", THAGTRACE_VERSION);
			return fflush(stdout) == 0 ? 0 : 1;
		case ':':
			say("%s: needs an argument", argv[optind - 1]);
			usage_short();
			return EXIT_USAGE;
		default:
			if (optopt)
				say("unknown option -%c", optopt);
			else
				say("unknown option %s", argv[optind - 1]);
			usage_short();
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		say("no program to run");
		usage_short();
		return EXIT_USAGE;
	}
	char **prog_argv = argv + optind;

	/* Settings inherited from the environment must be good too: the tracer would
	 * otherwise stay off and PROG run untraced. */
	for (size_t s = 0; s < NSETTINGS; s++) {
		const char *v = getenv(settings[s].var);
		const char *why = !settings[s].value && v ? settings[s].check(v) : NULL;
		if (why) {
			say("%s=%s (from the environment): %s", settings[s].var, v, why);
			return EXIT_USAGE;
		}
	}

	char selfdir[PATH_MAX], lib[PATH_MAX], outdir[PATH_MAX];
	self_dir(selfdir, sizeof(selfdir));
	if (!find_library(selfdir, lib))
		return EXIT_SETUP;
	bool created;
	if (!make_outdir(opt_dir, prog_argv[0], outdir, &created))
		return EXIT_SETUP;
	char **envp = child_environment(lib, outdir);
	if (!envp) {
		say("out of memory");
		return EXIT_SETUP;
	}
	long metas_before = count_files(outdir, ".meta");

	setup_signals();
	pid_t pid = spawn(prog_argv[0], prog_argv, envp, false);
	if (pid < 0) {
		int err = errno;
		say("%s: %s", prog_argv[0], strerror(err));
		if (created)
			rmdir(outdir);
		return err == ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_EXEC;
	}
	int st = wait_child(pid);
	int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);

	/* A program that never loaded the tracer (static, set-user-ID) wrote no .meta. */
	bool traced = count_files(outdir, ".meta") > metas_before;
	if (!traced) {
		say("warning: %s wrote no trace to %s: it ran untraced (statically linked? "
		    "set-user-ID? an exec of such a program?); --debug says more",
		    prog_argv[0], outdir);
	} else if (report) {
		char *merge_args[] = {NULL, outdir, NULL};
		char *report_args[] = {NULL, outdir, "--top", (char *)top, NULL};
		if (run_tool(selfdir, "thagtrace-merge", merge_args)) {
			run_tool(selfdir, "thagtrace-report", report_args);
			say("trace in %s; flamegraph input: %s/merged/alloc_bytes.folded; pprof: "
			    "%s/merged/profile.pb.gz",
			    outdir, outdir, outdir);
		} else {
			say("trace in %s (not merged; merge it with: thagtrace-merge %s)", outdir,
			    outdir);
		}
	} else {
		say("trace in %s; merge it with: thagtrace-merge %s", outdir, outdir);
	}
	if (WIFSIGNALED(st))
		say("%s was killed by signal %d (%s)%s", prog_argv[0], WTERMSIG(st),
		    strsignal(WTERMSIG(st)), WCOREDUMP(st) ? ", core dumped" : "");
	return code;
}
