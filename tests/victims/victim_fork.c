/* SPDX-License-Identifier: MIT */
/* Victim: allocates, forks (the child allocates and exits through exit(), or with
 * argument "_exit" through _exit() at once, as forked children usually do, after a
 * vfork child has left through _exit too), waits, allocates again. Exits with the
 * child's status. */
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

int main(int argc, char **argv)
{
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
