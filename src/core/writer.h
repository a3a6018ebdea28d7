/* SPDX-License-Identifier: MIT */
/*
 * The writer: one background thread (never traced, all signals blocked) that drains
 * every registered ring at the flush interval, or at once when a ring crosses half
 * full, and writes each thread's records to its own .bin/.freq files.
 */
#ifndef TT_WRITER_H
#define TT_WRITER_H

#include <stdbool.h>
#include <stdint.h>

#include "thagtrace.h"

/* Create the output directory and the process file, then start the thread.
 * Returns 0, THAGTRACE_EIO (directory or file), THAGTRACE_ENOMEM or
 * THAGTRACE_ESYSTEM. Called by thagtrace_start with the tracer lock held. */
int writer_start(const struct thagtrace_config *cfg);

/* Final pass and join: wait for events in flight, drain every ring, close every
 * file (handles still registered become ORPHANED), write the process totals.
 * Called by thagtrace_stop after the session generation was cleared. */
void writer_stop(void);

/* writer_stop for an exit or an exec: waits for the writer's last pass without
 * joining it (no lock of glibc's), for as long as it writes frames, and gives up
 * once it has written none for `stall_ms` milliseconds (the thread it waits for
 * may hold what the writer needs: a signal handler's exit). Returns true when it
 * finished (everything as writer_stop but the join), false when it did not: it is
 * left running, its files hold every frame it completed. */
bool writer_stop_within(unsigned stall_ms);

/* fork: hold the writer outside its passes and its file changes across the fork. */
void writer_fork_lock(void);
void writer_fork_unlock(void);
/* fork child: unlock, and close the parent's process file (the child opens its own). */
void writer_fork_child(void);

#endif /* TT_WRITER_H */
