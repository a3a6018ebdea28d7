/* SPDX-License-Identifier: MIT */
/* One-line, async-signal-safe diagnostics on stderr for the tracer and the tools. */
#ifndef TT_LOG_H
#define TT_LOG_H

#include <stdarg.h>
#include <stddef.h>

/*
 * Format into `buf` (always NUL-terminated, truncated to fit). Supports %s %d %u %ld
 * %lu %lld %llu %zu %zd %x %lx %llx %p %c %%. No malloc, no locale: signal-safe.
 * Returns the length written.
 */
size_t tt_vformat(char *buf, size_t cap, const char *fmt, va_list ap);
size_t tt_format(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Write "libthagtrace: <message>\n" to stderr with one write(2); errno preserved. */
void tt_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The same, only when THAGTRACE_DEBUG is set (tt_log_set_debug). */
void tt_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void tt_log_set_debug(int on);

#endif /* TT_LOG_H */
