/* SPDX-License-Identifier: MIT */
/* Estimates with intervals that hold for few samples too: see interval.h. */
#include "interval.h"

#include <math.h>

#include "merge.h" /* TT_Z95 */

void tt_sums_add(struct tt_sums *s, double x, double p)
{
	tt_sums_move(s, x, 1.0 / p, 1);
}

void tt_sums_move(struct tt_sums *s, double x, double w, int sign)
{
	if (w == 1.0) {
		s->certain += sign * x;
		return;
	}
	s->ht += sign * x * w;
	s->var += sign * x * x * (w - 1.0) * w; /* x^2 (1 - p) / p^2 */
	s->raw += sign * x;
	s->k += (uint64_t)(int64_t)sign;
}

void tt_sums_merge(struct tt_sums *a, const struct tt_sums *b)
{
	a->certain += b->certain;
	a->ht += b->ht;
	a->var += b->var;
	a->raw += b->raw;
	a->k += b->k;
}

void tt_wilson(uint64_t k, uint64_t n, double *lo, double *hi)
{
	if (n == 0 || k > n) {
		*lo = 0;
		*hi = 1;
		return;
	}
	const double z = TT_Z95, z2 = z * z;
	double nn = (double)n, q = (double)k / nn;
	double mid = (q + z2 / (2 * nn)) / (1 + z2 / nn);
	double half = z / (1 + z2 / nn) * sqrt(q * (1 - q) / nn + z2 / (4 * nn * nn));
	*lo = k == 0 ? 0 : fmax(0, mid - half);
	*hi = k == n ? 1 : fmin(1, mid + half);
}

struct tt_interval tt_interval_part(double exact, const struct tt_sums *site,
				    const struct tt_sums *part, bool whole)
{
	/* U: the site's bytes (or calls) not recorded with certainty. Float sums of
	 * the sampled part can sit a rounding error off the exact ones. */
	double u = fmax(0, exact - site->certain);
	double others = fmax(0, site->raw - part->raw);
	double hard_lo = fmax(0, part->raw), hard_hi = fmax(hard_lo, u - others);
	double est, lo, hi;
	if (whole) {
		double wl, wh;
		tt_wilson(site->k, site->k, &wl, &wh);
		est = u;
		lo = site->k ? u * wl : 0; /* a stack no sample reached may share the site */
		hi = u;
	} else if (site->ht > 0 && site->k > 0) {
		double r = part->ht / site->ht, f = u / site->ht;
		est = u * r;
		double v =
		    f * f * ((1 - r) * (1 - r) * part->var + r * r * (site->var - part->var));
		double sd = sqrt(fmax(0, v));
		lo = est - TT_Z95 * sd;
		hi = est + TT_Z95 * sd;
		/* Few samples: the share of the site's samples bounds the share of U. */
		double wl, wh, q = (double)part->k / (double)site->k;
		tt_wilson(part->k, site->k, &wl, &wh);
		if (part->k) {
			lo = fmin(lo, est * wl / q);
			hi = fmax(hi, est * wh / q);
		} else {
			lo = fmin(lo, 0);
			hi = fmax(hi, u * wh);
		}
	} else {
		/* No sample of the uncertain part: nothing says where U went. */
		est = 0;
		lo = 0;
		hi = u;
	}
	est = fmin(fmax(est, hard_lo), hard_hi);
	lo = fmin(fmax(lo, hard_lo), est);
	hi = fmax(fmin(hi, hard_hi), est);
	double c = fmax(0, part->certain);
	return (struct tt_interval){c + est, c + lo, c + hi};
}
