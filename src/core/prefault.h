/* SPDX-License-Identifier: MIT */
/*
 * Mapping the tracer's own pages ahead of use, one system call for many pages.
 *
 * The tracer's per-thread memory (a thread's handle and ring, its call-site table)
 * is private anonymous memory, mapped by the kernel page by page as it is first
 * written: a page fault every 4 KiB. On the paravirtualised hosts this was measured
 * on, with shadow page tables, a fault costs 15-20 us of system time, so 200
 * threads of bench_overhead paid ~10 % more CPU for faulting their rings in than for
 * mapping them in bulk; one madvise(MADV_POPULATE_WRITE) for many pages costs a
 * fraction of their faults on any host. Async-signal-safe (one system call, errno
 * kept), so the event path may call it, which it does only on a ring's first lap.
 */
#ifndef TT_PREFAULT_H
#define TT_PREFAULT_H

#include <stdbool.h>
#include <stddef.h>

/* Map n bytes at page-aligned p (private anonymous memory) now, writable. False
 * when the kernel cannot (before Linux 5.14): the pages then fault as written. */
bool prefault(void *p, size_t n);

#endif /* TT_PREFAULT_H */
