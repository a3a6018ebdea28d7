/* SPDX-License-Identifier: MIT */
/*
 * On-disk format v2: the one definition the encoder (core) and decoder (analysis)
 * share. docs/format.md describes it in prose; change both together and bump
 * TT_FORMAT_VERSION on any incompatible change.
 *
 * A file is: a 24-byte zstd skippable frame holding the file header below, then any
 * number of zstd frames (one per writer flush, content checksum on) whose
 * concatenated content is a sequence of MessagePack arrays [tag, field...].
 *
 * Timestamps in .bin and .freq are ticks of the process's clock, named in its .meta
 * ("tsc" or "monotonic"); .meta CLOCK records pair ticks with CLOCK_MONOTONIC and
 * CLOCK_REALTIME ns so readers can convert. "dt" fields are signed tick deltas from
 * the previous timestamp in the same file (the THREAD record's start for the first).
 */
#ifndef TT_FORMAT_H
#define TT_FORMAT_H

#include <stdint.h>
#include <string.h>

#define TT_FORMAT_VERSION 2
#define TT_FORMAT_OLDEST  1 /* the oldest version readers still read */

/* zstd skippable frame magic (0x184D2A50..5F are skippable; we take ...5E). */
#define TT_SKIPPABLE_MAGIC 0x184D2A5Eu
#define TT_FILE_MAGIC	   "THAGTRAC" /* 8 bytes, no NUL on disk */
#define TT_HEADER_PAYLOAD  16u	      /* magic[8] version u16 kind u16 flags u32 */
#define TT_HEADER_SIZE	   (8u + TT_HEADER_PAYLOAD)

enum tt_file_kind {
	TT_FILE_EVENTS = 1, /* <pid>-<tid>.bin */
	TT_FILE_FREQ = 2,   /* <pid>-<tid>.freq */
	TT_FILE_META = 3,   /* <pid>.meta */
};

/*
 * Record tags: the first element of every record array. A reader skips tags it does
 * not know and ignores fields past the ones it knows, so later minor additions
 * append fields or tags without a version bump.
 */
enum tt_record_tag {
	/* .bin */
	TT_REC_THREAD = 1, /* [1, pid, tid, name, start_ticks] */
	TT_REC_STACK = 2,  /* [2, stack_id, flags, [frame, ...]] frames leaf first */
	TT_REC_ALLOC = 3,  /* [3, dt, ptr, size, stack_id, probability] (see below) */
	TT_REC_FREE = 4,   /* [4, dt, ptr] */
	TT_REC_DROPS = 5,  /* [5, emitted, dropped, dropped_alloc_bytes, shed] cumulative;
			    * shed (sampled allocations shed under load) appended within
			    * v2: absent in older files, read as 0 */
	TT_REC_END = 6,	   /* [6, emitted, recorded, dropped, end_ticks] clean close */
	/* .freq */
	TT_REC_SITE = 7,     /* [7, site, count, bytes] cumulative, exact */
	TT_REC_SNAPSHOT = 8, /* [8, ticks, nsites] closes one table snapshot */
	/* .meta */
	TT_REC_PROCESS = 9, /* [9, {map of process facts}] */
	/* [10, ticks, [[path, bias, start, end, build_id], ...]]: one entry per
	 * executable segment [start, end) at runtime addresses; ELF vaddr = addr - bias;
	 * build_id is bin (empty when the object has none). Later records add objects
	 * (dlopen) and supersede ranges they overlap. */
	TT_REC_MODULES = 10,
	TT_REC_PROCESS_END = 11, /* [11, {map of totals}] */
	TT_REC_CLOCK = 12,	 /* [12, ticks, monotonic_ns, realtime_ns] an anchor */
	/* .bin, v2: [13, k, probability] defines probability number k (1, 2, ... in
	 * the order of the file) for the ALLOC records after it. */
	TT_REC_PROB = 13,
	/* .bin: [14, name] the thread renamed itself after its THREAD record went out;
	 * the last one holds its name. */
	TT_REC_NAME = 14,
	TT_REC_TAG_MAX = 14,
};

/*
 * v2 event fields (v1: ptr absolute, probability always a float):
 *   ptr          a signed integer: the address minus the previous ALLOC or FREE
 *                address of the same file (0 before the first);
 *   probability  a float: the probability itself; or an unsigned integer k: 0 for 1,
 *                else the value the file's k-th PROB record defined.
 * A file defines at most TT_PROB_MAX probabilities; past that, floats.
 */
#define TT_PROB_MAX 65536u

/* TT_REC_STACK flags */
#define TT_STACK_TRUNCATED 0x1u /* not whole: max_frames hit, or the walk stopped short */

/* Number of fields (tag included) a reader requires for each tag. */
static inline unsigned tt_record_min_fields(unsigned tag)
{
	static const unsigned char n[TT_REC_TAG_MAX + 1] = {
	    [TT_REC_THREAD] = 5,  [TT_REC_STACK] = 4,	    [TT_REC_ALLOC] = 6,
	    [TT_REC_FREE] = 3,	  [TT_REC_DROPS] = 4,	    [TT_REC_END] = 5,
	    [TT_REC_SITE] = 4,	  [TT_REC_SNAPSHOT] = 3,    [TT_REC_PROCESS] = 2,
	    [TT_REC_MODULES] = 3, [TT_REC_PROCESS_END] = 2, [TT_REC_CLOCK] = 4,
	    [TT_REC_PROB] = 3,	  [TT_REC_NAME] = 2,
	};
	return tag <= TT_REC_TAG_MAX ? n[tag] : 0;
}

static inline void tt_put_le16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}

static inline void tt_put_le32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static inline uint32_t tt_get_le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint16_t tt_get_le16(const unsigned char *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

/* Write the 24-byte file header for `kind` into out. */
static inline void tt_header_encode(unsigned char out[TT_HEADER_SIZE], enum tt_file_kind kind)
{
	tt_put_le32(out, TT_SKIPPABLE_MAGIC);
	tt_put_le32(out + 4, TT_HEADER_PAYLOAD);
	memcpy(out + 8, TT_FILE_MAGIC, 8);
	tt_put_le16(out + 16, TT_FORMAT_VERSION);
	tt_put_le16(out + 18, (uint16_t)kind);
	tt_put_le32(out + 20, 0);
}

#endif /* TT_FORMAT_H */
