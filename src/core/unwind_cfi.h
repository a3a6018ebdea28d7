/* SPDX-License-Identifier: MIT */
/*
 * Stack walk from the call-frame tables every object carries (.eh_frame, found through
 * its .eh_frame_hdr index), for code built with or without frame pointers.
 *
 * The rule that takes a frame to its caller (where the canonical frame address is,
 * where the return address and the caller's frame register were saved) is worked out
 * once per return address and kept in a global lock-free cache of 64-bit entries; a
 * walk through addresses seen before is then a hash lookup and two loads a frame,
 * with no lock, no allocation and no system call. Objects are found with glibc's
 * _dl_find_object (lock-free, async-signal-safe), so there is no module list to keep.
 * x86-64 only; elsewhere unwind_cfi_available() is false.
 */
#ifndef TT_UNWIND_CFI_H
#define TT_UNWIND_CFI_H

#include <stdbool.h>
#include <stdint.h>

/* What a frame's rule says, decoded (tests and the cache use the same form). */
enum cfi_kind {
	CFI_NONE,	/* no call-frame information for this address */
	CFI_OUTERMOST,	/* the return address is undefined: the first frame of the stack */
	CFI_RULE,	/* cfa = (cfa_rbp ? rbp : rsp) + cfa_off; rbp saved at cfa + rbp_off */
	CFI_REALIGNED,	/* a realigned frame: cfa = *(rbp + cfa_off), rbp saved at *rbp */
	CFI_SIGNAL,	/* the signal trampoline: the interrupted registers are in the
			 * ucontext at the stack pointer */
	CFI_UNSUPPORTED /* an expression or register rule this walker does not follow */
};

struct cfi_rule {
	enum cfi_kind kind;
	bool cfa_rbp; /* the frame address is based on rbp, not rsp */
	int64_t cfa_off;
	int64_t rbp_off; /* 0: rbp unchanged in this frame */
};

/* Whether this process can use the walker (x86-64, glibc with _dl_find_object, and
 * our own code has call-frame information). Cheap after the first call. */
bool unwind_cfi_available(void);

/* The rule for the frame executing at `pc` (an address inside the instruction, so
 * a return address less one); uncached. For tests. */
void unwind_cfi_rule(uintptr_t pc, struct cfi_rule *r);

/*
 * Walk from a frame whose return address is `ip` (the caller's code), with the
 * caller's stack pointer `sp` and frame register `bp` as they are at that return
 * address: ip first into out[0..max), then each caller's return address. Every load
 * is of a stack slot inside [lo, hi), each frame strictly above the one before.
 * Signal frames are followed into the interrupted code, whose frame is stored as
 * its instruction address plus one (a return address's convention, so that readers
 * that look at the address less one find that instruction). Frames without
 * call-frame information (generated code) are stepped by their frame pointer, when
 * it is plausible. Sets *truncated when max stopped it with frames
 * left, *broken when it stopped before the outermost frame. Returns the count.
 * Lock-free, allocation-free, async-signal-safe.
 */
unsigned unwind_cfi(uintptr_t ip, uintptr_t sp, uintptr_t bp, uintptr_t lo, uintptr_t hi,
		    uintptr_t *out, unsigned max, bool *truncated, bool *broken);

/* Forget every cached rule: objects were unloaded, and their addresses may be
 * reused by others. */
void unwind_cfi_flush(void);

#endif /* TT_UNWIND_CFI_H */
