/* SPDX-License-Identifier: MIT */
/* Stacks through code without frame pointers: libunwind's DWARF unwinder. */
#ifndef TT_UNWIND_LIBUNWIND_H
#define TT_UNWIND_LIBUNWIND_H

#include <stdbool.h>
#include <stdint.h>

/* Load libunwind (dlopen, RTLD_LOCAL) for unwind_libunwind. At start, not on the
 * event path. Returns false when it is not installed. Idempotent. */
bool unwind_libunwind_load(void);

/*
 * Unwind the calling thread with libunwind and store the return addresses from
 * `site` (the allocation's call site) outward, leaf first, into out[0..max).
 * Sets *truncated when frames were left. Returns the count, 0 when site was not
 * found on the stack or libunwind is not loaded (the caller keeps what it had). May allocate inside
 * libunwind: the caller holds the guard. Sampled events only: microseconds, not nanoseconds.
 */
unsigned unwind_libunwind(uintptr_t site, uintptr_t *out, unsigned max, bool *truncated);

#endif /* TT_UNWIND_LIBUNWIND_H */
