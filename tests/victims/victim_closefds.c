/* SPDX-License-Identifier: MIT */
/*
 * Victim: a program that takes every file descriptor number mid-run. It allocates
 * at one site, closes every descriptor above 2 (as daemons do), opens its own file
 * (argv[1]) and dup2's it over every number up to its soft limit less 16, then
 * allocates at a second site and writes a last line through the highest copy. The
 * tracer must never write into the program's file and must keep tracing (its files
 * reopened by name). Prints "fn"/"want" lines like victim_sites.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define N 1000

static void *volatile sink;

__attribute__((noinline)) static void site_before(void)
{
	for (int i = 0; i < N; i++) {
		sink = malloc(100);
		free(sink);
	}
}

__attribute__((noinline)) static void site_after(void)
{
	for (int i = 0; i < N; i++) {
		sink = malloc(200);
		free(sink);
	}
}

int main(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	site_before();
	usleep(300 * 1000); /* the writer's pass: the tracer's files are open by now */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return 3;
	long top = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 4096 ? 4096 : (long)rl.rlim_cur;
	for (int fd = 3; fd < top; fd++)
		close(fd);
	int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, "program data\n", 13) != 13)
		return 4;
	int last = fd;
	for (int i = fd + 1; i < top - 16; i++)
		if (dup2(fd, i) == i)
			last = i;
	site_after();
	usleep(300 * 1000); /* another pass, with every number up there the program's */
	if (write(last, "last line\n", 10) != 10)
		return 5;
	printf("fn site_before %p\nfn site_after %p\n", (void *)site_before, (void *)site_after);
	printf("want site_before %d %d\nwant site_after %d %d\n", N, N * 100, N, N * 200);
	return 0;
}
