/* SPDX-License-Identifier: MIT */
/* Frame-pointer stack walk: bounded, checked against the stack's bounds, never faults. */
#ifndef TT_UNWIND_FP_H
#define TT_UNWIND_FP_H

#include <stdbool.h>
#include <stdint.h>

/* Lowest plausible code address: nothing is loaded in the first 64 KiB. */
#define UNWIND_MIN_CODE_ADDR 0x10000u

/*
 * Walk saved frame pointers from `fp` (a frame address, e.g. __builtin_frame_address(0)
 * of the function whose caller is the leaf), storing return addresses leaf first into
 * out[0..max). Every frame must lie inside [lo, hi) and strictly above the previous
 * one, so a frame without a valid frame pointer ends the walk instead of faulting;
 * every return address must be code (modules_is_code), so garbage ends it too.
 * Sets *truncated when it stopped at `max` with frames left, and *broken when the
 * chain broke before the outermost frame (a saved frame pointer of 0) and outside
 * libc (whose start code has no frame pointers): code without frame pointers on the
 * stack, where another unwinder does better. Returns the count.
 * Lock-free, allocation-free, async-signal-safe.
 */
unsigned unwind_fp(uintptr_t fp, uintptr_t lo, uintptr_t hi, uintptr_t *out, unsigned max,
		   bool *truncated, bool *broken);

#endif /* TT_UNWIND_FP_H */
