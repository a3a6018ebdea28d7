/* SPDX-License-Identifier: MIT */
/* Exact call-site table: counts, growth past the first table, changed-only snapshots. */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "../src/core/sites.h"

struct seen {
	uint64_t n, count_sum, bytes_sum, other_count;
};

static void visit(uint64_t site, uint64_t count, uint64_t bytes, void *arg)
{
	struct seen *s = arg;
	s->n++;
	s->count_sum += count;
	s->bytes_sum += bytes;
	if (site == 0)
		s->other_count = count;
}

Test(sites, exact_counts_and_growth)
{
	struct sites s;
	cr_assert_eq(sites_init(&s), 0);
	/* 5000 sites (the first table holds 256) with site i called i % 7 + 1 times. */
	uint64_t want_count = 0, want_bytes = 0;
	for (uint64_t i = 0; i < 5000; i++)
		for (uint64_t k = 0; k <= i % 7; k++) {
			sites_add(&s, 0x400000 + 16 * i, i + k);
			want_count++;
			want_bytes += i + k;
		}
	cr_assert_gt(load_relaxed(&s.table)->capacity, 5000);
	struct seen seen = {0};
	cr_assert_eq(sites_snapshot(&s, visit, &seen), 5000);
	cr_assert_eq(seen.count_sum, want_count);
	cr_assert_eq(seen.bytes_sum, want_bytes);

	/* Nothing changed: nothing to write. Then one site changes: only it. */
	struct seen again = {0};
	cr_assert_eq(sites_snapshot(&s, visit, &again), 0);
	sites_add(&s, 0x400000 + 16 * 42, 100);
	cr_assert_eq(sites_snapshot(&s, visit, &again), 1);
	cr_assert_eq(again.count_sum, 42 % 7 + 2, "cumulative count of that site");
	sites_fini(&s);
}

Test(sites, unknown_site_goes_to_other)
{
	struct sites s;
	cr_assert_eq(sites_init(&s), 0);
	sites_add(&s, 0, 10);
	sites_add(&s, 0, 20);
	sites_add(&s, 0x1234, 5);
	struct seen seen = {0};
	cr_assert_eq(sites_snapshot(&s, visit, &seen), 2);
	cr_assert_eq(seen.other_count, 2);
	cr_assert_eq(seen.bytes_sum, 35);
	sites_fini(&s);
}
