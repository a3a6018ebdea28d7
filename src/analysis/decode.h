/* SPDX-License-Identifier: MIT */
/*
 * Streaming decoder for thagtrace files (formats v1 and v2, src/common/format.h): one
 * record at a time, memory bounded by the largest frame (and a v2 file's probability
 * table, TT_PROB_MAX entries at most), never by the file's length. v2's differences
 * and probability numbers are resolved here: records carry whole addresses and
 * probabilities whatever the version; PROB records are consumed, not returned.
 * Errors name the byte offset in the file; a file cut short after its last complete
 * frame decodes up to that frame and reports itself truncated.
 */
#ifndef TT_DECODE_H
#define TT_DECODE_H

#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>

#include "../common/format.h"

#define TT_DECODE_MAX_FRAMES 4096u /* deepest stack a reader accepts */

struct tt_record {
	unsigned tag;
	uint64_t frame_offset; /* file offset of the zstd frame holding the record */
	union {
		struct {
			int32_t pid, tid;
			const char *name; /* NUL-terminated; valid until the next call */
			uint64_t start;	  /* ticks */
		} thread;
		struct {
			const char *name; /* NUL-terminated; valid until the next call */
		} name;
		struct {
			uint32_t id, flags;
			unsigned nframes;
			const uint64_t *frames; /* leaf first; valid until the next call */
		} stack;
		struct {
			uint64_t ts; /* absolute ticks (see TT_REC_CLOCK) */
			uint64_t ptr, size;
			uint32_t stack_id;
			double probability;
		} alloc;
		struct {
			uint64_t ts, ptr; /* ticks, address */
		} free;
		struct {
			uint64_t emitted, dropped, dropped_bytes;
			uint64_t shed; /* 0 when the record has no 5th field */
		} drops;
		struct {
			uint64_t emitted, recorded, dropped, end; /* end in ticks */
		} end;
		struct {
			uint64_t site, count, bytes;
		} site;
		struct {
			uint64_t ts, nsites; /* ts in ticks */
		} snapshot;
		struct {
			uint64_t ticks, mono_ns, real_ns;
		} clock;
		struct {
			const msgpack_object *body; /* the record's map (PROCESS, PROCESS_END)
						      or its [ts, list] (MODULES) */
		} meta;
	};
};

struct tt_decoder;

/*
 * Open `path` and check its header. Returns a decoder (owned by the caller, free it
 * with tt_decoder_destroy) or NULL with a message in err ("offset N: what").
 */
struct tt_decoder *tt_decoder_open(const char *path, char *err, size_t errcap);

/* Free the decoder and close its file. NULL is a no-op. */
void tt_decoder_destroy(struct tt_decoder *d);

/* The file's kind from its header. */
enum tt_file_kind tt_decoder_kind(const struct tt_decoder *d);

/*
 * Next record into *rec (pointers in it stay valid until the next call). Returns 1
 * for a record, 0 at the end of the data (see tt_decoder_truncated), or -1 on
 * corrupt input with tt_decoder_error() saying where and what. Records with a tag
 * this reader does not know are skipped.
 */
int tt_decoder_next(struct tt_decoder *d, struct tt_record *rec);

/* After the end: true if the file ended inside a frame (a crash or a copy cut
 * short); *offset is where that incomplete frame starts. */
bool tt_decoder_truncated(const struct tt_decoder *d, uint64_t *offset);

/* The last error: "offset N: what is wrong". */
const char *tt_decoder_error(const struct tt_decoder *d);

/* Complete frames read so far, and records returned so far. */
uint64_t tt_decoder_frames(const struct tt_decoder *d);
uint64_t tt_decoder_records(const struct tt_decoder *d);

/* A name for a record tag ("alloc", "stack", ...), or "unknown". */
const char *tt_record_tag_name(unsigned tag);

#endif /* TT_DECODE_H */
