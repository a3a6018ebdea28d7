/* SPDX-License-Identifier: MIT */
/* Benchmark helpers that touch the file system. */
#include "bench_util.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

long long bench_dir_bytes(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	long long total = 0;
	char p[1024];
	while (d && (e = readdir(d))) {
		struct stat st;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		if (e->d_name[0] != '.' && stat(p, &st) == 0)
			total += st.st_size;
	}
	if (d)
		closedir(d);
	return total;
}

void bench_rmdir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[1024];
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		unlink(p);
	}
	if (d)
		closedir(d);
	rmdir(dir);
}
