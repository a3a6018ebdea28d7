/* SPDX-License-Identifier: MIT */
/* Sampler set-up and the Poisson mode's slow path. */
#include "sampler.h"

#include <math.h>

#include "../common/clock.h"

void sampler_params_init(struct sampler_params *sp, const struct thagtrace_config *cfg)
{
	sp->mode = cfg->sample_mode;
	sp->large = cfg->tier_large_bytes;
	sp->medium = cfg->tier_medium_bytes;
	sp->min_size = cfg->min_size;
	sp->fast_lo = sp->min_size;
	sp->fast_span = sp->mode == THAGTRACE_SAMPLE_TIERED && sp->large > sp->min_size
			    ? sp->large - sp->min_size
			    : 0;
	const double rate[2] = {cfg->rate_small, cfg->rate_medium};
	sp->threshold = cfg->boost_threshold;
	double cap = (double)cfg->boost_threshold * cfg->boost_max;
	sp->cap_count = cap >= 0x1p63 ? UINT64_MAX / 2 : (uint64_t)cap;
	for (int i = 0; i < 2; i++) {
		sp->always[i] = rate[i] >= 1.0;
		/* p * 2^64 < 2^64 for p < 1: exact conversion of the rounded product. */
		sp->thr[i] = sp->always[i] ? UINT64_MAX : (uint64_t)(rate[i] * 0x1p64);
		/* Rounded up, so base * boost_max >= 1 reaches certainty exactly. */
		sp->per_count[i] =
		    sp->thr[i] / cfg->boost_threshold + (sp->thr[i] % cfg->boost_threshold != 0);
	}
	sp->poisson_mean = (double)cfg->poisson_mean;
	sp->inv_poisson_mean = 1.0 / (double)cfg->poisson_mean;
}

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

/* Exponential gap with mean M: -M ln(U), U in (0, 1]. */
static double next_gap(struct sampler *s, const struct sampler_params *sp)
{
	return -sp->poisson_mean * log(1.0 - sampler_uniform(s));
}

void sampler_init(struct sampler *s, const struct sampler_params *sp, uint64_t seed, uint64_t tid)
{
	uint64_t x = seed ? seed : tt_now_ns() ^ (uint64_t)(uintptr_t)s;
	x ^= tid * 0xD6E8FEB86659FD93ull;
	s->rng = splitmix64(&x);
	s->poisson_left = sp->poisson_mean > 0 ? next_gap(s, sp) : 0;
}

double sampler_poisson_hit(struct sampler *s, const struct sampler_params *sp, uint64_t size)
{
	/* The point(s) that fell in this allocation are used up. By memorylessness the
	 * next one lies an exponential gap past the allocation's end, whatever fell
	 * inside it: drawn once, not gap after gap across the allocation (a malloc of
	 * SIZE_MAX / 2 spun size / mean times). */
	s->poisson_left = next_gap(s, sp);
	double p = -expm1(-(double)size * sp->inv_poisson_mean);
	return p > 0.0 ? p : 0x1.0p-53; /* never 0: the event was recorded */
}

double sampler_decide_slow(struct sampler *s, const struct sampler_params *sp, uint64_t size,
			   uint64_t site_count)
{
	return sampler_decide(s, sp, size, site_count);
}

void sampler_refresh(const struct sampler_params *sp, uint64_t site_count, uint64_t thr[2])
{
	thr[0] = sampler_threshold(sp, 0, site_count);
	thr[1] = sampler_threshold(sp, 1, site_count);
}
