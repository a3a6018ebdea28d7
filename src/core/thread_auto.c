/* SPDX-License-Identifier: MIT */
/* Automatic thread handles: the pthread_create wrapper and lazy registration. */
#define _GNU_SOURCE
#include "thread_auto.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "interpose.h"
#include "thread.h"
#include "tracer.h"

#define EXPORT __attribute__((visibility("default")))

struct thagtrace_thread *thread_auto_self(uint64_t size, bool is_alloc)
{
	if (tt_foreign_child())
		return NULL; /* the parent's handles here are wiped (nofork.h): tracing off */
	struct thagtrace_thread *t = tt_self;
	if (t && t != THREAD_EXITED && t->generation != load_relaxed(&tt_active_gen) &&
	    tt_guard == 0) {
		/* A handle of an earlier session (tracing was stopped and started again):
		 * give up our hold on it (freed when no registration holds it) and
		 * register in this one. */
		int saved = errno;
		tt_guard_enter();
		thagtrace_thread_unregister(t);
		tt_guard_leave();
		errno = saved;
		tt_self = t = NULL;
	}
	if (t == NULL && tt_guard == 0 && thread_backlog_full())
		tt_self = THREAD_EXITED; /* the writer is far behind: the shared handle */
	else if (t == NULL && tt_guard == 0) {
		int saved = errno;
		tt_guard_enter();
		int err = 0;
		t = thagtrace_thread_register(NULL, &err); /* sets tt_self */
		if (t)
			store_relaxed(&t->lazy, 1);
		else if (err != THAGTRACE_EDISABLED)
			tt_self = THREAD_EXITED; /* no memory: stop trying, count instead */
		tt_guard_leave();
		errno = saved;
		if (t)
			return t;
	}
	if (tt_self == THREAD_EXITED) {
		struct thagtrace_thread *spare = thread_exited_take();
		if (spare)
			return spare; /* the caller releases it after the event */
	}
	if (load_relaxed(&tt_active_gen)) {
		if (is_alloc) {
			fetch_add_relaxed(&tt_untraced_allocs, 1);
			fetch_add_relaxed(&tt_untraced_bytes, size);
		} else {
			fetch_add_relaxed(&tt_untraced_frees, 1);
		}
	}
	return NULL;
}

/* ---- pthread_create ---- */

typedef int (*pthread_create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);

struct start {
	void *(*fn)(void *);
	void *arg;
};

/* Runs when the start routine returns, calls pthread_exit or is cancelled. */
static void thread_end(void *unused)
{
	(void)unused;
	struct thagtrace_thread *t = tt_self;
	if (t && t != THREAD_EXITED) {
		tt_guard_enter();
		thagtrace_thread_unregister(t);
		tt_guard_leave();
	}
	/* From here on (other libraries' TLS destructors), count, do not record. */
	tt_self = THREAD_EXITED;
}

static void *start_routine(void *p)
{
	struct start s = *(struct start *)p;
	tt_guard_enter();
	free(p);
	if (thagtrace_is_running() && thread_backlog_full())
		tt_self = THREAD_EXITED; /* the writer is far behind: the shared handle */
	else if (thagtrace_is_running())
		thagtrace_thread_register(NULL, NULL); /* sets tt_self */
	tt_guard_leave();
	void *ret;
	pthread_cleanup_push(thread_end, NULL);
	ret = s.fn(s.arg);
	pthread_cleanup_pop(1);
	return ret;
}

EXPORT int pthread_create(pthread_t *th, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
	static pthread_create_fn real;
	if (!real && !(real = (pthread_create_fn)interpose_next("pthread_create")))
		return EAGAIN;
	if (!thagtrace_is_running() || tt_guard)
		return real(th, attr, fn, arg); /* untraced, or one of the tracer's threads */
	tt_guard_enter();
	struct start *s = malloc(sizeof(*s));
	tt_guard_leave();
	if (!s)
		return real(th, attr, fn, arg);
	s->fn = fn;
	s->arg = arg;
	int rc = real(th, attr, start_routine, s);
	if (rc != 0) {
		tt_guard_enter();
		free(s);
		tt_guard_leave();
	}
	return rc;
}

/* ---- pthread_setname_np: a thread naming itself after it was registered ---- */

typedef int (*setname_fn)(pthread_t, const char *);

EXPORT int pthread_setname_np(pthread_t th, const char *name)
{
	static setname_fn real;
	if (!real && !(real = (setname_fn)interpose_next("pthread_setname_np")))
		return ENOSYS;
	int rc = real(th, name);
	/* Only our own handle: another thread's may be ending under us. */
	if (rc == 0 && pthread_equal(th, pthread_self())) {
		struct thagtrace_thread *t = tt_self;
		if (thread_auto_current(t) && !t->name_given)
			thread_rename(t, name);
	}
	return rc;
}
