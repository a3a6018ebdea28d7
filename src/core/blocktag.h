/* SPDX-License-Identifier: MIT */
/*
 * Block tags: how a free knows, from the pointer alone, that its allocation was
 * recorded, when the next allocator is glibc's.
 *
 * A sampled allocation is made `pad` bytes larger (16, or its alignment) and the
 * program gets base + pad; the 8 bytes just below its pointer hold a tag. glibc
 * keeps a chunk's size there for every block it hands out: a multiple of 16 with
 * flags in bits 0-2, so bit 3 is never set. A free reads that word (the line glibc
 * itself is about to read, so the test costs no cache miss and shares nothing
 * between threads); bit 3 clear is an ordinary block, passed on untouched. A tag
 * also carries a check derived from the pointer and a per-process secret, so a
 * stray word with bit 3 set is never taken for one.
 *
 *   bits  0-2   0
 *   bit   3     1: a tag (never set in a glibc size word)
 *   bit   4     recorded: the allocation's event is in a ring (its free is recorded)
 *   bits  5-9   log2(pad), 4 to 16
 *   bits 10-15  0
 *   bits 16-31  the session (tt_active_gen's low 16 bits) that recorded it
 *   bits 32-63  check: hash(pointer ^ secret) >> 32
 *
 * A block whose pointer cannot be moved (an alignment above BLOCKTAG_MAX_PAD, or
 * not a power of two) is not tagged: it goes in the freeset instead.
 */
#ifndef TT_BLOCKTAG_H
#define TT_BLOCKTAG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BLOCKTAG_MARK	  8ull
#define BLOCKTAG_RECORDED 16ull
#define BLOCKTAG_MIN_PAD  16u
#define BLOCKTAG_MAX_PAD  (64u * 1024) /* larger alignments: the freeset */

extern uint64_t blocktag_secret; /* set once, before the first tag */

static inline uint64_t blocktag_check(const void *p)
{
	uint64_t h = ((uint64_t)(uintptr_t)p ^ blocktag_secret) * 0x9E3779B97F4A7C15ull;
	return (h ^ (h >> 29)) & 0xFFFFFFFF00000000ull;
}

/* The pad for a block of alignment `align` (0: the default), or 0 when such a
 * block cannot be tagged. */
static inline size_t blocktag_pad(size_t align)
{
	if (align <= BLOCKTAG_MIN_PAD)
		return BLOCKTAG_MIN_PAD;
	if (align > BLOCKTAG_MAX_PAD || (align & (align - 1)) != 0)
		return 0;
	return align;
}

static inline uint64_t blocktag_make(const void *p, size_t pad, bool recorded, uint64_t gen)
{
	return blocktag_check(p) | (gen & 0xFFFF) << 16 | (uint64_t)__builtin_ctzll(pad) << 5 |
	       (recorded ? BLOCKTAG_RECORDED : 0) | BLOCKTAG_MARK;
}

/* The word below p: a glibc size word, or a tag. */
static inline uint64_t blocktag_word(const void *p)
{
	return ((const uint64_t *)p)[-1];
}

static inline void blocktag_set(void *p, uint64_t tag)
{
	((uint64_t *)p)[-1] = tag;
}

/* Is `w`, read below p, p's tag? Then its pad is blocktag_pad_of(w). */
static inline bool blocktag_valid(const void *p, uint64_t w)
{
	unsigned lg = (unsigned)(w >> 5) & 31;
	return (w & 0xFFFFFFFF00000000ull) == blocktag_check(p) && (w & 0xFC0F) == BLOCKTAG_MARK &&
	       lg >= 4 && lg <= 16;
}

static inline size_t blocktag_pad_of(uint64_t w)
{
	return (size_t)1 << ((w >> 5) & 31);
}

/* Was the allocation recorded, in session `gen`? */
static inline bool blocktag_recorded_in(uint64_t w, uint64_t gen)
{
	return (w & BLOCKTAG_RECORDED) && ((w >> 16) & 0xFFFF) == (gen & 0xFFFF);
}

#endif /* TT_BLOCKTAG_H */
