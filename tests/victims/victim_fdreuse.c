/* SPDX-License-Identifier: MIT */
/*
 * Victim: a program that puts its own file on fixed descriptor numbers while its
 * threads allocate (as a shell does with `exec 1030>log`, or a daemon with dup2):
 * 2 threads allocate blocks of 20 KiB (every one recorded, so the writer writes
 * frames all along) and a third starts short-lived threads that do the same (so
 * the writer creates and finishes files all along); main, 150 rounds: dup2 its log (argv[1]) onto
 * 512..519 and 1024..1031 (where tracers have put their descriptors to keep them out of the way;
 * those under the soft limit), writes a line through each, sleeps a moment, checks each number is
 * still open on its log, closes them. Then, with ulimit-like pressure off, it checks that only its
 * lines reached the log. Prints "lines N vanished V foreign F" and exits 0 when V and F are 0. A
 * tracer that kept descriptors across passes wrote zstd frames into the log after the program took
 * the number, and closed the program's copies.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static volatile int stop;

/* One block of 20 KiB, recorded at the defaults (the large tier). */
static void one_block(void)
{
	char *p = malloc(20000);
	__asm__ volatile("" : : "r"(p) : "memory");
	p[0] = 1;
	free(p);
}

static void *allocate(void *arg)
{
	(void)arg;
	while (!stop)
		one_block();
	return NULL;
}

static void *short_lived(void *arg)
{
	(void)arg;
	for (int i = 0; i < 50; i++)
		one_block();
	return NULL;
}

static void *spawn(void *arg)
{
	(void)arg;
	while (!stop) {
		pthread_t t[4];
		for (int i = 0; i < 4; i++)
			pthread_create(&t[i], NULL, short_lived, NULL);
		for (int i = 0; i < 4; i++)
			pthread_join(t[i], NULL);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	pthread_t t[3];
	for (int i = 0; i < 3; i++)
		pthread_create(&t[i], NULL, i < 2 ? allocate : spawn, NULL);
	int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
	struct stat own;
	if (fd < 0 || fstat(fd, &own) != 0)
		return 2;
	struct rlimit rl;
	int nums[16], count = 0;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return 2;
	for (int i = 0; i < 16; i++) {
		int n = i < 8 ? 512 + i : 1024 + i - 8;
		if ((rlim_t)n < rl.rlim_cur)
			nums[count++] = n;
	}
	long lines = 0, vanished = 0;
	for (int round = 0; round < 150; round++) {
		for (int k = 0; k < count; k++) {
			int n = nums[k];
			if (dup2(fd, n) != n)
				return 2;
			char line[64];
			int len = snprintf(line, sizeof(line), "line %d %d\n", round, n);
			if (write(n, line, (size_t)len) == len)
				lines++;
		}
		usleep(300);
		for (int k = 0; k < count; k++) {
			int n = nums[k];
			struct stat st;
			if (fstat(n, &st) != 0 || st.st_ino != own.st_ino ||
			    st.st_dev != own.st_dev)
				vanished++;
			close(n);
		}
	}
	stop = 1;
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	close(fd);
	FILE *f = fopen(argv[1], "r");
	long foreign = 0, got = 0;
	int c;
	while (f && (c = fgetc(f)) != EOF) {
		got += c == '\n';
		foreign += (c < 32 || c > 126) && c != '\n';
	}
	if (f)
		fclose(f);
	foreign += got != lines;
	printf("lines %ld of %d vanished %ld foreign %ld\n", lines, 150 * count, vanished, foreign);
	return vanished || foreign;
}
