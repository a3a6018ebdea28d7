/* SPDX-License-Identifier: MIT */
/*
 * Every exported allocation function: the C malloc family and the C++ operator
 * new/delete family. Each calls the next definition (dlsym RTLD_NEXT: libc, or the
 * program's own allocator) and records through the event path. While the real
 * functions are being looked up, allocations come from a static bootstrap arena.
 * Guarded calls (the tracer's own work, and libstdc++'s new calling malloc) pass
 * through untraced, so an allocation is counted once, at its caller.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "interpose.h"
#include "modules.h"
#include "record.h"
#include "thread_auto.h"

#define EXPORT	    __attribute__((visibility("default")))
#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define CALL_SITE   ((uintptr_t)__builtin_return_address(0))
#define FRAME	    ((uintptr_t)__builtin_frame_address(0))

typedef void *(*malloc_fn)(size_t);
typedef void (*free_fn)(void *);
typedef void *(*calloc_fn)(size_t, size_t);
typedef void *(*realloc_fn)(void *, size_t);
typedef int (*posix_memalign_fn)(void **, size_t, size_t);
typedef void *(*memalign_fn)(size_t, size_t);
typedef size_t (*usable_fn)(void *);
typedef void *(*new_fn)(size_t);
typedef void *(*new_nothrow_fn)(size_t, const void *);
typedef void *(*new_aligned_fn)(size_t, size_t);
typedef void *(*new_aligned_nothrow_fn)(size_t, size_t, const void *);
typedef void (*delete_fn)(void *);

/* ---- bootstrap arena: what dlsym allocates before we know the real malloc ---- */

#define BOOT_BYTES (128 * 1024)
static unsigned char boot_arena[BOOT_BYTES] __attribute__((aligned(64)));
static _Atomic size_t boot_used;

struct boot_hdr {
	size_t size;
	size_t pad;
};

/* One compare: p - arena wraps around to a huge value below the arena. */
static inline bool in_boot(const void *p)
{
	return (uintptr_t)p - (uintptr_t)boot_arena < BOOT_BYTES;
}

/* Bump allocation, 16-byte aligned with a size header; never freed. */
static void *boot_alloc(size_t n)
{
	size_t need = sizeof(struct boot_hdr) + ((n + 15) & ~(size_t)15);
	size_t at = fetch_add_relaxed(&boot_used, need);
	if (n > BOOT_BYTES || at + need > BOOT_BYTES)
		return NULL;
	struct boot_hdr *h = (struct boot_hdr *)(boot_arena + at);
	h->size = n;
	return h + 1; /* static storage: already zero, as calloc needs */
}

static size_t boot_size(const void *p)
{
	return ((const struct boot_hdr *)p - 1)->size;
}

/* ---- the next definitions (libc's, or the program's own allocator) ---- */

/*
 * Until they are looked up, each points to a stub that looks them up and calls
 * on, or serves from the bootstrap arena while the lookup itself allocates: the
 * wrappers never test for it.
 */
static void *stub_malloc(size_t n);
static void stub_free(void *p);
static void *stub_calloc(size_t n, size_t m);
static void *stub_realloc(void *old, size_t n);
static int stub_posix_memalign(void **out, size_t align, size_t n);
static void *stub_aligned_alloc(size_t align, size_t n);
static void *stub_memalign(size_t align, size_t n);
static void *stub_valloc(size_t n);
static void *stub_pvalloc(size_t n);
static size_t stub_malloc_usable_size(void *p);

static struct {
	malloc_fn malloc;
	free_fn free;
	calloc_fn calloc;
	realloc_fn realloc;
	posix_memalign_fn posix_memalign;
	memalign_fn aligned_alloc, memalign;
	malloc_fn valloc, pvalloc;
	usable_fn malloc_usable_size;
} real = {stub_malloc,	      stub_free,     stub_calloc, stub_realloc, stub_posix_memalign,
	  stub_aligned_alloc, stub_memalign, stub_valloc, stub_pvalloc, stub_malloc_usable_size};

static _Atomic int resolve_state; /* 0: not yet; 1: under way; 2: done */

#define RESOLVE(field, name)                                                                       \
	do {                                                                                       \
		void *f = dlsym(RTLD_NEXT, name);                                                  \
		if (f)                                                                             \
			real.field = (__typeof__(real.field))f;                                    \
	} while (0)

void interpose_resolve(void)
{
	int expect = 0;
	/* Once; a call while it is under way (dlsym allocating) returns at once and
	 * its stub serves from the arena. */
	if (!atomic_compare_exchange_strong(&resolve_state, &expect, 1))
		return;
	RESOLVE(malloc, "malloc");
	RESOLVE(calloc, "calloc");
	RESOLVE(realloc, "realloc");
	RESOLVE(posix_memalign, "posix_memalign");
	RESOLVE(aligned_alloc, "aligned_alloc");
	RESOLVE(memalign, "memalign");
	RESOLVE(valloc, "valloc");
	RESOLVE(pvalloc, "pvalloc");
	RESOLVE(malloc_usable_size, "malloc_usable_size");
	RESOLVE(free, "free");
	store_release(&resolve_state, 2);
}

static void *stub_malloc(size_t n)
{
	interpose_resolve();
	return real.malloc != stub_malloc ? real.malloc(n) : boot_alloc(n);
}

static void stub_free(void *p)
{
	interpose_resolve();
	if (real.free != stub_free)
		real.free(p);
	/* else no free exists to give it to: it stays allocated */
}

static void *stub_calloc(size_t n, size_t m)
{
	interpose_resolve();
	if (real.calloc != stub_calloc)
		return real.calloc(n, m);
	size_t bytes;
	return __builtin_mul_overflow(n, m, &bytes) ? NULL : boot_alloc(bytes);
}

static void *stub_realloc(void *old, size_t n)
{
	interpose_resolve();
	if (real.realloc != stub_realloc)
		return real.realloc(old, n);
	return old ? NULL : boot_alloc(n);
}

static int stub_posix_memalign(void **out, size_t align, size_t n)
{
	interpose_resolve();
	return real.posix_memalign != stub_posix_memalign ? real.posix_memalign(out, align, n)
							  : ENOMEM;
}

#define STUB_ALIGNED(name)                                                                         \
	static void *stub_##name(size_t align, size_t n)                                           \
	{                                                                                          \
		interpose_resolve();                                                               \
		return real.name != stub_##name ? real.name(align, n) : NULL;                      \
	}
STUB_ALIGNED(aligned_alloc)
STUB_ALIGNED(memalign)

#define STUB_PAGE(name)                                                                            \
	static void *stub_##name(size_t n)                                                         \
	{                                                                                          \
		interpose_resolve();                                                               \
		return real.name != stub_##name ? real.name(n) : NULL;                             \
	}
STUB_PAGE(valloc)
STUB_PAGE(pvalloc)

static size_t stub_malloc_usable_size(void *p)
{
	interpose_resolve();
	return real.malloc_usable_size != stub_malloc_usable_size ? real.malloc_usable_size(p) : 0;
}

/* ---- the shared recording steps ---- */

static inline bool tracing(void)
{
	return load_relaxed(&tt_active_gen) != 0 && tt_guard == 0;
}

/*
 * The general path of an allocation: any thread state (not registered yet, ending,
 * nested in a signal handler, an earlier session's handle, producers needing a
 * fence), a new call site. Out of line, so the fast path keeps few registers.
 */
static __attribute__((noinline)) void alloc_general(void *p, size_t n, uintptr_t site, uintptr_t fp)
{
	if (!tracing())
		return;
	struct thagtrace_thread *t = tt_self;
	bool spare = false; /* the slow path lent us the exited threads' handle */
	if (unlikely(!thread_auto_current(t))) {
		t = thread_auto_self(n, true);
		if (!t)
			return;
		spare = thread_auto_is_spare(t);
	}
	if (thread_enter(t) == 0) {
		record_alloc_at(t, p, n, site, fp);
		thread_leave(t);
	}
	if (unlikely(spare))
		thread_exited_release();
}

/* Every allocation that succeeded: counted, sampled, recorded. The fast path needs
 * a live handle of this thread, no guard, and the general path does the rest. */
static inline __attribute__((always_inline)) void on_alloc(void *p, size_t n, uintptr_t site,
							   uintptr_t fp)
{
	struct thagtrace_thread *t = tt_self;
	if (likely((uintptr_t)t > (uintptr_t)THREAD_EXITED && tt_guard == 0) &&
	    likely(record_alloc_fast(t, p, n, site, fp)))
		return;
	alloc_general(p, n, site, fp);
}

/* A free whose pointer passed the gate (maybe sampled, or every free recorded):
 * recorded before the real free, so a reused address is not recorded before it. */
static __attribute__((noinline)) void free_general(void *p)
{
	if (p == NULL || !tracing())
		return;
	if (tt_sampling.mode != THAGTRACE_SAMPLE_ALL && !freeset_maybe((uintptr_t)p))
		return; /* not sampled: no handle needed, nothing to record */
	struct thagtrace_thread *t = tt_self;
	bool spare = false; /* the slow path lent us the exited threads' handle */
	if (unlikely(!thread_auto_current(t))) {
		t = thread_auto_self(0, false);
		if (!t)
			return;
		spare = thread_auto_is_spare(t);
	}
	if (thread_enter(t) == 0) {
		record_free_at(t, p);
		thread_leave(t);
	}
	if (unlikely(spare))
		thread_exited_release();
}

/* May freeing p need recording? One gate filter load says no for an unsampled
 * pointer (the tracer's own pointers are never in the set, so no guard test
 * either); yes for every pointer in mode all. */
static inline bool free_may_record(const void *p)
{
	_Atomic uint16_t *gate = load_relaxed(&freeset_gate);
	return gate == NULL || load_relaxed(&gate[freeset_gate_index((uintptr_t)p)]) != 0;
}

static inline __attribute__((always_inline)) void on_free(void *p)
{
	if (unlikely(free_may_record(p)))
		free_general(p);
}

/* ---- C allocation functions ---- */

EXPORT void *malloc(size_t n)
{
	void *p = real.malloc(n);
	if (likely(p != NULL))
		on_alloc(p, n, CALL_SITE, FRAME);
	return p;
}

EXPORT void free(void *p)
{
	if (unlikely(in_boot(p)))
		return;
	on_free(p);
	real.free(p);
}

EXPORT void *calloc(size_t n, size_t m)
{
	void *p = real.calloc(n, m);
	if (likely(p != NULL))
		on_alloc(p, n * m, CALL_SITE, FRAME);
	return p;
}

/* realloc of a bootstrap block: move it to the real heap. */
static void *boot_realloc(void *old, size_t n)
{
	void *p = malloc(n);
	if (p) {
		size_t keep = boot_size(old) < n ? boot_size(old) : n;
		memcpy(p, old, keep);
	}
	return p;
}

/*
 * realloc's steps: the free first (stamped before the call, so no reuse of old's
 * address can be recorded ahead of it), the allocation after; nothing at all if
 * the call fails and old stays live.
 */
static inline __attribute__((always_inline)) void *realloc_traced(void *old, size_t n,
								  uintptr_t site, uintptr_t fp)
{
	bool maybe = old && free_may_record(old);
	uint64_t ts = maybe ? tt_ticks() : 0;
	void *p = real.realloc(old, n);
	if (p == NULL && n != 0)
		return NULL;
	if (maybe) {
		struct thagtrace_thread *t = tt_self;
		bool spare = false;
		if (unlikely(!thread_auto_current(t))) {
			t = thread_auto_self(0, false);
			spare = t && thread_auto_is_spare(t);
		}
		if (t && thread_enter(t) == 0) {
			if (tt_sampling.mode == THAGTRACE_SAMPLE_ALL ||
			    freeset_remove((uintptr_t)old))
				record_push_free(t, old, ts);
			thread_leave(t);
		}
		if (unlikely(spare))
			thread_exited_release();
	}
	if (p)
		on_alloc(p, n, site, fp);
	return p;
}

EXPORT void *realloc(void *old, size_t n)
{
	if (unlikely(in_boot(old)))
		return boot_realloc(old, n);
	if (!tracing())
		return real.realloc(old, n);
	return realloc_traced(old, n, CALL_SITE, FRAME);
}

EXPORT void *reallocarray(void *old, size_t n, size_t m)
{
	size_t bytes;
	if (__builtin_mul_overflow(n, m, &bytes)) {
		errno = ENOMEM;
		return NULL;
	}
	if (unlikely(in_boot(old)))
		return boot_realloc(old, bytes);
	if (!tracing())
		return real.realloc(old, bytes);
	return realloc_traced(old, bytes, CALL_SITE, FRAME);
}

EXPORT int posix_memalign(void **out, size_t align, size_t n)
{
	int rc = real.posix_memalign(out, align, n);
	if (rc == 0 && *out)
		on_alloc(*out, n, CALL_SITE, FRAME);
	return rc;
}

/* aligned_alloc, memalign: (alignment, size) -> pointer. */
#define ALIGNED_WRAPPER(name)                                                                      \
	EXPORT void *name(size_t align, size_t n)                                                  \
	{                                                                                          \
		void *p = real.name(align, n);                                                     \
		if (likely(p != NULL))                                                             \
			on_alloc(p, n, CALL_SITE, FRAME);                                          \
		return p;                                                                          \
	}
ALIGNED_WRAPPER(aligned_alloc)
ALIGNED_WRAPPER(memalign)

/* valloc, pvalloc: size -> page-aligned pointer. */
#define PAGE_WRAPPER(name)                                                                         \
	EXPORT void *name(size_t n)                                                                \
	{                                                                                          \
		void *p = real.name(n);                                                            \
		if (likely(p != NULL))                                                             \
			on_alloc(p, n, CALL_SITE, FRAME);                                          \
		return p;                                                                          \
	}
PAGE_WRAPPER(valloc)
PAGE_WRAPPER(pvalloc)

EXPORT size_t malloc_usable_size(void *p)
{
	if (in_boot(p))
		return boot_size(p);
	return real.malloc_usable_size(p);
}

/* ---- C++ operators ---- */

/*
 * new calls libstdc++'s own operator (new_handler loop, bad_alloc), which calls
 * malloc: the guard makes that inner malloc pass through, so the allocation is
 * counted once, at new's caller. Built with -fexceptions, the cleanup attribute
 * lowers the guard again when the real operator throws.
 */
static void guard_release(int *g)
{
	(void)g;
	tt_guard_leave();
}
static inline int guard_take(void)
{
	tt_guard_enter();
	return 0;
}
#define GUARDED int guard_scope __attribute__((cleanup(guard_release), unused)) = guard_take()

/* dlsym allocates: under the guard, that is not the program's allocation. */
static void *lookup(const char *name)
{
	tt_guard_enter();
	void *f = dlsym(RTLD_NEXT, name);
	tt_guard_leave();
	return f;
}

/* One cached real operator per wrapper, looked up on first use. */
#define REAL(type, sym)                                                                            \
	static type real_fn;                                                                       \
	if (unlikely(!real_fn))                                                                    \
		real_fn = (type)lookup(sym);

#define NEW_WRAPPER(cname, sym)                                                                    \
	EXPORT void *cname(size_t n);                                                              \
	EXPORT void *cname(size_t n)                                                               \
	{                                                                                          \
		REAL(new_fn, sym)                                                                  \
		void *p;                                                                           \
		{                                                                                  \
			GUARDED;                                                                   \
			p = real_fn ? real_fn(n) : malloc(n);                                      \
		}                                                                                  \
		if (likely(p != NULL))                                                             \
			on_alloc(p, n, CALL_SITE, FRAME);                                          \
		return p;                                                                          \
	}
#define NEW_NOTHROW_WRAPPER(cname, sym)                                                            \
	EXPORT void *cname(size_t n, const void *nt);                                              \
	EXPORT void *cname(size_t n, const void *nt)                                               \
	{                                                                                          \
		REAL(new_nothrow_fn, sym)                                                          \
		void *p;                                                                           \
		{                                                                                  \
			GUARDED;                                                                   \
			p = real_fn ? real_fn(n, nt) : malloc(n);                                  \
		}                                                                                  \
		if (likely(p != NULL))                                                             \
			on_alloc(p, n, CALL_SITE, FRAME);                                          \
		return p;                                                                          \
	}
#define NEW_ALIGNED_WRAPPER(cname, sym)                                                            \
	EXPORT void *cname(size_t n, size_t align);                                                \
	EXPORT void *cname(size_t n, size_t align)                                                 \
	{                                                                                          \
		REAL(new_aligned_fn, sym)                                                          \
		void *p;                                                                           \
		{                                                                                  \
			GUARDED;                                                                   \
			p = real_fn ? real_fn(n, align) : aligned_alloc(align, n);                 \
		}                                                                                  \
		if (likely(p != NULL))                                                             \
			on_alloc(p, n, CALL_SITE, FRAME);                                          \
		return p;                                                                          \
	}
#define NEW_ALIGNED_NOTHROW_WRAPPER(cname, sym)                                                    \
	EXPORT void *cname(size_t n, size_t align, const void *nt);                                \
	EXPORT void *cname(size_t n, size_t align, const void *nt)                                 \
	{                                                                                          \
		REAL(new_aligned_nothrow_fn, sym)                                                  \
		void *p;                                                                           \
		{                                                                                  \
			GUARDED;                                                                   \
			p = real_fn ? real_fn(n, align, nt) : aligned_alloc(align, n);             \
		}                                                                                  \
		if (likely(p != NULL))                                                             \
			on_alloc(p, n, CALL_SITE, FRAME);                                          \
		return p;                                                                          \
	}

/* Every delete shape: record the free, then the real operator under the guard (its
 * own free call must not record it twice). The extra arguments pass through. */
#define DELETE_WRAPPER(cname, sym, params, args)                                                   \
	EXPORT void cname params;                                                                  \
	EXPORT void cname params                                                                   \
	{                                                                                          \
		typedef void(*fn_t) params;                                                        \
		REAL(fn_t, sym)                                                                    \
		if (p == NULL)                                                                     \
			return;                                                                    \
		on_free(p);                                                                        \
		GUARDED;                                                                           \
		if (real_fn)                                                                       \
			real_fn args;                                                              \
		else                                                                               \
			free(p);                                                                   \
	}

/* Itanium C++ ABI names, size_t = unsigned long (m), align_val_t = size_t. */
NEW_WRAPPER(_Znwm, "_Znwm")
NEW_WRAPPER(_Znam, "_Znam")
NEW_NOTHROW_WRAPPER(_ZnwmRKSt9nothrow_t, "_ZnwmRKSt9nothrow_t")
NEW_NOTHROW_WRAPPER(_ZnamRKSt9nothrow_t, "_ZnamRKSt9nothrow_t")
NEW_ALIGNED_WRAPPER(_ZnwmSt11align_val_t, "_ZnwmSt11align_val_t")
NEW_ALIGNED_WRAPPER(_ZnamSt11align_val_t, "_ZnamSt11align_val_t")
NEW_ALIGNED_NOTHROW_WRAPPER(_ZnwmSt11align_val_tRKSt9nothrow_t,
			    "_ZnwmSt11align_val_tRKSt9nothrow_t")
NEW_ALIGNED_NOTHROW_WRAPPER(_ZnamSt11align_val_tRKSt9nothrow_t,
			    "_ZnamSt11align_val_tRKSt9nothrow_t")

DELETE_WRAPPER(_ZdlPv, "_ZdlPv", (void *p), (p))
DELETE_WRAPPER(_ZdaPv, "_ZdaPv", (void *p), (p))
DELETE_WRAPPER(_ZdlPvm, "_ZdlPvm", (void *p, size_t n), (p, n))
DELETE_WRAPPER(_ZdaPvm, "_ZdaPvm", (void *p, size_t n), (p, n))
DELETE_WRAPPER(_ZdlPvRKSt9nothrow_t, "_ZdlPvRKSt9nothrow_t", (void *p, const void *nt), (p, nt))
DELETE_WRAPPER(_ZdaPvRKSt9nothrow_t, "_ZdaPvRKSt9nothrow_t", (void *p, const void *nt), (p, nt))
DELETE_WRAPPER(_ZdlPvSt11align_val_t, "_ZdlPvSt11align_val_t", (void *p, size_t a), (p, a))
DELETE_WRAPPER(_ZdaPvSt11align_val_t, "_ZdaPvSt11align_val_t", (void *p, size_t a), (p, a))
DELETE_WRAPPER(_ZdlPvmSt11align_val_t, "_ZdlPvmSt11align_val_t", (void *p, size_t n, size_t a),
	       (p, n, a))
DELETE_WRAPPER(_ZdaPvmSt11align_val_t, "_ZdaPvmSt11align_val_t", (void *p, size_t n, size_t a),
	       (p, n, a))
DELETE_WRAPPER(_ZdlPvSt11align_val_tRKSt9nothrow_t, "_ZdlPvSt11align_val_tRKSt9nothrow_t",
	       (void *p, size_t a, const void *nt), (p, a, nt))
DELETE_WRAPPER(_ZdaPvSt11align_val_tRKSt9nothrow_t, "_ZdaPvSt11align_val_tRKSt9nothrow_t",
	       (void *p, size_t a, const void *nt), (p, a, nt))

/* ---- dlopen: the new object joins the module map at once ---- */

typedef void *(*dlopen_fn)(const char *, int);

EXPORT void *dlopen(const char *file, int flags)
{
	static dlopen_fn real_dlopen;
	if (unlikely(!real_dlopen)) {
		tt_guard_enter();
		real_dlopen = (dlopen_fn)dlsym(RTLD_NEXT, "dlopen");
		tt_guard_leave();
		if (!real_dlopen)
			return NULL;
	}
	void *h = real_dlopen(file, flags);
	if (h && load_relaxed(&tt_active_gen)) {
		/* Before the program can call into it: frames there validate, and the map
		 * that names it is written even if it is closed before the writer's pass. */
		int saved = errno;
		tt_guard_enter();
		modules_refresh();
		tt_guard_leave();
		tt_wake_writer();
		errno = saved;
	}
	return h;
}
