/* SPDX-License-Identifier: MIT */
/*
 * A small open-addressing hash map from a nonzero 64-bit key to a 32-bit value,
 * linear probing, grown at 1/2 load: the offline tools' index for call sites,
 * stacks by hash and per-file ids. Header-only; no deletion.
 */
#ifndef TT_U64MAP_H
#define TT_U64MAP_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

struct u64map {
	uint64_t *keys; /* 0: empty slot */
	uint32_t *vals;
	size_t cap, len; /* cap: a power of two, or 0 before the first insert */
};

static inline uint64_t u64map_hash(uint64_t k)
{
	/* splitmix64's finalizer: every bit of k reaches every bit of the result. */
	k ^= k >> 30;
	k *= 0xbf58476d1ce4e5b9ull;
	k ^= k >> 27;
	k *= 0x94d049bb133111ebull;
	return k ^ (k >> 31);
}

static inline void u64map_fini(struct u64map *m)
{
	free(m->keys);
	free(m->vals);
	*m = (struct u64map){0};
}

/* The value of key k in *val; false when absent. */
static inline bool u64map_get(const struct u64map *m, uint64_t k, uint32_t *val)
{
	if (!m->cap)
		return false;
	for (size_t i = u64map_hash(k) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
		if (m->keys[i] == k) {
			*val = m->vals[i];
			return true;
		}
		if (!m->keys[i])
			return false;
	}
}

static inline int u64map_grow(struct u64map *m)
{
	size_t ncap = m->cap ? m->cap * 2 : 64;
	uint64_t *nk = calloc(ncap, sizeof(*nk));
	uint32_t *nv = malloc(ncap * sizeof(*nv));
	if (!nk || !nv) {
		free(nk);
		free(nv);
		return -1;
	}
	for (size_t j = 0; j < m->cap; j++) {
		if (!m->keys[j])
			continue;
		size_t i = u64map_hash(m->keys[j]) & (ncap - 1);
		while (nk[i])
			i = (i + 1) & (ncap - 1);
		nk[i] = m->keys[j];
		nv[i] = m->vals[j];
	}
	free(m->keys);
	free(m->vals);
	m->keys = nk;
	m->vals = nv;
	m->cap = ncap;
	return 0;
}

/* Set key k (nonzero) to val, inserting it if absent. Returns 0 or -1 (memory). */
static inline int u64map_put(struct u64map *m, uint64_t k, uint32_t val)
{
	if ((m->len + 1) * 2 > m->cap && u64map_grow(m))
		return -1;
	size_t i = u64map_hash(k) & (m->cap - 1);
	while (m->keys[i] && m->keys[i] != k)
		i = (i + 1) & (m->cap - 1);
	if (!m->keys[i]) {
		m->keys[i] = k;
		m->len++;
	}
	m->vals[i] = val;
	return 0;
}

#endif /* TT_U64MAP_H */
