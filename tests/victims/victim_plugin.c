/* SPDX-License-Identifier: MIT */
/* A library the dlopen victim loads at run time: its allocations must be counted. */
#include <stdlib.h>

void *plugin_site(void);
void **plugin_alloc(int n);
void plugin_free(void **v, int n);
void plugin_big(int n);

__attribute__((noinline)) void **plugin_alloc(int n)
{
	void **v = calloc((size_t)n, sizeof(void *));
	for (int i = 0; i < n; i++)
		v[i] = malloc(48);
	return v;
}

void *plugin_site(void)
{
	return (void *)plugin_alloc;
}

/* Frees the caller's blocks: opened with RTLD_DEEPBIND, this free is libc's own. */
void plugin_free(void **v, int n)
{
	for (int i = 0; i < n; i++)
		free(v[i]);
}

/* n blocks of 20000 bytes (always recorded), each freed at once. Built twice
 * (libvictim_plugin_b.so too): the two load at the same address in turn. */
__attribute__((noinline)) void plugin_big(int n)
{
	for (int i = 0; i < n; i++) {
		void *p = malloc(20000);
		__asm__ volatile("" : : "r"(p) : "memory");
		free(p);
	}
}
