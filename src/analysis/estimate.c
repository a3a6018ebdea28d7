/* SPDX-License-Identifier: MIT */
/*
 * Estimation: from each stack's sums over its recorded allocations to figures
 * calibrated on the exact per-site totals of .freq, with 95 % intervals
 * (docs/estimation.md). The arithmetic of one figure is interval.c's: what was
 * recorded with p = 1 is exact; the rest of the site's exact total is shared among
 * its stacks in the proportions of their Horvitz-Thompson sums, with intervals
 * that also hold when a stack has few samples or none. Live and peak bytes of a
 * stack are the same with the stack's blocks still live (at the end, at the peak)
 * in place of all its blocks. Stacks whose leaf is no .freq site keep their HT
 * estimate and its normal interval.
 */
#include <math.h>
#include <stdlib.h>

#include "merge.h"
#include "u64map.h"

struct site_acc {
	uint64_t site;
	uint64_t count, bytes;		       /* exact */
	struct tt_sums sb, sc, live_b, live_c; /* over its stacks' samples */
	struct tt_sums peak_b;		       /* and those live at the peak */
	unsigned nstacks;
};

struct proc_sites {
	struct u64map index; /* site + 1 -> slot */
	struct site_acc *acc;
	size_t n, cap;
};

static struct site_acc *site_get(struct proc_sites *ps, uint64_t site, bool create)
{
	uint32_t slot;
	if (u64map_get(&ps->index, site + 1, &slot))
		return &ps->acc[slot];
	if (!create)
		return NULL;
	if (ps->n == ps->cap) {
		size_t ncap = ps->cap ? ps->cap * 2 : 64;
		struct site_acc *a = realloc(ps->acc, ncap * sizeof(*a));
		if (!a)
			return NULL;
		ps->acc = a;
		ps->cap = ncap;
	}
	if (u64map_put(&ps->index, site + 1, (uint32_t)ps->n))
		return NULL;
	ps->acc[ps->n] = (struct site_acc){.site = site};
	return &ps->acc[ps->n++];
}

/* Sums of independent parts' one-sided widths, added in quadrature. */
struct widths {
	double est, down, up;
};

static void widths_add(struct widths *w, struct tt_interval iv)
{
	w->est += iv.est;
	w->down += (iv.est - iv.lo) * (iv.est - iv.lo);
	w->up += (iv.hi - iv.est) * (iv.hi - iv.est);
}

static void widths_get(const struct widths *w, double *lo, double *hi)
{
	*lo = fmax(0, w->est - sqrt(w->down));
	*hi = w->est + sqrt(w->up);
}

/* A figure with no exact total: its HT estimate and normal interval. */
static struct tt_interval uncalibrated(const struct tt_sums *s)
{
	double est = s->certain + s->ht, sd = TT_Z95 * sqrt(fmax(0, s->var));
	return (struct tt_interval){est, fmax(s->certain + s->raw, est - sd), est + sd};
}

/* Put an interval's ends in [lo, hi] fields and return the estimate. */
static double set_iv(struct tt_interval iv, double *lo, double *hi)
{
	*lo = iv.lo;
	*hi = iv.hi;
	return iv.est;
}

int tt_estimate(struct tt_profile *p)
{
	const struct tt_trace *t = p->trace;
	struct proc_sites *ps = calloc(t->nprocs ? t->nprocs : 1, sizeof(*ps));
	int rc = -1;
	struct widths *live_p = NULL;
	if (!ps)
		return -1;
	bool *procs_seen = calloc(t->nprocs ? t->nprocs : 1, sizeof(*procs_seen));
	if (!procs_seen)
		goto out;

	/* Exact totals per (process, site) over the selected threads. */
	for (unsigned i = 0; i < t->nthreads; i++) {
		const struct tt_thread *th = &t->threads[i];
		const struct tt_thread_stats *st = &p->threads[i];
		if (!st->selected)
			continue;
		p->nthreads++;
		procs_seen[th->proc] = true;
		p->exact_calls += th->freq_count;
		p->exact_bytes += th->freq_bytes;
		p->dropped += st->dropped;
		p->dropped_bytes += st->dropped_bytes;
		p->shed += st->shed;
		if (t->procs[th->proc].uncalibrated)
			continue; /* its sites' exact totals, or its samples, are incomplete */
		for (unsigned s = 0; s < th->nsites; s++) {
			struct site_acc *a = site_get(&ps[th->proc], th->sites[s].site, true);
			if (!a)
				goto out;
			a->count += th->sites[s].count;
			a->bytes += th->sites[s].bytes;
		}
	}
	for (unsigned i = 0; i < t->nprocs; i++) {
		/* A process with a .meta and no thread file (it ended before the writer
		 * had anything of it) ran traced too: counted when no thread filter
		 * applies, as the header lists it. */
		if (!procs_seen[i] &&
		    (p->filter.tid || (p->filter.pid && t->procs[i].pid != p->filter.pid)))
			continue;
		p->nprocesses++;
		p->untraced_allocs += t->procs[i].untraced_allocs;
		p->untraced_bytes += t->procs[i].untraced_bytes;
		p->freeset_full += t->procs[i].freeset_full;
	}

	/* Sums of the stacks under each site. */
	unsigned nsampled = p->nstacks;
	for (unsigned i = 0; i < nsampled; i++) {
		struct tt_stack *s = &p->stacks[i];
		struct site_acc *a =
		    s->nframes ? site_get(&ps[s->proc], s->frames[0], false) : NULL;
		if (!a)
			continue;
		tt_sums_merge(&a->sb, &s->sb);
		tt_sums_merge(&a->sc, &s->sc);
		tt_sums_merge(&a->live_b, &s->live_b);
		tt_sums_merge(&a->live_c, &s->live_c);
		tt_sums_merge(&a->peak_b, &s->peak_b);
		a->nstacks++;
	}

	struct widths alloc_b = {0}, alloc_c = {0}, live = {0}, peak = {0};
	/* Live at the end of each process: each is a moment of its own (processes
	 * of one trace may have lived one after another). */
	live_p = calloc(t->nprocs ? t->nprocs : 1, sizeof(*live_p));
	if (!live_p)
		goto out;
	double peak_bytes = 0, peak_count = 0;
	for (unsigned i = 0; i < nsampled; i++) {
		struct tt_stack *s = &p->stacks[i];
		struct site_acc *a =
		    s->nframes ? site_get(&ps[s->proc], s->frames[0], false) : NULL;
		if (a && (a->count || a->bytes)) {
			double nb = (double)a->bytes, nc = (double)a->count;
			bool whole = a->nstacks == 1;
			s->alloc_bytes = set_iv(tt_interval_part(nb, &a->sb, &s->sb, whole),
						&s->alloc_bytes_lo, &s->alloc_bytes_hi);
			s->alloc_count = set_iv(tt_interval_part(nc, &a->sc, &s->sc, whole),
						&s->alloc_count_lo, &s->alloc_count_hi);
			s->live_bytes = set_iv(tt_interval_part(nb, &a->sb, &s->live_b, false),
					       &s->live_bytes_lo, &s->live_bytes_hi);
			s->live_count = tt_interval_part(nc, &a->sc, &s->live_c, false).est;
			s->peak_bytes = tt_interval_part(nb, &a->sb, &s->peak_b, false).est;
			s->peak_count = tt_interval_part(nc, &a->sc, &s->peak_c, false).est;
		} else {
			struct tt_interval b = uncalibrated(&s->sb), c = uncalibrated(&s->sc),
					   l = uncalibrated(&s->live_b);
			s->alloc_bytes = set_iv(b, &s->alloc_bytes_lo, &s->alloc_bytes_hi);
			s->alloc_count = set_iv(c, &s->alloc_count_lo, &s->alloc_count_hi);
			s->live_bytes = set_iv(l, &s->live_bytes_lo, &s->live_bytes_hi);
			s->live_count = uncalibrated(&s->live_c).est;
			s->peak_bytes = uncalibrated(&s->peak_b).est;
			s->peak_count = uncalibrated(&s->peak_c).est;
			widths_add(&alloc_b, b);
			widths_add(&alloc_c, c);
			widths_add(&live, l);
			widths_add(&live_p[s->proc], l);
			widths_add(&peak, uncalibrated(&s->peak_b));
			p->uncalibrated_stacks++;
		}
	}

	/* Per site: live bytes in all (sites are independent; the stacks of one are
	 * not), and what no sample placed: a site that none reached, or a site of
	 * several stacks with no p < 1 sample, whose uncertain part no stack can
	 * claim, goes to a stack of the call site alone. */
	for (unsigned pi = 0; pi < t->nprocs; pi++) {
		for (size_t j = 0; j < ps[pi].n; j++) {
			struct site_acc *a = &ps[pi].acc[j];
			if (a->count)
				p->calibrated_sites++;
			if (a->nstacks) {
				struct tt_interval l =
				    tt_interval_part((double)a->bytes, &a->sb, &a->live_b, false);
				widths_add(&live, l);
				widths_add(&live_p[pi], l);
				widths_add(&peak, tt_interval_part((double)a->bytes, &a->sb,
								   &a->peak_b, false));
			}
			double rest_b = (double)a->bytes - a->sb.certain,
			       rest_c = (double)a->count - a->sc.certain;
			if (!a->nstacks && rest_b > 0) {
				/* No sample at all (every call under the minimum size, or
				 * dropped): any of its blocks may be live, at the end or at
				 * the peak. */
				struct tt_interval u = {0, 0, rest_b};
				widths_add(&live, u);
				widths_add(&live_p[pi], u);
				widths_add(&peak, u);
			}
			if (!a->count || rest_c < 0.5 || (a->nstacks == 1 || a->sc.k > 0))
				continue;
			int idx = tt_profile_stack(p, pi, &a->site, 1, 0, 0);
			if (idx < 0)
				goto out;
			struct tt_stack *s = &p->stacks[idx];
			s->synthetic = true;
			rest_b = rest_b > 0 ? rest_b : 0;
			s->alloc_bytes += rest_b;
			s->alloc_bytes_lo += rest_b;
			s->alloc_bytes_hi += rest_b;
			s->alloc_count += rest_c;
			s->alloc_count_lo += rest_c;
			s->alloc_count_hi += rest_c;
			s->live_bytes_hi += rest_b; /* unknown: up to all of it live */
		}
	}

	for (unsigned i = 0; i < p->nstacks; i++) {
		const struct tt_stack *s = &p->stacks[i];
		p->alloc_bytes += s->alloc_bytes;
		p->alloc_count += s->alloc_count;
		p->live_count += s->live_count;
		peak_bytes += s->peak_bytes;
		peak_count += s->peak_count;
	}
	/* Calibrated sites add exact totals: only uncalibrated stacks widen these. */
	widths_get(&alloc_b, &p->alloc_bytes_lo, &p->alloc_bytes_hi);
	widths_get(&alloc_c, &p->alloc_count_lo, &p->alloc_count_hi);
	p->alloc_bytes_lo += p->alloc_bytes - alloc_b.est;
	p->alloc_bytes_hi += p->alloc_bytes - alloc_b.est;
	p->alloc_count_lo += p->alloc_count - alloc_c.est;
	p->alloc_count_hi += p->alloc_count - alloc_c.est;
	p->live_bytes = live.est;
	widths_get(&live, &p->live_bytes_lo, &p->live_bytes_hi);
	unsigned pe = 0; /* the process holding the most at its end */
	for (unsigned i = 1; i < t->nprocs; i++)
		if (live_p[i].est > live_p[pe].est)
			pe = i;
	if (t->nprocs && live_p[pe].est > peak_bytes) {
		/* A process's end is a moment too, and calibrated it holds more than
		 * the one the timeline chose on its uncalibrated sums: that end is the
		 * peak, with that process's stacks live there and nothing else. */
		double live_lo, live_hi, count = 0;
		widths_get(&live_p[pe], &live_lo, &live_hi);
		for (unsigned i = 0; i < p->nstacks; i++) {
			struct tt_stack *s = &p->stacks[i];
			bool in = s->proc == pe;
			s->peak_bytes = in ? s->live_bytes : 0;
			s->peak_count = in ? s->live_count : 0;
			count += s->peak_count;
		}
		const struct tt_process *pr = &t->procs[pe];
		p->peak_bytes = live_p[pe].est;
		p->peak_count = count;
		p->peak_bytes_lo = live_lo;
		p->peak_bytes_hi = fmax(p->peak_bytes_hi, live_hi);
		p->peak_proc = pe;
		p->peak_ts = pe == p->last_proc || !pr->nanchors
				 ? p->last_ts
				 : pr->anchors[pr->nanchors - 1].ticks;
	} else {
		/* The peak's moment and ends come from merge.c's timeline; its size, the
		 * calibrated stacks live at that moment. The interval: that moment's
		 * half-width of the sums, widened to the sites' own intervals there
		 * (small blocks live, none sampled: a width the sums alone do not
		 * have), and above up to the highest high bound of any moment. */
		double half = p->peak_bytes_lo, lo, hi;
		widths_get(&peak, &lo, &hi);
		p->peak_bytes = peak_bytes;
		p->peak_count = peak_count;
		p->peak_bytes_lo = fmax(0, fmin(peak_bytes - half, peak_bytes - (peak.est - lo)));
		p->peak_bytes_hi =
		    fmax(p->peak_bytes_hi, fmax(peak_bytes + half, peak_bytes + (hi - peak.est)));
	}
	rc = 0;
out:
	free(live_p);
	for (unsigned i = 0; i < t->nprocs; i++) {
		u64map_fini(&ps[i].index);
		free(ps[i].acc);
	}
	free(ps);
	free(procs_seen);
	return rc;
}
