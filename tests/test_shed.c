/* SPDX-License-Identifier: MIT */
/*
 * Load shedding (src/core/shed.h): how far it thins at each fill of the ring, and
 * that what it keeps still gives unbiased sums: the sampler's draw and shedding's
 * are independent and each decided before it is made, so sum(size / p) over the
 * kept events estimates the bytes whatever the ring did meanwhile. Fixed seeds: the
 * outcomes are deterministic; the bounds are what the statistics promise.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "../src/core/record.h"
#include "../src/core/shed.h"
#include "../src/core/sites.h"

#define CAP 65536u

static struct thagtrace_thread *thread_new(uint64_t seed)
{
	struct thagtrace_thread *t = aligned_alloc(TT_CACHELINE, sizeof(*t));
	cr_assert_not_null(t);
	memset(t, 0, sizeof(*t));
	ring_init(&t->ring, aligned_alloc(TT_CACHELINE, CAP), CAP);
	struct thagtrace_config c;
	thagtrace_config_init(&c);
	struct sampler_params sp;
	sampler_params_init(&sp, &c);
	sampler_init(&t->sampler, &sp, seed, 1);
	return t;
}

static void thread_free(struct thagtrace_thread *t)
{
	free(t->ring.data);
	free(t);
}

/* One 64-byte record in the ring (an event, as far as shedding cares). */
static void push(struct ring *r)
{
	struct ring_rec *h = ring_reserve(r, 64);
	cr_assert_not_null(h, "the ring is full");
	h->len = 64;
	h->type = 1;
	ring_commit(r, 64);
}

/* Fill the ring to `used` bytes with records nobody consumes. */
static void fill_to(struct ring *r, uint64_t used)
{
	while (load_relaxed(&r->head) - load_relaxed(&r->tail) + 64 <= used)
		push(r);
}

/* A consumer that takes everything (as the writer would), without looking. */
static int take(const struct ring_rec *rec, void *ctx)
{
	(void)rec;
	(void)ctx;
	return 0;
}

Test(shed, nothing_below_five_eighths_then_one_halving_a_32nd)
{
	struct thagtrace_thread *t = thread_new(1);
	struct ring *r = &t->ring;
	cr_expect_eq(shed_level(t), 0, "empty ring");
	fill_to(r, CAP / 2);
	cr_expect_eq(shed_level(t), 0, "half full: the writer's wake-up point, no shedding");
	fill_to(r, CAP * 5 / 8 - 64);
	cr_expect_eq(shed_level(t), 0, "just under 5/8");
	fill_to(r, CAP * 5 / 8);
	cr_expect_eq(shed_level(t), 1, "5/8: one halving");
	fill_to(r, CAP * 5 / 8 + CAP / 32);
	cr_expect_eq(shed_level(t), 2);
	fill_to(r, CAP * 7 / 8 - 64);
	cr_expect_eq(shed_level(t), 8, "the last step before allocations stop fitting");
	/* The writer drains: the producer's copy of the tail still says 7/8, the
	 * shared tail says empty, and the very next decision follows the shared one
	 * (a thread shedding hard hardly moves its head: waiting for it to move on
	 * before looking again kept it shedding long after the drain). */
	ring_drain(r, take, NULL);
	cr_expect_eq(shed_level(t), 0, "drained: nothing shed");
	thread_free(t);
}

Test(shed, thinning_by_two_to_the_minus_k_exactly)
{
	struct thagtrace_thread *t = thread_new(42);
	const unsigned n = 400000;
	for (unsigned k = 1; k <= 6; k++) {
		uint64_t kept = 0, shed0 = load_relaxed(&t->shed);
		for (unsigned i = 0; i < n; i++) {
			double p = shed_thin(t, 0.1, k);
			if (p == 0.0)
				continue;
			cr_assert_eq(p, 0.1 / (double)(1u << k), "k %u: p %.17g, want 0.1 * 2^-%u",
				     k, p, k);
			kept++;
		}
		double want = (double)n / (double)(1u << k);
		double sd = sqrt(want * (1.0 - 1.0 / (double)(1u << k)));
		cr_expect(fabs((double)kept - want) < 5 * sd, "k %u: kept %llu, want %.0f +- %.0f",
			  k, (unsigned long long)kept, want, 5 * sd);
		cr_expect_eq(load_relaxed(&t->shed) - shed0, n - kept,
			     "k %u: every shed one counted", k);
	}
	thread_free(t);
}

/*
 * A producer whose ring the writer drains only now and then, as a starved writer
 * does: allocations of 100 B to 50 KiB, each sampled at the tiered rule's rate for
 * its size, then shed by whatever the ring's fill is at that moment (which the
 * events kept before made). The estimate of the bytes from the kept events, with
 * the probability each recorded, must hold the truth within its interval.
 */
Test(shed, estimates_stay_unbiased_under_shedding, .timeout = 60)
{
	struct thagtrace_thread *t = thread_new(7);
	struct ring *r = &t->ring;
	uint64_t rng = 99, next_drain = 1000;
	double truth = 0, est = 0, var = 0;
	uint64_t sampled = 0, kept = 0, thinned = 0;
	for (unsigned i = 0; i < 2000000; i++) {
		rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
		uint64_t size = rng % 8 == 0 ? 10240 + rng % 40960 : 100 + (rng >> 8) % 900;
		truth += (double)size;
		double p = size >= 10240 ? 1.0 : 0.05;
		if (p < 1.0 && sampler_uniform(&t->sampler) >= p)
			continue;
		/* The writer comes by after 600 to 1400 sampled allocations (the ring
		 * holds 1024 events): the fill crosses 5/8 and more between its visits. */
		if (++sampled == next_drain) {
			ring_drain(r, take, NULL);
			next_drain += 600 + (rng >> 20) % 801;
		}
		unsigned k = shed_level(t);
		double q = k ? shed_thin(t, p, k) : p;
		thinned += k != 0;
		if (q == 0.0)
			continue;
		kept++;
		est += (double)size / q;
		var += (double)size * (double)size * (1.0 - q) / (q * q);
		push(r); /* shedding keeps the ring from filling */
	}
	/* A good share of decisions thinned, and most still kept whole. */
	cr_assert_gt(thinned, sampled / 10, "thinned %llu of %llu", (unsigned long long)thinned,
		     (unsigned long long)sampled);
	cr_assert_lt(thinned, sampled * 9 / 10, "thinned %llu of %llu", (unsigned long long)thinned,
		     (unsigned long long)sampled);
	cr_assert_eq(load_relaxed(&t->shed), sampled - kept, "every shed one counted");
	double sd = sqrt(var);
	cr_expect(fabs(est - truth) < 4 * sd, "estimate %.0f, truth %.0f, sd %.0f (z %.2f)", est,
		  truth, sd, (est - truth) / sd);
	thread_free(t);
}

/* record_decide_at (the interposer's general path and the explicit API): with the
 * ring at 7/8, a site's first allocation is still recorded with certainty (every
 * site keeps a stack), later ones of the large tier are thinned, and in mode all
 * nothing is (a full trace drops and counts instead). */
static void exemptions(uint32_t mode)
{
	struct thagtrace_config c;
	thagtrace_config_init(&c);
	c.sample_mode = mode;
	sampler_params_init(&tt_sampling, &c);
	struct thagtrace_thread *t = thread_new(5);
	cr_assert_eq(sites_init(&t->sites), 0);
	fill_to(&t->ring, CAP * 7 / 8 - 64);
	unsigned thinned = 0;
	for (uintptr_t site = 0x1000; site < 0x1000 + 64 * 16; site += 16) {
		double first = record_decide_at(t, 20000, site);
		cr_expect_eq(first, 1.0, "site %#lx's first allocation: p %g", (unsigned long)site,
			     first);
		for (int i = 0; i < 8; i++) {
			double p = record_decide_at(t, 20000, site);
			if (mode == THAGTRACE_SAMPLE_ALL)
				cr_expect_eq(p, 1.0, "mode all: p %g", p);
			thinned += p < 1.0;
		}
	}
	if (mode == THAGTRACE_SAMPLE_TIERED)
		cr_expect_eq(thinned, 64 * 8, "every later large allocation thinned at 7/8");
	cr_expect_eq(load_relaxed(&t->shed) == 0, mode == THAGTRACE_SAMPLE_ALL);
	sites_fini(&t->sites);
	thread_free(t);
	memset(&tt_sampling, 0, sizeof(tt_sampling));
}

Test(shed, first_allocation_of_a_site_and_mode_all_never_shed)
{
	exemptions(THAGTRACE_SAMPLE_TIERED);
	exemptions(THAGTRACE_SAMPLE_ALL);
}
