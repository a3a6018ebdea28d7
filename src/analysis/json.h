/* SPDX-License-Identifier: MIT */
/* Writing JSON: string escaping and numbers that stay valid JSON (no NaN, no inf). */
#ifndef TT_JSON_H
#define TT_JSON_H

#include <math.h>
#include <stdio.h>

/* s as a JSON string (null for NULL), escaped per RFC 8259. */
static inline void json_str(FILE *f, const char *s)
{
	if (!s) {
		fputs("null", f);
		return;
	}
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p == '\n')
			fputs("\\n", f);
		else if (*p == '\t')
			fputs("\\t", f);
		else if (*p < 0x20)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
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
