/* SPDX-License-Identifier: MIT */
/* Victim: allocates, forks (the child allocates and exits through exit()), waits,
 * allocates again. Exits with the child's status. */
#include <stdio.h>
#include <stdlib.h>
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

int main(void)
{
	printf("fn churn %p\n", (void *)churn);
	churn(1000);
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		churn(1000);
		printf("child done\n");
		exit(7);
	}
	int status = 0;
	waitpid(pid, &status, 0);
	churn(1000);
	printf("child pid %d\nparent pid %d\n", (int)pid, (int)getpid());
	printf("parent done, child %d\n", WEXITSTATUS(status));
	return WEXITSTATUS(status) == 7 ? 0 : 1;
}
