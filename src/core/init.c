/* SPDX-License-Identifier: MIT */
/*
 * Automatic tracing: start when the library loads with THAGTRACE_OUT set (LD_PRELOAD,
 * or a program linked with -lthagtrace), stop when the process exits (exit() from
 * any thread: the library destructor runs after the program's own). Data flushed
 * before a crash stays readable (each flush is a complete frame).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>

#include "../common/log.h"
#include "env.h"
#include "interpose.h"
#include "thread.h"
#include "tracer.h"

/*
 * fork: the child traces into its own files (its own pid), never the parent's
 * buffered events; the handlers hold the tracer's locks across the fork (see
 * tracer.c). A program that execs is traced again by the new image when the
 * environment is inherited.
 */
static void fork_prepare(void)
{
	tt_guard_enter();
	tt_fork_prepare();
}

static void fork_parent(void)
{
	tt_fork_parent();
	tt_guard_leave();
}

static void fork_child(void)
{
	tt_fork_child();
	tt_guard_leave();
}

__attribute__((constructor(101))) static void thagtrace_load(void)
{
	tt_guard_enter();
	interpose_resolve();
	const char *out = getenv("THAGTRACE_OUT");
	if (out && *out) {
		struct thagtrace_config cfg;
		thagtrace_config_init(&cfg);
		bool tags;
		if (env_config(&cfg) == 0 && env_block_tags(&tags) == 0) {
			interpose_blocktags(tags);
			pthread_atfork(fork_prepare, fork_parent, fork_child);
			thagtrace_start(&cfg); /* says on stderr itself why it could not */
		}
	}
	tt_guard_leave();
}

__attribute__((destructor(101))) static void thagtrace_unload(void)
{
	tt_guard_enter(); /* whatever runs after this, on this thread, is not traced */
	thagtrace_stop();
}
