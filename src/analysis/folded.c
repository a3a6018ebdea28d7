/* SPDX-License-Identifier: MIT */
/* Folded stack files for flame graphs. */
#define _GNU_SOURCE
#include "folded.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "strtab.h"

/* Append s[0..n); a name (raw false) has its ';' and line breaks replaced. */
static bool append_text(char **buf, size_t *cap, size_t *len, const char *s, size_t n, bool raw)
{
	if (*len + n + 1 > *cap) {
		size_t ncap = *cap ? *cap : 1024;
		while (ncap < *len + n + 1)
			ncap *= 2;
		char *b = realloc(*buf, ncap);
		if (!b)
			return false;
		*buf = b;
		*cap = ncap;
	}
	/* ';' separates frames and the last space the value: keep them out of names. */
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		(*buf)[(*len)++] = raw ? c : c == ';' ? ':' : (c == '\n' || c == '\r') ? ' ' : c;
	}
	(*buf)[*len] = 0;
	return true;
}

static bool append(char **buf, size_t *cap, size_t *len, const char *s, size_t n)
{
	return append_text(buf, cap, len, s, n, false);
}

long tt_folded_stack(struct tt_resolver *r, const struct tt_stack *s, bool with_lines, char **buf,
		     size_t *cap)
{
	const struct tt_rframe *fr;
	unsigned n = tt_resolve_stack(r, s, &fr);
	size_t len = 0;
	char nb[256], wb[256];
	if (!append(buf, cap, &len, "", 0))
		return -1;
	for (unsigned i = n; i-- > 0;) {
		const char *name = tt_rframe_name(&fr[i], nb, sizeof(nb));
		if ((i + 1 != n && !append_text(buf, cap, &len, ";", 1, true)) ||
		    !append(buf, cap, &len, name, strlen(name)))
			return -1;
		if (with_lines && fr[i].file) {
			tt_rframe_where(&fr[i], wb, sizeof(wb));
			if (!append(buf, cap, &len, " (", 2) ||
			    !append(buf, cap, &len, wb, strlen(wb)) ||
			    !append(buf, cap, &len, ")", 1))
				return -1;
		}
	}
	/* A trailing space would be read as the value separator: none in names. */
	while (len && (*buf)[len - 1] == ' ')
		(*buf)[--len] = 0;
	if (!len && !append(buf, cap, &len, "[unknown]", 9))
		return -1;
	return (long)len;
}

struct line {
	const char *text;
	double value;
};

static int cmp_line(const void *a, const void *b)
{
	const struct line *x = a, *y = b;
	if (x->value != y->value)
		return x->value > y->value ? -1 : 1;
	return strcmp(x->text, y->text);
}

int tt_folded_write(const char *path, const struct tt_profile *p, struct tt_resolver *r,
		    enum tt_sort_by by, char *err, size_t errcap)
{
	struct strtab tab = {0};
	char *buf = NULL, tmp[4096];
	size_t cap = 0;
	struct line *lines = NULL;
	FILE *f = NULL;
	int rc = -1;
	for (unsigned i = 0; i < p->nstacks; i++) {
		double v = tt_stack_metric(&p->stacks[i], by);
		if (v < 0.5)
			continue;
		long len = tt_folded_stack(r, &p->stacks[i], false, &buf, &cap);
		long slot = len < 0 ? -1 : strtab_intern(&tab, buf, (size_t)len);
		if (slot < 0) {
			snprintf(err, errcap, "%s: out of memory", path);
			goto out;
		}
		tab.vals[0][slot] += v;
	}
	if (!(lines = malloc((tab.n + 1) * sizeof(*lines)))) {
		snprintf(err, errcap, "%s: out of memory", path);
		goto out;
	}
	for (size_t i = 0; i < tab.n; i++)
		lines[i] = (struct line){tab.strs[i], tab.vals[0][i]};
	qsort(lines, tab.n, sizeof(*lines), cmp_line);
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
	if (!(f = fopen(tmp, "w"))) {
		snprintf(err, errcap, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	for (size_t i = 0; i < tab.n; i++) {
		double v = round(lines[i].value);
		if (v >= 1)
			fprintf(f, "%s %.0f\n", lines[i].text, v);
	}
	if (fclose(f) != 0) {
		f = NULL;
		snprintf(err, errcap, "%s: %s", tmp, strerror(errno));
		unlink(tmp);
		goto out;
	}
	f = NULL;
	if (rename(tmp, path) != 0) {
		snprintf(err, errcap, "%s: %s", path, strerror(errno));
		unlink(tmp);
		goto out;
	}
	rc = 0;
out:
	if (f) {
		fclose(f);
		unlink(tmp);
	}
	free(lines);
	free(buf);
	strtab_fini(&tab);
	return rc;
}
