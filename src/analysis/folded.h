/* SPDX-License-Identifier: MIT */
/* Folded stacks ("root;...;leaf VALUE" per line), as flamegraph.pl, inferno and
 * speedscope read them. */
#ifndef TT_FOLDED_H
#define TT_FOLDED_H

#include <stddef.h>

#include "report.h"

/*
 * Write the stacks' metric `by` to path: one line per distinct folded stack (stacks
 * that print the same are summed), value rounded to an integer, zero lines left
 * out, sorted by value, largest first. Frames are function names (inline frames
 * expanded); unknown ones module+0xoffset. Returns 0, or -1 with "PATH: what" in
 * err.
 */
int tt_folded_write(const char *path, const struct tt_profile *p, struct tt_resolver *r,
		    enum tt_sort_by by, char *err, size_t errcap);

/* The folded text of stack s (root first, ';'-separated) into *buf (grown as
 * needed, caller frees). Returns its length, or -1 when out of memory. */
long tt_folded_stack(struct tt_resolver *r, const struct tt_stack *s, bool with_lines, char **buf,
		     size_t *cap);

#endif /* TT_FOLDED_H */
