/* SPDX-License-Identifier: MIT */
/*
 * --diff: two runs' stacks matched by their symbolized frames with source lines
 * (runtime addresses differ between runs), and the change of the chosen metric,
 * with its 95 % interval: each side's interval widths (below and above its
 * estimate) added in quadrature, as independent runs. A change whose interval
 * holds 0 is within sampling noise and says so. Stacks' values at the peak have no
 * interval of their own: their changes are given without a verdict.
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
	double lo, hi; /* the change's 95 % interval */
	bool known;    /* lo and hi mean something */
};

/* Squared widths below and above, per slot, per run. */
struct widths2 {
	double *down[2], *up[2];
	size_t cap;
};

static int widths2_reserve(struct widths2 *w, size_t n)
{
	if (n <= w->cap)
		return 0;
	size_t cap = w->cap ? w->cap : 64;
	while (cap < n)
		cap *= 2;
	for (int k = 0; k < 2; k++) {
		double *d = realloc(w->down[k], cap * sizeof(*d)), *u;
		if (d)
			w->down[k] = d;
		u = realloc(w->up[k], cap * sizeof(*u));
		if (u)
			w->up[k] = u;
		if (!d || !u)
			return -1;
		memset(d + w->cap, 0, (cap - w->cap) * sizeof(*d));
		memset(u + w->cap, 0, (cap - w->cap) * sizeof(*u));
	}
	w->cap = cap;
	return 0;
}

static void widths2_fini(struct widths2 *w)
{
	for (int k = 0; k < 2; k++) {
		free(w->down[k]);
		free(w->up[k]);
	}
}

/* A stack's interval for the metric; false where it has none (the peak's). */
static bool stack_interval(const struct tt_stack *s, enum tt_sort_by by, double *lo, double *hi)
{
	switch (by) {
	case TT_BY_COUNT:
		*lo = s->alloc_count_lo;
		*hi = s->alloc_count_hi;
		return true;
	case TT_BY_LIVE:
		*lo = s->live_bytes_lo;
		*hi = s->live_bytes_hi;
		return true;
	case TT_BY_PEAK:
		return false;
	default:
		*lo = s->alloc_bytes_lo;
		*hi = s->alloc_bytes_hi;
		return true;
	}
}

/* The profile's total for the metric, and its interval. */
static double total_metric(const struct tt_profile *p, enum tt_sort_by by)
{
	return by == TT_BY_COUNT  ? p->alloc_count
	       : by == TT_BY_LIVE ? p->live_bytes
	       : by == TT_BY_PEAK ? p->peak_bytes
				  : p->alloc_bytes;
}

static void total_interval(const struct tt_profile *p, enum tt_sort_by by, double *lo, double *hi)
{
	switch (by) {
	case TT_BY_COUNT:
		*lo = p->alloc_count_lo;
		*hi = p->alloc_count_hi;
		break;
	case TT_BY_LIVE:
		*lo = p->live_bytes_lo;
		*hi = p->live_bytes_hi;
		break;
	case TT_BY_PEAK:
		*lo = p->peak_bytes_lo;
		*hi = p->peak_bytes_hi;
		break;
	default:
		*lo = p->alloc_bytes_lo;
		*hi = p->alloc_bytes_hi;
	}
}

/* The interval of cur - base, from each side's estimate and interval. */
static void delta_interval(double b, double b_lo, double b_hi, double c, double c_lo, double c_hi,
			   double *lo, double *hi)
{
	double d = c - b;
	*lo = d - sqrt((c - c_lo) * (c - c_lo) + (b_hi - b) * (b_hi - b));
	*hi = d + sqrt((c_hi - c) * (c_hi - c) + (b - b_lo) * (b - b_lo));
}

static int cmp_change(const void *a, const void *b)
{
	const struct change *x = a, *y = b;
	double dx = fabs(x->cur - x->base), dy = fabs(y->cur - y->base);
	if (dx != dy)
		return dx > dy ? -1 : 1;
	return (x->slot > y->slot) - (x->slot < y->slot);
}

static int collect(struct strtab *tab, struct widths2 *w, int k, const struct tt_profile *p,
		   struct tt_resolver *r, enum tt_sort_by by, double *total)
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
		if (slot < 0 || widths2_reserve(w, (size_t)slot + 1)) {
			free(buf);
			return -1;
		}
		tab->vals[k][slot] += v;
		*total += v;
		double lo, hi;
		if (stack_interval(&p->stacks[i], by, &lo, &hi)) {
			w->down[k][slot] += (v - lo) * (v - lo);
			w->up[k][slot] += (hi - v) * (hi - v);
		}
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
	struct widths2 w = {0};
	struct change *ch = NULL;
	if (collect(tab, &w, 0, base, rb, by, tb) || collect(tab, &w, 1, cur, rc, by, tc) ||
	    widths2_reserve(&w, tab->n + 1) || !(ch = malloc((tab->n + 1) * sizeof(*ch)))) {
		widths2_fini(&w);
		return NULL;
	}
	*n = 0;
	for (size_t i = 0; i < tab->n; i++) {
		double b = tab->vals[0][i], c = tab->vals[1][i];
		if (fabs(c - b) < 0.5)
			continue;
		struct change x = {i, b, c, 0, 0, by != TT_BY_PEAK};
		delta_interval(b, b - sqrt(w.down[0][i]), b + sqrt(w.up[0][i]), c,
			       c - sqrt(w.down[1][i]), c + sqrt(w.up[1][i]), &x.lo, &x.hi);
		ch[(*n)++] = x;
	}
	widths2_fini(&w);
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

/* The totals' change: the estimates summed over stacks, widths from the totals. */
static struct change total_change(const struct tt_profile *base, const struct tt_profile *cur,
				  enum tt_sort_by by, double tb, double tc)
{
	double bl, bh, cl, ch;
	total_interval(base, by, &bl, &bh);
	total_interval(cur, by, &cl, &ch);
	struct change t = {0, tb, tc, 0, 0, true};
	/* The widths of each total around its own estimate, moved to these sums. */
	double pb = total_metric(base, by), pc = total_metric(cur, by);
	delta_interval(tb, tb - (pb - bl), tb + (bh - pb), tc, tc - (pc - cl), tc + (ch - pc),
		       &t.lo, &t.hi);
	return t;
}

/* " [lo, hi]" of a change, and "within noise" when it holds 0. */
static void print_interval(FILE *f, const struct change *c, enum tt_sort_by by)
{
	if (!c->known)
		return;
	fputs(" [", f);
	print_value(f, c->lo, by, true);
	fputs(", ", f);
	print_value(f, c->hi, by, true);
	fputs(c->lo <= 0 && c->hi >= 0 ? "] within noise" : "]", f);
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
	struct change t = total_change(base, cur, o->by, tb, tc);
	print_interval(f, &t, o->by);
	fprintf(f,
		")\n\nLargest changes by stack (top %zu of %zu; 95 %% intervals of the "
		"change)\n",
		top < n ? (size_t)top : n, n);
	for (size_t i = 0; i < n && i < top; i++) {
		fprintf(f, "#%-3zu ", i + 1);
		print_value(f, ch[i].cur - ch[i].base, o->by, true);
		if (ch[i].base >= 0.5)
			fprintf(f, " (%+.1f%%)", 100.0 * (ch[i].cur - ch[i].base) / ch[i].base);
		else
			fputs(" (new)", f);
		print_interval(f, &ch[i], o->by);
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

/* ', "delta_ci95": [lo, hi], "significant": bool' (null, null without an interval). */
static void json_change(FILE *f, const struct change *c)
{
	if (!c->known) {
		fputs(", \"delta_ci95\": null, \"significant\": null", f);
		return;
	}
	fprintf(f, ", \"delta_ci95\": [%.0f, %.0f], \"significant\": %s", c->lo, c->hi,
		c->lo > 0 || c->hi < 0 ? "true" : "false");
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
	fprintf(f, ", \"delta\": %.0f", tc - tb);
	struct change t = total_change(base, cur, o->by, tb, tc);
	json_change(f, &t);
	fputs("},\n \"stacks\": [", f);
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
		fprintf(f, ", \"delta\": %.0f", ch[i].cur - ch[i].base);
		json_change(f, &ch[i]);
		fputc('}', f);
	}
	fputs("]}\n", f);
	free(ch);
	strtab_fini(&tab);
	return ferror(f) ? -1 : 0;
}
