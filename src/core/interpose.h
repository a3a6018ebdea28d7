/* SPDX-License-Identifier: MIT */
/* The malloc-family interposer's set-up (its exported functions need no header). */
#ifndef TT_INTERPOSE_H
#define TT_INTERPOSE_H

#include <stdbool.h>

/* Look up the real allocation functions (dlsym RTLD_NEXT). Idempotent; called from
 * the library's constructor and lazily by the first allocation. */
void interpose_resolve(void);

/* After interpose_resolve: tag sampled blocks (blocktag.h) if `want` and the next
 * allocator is glibc's. Returns whether tags are on. Once, before tracing starts. */
bool interpose_blocktags(bool want);

/* The next definition of `name` after this library (dlsym RTLD_NEXT), looked up
 * under the guard: dlsym allocates, and that is not the program's allocation. For
 * the wrappers of functions the tracer needs to see (exit, exec, threads, dlopen). */
void *interpose_next(const char *name);

#endif /* TT_INTERPOSE_H */
