/* SPDX-License-Identifier: MIT */
/* libunwind fallback for stacks through code built without frame pointers. */
#define UNW_LOCAL_ONLY
#include "unwind_libunwind.h"

#include <libunwind.h>

#include "thagtrace.h"

/* Our own frames (record path, interposer) sit between the unwinder and the site. */
#define OWN_FRAMES_MAX 16

unsigned unwind_libunwind(uintptr_t site, uintptr_t *out, unsigned max, bool *truncated)
{
	void *buf[THAGTRACE_MAX_FRAMES_LIMIT + OWN_FRAMES_MAX + 1];
	int n = unw_backtrace(buf, (int)(max + OWN_FRAMES_MAX + 1));
	*truncated = false;
	int i = 0;
	while (i < n && i < OWN_FRAMES_MAX && (uintptr_t)buf[i] != site)
		i++;
	if (i >= n || (uintptr_t)buf[i] != site)
		return 0;
	unsigned k = 0;
	for (; i < n && k < max; i++)
		out[k++] = (uintptr_t)buf[i];
	*truncated = i < n || n == (int)(max + OWN_FRAMES_MAX + 1);
	return k;
}
