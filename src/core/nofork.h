/* SPDX-License-Identifier: MIT */
/*
 * Per-thread memory that a fork child does not inherit.
 *
 * A thread's handle and ring, its call-site tables and the writer's buffer of its
 * pending events belong to threads the child does not have. Inherited, they cost a
 * fork twice: fork copies their page tables and write-protects every page of them
 * in the parent (whose producers then take a copy-on-write fault, 15-20 us here, on
 * each ring page they next write), and the child unmapped them one by one (a TLB
 * shootdown each). A program that forks beside many threads, or beside threads that
 * come and go by the thousand, ran 300 times slower traced. MADV_DONTFORK leaves
 * them out of the child altogether; the child forgets the pointers without reading
 * them (registry_fork_child_discard, thread_fork_child) and closes the parent's
 * files from the descriptor table kept outside them (sink.c).
 */
#ifndef TT_NOFORK_H
#define TT_NOFORK_H

#include <errno.h>
#include <stddef.h>
#include <sys/mman.h>

/* Leave the mapping [p, p + n) (page-aligned p) out of fork children. Should the
 * kernel refuse, the child keeps a copy it never touches: nothing breaks. errno
 * is kept. */
static inline void nofork(void *p, size_t n)
{
	int saved = errno; /* a table may grow on the event path */
	(void)madvise(p, n, MADV_DONTFORK);
	errno = saved;
}

#endif /* TT_NOFORK_H */
