/* SPDX-License-Identifier: MIT */
/*
 * libunwind fallback for stacks through code built without frame pointers.
 *
 * libunwind is dlopen'd RTLD_LOCAL at start, never linked: it defines the
 * _Unwind_* functions too, and in the global scope (as a dependency of a preloaded
 * library) they would take the place of libgcc_s's for the whole program, breaking
 * pthread_exit, cancellation and C++ exceptions.
 */
#define _GNU_SOURCE
#include "unwind_libunwind.h"

#include <dlfcn.h>

#include "../common/atomic.h"
#include "../common/log.h"
#include "thagtrace.h"

typedef int (*backtrace_fn)(void **, int);

static _Atomic(backtrace_fn) backtrace; /* store_release once loaded */
static _Atomic int tried;

bool unwind_libunwind_load(void)
{
	if (exchange_acq_rel(&tried, 1))
		return load_acquire(&backtrace) != NULL;
	void *h = dlopen("libunwind.so.8", RTLD_NOW | RTLD_LOCAL);
	if (!h)
		h = dlopen("libunwind.so", RTLD_NOW | RTLD_LOCAL);
	backtrace_fn f = h ? (backtrace_fn)dlsym(h, "unw_backtrace") : NULL;
	store_release(&backtrace, f);
	return f != NULL;
}

/* Our own frames (record path, interposer) sit between the unwinder and the site. */
#define OWN_FRAMES_MAX 16

unsigned unwind_libunwind(uintptr_t site, uintptr_t *out, unsigned max, bool *truncated)
{
	backtrace_fn bt = load_acquire(&backtrace);
	*truncated = false;
	if (!bt)
		return 0;
	void *buf[THAGTRACE_MAX_FRAMES_LIMIT + OWN_FRAMES_MAX + 1];
	int n = bt(buf, (int)(max + OWN_FRAMES_MAX + 1));
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
