/* SPDX-License-Identifier: MIT */
/* Signal-safe one-line stderr diagnostics: a tiny formatter and a single write(2). */
#include "log.h"

#include <errno.h>
#include <stdint.h>
#include <unistd.h>

static int debug_on;

struct out {
	char *buf;
	size_t cap; /* includes room for the NUL */
	size_t len;
};

static void put_char(struct out *o, char c)
{
	if (o->len + 1 < o->cap)
		o->buf[o->len++] = c;
}

static void put_str(struct out *o, const char *s)
{
	if (!s)
		s = "(null)";
	while (*s)
		put_char(o, *s++);
}

static void put_unsigned(struct out *o, unsigned long long v, unsigned base)
{
	char tmp[24];
	int n = 0;
	do {
		unsigned d = (unsigned)(v % base);
		tmp[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
		v /= base;
	} while (v && n < (int)sizeof(tmp));
	while (n)
		put_char(o, tmp[--n]);
}

static void put_signed(struct out *o, long long v)
{
	if (v < 0) {
		put_char(o, '-');
		put_unsigned(o, (unsigned long long)(-(v + 1)) + 1, 10);
	} else {
		put_unsigned(o, (unsigned long long)v, 10);
	}
}

size_t tt_vformat(char *buf, size_t cap, const char *fmt, va_list ap)
{
	struct out o = {buf, cap, 0};
	if (!cap)
		return 0;
	for (const char *p = fmt; *p; p++) {
		if (*p != '%') {
			put_char(&o, *p);
			continue;
		}
		p++;
		int longs = 0, size_t_arg = 0;
		while (*p == 'l') {
			longs++;
			p++;
		}
		if (*p == 'z') {
			size_t_arg = 1;
			p++;
		}
		switch (*p) {
		case 's':
			put_str(&o, va_arg(ap, const char *));
			break;
		case 'c':
			put_char(&o, (char)va_arg(ap, int));
			break;
		case 'd':
			if (size_t_arg)
				put_signed(&o, (long long)va_arg(ap, ptrdiff_t));
			else if (longs >= 2)
				put_signed(&o, va_arg(ap, long long));
			else if (longs == 1)
				put_signed(&o, va_arg(ap, long));
			else
				put_signed(&o, va_arg(ap, int));
			break;
		case 'u':
		case 'x': {
			unsigned base = *p == 'x' ? 16 : 10;
			if (size_t_arg)
				put_unsigned(&o, va_arg(ap, size_t), base);
			else if (longs >= 2)
				put_unsigned(&o, va_arg(ap, unsigned long long), base);
			else if (longs == 1)
				put_unsigned(&o, va_arg(ap, unsigned long), base);
			else
				put_unsigned(&o, va_arg(ap, unsigned), base);
			break;
		}
		case 'p':
			put_str(&o, "0x");
			put_unsigned(&o, (uintptr_t)va_arg(ap, void *), 16);
			break;
		case '%':
			put_char(&o, '%');
			break;
		case '\0':
			p--;
			break;
		default:
			put_char(&o, '%');
			put_char(&o, *p);
			break;
		}
	}
	o.buf[o.len] = '\0';
	return o.len;
}

size_t tt_format(char *buf, size_t cap, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	size_t n = tt_vformat(buf, cap, fmt, ap);
	va_end(ap);
	return n;
}

static void vlog(const char *fmt, va_list ap)
{
	int saved = errno;
	char line[512];
	static const char prefix[] = "libthagtrace: ";
	size_t n = sizeof(prefix) - 1;
	for (size_t i = 0; i < n; i++)
		line[i] = prefix[i];
	n += tt_vformat(line + n, sizeof(line) - n - 1, fmt, ap);
	line[n++] = '\n';
	ssize_t w = write(STDERR_FILENO, line, n);
	(void)w;
	errno = saved;
}

void tt_log(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(fmt, ap);
	va_end(ap);
}

void tt_debug(const char *fmt, ...)
{
	if (!__atomic_load_n(&debug_on, __ATOMIC_RELAXED))
		return;
	va_list ap;
	va_start(ap, fmt);
	vlog(fmt, ap);
	va_end(ap);
}

void tt_log_set_debug(int on)
{
	__atomic_store_n(&debug_on, on, __ATOMIC_RELAXED);
}
