/* SPDX-License-Identifier: MIT */
/*
 * Per-thread memory that a fork child gets empty.
 *
 * A thread's handle and ring, its call-site tables and the writer's buffer of its
 * pending events belong to threads the child does not have. Inherited, they cost a
 * fork twice: fork copies their page tables and write-protects every page of them
 * in the parent (whose producers then take a copy-on-write fault, 15-20 us here, on
 * each ring page they next write), and the child unmapped them one by one (a TLB
 * shootdown each). A program that forks beside many threads, or beside threads that
 * come and go by the thousand, ran 100 times slower traced. MADV_WIPEONFORK (Linux
 * 4.14) leaves their pages out of the child: fork copies nothing of them, and the
 * child sees zeros there. After fork() the child forgets the pointers without
 * reading them (registry_fork_child_discard, thread_fork_child); it holds no
 * descriptor of the parent's files (none is open across a fork, sink.c).
 *
 * Zeros, not nothing (MADV_DONTFORK): a child made without fork() (a raw clone,
 * _Fork) runs no fork handler and still holds the parent's pointers; zeroed
 * handles read as another session's (generation 0), which sends every event to the
 * slow path, where tt_foreign_child() finds the wiped canary and turns tracing off
 * in that child. Should the kernel refuse, the child keeps a copy as before.
 */
#ifndef TT_NOFORK_H
#define TT_NOFORK_H

#include <errno.h>
#include <stddef.h>
#include <sys/mman.h>

#ifndef MADV_WIPEONFORK
#define MADV_WIPEONFORK 18
#endif

/* Wipe the mapping [p, p + n) (page-aligned p, private anonymous) in fork
 * children. errno is kept. */
static inline void nofork(void *p, size_t n)
{
	int saved = errno; /* a table may grow on the event path */
	(void)madvise(p, n, MADV_WIPEONFORK);
	errno = saved;
}

#endif /* TT_NOFORK_H */
