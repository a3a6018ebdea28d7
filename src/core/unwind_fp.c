/* SPDX-License-Identifier: MIT */
/* Frame-pointer unwinder. */
#include "unwind_fp.h"

unsigned unwind_fp(uintptr_t fp, uintptr_t lo, uintptr_t hi, uintptr_t *out, unsigned max,
		   bool *truncated)
{
	unsigned n = 0;
	*truncated = false;
	while (fp >= lo && fp <= hi - 2 * sizeof(uintptr_t) && (fp & (sizeof(uintptr_t) - 1)) == 0) {
		const uintptr_t *frame = (const uintptr_t *)fp;
		uintptr_t next = frame[0], ret = frame[1];
		if (ret < 4096)
			break; /* not a return address: the chain is broken */
		if (n == max) {
			*truncated = true;
			break;
		}
		out[n++] = ret;
		if (next <= fp)
			break; /* the outermost frame (0) or a broken chain */
		fp = next;
	}
	return n;
}
