/* SPDX-License-Identifier: MIT */
/*
 * Victim: dlopen a library after start, allocate through it, dlclose it.
 * usage: victim_dlopen PLUGIN.so [deepbind]  Prints "plugin_alloc ADDR" and the
 * counts. With "deepbind" the library is opened RTLD_DEEPBIND, so its calls to free
 * go to libc's directly, and it frees blocks of 20000 bytes (always sampled) that
 * the program allocated after opening it. "A.so swap B.so": open A, 10 blocks of
 * 20000 bytes through it, close it, then B (built from the same code, so it loads
 * where A was) and 30 blocks.
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
	if (argc > 3 && !strcmp(argv[2], "swap")) {
		for (int k = 0; k < 2; k++) {
			void *h = dlopen(argv[k ? 3 : 1], RTLD_NOW);
			if (!h) {
				fprintf(stderr, "%s\n", dlerror());
				return 1;
			}
			void (*big)(int) = (void (*)(int))dlsym(h, "plugin_big");
			printf("plugin_big %d %p\n", k, (void *)big);
			big(k ? 30 : 10); /* one call site for both: the same stack */
			dlclose(h);
			__asm__ volatile("" : "+r"(k)); /* no unrolling into two calls */
		}
		return 0;
	}
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
