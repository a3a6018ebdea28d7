/* SPDX-License-Identifier: MIT */
/*
 * Victim: dlopen a library after start, allocate through it, dlclose it.
 * usage: victim_dlopen PLUGIN.so [deepbind]  Prints "plugin_alloc ADDR" and the
 * counts. With "deepbind" the library is opened RTLD_DEEPBIND, so its calls to free
 * go to libc's directly, and it frees blocks of 20000 bytes (always sampled) that
 * the program allocated after opening it.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	int deep = argc > 2 && !strcmp(argv[2], "deepbind");
	void *h = dlopen(argv[1], RTLD_NOW | (deep ? RTLD_DEEPBIND : 0));
	if (!h) {
		fprintf(stderr, "%s\n", dlerror());
		return 1;
	}
	void **(*alloc)(int) = (void **(*)(int))dlsym(h, "plugin_alloc");
	printf("fn plugin_alloc %p\n", (void *)alloc);
	void **v = alloc(500);
	for (int i = 0; i < 500; i++)
		free(v[i]);
	free(v);
	if (deep) {
		void (*pfree)(void **, int) = (void (*)(void **, int))dlsym(h, "plugin_free");
		void *big[100];
		for (int i = 0; i < 100; i++)
			big[i] = malloc(20000);
		pfree(big, 100);
	}
	if (!deep) /* a DEEPBIND library's calls go to libc, past the interposer */
		printf("want plugin_alloc 501 %d\n", 500 * 48 + 500 * 8);
	dlclose(h);
	return 0;
}
