/* SPDX-License-Identifier: MIT */
/*
 * thagtrace-report's output, for people (text) and scripts (JSON, schema
 * "thagtrace-report/1", the design brief's names): hottest stacks, exact call
 * sites, the thousand cuts, leaks, the peak, threads, sizes, drops, and --diff.
 */
#ifndef TT_REPORT_H
#define TT_REPORT_H

#include <stdbool.h>
#include <stdio.h>

#include "merge.h"
#include "resolve.h"

enum tt_sort_by { TT_BY_BYTES, TT_BY_COUNT, TT_BY_LIVE, TT_BY_PEAK };

struct tt_report_opts {
	unsigned top; /* stacks shown; 0: all (JSON), 10 (text) */
	enum tt_sort_by by;
};

/* Parse "bytes", "count", "live", "peak". Returns false for anything else. */
bool tt_sort_by_parse(const char *s, enum tt_sort_by *by);

/* Stack indexes sorted by the metric, largest first (free the result). Stacks
 * whose metric is 0 are left out; *n says how many remain. */
unsigned *tt_report_order(const struct tt_profile *p, enum tt_sort_by by, unsigned *n);

/* The metric of a stack. */
double tt_stack_metric(const struct tt_stack *s, enum tt_sort_by by);

int tt_report_text(FILE *f, const struct tt_profile *p, struct tt_resolver *r,
		   const struct tt_report_opts *o);
int tt_report_json(FILE *f, const struct tt_profile *p, struct tt_resolver *r,
		   const struct tt_report_opts *o);

/* --diff: stacks matched by their symbolized frames (addresses differ between runs),
 * the metric's change from base to cur, largest changes first. */
int tt_diff_text(FILE *f, const struct tt_profile *base, struct tt_resolver *rb,
		 const struct tt_profile *cur, struct tt_resolver *rc,
		 const struct tt_report_opts *o);
int tt_diff_json(FILE *f, const struct tt_profile *base, struct tt_resolver *rb,
		 const struct tt_profile *cur, struct tt_resolver *rc,
		 const struct tt_report_opts *o);

#endif /* TT_REPORT_H */
