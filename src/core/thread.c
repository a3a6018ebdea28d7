/* SPDX-License-Identifier: MIT */
/* Thread handles: creation (one mmap), stack bounds, register/unregister hand-over. */
#define _GNU_SOURCE
#include "thread.h"

#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../common/clock.h"
#include "nofork.h"
#include "prefault.h"
#include "registry.h"
#include "tracer.h"

__thread struct thagtrace_thread *tt_self __attribute__((tls_model("initial-exec")));
__thread unsigned tt_guard __attribute__((tls_model("initial-exec")));
_Atomic uint64_t tt_untraced_allocs, tt_untraced_bytes, tt_untraced_frees;
_Atomic(struct thagtrace_thread *) tt_exited_handle;
static _Atomic int exited_lock;

struct thagtrace_thread *thread_exited_take(void)
{
	struct thagtrace_thread *t = load_acquire(&tt_exited_handle);
	int expected = 0;
	if (!t || !atomic_compare_exchange_strong_explicit(
		      &exited_lock, &expected, 1, memory_order_acquire, memory_order_relaxed))
		return NULL;
	return t;
}

void thread_exited_release(void)
{
	store_release(&exited_lock, 0);
}

static size_t round_up(size_t v, size_t a)
{
	return (v + a - 1) / a * a;
}

static void stack_bounds(struct thagtrace_thread *t)
{
	pthread_attr_t attr;
	void *addr;
	size_t size;
	if (pthread_getattr_np(pthread_self(), &attr) != 0)
		return;
	if (pthread_attr_getstack(&attr, &addr, &size) == 0) {
		t->stack_lo = (uintptr_t)addr;
		t->stack_hi = (uintptr_t)addr + size;
	}
	pthread_attr_destroy(&attr);
}

void thread_rename(struct thagtrace_thread *t, const char *name)
{
	uint64_t w[2] = {0, 0};
	memcpy(w, name, strnlen(name, sizeof(w) - 1));
	uint32_t s = load_relaxed(&t->name_seq);
	store_relaxed(&t->name_seq, s + 1);
	atomic_thread_fence(memory_order_release);
	store_relaxed(&t->name_w[0], w[0]);
	store_relaxed(&t->name_w[1], w[1]);
	store_release(&t->name_seq, s + 2);
}

uint32_t thread_name(struct thagtrace_thread *t, char out[16])
{
	uint64_t w[2];
	uint32_t s = 1;
	for (int tries = 0; tries < 100; tries++) {
		s = load_acquire(&t->name_seq);
		w[0] = load_relaxed(&t->name_w[0]);
		w[1] = load_relaxed(&t->name_w[1]);
		atomic_thread_fence(memory_order_acquire);
		if (!(s & 1) && load_relaxed(&t->name_seq) == s)
			break;
	}
	memcpy(out, w, 16);
	out[15] = '\0';
	return s;
}

/*
 * Handles of ended threads, kept for the next threads to register. Unmapping a
 * handle interrupts every other core running the program to flush its TLB: a
 * program that starts threads by the thousand, each living a moment, paid that
 * twice a thread (handle and call-site table), and mapping them again: 10 000
 * threads 8 at a time took 5.3 s traced against 1.3 s untraced, 1.9 s with handles
 * kept (bench/thread_churn.sh, output on tmpfs). The writer puts a handle
 * here once it is unlinked (thread_recycle); a registering thread takes one
 * with an atomic exchange, so no two get the same one and a signal handler
 * registering midway is safe. Bounded: a kept handle holds what its thread
 * mapped, its ring's pages as far as the thread used them (~56 KiB for a thread
 * that recorded little, 280 KiB for one that went round its ring).
 */
#define POOL_SLOTS 64
static _Atomic(struct thagtrace_thread *) pool[POOL_SLOTS];

static struct thagtrace_thread *pool_take(size_t total)
{
	for (unsigned i = 0; i < POOL_SLOTS; i++) {
		if (!load_relaxed(&pool[i]))
			continue;
		struct thagtrace_thread *t = exchange_acq_rel(&pool[i], NULL);
		if (!t)
			continue;
		if (t->map_bytes == total)
			return t;
		thread_destroy(t); /* another session's ring size */
	}
	return NULL;
}

void thread_fork_child(void)
{
	/* The kept handles are the parent's memory, wiped here (nofork.h). */
	for (unsigned i = 0; i < POOL_SLOTS; i++)
		store_relaxed(&pool[i], NULL);
	store_relaxed(&tt_retiring, 0); /* the parent's backlog */
	store_release(&tt_exited_handle, NULL);
	store_relaxed(&exited_lock, 0); /* a parent's thread may have held it */
	tt_self = NULL;
}

void thread_recycle(struct thagtrace_thread *t)
{
	unsigned i = 0;
	while (i < POOL_SLOTS && load_relaxed(&pool[i]))
		i++;
	/* Not the session's spare handle; a full pool, or no table, unmaps. */
	if (i == POOL_SLOTS || t->files_on_data) {
		thread_destroy(t);
		return;
	}
	/* What the writer kept for the thread goes; the table is emptied. */
	encode_buf_destroy(&t->pending);
	sink_file_forget(&t->events); /* the next thread creates its own */
	sink_file_forget(&t->freq);
	if (sites_recycle(&t->sites) != 0) {
		thread_destroy(t);
		return;
	}
	/* Release: the emptied table and the rest are seen by the taker. Only the
	 * writer fills slots, so slot i is still empty. */
	store_release(&pool[i], t);
}

/* A kept handle as fresh from mmap: zeroed, but for its mapping, its ring's pages
 * mapped so far and its emptied call-site table. */
static void handle_reset(struct thagtrace_thread *t, size_t head)
{
	size_t total = t->map_bytes;
	uint64_t mapped = t->ring.fault_mark;
	struct sites sites;
	memcpy(&sites, &t->sites, sizeof(sites));
	memset(t, 0, sizeof(*t));
	t->map_bytes = total;
	memcpy(&t->sites, &sites, sizeof(sites));
	ring_init(&t->ring, (char *)t + head, total - head);
	ring_fault_init(&t->ring, mapped); /* UINT64_MAX: all mapped, or never ahead */
}

_Atomic unsigned tt_retiring;

/* Handles of the session so far, for the first threads' larger rings. */
static _Atomic unsigned handles_made;

void thread_session_reset(void)
{
	store_relaxed(&handles_made, 0);
}

static uint32_t thread_ring_kb(bool spare)
{
	if (spare || !tt_cfg.ring_kb_first)
		return tt_cfg.ring_kb;
	unsigned n = atomic_fetch_add_explicit(&handles_made, 1, memory_order_relaxed);
	return n < THAGTRACE_FIRST_THREADS ? tt_cfg.ring_kb_first : tt_cfg.ring_kb;
}

struct thagtrace_thread *thread_create(const char *name, uint64_t generation, bool spare, int *err)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t head = round_up(sizeof(struct thagtrace_thread), page);
	size_t ring_bytes = (size_t)thread_ring_kb(spare) * 1024;
	size_t total = head + ring_bytes;
	struct thagtrace_thread *t = spare ? NULL : pool_take(total);
	if (t) {
		handle_reset(t, head);
	} else {
		void *p =
		    mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED) {
			*err = THAGTRACE_ENOMEM;
			return NULL;
		}
		nofork(p, total);
		t = p; /* zero-filled */
		ring_init(&t->ring, (char *)p + head, ring_bytes);
		/* The handle's pages and the ring's first stretch in one call, not a fault
		 * a page; the rest of the ring as the producer reaches it. */
		size_t first = ring_bytes < RING_FAULT_FIRST ? ring_bytes : RING_FAULT_FIRST;
		if (prefault(p, head + first))
			ring_fault_init(&t->ring, first);
		if (sites_init(&t->sites) != 0) {
			munmap(p, total);
			*err = THAGTRACE_ENOMEM;
			return NULL;
		}
		t->map_bytes = total;
	}
	t->generation = generation;
	t->max_frames = tt_cfg.max_frames;
	t->events = t->freq = SINK_FILE_NONE;
	encode_buf_init(&t->pending);
	t->pending.nofork = true;
	t->pid = (int32_t)getpid();
	t->tid = spare ? 0 : (int32_t)syscall(SYS_gettid);
	t->start_ticks = tt_ticks();
	t->name_given = name != NULL;
	char buf[16] = "";
	if (!name)
		pthread_getname_np(pthread_self(), buf, sizeof(buf));
	thread_rename(t, name ? name : buf);
	if (spare) {
		/* Shared by ending threads: no stack of its own to bound a walk (events
		 * carry their call site), files only once it has events. */
		t->files_on_data = 1;
		t->refs = 1;
	} else {
		stack_bounds(t);
	}
	/* With a seed of the user's, each thread's draws follow from it and from the
	 * order threads registered in (not their ids, which differ from run to run):
	 * a run that registers its threads in the same order samples alike. */
	static _Atomic uint64_t registered;
	uint64_t seq = fetch_add_relaxed(&registered, 1);
	sampler_init(&t->sampler, &tt_sampling, tt_cfg.seed, tt_cfg.seed ? seq : (uint64_t)t->tid);
	/* Last: pairs with the writer's load_acquire(&state) in its pass, so everything
	 * set up above is visible to it however the list publication orders. */
	store_release(&t->state, TH_ACTIVE);
	return t;
}

void thread_destroy(struct thagtrace_thread *t)
{
	if (!t)
		return;
	sites_fini(&t->sites);
	encode_buf_destroy(&t->pending); /* a fork child's: the parent's to write, not ours */
	munmap(t, t->map_bytes);
}

static struct thagtrace_thread *register_guarded(const char *name, int *err);

struct thagtrace_thread *thagtrace_thread_register(const char *name, int *err)
{
	tt_guard_enter(); /* pthread_getattr_np and mmap must not be traced */
	struct thagtrace_thread *t = register_guarded(name, err);
	tt_guard_leave();
	return t;
}

static struct thagtrace_thread *register_guarded(const char *name, int *err)
{
	int dummy;
	if (!err)
		err = &dummy;
	*err = 0;
	uint64_t gen = load_acquire(&tt_active_gen);
	if (!gen) {
		*err = THAGTRACE_EDISABLED;
		return NULL;
	}
	/* The thread already has a handle (the pthread_create wrapper's, or an earlier
	 * registration): share it, so a thread has one ring and one pair of files. */
	struct thagtrace_thread *cur = tt_self;
	if (cur && cur != THREAD_EXITED && cur->generation == gen &&
	    load_relaxed(&cur->state) == TH_ACTIVE) {
		cur->refs++;
		return cur;
	}
	struct thagtrace_thread *t = thread_create(name, gen, false, err);
	if (!t)
		return NULL;
	if (registry_add(t, gen) != 0) {
		/* The session ended while we were setting up. */
		thread_destroy(t);
		*err = THAGTRACE_EDISABLED;
		return NULL;
	}
	t->refs = 1;
	tt_self = t; /* the interposer records through the same handle */
	return t;
}

void thagtrace_thread_unregister(struct thagtrace_thread *t)
{
	if (!t || t == THREAD_EXITED)
		return;
	if (t->refs > 1) {
		t->refs--; /* another registration of this thread still holds it */
		return;
	}
	if (tt_self == t)
		tt_self = NULL;
	uint32_t expected = TH_ACTIVE;
	/* Release: every event this thread recorded happens-before the writer's
	 * load_acquire(&state) that sees RETIRING and drains the ring to the end. */
	if (atomic_compare_exchange_strong_explicit(&t->state, &expected, TH_RETIRING,
						    memory_order_acq_rel, memory_order_acquire)) {
		fetch_add_relaxed(&tt_retiring, 1);
		tt_wake_writer();
		return;
	}
	/* ORPHANED: the session stopped, the writer closed our files and dropped the
	 * handle from its list; the end is ours. */
	tt_guard_enter();
	thread_destroy(t);
	tt_guard_leave();
}

int thagtrace_thread_stats(const struct thagtrace_thread *ct, struct thagtrace_thread_stats *out)
{
	if (!ct || !out)
		return THAGTRACE_EINVAL;
	struct thagtrace_thread *t = (struct thagtrace_thread *)ct;
	out->emitted = thread_emitted(t);
	out->recorded = load_relaxed(&t->ring.recorded);
	out->dropped = thread_dropped(t);
	return 0;
}
