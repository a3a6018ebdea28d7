/* SPDX-License-Identifier: MIT */
/*
 * One figure of one call site (bytes or a count; a stack's allocations, or its
 * blocks still live) estimated from the site's exact total and its recorded
 * allocations, with a 95 % interval that holds for few samples too
 * (docs/estimation.md, "Intervals").
 *
 * Allocations recorded with p = 1 are known exactly and are never rescaled. The rest
 * of the site's exact total, U = exact - certain, is shared among the figures in the
 * proportion of their Horvitz-Thompson sums over the p < 1 samples (a ratio
 * estimator). Its interval is the wider of two: the normal one from the ratio's
 * linearized variance, right when the figure has many samples, and a Wilson
 * interval on the figure's share of the site's p < 1 samples, right when it has
 * few or none (a share of 0 in n samples still allows up to ~3.8/n of U). Both are
 * then cut to what cannot be otherwise: at least the bytes of the figure's own
 * samples, at most U less the bytes of the site's samples known to lie outside it.
 */
#ifndef TT_INTERVAL_H
#define TT_INTERVAL_H

#include <stdbool.h>
#include <stdint.h>

/* Sums over a set of recorded allocations, for one figure (x = size in bytes, or
 * x = 1 for counts). */
struct tt_sums {
	double certain; /* sum of x over p = 1 */
	double ht;	/* sum of x / p over p < 1 */
	double var;	/* sum of x^2 (1 - p) / p^2 over p < 1 */
	double raw;	/* sum of x over p < 1 */
	uint64_t k;	/* number of p < 1 */
};

struct tt_interval {
	double est, lo, hi;
};

/* Add one recorded allocation of x (size or 1) and probability p. */
void tt_sums_add(struct tt_sums *s, double x, double p);
/* The same by its weight w = 1/p, added (sign 1) or taken away (-1): a block that
 * joins or leaves a live set takes away exactly what it added. */
void tt_sums_move(struct tt_sums *s, double x, double w, int sign);
/* a += b */
void tt_sums_merge(struct tt_sums *a, const struct tt_sums *b);

/*
 * The figure of `part` (a subset of the site's samples: a stack's, or a stack's
 * still live) given the site's exact total and the sums over all the site's
 * samples. `whole`: the part is all of the site's allocations (its only stack),
 * so its estimate is the exact total, less sure only by the chance that a stack
 * no sample reached shares the site.
 */
struct tt_interval tt_interval_part(double exact, const struct tt_sums *site,
				    const struct tt_sums *part, bool whole);

/* Wilson score interval for a share of k in n at 95 %; n = 0 gives [0, 1]. */
void tt_wilson(uint64_t k, uint64_t n, double *lo, double *hi);

#endif /* TT_INTERVAL_H */
