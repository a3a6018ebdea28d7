/* SPDX-License-Identifier: MIT */
/* Process-wide tracer state shared by the core modules: on/off, settings, wake-up. */
#ifndef TT_TRACER_H
#define TT_TRACER_H

#include <stdbool.h>
#include <stdint.h>

#include "../common/atomic.h"
#include "../common/clock.h"
#include "sampler.h"
#include "thagtrace.h"

/*
 * The running session's generation, or 0 when off. Written by start/stop/disable;
 * read relaxed by producers on every event (with their busy flag set first; see
 * thread_enter), so stop can wait for events in flight.
 */
extern _Atomic uint64_t tt_active_gen;

/* Set when membarrier is unavailable: producers then need a full fence. */
extern bool tt_need_fence;

/*
 * What the producers' fast path compares a handle's generation with: the running
 * session's generation, or 0 when off or when producers need a fence (no handle
 * has generation 0, so every event then takes the general path, which fences).
 * Cleared before tt_active_gen, set after it.
 */
extern _Atomic uint64_t tt_fast_gen;

/* Event timestamps come from the TSC (true) or CLOCK_MONOTONIC (false); fixed for
 * the process's lifetime at the first start. */
extern bool tt_use_tsc;

static inline uint64_t tt_ticks(void)
{
	return tt_ticks_of(tt_use_tsc);
}

/* Settings of the running session; written before tt_active_gen is published. */
extern struct thagtrace_config tt_cfg;
extern struct sampler_params tt_sampling; /* derived from tt_cfg */
extern bool tt_unwind_cfi;		  /* auto walks the call-frame tables (unwind_cfi.h) */

/* Wake the writer now (producer, on a ring's half-full crossing). Signal-safe. */
void tt_wake_writer(void);

/* pthread_atfork handlers (see tracer.c). */
void tt_fork_prepare(void);
void tt_fork_parent(void);
void tt_fork_child(void);

/* In a child made without fork() (no fork handler ran: a raw clone, _Fork), with
 * the parent's session: turn tracing off here, without taking any lock, and say
 * true. False anywhere else (a vfork child included). Slow paths only. */
bool tt_foreign_child(void);

/* Before _exit (which skips destructors) or exec: thagtrace_stop, but only in the
 * process whose session it is (not in a vfork child, which shares its parent's
 * memory), only when this thread is outside the tracer and nobody holds the tracer's
 * lock (a signal handler may call _exit), and waiting for the writer while it
 * writes, EXIT_WAIT_MS at most without a frame (writer_stop_within). Returns true
 * when it stopped the session (and the writer finished). */
bool tt_stop_for_exit(void);
#define EXIT_WAIT_MS 3000

/* At exit (the library's destructor): the same, on any thread state, trying the
 * tracer's lock EXIT_WAIT_MS at most; the writer is waited for while it writes. */
void tt_stop_at_process_exit(void);

/* Internal failure: say so once on stderr and switch tracing off for good; the host
 * program runs on. Safe from any thread, including the writer. */
void tt_disable(const char *what, int err);

#endif /* TT_TRACER_H */
