/* SPDX-License-Identifier: MIT */
/* thagtrace-merge's outputs: DIR/merged/ with the folded files, profile.pb.gz and
 * summary.json. */
#ifndef TT_MERGED_H
#define TT_MERGED_H

#include <stddef.h>

#include "report.h"

/* Write every output into outdir (created when missing). Returns 0, or -1 with
 * "PATH: what" in err. */
int tt_merged_write(const char *outdir, const struct tt_profile *p, struct tt_resolver *r,
		    char *err, size_t errcap);

/* The pprof profile alone (profile.pb.gz). */
int tt_merged_pprof(const char *path, const struct tt_profile *p, struct tt_resolver *r, char *err,
		    size_t errcap);

#endif /* TT_MERGED_H */
