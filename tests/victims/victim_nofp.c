/* SPDX-License-Identifier: MIT */
/* Victim built without frame pointers (-O2 -fomit-frame-pointer): allocations at the
 * bottom of a 10-deep chain of calls. A frame-pointer walk cannot get past the first
 * frame here; DWARF unwinding (libunwind) sees the whole chain. */
#include <stdio.h>
#include <stdlib.h>

static void *volatile sink;

__attribute__((noinline)) static void level(int depth, unsigned long salt)
{
	if (depth == 0) {
		for (int i = 0; i < 200; i++) {
			void *p = malloc(64 + (salt + (unsigned long)i) % 64);
			sink = p;
			free(p);
		}
		return;
	}
	level(depth - 1, salt * 31 + (unsigned long)depth);
	__asm__ volatile("" ::: "memory"); /* no tail call: the frame stays */
}

int main(void)
{
	level(10, 7);
	printf("depth 10\n");
	return 0;
}
