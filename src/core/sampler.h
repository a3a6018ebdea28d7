/* SPDX-License-Identifier: MIT */
/*
 * Which allocations are recorded, and with what probability. The probability is
 * decided from the allocation's size and its call site's history *before* the random
 * draw and travels with the event, so sum(size / p) over recorded events is an
 * unbiased estimate of the bytes allocated.
 *
 *   all       p = 1.
 *   tiered    size >= tier_large_bytes: p = 1;
 *             first allocation of a call site (count == 1): p = 1;
 *             otherwise base = rate_medium (size >= tier_medium_bytes) or rate_small,
 *             p = min(1, base * clamp(count / boost_threshold, 1, boost_max)),
 *             where count is the site's exact allocation count including this one.
 *   poisson   bytes are sampled as a Poisson process of mean interval M
 *             (poisson_mean): an allocation of s bytes is recorded when a point falls
 *             in its bytes, which happens with p = 1 - exp(-s / M), independent of
 *             the past (the gaps are exponential, so memoryless).
 * State is per thread (in its handle): no sharing, no atomics.
 *
 * Tiered draws compare 64 random bits with an integer threshold thr: recorded iff
 * rng < thr, so p = thr / 2^64 exactly, the very number the draw used, and the
 * unsampled path has no floating point. (thr is the rule's p rounded down to a
 * multiple of 2^-64.)
 */
#ifndef TT_SAMPLER_H
#define TT_SAMPLER_H

#include <stdbool.h>
#include <stdint.h>

#include "thagtrace.h"

struct sampler {
	uint64_t rng;	     /* wyrand state (a Weyl sequence) */
	double poisson_left; /* bytes until the next Poisson point */
};

/* Derived constants for the hot path, computed once per session from the config. */
struct sampler_params {
	uint32_t mode;
	uint64_t large, medium;
	uint64_t min_size; /* smaller allocations are counted, never recorded */
	/* The hot path's one range test: a tiered size in [min_size, large) is
	 * `size - fast_lo < fast_span`; any other mode has fast_span 0. */
	uint64_t fast_lo, fast_span;
	/* Per tier (0 small, 1 medium): thr at counts up to the boost threshold, and
	 * thr per call above it (thr(count) = per_count * min(count, cap_count)). A
	 * base of 1 sets always[tier]. */
	uint64_t thr[2], per_count[2];
	bool always[2];
	uint64_t threshold, cap_count; /* boost_threshold, boost_threshold * boost_max */
	double poisson_mean, inv_poisson_mean;
};

void sampler_params_init(struct sampler_params *sp, const struct thagtrace_config *cfg);

/* Seed a thread's sampler: `seed` from the config (0: from time and address), mixed
 * with the thread id so threads draw independently. */
void sampler_init(struct sampler *s, const struct sampler_params *sp, uint64_t seed, uint64_t tid);

/* 64 uniform random bits: wyrand (Wang Yi's wyhash generator, as Go's runtime and
 * Zig use it): a Weyl sequence mixed by one 64x64->128 multiply. It passes
 * BigCrush and PractRand, every state is valid, and a draw is an add, a multiply
 * and two xors, with no dependency chain through the state but the add. */
static inline uint64_t sampler_bits(struct sampler *s)
{
	uint64_t x = s->rng += 0xA0761D6478BD642Full;
	unsigned __int128 m = (unsigned __int128)x * (x ^ 0xE7037ED1A0B428DBull);
	return (uint64_t)(m >> 64) ^ (uint64_t)m;
}

/* Uniform double in [0, 1). */
static inline double sampler_uniform(struct sampler *s)
{
	return (double)(sampler_bits(s) >> 11) * 0x1.0p-53;
}

/* The tiered rule's threshold for `tier` (0 small, 1 medium) at a site's count:
 * UINT64_MAX means certain. The one place the rule lives (the base times the boost,
 * capped); sampler_decide and the per-site cache both use it. */
static inline uint64_t sampler_threshold(const struct sampler_params *sp, int tier,
					 uint64_t site_count)
{
	if (sp->always[tier])
		return UINT64_MAX;
	if (site_count <= sp->threshold)
		return sp->thr[tier];
	uint64_t c = site_count < sp->cap_count ? site_count : sp->cap_count;
	unsigned __int128 b = (unsigned __int128)sp->per_count[tier] * c;
	return (b >> 64) ? UINT64_MAX : (uint64_t)b;
}

static inline double sampler_draw(struct sampler *s, uint64_t thr)
{
	if (thr == UINT64_MAX)
		return 1.0;
	return sampler_bits(s) < thr ? (double)thr * 0x1.0p-64 : 0.0;
}

/* Slow path of the Poisson mode: a point fell in this allocation. */
double sampler_poisson_hit(struct sampler *s, const struct sampler_params *sp, uint64_t size);

/*
 * Decide for one allocation of `size` bytes whose call site has now made
 * `site_count` allocations (this one included). Returns the probability it was
 * recorded with, or 0 when it is not recorded. No lock, no allocation, no syscall.
 */
static inline double sampler_decide(struct sampler *s, const struct sampler_params *sp,
				    uint64_t size, uint64_t site_count)
{
	switch (sp->mode) {
	case THAGTRACE_SAMPLE_TIERED: {
		if (size >= sp->large || site_count == 1)
			return 1.0;
		return sampler_draw(s, sampler_threshold(sp, size >= sp->medium, site_count));
	}
	case THAGTRACE_SAMPLE_POISSON:
		s->poisson_left -= (double)size;
		if (s->poisson_left > 0.0)
			return 0.0;
		return sampler_poisson_hit(s, sp, size);
	default:
		return 1.0;
	}
}

/*
 * The same decision with the thresholds cached in the site's entry (thr[2], zero
 * until first computed), refreshed when missing and every 64th allocation: the boost then
 * follows a count at most 63 calls old, still known before the draw, and the event
 * records exactly the threshold used. One draw and one compare on the common path.
 */
/* Out-of-line parts of sampler_decide_cached: modes other than tiered, and the
 * threshold refresh. */
double sampler_decide_slow(struct sampler *s, const struct sampler_params *sp, uint64_t size,
			   uint64_t site_count);
void sampler_refresh(const struct sampler_params *sp, uint64_t site_count, uint64_t thr[2]);

static inline __attribute__((always_inline)) double
sampler_decide_cached(struct sampler *s, const struct sampler_params *sp, uint64_t size,
		      uint64_t site_count, uint64_t thr[2])
{
	if (__builtin_expect(sp->mode != THAGTRACE_SAMPLE_TIERED, 0))
		return sampler_decide_slow(s, sp, size, site_count);
	/* thr[0] == 0: never computed (a real threshold is > 0: rates are > 0). Before
	 * the certain cases, so a new site's entry has its thresholds from its first
	 * call on (the inline fast path reads them without this check). */
	if (__builtin_expect((site_count & 63) == 0 || thr[0] == 0, 0))
		sampler_refresh(sp, site_count, thr);
	if (size >= sp->large || site_count == 1)
		return 1.0;
	uint64_t t = thr[size >= sp->medium];
	if (__builtin_expect(t == UINT64_MAX, 0))
		return 1.0;
	return sampler_bits(s) < t ? (double)t * 0x1.0p-64 : 0.0;
}

#endif /* TT_SAMPLER_H */
