/* SPDX-License-Identifier: MIT */
/* The report: what each section shows, as text and as JSON (thagtrace-report/1). */
#define _GNU_SOURCE
#include "report.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "u64map.h"

#define SMALL_SITE 1024 /* the thousand cuts: sites whose mean size is below this */

bool tt_sort_by_parse(const char *s, enum tt_sort_by *by)
{
	static const char *const names[] = {"bytes", "count", "live", "peak"};
	for (unsigned i = 0; i < 4; i++)
		if (!strcmp(s, names[i])) {
			*by = (enum tt_sort_by)i;
			return true;
		}
	return false;
}

static const char *sort_name(enum tt_sort_by by)
{
	static const char *const names[] = {"bytes", "count", "live", "peak"};
	return names[by];
}

double tt_stack_metric(const struct tt_stack *s, enum tt_sort_by by)
{
	switch (by) {
	case TT_BY_COUNT:
		return s->alloc_count;
	case TT_BY_LIVE:
		return s->live_bytes;
	case TT_BY_PEAK:
		return s->peak_bytes;
	default:
		return s->alloc_bytes;
	}
}

struct sort_ctx {
	const struct tt_profile *p;
	enum tt_sort_by by;
};

static int cmp_metric(const void *a, const void *b, void *ctx)
{
	const struct sort_ctx *c = ctx;
	double x = tt_stack_metric(&c->p->stacks[*(const unsigned *)a], c->by);
	double y = tt_stack_metric(&c->p->stacks[*(const unsigned *)b], c->by);
	if (x != y)
		return x > y ? -1 : 1;
	return (*(const unsigned *)a > *(const unsigned *)b) -
	       (*(const unsigned *)a < *(const unsigned *)b);
}

unsigned *tt_report_order(const struct tt_profile *p, enum tt_sort_by by, unsigned *n)
{
	unsigned *o = malloc((p->nstacks + 1) * sizeof(*o));
	*n = 0;
	if (!o)
		return NULL;
	for (unsigned i = 0; i < p->nstacks; i++)
		if (tt_stack_metric(&p->stacks[i], by) >= 0.5)
			o[(*n)++] = i;
	struct sort_ctx c = {p, by};
	qsort_r(o, *n, sizeof(*o), cmp_metric, &c);
	return o;
}

/* ---- exact call sites over the selected threads ---- */

struct site_row {
	unsigned proc;
	uint64_t site, calls, bytes;
};

static int cmp_site_bytes(const void *a, const void *b)
{
	const struct site_row *x = a, *y = b;
	if (x->bytes != y->bytes)
		return x->bytes > y->bytes ? -1 : 1;
	return x->calls > y->calls ? -1 : x->calls < y->calls;
}

static int cmp_site_calls(const void *a, const void *b)
{
	const struct site_row *x = a, *y = b;
	if (x->calls != y->calls)
		return x->calls > y->calls ? -1 : 1;
	return x->bytes < y->bytes ? -1 : x->bytes > y->bytes;
}

static struct site_row *collect_sites(const struct tt_profile *p, size_t *n)
{
	const struct tt_trace *t = p->trace;
	struct u64map *idx = calloc(t->nprocs ? t->nprocs : 1, sizeof(*idx));
	struct site_row *rows = NULL;
	size_t cap = 0;
	*n = 0;
	if (!idx)
		return NULL;
	for (unsigned i = 0; i < t->nthreads; i++) {
		const struct tt_thread *th = &t->threads[i];
		if (!p->threads[i].selected)
			continue;
		for (unsigned s = 0; s < th->nsites; s++) {
			uint32_t slot;
			if (!u64map_get(&idx[th->proc], th->sites[s].site + 1, &slot)) {
				if (*n == cap) {
					size_t ncap = cap ? cap * 2 : 256;
					struct site_row *nr = realloc(rows, ncap * sizeof(*nr));
					if (!nr)
						goto oom;
					rows = nr;
					cap = ncap;
				}
				slot = (uint32_t)*n;
				if (u64map_put(&idx[th->proc], th->sites[s].site + 1, slot))
					goto oom;
				rows[(*n)++] = (struct site_row){th->proc, th->sites[s].site, 0, 0};
			}
			rows[slot].calls += th->sites[s].count;
			rows[slot].bytes += th->sites[s].bytes;
		}
	}
	for (unsigned i = 0; i < t->nprocs; i++)
		u64map_fini(&idx[i]);
	free(idx);
	if (!rows)
		rows = malloc(sizeof(*rows));
	return rows;
oom:
	for (unsigned i = 0; i < t->nprocs; i++)
		u64map_fini(&idx[i]);
	free(idx);
	free(rows);
	*n = 0;
	return NULL;
}

/* The innermost frame of a call site. */
static const struct tt_rframe *site_frame(struct tt_resolver *r, const struct site_row *s)
{
	struct tt_stack one = {.proc = s->proc, .nframes = 1, .frames = &s->site};
	const struct tt_rframe *f;
	return tt_resolve_stack(r, &one, &f) ? f : NULL;
}

/* ---- text ---- */

static const char *human_bytes(double v, char *buf, size_t cap)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
	unsigned u = 0;
	double a = fabs(v);
	while (a >= 1024 && u < 5) {
		a /= 1024;
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, cap, "%.0f B", v);
	else
		snprintf(buf, cap, "%.*f %s", a < 10 ? 2 : a < 100 ? 1 : 0, v, units[u]);
	return buf;
}

static const char *human_count(double v, char *buf, size_t cap)
{
	/* Thousands separated, rounded: 1,234,567 */
	char tmp[64];
	snprintf(tmp, sizeof(tmp), "%.0f", v < 0 ? -v : v);
	size_t len = strlen(tmp), o = 0;
	if (v < -0.5 && o + 1 < cap)
		buf[o++] = '-';
	for (size_t i = 0; i < len && o + 2 < cap; i++) {
		if (i && (len - i) % 3 == 0)
			buf[o++] = ',';
		buf[o++] = tmp[i];
	}
	buf[o] = 0;
	return buf;
}

static void print_stack_frames(FILE *f, const struct tt_profile *p, struct tt_resolver *r,
			       const struct tt_stack *s, unsigned max)
{
	const struct tt_rframe *fr;
	unsigned n = tt_resolve_stack(r, s, &fr);
	char nb[256], wb[256];
	for (unsigned i = 0; i < n && i < max; i++)
		fprintf(f, "      %s%s%s%s\n", fr[i].inlined ? "(inline) " : "",
			tt_rframe_name(&fr[i], nb, sizeof(nb)), fr[i].file ? "  " : "",
			tt_rframe_where(&fr[i], wb, sizeof(wb)));
	if (n > max)
		fprintf(f, "      ... %u more frames\n", n - max);
	if (s->flags & TT_STACK_TRUNCATED)
		fprintf(f, s->nframes >= p->trace->procs[s->proc].max_frames
			       ? "      ... (deeper frames cut at the maximum depth)\n"
			       : "      ... (the unwinder could not read further: frames "
				 "without frame pointers or call-frame tables)\n");
}

static double seconds(const struct tt_profile *p, unsigned proc, uint64_t ts)
{
	double ns;
	const struct tt_process *pr = &p->trace->procs[proc];
	if (!pr->nanchors || !tt_process_ticks_ns(pr, ts, &ns))
		return -1;
	return ns / 1e9;
}

static void text_header(FILE *f, const struct tt_profile *p)
{
	const struct tt_trace *t = p->trace;
	char b1[64], b2[64], b3[64];
	fprintf(f, "thagtrace report: %s\n", t->dir);
	unsigned shown = 0, more = 0;
	for (unsigned i = 0; i < t->nprocs; i++) {
		const struct tt_process *pr = &t->procs[i];
		if (p->filter.pid && pr->pid != p->filter.pid)
			continue;
		if (shown == 10) { /* a shell script's hundreds: --json lists them all */
			more++;
			continue;
		}
		shown++;
		int64_t start, dur;
		tt_process_span(pr, &start, &dur);
		fprintf(f, "  pid %d  %s%s%s  %.2f s  sampling %s%s\n", pr->pid,
			pr->cmdline[0] ? pr->cmdline : pr->exe, pr->exec_exe ? "  then exec " : "",
			pr->exec_exe ? pr->exec_exe : "", (double)dur / 1e9, pr->mode,
			pr->has_end ? "" : "  (no clean end: the process crashed or was killed?)");
	}
	if (more)
		fprintf(f, "  ... and %u more processes (--json lists them, --pid picks one)\n",
			more);
	fprintf(f, "  %u process%s, %u thread%s%s\n", p->nprocesses, p->nprocesses == 1 ? "" : "es",
		p->nthreads, p->nthreads == 1 ? "" : "s",
		p->filter.tid ? " (--thread filter)" : "");
	if (p->dropped || p->untraced_allocs) {
		fprintf(f,
			"\n!! DROPPED EVENTS: %s events lost (%s allocated in dropped "
			"allocations) because per-thread rings were full; %s allocations "
			"untraced.\n!! Allocation totals stay exact (call-site counts), but "
			"live and peak figures miss these events: rerun with a larger "
			"THAGTRACE_RING_KB.\n",
			human_count((double)p->dropped, b1, sizeof(b1)),
			human_bytes((double)p->dropped_bytes, b2, sizeof(b2)),
			human_count((double)p->untraced_allocs, b3, sizeof(b3)));
	}
	if (p->freeset_full)
		fprintf(f,
			"!! %s sampled allocations' frees could not be tracked (set of "
			"sampled pointers full): they read as live.\n",
			human_count((double)p->freeset_full, b1, sizeof(b1)));
}

/* " [lo - hi]" after an estimate v, " (exact)" when the interval is v alone, or,
 * for live and peak figures of a trace with dropped events, " (exact but for the
 * dropped events)": a lost free leaves a block live, a lost allocation is missing. */
static void text_interval(FILE *f, double v, double lo, double hi, bool count, bool dropped)
{
	char b1[64], b2[64];
	if (hi - lo < 0.5 || (v >= 0.5 && (hi - lo) / v < 5e-4)) {
		fputs(dropped ? " (exact but for the dropped events)" : " (exact)", f);
		return;
	}
	char bv[64];
	if (count) {
		human_count(v, bv, sizeof(bv));
		human_count(lo, b1, sizeof(b1));
		human_count(hi, b2, sizeof(b2));
	} else {
		human_bytes(v, bv, sizeof(bv));
		human_bytes(lo, b1, sizeof(b1));
		human_bytes(hi, b2, sizeof(b2));
	}
	if (!strcmp(b1, bv) && !strcmp(b2, bv) && v > 0) /* narrower than the rounding */
		fprintf(f, " (+/- %.2g%%)", 100.0 * fmax(v - lo, hi - v) / v);
	else
		fprintf(f, " [%s - %s]", b1, b2);
}

static void text_totals(FILE *f, const struct tt_profile *p)
{
	char b1[64], b2[64], b3[64];
	fprintf(f, "\nTotals (estimates with 95%% intervals; call-site figures are exact)\n");
	fprintf(f, "  allocated    %s in %s calls", human_bytes(p->alloc_bytes, b1, sizeof(b1)),
		human_count(p->alloc_count, b2, sizeof(b2)));
	text_interval(f, p->alloc_bytes, p->alloc_bytes_lo, p->alloc_bytes_hi, false, false);
	fprintf(f, "\n  exact        %s in %s calls (from .freq)\n",
		human_bytes((double)p->exact_bytes, b1, sizeof(b1)),
		human_count((double)p->exact_calls, b2, sizeof(b2)));
	fprintf(f, "  live at end  %s", human_bytes(p->live_bytes, b1, sizeof(b1)));
	text_interval(f, p->live_bytes, p->live_bytes_lo, p->live_bytes_hi, false, p->dropped);
	fprintf(f, " in ~%s blocks\n", human_count(p->live_count, b3, sizeof(b3)));
	double at = seconds(p, p->peak_proc, p->peak_ts);
	fprintf(f, "  peak         %s", human_bytes(p->peak_bytes, b1, sizeof(b1)));
	text_interval(f, p->peak_bytes, p->peak_bytes_lo, p->peak_bytes_hi, false, p->dropped);
	fprintf(f, " in ~%s blocks", human_count(p->peak_count, b2, sizeof(b2)));
	if (at >= 0 && p->peak_bytes > 0)
		fprintf(f, " at %.3f s", at);
	fprintf(f, "\n  samples      %s allocations recorded (%.2f%% of calls), %s frees\n",
		human_count((double)p->samples, b1, sizeof(b1)),
		p->exact_calls ? 100.0 * (double)p->samples / (double)p->exact_calls : 0.0,
		human_count((double)p->frees_matched, b2, sizeof(b2)));
	if (p->shed)
		fprintf(f,
			"  shed         %s sampled allocations not recorded under load (the "
			"writer fell behind);\n               those kept carry the lower "
			"probability: estimates stay unbiased, intervals wider\n",
			human_count((double)p->shed, b1, sizeof(b1)));
	if (!p->exact_calls && p->samples)
		fprintf(f, "  (no call-site counts (.freq): estimates are not calibrated)\n");
}

static const char *by_title(enum tt_sort_by by)
{
	switch (by) {
	case TT_BY_COUNT:
		return "allocation count";
	case TT_BY_LIVE:
		return "bytes live at the end (leaks)";
	case TT_BY_PEAK:
		return "bytes live at the peak";
	default:
		return "allocated bytes";
	}
}

static void text_stacks(FILE *f, const struct tt_profile *p, struct tt_resolver *r,
			enum tt_sort_by by, unsigned top, unsigned frames)
{
	unsigned n;
	unsigned *o = tt_report_order(p, by, &n);
	if (!o)
		return;
	double total = by == TT_BY_BYTES   ? p->alloc_bytes
		       : by == TT_BY_COUNT ? p->alloc_count
		       : by == TT_BY_LIVE  ? p->live_bytes
					   : p->peak_bytes;
	fprintf(f, "\nHottest stacks by %s (top %u of %u)\n", by_title(by), top < n ? top : n, n);
	char b1[64], b3[64], b4[64];
	for (unsigned i = 0; i < n && i < top; i++) {
		const struct tt_stack *s = &p->stacks[o[i]];
		double v = tt_stack_metric(s, by);
		if (by == TT_BY_COUNT)
			fprintf(f, "#%-3u %s calls", i + 1, human_count(v, b1, sizeof(b1)));
		else
			fprintf(f, "#%-3u %s", i + 1, human_bytes(v, b1, sizeof(b1)));
		if (by == TT_BY_BYTES)
			text_interval(f, v, s->alloc_bytes_lo, s->alloc_bytes_hi, false, false);
		else if (by == TT_BY_COUNT)
			text_interval(f, v, s->alloc_count_lo, s->alloc_count_hi, true, false);
		else if (by == TT_BY_LIVE)
			text_interval(f, v, s->live_bytes_lo, s->live_bytes_hi, false, p->dropped);
		fprintf(f, "  %.1f%%", total > 0 ? 100.0 * v / total : 0.0);
		if (by != TT_BY_COUNT)
			fprintf(f, "  %s calls", human_count(s->alloc_count, b3, sizeof(b3)));
		else
			fprintf(f, "  %s", human_bytes(s->alloc_bytes, b3, sizeof(b3)));
		fprintf(f, "  %s samples  %u thread%s%s\n",
			human_count((double)s->samples, b4, sizeof(b4)), s->nthreads,
			s->nthreads == 1 ? "" : "s",
			s->synthetic ? "  (call site only: no sample reached it)" : "");
		print_stack_frames(f, p, r, s, frames);
	}
	free(o);
}

static void text_sites(FILE *f, const struct tt_profile *p, struct tt_resolver *r, unsigned top)
{
	size_t n;
	struct site_row *rows = collect_sites(p, &n);
	if (!rows)
		return;
	char b1[64], b2[64], b3[64], nb[256], wb[256];
	qsort(rows, n, sizeof(*rows), cmp_site_bytes);
	fprintf(f, "\nCall sites by bytes (exact, from .freq; top %zu of %zu)\n", top < n ? top : n,
		n);
	fprintf(f, "  %12s %14s %10s  %s\n", "bytes", "calls", "mean", "site");
	for (size_t i = 0; i < n && i < top; i++) {
		const struct tt_rframe *fr = site_frame(r, &rows[i]);
		fprintf(
		    f, "  %12s %14s %10s  %s %s\n",
		    human_bytes((double)rows[i].bytes, b1, sizeof(b1)),
		    human_count((double)rows[i].calls, b2, sizeof(b2)),
		    human_bytes(rows[i].calls ? (double)rows[i].bytes / (double)rows[i].calls : 0,
				b3, sizeof(b3)),
		    fr ? tt_rframe_name(fr, nb, sizeof(nb)) : "?",
		    fr ? tt_rframe_where(fr, wb, sizeof(wb)) : "");
	}
	/* The thousand cuts: many calls, small blocks. */
	qsort(rows, n, sizeof(*rows), cmp_site_calls);
	fprintf(f, "\nThousand cuts: sites with many small allocations (mean < %d B), by calls\n",
		SMALL_SITE);
	fprintf(f, "  %14s %7s %12s %10s  %s\n", "calls", "share", "bytes", "mean", "site");
	unsigned shown = 0;
	for (size_t i = 0; i < n && shown < top; i++) {
		if (!rows[i].calls || rows[i].bytes >= (uint64_t)SMALL_SITE * rows[i].calls)
			continue;
		const struct tt_rframe *fr = site_frame(r, &rows[i]);
		fprintf(f, "  %14s %6.1f%% %12s %10s  %s %s\n",
			human_count((double)rows[i].calls, b1, sizeof(b1)),
			p->exact_calls ? 100.0 * (double)rows[i].calls / (double)p->exact_calls : 0,
			human_bytes((double)rows[i].bytes, b2, sizeof(b2)),
			human_bytes((double)rows[i].bytes / (double)rows[i].calls, b3, sizeof(b3)),
			fr ? tt_rframe_name(fr, nb, sizeof(nb)) : "?",
			fr ? tt_rframe_where(fr, wb, sizeof(wb)) : "");
		shown++;
	}
	if (!shown)
		fprintf(f, "  (none)\n");
	free(rows);
}

static int cmp_thread_bytes(const void *a, const void *b, void *ctx)
{
	const struct tt_trace *t = ctx;
	uint64_t x = t->threads[*(const unsigned *)a].freq_bytes;
	uint64_t y = t->threads[*(const unsigned *)b].freq_bytes;
	return x > y ? -1 : x < y;
}

static void text_threads(FILE *f, const struct tt_profile *p, unsigned top)
{
	const struct tt_trace *t = p->trace;
	unsigned *o = malloc((t->nthreads + 1) * sizeof(*o)), n = 0;
	if (!o)
		return;
	for (unsigned i = 0; i < t->nthreads; i++)
		if (p->threads[i].selected)
			o[n++] = i;
	qsort_r(o, n, sizeof(*o), cmp_thread_bytes, (void *)t);
	char b1[64], b2[64], b3[64], b4[64];
	fprintf(f, "\nThreads by bytes (exact; top %u of %u)\n", top < n ? top : n, n);
	fprintf(f, "  %8s %8s %-16s %12s %14s %10s %10s\n", "pid", "tid", "name", "bytes", "calls",
		"samples", "dropped");
	for (unsigned i = 0; i < n && i < top; i++) {
		const struct tt_thread *th = &t->threads[o[i]];
		const struct tt_thread_stats *st = &p->threads[o[i]];
		fprintf(f, "  %8d %8d %-16s %12s %14s %10s %10s%s\n", th->pid, th->tid, th->name,
			th->freq ? human_bytes((double)th->freq_bytes, b1, sizeof(b1)) : "-",
			th->freq ? human_count((double)th->freq_count, b2, sizeof(b2)) : "-",
			human_count((double)st->samples, b3, sizeof(b3)),
			human_count((double)st->dropped, b4, sizeof(b4)),
			!th->freq	? "  (no .freq)"
			: !th->bin	? "  (no .bin)"
			: st->truncated ? "  (truncated)"
					: "");
	}
	free(o);
}

static void text_histogram(FILE *f, const struct tt_profile *p)
{
	char b1[64], b2[64], b3[64], b4[64];
	fprintf(f, "\nAllocation sizes (estimates)\n");
	fprintf(f, "  %21s %14s %12s %10s\n", "size", "calls", "bytes", "samples");
	for (unsigned i = 0; i < TT_HIST_BUCKETS; i++) {
		const struct tt_hist_bucket *h = &p->hist[i];
		if (!h->samples)
			continue;
		char range[64];
		if (h->max == UINT64_MAX)
			snprintf(range, sizeof(range), ">= %s",
				 human_bytes((double)h->min, b1, sizeof(b1)));
		else
			snprintf(range, sizeof(range), "%s - %s",
				 human_bytes((double)h->min, b1, sizeof(b1)),
				 human_bytes((double)h->max, b2, sizeof(b2)));
		fprintf(f, "  %21s %14s %12s %10s\n", range, human_count(h->count, b3, sizeof(b3)),
			human_bytes(h->bytes, b4, sizeof(b4)),
			human_count((double)h->samples, b1, sizeof(b1)));
	}
}

static void text_notes(FILE *f, const struct tt_profile *p, struct tt_resolver *r)
{
	const struct tt_trace *t = p->trace;
	unsigned missing = tt_resolver_missing_modules(r);
	if (!t->nnotes && !missing && !p->uncalibrated_stacks)
		return;
	fprintf(f, "\nNotes\n");
	for (unsigned i = 0; i < t->nnotes; i++)
		fprintf(f, "  - %s\n", t->notes[i]);
	if (missing)
		fprintf(f,
			"  - %u module%s could not be read or did not match its build-id: "
			"frames there show as module+offset\n",
			missing, missing == 1 ? "" : "s");
	if (p->uncalibrated_stacks)
		fprintf(f,
			"  - %u stack%s had no exact call-site count to calibrate on "
			"(Horvitz-Thompson estimates)\n",
			p->uncalibrated_stacks, p->uncalibrated_stacks == 1 ? "" : "s");
}

int tt_report_text(FILE *f, const struct tt_profile *p, struct tt_resolver *r,
		   const struct tt_report_opts *o)
{
	unsigned top = o->top ? o->top : 10;
	text_header(f, p);
	text_totals(f, p);
	text_stacks(f, p, r, o->by, top, 12);
	text_sites(f, p, r, top);
	if (o->by != TT_BY_LIVE && p->live_bytes >= 0.5)
		text_stacks(f, p, r, TT_BY_LIVE, top < 5 ? top : 5, 8);
	if (o->by != TT_BY_PEAK && p->peak_bytes >= 0.5)
		text_stacks(f, p, r, TT_BY_PEAK, top < 5 ? top : 5, 8);
	text_threads(f, p, top);
	text_histogram(f, p);
	text_notes(f, p, r);
	return ferror(f) ? -1 : 0;
}

/* ---- JSON ---- */

static void json_frames(FILE *f, struct tt_resolver *r, const struct tt_stack *s)
{
	const struct tt_rframe *fr;
	unsigned n = tt_resolve_stack(r, s, &fr);
	char nb[256];
	fputs("\"frames\": [", f);
	for (unsigned i = n; i-- > 0;) { /* root first */
		fputs(i + 1 == n ? "{" : ", {", f);
		fputs("\"function\": ", f);
		json_str(f, tt_rframe_name(&fr[i], nb, sizeof(nb)));
		fputs(", \"file\": ", f);
		json_str(f, fr[i].file);
		fprintf(f, ", \"line\": %u, \"module\": ", fr[i].line);
		json_str(f, fr[i].module);
		fprintf(f, ", \"address\": \"0x%llx\", \"inlined\": %s}",
			(unsigned long long)fr[i].addr, fr[i].inlined ? "true" : "false");
	}
	fputs("]", f);
}

static void json_stack(FILE *f, const struct tt_profile *p, struct tt_resolver *r,
		       const struct tt_stack *s)
{
	fputs("{", f);
	json_frames(f, r, s);
	json_kv_est(f, "alloc_bytes", s->alloc_bytes);
	json_kv_ci(f, "alloc_bytes_ci95", s->alloc_bytes_lo, s->alloc_bytes_hi);
	json_kv_est(f, "alloc_count", s->alloc_count);
	json_kv_ci(f, "alloc_count_ci95", s->alloc_count_lo, s->alloc_count_hi);
	json_kv_est(f, "live_bytes", s->live_bytes);
	json_kv_ci(f, "live_bytes_ci95", s->live_bytes_lo, s->live_bytes_hi);
	json_kv_est(f, "live_count", s->live_count);
	json_kv_est(f, "peak_bytes", s->peak_bytes);
	fprintf(f, ", \"share\": %.6f", p->alloc_bytes > 0 ? s->alloc_bytes / p->alloc_bytes : 0.0);
	fprintf(f, ", \"samples\": %llu, \"pid\": %d, \"truncated\": %s, \"synthetic\": %s",
		(unsigned long long)s->samples, p->trace->procs[s->proc].pid,
		(s->flags & TT_STACK_TRUNCATED) ? "true" : "false",
		s->synthetic ? "true" : "false");
	fprintf(f, ", \"threads_total\": %u, \"threads\": [", s->nthreads);
	for (unsigned i = 0; i < s->nthreads && i < TT_STACK_TIDS; i++)
		fprintf(f, "%s%d", i ? ", " : "", s->tids[i]);
	fputs("]}", f);
}

static void json_sites(FILE *f, const struct tt_profile *p, struct tt_resolver *r)
{
	size_t n;
	struct site_row *rows = collect_sites(p, &n);
	char nb[256];
	if (rows)
		qsort(rows, n, sizeof(*rows), cmp_site_bytes);
	fputs(",\n \"sites\": [", f);
	for (size_t i = 0; rows && i < n; i++) {
		const struct tt_rframe *fr = site_frame(r, &rows[i]);
		fputs(i ? ",\n  {" : "\n  {", f);
		fputs("\"function\": ", f);
		json_str(f, fr ? tt_rframe_name(fr, nb, sizeof(nb)) : NULL);
		fputs(", \"file\": ", f);
		json_str(f, fr ? fr->file : NULL);
		fprintf(f, ", \"line\": %u, \"module\": ", fr ? fr->line : 0);
		json_str(f, fr ? fr->module : NULL);
		fprintf(f,
			", \"address\": \"0x%llx\", \"pid\": %d, \"calls\": %llu, \"bytes\": %llu, "
			"\"small\": %s}",
			(unsigned long long)rows[i].site, p->trace->procs[rows[i].proc].pid,
			(unsigned long long)rows[i].calls, (unsigned long long)rows[i].bytes,
			rows[i].calls && rows[i].bytes < (uint64_t)SMALL_SITE * rows[i].calls
			    ? "true"
			    : "false");
	}
	fputs("]", f);
	free(rows);
}

static void json_stack_list(FILE *f, const struct tt_profile *p, struct tt_resolver *r,
			    const char *key, enum tt_sort_by by, unsigned top)
{
	unsigned n;
	unsigned *o = tt_report_order(p, by, &n);
	fprintf(f, ",\n \"%s\": [", key);
	for (unsigned i = 0; o && i < n && (!top || i < top); i++) {
		fputs(i ? ",\n  " : "\n  ", f);
		json_stack(f, p, r, &p->stacks[o[i]]);
	}
	fputs("]", f);
	free(o);
}

int tt_report_json(FILE *f, const struct tt_profile *p, struct tt_resolver *r,
		   const struct tt_report_opts *o)
{
	const struct tt_trace *t = p->trace;
	fputs("{\"schema\": \"thagtrace-report/1\",\n \"dir\": ", f);
	json_str(f, t->dir);
	fprintf(f, ",\n \"by\": \"%s\", \"top\": %u", sort_name(o->by), o->top);
	fputs(",\n \"processes\": [", f);
	unsigned k = 0;
	for (unsigned i = 0; i < t->nprocs; i++) {
		const struct tt_process *pr = &t->procs[i];
		if (p->filter.pid && pr->pid != p->filter.pid)
			continue;
		int64_t start, dur;
		tt_process_span(pr, &start, &dur);
		fprintf(f, "%s{\"pid\": %d, \"ppid\": %d, \"exe\": ", k++ ? ", " : "", pr->pid,
			pr->ppid);
		json_str(f, pr->exe);
		fputs(", \"cmdline\": ", f);
		json_str(f, pr->cmdline);
		fputs(", \"clock\": ", f);
		json_str(f, pr->clock);
		fputs(", \"sampling\": {\"mode\": ", f);
		json_str(f, pr->mode);
		fprintf(f,
			", \"min_size\": %llu, \"poisson_mean\": %llu, \"max_frames\": %llu}, "
			"\"start_ns\": %lld, \"duration_ns\": %lld, \"clean_end\": %s, "
			"\"untraced_allocs\": %llu, \"freeset_full\": %llu}",
			(unsigned long long)pr->min_size, (unsigned long long)pr->poisson_mean,
			(unsigned long long)pr->max_frames, (long long)start, (long long)dur,
			pr->has_end ? "true" : "false", (unsigned long long)pr->untraced_allocs,
			(unsigned long long)pr->freeset_full);
	}
	fputs("]", f);

	fputs(",\n \"totals\": {\"alloc_bytes\": ", f);
	json_est(f, p->alloc_bytes);
	json_kv_ci(f, "alloc_bytes_ci95", p->alloc_bytes_lo, p->alloc_bytes_hi);
	json_kv_est(f, "alloc_count", p->alloc_count);
	json_kv_est(f, "live_bytes", p->live_bytes);
	json_kv_ci(f, "live_bytes_ci95", p->live_bytes_lo, p->live_bytes_hi);
	json_kv_est(f, "live_count", p->live_count);
	json_kv_est(f, "peak_bytes", p->peak_bytes);
	json_kv_ci(f, "peak_bytes_ci95", p->peak_bytes_lo, p->peak_bytes_hi);
	json_kv_est(f, "peak_count", p->peak_count);
	double at = seconds(p, p->peak_proc, p->peak_ts);
	fprintf(f, ", \"peak_time_s\": %.6f", at > 0 ? at : 0.0);
	fprintf(
	    f,
	    ", \"samples\": %llu, \"events\": %llu, \"dropped\": %llu, \"dropped_bytes\": %llu, "
	    "\"shed\": %llu, \"untraced_allocs\": %llu, \"untraced_bytes\": %llu, "
	    "\"freeset_full\": %llu, "
	    "\"exact_calls\": %llu, \"exact_bytes\": %llu, \"frees_matched\": %llu, "
	    "\"frees_unmatched\": %llu, \"threads\": %u, \"processes\": %u}",
	    (unsigned long long)p->samples, (unsigned long long)p->events,
	    (unsigned long long)p->dropped, (unsigned long long)p->dropped_bytes,
	    (unsigned long long)p->shed, (unsigned long long)p->untraced_allocs,
	    (unsigned long long)p->untraced_bytes, (unsigned long long)p->freeset_full,
	    (unsigned long long)p->exact_calls, (unsigned long long)p->exact_bytes,
	    (unsigned long long)p->frees_matched, (unsigned long long)p->frees_unmatched,
	    p->nthreads, p->nprocesses);

	json_stack_list(f, p, r, "stacks", o->by, o->top);
	json_sites(f, p, r);
	json_stack_list(f, p, r, "leaks", TT_BY_LIVE, o->top);
	fputs(",\n \"peak\": {\"bytes\": ", f);
	json_est(f, p->peak_bytes);
	fprintf(f, ", \"time_s\": %.6f", at > 0 ? at : 0.0);
	json_stack_list(f, p, r, "stacks", TT_BY_PEAK, o->top);
	fputs("}", f);

	fputs(",\n \"size_histogram\": [", f);
	k = 0;
	for (unsigned i = 0; i < TT_HIST_BUCKETS; i++) {
		const struct tt_hist_bucket *h = &p->hist[i];
		if (!h->samples)
			continue;
		fprintf(f, "%s{\"min\": %llu, \"max\": ", k++ ? ", " : "",
			(unsigned long long)h->min);
		if (h->max == UINT64_MAX)
			fputs("null", f);
		else
			fprintf(f, "%llu", (unsigned long long)h->max);
		json_kv_est(f, "count", h->count);
		json_kv_est(f, "bytes", h->bytes);
		fprintf(f, ", \"samples\": %llu}", (unsigned long long)h->samples);
	}
	fputs("]", f);

	fputs(",\n \"threads\": [", f);
	k = 0;
	for (unsigned i = 0; i < t->nthreads; i++) {
		const struct tt_thread *th = &t->threads[i];
		const struct tt_thread_stats *st = &p->threads[i];
		if (!st->selected)
			continue;
		fprintf(f, "%s\n  {\"pid\": %d, \"tid\": %d, \"name\": ", k++ ? "," : "", th->pid,
			th->tid);
		json_str(f, th->name);
		fprintf(f,
			", \"alloc_bytes\": %llu, \"alloc_count\": %llu, \"samples\": %llu, "
			"\"frees\": %llu, \"dropped\": %llu, \"dropped_bytes\": %llu, "
			"\"shed\": %llu, \"clean_end\": %s, "
			"\"truncated\": %s}",
			(unsigned long long)th->freq_bytes, (unsigned long long)th->freq_count,
			(unsigned long long)st->samples, (unsigned long long)st->frees,
			(unsigned long long)st->dropped, (unsigned long long)st->dropped_bytes,
			(unsigned long long)st->shed, st->has_end ? "true" : "false",
			st->truncated ? "true" : "false");
	}
	fputs("]", f);

	fputs(",\n \"notes\": [", f);
	for (unsigned i = 0; i < t->nnotes; i++) {
		fputs(i ? ", " : "", f);
		json_str(f, t->notes[i]);
	}
	fprintf(f, "],\n \"missing_modules\": %u}\n", tt_resolver_missing_modules(r));
	return ferror(f) ? -1 : 0;
}
