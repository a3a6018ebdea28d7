/* SPDX-License-Identifier: MIT */
/*
 * The estimator of one figure (src/analysis/interval.c) against simulated sampling:
 * known allocations are drawn with their probabilities many times over, and the
 * 95 % interval of each figure must hold the truth in about 95 % of the draws,
 * including the small cases where a normal interval fails (a stack with no p < 1
 * sample, a leak among a site's rarely sampled blocks), and what was recorded with
 * p = 1 must come out exact.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>

#include "../src/analysis/interval.h"

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static double uniform(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (double)(rng >> 11) * 0x1.0p-53;
}

/* n allocations of x bytes, the first with probability p_first, the others p; the
 * first `live_first` of them stay live (`live_rest`: the others too). */
struct group {
	unsigned n;
	double x, p_first, p;
	bool live_first, live_rest;
};

struct sim {
	struct tt_sums b, c, live_b; /* of the groups of interest */
	struct tt_sums site_b, site_c;
	double truth_b, truth_c, truth_live, exact_b, exact_c;
};

static void draw(struct sim *s, const struct group *g, bool mine)
{
	for (unsigned i = 0; i < g->n; i++) {
		double p = i == 0 ? g->p_first : g->p;
		bool live = i == 0 ? g->live_first : g->live_rest;
		s->exact_b += g->x;
		s->exact_c += 1;
		if (mine) {
			s->truth_b += g->x;
			s->truth_c += 1;
			s->truth_live += live ? g->x : 0;
		}
		if (p < 1 && uniform() >= p)
			continue;
		tt_sums_add(&s->site_b, g->x, p);
		tt_sums_add(&s->site_c, 1, p);
		if (mine) {
			tt_sums_add(&s->b, g->x, p);
			tt_sums_add(&s->c, 1, p);
			if (live)
				tt_sums_add(&s->live_b, g->x, p);
		}
	}
}

struct coverage {
	unsigned bytes, count, live, runs;
	double mean_b, mean_live;
};

/* `mine` and `other` groups share one call site; `whole`: mine is its only stack. */
static struct coverage simulate(const struct group *mine, unsigned nmine, const struct group *other,
				unsigned nother, bool whole, unsigned runs)
{
	struct coverage cv = {.runs = runs};
	for (unsigned r = 0; r < runs; r++) {
		struct sim s = {0};
		for (unsigned i = 0; i < nmine; i++)
			draw(&s, &mine[i], true);
		for (unsigned i = 0; i < nother; i++)
			draw(&s, &other[i], false);
		struct tt_interval b = tt_interval_part(s.exact_b, &s.site_b, &s.b, whole);
		struct tt_interval c = tt_interval_part(s.exact_c, &s.site_c, &s.c, whole);
		struct tt_interval l = tt_interval_part(s.exact_b, &s.site_b, &s.live_b, false);
		cr_assert(b.lo <= b.est && b.est <= b.hi, "bytes %g outside [%g, %g]", b.est, b.lo,
			  b.hi);
		cr_assert(c.lo <= c.est && c.est <= c.hi, "count %g outside [%g, %g]", c.est, c.lo,
			  c.hi);
		cr_assert(l.lo <= l.est && l.est <= l.hi, "live %g outside [%g, %g]", l.est, l.lo,
			  l.hi);
		cv.bytes += b.lo - 0.5 <= s.truth_b && s.truth_b <= b.hi + 0.5;
		cv.count += c.lo - 0.5 <= s.truth_c && s.truth_c <= c.hi + 0.5;
		cv.live += l.lo - 0.5 <= s.truth_live && s.truth_live <= l.hi + 0.5;
		cv.mean_b += b.est / runs;
		cv.mean_live += l.est / runs;
	}
	return cv;
}

#define AT_LEAST_95(cv, field)                                                                     \
	cr_expect_geq((double)(cv).field / (cv).runs, 0.93,                                        \
		      #field ": %u of %u intervals hold "                                          \
			     "the truth",                                                          \
		      (cv).field, (cv).runs)

/* 20 x 100 B, the first recorded with certainty (a new site), the rest at 1 %:
 * only the first leaks. The old estimator scaled the certain block by the site's
 * factor and called it exact (2000 B, truth 100 B). */
Test(interval, leak_of_the_certain_first_block)
{
	struct group g = {20, 100, 1.0, 0.01, true, false};
	struct coverage cv = simulate(&g, 1, NULL, 0, true, 2000);
	AT_LEAST_95(cv, bytes);
	AT_LEAST_95(cv, count);
	AT_LEAST_95(cv, live);
}

/* The same site, all but the first leak (truth 1900 B): with no sampled live block
 * the interval must still reach the unrecorded bytes. */
Test(interval, leak_of_the_unsampled_blocks)
{
	struct group g = {20, 100, 1.0, 0.01, false, true};
	struct coverage cv = simulate(&g, 1, NULL, 0, true, 2000);
	AT_LEAST_95(cv, live);
}

/* A rare stack under a busy wrapper: one certain 20000 B block and 40 x 100 B at
 * 2 %, beside 20000 x 100 B of another stack. Usually none of the 40 is sampled;
 * the interval must allow for them (truth 24000 B in 41 calls). */
Test(interval, rare_stack_under_a_busy_site)
{
	struct group mine[] = {{1, 20000, 1.0, 1.0, false, false},
			       {40, 100, 0.02, 0.02, false, false}};
	struct group other = {20000, 100, 0.02, 0.02, false, false};
	struct coverage cv = simulate(mine, 2, &other, 1, false, 500);
	AT_LEAST_95(cv, bytes);
	AT_LEAST_95(cv, count);
}

/* The ordinary case: two busy stacks split a site, a fifth of one still live. The
 * estimates are unbiased and the intervals hold. */
Test(interval, busy_split_and_live)
{
	struct group mine[] = {{2000, 64, 0.01, 0.01, true, true},
			       {8000, 64, 0.01, 0.01, false, false}};
	struct group other = {30000, 64, 0.01, 0.01, false, false};
	struct coverage cv = simulate(mine, 2, &other, 1, false, 500);
	AT_LEAST_95(cv, bytes);
	AT_LEAST_95(cv, count);
	AT_LEAST_95(cv, live);
	cr_expect_lt(fabs(cv.mean_b - 640000) / 640000, 0.02, "mean estimate %g, truth 640000",
		     cv.mean_b);
	cr_expect_lt(fabs(cv.mean_live - 128000) / 128000, 0.05,
		     "mean live estimate %g, truth 128000", cv.mean_live);
}

/* Blocks recorded with p = 1 are exact whatever the rest of the site does. */
Test(interval, certain_blocks_are_never_rescaled)
{
	struct tt_sums site = {0}, part = {0};
	tt_sums_add(&part, 65536, 1.0);
	tt_sums_add(&part, 65536, 1.0);
	site = part;
	tt_sums_add(&site, 100, 0.01); /* a small block of another stack, weight 100 */
	/* The site allocated 131072 + 1000 small bytes in all. */
	struct tt_interval iv = tt_interval_part(131072 + 1000, &site, &part, false);
	cr_expect_eq(iv.est, 131072);
	cr_expect_eq(iv.lo, 131072);
	/* Some of the 1000 small bytes could be this stack's: not more than those. */
	cr_expect_leq(iv.hi, 131072 + 1000 - 100);
}

Test(interval, wilson_ends)
{
	double lo, hi;
	tt_wilson(0, 100, &lo, &hi);
	cr_expect_eq(lo, 0);
	cr_expect_float_eq(hi, 3.8415 / 103.8415, 1e-4); /* z^2 / (n + z^2) */
	tt_wilson(100, 100, &lo, &hi);
	cr_expect_float_eq(lo, 100 / 103.8415, 1e-4);
	cr_expect_eq(hi, 1);
	tt_wilson(50, 100, &lo, &hi);
	cr_expect_float_eq(lo, 0.4038, 1e-3);
	cr_expect_float_eq(hi, 0.5962, 1e-3);
	tt_wilson(0, 0, &lo, &hi);
	cr_expect(lo == 0 && hi == 1);
}
