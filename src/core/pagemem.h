/* SPDX-License-Identifier: MIT */
/*
 * The writer's large buffers (its encode buffer, the compressed frame, zstd's
 * workspace), mapped from the kernel directly, never taken from the program's heap.
 *
 * Why: glibc adapts to what it sees freed. Freeing a chunk it had mmapped (anything
 * over 128 KiB) raises its mmap threshold to that size and its trim threshold to
 * twice that, for the whole process, for good. zstd frees and reallocates its
 * workspace (about 1 MiB) as frame sizes vary, so through malloc a traced program's
 * heap stopped returning memory to the kernel (madvise: 82 calls traced against
 * 1481 untraced on bench_overhead --work 4), which changed the program's own speed
 * and made the overhead figures look better than they were.
 *
 * A mapping carries its length in a 64-byte header (the returned block stays 64-byte
 * aligned). Not for the event path: every call may be a syscall.
 */
#ifndef TT_PAGEMEM_H
#define TT_PAGEMEM_H

#include <stddef.h>
#ifndef ZSTD_STATIC_LINKING_ONLY
#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_customMem (exported by libzstd.so since 1.4) */
#endif
#include <zstd.h>

/* A fresh zeroed block of at least n bytes, or NULL (errno from mmap). */
void *pagemem_alloc(size_t n);
/* Grow or shrink p (NULL: pagemem_alloc) keeping its contents; NULL on failure, p
 * then unchanged. */
void *pagemem_realloc(void *p, size_t n);
/* Unmap p (NULL: nothing). */
void pagemem_free(void *p);
/* Leave p's whole mapping out of fork children (nofork.h); again after every
 * pagemem_realloc that may have moved it. */
void pagemem_nofork(void *p);

/*
 * zstd's allocator for one compression context: pagemem, plus the last block zstd
 * freed kept for its next allocation that fits, so a workspace resized back and
 * forth (frames of varying size) costs no syscalls or page faults after the first.
 * Single-threaded, like the context it serves; pagemem_zstd_fini unmaps the kept
 * block after the context is freed.
 */
struct pagemem_zstd {
	void *kept;
};

ZSTD_customMem pagemem_zstd_mem(struct pagemem_zstd *z);
void pagemem_zstd_fini(struct pagemem_zstd *z);

#endif /* TT_PAGEMEM_H */
