/* SPDX-License-Identifier: MIT */
/* Victim: dlopen a library after start, allocate through it, dlclose it.
 * usage: victim_dlopen PLUGIN.so  Prints "plugin_alloc ADDR" and the counts. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	void *h = dlopen(argv[1], RTLD_NOW);
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
	printf("want plugin_alloc 501 %d\n", 500 * 48 + 500 * 8);
	dlclose(h);
	return 0;
}
