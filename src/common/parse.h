/* SPDX-License-Identifier: MIT */
/* Strict parsing of setting and option values, shared by the tracer's environment
 * (src/core/env.c) and the command-line tools: the whole string or nothing. */
#ifndef TT_PARSE_H
#define TT_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* s[0..len): digits with an optional K/M/G suffix (powers of 1024). */
bool tt_parse_size(const char *s, size_t len, uint64_t *out);

/* s[0..len): a decimal number in [lo, hi]. out may be NULL. */
bool tt_parse_double(const char *s, size_t len, double lo, double hi, double *out);

/* s: a positive decimal id (pid, tid, count) that fits in int32_t. */
bool tt_parse_id(const char *s, int32_t *out);

#endif /* TT_PARSE_H */
