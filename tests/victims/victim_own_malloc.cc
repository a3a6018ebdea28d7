// SPDX-License-Identifier: MIT
// Victim: a program with its own malloc and free (counting, then glibc's). Its
// operator new (libstdc++'s) calls its malloc, and so must the tracer's new: prints
// how many of 1000 news its malloc saw.
#include <cstddef>
#include <cstdio>

extern "C" {
void *__libc_malloc(size_t);
void __libc_free(void *);
void *__libc_calloc(size_t, size_t);
void *__libc_realloc(void *, size_t);

static long mallocs;

void *malloc(size_t n)
{
	mallocs++;
	return __libc_malloc(n);
}

void free(void *p)
{
	__libc_free(p);
}

void *calloc(size_t n, size_t m)
{
	mallocs++;
	return __libc_calloc(n, m);
}

void *realloc(void *p, size_t n)
{
	mallocs++;
	return __libc_realloc(p, n);
}
}

int main()
{
	long before = mallocs;
	for (int i = 0; i < 1000; i++) {
		int *p = new int(i);
		__asm__ volatile("" ::"r"(p) : "memory");
		delete p;
	}
	std::printf("own malloc saw %ld of 1000 new\n", mallocs - before);
	return 0;
}
