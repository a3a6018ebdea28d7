/* SPDX-License-Identifier: MIT */
/*
 * Threads the program never registers itself: registered by the pthread_create
 * wrapper before their start routine runs (and unregistered when it returns, calls
 * pthread_exit or is cancelled), or lazily on their first allocation (the main
 * thread, threads started before the library loaded, raw clone). No TLS
 * destructor: the wrapper's cleanup handler, or the writer noticing a lazily
 * registered thread is gone, ends a handle.
 */
#ifndef TT_THREAD_AUTO_H
#define TT_THREAD_AUTO_H

#include <stdbool.h>
#include <stdint.h>

#include "thread.h"
#include "tracer.h"

/* Fast path: is t (the thread's tt_self) a live handle of the running session? Not
 * when NULL, THREAD_EXITED, or left over from an earlier session in this process. */
static inline bool thread_auto_current(const struct thagtrace_thread *t)
{
	return t != NULL && t != THREAD_EXITED && t->generation == load_relaxed(&tt_active_gen);
}

/* Allocation-path slow path: thread_auto_current(tt_self) is false. Registers the calling
 * thread; for a thread that already unregistered (it is ending), returns the
 * session's spare handle (thread_auto_is_spare), which the caller gives back with
 * thread_exited_release after the event. NULL: the event is counted as untraced (the spare handle
 * was busy, or registration failed); `size` and `is_alloc` say what is counted. Preserves errno. */
struct thagtrace_thread *thread_auto_self(uint64_t size, bool is_alloc);

/* Slow path, after thread_auto_self: is t the spare handle, to be given back
 * with thread_exited_release once the event is recorded? */
static inline bool thread_auto_is_spare(const struct thagtrace_thread *t)
{
	return tt_self == THREAD_EXITED && t == load_relaxed(&tt_exited_handle);
}

#endif /* TT_THREAD_AUTO_H */
