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

struct thagtrace_thread;

/* Allocation-path slow path: tt_self is NULL or THREAD_EXITED. Registers the calling
 * thread (NULL: it is ending, or registration failed; the event is then counted
 * as untraced). `size` and `is_alloc` say what is being counted. Preserves errno. */
struct thagtrace_thread *thread_auto_self(uint64_t size, bool is_alloc);

#endif /* TT_THREAD_AUTO_H */
