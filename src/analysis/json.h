/* SPDX-License-Identifier: MIT */
/* Writing JSON: string escaping and numbers that stay valid JSON (no NaN, no inf). */
#ifndef TT_JSON_H
#define TT_JSON_H

#include <math.h>
#include <stdio.h>

/* The length of the well-formed UTF-8 sequence at p (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF), or 0. */
static inline unsigned utf8_len(const unsigned char *p)
{
	unsigned char c = p[0];
	if (c < 0x80)
		return 1;
	unsigned n = c >= 0xC2 && c <= 0xDF   ? 2
		     : c >= 0xE0 && c <= 0xEF ? 3
		     : c >= 0xF0 && c <= 0xF4 ? 4
					      : 0;
	if (!n)
		return 0;
	unsigned char lo = 0x80, hi = 0xBF; /* the second byte's range */
	if (c == 0xE0)
		lo = 0xA0;
	else if (c == 0xED)
		hi = 0x9F;
	else if (c == 0xF0)
		lo = 0x90;
	else if (c == 0xF4)
		hi = 0x8F;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (unsigned i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xBF)
			return 0;
	return n;
}

/* s as a JSON string (null for NULL), escaped per RFC 8259. JSON text is UTF-8:
 * a byte that starts no well-formed sequence (a path or an argument in another
 * encoding) becomes U+FFFD, as a lossy decoder would make it. */
static inline void json_str(FILE *f, const char *s)
{
	if (!s) {
		fputs("null", f);
		return;
	}
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p;) {
		unsigned n = utf8_len(p);
		if (n == 0) {
			fputs("\\ufffd", f);
			p++;
			continue;
		}
		if (n > 1) {
			fwrite(p, 1, n, f);
			p += n;
			continue;
		}
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p == '\n')
			fputs("\\n", f);
		else if (*p == '\t')
			fputs("\\t", f);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
		p++;
	}
	fputc('"', f);
}

/* An estimate, rounded to an integer (estimates of counts and bytes). */
static inline void json_est(FILE *f, double v)
{
	if (!isfinite(v))
		v = 0;
	fprintf(f, "%.0f", v < 0 ? 0.0 : v);
}

/* A 95 % interval [lo, hi]. */
static inline void json_ci(FILE *f, double lo, double hi)
{
	fputc('[', f);
	json_est(f, lo);
	fputs(", ", f);
	json_est(f, hi);
	fputc(']', f);
}

/* ', "key": estimate' and ', "key": [lo, hi]': the fields after an object's first. */
static inline void json_kv_est(FILE *f, const char *key, double v)
{
	fprintf(f, ", \"%s\": ", key);
	json_est(f, v);
}

static inline void json_kv_ci(FILE *f, const char *key, double lo, double hi)
{
	fprintf(f, ", \"%s\": ", key);
	json_ci(f, lo, hi);
}

#endif /* TT_JSON_H */
