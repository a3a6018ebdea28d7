/* SPDX-License-Identifier: MIT */
/*
 * exec: a new image replaces the process, and with it every ring and the writer's
 * gathered frames. The exec family is wrapped so the session finishes its files
 * first (tt_stop_for_exit: only in the process whose session it is, so never in a
 * vfork child, and with a bounded wait). When the exec fails the program goes on,
 * and so does tracing, in a new session (its files take the next free names). The
 * new image is traced again when it inherits LD_PRELOAD and THAGTRACE_OUT.
 *
 * glibc's execv, execvp, execl... call its execve internally, not through the
 * dynamic linker: each entry point is wrapped. The l-forms gather their arguments
 * into an array on the stack (alloca: no malloc, they may run in a child of a
 * multi-threaded fork) and call the v-forms.
 */
#define _GNU_SOURCE
#include <alloca.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <unistd.h>

#include "interpose.h"
#include "thread.h"
#include "tracer.h"

#define EXPORT __attribute__((visibility("default")))

extern char **environ;

/* After a failed exec: trace on, errno as the exec left it. */
static void exec_failed(bool stopped)
{
	if (!stopped)
		return;
	int saved = errno;
	struct thagtrace_config c = tt_cfg;
	thagtrace_start(&c);
	errno = saved;
}

/* A wrapper for each exec that does not go through another one: finish the files,
 * exec, and trace on if it failed. */
#define WRAP_EXEC(name, first_type, first)                                                         \
	EXPORT int name(first_type first, char *const argv[], char *const envp[])                  \
	{                                                                                          \
		static int (*real)(first_type, char *const[], char *const[]);                      \
		if (!real && !(real = (int (*)(first_type, char *const[],                          \
					       char *const[]))interpose_next(#name)))              \
			return errno = ENOSYS, -1;                                                 \
		bool stopped = tt_stop_for_exit();                                                 \
		int rc = real(first, argv, envp);                                                  \
		exec_failed(stopped);                                                              \
		return rc;                                                                         \
	}

WRAP_EXEC(execve, const char *, path)
WRAP_EXEC(execvpe, const char *, file)
WRAP_EXEC(fexecve, int, fd)

EXPORT int execv(const char *path, char *const argv[])
{
	return execve(path, argv, environ);
}

EXPORT int execvp(const char *file, char *const argv[])
{
	return execvpe(file, argv, environ);
}

/* The arguments after arg0 up to the NULL, on the stack; *envp gets what follows
 * the NULL when want_env. */
#define GATHER(arg0, argv, want_env, envp)                                                         \
	do {                                                                                       \
		va_list ap;                                                                        \
		size_t n = 0; /* arguments before the NULL */                                      \
		const char *first = (arg0);                                                        \
		__asm__("" : "+r"(first)); /* declared nonnull, yet callers pass NULL */           \
		va_start(ap, arg0);                                                                \
		if (first)                                                                         \
			for (n = 1; va_arg(ap, const char *); n++)                                 \
				;                                                                  \
		va_end(ap);                                                                        \
		argv = alloca((n + 1) * sizeof(*argv));                                            \
		argv[0] = (char *)(arg0);                                                          \
		va_start(ap, arg0);                                                                \
		for (size_t i = 1; i <= n; i++) /* the last is the NULL */                         \
			argv[i] = va_arg(ap, char *);                                              \
		if (want_env)                                                                      \
			envp = va_arg(ap, char **);                                                \
		va_end(ap);                                                                        \
	} while (0)

EXPORT int execl(const char *path, const char *arg0, ...)
{
	char **argv, **envp = NULL;
	GATHER(arg0, argv, false, envp);
	(void)envp;
	return execve(path, argv, environ);
}

EXPORT int execlp(const char *file, const char *arg0, ...)
{
	char **argv, **envp = NULL;
	GATHER(arg0, argv, false, envp);
	(void)envp;
	return execvpe(file, argv, environ);
}

EXPORT int execle(const char *path, const char *arg0, ...)
{
	char **argv, **envp = NULL;
	GATHER(arg0, argv, true, envp);
	return execve(path, argv, envp);
}
