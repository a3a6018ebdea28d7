/* SPDX-License-Identifier: MIT */
/* The writer thread: drain loop, per-thread files, retirement of unregistered handles. */
#define _GNU_SOURCE
#include "writer.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../common/clock.h"
#include "../common/log.h"
#include "encode.h"
#include "freeset.h"
#include "meta.h"
#include "modules.h"
#include "registry.h"
#include "sink.h"
#include "thread.h"
#include "tracer.h"

/* A frame is closed once this much is encoded, so readers need bounded memory. */
#define FRAME_TARGET (1u << 20)
/*
 * A thread's events gather across passes and go out as one frame once about
 * GATHER_MAX bytes are encoded, or once the oldest of them is GATHER_AGE_NS old (ten
 * flush intervals, if that is shorter), or when the thread closes. zstd compresses
 * frames of a few KiB (what one thread's pass makes when many threads share the
 * writer) a quarter slower than frames of 256 KiB, and less well. All threads
 * together hold about GATHER_BUDGET at most: with many threads each gathers less,
 * and with a share under GATHER_MIN (past 128 threads) none gathers, each pass
 * writing its own frames.
 */
#define GATHER_MAX    (256u << 10)
#define GATHER_MIN    (32u << 10)
#define GATHER_BUDGET (4u << 20)
#define GATHER_AGE_NS 1000000000ull
/* Lazily registered threads are checked for having ended this often. */
#define RECLAIM_INTERVAL_NS 500000000ull
/* Clock anchors go to the process file at least this far apart. */
#define ANCHOR_INTERVAL_NS 1000000000ull
/* How long stop waits for one thread's event in flight before going on. */
#define BUSY_WAIT_NS 1000000000ull

/*
 * Wake-up protocol (Dekker, all seq_cst):
 *   producer: wake_word += 1; if (sleeping) futex_wake(wake_word)
 *   writer:   sleeping = 1; if (wake_word == seen) futex_wait(wake_word, seen)
 * Either the writer sees the new wake_word (and does not sleep, or futex_wait
 * returns at once because the word changed), or the producer sees sleeping == 1.
 */
static _Atomic uint32_t wake_word;
static _Atomic uint32_t fork_waiting; /* a fork handler waits for the pass lock */
static _Atomic uint32_t writer_sleeping;

static struct {
	/* Held by the writer for each pass and for every change to its files, so that
	 * a fork (which takes it) never copies a pass or a descriptor half done. */
	pthread_mutex_t pass_lock;
	pthread_t thread;
	bool unjoined; /* thread: ended, not joined (writer_stop_within) */
	_Atomic int stop;
	/* Set by the writer once it touches nothing of the session again, and what a
	 * stop at exit waits for: not pthread_join, which takes glibc's lock of
	 * thread stacks (an exit() in a signal handler that interrupted a
	 * pthread_join or pthread_create waited for ever). */
	_Atomic uint32_t finished;
	_Atomic uint64_t progress; /* frames written: a stop at exit waits while it moves */
	bool failed;		   /* output broke: drain and discard, write nothing */
	struct sink sink;
	/* The process file's and the .freq files' records, flushed as they are made;
	 * pk appends there, or to a thread's pending events while its pass encodes
	 * them (encode_into, cur_buf). */
	struct encode_buf sb;
	msgpack_packer pk;
	size_t gather; /* a thread's pending events go out at this size */
	uint64_t gather_age_ns;
	struct sink_file meta;
	char dir[4096];
	uint64_t flush_ns;
	uint64_t last_anchor_ns;
	uint64_t last_reclaim_ns;
	uint64_t last_alone_ns;
	bool alone;	       /* the program's threads have all ended: see writer_alone */
	sigset_t creator_mask; /* the signal mask the writer was started with */
	/* A pass stopped at a ring's byte budget with records left: the producer's
	 * wake-up fires only when a ring crosses half, so sleeping now could leave it
	 * to fill. Pass again at once. */
	bool backlog;
	unsigned costly; /* threads whose files this pass opened or closed */
	/* Totals over closed threads, for PROCESS_END. */
	uint64_t threads, emitted, recorded, dropped, shed;
} w = {.pass_lock = PTHREAD_MUTEX_INITIALIZER};

void writer_fork_lock(void)
{
	/* The writer, back from a pass with more to do, would take the lock again at
	 * once and starve the fork (mutexes are not fair): it waits for this flag. */
	atomic_fetch_add_explicit(&fork_waiting, 1, memory_order_seq_cst);
	pthread_mutex_lock(&w.pass_lock);
	atomic_fetch_sub_explicit(&fork_waiting, 1, memory_order_seq_cst);
}

void writer_fork_unlock(void)
{
	pthread_mutex_unlock(&w.pass_lock);
}

void writer_fork_child(void)
{
	writer_fork_unlock();
	/* The parent's files (no descriptor of them is open across a fork, sink.c):
	 * the child writes its own. */
	sink_file_forget(&w.meta);
}

void tt_wake_writer(void)
{
	atomic_fetch_add_explicit(&wake_word, 1, memory_order_seq_cst);
	if (load_seq_cst(&writer_sleeping))
		syscall(SYS_futex, &wake_word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static void writer_fail(const char *what, const char *name, int err)
{
	char msg[4400];
	snprintf(msg, sizeof(msg), "%s %s/%s", what, w.dir, name);
	w.failed = true;
	tt_disable(msg, err);
}

/*
 * A clock anchor for the process file: ticks read on both sides of the ns clocks,
 * averaged, so readers can map ticks to ns (and, with two anchors, measure the rate).
 */
static void encode_anchor(void)
{
	uint64_t t0 = tt_ticks();
	uint64_t mono = tt_now_ns(), real = tt_realtime_ns();
	uint64_t t1 = tt_ticks();
	encode_clock(&w.pk, t0 + (t1 - t0) / 2, mono, real);
	w.last_anchor_ns = mono;
}

/* Compress what b holds into one frame of f, and empty it. */
static void flush_buf(struct encode_buf *b, struct sink_file *f)
{
	if (b->size == 0)
		return;
	if (!w.failed && f->created) {
		/* An encoding that ran out of memory must not reach the file half done. */
		int rc = b->failed ? -ENOMEM : sink_file_frame(&w.sink, w.dir, f, b->data, b->size);
		if (rc != 0)
			writer_fail("cannot write", f->name, -rc);
	}
	encode_buf_clear(b);
	fetch_add_relaxed(&w.progress, 1);
}

/* The buffer the packer appends to. */
static struct encode_buf *cur_buf(void)
{
	return w.pk.data;
}

/* Compress what is encoded so far into one frame of f. */
static void flush_frame(struct sink_file *f)
{
	flush_buf(cur_buf(), f);
}

/* Let the packer append to b. */
static void encode_into(struct encode_buf *b)
{
	msgpack_packer_init(&w.pk, b, encode_buf_write);
}

static void file_base(const struct thagtrace_thread *t, unsigned n, char *out, size_t cap)
{
	if (n == 0)
		snprintf(out, cap, "%d-%d", t->pid, t->tid);
	else
		snprintf(out, cap, "%d-%d.%u", t->pid, t->tid, n);
}

/* A thread registered without a name (automatically, at its start) may have named
 * itself since with prctl, which the handle does not see (pthread_setname_np it
 * does): while the thread exists, its comm is the truth. */
static void read_comm(const struct thagtrace_thread *t, char out[16])
{
	char path[64], name[16];
	snprintf(path, sizeof(path), "/proc/self/task/%d/comm", t->tid);
	ssize_t n = sink_read_file(path, name, sizeof(name) - 1);
	if (n > 0 && name[n - 1] == '\n')
		n--;
	if (n <= 0)
		return;
	memcpy(out, name, (size_t)n);
	out[n] = '\0';
}

/*
 * Open <pid>-<tid>.bin and .freq. A thread id the kernel reused (or a second
 * session in this process) finds the names taken; it gets <pid>-<tid>.<n>.* instead.
 */
static void open_files(struct thagtrace_thread *t)
{
	char base[64], name[80];
	for (unsigned n = 0; n < 100000; n++) {
		file_base(t, n, base, sizeof(base));
		snprintf(name, sizeof(name), "%s.bin", base);
		int rc = sink_file_create(w.dir, name, TT_FILE_EVENTS, &t->events);
		if (rc == -EEXIST)
			continue;
		if (rc < 0) {
			writer_fail("cannot create", name, -rc);
			return;
		}
		snprintf(name, sizeof(name), "%s.freq", base);
		rc = sink_file_create(w.dir, name, TT_FILE_FREQ, &t->freq);
		if (rc == -EEXIST) {
			sink_file_forget(&t->events);
			continue; /* leaves a header-only .bin behind; readers skip those */
		}
		if (rc < 0) {
			sink_file_forget(&t->events);
			writer_fail("cannot create", name, -rc);
			return;
		}
		char tname[16];
		t->name_seq_written = thread_name(t, tname);
		if (!t->name_given && t->tid)
			read_comm(t, tname);
		encode_events_init(&t->enc, t->start_ticks);
		encode_thread(&w.pk, t->pid, t->tid, tname, t->start_ticks);
		return;
	}
	writer_fail("no free file name for thread in", "", EEXIST);
}

struct drain_ctx {
	struct thagtrace_thread *t;
	uint64_t n;
};

static int visit_event(const struct ring_rec *rec, void *arg)
{
	struct drain_ctx *c = arg;
	struct thagtrace_thread *t = c->t;
	c->n++;
	if (w.failed)
		return 0;
	switch (rec->type) {
	case EV_ALLOC: {
		const struct ev_alloc *ev = (const struct ev_alloc *)rec;
		if (ev->stack_flags & EV_STACK_DEFINES)
			encode_stack(&w.pk, ev->stack_id, ev->stack_flags & ~EV_STACK_DEFINES,
				     ev->frames, ev->h.aux);
		encode_alloc(&w.pk, &t->enc, ev->ts, ev->ptr, ev->size, ev->stack_id,
			     ev->probability);
		break;
	}
	case EV_FREE: {
		const struct ev_free *ev = (const struct ev_free *)rec;
		encode_free(&w.pk, &t->enc, ev->ts, ev->ptr);
		break;
	}
	default:
		break; /* cannot happen: only EV_* records are committed */
	}
	return cur_buf()->size >= FRAME_TARGET; /* stop: the caller closes the frame */
}

static void visit_site(uint64_t site, uint64_t count, uint64_t bytes, void *arg)
{
	(void)arg;
	if (!w.failed)
		encode_site(&w.pk, site, count, bytes);
}

/* A thread that renamed itself since its name was last written (its files may open
 * before it names itself): a NAME record. */
static void note_rename(struct thagtrace_thread *t)
{
	if (load_acquire(&t->name_seq) == t->name_seq_written)
		return;
	char tname[16];
	uint32_t s = thread_name(t, tname);
	if (s & 1)
		return; /* mid-rename: the next pass */
	encode_name(&w.pk, tname);
	t->name_seq_written = s;
}

/* Threads whose files one pass may open or close (not the final pass). A program
 * that starts threads faster than files can be created (a thread living a moment,
 * tens of thousands a second) would otherwise keep a pass, and a fork waiting for
 * it, going for seconds. The others wait for the next pass, which comes at once. */
#define COSTLY_PER_PASS 32

/*
 * One thread's share of a pass. `closing`: the thread unregistered or the session
 * ends, so its ring is quiescent: drain it to the end, write the final counters and
 * close its files. `final`: the session's last pass, which does every thread.
 * Returns false when the thread was left for the next pass (COSTLY_PER_PASS).
 */
static bool thread_pass(struct thagtrace_thread *t, bool closing, bool final)
{
	bool nothing = !t->events.created && t->files_on_data && ring_used(&t->ring) == 0 &&
		       !sites_changed(&t->sites) && thread_emitted(t) == 0;
	/* Opening a thread's files, or closing them and (after the pass) unmapping
	 * its handle, is the costly part of a pass: a budget for it per pass. */
	if (!final && (closing || (!nothing && !t->events.created && !w.failed))) {
		/* A fork waiting for the pass lock gets it after one such thread. */
		if (w.costly == COSTLY_PER_PASS || (w.costly && load_relaxed(&fork_waiting))) {
			w.backlog = true;
			return false;
		}
		w.costly++;
	}
	if (nothing)
		return true; /* nothing yet: no files */
	/* Events that go out in this pass (gathering off with many threads, or the
	 * thread's last pass) need no buffer of the thread's own: mapping one for each
	 * thread, and unmapping it, cost 200 threads 3200 page faults, and 10 000
	 * short-lived threads 10 000 mmap and munmap calls. */
	struct encode_buf *ev =
	    (w.gather && !closing) || t->pending.size || w.sb.size ? &t->pending : &w.sb;
	encode_into(ev);
	if (!t->events.created && !w.failed)
		open_files(t);

	/* Events. A live ring gets one ring's worth of bytes per pass, so one busy
	 * thread cannot starve the rest; what is left makes the next pass come at once. */
	struct drain_ctx c = {t, 0};
	const uint64_t tail0 = load_relaxed(&t->ring.tail); /* we are its only writer */
	for (;;) {
		uint64_t before = c.n;
		ring_drain(&t->ring, visit_event, &c);
		if (ev->size >= FRAME_TARGET)
			flush_frame(&t->events);
		if (c.n == before)
			break;
		if (!closing && load_relaxed(&t->ring.tail) - tail0 >= t->ring.capacity) {
			w.backlog = true;
			break;
		}
	}

	uint64_t emitted = thread_emitted(t), dropped = thread_dropped(t),
		 shed = load_relaxed(&t->shed);
	if (!w.failed && t->events.created) {
		note_rename(t);
		if (dropped != t->drops_written || shed != t->shed_written ||
		    (closing && emitted != t->emitted_written)) {
			encode_drops(&w.pk, emitted, dropped, load_relaxed(&t->ring.dropped_bytes),
				     shed);
			t->drops_written = dropped;
			t->shed_written = shed;
			t->emitted_written = emitted;
		}
		if (closing)
			encode_end(&w.pk, emitted, load_relaxed(&t->ring.recorded), dropped,
				   tt_ticks());
	}
	/* The events gathered so far go out now, or wait for more (see GATHER_MAX);
	 * the call-site counts go with them, so both files reach the same moment. */
	uint64_t now = tt_now_ns();
	if (!t->pending_since_ns && (ev->size || sites_changed(&t->sites)))
		t->pending_since_ns = now;
	bool out = closing || ev->size >= w.gather ||
		   (t->pending_since_ns && now - t->pending_since_ns >= w.gather_age_ns);
	if (out) {
		flush_frame(&t->events);
		t->pending_since_ns = 0;
	}
	encode_into(&w.sb);
	if (!w.gather && t->pending.cap && !t->pending.size)
		encode_buf_destroy(&t->pending); /* from passes before there were many threads */
	if (!out)
		return true;

	/* Exact call-site counts: only what changed since the last snapshot. */
	uint64_t nsites = sites_snapshot(&t->sites, visit_site, NULL);
	if (nsites && !w.failed)
		encode_snapshot(&w.pk, tt_ticks(), nsites);
	flush_frame(&t->freq);

	if (closing) {
		sink_file_forget(&t->events);
		sink_file_forget(&t->freq);
		w.threads++;
		w.emitted += emitted;
		w.recorded += load_relaxed(&t->ring.recorded);
		w.dropped += dropped;
		w.shed += shed;
	}
	return true;
}

/*
 * Free retired handles: unlink (unless `unlink` is false: done already), then unmap
 * (or keep for a new thread). No grace
 * period: this thread is the list's only reader (registry.h), and it is past its
 * walk; a retired thread touches its handle no more (it unregistered, or it is
 * gone). liburcu's memb flavour had one here, and with it a reader registration
 * that a fork child's writer, on the stack of its parent's (glibc reuses them),
 * registered twice: a grandchild's fork then hung for ever.
 */
static void retire(struct thagtrace_thread *list, bool unlink)
{
	for (struct thagtrace_thread *t = list; t; t = t->retire_next) {
		if (unlink)
			registry_remove(t);
		atomic_fetch_sub_explicit(&tt_retiring, 1, memory_order_relaxed);
	}
	while (list) {
		struct thagtrace_thread *next = list->retire_next;
		thread_recycle(list);
		list = next;
	}
}

/* Has the thread of a lazily registered handle ended? (tgkill with signal 0.) A
 * reused thread id reads as alive: that handle then waits for the session's end. */
static bool thread_gone(const struct thagtrace_thread *t)
{
	return syscall(SYS_tgkill, t->pid, t->tid, 0) != 0 && errno == ESRCH;
}

/* One pass over every registered thread. */
static void pass(bool final)
{
	uint64_t now = tt_now_ns();
	bool reclaim_due = !final && now - w.last_reclaim_ns >= RECLAIM_INTERVAL_NS;
	if (reclaim_due)
		w.last_reclaim_ns = now;
	w.costly = 0;
	struct thagtrace_thread *retired = NULL, *unlinked = NULL;
	struct cds_list_head *pos, *next;
	/* This pass's share of GATHER_BUDGET for each thread, from the threads there
	 * now: counted at the end of the pass before, the share of a pass that first
	 * sees many new threads would give each a buffer of its own for nothing. */
	size_t nthreads = registry_count();
	size_t share = GATHER_BUDGET / (nthreads ? nthreads : 1);
	w.gather = share > GATHER_MAX ? GATHER_MAX : share < GATHER_MIN ? 0 : share;
	/* By node, not cds_list_for_each_entry_rcu: that forms an entry pointer from
	 * the list head itself to end the loop, a misaligned (undefined) pointer. The
	 * next node is read first: a handle orphaned below may be freed by its owner
	 * as soon as it is unlinked. Threads registering meanwhile add at the tail. */
	for (pos = registry_next(&registry_list); pos != &registry_list; pos = next) {
		next = registry_next(pos);
		struct thagtrace_thread *t = caa_container_of(pos, struct thagtrace_thread, node);
		/* Pairs with thread_create's store_release (the handle is set up) and with
		 * unregister's CAS (release: its events are all in the ring). */
		uint32_t state = load_acquire(&t->state);
		if (state == TH_ACTIVE && reclaim_due && load_relaxed(&t->lazy) && thread_gone(t)) {
			/* Registered on its first allocation, never unregistered, and
			 * now gone: its ring is quiescent and the handle is ours. */
			uint32_t expected = TH_ACTIVE;
			if (atomic_compare_exchange_strong_explicit(
				&t->state, &expected, TH_RETIRING, memory_order_acq_rel,
				memory_order_acquire)) {
				state = TH_RETIRING;
				fetch_add_relaxed(&tt_retiring, 1);
			}
		}
		bool closing = state == TH_RETIRING || final;
		if (!thread_pass(t, closing, final))
			continue; /* still TH_RETIRING, if it was: retired by a later pass */
		if (state == TH_RETIRING) {
			t->retire_next = retired;
			retired = t;
		} else if (final) {
			/* Unlinked first: once ORPHANED, its owner may free it at once
			 * (unregister), so the writer touches it no more after the CAS. */
			registry_remove(t);
			uint32_t expected = TH_ACTIVE;
			if (!atomic_compare_exchange_strong_explicit(
				&t->state, &expected, TH_ORPHANED, memory_order_acq_rel,
				memory_order_acquire)) {
				/* It unregistered while we closed it: the end is ours. */
				t->retire_next = unlinked;
				unlinked = t;
			}
		}
	}
	retire(retired, true);
	retire(unlinked, false);
}

/* At stop: wait (bounded) until no thread is inside the event path. */
static void wait_for_events_in_flight(void)
{
	for (struct cds_list_head *pos = registry_next(&registry_list); pos != &registry_list;
	     pos = registry_next(pos)) {
		struct thagtrace_thread *t = caa_container_of(pos, struct thagtrace_thread, node);
		uint64_t deadline = tt_now_ns() + BUSY_WAIT_NS;
		/* Pairs with thread_leave's store_release(&busy, 0). */
		while (load_acquire(&t->busy) && tt_now_ns() < deadline)
			sched_yield();
	}
}

static void sleep_until_woken(uint32_t seen)
{
	struct timespec ts = {(time_t)(w.flush_ns / 1000000000u), (long)(w.flush_ns % 1000000000u)};
	store_seq_cst(&writer_sleeping, 1);
	if (load_seq_cst(&wake_word) == seen && !load_seq_cst(&w.stop))
		syscall(SYS_futex, &wake_word, FUTEX_WAIT_PRIVATE, seen, &ts, NULL, 0);
	store_seq_cst(&writer_sleeping, 0);
}

/*
 * Has every thread of the program ended, leaving the writer alone? When the main
 * thread leaves through pthread_exit and the others return, glibc ends the process
 * with exit(0) in the last of them; the writer is a thread too, so traced, nothing
 * would end the process (nor would SIGTERM: the writer blocks every signal). It
 * then finishes the session and returns, and glibc's exit(0) comes from it.
 * /proc/self/stat is the leader's: its state and the process's thread count (an
 * ended leader stays, a zombie, until the process ends; the writer is never the
 * leader). Read once a flush interval (open, read, close), no allocation.
 */
static bool writer_alone(void)
{
	char b[1024];
	ssize_t n = sink_read_file("/proc/self/stat", b, sizeof(b) - 1);
	if (n <= 0)
		return false;
	b[n] = '\0';
	const char *q = strrchr(b, ')'); /* the name may hold anything */
	if (!q || q[1] != ' ' || !q[2])
		return false;
	char state = q[2];
	q += 2; /* field 3, the state; the thread count is field 20 */
	for (int field = 3; field < 20; field++) {
		q = strchr(q, ' ');
		if (!q)
			return false;
		q++;
	}
	long threads = strtol(q, NULL, 10);
	return threads == 1 || (threads == 2 && (state == 'Z' || state == 'X'));
}

static void *writer_main(void *arg)
{
	(void)arg;
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &w.creator_mask);
	pthread_setname_np(pthread_self(), "thagtrace-wr");
	tt_guard_enter(); /* the writer's own allocations are never traced */

	while (!load_acquire(&w.stop)) {
		uint32_t seen = load_seq_cst(&wake_word);
		w.backlog = false;
		pthread_mutex_lock(&w.pass_lock);
		pass(false);
		pthread_mutex_unlock(&w.pass_lock);
		while (load_seq_cst(&fork_waiting))
			sched_yield(); /* let a fork in between passes */
		/* After a dlopen or dlclose: the new map, for offline symbolization and
		 * for validating frames of code in the new objects. */
		modules_refresh();
		/* Under the pass lock, as every change to our descriptors (a flush may
		 * reopen the file, sink.c), which a fork must not see half made. */
		pthread_mutex_lock(&w.pass_lock);
		if (!w.failed && modules_write_pending(&w.pk))
			flush_frame(&w.meta);
		if (!w.failed && tt_now_ns() - w.last_anchor_ns >= ANCHOR_INTERVAL_NS) {
			encode_anchor();
			flush_frame(&w.meta);
		}
		uint64_t now = tt_now_ns();
		bool alone = false;
		if (now - w.last_alone_ns >= w.flush_ns) {
			w.last_alone_ns = now;
			alone = writer_alone();
		}
		pthread_mutex_unlock(&w.pass_lock);
		if (alone) {
			tt_debug("every thread of the program has ended: ending the process");
			w.alone = true;
			break;
		}
		if (!w.backlog)
			sleep_until_woken(seen);
	}

	/* Final: no new handle can join, nobody is mid-event (or we waited long
	 * enough), so every ring drains to its end. */
	registry_set_session(0);
	pthread_mutex_lock(&w.pass_lock);
	wait_for_events_in_flight();
	pass(true);
	pthread_mutex_unlock(&w.pass_lock);

	if (!w.failed) {
		modules_write_pending(&w.pk); /* maps a quick dlclose replaced */
		encode_anchor();
		meta_encode_end(&w.pk, &(struct meta_totals){
					   .threads = w.threads,
					   .emitted = w.emitted,
					   .recorded = w.recorded,
					   .dropped = w.dropped,
					   .shed = w.shed,
					   .untraced_allocs = load_relaxed(&tt_untraced_allocs),
					   .untraced_bytes = load_relaxed(&tt_untraced_bytes),
					   .untraced_frees = load_relaxed(&tt_untraced_frees),
					   .freeset_full = freeset_overflows(),
				       });
		flush_frame(&w.meta);
	}
	struct rusage ru;
	if (getrusage(RUSAGE_THREAD, &ru) == 0)
		tt_debug(
		    "writer: %llu ms user, %llu ms system; %llu frames, %llu bytes "
		    "compressed to %llu",
		    (unsigned long long)(ru.ru_utime.tv_sec * 1000 + ru.ru_utime.tv_usec / 1000),
		    (unsigned long long)(ru.ru_stime.tv_sec * 1000 + ru.ru_stime.tv_usec / 1000),
		    (unsigned long long)w.sink.frames, (unsigned long long)w.sink.bytes_in,
		    (unsigned long long)w.sink.bytes_out);
	/* glibc's exit(0) runs the program's atexit handlers and destructors here:
	 * with the signals of the thread that started tracing, not none. */
	if (w.alone)
		pthread_sigmask(SIG_SETMASK, &w.creator_mask, NULL);
	/* Nothing of the session is touched from here on: an exit may go on. */
	store_release(&w.finished, 1);
	syscall(SYS_futex, &w.finished, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
	return NULL;
}

static int mkdir_p(const char *dir)
{
	char path[4096];
	if (strlen(dir) >= sizeof(path))
		return -ENAMETOOLONG;
	strcpy(path, dir);
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0755) != 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(path, 0755) != 0 && errno != EEXIST)
		return -errno;
	struct stat st;
	if (stat(path, &st) != 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR; /* a file of that name: say so, not "permission denied" */
	return access(path, W_OK | X_OK) == 0 ? 0 : -errno;
}

static int create_meta(void)
{
	char name[64];
	for (unsigned n = 0; n < 100000; n++) {
		if (n == 0)
			snprintf(name, sizeof(name), "%d.meta", (int)getpid());
		else
			snprintf(name, sizeof(name), "%d.%u.meta", (int)getpid(), n);
		int rc = sink_file_create(w.dir, name, TT_FILE_META, &w.meta);
		if (rc != -EEXIST)
			return rc;
	}
	return -EEXIST;
}

int writer_start(const struct thagtrace_config *cfg)
{
	encode_buf_init(&w.sb);
	store_relaxed(&w.stop, 0);
	w.failed = w.alone = false;
	w.last_alone_ns = tt_now_ns();
	w.threads = w.emitted = w.recorded = w.dropped = w.shed = 0;
	w.flush_ns = (uint64_t)cfg->flush_interval_ms * 1000000u;
	snprintf(w.dir, sizeof(w.dir), "%s", cfg->output_dir);

	int rc = mkdir_p(w.dir);
	if (rc != 0) {
		tt_log("cannot use output directory %s: %s; tracing off", w.dir,
		       strerrordesc_np(-rc));
		return THAGTRACE_EIO;
	}
	if (sink_init(&w.sink, cfg->zstd_level) != 0) {
		sink_fini(&w.sink);
		return THAGTRACE_ENOMEM;
	}
	encode_buf_init(&w.sb);
	encode_into(&w.sb);
	w.gather_age_ns = w.flush_ns * 10 < GATHER_AGE_NS ? w.flush_ns * 10 : GATHER_AGE_NS;

	rc = create_meta();
	if (rc < 0) {
		tt_log("cannot create the process file in %s: %s; tracing off", w.dir,
		       strerrordesc_np(-rc));
		rc = THAGTRACE_EIO;
		goto fail;
	}
	meta_encode_process(&w.pk, cfg, tt_use_tsc ? "tsc" : "monotonic");
	encode_anchor();
	modules_write_pending(&w.pk);
	rc = w.sb.failed ? -ENOMEM : sink_file_frame(&w.sink, w.dir, &w.meta, w.sb.data, w.sb.size);
	encode_buf_clear(&w.sb);
	if (rc != 0) {
		tt_log("cannot write the process file in %s: %s; tracing off", w.dir,
		       strerrordesc_np(-rc));
		rc = THAGTRACE_EIO;
		goto fail;
	}
	if (w.unjoined) /* the last session's, left at an exec that failed */
		pthread_detach(w.thread);
	w.unjoined = false;
	store_relaxed(&w.finished, 0);
	rc = pthread_create(&w.thread, NULL, writer_main, NULL);
	if (rc != 0) {
		tt_log("cannot start the writer thread: %s; tracing off", strerrordesc_np(rc));
		rc = THAGTRACE_ESYSTEM;
		goto fail;
	}
	return 0;
fail:
	sink_file_forget(&w.meta);
	encode_buf_destroy(&w.sb);
	sink_fini(&w.sink);
	return rc;
}

static void writer_release(void)
{
	sink_file_forget(&w.meta);
	encode_buf_destroy(&w.sb);
	sink_fini(&w.sink);
}

/* The writer ended the session itself (writer_alone), and glibc's exit(0) runs the
 * destructors on it: nothing to wait for. */
static bool ending_alone(void)
{
	return w.alone && pthread_equal(pthread_self(), w.thread);
}

void writer_stop(void)
{
	store_seq_cst(&w.stop, 1);
	tt_wake_writer();
	if (!ending_alone())
		pthread_join(w.thread, NULL);
	writer_release();
}

bool writer_stop_within(unsigned stall_ms)
{
	store_seq_cst(&w.stop, 1);
	tt_wake_writer();
	if (!ending_alone()) {
		uint64_t seen = load_relaxed(&w.progress);
		unsigned still = 0;
		while (!load_acquire(&w.finished)) {
			struct timespec slice = {0, 50 * 1000000};
			syscall(SYS_futex, &w.finished, FUTEX_WAIT_PRIVATE, 0, &slice, NULL, 0);
			uint64_t now = load_relaxed(&w.progress);
			if (now != seen) {
				seen = now;
				still = 0;
			} else if ((still += 50) >= stall_ms) {
				return false; /* the process exits now: what was written stays */
			}
		}
		w.unjoined = true;
	}
	writer_release();
	return true;
}
