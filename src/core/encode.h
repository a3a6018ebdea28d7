/* SPDX-License-Identifier: MIT */
/* MessagePack encoding of file records (format v2, src/common/format.h). Writer only. */
#ifndef TT_ENCODE_H
#define TT_ENCODE_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The writer's encode buffer, which msgpack-c's packer appends to through
 * encode_buf_write (msgpack_packer_init(pk, buf, encode_buf_write)). For such a
 * packer the event records (ALLOC, FREE, STACK) skip the packer's call per field
 * and append inline (see encode.c): the writer's encoding cost was mostly those
 * calls. The buffer is mapped (pagemem.h), not taken from the program's heap. On
 * allocation failure it keeps what it had and says so.
 */
struct encode_buf {
	char *data;
	size_t size, cap;
	bool failed; /* an append could not grow the buffer: its content is incomplete */
	bool nofork; /* a thread's pending events: wiped in a fork child (nofork.h) */
};

void encode_buf_init(struct encode_buf *b);
void encode_buf_destroy(struct encode_buf *b);
int encode_buf_write(void *data, const char *buf, size_t len);

static inline void encode_buf_clear(struct encode_buf *b)
{
	b->size = 0;
	b->failed = false;
}

void encode_thread(msgpack_packer *pk, int32_t pid, int32_t tid, const char *name,
		   uint64_t start_ticks);
void encode_name(msgpack_packer *pk, const char *name);
void encode_stack(msgpack_packer *pk, uint32_t id, uint32_t flags, const uint64_t *frames,
		  unsigned n);
/*
 * A .bin file's event state: ALLOC and FREE carry their time and address as
 * differences from the previous event's, and an ALLOC its probability as the number
 * of a PROB record defining it (emitted on first use; the last few are remembered
 * by value, direct-mapped). A sampling rule uses few distinct probabilities (tiered:
 * one per tier and boost step); one that uses many (poisson: one per size) gets
 * more PROB records, and floats past TT_PROB_MAX.
 */
#define ENCODE_PROB_SLOTS 256
struct encode_events {
	uint64_t last_ts, last_ptr;
	uint32_t probs; /* PROB records written */
	struct {
		uint64_t bits; /* the double's bits; 0: empty (0.0 is never a probability) */
		uint32_t k;
	} prob[ENCODE_PROB_SLOTS];
};

/* A new file's state: deltas from its THREAD record's start ticks. */
void encode_events_init(struct encode_events *e, uint64_t start_ticks);

void encode_alloc(msgpack_packer *pk, struct encode_events *e, uint64_t ts, uint64_t ptr,
		  uint64_t size, uint32_t stack_id, double probability);
void encode_free(msgpack_packer *pk, struct encode_events *e, uint64_t ts, uint64_t ptr);
void encode_drops(msgpack_packer *pk, uint64_t emitted, uint64_t dropped, uint64_t dropped_bytes,
		  uint64_t shed);
void encode_end(msgpack_packer *pk, uint64_t emitted, uint64_t recorded, uint64_t dropped,
		uint64_t end_ticks);
void encode_site(msgpack_packer *pk, uint64_t site, uint64_t count, uint64_t bytes);
void encode_snapshot(msgpack_packer *pk, uint64_t ticks, uint64_t nsites);
void encode_clock(msgpack_packer *pk, uint64_t ticks, uint64_t mono_ns, uint64_t real_ns);

/* Map helpers for the .meta records, whose body is a map of named facts. */
void encode_str(msgpack_packer *pk, const char *s);
void encode_kv_str(msgpack_packer *pk, const char *key, const char *val);
void encode_kv_u64(msgpack_packer *pk, const char *key, uint64_t val);
void encode_kv_i64(msgpack_packer *pk, const char *key, int64_t val);

#endif /* TT_ENCODE_H */
