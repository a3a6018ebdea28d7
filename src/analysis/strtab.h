/* SPDX-License-Identifier: MIT */
/*
 * Interned strings with a value each: the offline tools' aggregation by text (folded
 * lines, stack keys for --diff). Header-only on top of u64map.
 */
#ifndef TT_STRTAB_H
#define TT_STRTAB_H

#include <stdlib.h>
#include <string.h>

#include "u64map.h"

struct strtab {
	struct u64map index; /* string hash (bumped on collision) -> slot */
	char **strs;
	double *vals[2]; /* two values per string (e.g. base and new) */
	size_t n, cap;
};

static inline uint64_t strtab_hash(const char *s, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a, then mixed */
	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
	h = u64map_hash(h);
	return h ? h : 1;
}

/* The slot of s[0..len), added with values 0 when new; -1 when out of memory. */
static inline long strtab_intern(struct strtab *t, const char *s, size_t len)
{
	uint64_t h = strtab_hash(s, len);
	uint32_t slot;
	while (u64map_get(&t->index, h, &slot)) {
		if (!strncmp(t->strs[slot], s, len) && t->strs[slot][len] == 0)
			return slot;
		h = h + 1 ? h + 1 : 1;
	}
	if (t->n == t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 256;
		char **ns = realloc(t->strs, ncap * sizeof(*ns));
		if (ns)
			t->strs = ns;
		for (int k = 0; k < 2 && ns; k++) {
			double *nv = realloc(t->vals[k], ncap * sizeof(*nv));
			if (!nv)
				ns = NULL;
			else
				t->vals[k] = nv;
		}
		if (!ns)
			return -1;
		t->cap = ncap;
	}
	char *copy = strndup(s, len);
	if (!copy || u64map_put(&t->index, h, (uint32_t)t->n)) {
		free(copy);
		return -1;
	}
	t->strs[t->n] = copy;
	t->vals[0][t->n] = t->vals[1][t->n] = 0;
	return (long)t->n++;
}

static inline void strtab_fini(struct strtab *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->strs[i]);
	free(t->strs);
	free(t->vals[0]);
	free(t->vals[1]);
	u64map_fini(&t->index);
	memset(t, 0, sizeof(*t));
}

#endif /* TT_STRTAB_H */
