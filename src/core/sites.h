/* SPDX-License-Identifier: MIT */
/*
 * Exact per-thread call-site table: count and bytes of every allocation per call site
 * (return address), sampled or not. One writer (the owning thread) and one reader
 * (the writer thread, for .freq snapshots); no RMW atomics on the owner's path.
 * The table grows by mmap (rare); a replaced table is handed to the reader, which
 * unmaps it on its next pass, when it can no longer hold a pointer into it.
 */
#ifndef TT_SITES_H
#define TT_SITES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/atomic.h"

struct site_entry {
	/* site: 0 = empty. Owner stores count/bytes, then store_release(site) on insert;
	 * the reader load_acquire(site)s before reading count/bytes. */
	_Atomic uint64_t site;
	_Atomic uint64_t count;
	_Atomic uint64_t bytes;
	uint64_t written_count; /* reader-private: count at the last snapshot */
	uint64_t thr[2];	/* owner-private: the sampler's cached thresholds */
	uint64_t spare[2];
} __attribute__((aligned(64))); /* one cache line an entry, never two */

struct site_table {
	uint64_t capacity;     /* entries, power of two */
	_Atomic uint64_t used; /* owner writes (relaxed); the writer reads whether 0 */
	size_t map_bytes;
	struct site_table *retired_next;
	struct site_entry e[];
};

struct sites {
	_Atomic(struct site_table *) table;   /* owner store_release; reader load_acquire */
	_Atomic(struct site_table *) retired; /* owner pushes (CAS), reader takes (exchange) */
	/* Owner-private copies of the current table's entries, shift and capacity - 1:
	 * a lookup reads them from the handle, not from the table's header line. */
	struct site_entry *e;
	uint64_t mask;
	unsigned shift;
	struct site_entry other; /* site 0, or the table full: unattributed */
};

#define SITES_INITIAL_CAPACITY 256u

/* Map the first table. Returns 0 or THAGTRACE_ENOMEM. */
int sites_init(struct sites *s);

/* Unmap every table; nobody may use `s` any more. */
void sites_fini(struct sites *s);

/* As sites_fini then sites_init, for a new owner (a recycled handle; nobody else
 * may use it), but a table of the initial size is emptied and kept, not remapped.
 * Returns 0 or THAGTRACE_ENOMEM (then no table). */
int sites_recycle(struct sites *s);

/* Owner slow path: insert `site` (not present) with its first allocation; returns
 * its entry (the "other" entry when it could not be placed). */
struct site_entry *sites_insert(struct sites *s, uint64_t site, uint64_t size);

/* The first slot of a site: the top bits of a Fibonacci hash. */
#define SITES_HASH_MUL 0x9E3779B97F4A7C15ull

static inline unsigned sites_shift(const struct site_table *t)
{
	return 64u - (unsigned)__builtin_ctzll(t->capacity);
}

static inline uint64_t sites_slot(const struct site_table *t, uint64_t site)
{
	return (site * SITES_HASH_MUL) >> sites_shift(t);
}

/* Owner: the entry of `site` (not 0), or NULL when the table does not hold it yet. */
static inline struct site_entry *sites_find(struct sites *s, uint64_t site)
{
	struct site_entry *e = s->e;
	for (uint64_t i = (site * SITES_HASH_MUL) >> s->shift;; i = (i + 1) & s->mask) {
		uint64_t k = load_relaxed(&e[i].site);
		if (__builtin_expect(k == site, 1)) {
			struct site_entry *hit = e + i;
			if ((uintptr_t)hit == 0) /* a mapping: tells the caller's test */
				__builtin_unreachable();
			return hit;
		}
		if (k == 0)
			return NULL;
	}
}

/* Owner: count one allocation of `size` bytes in entry e; returns its new count. */
static inline uint64_t sites_count(struct site_entry *e, uint64_t size)
{
	uint64_t c = load_relaxed(&e->count) + 1;
	store_relaxed(&e->count, c);
	counter_add_single_writer(&e->bytes, size);
	return c;
}

/* Owner: count one allocation of `size` bytes at `site`; returns the site's entry
 * (its count includes this one). Lock-free, no syscall in the common case (an
 * insert that grows the table maps memory). */
static inline struct site_entry *sites_add(struct sites *s, uint64_t site, uint64_t size)
{
	struct site_entry *e = site ? sites_find(s, site) : NULL;
	if (e == NULL)
		return sites_insert(s, site, size);
	sites_count(e, size);
	return e;
}

/* Reader: has any site (or "other") been counted at all? Cheap enough for the
 * writer's pass: it looks at the table's fill, not its entries. */
static inline bool sites_changed(struct sites *s)
{
	return load_relaxed(&load_acquire(&s->table)->used) != 0 ||
	       load_relaxed(&s->other.count) != 0;
}

/* Reader callback for each site whose count changed since the last snapshot. */
typedef void (*sites_visit_fn)(uint64_t site, uint64_t count, uint64_t bytes, void *ctx);

/* Reader: unmap retired tables, then visit changed sites (site 0 = unattributed).
 * Returns the number visited. */
uint64_t sites_snapshot(struct sites *s, sites_visit_fn visit, void *ctx);

#endif /* TT_SITES_H */
