/* SPDX-License-Identifier: MIT */
/*
 * The sampler, statistically: every recorded allocation carries the probability it
 * was recorded with, so sum(size / p) must be an unbiased estimate of the bytes,
 * with the variance sum(size^2 (1 - p) / p). Fixed seeds, so the outcomes are
 * deterministic; the bounds are what the statistics promise, not tuned figures.
 */
#include <criterion/criterion.h>
#include <math.h>

#include "../src/core/sampler.h"

static struct sampler_params params(uint32_t mode)
{
	struct thagtrace_config c;
	thagtrace_config_init(&c);
	c.sample_mode = mode;
	c.boost_max = 10; /* a boost far from 1, whatever the default: the rule under test */
	struct sampler_params sp;
	sampler_params_init(&sp, &c);
	return sp;
}

struct estimate {
	double bytes, count, var_bytes, truth_bytes;
	uint64_t n, recorded;
};

/* Feed n allocations of size_of(i) from one site (counts 2..n+1: not the first). */
static struct estimate run(const struct sampler_params *sp, uint64_t seed, uint64_t n,
			   uint64_t (*size_of)(uint64_t), uint64_t first_count)
{
	struct sampler s;
	sampler_init(&s, sp, seed, 1);
	struct estimate e = {0};
	for (uint64_t i = 0; i < n; i++) {
		uint64_t size = size_of(i);
		double p = sampler_decide(&s, sp, size, first_count + i);
		e.truth_bytes += (double)size;
		e.n++;
		if (p > 0) {
			cr_assert(p <= 1.0);
			e.recorded++;
			e.bytes += (double)size / p;
			e.count += 1.0 / p;
			e.var_bytes += (double)size * (double)size * (1 - p) / (p * p);
		}
	}
	return e;
}

static uint64_t size_small(uint64_t i)
{
	return 16 + i % 200;
}
static uint64_t size_medium(uint64_t i)
{
	return 1024 + (i * 37) % 9000;
}
static uint64_t size_large(uint64_t i)
{
	return 10240 + i % 100;
}
static uint64_t size_mixed(uint64_t i)
{
	uint64_t x = i * 2654435761u;
	return x % 10 == 0 ? size_medium(i) : x % 97 == 0 ? size_large(i) : size_small(i);
}

Test(sampler, all_records_everything)
{
	struct sampler_params sp = params(THAGTRACE_SAMPLE_ALL);
	struct estimate e = run(&sp, 7, 10000, size_mixed, 2);
	cr_assert_eq(e.recorded, 10000);
	cr_assert_eq(e.bytes, e.truth_bytes);
}

Test(sampler, tiered_probabilities_are_the_rule)
{
	struct sampler_params sp = params(THAGTRACE_SAMPLE_TIERED);
	struct sampler s;
	sampler_init(&s, &sp, 1, 1);
	/* Large and first-of-site: certain. */
	cr_assert_eq(sampler_decide(&s, &sp, 10240, 500), 1.0);
	cr_assert_eq(sampler_decide(&s, &sp, 1 << 20, 2), 1.0);
	cr_assert_eq(sampler_decide(&s, &sp, 8, 1), 1.0);
	/* Recorded events carry exactly base * boost. */
	for (int k = 0; k < 100000; k++) {
		double p = sampler_decide(&s, &sp, 100, 2);
		cr_assert(p == 0.0 || fabs(p - 0.01) < 1e-15);
		p = sampler_decide(&s, &sp, 2000, 999);
		cr_assert(p == 0.0 || fabs(p - 0.10) < 1e-15);
		p = sampler_decide(&s, &sp, 100, 2500); /* boost 2.5 */
		cr_assert(p == 0.0 || fabs(p - 0.025) < 1e-15);
		p = sampler_decide(&s, &sp, 100, 1000000); /* boost capped at 10 */
		cr_assert(p == 0.0 || fabs(p - 0.10) < 1e-15);
		p = sampler_decide(&s, &sp, 5000, 1000000); /* 0.1 * 10 = 1 */
		cr_assert_eq(p, 1.0);
	}
}

/* One tier at a time, boost off (counts below the threshold): the estimate lies
 * within 4 standard deviations of the truth, and the share recorded is the rate. */
static void check_tier(uint64_t (*size_of)(uint64_t), double rate)
{
	struct sampler_params sp = params(THAGTRACE_SAMPLE_TIERED);
	sp.threshold = UINT64_MAX; /* boost off */
	struct estimate e = run(&sp, 12345, 400000, size_of, 2);
	double sd = sqrt(e.var_bytes);
	cr_assert(fabs(e.bytes - e.truth_bytes) < 4 * sd, "estimate %.0f, truth %.0f, sd %.0f",
		  e.bytes, e.truth_bytes, sd);
	double share = (double)e.recorded / (double)e.n;
	double share_sd = sqrt(rate * (1 - rate) / (double)e.n);
	cr_assert(fabs(share - rate) < 4 * share_sd + 1e-12, "recorded share %.5f, rate %.5f",
		  share, rate);
	cr_assert(fabs(e.count - (double)e.n) < 4 * sqrt((double)e.n * (1 - rate) / rate) + 1e-9);
}

Test(sampler, tiered_small_tier_unbiased)
{
	check_tier(size_small, 0.01);
}

Test(sampler, tiered_medium_tier_unbiased)
{
	check_tier(size_medium, 0.10);
}

Test(sampler, tiered_large_tier_exact)
{
	struct sampler_params sp = params(THAGTRACE_SAMPLE_TIERED);
	struct estimate e = run(&sp, 3, 10000, size_large, 2);
	cr_assert_eq(e.recorded, 10000);
	cr_assert_eq(e.bytes, e.truth_bytes, "sizes >= 10 KiB come out exact");
}

/* Coverage: over many independent seeds, the 95 % interval (estimate +- 1.96 sd)
 * holds the truth about 95 % of the time, boost on, mixed sizes. A biased sampler,
 * or wrong weights, fails this. */
Test(sampler, tiered_with_boost_interval_coverage, .timeout = 60)
{
	struct sampler_params sp = params(THAGTRACE_SAMPLE_TIERED);
	int runs = 2000, covered = 0;
	double sum_z = 0, sum_z2 = 0, sum_d = 0, sum_d2 = 0;
	for (int r = 0; r < runs; r++) {
		/* counts 1..20000: the boost ramps from 1x to 10x over the run */
		struct estimate e = run(&sp, 1000 + (uint64_t)r, 20000, size_mixed, 1);
		double z = (e.bytes - e.truth_bytes) / sqrt(e.var_bytes);
		covered += fabs(z) <= 1.96;
		sum_z += z;
		sum_z2 += z * z;
		double d = (e.bytes - e.truth_bytes) / e.truth_bytes;
		sum_d += d;
		sum_d2 += d * d;
	}
	double mean_d = sum_d / runs;
	double se_d = sqrt((sum_d2 / runs - mean_d * mean_d) / runs);
	double share = (double)covered / runs;
	double mean_z = sum_z / runs;
	cr_log_info("tiered+boost: 95%% intervals held the truth in %.1f%% of %d runs, mean z "
		    "%.4f, var z %.3f; mean relative error %.5f (standard error %.5f)",
		    100 * share, runs, mean_z, sum_z2 / runs, mean_d, se_d);
	cr_assert(share > 0.93 && share < 0.97, "95%% intervals held the truth in %.1f%% of runs",
		  100 * share);
	/* Unbiased: over the runs, the mean error is 0 within 4 of its standard errors.
	 * (z itself is slightly skewed: its variance is estimated from the same samples.) */
	cr_assert(fabs(mean_d) < 4 * se_d, "mean relative error %.5f, standard error %.5f", mean_d,
		  se_d);
	cr_assert(fabs(sum_z2 / runs - 1) < 0.15, "z variance %.3f", sum_z2 / runs);
}

/* The per-site cached thresholds (what the event path uses): same coverage, same
 * unbiasedness, boost ramping as the site's count grows. */
Test(sampler, cached_thresholds_unbiased_with_boost, .timeout = 60)
{
	struct sampler_params sp = params(THAGTRACE_SAMPLE_TIERED);
	int runs = 1000, covered = 0;
	double sum_d = 0, sum_d2 = 0;
	for (int r = 0; r < runs; r++) {
		struct sampler s;
		sampler_init(&s, &sp, 5000 + (uint64_t)r, 1);
		uint64_t thr[2] = {0, 0};
		double est = 0, var = 0, truth = 0;
		for (uint64_t i = 0; i < 20000; i++) {
			uint64_t size = size_mixed(i);
			double p = sampler_decide_cached(&s, &sp, size, i + 1, thr);
			truth += (double)size;
			if (p > 0) {
				est += (double)size / p;
				var += (double)size * (double)size * (1 - p) / (p * p);
			}
		}
		covered += fabs(est - truth) <= 1.96 * sqrt(var);
		double d = (est - truth) / truth;
		sum_d += d;
		sum_d2 += d * d;
	}
	double mean_d = sum_d / runs, se_d = sqrt((sum_d2 / runs - mean_d * mean_d) / runs);
	double share = (double)covered / runs;
	cr_log_info("cached thresholds: coverage %.1f%% of %d runs, mean relative error %.5f (se "
		    "%.5f)",
		    100 * share, runs, mean_d, se_d);
	cr_assert(share > 0.93 && share < 0.97, "coverage %.1f%%", 100 * share);
	cr_assert(fabs(mean_d) < 4 * se_d, "mean relative error %.5f, se %.5f", mean_d, se_d);
}

/* A site whose count grew without decisions (thagtrace_record_site) still gets a
 * real threshold, never "never recorded". */
Test(sampler, cached_thresholds_never_stale_zero)
{
	struct sampler_params sp = params(THAGTRACE_SAMPLE_TIERED);
	struct sampler s;
	sampler_init(&s, &sp, 9, 1);
	uint64_t thr[2] = {0, 0};
	int recorded = 0;
	for (uint64_t c = 5; c < 5 + 20000; c++)
		recorded += sampler_decide_cached(&s, &sp, 100, c, thr) > 0;
	cr_assert_gt(thr[0], 0);
	cr_assert_gt(recorded, 20, "about 1 %% recorded, got %d", recorded);
}

Test(sampler, poisson_unbiased_and_at_the_right_rate, .timeout = 60)
{
	struct sampler_params sp = params(THAGTRACE_SAMPLE_POISSON);
	int runs = 500, covered = 0;
	double sum_z = 0, recorded = 0, total_bytes = 0;
	for (int r = 0; r < runs; r++) {
		struct estimate e = run(&sp, 77 + (uint64_t)r, 20000, size_mixed, 2);
		double z = (e.bytes - e.truth_bytes) / sqrt(e.var_bytes);
		covered += fabs(z) <= 1.96;
		sum_z += z;
		recorded += (double)e.recorded;
		total_bytes += e.truth_bytes;
	}
	double share = (double)covered / runs;
	cr_log_info("poisson: coverage %.1f%% of %d runs, mean z %.4f, %.0f recorded / %.0f "
		    "expected",
		    100 * share, runs, sum_z / runs, recorded, total_bytes / sp.poisson_mean);
	cr_assert(share > 0.92 && share < 0.98, "coverage %.1f%%", 100 * share);
	cr_assert(fabs(sum_z / runs) < 4 / sqrt(runs), "mean z %.4f", sum_z / runs);
	/* About one sample per mean interval of bytes (fewer: several points can fall in
	 * one allocation). */
	double expected = total_bytes / sp.poisson_mean;
	cr_assert(recorded > 0.9 * expected && recorded < 1.05 * expected,
		  "%.0f recorded for %.0f mean intervals", recorded, expected);
}

Test(sampler, threads_draw_independently)
{
	struct sampler_params sp = params(THAGTRACE_SAMPLE_TIERED);
	struct sampler a, b;
	sampler_init(&a, &sp, 42, 100);
	sampler_init(&b, &sp, 42, 101);
	int same = 0;
	for (int i = 0; i < 1000; i++)
		same += sampler_uniform(&a) == sampler_uniform(&b);
	cr_assert_lt(same, 5, "same seed, different threads: different streams");
}

/* A huge request (a program probing malloc(SIZE_MAX / 2)) is decided at once, with
 * p = 1 to double precision, and the next allocation is decided as usual: the gap
 * after it is drawn once, not walked across the allocation mean by mean. */
Test(sampler, poisson_huge_allocation_is_decided_at_once, .timeout = 10)
{
	struct sampler_params sp = params(THAGTRACE_SAMPLE_POISSON);
	struct sampler s;
	sampler_init(&s, &sp, 5, 1);
	cr_assert_eq(sampler_decide(&s, &sp, UINT64_MAX / 2, 2), 1.0);
	cr_assert_gt(s.poisson_left, 0.0, "the next gap is ahead");
	cr_assert_lt(s.poisson_left, 64.0 * sp.poisson_mean, "a gap of the mean's order");
}
