/* SPDX-License-Identifier: MIT */
/*
 * Estimation: from each stack's Horvitz-Thompson sums to figures calibrated on the
 * exact per-site totals of .freq, with 95 % intervals (docs/estimation.md).
 *
 * Under one call site c with exact total T (bytes or count, from .freq), stacks s
 * with HT estimates Y_s summing to Y: the estimate of s is T * Y_s / Y (a ratio
 * estimator: the stacks share the site's exact total in the proportions the sample
 * saw). Its variance by linearization, with A_s = sum over s's samples of
 * x^2 (1-p)/p^2 (the HT variance estimate) and A the same over the whole site:
 *     Var = (T / Y)^2 * ((1 - R)^2 A_s + R^2 (A - A_s)),   R = Y_s / Y.
 * A site with one stack is exact. Stacks whose leaf is no .freq site keep their HT
 * estimate and variance. Live and peak bytes of a stack are its HT sums over the
 * sampled blocks still live, scaled by the same site factor T / Y: the ratio
 * estimator above with Y_s the live sampled sum and A_s its variance term, so a
 * site whose every block leaked comes out exact.
 */
#include <math.h>
#include <stdlib.h>

#include "merge.h"
#include "u64map.h"

struct site_acc {
	uint64_t site;
	uint64_t count, bytes; /* exact */
	double y_bytes, y_count, a_bytes, a_count;
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

/* T * R with R = y_s / y, and its variance (see the top of the file). */
static void ratio(double t, double y, double ys, double a, double as, double *est, double *var)
{
	double r = ys / y, k = t / y;
	*est = t * r;
	double v = k * k * ((1 - r) * (1 - r) * as + r * r * (a - as));
	*var = v > 0 ? v : 0;
}

int tt_estimate(struct tt_profile *p)
{
	const struct tt_trace *t = p->trace;
	struct proc_sites *ps = calloc(t->nprocs ? t->nprocs : 1, sizeof(*ps));
	int rc = -1;
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
		for (unsigned s = 0; s < th->nsites; s++) {
			struct site_acc *a = site_get(&ps[th->proc], th->sites[s].site, true);
			if (!a)
				goto out;
			a->count += th->sites[s].count;
			a->bytes += th->sites[s].bytes;
		}
	}
	for (unsigned i = 0; i < t->nprocs; i++) {
		if (!procs_seen[i])
			continue;
		p->nprocesses++;
		p->untraced_allocs += t->procs[i].untraced_allocs;
		p->untraced_bytes += t->procs[i].untraced_bytes;
		p->freeset_full += t->procs[i].freeset_full;
	}

	/* HT sums of the stacks under each site. */
	unsigned nsampled = p->nstacks;
	for (unsigned i = 0; i < nsampled; i++) {
		struct tt_stack *s = &p->stacks[i];
		struct site_acc *a =
		    s->nframes ? site_get(&ps[s->proc], s->frames[0], false) : NULL;
		if (!a)
			continue;
		a->y_bytes += s->ht_bytes;
		a->y_count += s->ht_count;
		a->a_bytes += s->var_bytes;
		a->a_count += s->var_count;
		a->nstacks++;
	}

	double var_bytes = 0, var_count = 0, peak_bytes = 0, peak_count = 0;
	for (unsigned i = 0; i < nsampled; i++) {
		struct tt_stack *s = &p->stacks[i];
		struct site_acc *a =
		    s->nframes ? site_get(&ps[s->proc], s->frames[0], false) : NULL;
		double vb, vc;
		if (a && a->y_bytes > 0 && a->y_count > 0) {
			ratio((double)a->bytes, a->y_bytes, s->ht_bytes, a->a_bytes, s->var_bytes,
			      &s->alloc_bytes, &vb);
			ratio((double)a->count, a->y_count, s->ht_count, a->a_count, s->var_count,
			      &s->alloc_count, &vc);
			/* Live and peak from the same samples, scaled by the site's
			 * exact-to-sampled ratio: a site whose every block leaked comes
			 * out exact. */
			double kb = (double)a->bytes / a->y_bytes,
			       kc = (double)a->count / a->y_count;
			if (s->live_bytes > 0) {
				double ht_var = s->live_var;
				ratio((double)a->bytes, a->y_bytes, s->live_bytes, a->a_bytes,
				      s->live_var, &s->live_bytes, &s->live_var);
				/* When every sampled block of the site is still live the
				 * ratio's variance estimate is 0, yet unsampled blocks may
				 * have been freed: never claim less than the live sum's own
				 * Horvitz-Thompson variance. */
				if (s->live_var < ht_var)
					s->live_var = ht_var;
			}
			s->live_count *= kc;
			s->peak_bytes *= kb;
			s->peak_count *= kc;
		} else {
			s->alloc_bytes = s->ht_bytes;
			s->alloc_count = s->ht_count;
			vb = s->var_bytes;
			vc = s->var_count;
			var_bytes += vb;
			var_count += vc;
			p->uncalibrated_stacks++;
		}
		s->alloc_bytes_ci = TT_Z95 * sqrt(vb);
		s->alloc_count_ci = TT_Z95 * sqrt(vc);
	}

	/* Sites no sample reached (poisson sampling, or a lost event): their exact
	 * totals under a stack of the call site alone. */
	for (unsigned pi = 0; pi < t->nprocs; pi++) {
		for (size_t j = 0; j < ps[pi].n; j++) {
			struct site_acc *a = &ps[pi].acc[j];
			if (a->count)
				p->calibrated_sites++;
			if (a->y_count > 0 || !a->count)
				continue;
			int idx = tt_profile_stack(p, pi, &a->site, 1, 0);
			if (idx < 0)
				goto out;
			struct tt_stack *s = &p->stacks[idx];
			s->synthetic = true;
			s->alloc_bytes += (double)a->bytes;
			s->alloc_count += (double)a->count;
		}
	}

	for (unsigned i = 0; i < p->nstacks; i++) {
		const struct tt_stack *s = &p->stacks[i];
		p->alloc_bytes += s->alloc_bytes;
		p->alloc_count += s->alloc_count;
		p->live_bytes += s->live_bytes;
		p->live_count += s->live_count;
		p->live_bytes_ci += s->live_var;
		peak_bytes += s->peak_bytes;
		peak_count += s->peak_count;
	}
	/* The peak's moment is where the sampled live total was highest; its size, the
	 * calibrated stacks live at that moment. */
	p->peak_bytes = peak_bytes;
	p->peak_count = peak_count;
	p->alloc_bytes_ci = TT_Z95 * sqrt(var_bytes);
	p->alloc_count_ci = TT_Z95 * sqrt(var_count);
	p->live_bytes_ci = TT_Z95 * sqrt(p->live_bytes_ci);
	rc = 0;
out:
	for (unsigned i = 0; i < t->nprocs; i++) {
		u64map_fini(&ps[i].index);
		free(ps[i].acc);
	}
	free(ps);
	free(procs_seen);
	return rc;
}
