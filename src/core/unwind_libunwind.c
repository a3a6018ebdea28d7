/* SPDX-License-Identifier: MIT */
/*
 * libunwind fallback for stacks through code built without frame pointers.
 *
 * libunwind is dlopen'd RTLD_LOCAL at start, never linked: it defines the
 * _Unwind_* functions too, and in the global scope (as a dependency of a preloaded
 * library) they would take the place of libgcc_s's for the whole program, breaking
 * pthread_exit, cancellation and C++ exceptions. Only the cursor API is used, with
 * per-thread caching (plain __thread storage): unw_backtrace's trace cache hangs on
 * a pthread key with a destructor, which this library never has.
 */
#define _GNU_SOURCE
#define UNW_LOCAL_ONLY
#include "unwind_libunwind.h"

#include <dlfcn.h>
#include <libunwind.h>

#include "../common/atomic.h"
#include "thagtrace.h"

/* The functions' types from the header; their addresses from dlsym. */
static struct {
	int (*getcontext)(unw_context_t *); /* unw_getcontext is a macro */
	__typeof__(unw_init_local) *init_local;
	__typeof__(unw_step) *step;
	__typeof__(unw_get_reg) *get_reg;
} lib;
static _Atomic int ready; /* store_release once lib is complete */
static _Atomic int tried;

#define SYM(field, name) (lib.field = (__typeof__(lib.field))dlsym(h, name))

bool unwind_libunwind_load(void)
{
	if (exchange_acq_rel(&tried, 1))
		return load_acquire(&ready);
	void *h = dlopen("libunwind.so.8", RTLD_NOW | RTLD_LOCAL);
	if (!h)
		h = dlopen("libunwind.so", RTLD_NOW | RTLD_LOCAL);
	if (!h)
		return false;
	__typeof__(unw_set_caching_policy) *policy =
	    (__typeof__(unw_set_caching_policy) *)dlsym(h, "_ULx86_64_set_caching_policy");
	unw_addr_space_t *space = (unw_addr_space_t *)dlsym(h, "_ULx86_64_local_addr_space");
	if (!SYM(getcontext, "_Ux86_64_getcontext") || !SYM(init_local, "_ULx86_64_init_local") ||
	    !SYM(step, "_ULx86_64_step") || !SYM(get_reg, "_ULx86_64_get_reg") || !policy || !space)
		return false;
	policy(*space, UNW_CACHE_PER_THREAD);
	store_release(&ready, 1);
	return true;
}

/* Our own frames (record path, interposer) sit between the unwinder and the site. */
#define OWN_FRAMES_MAX 16

unsigned unwind_libunwind(uintptr_t site, uintptr_t *out, unsigned max, bool *truncated)
{
	*truncated = false;
	if (!load_acquire(&ready))
		return 0;
	unw_context_t uc;
	unw_cursor_t c;
	if (lib.getcontext(&uc) != 0 || lib.init_local(&c, &uc) != 0)
		return 0;
	unsigned k = 0, skipped = 0;
	while (lib.step(&c) > 0) {
		unw_word_t ip;
		if (lib.get_reg(&c, UNW_REG_IP, &ip) != 0 || ip == 0)
			break;
		if (k == 0 && (uintptr_t)ip != site) {
			if (++skipped > OWN_FRAMES_MAX)
				return 0; /* the site is not on this stack */
			continue;
		}
		if (k == max) {
			*truncated = true;
			break;
		}
		out[k++] = (uintptr_t)ip;
	}
	return k;
}
