/* SPDX-License-Identifier: MIT */
/*
 * The per-thread handle: one mmap'd block holding the thread's ring, its stack cache
 * and its identity; its call-site table maps separately (it grows). Explicitly
 * allocated at register, freed by the writer after unregister: no TLS destructor.
 */
#ifndef TT_THREAD_H
#define TT_THREAD_H

#include <stdint.h>
#include <sys/types.h>
#include <urcu/list.h>

#include "encode.h"
#include "ring.h"
#include "sampler.h"
#include "sink.h"
#include "sites.h"

/* Ring record types (struct ring_rec.type); the writer turns each into file records. */
enum {
	EV_ALLOC = 1, /* struct ev_alloc; aux = frames that follow (0: stack_id known) */
	EV_FREE = 2,  /* struct ev_free */
};

/* ev_alloc.stack_flags bit: h.aux frames follow and define stack_id in the file. */
#define EV_STACK_DEFINES 0x80000000u

struct ev_alloc {
	struct ring_rec h;
	uint32_t stack_id;
	uint32_t stack_flags; /* TT_STACK_* when frames follow */
	uint64_t ts;
	uint64_t ptr;
	uint64_t size;
	double probability;
	uint64_t frames[]; /* h.aux of them, leaf first: defines stack_id */
};

struct ev_free {
	struct ring_rec h;
	uint64_t ts;
	uint64_t ptr;
};

/* Direct-mapped cache of the stacks this thread already wrote: a stack's frames go
 * to the file once, later events name it by id. A 64-bit hash stands for the frames
 * (see docs/format.md on collisions); an evicted stack is simply defined again under
 * a new id. */
#define STACK_CACHE_SLOTS 1024u
struct stack_cache_entry {
	uint64_t hash; /* 0 = empty */
	uint32_t id;
	uint32_t epoch; /* tt_modules_epoch when it was written */
};

/* Handle states. The owner moves ACTIVE -> RETIRING (unregister); the writer moves
 * ACTIVE -> ORPHANED at stop. Whoever loses the CAS race knows the other side owns
 * the handle's end: a RETIRING handle is freed by the writer, an ORPHANED one by
 * unregister. */
enum { TH_ACTIVE = 1, TH_RETIRING = 2, TH_ORPHANED = 3 };

struct thagtrace_thread {
	struct ring ring;

	/* Owner line: written by the owning thread only. busy is 1 while it records
	 * (the reentrancy guard too); stop() reads it after a membarrier. */
	tt_cacheline_aligned _Atomic uint32_t busy;
	uint32_t next_stack_id;
	uint32_t refs;		      /* registrations of this thread holding the handle */
	uint64_t generation;	      /* session it was registered in */
	uintptr_t stack_lo, stack_hi; /* 0, 0: bounds unknown, no frame walk */
	uint32_t max_frames;
	_Atomic uint64_t nested_drops; /* events from a nested (signal) call: RMW adds */
	_Atomic uint64_t shed;	       /* sampled allocations shed under load (shed.h) */
	uint32_t files_on_data;	       /* set before publication: open files only once events
					* or sites arrive (the spare handle) */
	_Atomic uint32_t lazy;	       /* registered on first allocation: the writer reclaims it
					* once the thread is gone (owner: relaxed store) */
	struct sampler sampler;
	struct sites sites;

	/* Handed over between owner and writer (CAS). */
	tt_cacheline_aligned _Atomic uint32_t state;

	/* Writer-private from here on. */
	tt_cacheline_aligned struct cds_list_head node; /* registry list (RCU) */
	struct thagtrace_thread *retire_next;
	struct sink_file events, freq; /* not created until the writer creates them */
	uint64_t drops_written;	       /* dropped count in the last DROPS record */
	uint64_t shed_written;	       /* and its shed count */
	uint64_t emitted_written;
	uint32_t name_seq_written; /* name_seq of the name last written (THREAD or NAME) */

	/* Identity: set at register, read-only after. */
	int32_t pid, tid;
	bool name_given; /* by the program: kept; otherwise its comm when files open */
	/* The name (16 bytes, NUL-padded): set before publication, then renamed by its
	 * owner (pthread_setname_np) under name_seq, odd while a rename is under way;
	 * read with thread_name. */
	_Atomic uint32_t name_seq;
	_Atomic uint64_t name_w[2];
	uint64_t start_ticks;
	size_t map_bytes;

	struct stack_cache_entry stack_cache[STACK_CACHE_SLOTS];

	/* Writer-private: the .bin's delta and probability state, and the thread's
	 * records encoded but not yet compressed (gathered across passes into larger
	 * frames; since_ns: when the oldest of them was drained, 0 when empty). */
	struct encode_events enc;
	struct encode_buf pending;
	uint64_t pending_since_ns;
};

/* Counters as the handle's owner and the writer see them (relaxed snapshot). */
static inline uint64_t thread_emitted(struct thagtrace_thread *t)
{
	return load_relaxed(&t->ring.emitted) + load_relaxed(&t->nested_drops);
}
static inline uint64_t thread_dropped(struct thagtrace_thread *t)
{
	return load_relaxed(&t->ring.dropped) + load_relaxed(&t->nested_drops);
}

/*
 * Per-thread pointers, initial-exec TLS and no destructor. tt_self: the thread's
 * handle for automatic tracing (the malloc interposer), shared with an explicit
 * thagtrace_thread_register of the same thread; THREAD_EXITED once the thread has
 * unregistered (it is ending: what it allocates now is counted, not recorded).
 * tt_guard: > 0 while the tracer itself runs on this thread, or for its own threads:
 * allocations then pass through untraced.
 */
#define THREAD_EXITED ((struct thagtrace_thread *)1)

/* Events of threads that had already unregistered (inside other libraries' TLS
 * destructors at thread exit, say), or could not register: counted (RMW adds, a
 * rare path), never lost silently; the process file's totals report them. */
extern _Atomic uint64_t tt_untraced_allocs, tt_untraced_bytes, tt_untraced_frees;
extern __thread struct thagtrace_thread *tt_self __attribute__((tls_model("initial-exec")));
extern __thread unsigned tt_guard __attribute__((tls_model("initial-exec")));

/*
 * Raise and lower the guard around the tracer's own work. The compiler barriers
 * matter: the compiler knows malloc and free as builtins that read no program
 * memory, and would otherwise move (or delete) a plain tt_guard++ / tt_guard--
 * around such a call.
 */
static inline void tt_guard_enter(void)
{
	tt_guard++;
	__asm__ volatile("" ::: "memory");
}

static inline void tt_guard_leave(void)
{
	__asm__ volatile("" ::: "memory");
	tt_guard--;
}

/*
 * The session's spare handle for threads that already unregistered (glibc frees a
 * thread's TLS blocks after its start routine's cleanup, for one): one ring shared
 * under a try-lock, so those events are recorded too, never waited for. Created at
 * start, never unmapped (a late user may still hold it); NULL when not running.
 */
extern _Atomic(struct thagtrace_thread *) tt_exited_handle;

/* Handles whose threads ended and that the writer has not yet taken back. A program
 * that starts threads faster than the writer can create their files (a thread
 * living a moment, tens of thousands a second) would pile them up without bound:
 * past RETIRING_MAX (some 50 KiB resident each), threads starting are recorded through the
 * exited-threads handle above (one shared pair of files) until the writer catches up. */
extern _Atomic unsigned tt_retiring;
#define RETIRING_MAX 8192
static inline bool thread_backlog_full(void)
{
	return atomic_load_explicit(&tt_retiring, memory_order_relaxed) >= RETIRING_MAX;
}

/* Take the spare handle for this event, or NULL if another thread holds it (the
 * caller counts the event instead). Release with thread_exited_release. */
struct thagtrace_thread *thread_exited_take(void);
void thread_exited_release(void);

/* A new session: its first THAGTRACE_FIRST_THREADS handles get rings of
 * ring_kb_first KiB (when set). */
void thread_session_reset(void);

/* Map and set up a handle for the calling thread, or the session's spare handle for
 * exited threads (`spare`: tid 0, no stack bounds, files only once it has events).
 * Everything is set before the handle's state is published. NULL with *err on
 * failure. */
struct thagtrace_thread *thread_create(const char *name, uint64_t generation, bool spare, int *err);

/* Owner: the thread's new name (at most 15 bytes are kept). */
void thread_rename(struct thagtrace_thread *t, const char *name);

/* Any thread: the handle's current name, NUL-terminated, into out[16]; returns
 * the name_seq it was read at (odd: a rename never seen finished, out may be torn). */
uint32_t thread_name(struct thagtrace_thread *t, char out[16]);

/* Unmap a handle; nobody may reference it any more (unlinked, and the writer past
 * its walk). */
void thread_destroy(struct thagtrace_thread *t);

/* Writer: as thread_destroy, but keep the handle for a thread yet to register when
 * there is room (see thread.c). Its files are closed. */
void thread_recycle(struct thagtrace_thread *t);

/* In a fork child: forget the parent's kept handles, its backlog, the spare handle
 * and the calling thread's handle, without reading them (they are wiped in the child:
 * nofork.h). */
void thread_fork_child(void);

#endif /* TT_THREAD_H */
