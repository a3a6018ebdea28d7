/* SPDX-License-Identifier: MIT */
/* Strict value parsing (parse.h). */
#include "parse.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

bool tt_parse_size(const char *s, size_t len, uint64_t *out)
{
	if (!len || s[0] < '0' || s[0] > '9')
		return false;
	uint64_t v = 0;
	size_t i = 0;
	for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
		if (v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	unsigned shift = 0;
	if (i < len) {
		switch (s[i]) {
		case 'k':
		case 'K':
			shift = 10;
			break;
		case 'm':
		case 'M':
			shift = 20;
			break;
		case 'g':
		case 'G':
			shift = 30;
			break;
		default:
			return false;
		}
		i++;
	}
	if (i != len || (shift && v > (UINT64_MAX >> shift)))
		return false;
	*out = v << shift;
	return true;
}

bool tt_parse_double(const char *s, size_t len, double lo, double hi, double *out)
{
	char buf[64];
	if (!len || len >= sizeof(buf))
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	char *end;
	errno = 0;
	double v = strtod(buf, &end);
	if (errno || *end || !(v >= lo && v <= hi))
		return false;
	if (out)
		*out = v;
	return true;
}

bool tt_parse_id(const char *s, int32_t *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (!*s || *end || errno || v <= 0 || v > INT32_MAX)
		return false;
	*out = (int32_t)v;
	return true;
}
