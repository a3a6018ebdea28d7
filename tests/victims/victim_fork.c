/* SPDX-License-Identifier: MIT */
/* Victim: allocates, forks (the child allocates and exits through exit(), or with
 * argument "_exit" through _exit() at once, as forked children usually do, after a
 * vfork child has left through _exit too), waits, allocates again. Exits with the
 * child's status. With "churn": forks 10 children that _exit at once while another
 * thread starts and joins threads that allocate (a fork against threads
 * registering and ending). With "exec": allocates, then execs /bin/true; with
 * "quick_exit", leaves through quick_exit. With "fds": forks while 8 threads have
 * trace files; the parent prints how many descriptors of trace files it holds
 * ("parent holds N"), the child how many not its own it holds ("inherited N"). With "raw": children
 * made without fork()
 * (_Fork, the fork system call, clone), which run no fork handler, allocate and
 * leave through exit() (destructors run) or _exit; the parent prints their
 * statuses ("raw N: exit S"). With "generations": three generations of children,
 * each starting and ending threads (so its writer retires their handles) before it
 * forks the next; prints "generations ok". With "sequential": four children one
 * after another, each holding two blocks of 64 KiB (and 100 of 100 bytes) until it
 * exits without freeing them: never more than one child's blocks at a time. With
 * "killed": three children hold theirs at the same time as the parent holds its
 * own two, until the parent kills them (SIGKILL: no clean end): 512 KiB at once. */
#define _GNU_SOURCE
#include <dirent.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

__attribute__((noinline)) static void churn(int n)
{
	for (int i = 0; i < n; i++) {
		void *p = malloc(100 + (size_t)i % 100);
		__asm__ volatile("" : : "r"(p) : "memory"); /* or the pair is optimized away */
		free(p);
	}
}

static volatile int stop;

static void *short_lived(void *arg)
{
	(void)arg;
	churn(1);
	return NULL;
}

static void *creator(void *arg)
{
	(void)arg;
	while (!stop) {
		pthread_t t;
		if (pthread_create(&t, NULL, short_lived, NULL) == 0)
			pthread_join(t, NULL);
	}
	return NULL;
}

static int fork_while_threads_churn(void)
{
	pthread_t c;
	pthread_create(&c, NULL, creator, NULL);
	int ok = 0;
	for (int i = 0; i < 10; i++) {
		pid_t p = fork();
		if (p == 0)
			_exit(0);
		int st = 0;
		waitpid(p, &st, 0);
		ok += WIFEXITED(st) && WEXITSTATUS(st) == 0;
	}
	stop = 1;
	pthread_join(c, NULL);
	printf("forks ok %d\n", ok);
	return ok == 10 ? 0 : 1;
}

/* Descriptors open on files in $THAGTRACE_OUT, and of those, the ones another
 * process's: named neither "<pid>.*" (the process file) nor "<pid>-*" (a thread's). */
static int trace_fds(int *others)
{
	const char *dir = getenv("THAGTRACE_OUT");
	char self[32], link[300], target[PATH_MAX];
	int slen = snprintf(self, sizeof(self), "%d", (int)getpid());
	size_t dlen = strlen(dir);
	int n = 0;
	*others = 0;
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	while (d && (e = readdir(d))) {
		snprintf(link, sizeof(link), "/proc/self/fd/%s", e->d_name);
		ssize_t len = readlink(link, target, sizeof(target) - 1);
		if (len <= 0)
			continue;
		target[len] = '\0';
		if (strncmp(target, dir, dlen) || target[dlen] != '/')
			continue;
		n++;
		const char *name = target + dlen + 1;
		*others += strncmp(name, self, (size_t)slen) != 0 ||
			   (name[slen] != '.' && name[slen] != '-');
	}
	if (d)
		closedir(d);
	return n;
}

static pthread_barrier_t hold;

static void *holder(void *arg)
{
	(void)arg;
	churn(10);
	pthread_barrier_wait(&hold); /* files open (main saw them) */
	pthread_barrier_wait(&hold); /* the child is done */
	return NULL;
}

static int fork_while_files_open(void)
{
	enum { N = 8 };
	pthread_t t[N];
	pthread_barrier_init(&hold, NULL, N + 1);
	for (int i = 0; i < N; i++)
		pthread_create(&t[i], NULL, holder, NULL);
	int others = 0, open = 0;
	/* The writer opens a thread's files at its first pass with events. */
	for (int tries = 0; tries < 500 && (open = trace_fds(&others)) < 2 * N; tries++)
		usleep(10000);
	pthread_barrier_wait(&hold);
	printf("parent holds %d\n", open);
	fflush(stdout);
	pid_t p = fork();
	if (p == 0) {
		churn(10);
		trace_fds(&others);
		printf("inherited %d\n", others);
		fflush(stdout);
		_exit(0);
	}
	int st = 0;
	waitpid(p, &st, 0);
	pthread_barrier_wait(&hold);
	for (int i = 0; i < N; i++)
		pthread_join(t[i], NULL);
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}

static int raw_child(void *arg)
{
	churn(1000);
	printf("raw child ok\n");
	fflush(stdout);
	if (arg)
		exit(3); /* destructors and atexit run, in a process the tracer never saw */
	_exit(4);
}

static int forks_without_fork(void)
{
	static char stack[1 << 16];
	printf("fn churn %p\n", (void *)churn);
	churn(1000);
	int bad = 0;
	for (int k = 0; k < 3; k++) {
		fflush(stdout); /* or a child's exit() writes it again */
		pid_t p = k == 0 ? _Fork() : k == 1 ? (pid_t)syscall(SYS_fork) : 0;
		if (k == 2)
			p = clone(raw_child, stack + sizeof(stack), SIGCHLD, NULL);
		if (p == 0)
			raw_child(k == 0 ? "exit" : NULL);
		int st = 0;
		waitpid(p, &st, 0);
		printf("raw %d: %s %d\n", k, WIFEXITED(st) ? "exit" : "signal",
		       WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
		bad += !WIFEXITED(st) || WEXITSTATUS(st) != (k == 0 ? 3 : 4);
	}
	churn(1000);
	return bad;
}

static void *short_churn(void *arg)
{
	(void)arg;
	churn(3000);
	return NULL;
}

/* Threads come and go, the writer retires their handles, then the next fork. */
static int generation(int depth)
{
	for (int i = 0; i < 4; i++) {
		pthread_t t;
		if (pthread_create(&t, NULL, short_churn, NULL) == 0)
			pthread_join(t, NULL);
	}
	usleep(250000); /* two of the writer's flush intervals */
	if (depth == 0)
		return 0;
	pid_t p = fork();
	if (p == 0)
		_exit(generation(depth - 1));
	int st = 0;
	waitpid(p, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}

__attribute__((noinline)) static void hold_until_exit(void)
{
	for (int i = 0; i < 2; i++) {
		char *p = malloc(65536);
		memset(p, i, 65536);
	}
	for (int i = 0; i < 100; i++) {
		char *p = malloc(100);
		__asm__ volatile("" : : "r"(p) : "memory");
	}
	usleep(20000);
}

static int killed_children(void)
{
	hold_until_exit(); /* the parent's */
	pid_t kids[3];
	for (int i = 0; i < 3; i++) {
		kids[i] = fork();
		if (kids[i] == 0) {
			hold_until_exit();
			for (;;)
				pause();
		}
		if (kids[i] < 0)
			return 1;
	}
	sleep(2); /* past the writer's gathering (1 s at most): their events are written */
	for (int i = 0; i < 3; i++) {
		kill(kids[i], SIGKILL);
		waitpid(kids[i], NULL, 0);
	}
	printf("killed ok\n");
	return 0;
}

static int sequential_children(void)
{
	for (int i = 0; i < 4; i++) {
		pid_t p = fork();
		if (p == 0) {
			hold_until_exit();
			exit(0);
		}
		int st = 0;
		if (p < 0 || waitpid(p, &st, 0) != p || !WIFEXITED(st) || WEXITSTATUS(st))
			return 1;
	}
	printf("sequential ok\n");
	return 0;
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "sequential"))
		return sequential_children();
	if (argc > 1 && !strcmp(argv[1], "killed"))
		return killed_children();
	if (argc > 1 && !strcmp(argv[1], "generations")) {
		int rc = generation(3);
		printf("generations %s\n", rc == 0 ? "ok" : "failed");
		return rc;
	}
	if (argc > 1 && !strcmp(argv[1], "raw"))
		return forks_without_fork();
	if (argc > 1 && !strcmp(argv[1], "fds"))
		return fork_while_files_open();
	if (argc > 1 && !strcmp(argv[1], "churn"))
		return fork_while_threads_churn();
	if (argc > 1 && !strcmp(argv[1], "quick_exit")) {
		printf("fn churn %p\n", (void *)churn);
		fflush(stdout);
		churn(1000);
		quick_exit(0);
	}
	if (argc > 1 && !strcmp(argv[1], "exec")) {
		/* 1000 allocations, then a new image at once: they must reach the files. */
		printf("fn churn %p\n", (void *)churn);
		fflush(stdout);
		churn(1000);
		execl("/bin/true", "true", (char *)NULL);
		return 127;
	}
	bool quick = argc > 1 && !strcmp(argv[1], "_exit");
	printf("fn churn %p\n", (void *)churn);
	churn(1000);
	fflush(stdout);
	if (quick) {
		/* Shares this process's memory until it exits: its _exit must leave the
		 * parent's tracer running. */
		pid_t v = vfork();
		if (v == 0)
			_exit(3);
		waitpid(v, NULL, 0);
	}
	pid_t pid = fork();
	if (pid == 0) {
		churn(1000);
		printf("child done\n");
		if (quick) {
			fflush(stdout);
			_exit(7);
		}
		exit(7);
	}
	int status = 0;
	waitpid(pid, &status, 0);
	churn(1000);
	printf("child pid %d\nparent pid %d\n", (int)pid, (int)getpid());
	printf("parent done, child %d\n", WEXITSTATUS(status));
	return WEXITSTATUS(status) == 7 ? 0 : 1;
}
