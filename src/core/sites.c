/* SPDX-License-Identifier: MIT */
/* Exact call-site table: insert, growth and the reader's snapshot. */
#include "sites.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "nofork.h"
#include "prefault.h"
#include "thagtrace.h"

static struct site_table *table_map(uint64_t capacity)
{
	size_t bytes = sizeof(struct site_table) + capacity * sizeof(struct site_entry);
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	nofork(p, bytes);
	/* A grown table is filled by the rehash: mapped now, in one call, not a fault
	 * a page (prefault.h). The first stays as sparse as its thread leaves it. */
	if (capacity > SITES_INITIAL_CAPACITY)
		prefault(p, bytes);
	struct site_table *t = p; /* anonymous memory is zero: every slot empty */
	t->capacity = capacity;
	t->map_bytes = bytes;
	return t;
}

/* Owner: t is the current table (published by the caller). */
static void use_table(struct sites *s, struct site_table *t)
{
	s->e = t->e;
	s->mask = t->capacity - 1;
	s->shift = sites_shift(t);
}

/* A table and empty counters; nothing retired. */
static void sites_reset(struct sites *s, struct site_table *t)
{
	store_relaxed(&s->table, t);
	use_table(s, t);
	store_relaxed(&s->retired, NULL);
	store_relaxed(&s->other.site, 0);
	store_relaxed(&s->other.count, 0);
	store_relaxed(&s->other.bytes, 0);
	s->other.written_count = 0;
	s->other.thr[0] = s->other.thr[1] = 0;
}

int sites_init(struct sites *s)
{
	struct site_table *t = table_map(SITES_INITIAL_CAPACITY);
	if (!t)
		return THAGTRACE_ENOMEM;
	sites_reset(s, t);
	return 0;
}

static void table_unmap_list(struct site_table *t)
{
	while (t) {
		struct site_table *next = t->retired_next;
		munmap(t, t->map_bytes);
		t = next;
	}
}

void sites_fini(struct sites *s)
{
	table_unmap_list(exchange_acq_rel(&s->retired, NULL));
	struct site_table *t = load_relaxed(&s->table);
	if (t)
		munmap(t, t->map_bytes);
	store_relaxed(&s->table, NULL);
}

int sites_recycle(struct sites *s)
{
	table_unmap_list(exchange_acq_rel(&s->retired, NULL));
	struct site_table *t = load_relaxed(&s->table);
	if (t && t->capacity == SITES_INITIAL_CAPACITY) {
		memset(t->e, 0, t->capacity * sizeof(t->e[0]));
		store_relaxed(&t->used, 0);
		sites_reset(s, t);
		return 0;
	}
	sites_fini(s);
	return sites_init(s);
}

/* Place an entry in a table known to have room; owner only. */
static struct site_entry *table_place(struct site_table *t, uint64_t site, uint64_t count,
				      uint64_t bytes, uint64_t written, const uint64_t thr[2])
{
	uint64_t mask = t->capacity - 1;
	uint64_t i = sites_slot(t, site);
	while (load_relaxed(&t->e[i].site))
		i = (i + 1) & mask;
	store_relaxed(&t->e[i].count, count);
	store_relaxed(&t->e[i].bytes, bytes);
	t->e[i].written_count = written;
	t->e[i].thr[0] = thr[0];
	t->e[i].thr[1] = thr[1];
	/* Pairs with the reader's load_acquire(&site) in sites_snapshot. */
	store_release(&t->e[i].site, site);
	store_relaxed(&t->used, load_relaxed(&t->used) + 1); /* only we write it */
	return &t->e[i];
}

static void table_grow(struct sites *s, struct site_table *old)
{
	int saved = errno; /* on the allocation path: the program's errno is sacred */
	struct site_table *t = table_map(old->capacity * 2);
	errno = saved;
	if (!t)
		return; /* keep filling the old one; past 7/8 full we count as "other" */
	for (uint64_t i = 0; i < old->capacity; i++) {
		uint64_t k = load_relaxed(&old->e[i].site);
		if (k)
			table_place(t, k, load_relaxed(&old->e[i].count),
				    load_relaxed(&old->e[i].bytes), old->e[i].written_count,
				    old->e[i].thr);
	}
	/* Pairs with load_acquire(&table) in sites_snapshot: the copied entries are
	 * visible before the new table is. */
	store_release(&s->table, t);
	use_table(s, t);
	struct site_table *head = load_relaxed(&s->retired);
	do {
		old->retired_next = head;
	} while (!atomic_compare_exchange_weak_explicit(
	    &s->retired, &head, old, memory_order_release, memory_order_relaxed));
}

struct site_entry *sites_insert(struct sites *s, uint64_t site, uint64_t size)
{
	struct site_table *t = load_relaxed(&s->table);
	if (site && load_relaxed(&t->used) + 1 > t->capacity * 3 / 4) {
		table_grow(s, t);
		t = load_relaxed(&s->table);
	}
	if (!site || load_relaxed(&t->used) + 1 > t->capacity * 7 / 8) {
		counter_add_single_writer(&s->other.count, 1);
		counter_add_single_writer(&s->other.bytes, size);
		return &s->other;
	}
	static const uint64_t no_thr[2] = {0, 0};
	return table_place(t, site, 1, size, 0, no_thr);
}

uint64_t sites_snapshot(struct sites *s, sites_visit_fn visit, void *ctx)
{
	/* A table retired before this exchange is no longer current, and we hold no
	 * pointer into it from an earlier pass: safe to unmap. */
	table_unmap_list(exchange_acq_rel(&s->retired, NULL));
	struct site_table *t = load_acquire(&s->table);
	uint64_t n = 0;
	for (uint64_t i = 0; i < t->capacity; i++) {
		struct site_entry *e = &t->e[i];
		uint64_t k = load_acquire(&e->site);
		if (!k)
			continue;
		uint64_t c = load_relaxed(&e->count);
		if (c == e->written_count)
			continue;
		visit(k, c, load_relaxed(&e->bytes), ctx);
		e->written_count = c;
		n++;
	}
	uint64_t oc = load_relaxed(&s->other.count);
	if (oc != s->other.written_count) {
		visit(0, oc, load_relaxed(&s->other.bytes), ctx);
		s->other.written_count = oc;
		n++;
	}
	return n;
}
