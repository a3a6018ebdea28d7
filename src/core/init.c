/* SPDX-License-Identifier: MIT */
/*
 * Automatic tracing: start when the library loads with THAGTRACE_OUT set (LD_PRELOAD,
 * or a program linked with -lthagtrace), stop when the process exits (exit() from
 * any thread: the library destructor runs after the program's own; _exit and _Exit,
 * which run no destructor, are wrapped). Data flushed before a crash stays readable
 * (each flush is a complete frame).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

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

/*
 * _exit and _Exit end the process without atexit handlers or destructors: a forked
 * child that works and leaves with _exit, the usual pattern, would lose what its
 * rings and the writer's gathered frames still hold. They stop the tracer first
 * (tt_stop_for_exit: never in a vfork child, never waiting on a lock, the writer
 * given a bounded time), then exit as glibc's would.
 */
static void (*real_exit)(int); /* glibc's _exit; it does not return */

__attribute__((noreturn)) static void exit_now(int status)
{
	tt_stop_for_exit();
	if (real_exit)
		real_exit(status);
	for (;;)
		syscall(SYS_exit_group, status);
}

__attribute__((visibility("default"), noreturn)) void _exit(int status)
{
	exit_now(status);
}

__attribute__((visibility("default"), noreturn)) void _Exit(int status)
{
	exit_now(status);
}

/* quick_exit runs the at_quick_exit handlers, then glibc's own _exit (not ours):
 * the files are finished first, the handlers' allocations untraced. */
__attribute__((visibility("default"), noreturn)) void quick_exit(int status)
{
	static void (*real)(int);
	tt_stop_for_exit();
	if (!real)
		real = (void (*)(int))interpose_next("quick_exit");
	if (real)
		real(status);
	exit_now(status);
}

__attribute__((constructor(101))) static void thagtrace_load(void)
{
	tt_guard_enter();
	interpose_resolve();
	real_exit = (void (*)(int))interpose_next("_exit");
	const char *out = getenv("THAGTRACE_OUT");
	if (out && *out) {
		struct thagtrace_config cfg;
		thagtrace_config_init(&cfg);
		bool tags;
		if (env_config(&cfg) == 0 && env_block_tags(&tags) == 0) {
			interpose_blocktags(tags);
			pthread_atfork(fork_prepare, fork_parent, fork_child);
			/* says on stderr itself why it could not */
			if (thagtrace_start(&cfg) == 0 && out[0] != '/')
				/* Children that change directory before they exec write
				 * into the same directory as this process. */
				setenv("THAGTRACE_OUT", tt_cfg.output_dir, 1);
		}
	}
	tt_guard_leave();
}

__attribute__((destructor(101))) static void thagtrace_unload(void)
{
	tt_stop_at_process_exit();
	tt_guard_enter(); /* whatever runs after this, on this thread, is not traced */
}
