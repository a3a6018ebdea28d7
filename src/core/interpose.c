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
#include <link.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

#include "interpose.h"
#include "blocktag.h"
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
	size_t mark; /* BLOCKTAG_MARK: a free with tags takes its slow path, which
		      * knows the arena (the word is never a valid tag) */
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
	h->mark = BLOCKTAG_MARK;
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

/* ---- block tags (blocktag.h): sampled blocks say so themselves ---- */

uint64_t blocktag_secret;
/* Sampled blocks get a tag: the next allocator is glibc's, and no library that
 * binds free to libc directly (RTLD_DEEPBIND) has been loaded since. */
static _Atomic bool tags_new;
/* Frees look for a tag below their pointer: set once, with tags_new; never
 * cleared (tagged blocks may be alive), and glibc's word there is always readable. */
static _Atomic bool tags_read;
static size_t page_size = 4096; /* valloc's alignment, from sysconf with the tags */

/*
 * The object that holds code at f: its load address and the file's base name
 * ("" for the program). _dl_find_object, not dladdr: dladdr also finds the nearest
 * symbol, a walk of the object's whole symbol table (~90 000 instructions in
 * libc.so.6), and the checks below made a dozen of them at every process start:
 * 60 % of what loading the tracer cost a short-lived program.
 */
static bool object_of(const void *f, void **base, const char **name)
{
	struct dl_find_object obj;
	if (!f || _dl_find_object((void *)f, &obj) != 0 || !obj.dlfo_link_map)
		return false;
	const char *path = obj.dlfo_link_map->l_name ? obj.dlfo_link_map->l_name : "";
	const char *slash = strrchr(path, '/');
	*base = obj.dlfo_map_start;
	*name = slash ? slash + 1 : path;
	return true;
}

/* Is `f` defined in glibc's libc.so.6, in the object `base`? */
static bool in_libc(void *f, void **base)
{
	void *at;
	const char *name;
	if (!object_of(f, &at, &name) || strcmp(name, "libc.so.6") != 0 || (*base && *base != at))
		return false;
	*base = at;
	return true;
}

bool interpose_blocktags(bool want)
{
#if defined(__x86_64__)
	if (!want || load_relaxed(&tags_read))
		return load_relaxed(&tags_read);
	/* Every function that takes or returns a block must be glibc's: its chunks keep
	 * their size, a multiple of 16 with flags in bits 0-2, just below the pointer. */
	void *base = NULL;
	if (!in_libc((void *)real.malloc, &base) || !in_libc((void *)real.free, &base) ||
	    !in_libc((void *)real.calloc, &base) || !in_libc((void *)real.realloc, &base) ||
	    !in_libc((void *)real.posix_memalign, &base) ||
	    !in_libc((void *)real.aligned_alloc, &base) || !in_libc((void *)real.memalign, &base) ||
	    !in_libc((void *)real.valloc, &base) || !in_libc((void *)real.pvalloc, &base) ||
	    !in_libc((void *)real.malloc_usable_size, &base))
		return false;
	const unsigned char *r = (const unsigned char *)getauxval(AT_RANDOM);
	uint64_t x = tt_ticks() ^ (uint64_t)(uintptr_t)&base;
	if (r)
		for (int i = 0; i < 16; i++)
			x = (x ^ r[i]) * 0x100000001B3ull;
	blocktag_secret = x;
	long ps = sysconf(_SC_PAGESIZE);
	if (ps > 0)
		page_size = (size_t)ps;
	store_release(&tags_read, true);
	store_release(&tags_new, true);
	return true;
#else
	(void)want;
	(void)in_libc;
	return false;
#endif
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

/* Every allocation that succeeded, untagged: counted, sampled, recorded. The fast
 * path needs a live handle of this thread, no guard, and the general path does the
 * rest. */
static inline __attribute__((always_inline)) void on_alloc(void *p, size_t n, uintptr_t site,
							   uintptr_t fp)
{
	struct thagtrace_thread *t = tt_self;
	if (likely((uintptr_t)t > (uintptr_t)THREAD_EXITED && tt_guard == 0) &&
	    likely(record_alloc_fast(t, p, n, site, fp)))
		return;
	alloc_general(p, n, site, fp);
}

/*
 * With tags, an allocation is decided before it is made (its size depends on the
 * draw): alloc_begin counts and draws, the wrapper asks the real allocator for
 * n + pad bytes, alloc_end records a sampled block and tags it, or takes the count
 * back if the allocation failed.
 */
struct alloc_ticket {
	struct thagtrace_thread *t;
	uintptr_t site;
	size_t n;
	size_t pad;   /* 0: untagged (unsampled, or in the freeset) */
	double p;     /* the probability it is recorded with; 0: not recorded */
	bool counted; /* in t's call-site table: taken back if the allocation fails */
	bool spare;   /* t is the exited threads' handle, entered until alloc_end */
};

/* alloc_begin's general path, as alloc_general's. False: not tracing, the caller
 * passes the call through. */
static __attribute__((noinline)) bool alloc_decide_general(struct alloc_ticket *k)
{
	if (!tracing())
		return false;
	struct thagtrace_thread *t = tt_self;
	if (unlikely(!thread_auto_current(t))) {
		t = thread_auto_self(k->n, true);
		if (!t)
			return true; /* counted as untraced */
		k->spare = thread_auto_is_spare(t);
	}
	if (thread_enter(t) != 0) {
		if (k->spare)
			thread_exited_release();
		k->spare = false;
		return true; /* counted as a nested drop */
	}
	k->t = t;
	k->p = record_decide_at(t, k->n, k->site);
	k->counted = true;
	/* The spare handle stays ours, entered, until the block is recorded. */
	if (!k->spare || k->p == 0.0) {
		thread_leave(t);
		if (k->spare)
			thread_exited_release();
		k->spare = false;
	}
	return true;
}

/* A sampled allocation's ticket: its pad, unless mode all (every free is recorded:
 * no tag needed) or the block cannot be tagged (too aligned to move, or too large
 * to grow): then it goes in the freeset. */
static __attribute__((noinline)) void ticket_sampled(struct alloc_ticket *k,
						     struct thagtrace_thread *t, size_t n,
						     size_t align, uintptr_t site, double p)
{
	*k = (struct alloc_ticket){.t = t, .site = site, .n = n, .p = p, .counted = true};
	size_t pad = blocktag_pad(align);
	if (tt_sampling.mode != THAGTRACE_SAMPLE_ALL && n + pad >= n)
		k->pad = pad;
}

/* alloc_begin's outcomes. */
enum {
	BEGIN_UNTAGGED, /* no tags (not glibc's allocator, or not tracing): allocate n,
			 * then on_alloc */
	BEGIN_PLAIN,	/* counted, not sampled: allocate n, then plain_end */
	BEGIN_TICKET	/* allocate n + k->pad, then alloc_end */
};

/* The common case of an allocation decided before it is made: tags, a live handle
 * (*t), a known site. True with *p the draw; false, nothing counted, when anything
 * is uncommon. */
static inline __attribute__((always_inline)) bool
decide_common(size_t n, uintptr_t site, struct thagtrace_thread **t, double *p)
{
	*t = tt_self;
	return likely(load_acquire(&tags_new)) &&
	       likely((uintptr_t)*t > (uintptr_t)THREAD_EXITED && tt_guard == 0) &&
	       likely(record_decide_fast(*t, n, site, p));
}

/*
 * Decide about an allocation of n bytes of alignment `align` (0: malloc's) from
 * `site`, before it is made. The common case (a live handle, a known site, not
 * sampled) stays in registers: k is written only for a ticket.
 */
static inline __attribute__((always_inline)) int alloc_begin(struct alloc_ticket *k, size_t n,
							     size_t align, uintptr_t site)
{
	struct thagtrace_thread *t;
	double p;
	if (decide_common(n, site, &t, &p)) {
		if (likely(p == 0.0))
			return BEGIN_PLAIN;
		ticket_sampled(k, t, n, align, site, p);
		return BEGIN_TICKET;
	}
	if (!load_acquire(&tags_new))
		return BEGIN_UNTAGGED;
	*k = (struct alloc_ticket){.t = t, .site = site, .n = n};
	if (!alloc_decide_general(k))
		return BEGIN_UNTAGGED;
	if (k->p != 0.0) {
		bool spare = k->spare;
		ticket_sampled(k, k->t, n, align, site, k->p);
		k->spare = spare;
	}
	return BEGIN_TICKET;
}

/* alloc_begin for the wrappers off the hot path: a plain outcome as a ticket
 * too. False: BEGIN_UNTAGGED. */
static inline bool alloc_begin_ticket(struct alloc_ticket *k, size_t n, size_t align,
				      uintptr_t site)
{
	switch (alloc_begin(k, n, align, site)) {
	case BEGIN_PLAIN:
		*k = (struct alloc_ticket){.t = tt_self, .site = site, .n = n, .counted = true};
		return true;
	case BEGIN_TICKET:
		return true;
	default:
		return false;
	}
}

/* The allocation failed: take its count back. */
static __attribute__((noinline)) void *alloc_failed(struct alloc_ticket *k)
{
	int saved = errno;
	struct thagtrace_thread *t = k->t;
	if (k->counted && (k->spare || thread_enter(t) == 0)) {
		record_uncount(t, k->site, k->n);
		thread_leave(t);
	}
	if (k->spare)
		thread_exited_release();
	errno = saved;
	return NULL;
}

/* A plain allocation (BEGIN_PLAIN) failed: take its count back. */
static __attribute__((noinline)) void *plain_failed(size_t n, uintptr_t site)
{
	struct alloc_ticket k = {.t = tt_self, .site = site, .n = n, .counted = true};
	return alloc_failed(&k);
}

static inline __attribute__((always_inline)) void *plain_end(void *b, size_t n, uintptr_t site)
{
	if (likely(b != NULL))
		return b;
	return plain_failed(n, site);
}

/* A sampled block b came back: record it at base + pad, tagged. */
static __attribute__((noinline)) void *alloc_record(struct alloc_ticket *k, void *b, uintptr_t fp)
{
	struct thagtrace_thread *t = k->t;
	void *p = (char *)b + k->pad;
	bool recorded = false;
	if (k->spare || thread_enter(t) == 0) {
		recorded = record_sampled_alloc(t, p, k->n, k->p, k->site, fp, k->pad == 0) == 0;
		thread_leave(t);
	}
	if (k->spare)
		thread_exited_release();
	if (k->pad)
		blocktag_set(p, blocktag_make(p, k->pad, recorded, t->generation));
	return p;
}

/* The real allocator returned b for alloc_begin's n + pad bytes: the program's
 * pointer. `fp` is the wrapper's frame, as for on_alloc. */
static inline __attribute__((always_inline)) void *alloc_end(struct alloc_ticket *k, void *b,
							     uintptr_t fp)
{
	if (unlikely(b == NULL))
		return alloc_failed(k);
	if (likely(k->p == 0.0))
		return b;
	return alloc_record(k, b, fp);
}

/*
 * The body of every allocation wrapper that returns its block: REAL(want) is the
 * real call for `want` bytes, `site` the call site and `fp` the frame whose return
 * address it is. Decided first (with tags), or allocated first and then counted
 * (without).
 */
#define TRACED_ALLOC_AT(n, align, REAL, site, fp)                                                  \
	do {                                                                                       \
		struct alloc_ticket k_;                                                            \
		switch (alloc_begin(&k_, (n), (align), (site))) {                                  \
		case BEGIN_PLAIN:                                                                  \
			return plain_end(REAL(n), (n), (site));                                    \
		case BEGIN_TICKET:                                                                 \
			return alloc_end(&k_, REAL((n) + k_.pad), (fp));                           \
		default:                                                                           \
			break;                                                                     \
		}                                                                                  \
		void *p_ = REAL(n);                                                                \
		if (likely(p_ != NULL))                                                            \
			on_alloc(p_, (n), (site), (fp));                                           \
		return p_;                                                                         \
	} while (0)

#define TRACED_ALLOC(n, align, REAL) TRACED_ALLOC_AT(n, align, REAL, CALL_SITE, FRAME)

/* A result through an empty asm: the call that made it is not a tail call, so the
 * caller's frame, passed as `fp`, is still there while the callee walks from it. */
static inline __attribute__((always_inline)) void *kept_frame(void *p)
{
	__asm__ volatile("" : "+r"(p));
	return p;
}

/*
 * A free of p stamped `ts` (before its real call, so no reuse of p's address can be
 * recorded ahead of it), on t (entered): pushed when p's allocation was recorded.
 * `tagged`: its tag says so; else in mode all, or when p was in the freeset (it
 * leaves it).
 */
static void push_free_if_recorded(struct thagtrace_thread *t, void *p, bool tagged, uint64_t ts)
{
	if (tagged || tt_sampling.mode == THAGTRACE_SAMPLE_ALL || freeset_remove((uintptr_t)p))
		record_push_free(t, p, ts);
}

/* push_free_if_recorded on this thread's handle, found and entered here. */
static __attribute__((noinline)) void free_record_stamped(void *p, bool tagged, uint64_t ts)
{
	struct thagtrace_thread *t = tt_self;
	bool spare = false; /* the slow path lent us the exited threads' handle */
	if (unlikely(!thread_auto_current(t))) {
		t = thread_auto_self(0, false);
		spare = t && thread_auto_is_spare(t);
	}
	if (t && thread_enter(t) == 0) {
		push_free_if_recorded(t, p, tagged, ts);
		thread_leave(t);
	}
	if (unlikely(spare))
		thread_exited_release();
}

/* A free that may need recording (tagged, maybe in the freeset, or mode all),
 * recorded before the real free. */
static __attribute__((noinline)) void free_general(void *p, bool tagged)
{
	if (p == NULL || !tracing())
		return;
	if (!tagged && tt_sampling.mode != THAGTRACE_SAMPLE_ALL && !freeset_maybe((uintptr_t)p))
		return; /* not sampled: no handle needed, nothing to record */
	free_record_stamped(p, tagged, tt_ticks());
}

/* A tagged block's free: recorded if its allocation was (in this session); the
 * real free gets the block's own start. */
static __attribute__((noinline)) void *free_tagged(void *p, uint64_t w)
{
	if (blocktag_recorded_in(w, load_relaxed(&tt_active_gen)))
		free_general(p, true);
	blocktag_set(p, 0);
	return (char *)p - blocktag_pad_of(w);
}

/* p's tag, or 0: a plain block (or no tags). */
static inline uint64_t tag_of(const void *p)
{
	if (likely(load_acquire(&tags_read)) && likely(p != NULL)) {
		uint64_t w = blocktag_word(p);
		if (unlikely(w & BLOCKTAG_MARK) && blocktag_valid(p, w))
			return w;
	}
	return 0;
}

/*
 * Every free of a program's pointer p (not from the bootstrap arena): records it
 * when needed and returns what the real free takes. An untagged free with no
 * sampled pointer outside tags costs the word below p, which the real free reads
 * next, and one read-mostly global.
 */
static inline __attribute__((always_inline)) void *on_free(void *p)
{
	uint64_t w = tag_of(p);
	if (unlikely(w != 0))
		return free_tagged(p, w);
	if (unlikely(freeset_gate_may((uintptr_t)p)))
		free_general(p, false);
	return p;
}

/* ---- C allocation functions ---- */

#define REAL_MALLOC(want) real.malloc(want)

/* malloc's sampled block (its count and draw done): allocated padded and recorded. */
static __attribute__((noinline)) void *malloc_sampled(struct thagtrace_thread *t, size_t n,
						      uintptr_t site, double p, uintptr_t fp)
{
	struct alloc_ticket k;
	ticket_sampled(&k, t, n, 0, site, p);
	return alloc_end(&k, real.malloc(n + k.pad), fp);
}

/* malloc in any other state (no tags, no live handle, a guard, a new site, ...). */
static __attribute__((noinline)) void *malloc_other(size_t n, uintptr_t site, uintptr_t fp)
{
	TRACED_ALLOC_AT(n, 0, REAL_MALLOC, site, fp);
}

/*
 * The common case inline: a live handle, tags, a known site, not sampled. It keeps
 * n and the site across the real call (to take the count back should it fail) and
 * nothing else, so it saves two registers, not the six the whole body needs.
 */
EXPORT void *malloc(size_t n)
{
	struct thagtrace_thread *t;
	double p;
	if (decide_common(n, CALL_SITE, &t, &p)) {
		if (likely(p == 0.0))
			return plain_end(real.malloc(n), n, CALL_SITE);
		return kept_frame(malloc_sampled(t, n, CALL_SITE, p, FRAME));
	}
	return kept_frame(malloc_other(n, CALL_SITE, FRAME));
}

/* free's uncommon cases, whole: the bootstrap arena, NULL, a block that may be
 * tagged, or a gate to look at. */
static __attribute__((noinline)) void free_slow(void *p)
{
	if (unlikely(in_boot(p)))
		return;
	real.free(on_free(p));
}

EXPORT void free(void *p)
{
	/* The common case in a few loads and a tail call, no frame: bit 3 clear below
	 * p (no tag, and not the bootstrap arena, whose blocks have it set), no gate
	 * open. */
	if (likely(load_acquire(&tags_read))) {
		if (likely(p != NULL) && likely(!(blocktag_word(p) & BLOCKTAG_MARK)) &&
		    likely(load_relaxed(&freeset_gate) == NULL))
			return real.free(p);
		return free_slow(p);
	}
	if (unlikely(in_boot(p)))
		return;
	if (unlikely(load_relaxed(&freeset_gate) != NULL))
		return free_slow(p);
	real.free(p);
}

/* C23's sized frees (glibc 2.40 on): a tagged block must never reach libc's. */
EXPORT void free_sized(void *p, size_t n);
EXPORT void free_aligned_sized(void *p, size_t align, size_t n);
EXPORT void free_sized(void *p, size_t n)
{
	(void)n;
	free(p);
}

EXPORT void free_aligned_sized(void *p, size_t align, size_t n)
{
	(void)align;
	(void)n;
	free(p);
}

/* calloc in any other state than its common case (see calloc). */
static __attribute__((noinline)) void *calloc_other(size_t n, size_t m, uintptr_t site,
						    uintptr_t fp)
{
	size_t bytes;
	struct alloc_ticket k;
	if (!__builtin_mul_overflow(n, m, &bytes)) {
		switch (alloc_begin(&k, bytes, 0, site)) {
		case BEGIN_PLAIN:
			return plain_end(real.calloc(n, m), bytes, site);
		case BEGIN_TICKET:
			return alloc_end(&k, real.calloc(1, bytes + k.pad), fp);
		default:
			break;
		}
	}
	void *p = real.calloc(n, m);
	if (likely(p != NULL))
		on_alloc(p, n * m, site, fp);
	return p;
}

/* calloc's sampled block (its count and draw done): allocated padded, recorded. */
static __attribute__((noinline)) void *calloc_sampled(struct thagtrace_thread *t, size_t bytes,
						      uintptr_t site, double p, uintptr_t fp)
{
	struct alloc_ticket k;
	ticket_sampled(&k, t, bytes, 0, site, p);
	return alloc_end(&k, real.calloc(1, bytes + k.pad), fp);
}

/* Its common case inline (tags, a live handle, a known site, not sampled), as
 * malloc's; a sampled block and every other state out of line. */
EXPORT void *calloc(size_t n, size_t m)
{
	size_t bytes;
	struct thagtrace_thread *t;
	double p;
	if (likely(!__builtin_mul_overflow(n, m, &bytes)) &&
	    decide_common(bytes, CALL_SITE, &t, &p)) {
		if (likely(p == 0.0))
			return plain_end(real.calloc(n, m), bytes, CALL_SITE);
		return kept_frame(calloc_sampled(t, bytes, CALL_SITE, p, FRAME));
	}
	return kept_frame(calloc_other(n, m, CALL_SITE, FRAME));
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
 * realloc without tags: the free first (stamped before the call), the allocation
 * after; nothing at all if the call fails and old stays live.
 */
static inline __attribute__((always_inline)) void *realloc_traced(void *old, size_t n,
								  uintptr_t site, uintptr_t fp)
{
	bool maybe = old && freeset_gate_may((uintptr_t)old);
	uint64_t ts = maybe ? tt_ticks() : 0;
	void *p = real.realloc(old, n);
	if (p == NULL && n != 0)
		return NULL;
	if (maybe)
		free_record_stamped(old, false, ts);
	if (p)
		on_alloc(p, n, site, fp);
	return p;
}

/* The bytes a program may use in its block p of tag w (0: untagged). */
static size_t usable_of(void *p, uint64_t w)
{
	size_t pad = w ? blocktag_pad_of(w) : 0;
	return real.malloc_usable_size((char *)p - pad) - pad;
}

/*
 * A block gains or loses the plain pad (0 <-> BLOCKTAG_MIN_PAD) across a realloc: the
 * real realloc still resizes it in place where it can, and the contents move by
 * the pad within the block. Moving it to a new block instead (a malloc, a copy, a
 * free) lays the program's heap out differently from its untraced run (more blocks
 * moved: bench_realloc). Returns the new base, or NULL with old as it was.
 */
static char *realloc_repad(char *old, uint64_t w, size_t n, size_t pad)
{
	size_t opad = w ? blocktag_pad_of(w) : 0;
	char *obase = old - opad;
	size_t keep = usable_of(old, w);
	if (keep > n)
		keep = n;
	if (opad == 0) { /* gains the pad: grow, then shift the contents up */
		char *b = real.realloc(obase, n + pad);
		if (b)
			memmove(b + pad, b, keep);
		return b;
	}
	/* Loses it: shift the contents down over the pad (and the tag), then resize. */
	memmove(obase, old, keep);
	char *b = real.realloc(obase, n);
	if (!b) { /* old is still obase's block, as it was before the shift */
		memmove(old, obase, keep);
		blocktag_set(old, w);
	}
	return b;
}

/* old (tag word w, 0: plain) to n bytes for ticket k (alloc_begin_ticket's or
 * ticket_sampled's): realloc_tags' second half, and realloc's for a sampled block. */
static void *realloc_ticketed(void *old, uint64_t w, size_t n, struct alloc_ticket *k, uintptr_t fp)
{
	size_t opad = w ? blocktag_pad_of(w) : 0;
	char *obase = old ? (char *)old - opad : NULL;
	bool record_free = old && (w ? blocktag_recorded_in(w, load_relaxed(&tt_active_gen))
				     : freeset_gate_may((uintptr_t)old));
	uint64_t ts = record_free ? tt_ticks() : 0;
	char *b;
	if (k->pad == opad && opad <= BLOCKTAG_MIN_PAD) {
		b = real.realloc(obase, n + opad); /* in place where the allocator can */
	} else if (old && k->pad + opad == BLOCKTAG_MIN_PAD) {
		b = realloc_repad(old, w, n, k->pad);
	} else {
		b = real.malloc(n + k->pad);
		if (b && old) {
			size_t keep = usable_of(old, w);
			memcpy(b + k->pad, old, keep < n ? keep : n);
			if (w)
				blocktag_set(old, 0);
			real.free(obase);
		}
	}
	if (!b)
		return alloc_failed(k);
	if (record_free) {
		if (k->spare) /* lent by alloc_begin, entered until alloc_end */
			push_free_if_recorded(k->t, old, w != 0, ts);
		else
			free_record_stamped(old, w != 0, ts);
	}
	return alloc_end(k, b, fp);
}

/*
 * realloc when tags are in play (old tagged, or new blocks may be): the old block
 * and the new one may differ in pad; across the plain pad realloc_repad keeps
 * glibc's realloc, across a larger (alignment) pad the block moves (a new block, a
 * copy, a free), as realloc may. The free is stamped before the call, the allocation
 * recorded after; a failure leaves old live and records nothing.
 */
static __attribute__((noinline)) void *realloc_tags(void *old, uint64_t w, size_t n, uintptr_t site,
						    uintptr_t fp)
{
	if (old && n == 0) { /* glibc's realloc(p, 0): frees p, returns NULL */
		free(old);
		return NULL;
	}
	struct alloc_ticket k;
	if (!alloc_begin_ticket(&k, n, 0, site)) {
		if (!w)
			return tracing() ? realloc_traced(old, n, site, fp) : real.realloc(old, n);
		/* A tagged block and no tag for the new one (not tracing, or tags
		 * turned off): move it to a plain block. */
		void *b = real.malloc(n);
		if (!b)
			return NULL;
		size_t keep = usable_of(old, w);
		memcpy(b, old, keep < n ? keep : n);
		free(old);
		on_alloc(b, n, site, fp);
		return b;
	}
	return realloc_ticketed(old, w, n, &k, fp);
}

static inline __attribute__((always_inline)) void *realloc_at(void *old, size_t n, uintptr_t site,
							      uintptr_t fp)
{
	if (unlikely(in_boot(old)))
		return boot_realloc(old, n);
	uint64_t w = tag_of(old);
	if (w || load_relaxed(&tags_new))
		return realloc_tags(old, w, n, site, fp);
	if (!tracing())
		return real.realloc(old, n);
	return realloc_traced(old, n, site, fp);
}

/* realloc in any other state than its common case (see realloc). */
static __attribute__((noinline)) void *realloc_other(void *old, size_t n, uintptr_t site,
						     uintptr_t fp)
{
	return realloc_at(old, n, site, fp);
}

/* realloc's sampled new block, for a plain old one (its count and draw done). */
static __attribute__((noinline)) void *realloc_sampled(struct thagtrace_thread *t, void *old,
						       size_t n, uintptr_t site, double p,
						       uintptr_t fp)
{
	struct alloc_ticket k;
	ticket_sampled(&k, t, n, 0, site, p);
	return realloc_ticketed(old, 0, n, &k, fp);
}

/*
 * The common case inline, as malloc's: a block that is neither tagged nor maybe in
 * the freeset (its free needs no record; the bootstrap arena's blocks read as
 * tagged), a size counted and not sampled: glibc's realloc, in place where it can.
 */
EXPORT void *realloc(void *old, size_t n)
{
	struct thagtrace_thread *t;
	double p;
	if (likely(old != NULL) && likely(n != 0) && likely(load_acquire(&tags_new)) &&
	    likely(!(blocktag_word(old) & BLOCKTAG_MARK)) &&
	    likely(load_relaxed(&freeset_gate) == NULL) && decide_common(n, CALL_SITE, &t, &p)) {
		if (likely(p == 0.0))
			return plain_end(real.realloc(old, n), n, CALL_SITE);
		return kept_frame(realloc_sampled(t, old, n, CALL_SITE, p, FRAME));
	}
	return kept_frame(realloc_other(old, n, CALL_SITE, FRAME));
}

EXPORT void *reallocarray(void *old, size_t n, size_t m)
{
	size_t bytes;
	if (__builtin_mul_overflow(n, m, &bytes)) {
		errno = ENOMEM;
		return NULL;
	}
	return realloc_at(old, bytes, CALL_SITE, FRAME);
}

EXPORT int posix_memalign(void **out, size_t align, size_t n)
{
	struct alloc_ticket k;
	if (likely(alloc_begin_ticket(&k, n, align, CALL_SITE))) {
		void *b = NULL;
		int rc = real.posix_memalign(&b, align, n + k.pad);
		if (rc != 0) {
			alloc_failed(&k);
			return rc;
		}
		*out = alloc_end(&k, b, FRAME);
		return 0;
	}
	int rc = real.posix_memalign(out, align, n);
	if (rc == 0 && *out)
		on_alloc(*out, n, CALL_SITE, FRAME);
	return rc;
}

/* aligned_alloc, memalign: (alignment, size) -> pointer. */
#define REAL_ALIGNED_ALLOC(want) real.aligned_alloc(align, want)
#define REAL_MEMALIGN(want)	 real.memalign(align, want)

EXPORT void *aligned_alloc(size_t align, size_t n)
{
	TRACED_ALLOC(n, align, REAL_ALIGNED_ALLOC);
}

EXPORT void *memalign(size_t align, size_t n)
{
	TRACED_ALLOC(n, align, REAL_MEMALIGN);
}

/* valloc, pvalloc: size -> page-aligned pointer (a tag's pad is then a page). */
#define REAL_VALLOC(want)  real.valloc(want)
#define REAL_PVALLOC(want) real.pvalloc(want)

EXPORT void *valloc(size_t n)
{
	TRACED_ALLOC(n, page_size, REAL_VALLOC);
}

EXPORT void *pvalloc(size_t n)
{
	TRACED_ALLOC(n, page_size, REAL_PVALLOC);
}

EXPORT size_t malloc_usable_size(void *p)
{
	if (in_boot(p))
		return boot_size(p);
	if (p == NULL)
		return 0;
	return usable_of(p, tag_of(p));
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

void *interpose_next(const char *name)
{
	tt_guard_enter();
	void *f = dlsym(RTLD_NEXT, name);
	tt_guard_leave();
	return f;
}

/*
 * libstdc++'s operators do nothing but call malloc and free (new loops on the
 * new-handler or throws bad_alloc when malloc fails). When they are the next
 * definitions and glibc's allocator is the real one, new calls the real malloc
 * itself and goes to libstdc++'s operator only when that fails, and delete frees:
 * the same blocks from the same allocator, without the four calls through
 * libstdc++ and back into our malloc and free under the guard (+416 instructions
 * a new[]/delete[] pair, against +88 for malloc/free). Another library's operators
 * (a sanitizer's, an allocator's) are always called as they are, and so is
 * libstdc++'s when malloc or free as the program sees them are not ours (the
 * program, or a library before us, defines its own: libstdc++'s new would call
 * that one, and so must we).
 */
static _Atomic int cxx_direct; /* 0: not known yet; 1: direct; -1: through them */

static __attribute__((noinline)) bool cxx_direct_check(void)
{
	bool direct = false;
	void *base = NULL, *self, *at;
	const char *name;
	/* What libstdc++'s operators would call: the first malloc and free in the
	 * global scope, which must be ours (in this object). */
	void *gm = dlsym(RTLD_DEFAULT, "malloc"), *gf = dlsym(RTLD_DEFAULT, "free");
	bool ours = object_of((void *)cxx_direct_check, &self, &name) &&
		    object_of(gm, &at, &name) && at == self && object_of(gf, &at, &name) &&
		    at == self;
	if (ours && in_libc((void *)real.malloc, &base) && in_libc((void *)real.free, &base)) {
		direct = true;
		static const char *const ops[] = {
		    "_Znwm",  "_Znam", "_ZnwmRKSt9nothrow_t", "_ZnamRKSt9nothrow_t",
		    "_ZdlPv", "_ZdaPv"};
		for (size_t i = 0; direct && i < sizeof(ops) / sizeof(ops[0]); i++)
			direct = object_of(interpose_next(ops[i]), &at, &name) &&
				 !strncmp(name, "libstdc++.so", 12);
	}
	store_relaxed(&cxx_direct, direct ? 1 : -1);
	return direct;
}

static inline bool cxx_is_direct(void)
{
	int d = load_relaxed(&cxx_direct);
	if (likely(d != 0))
		return d > 0;
	return cxx_direct_check();
}

/* One cached real operator per wrapper, looked up on first use. */
#define REAL(type, sym)                                                                            \
	static type real_fn;                                                                       \
	if (unlikely(!real_fn))                                                                    \
		real_fn = (type)interpose_next(sym);

/* An allocation counted by alloc_begin whose operator throws (bad_alloc) takes
 * its count back as the exception passes. */
struct new_pending {
	struct alloc_ticket *k; /* a ticket, or NULL */
	uintptr_t site;		/* a plain count (BEGIN_PLAIN), or 0 */
	size_t n;
};

static void new_unwind(struct new_pending *u)
{
	if (unlikely(u->k != NULL))
		alloc_failed(u->k);
	else if (unlikely(u->site != 0))
		plain_failed(u->n, u->site);
}

/*
 * One shape for every operator new: `n` the size, `align` the alignment (0: the
 * default), CALL the real operator with its size argument `want`, FALLBACK the C
 * function when the operator is not found.
 */
#define NEW_BODY_AT(CALL, FALLBACK, align, at_site, at_fp)                                         \
	struct alloc_ticket k;                                                                     \
	int how = alloc_begin(&k, n, align, (at_site));                                            \
	size_t want = how == BEGIN_TICKET ? n + k.pad : n;                                         \
	void *p = NULL;                                                                            \
	if ((align) == 0 && likely(cxx_is_direct()))                                               \
		p = real.malloc(want ? want : 1); /* libstdc++'s size 0 is 1 */                    \
	if (unlikely(p == NULL)) { /* not direct, or the handler loop and bad_alloc */             \
		struct new_pending u __attribute__((cleanup(new_unwind))) = {                      \
		    how == BEGIN_TICKET ? &k : NULL, how == BEGIN_PLAIN ? (at_site) : 0, n};       \
		GUARDED;                                                                           \
		p = real_fn ? CALL : FALLBACK;                                                     \
		u.k = NULL;                                                                        \
		u.site = 0;                                                                        \
	}                                                                                          \
	if (how == BEGIN_TICKET)                                                                   \
		return alloc_end(&k, p, (at_fp));                                                  \
	if (how == BEGIN_PLAIN)                                                                    \
		return plain_end(p, n, (at_site));                                                 \
	if (likely(p != NULL))                                                                     \
		on_alloc(p, n, (at_site), (at_fp));                                                \
	return p;

#define NEW_BODY(CALL, FALLBACK, align) NEW_BODY_AT(CALL, FALLBACK, align, CALL_SITE, FRAME)

/*
 * new's common case inline, as malloc's: direct operators, a live handle, tags, a
 * known site. A failed malloc takes its count back and goes the whole way
 * (cname##_other: the operator's new-handler loop, bad_alloc), counted again there.
 */
#define NEW_FAST(cname, ...)                                                                       \
	struct thagtrace_thread *t;                                                                \
	double pr;                                                                                 \
	if (likely(load_relaxed(&cxx_direct) > 0) && decide_common(n, CALL_SITE, &t, &pr)) {       \
		void *b;                                                                           \
		if (likely(pr == 0.0)) {                                                           \
			b = real.malloc(n ? n : 1);                                                \
			if (likely(b != NULL))                                                     \
				return b;                                                          \
			plain_failed(n, CALL_SITE);                                                \
		} else {                                                                           \
			b = kept_frame(malloc_sampled(t, n, CALL_SITE, pr, FRAME));                \
			if (likely(b != NULL))                                                     \
				return b;                                                          \
		}                                                                                  \
	}                                                                                          \
	return kept_frame(cname##_other(__VA_ARGS__, CALL_SITE, FRAME));

#define NEW_WRAPPER(cname, sym)                                                                    \
	static __attribute__((noinline)) void *cname##_other(size_t n, uintptr_t site,             \
							     uintptr_t fp){                        \
	    REAL(new_fn, sym) NEW_BODY_AT(real_fn(want), malloc(want), 0, site, fp)} EXPORT void * \
	cname(size_t n);                                                                           \
	EXPORT void *cname(size_t n)                                                               \
	{                                                                                          \
		NEW_FAST(cname, n)                                                                 \
	}
#define NEW_NOTHROW_WRAPPER(cname, sym)                                                            \
	static __attribute__((noinline)) void *cname##_other(size_t n, const void *nt,             \
							     uintptr_t site, uintptr_t fp){        \
	    REAL(new_nothrow_fn, sym)                                                              \
		NEW_BODY_AT(real_fn(want, nt), malloc(want), 0, site, fp)} EXPORT void *           \
	cname(size_t n, const void *nt);                                                           \
	EXPORT void *cname(size_t n, const void *nt)                                               \
	{                                                                                          \
		NEW_FAST(cname, n, nt)                                                             \
	}
#define NEW_ALIGNED_WRAPPER(cname, sym)                                                            \
	EXPORT void *cname(size_t n, size_t align);                                                \
	EXPORT void *cname(size_t n, size_t align)                                                 \
	{                                                                                          \
		REAL(new_aligned_fn, sym)                                                          \
		NEW_BODY(real_fn(want, align), aligned_alloc(align, want), align)                  \
	}
#define NEW_ALIGNED_NOTHROW_WRAPPER(cname, sym)                                                    \
	EXPORT void *cname(size_t n, size_t align, const void *nt);                                \
	EXPORT void *cname(size_t n, size_t align, const void *nt)                                 \
	{                                                                                          \
		REAL(new_aligned_nothrow_fn, sym)                                                  \
		NEW_BODY(real_fn(want, align, nt), aligned_alloc(align, want), align)              \
	}

/* Every delete shape: record the free, then the real operator under the guard (its
 * own free call must not record it twice), given the block's own start `b` and,
 * for a sized delete, the size it was allocated with (n + pad). */
#define DELETE_WRAPPER(cname, sym, params, args)                                                   \
	EXPORT void cname params;                                                                  \
	EXPORT void cname params                                                                   \
	{                                                                                          \
		typedef void(*fn_t) params;                                                        \
		REAL(fn_t, sym)                                                                    \
		if (p == NULL)                                                                     \
			return;                                                                    \
		void *b = on_free(p);                                                              \
		if (likely(cxx_is_direct())) {                                                     \
			real.free(b); /* what libstdc++'s every delete does */                     \
			return;                                                                    \
		}                                                                                  \
		size_t pad __attribute__((unused)) = (size_t)((char *)p - (char *)b);              \
		GUARDED;                                                                           \
		if (real_fn)                                                                       \
			real_fn args;                                                              \
		else                                                                               \
			free(b);                                                                   \
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

DELETE_WRAPPER(_ZdlPv, "_ZdlPv", (void *p), (b))
DELETE_WRAPPER(_ZdaPv, "_ZdaPv", (void *p), (b))
DELETE_WRAPPER(_ZdlPvm, "_ZdlPvm", (void *p, size_t n), (b, n + pad))
DELETE_WRAPPER(_ZdaPvm, "_ZdaPvm", (void *p, size_t n), (b, n + pad))
DELETE_WRAPPER(_ZdlPvRKSt9nothrow_t, "_ZdlPvRKSt9nothrow_t", (void *p, const void *nt), (b, nt))
DELETE_WRAPPER(_ZdaPvRKSt9nothrow_t, "_ZdaPvRKSt9nothrow_t", (void *p, const void *nt), (b, nt))
DELETE_WRAPPER(_ZdlPvSt11align_val_t, "_ZdlPvSt11align_val_t", (void *p, size_t a), (b, a))
DELETE_WRAPPER(_ZdaPvSt11align_val_t, "_ZdaPvSt11align_val_t", (void *p, size_t a), (b, a))
DELETE_WRAPPER(_ZdlPvmSt11align_val_t, "_ZdlPvmSt11align_val_t", (void *p, size_t n, size_t a),
	       (b, n + pad, a))
DELETE_WRAPPER(_ZdaPvmSt11align_val_t, "_ZdaPvmSt11align_val_t", (void *p, size_t n, size_t a),
	       (b, n + pad, a))
DELETE_WRAPPER(_ZdlPvSt11align_val_tRKSt9nothrow_t, "_ZdlPvSt11align_val_tRKSt9nothrow_t",
	       (void *p, size_t a, const void *nt), (b, a, nt))
DELETE_WRAPPER(_ZdaPvSt11align_val_tRKSt9nothrow_t, "_ZdaPvSt11align_val_tRKSt9nothrow_t",
	       (void *p, size_t a, const void *nt), (b, a, nt))

/* ---- dlopen: the new object joins the module map at once ---- */

typedef void *(*dlopen_fn)(const char *, int);

EXPORT void *dlopen(const char *file, int flags)
{
	static dlopen_fn real_dlopen;
	if (unlikely(!real_dlopen) && !(real_dlopen = (dlopen_fn)interpose_next("dlopen")))
		return NULL;
	if (flags & RTLD_DEEPBIND)
		/* Such a library calls libc's free directly, maybe on blocks of ours:
		 * from now on sampled blocks go in the freeset, untagged. */
		store_release(&tags_new, false);
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
