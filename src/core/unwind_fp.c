/* SPDX-License-Identifier: MIT */
/* Frame-pointer unwinder. */
#include "unwind_fp.h"

#include "modules.h"

unsigned unwind_fp(uintptr_t fp, uintptr_t lo, uintptr_t hi, uintptr_t *out, unsigned max,
		   bool *truncated, bool *broken)
{
	unsigned n = 0;
	size_t hint = 0;
	*truncated = false;
	*broken = true; /* until the walk reaches the outermost frame */
	while (fp >= lo && fp <= hi - 2 * sizeof(uintptr_t) &&
	       (fp & (sizeof(uintptr_t) - 1)) == 0) {
		const uintptr_t *frame = (const uintptr_t *)fp;
		uintptr_t next = frame[0], ret = frame[1];
		/* A "return address" outside every executable segment (or in the first
		 * 64 KiB, where loaders never put code) means the chain is broken: frames
		 * of code built without frame pointers, or a thread-start wrapper's
		 * garbage. The walk ends there rather than invent frames. */
		if (ret < UNWIND_MIN_CODE_ADDR || !modules_is_code(ret, &hint))
			break;
		if (n == max) {
			*truncated = true;
			*broken = false;
			break;
		}
		out[n++] = ret;
		if (next == 0) {
			*broken = false; /* the outermost frame: the whole stack */
			break;
		}
		if (next <= fp)
			break; /* a broken chain */
		fp = next;
	}
	/* Stopping in libc right after a frame outside it is the end of the program's
	 * own frames: process or thread start code, which libc builds without frame
	 * pointers. A walk that never left libc (an allocation inside opendir, say,
	 * whose frame register holds data) stays broken: another unwinder should try. */
	if (*broken && n >= 2 && modules_is_libc(out[n - 1]) && !modules_is_libc(out[n - 2]))
		*broken = false;
	return n;
}
