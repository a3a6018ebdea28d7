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
 * fork: the child has only the forking thread and no writer. It must not touch the
 * parent's buffered events (they are the parent's to write) nor wait for a writer
 * that is not there at exit: tracing is switched off in the child. A program that
 * execs is traced again by the new image when the environment is inherited.
 */
static void after_fork_in_child(void)
{
	tt_forget_after_fork();
	tt_self = NULL;
}

__attribute__((constructor(101))) static void thagtrace_load(void)
{
	tt_guard_enter();
	interpose_resolve();
	const char *out = getenv("THAGTRACE_OUT");
	if (out && *out) {
		struct thagtrace_config cfg;
		thagtrace_config_init(&cfg);
		if (env_config(&cfg) == 0) {
			pthread_atfork(NULL, NULL, after_fork_in_child);
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
