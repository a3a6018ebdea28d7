/* SPDX-License-Identifier: MIT */
/* Tracer settings from THAGTRACE_* environment variables (the brief's contract). */
#ifndef TT_ENV_H
#define TT_ENV_H

#include <stdbool.h>

#include "thagtrace.h"

/*
 * Fill `cfg` (already holding defaults) from the environment:
 *   THAGTRACE_OUT         output directory (required to trace automatically)
 *   THAGTRACE_SAMPLE      all | tiered[:key=value,...] | poisson:BYTES
 *                         tiered keys: large, medium (bytes), rate_medium, rate_small,
 *                         boost_threshold (calls), boost_max
 *   THAGTRACE_MIN_SIZE    bytes; smaller allocations are counted, never recorded
 *   THAGTRACE_UNWIND      auto | fp | libunwind
 *   THAGTRACE_MAX_FRAMES  1..256
 *   THAGTRACE_RING_KB     power of two, 8..1048576
 *   THAGTRACE_FLUSH_MS    1..60000
 *   THAGTRACE_SEED        sampling seed (0: from the clock)
 *   THAGTRACE_DEBUG       1: say more on stderr
 * Sizes take K, M, G suffixes (powers of 1024). Returns 0, or -1 after one stderr
 * line naming the variable and the bad value. No allocation: safe in a constructor.
 */
int env_config(struct thagtrace_config *cfg);

/*
 * THAGTRACE_BLOCK_TAGS: 1 (the default) tags sampled blocks so that their frees
 * are known from the pointer alone (blocktag.h); 0 keeps every sampled pointer in
 * the freeset instead. Returns 0, or -1 having said why on stderr.
 */
int env_block_tags(bool *on);

#endif /* TT_ENV_H */
