/* SPDX-License-Identifier: MIT */
/*
 * The live table's memory and growth. A doubling in place rehashes slot by slot in
 * one pass (see grow_in_place for why that is sound); a move to a new mapping is
 * only needed for the first table, or when the reservation is full (a kernel that
 * refused the large reservation).
 */
#define _GNU_SOURCE
#include "live.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define HUGE_PAGE (2u << 20)
#define FIRST_CAP (1u << 16)

/* Entries of address space reserved for a table to grow into: 96 GiB, nothing of it
 * resident or committed until touched (2^31 live blocks fit). None on 32 bits: a
 * new mapping per size there. */
#if SIZE_MAX > 0xffffffffu
#define RESERVE ((size_t)1 << 32)
#else
#define RESERVE ((size_t)0)
#endif

/* Address space for n entries, zeroed on first touch, 2 MiB aligned and on
 * transparent huge pages when the kernel offers them: a big table is read at
 * random, and with 4 KiB pages nearly every lookup would also miss the TLB. */
static struct live_entry *reserve(size_t n, void **map, size_t *map_len)
{
	size_t len = n * sizeof(struct live_entry) + HUGE_PAGE;
	void *m = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m == MAP_FAILED)
		return NULL;
	uintptr_t start = ((uintptr_t)m + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1);
	madvise((void *)start, len - (start - (uintptr_t)m), MADV_HUGEPAGE);
	*map = m;
	*map_len = len;
	return (struct live_entry *)start;
}

/* Insert e (absent) into the n slots at t (n a power of two), not counting it. */
static void put(struct live_entry *t, size_t n, const struct live_entry *e)
{
	size_t i = live_slot(e->key, n);
	while (t[i].key)
		i = (i + 1) & (n - 1);
	t[i] = *e;
}

/* Into a new mapping: the first table, or the reservation is full. */
static int grow_moving(struct live_table *t)
{
	size_t ncap = t->cap ? t->cap * 2 : FIRST_CAP, room = RESERVE, map_len;
	void *map;
	struct live_entry *ne = ncap <= room ? reserve(room, &map, &map_len) : NULL;
	if (!ne) /* no room for a reservation that large: this size only */
		ne = reserve(room = ncap, &map, &map_len);
	if (!ne)
		return -1;
	const size_t ahead = 16; /* prefetch distance, in old slots */
	for (size_t j = 0; j < t->cap; j++) {
		if (j + ahead < t->cap && t->e[j + ahead].key)
			live_prefetch_entry(&ne[live_slot(t->e[j + ahead].key, ncap)]);
		if (t->e[j].key)
			put(ne, ncap, &t->e[j]);
	}
	if (t->prefault)
		t->prefault(t->prefault_ctx, NULL, 0); /* none may run on the old mapping */
	if (t->map)
		munmap(t->map, t->map_len);
	t->e = ne;
	t->cap = ncap;
	t->room = room;
	t->map = map;
	t->map_len = map_len;
	return 0;
}

/*
 * Double in place: slots [C, 2C) are fresh zeroes. A key's new home is its old home
 * h or h + C. First the run of entries at [0, z) (z the first empty slot) goes to a
 * side buffer: it may hold entries that wrapped around from the end. Then no run
 * crosses z, so every other entry at p has its home h in (z, p], and every slot in
 * [h, p) was visited before p. Visit p = z+1 .. C-1 in order, take the entry at p out
 * and put it back from its new home:
 *   A. home h: the slots [h, p) are empty or hold entries already placed, and p
 *      itself is now empty, so it lands in [h, p].
 *   B. home h + C: the upper half holds only entries already placed. A run there
 *      that wrapped past 2C - 1 and went on beyond p would fill (C - h) + (p + 1)
 *      > C slots with entries, more than the C/2 there are.
 * So an entry never passes a slot still to be visited (which would empty later
 * and cut it off from its home). Finally the side buffer goes into the complete
 * table. Returns 0 or -1 (out of memory for the side buffer; table unchanged).
 */
static int grow_in_place(struct live_table *t)
{
	size_t c = t->cap, n = 2 * c, z = 0;
	struct live_entry *e = t->e, local[64], *side = local;
	while (e[z].key) /* at most half full: an empty slot exists */
		z++;
	if (z > sizeof(local) / sizeof(local[0]) && !(side = malloc(z * sizeof(*side))))
		return -1;
	if (t->prefault) /* the new half's pages: the pass below faults them in too */
		t->prefault(t->prefault_ctx, e + c, c * sizeof(*e));
	memcpy(side, e, z * sizeof(*e));
	for (size_t i = 0; i < z; i++)
		e[i].key = 0;
	for (size_t p = z + 1; p < c; p++) {
		if (!e[p].key)
			continue;
		struct live_entry x = e[p];
		size_t i = live_slot(x.key, n);
		e[p].key = 0;
		while (e[i].key)
			i = (i + 1) & (n - 1);
		assert(i <= p || i >= c);
		e[i] = x;
	}
	for (size_t k = 0; k < z; k++)
		put(e, n, &side[k]);
	if (side != local)
		free(side);
	t->cap = n;
	return 0;
}

int live_grow(struct live_table *t)
{
	if (t->cap && 2 * t->cap <= t->room)
		return grow_in_place(t);
	return grow_moving(t);
}

void live_fini(struct live_table *t)
{
	if (t->prefault)
		t->prefault(t->prefault_ctx, NULL, 0);
	if (t->map)
		munmap(t->map, t->map_len);
	*t = (struct live_table){0};
}
