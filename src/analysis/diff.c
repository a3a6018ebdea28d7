/* SPDX-License-Identifier: MIT */
/*
 * --diff: two runs' stacks matched by their symbolized frames with source lines
 * (runtime addresses differ between runs), and the change of the chosen metric.
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "folded.h"
#include "json.h"
#include "report.h"
#include "strtab.h"

struct change {
	size_t slot;
	double base, cur;
};

static int cmp_change(const void *a, const void *b)
{
	const struct change *x = a, *y = b;
	double dx = fabs(x->cur - x->base), dy = fabs(y->cur - y->base);
	if (dx != dy)
		return dx > dy ? -1 : 1;
	return (x->slot > y->slot) - (x->slot < y->slot);
}

static int collect(struct strtab *tab, int k, const struct tt_profile *p, struct tt_resolver *r,
		   enum tt_sort_by by, double *total)
{
	char *buf = NULL;
	size_t cap = 0;
	*total = 0;
	for (unsigned i = 0; i < p->nstacks; i++) {
		double v = tt_stack_metric(&p->stacks[i], by);
		if (v < 0.5)
			continue;
		long len = tt_folded_stack(r, &p->stacks[i], true, &buf, &cap);
		long slot = len < 0 ? -1 : strtab_intern(tab, buf, (size_t)len);
		if (slot < 0) {
			free(buf);
			return -1;
		}
		tab->vals[k][slot] += v;
		*total += v;
	}
	free(buf);
	return 0;
}

/* The changes, largest first; NULL when out of memory. */
static struct change *changes(const struct tt_profile *base, struct tt_resolver *rb,
			      const struct tt_profile *cur, struct tt_resolver *rc,
			      enum tt_sort_by by, struct strtab *tab, double *tb, double *tc,
			      size_t *n)
{
	if (collect(tab, 0, base, rb, by, tb) || collect(tab, 1, cur, rc, by, tc))
		return NULL;
	struct change *ch = malloc((tab->n + 1) * sizeof(*ch));
	if (!ch)
		return NULL;
	*n = 0;
	for (size_t i = 0; i < tab->n; i++)
		if (fabs(tab->vals[1][i] - tab->vals[0][i]) >= 0.5)
			ch[(*n)++] = (struct change){i, tab->vals[0][i], tab->vals[1][i]};
	qsort(ch, *n, sizeof(*ch), cmp_change);
	return ch;
}

static void print_value(FILE *f, double v, enum tt_sort_by by, bool sign)
{
	if (by == TT_BY_COUNT) {
		fprintf(f, sign ? "%+.0f calls" : "%.0f calls", v);
		return;
	}
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	unsigned u = 0;
	double a = fabs(v);
	while (a >= 1024 && u < 4) {
		a /= 1024;
		v /= 1024;
		u++;
	}
	fprintf(f, sign ? "%+.*f %s" : "%.*f %s", u ? 2 : 0, v, units[u]);
}

int tt_diff_text(FILE *f, const struct tt_profile *base, struct tt_resolver *rb,
		 const struct tt_profile *cur, struct tt_resolver *rc,
		 const struct tt_report_opts *o)
{
	struct strtab tab = {0};
	double tb, tc;
	size_t n;
	unsigned top = o->top ? o->top : 10;
	struct change *ch = changes(base, rb, cur, rc, o->by, &tab, &tb, &tc, &n);
	if (!ch) {
		strtab_fini(&tab);
		return -1;
	}
	static const char *const what[] = {"allocated bytes", "allocation count",
					   "bytes live at the end", "bytes live at the peak"};
	fprintf(f, "thagtrace diff by %s: %s -> %s\n  total: ", what[o->by], base->trace->dir,
		cur->trace->dir);
	print_value(f, tb, o->by, false);
	fputs(" -> ", f);
	print_value(f, tc, o->by, false);
	fputs(" (", f);
	print_value(f, tc - tb, o->by, true);
	if (tb > 0)
		fprintf(f, ", %+.1f%%", 100.0 * (tc - tb) / tb);
	fprintf(f, ")\n\nLargest changes by stack (top %zu of %zu)\n", top < n ? (size_t)top : n,
		n);
	for (size_t i = 0; i < n && i < top; i++) {
		fprintf(f, "#%-3zu ", i + 1);
		print_value(f, ch[i].cur - ch[i].base, o->by, true);
		if (ch[i].base >= 0.5)
			fprintf(f, " (%+.1f%%)", 100.0 * (ch[i].cur - ch[i].base) / ch[i].base);
		else
			fputs(" (new)", f);
		fputs("  ", f);
		print_value(f, ch[i].base, o->by, false);
		fputs(" -> ", f);
		print_value(f, ch[i].cur, o->by, false);
		fputc('\n', f);
		/* The key is root;...;leaf: print leaf first, 8 frames. */
		const char *key = tab.strs[ch[i].slot];
		const char *end = key + strlen(key);
		unsigned shown = 0;
		while (end > key && shown < 8) {
			const char *start = end;
			while (start > key && start[-1] != ';')
				start--;
			fprintf(f, "      %.*s\n", (int)(end - start), start);
			shown++;
			end = start > key ? start - 1 : key;
		}
		if (end > key)
			fputs("      ...\n", f);
	}
	free(ch);
	strtab_fini(&tab);
	return ferror(f) ? -1 : 0;
}

int tt_diff_json(FILE *f, const struct tt_profile *base, struct tt_resolver *rb,
		 const struct tt_profile *cur, struct tt_resolver *rc,
		 const struct tt_report_opts *o)
{
	struct strtab tab = {0};
	double tb, tc;
	size_t n;
	struct change *ch = changes(base, rb, cur, rc, o->by, &tab, &tb, &tc, &n);
	if (!ch) {
		strtab_fini(&tab);
		return -1;
	}
	static const char *const names[] = {"bytes", "count", "live", "peak"};
	fputs("{\"schema\": \"thagtrace-diff/1\", \"base\": ", f);
	json_str(f, base->trace->dir);
	fputs(", \"dir\": ", f);
	json_str(f, cur->trace->dir);
	fprintf(f, ", \"by\": \"%s\",\n \"totals\": {\"base\": ", names[o->by]);
	json_est(f, tb);
	fputs(", \"current\": ", f);
	json_est(f, tc);
	fprintf(f, ", \"delta\": %.0f},\n \"stacks\": [", tc - tb);
	for (size_t i = 0; i < n && (!o->top || i < o->top); i++) {
		fputs(i ? ",\n  {\"frames\": [" : "\n  {\"frames\": [", f);
		const char *key = tab.strs[ch[i].slot];
		for (const char *s = key; *s;) { /* root first, as in the key */
			const char *e = strchr(s, ';');
			size_t len = e ? (size_t)(e - s) : strlen(s);
			char *frame = strndup(s, len);
			if (s != key)
				fputs(", ", f);
			json_str(f, frame ? frame : "");
			free(frame);
			s += len + (e ? 1 : 0);
		}
		fputs("], \"base\": ", f);
		json_est(f, ch[i].base);
		fputs(", \"current\": ", f);
		json_est(f, ch[i].cur);
		fprintf(f, ", \"delta\": %.0f}", ch[i].cur - ch[i].base);
	}
	fputs("]}\n", f);
	free(ch);
	strtab_fini(&tab);
	return ferror(f) ? -1 : 0;
}
