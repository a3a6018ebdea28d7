/* SPDX-License-Identifier: MIT */
/*
 * The merge's live set: every sampled allocation not yet freed, (process, pointer)
 * -> stack, size, weight, in one open-addressing table (linear probing, at most half
 * full, 24-byte entries) on transparent huge pages. The table sits at the start of
 * a large reservation of address space and doubles in place: only the new half is
 * faulted in, and no second table is filled and thrown away.
 */
#ifndef TT_LIVE_H
#define TT_LIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "u64map.h"

/* A key is the pointer with the process index above it: in the top byte while a
 * merge has at most 256 processes (user-space pointers stay below 2^56, x86-64
 * with 5-level paging), in the top 16 bits beyond that (a shell script's hundreds
 * of processes; pointers below 2^48, as on 4-level paging and by default on 5-level,
 * where only an explicit address hint maps higher). At most LIVE_MAX_PROCS. */
#define LIVE_MAX_PROCS (1u << 16)

struct live_entry {
	uint64_t key; /* 0: empty */
	uint64_t size;
	uint32_t stack;
	float w; /* 1/p (24 bits of precision are plenty for a weight) */
};

struct live_table {
	struct live_entry *e;
	size_t cap, len;
	size_t room; /* entries the mapping holds from e (cap <= room) */
	void *map;   /* the mapping holding e, and its size */
	size_t map_len;
	/* Optional: fault in [addr, addr + len) on another thread while this one
	 * works up from addr (len 0: stop; returns once none runs). */
	void (*prefault)(void *ctx, void *addr, size_t len);
	void *prefault_ctx;
};

/* Make the table twice as large (the first one when empty). Returns 0 or -1 (out of
 * memory; the table is unchanged). */
int live_grow(struct live_table *t);

/* Unmap the table; it is empty again. */
void live_fini(struct live_table *t);

static inline unsigned live_key_shift(unsigned nprocs)
{
	return nprocs <= 256 ? 56 : 48;
}

static inline uint64_t live_key(uint64_t ptr, unsigned proc, unsigned shift)
{
	return (ptr & ((1ull << shift) - 1)) | ((uint64_t)proc << shift);
}

static inline size_t live_slot(uint64_t key, size_t cap)
{
	return u64map_hash(key) & (cap - 1);
}

static inline void live_prefetch_entry(const struct live_entry *e)
{
#if defined(__x86_64__) || defined(__i386__)
	/* GCC 12 at -O1 and above drops this __builtin_prefetch (its result is
	 * unused, and it proves nothing else about it); the instruction itself
	 * cannot be dropped. */
	__asm__ volatile("prefetcht0 %0" : : "m"(*(const char *)e));
#else
	__builtin_prefetch(e);
#endif
}

/* Start the cache miss of key's home slot. */
static inline void live_prefetch(const struct live_table *t, uint64_t key)
{
	if (t->cap)
		live_prefetch_entry(&t->e[live_slot(key, t->cap)]);
}

static inline struct live_entry *live_find(struct live_table *t, uint64_t key)
{
	if (!t->cap)
		return NULL;
	for (size_t i = live_slot(key, t->cap);; i = (i + 1) & (t->cap - 1)) {
		if (t->e[i].key == key)
			return &t->e[i];
		if (!t->e[i].key)
			return NULL;
	}
}

/* Remove by backward shift: linear probing stays tombstone-free under churn. */
static inline void live_remove(struct live_table *t, struct live_entry *gone)
{
	size_t i = (size_t)(gone - t->e), mask = t->cap - 1;
	for (size_t j = (i + 1) & mask; t->e[j].key; j = (j + 1) & mask) {
		size_t home = live_slot(t->e[j].key, t->cap);
		/* e[j] may fill the hole at i if its home is not in (i, j]. */
		if (((j - home) & mask) >= ((j - i) & mask)) {
			t->e[i] = t->e[j];
			i = j;
		}
	}
	t->e[i].key = 0;
	t->len--;
}

/* The entry of key, inserted (size 0) when absent; *found says which. One probe
 * sequence. NULL when out of memory. */
static inline struct live_entry *live_upsert(struct live_table *t, uint64_t key, bool *found)
{
	/* At most half full: an insert's probe sequence (every ALLOC makes one) then
	 * averages 2.5 slots, against 8.5 at three quarters. */
	if ((t->len + 1) * 2 > t->cap && live_grow(t))
		return NULL;
	size_t i = live_slot(key, t->cap);
	while (t->e[i].key && t->e[i].key != key)
		i = (i + 1) & (t->cap - 1);
	*found = t->e[i].key == key;
	if (!*found) {
		t->e[i].key = key;
		t->len++;
	}
	return &t->e[i];
}

#endif /* TT_LIVE_H */
