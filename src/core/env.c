/* SPDX-License-Identifier: MIT */
/* THAGTRACE_* environment parsing: strict, one clear line for a bad value. */
#include "env.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "../common/log.h"
#include "../common/parse.h"

static bool bad(const char *var, const char *value, const char *want)
{
	tt_log("%s=%s: %s; tracing off, the program runs untraced", var, value, want);
	return false;
}

/* tiered options: key=value pairs separated by commas. */
static bool parse_tiered(const char *opts, const char *whole, struct thagtrace_config *c)
{
	const char *p = opts;
	while (*p) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		const char *eq = memchr(p, '=', n);
		if (!eq)
			return bad("THAGTRACE_SAMPLE", whole, "a tiered option needs key=value");
		size_t klen = (size_t)(eq - p), vlen = n - klen - 1;
		const char *v = eq + 1;
		double d;
		uint64_t u;
#define KEY(k) (klen == sizeof(k) - 1 && !memcmp(p, k, klen))
		if (KEY("large") && tt_parse_size(v, vlen, &u))
			c->tier_large_bytes = u;
		else if (KEY("medium") && tt_parse_size(v, vlen, &u))
			c->tier_medium_bytes = u;
		else if (KEY("rate_medium") && tt_parse_double(v, vlen, 1e-9, 1, &d))
			c->rate_medium = d;
		else if (KEY("rate_small") && tt_parse_double(v, vlen, 1e-9, 1, &d))
			c->rate_small = d;
		else if (KEY("boost_threshold") && tt_parse_size(v, vlen, &u) && u >= 1)
			c->boost_threshold = u;
		else if (KEY("boost_max") && tt_parse_double(v, vlen, 1, 1e6, &d))
			c->boost_max = d;
		else
			return bad("THAGTRACE_SAMPLE", whole,
				   "tiered options are large=BYTES, medium=BYTES, rate_medium=P, "
				   "rate_small=P (0 < P <= 1), boost_threshold=N, boost_max=X "
				   "(1..1e6)");
#undef KEY
		p += n + (comma != NULL);
	}
	return true;
}

static bool parse_sample(const char *s, struct thagtrace_config *c)
{
	uint64_t u;
	if (!strcmp(s, "all")) {
		c->sample_mode = THAGTRACE_SAMPLE_ALL;
	} else if (!strcmp(s, "tiered")) {
		c->sample_mode = THAGTRACE_SAMPLE_TIERED;
	} else if (!strncmp(s, "tiered:", 7)) {
		c->sample_mode = THAGTRACE_SAMPLE_TIERED;
		return parse_tiered(s + 7, s, c);
	} else if (!strncmp(s, "poisson:", 8) && tt_parse_size(s + 8, strlen(s + 8), &u) &&
		   u >= 1) {
		c->sample_mode = THAGTRACE_SAMPLE_POISSON;
		c->poisson_mean = u;
	} else {
		return bad("THAGTRACE_SAMPLE", s,
			   "expected all, tiered, tiered:key=value,... or poisson:BYTES");
	}
	return true;
}

/* An integer variable in [lo, hi]; unset leaves *out alone. */
static bool env_u64(const char *var, uint64_t lo, uint64_t hi, uint64_t *out)
{
	const char *s = getenv(var);
	uint64_t v;
	if (!s)
		return true;
	if (!tt_parse_size(s, strlen(s), &v) || v < lo || v > hi) {
		char want[96];
		tt_format(want, sizeof(want), "expected a number from %llu to %llu",
			  (unsigned long long)lo, (unsigned long long)hi);
		return bad(var, s, want);
	}
	*out = v;
	return true;
}

int env_config(struct thagtrace_config *c)
{
	const char *s;
	uint64_t v;
	if ((s = getenv("THAGTRACE_OUT")) && *s) {
		size_t n = strlen(s);
		if (n >= sizeof(c->output_dir))
			return bad("THAGTRACE_OUT", "...", "the path is too long"), -1;
		memcpy(c->output_dir, s, n + 1);
	}
	if ((s = getenv("THAGTRACE_SAMPLE")) && !parse_sample(s, c))
		return -1;
	if (!env_u64("THAGTRACE_MIN_SIZE", 0, UINT64_MAX, &c->min_size))
		return -1;
	if ((s = getenv("THAGTRACE_UNWIND"))) {
		if (!strcmp(s, "auto"))
			c->unwind = THAGTRACE_UNWIND_AUTO;
		else if (!strcmp(s, "fp"))
			c->unwind = THAGTRACE_UNWIND_FP;
		else if (!strcmp(s, "libunwind"))
			c->unwind = THAGTRACE_UNWIND_LIBUNWIND;
		else
			return bad("THAGTRACE_UNWIND", s, "expected auto, fp or libunwind"), -1;
	}
	v = c->max_frames;
	if (!env_u64("THAGTRACE_MAX_FRAMES", 1, THAGTRACE_MAX_FRAMES_LIMIT, &v))
		return -1;
	c->max_frames = (uint32_t)v;
	v = c->ring_kb;
	if (!env_u64("THAGTRACE_RING_KB", 8, 1u << 20, &v))
		return -1;
	if (v & (v - 1))
		return bad("THAGTRACE_RING_KB", getenv("THAGTRACE_RING_KB"),
			   "expected a power of two"),
		       -1;
	c->ring_kb = (uint32_t)v;
	/* Unset: the first threads' rings are larger (see thagtrace.h); set: every ring. */
	c->ring_kb_first = getenv("THAGTRACE_RING_KB") ? 0 : 1024;
	v = c->flush_interval_ms;
	if (!env_u64("THAGTRACE_FLUSH_MS", 1, 60000, &v))
		return -1;
	c->flush_interval_ms = (uint32_t)v;
	if (!env_u64("THAGTRACE_SEED", 0, UINT64_MAX, &c->seed))
		return -1;
	if ((s = getenv("THAGTRACE_ZSTD_LEVEL"))) {
		char *end;
		long l = strtol(s, &end, 10);
		if (!*s || *end || l < -7 || l > 19)
			return bad("THAGTRACE_ZSTD_LEVEL", s, "expected a number from -7 to 19"),
			       -1;
		c->zstd_level = (int32_t)l;
	}
	if ((s = getenv("THAGTRACE_DEBUG")) && *s && strcmp(s, "0"))
		tt_log_set_debug(1);
	return 0;
}

int env_block_tags(bool *on)
{
	const char *s = getenv("THAGTRACE_BLOCK_TAGS");
	*on = true;
	if (!s || !strcmp(s, "1"))
		return 0;
	if (!strcmp(s, "0")) {
		*on = false;
		return 0;
	}
	return bad("THAGTRACE_BLOCK_TAGS", s, "expected 0 or 1"), -1;
}
