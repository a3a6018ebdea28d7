/* SPDX-License-Identifier: MIT */
/* Record encoders: one function per record kind, fields in the order format.h gives. */
#include "encode.h"

#include <stdlib.h>
#include <string.h>

#include "../common/format.h"
#include "pagemem.h"
#include "prefault.h"

void encode_buf_init(struct encode_buf *b)
{
	b->data = NULL;
	b->size = b->cap = 0;
	b->failed = false;
	b->nofork = false;
}

void encode_buf_destroy(struct encode_buf *b)
{
	pagemem_free(b->data);
	b->data = NULL;
	b->size = b->cap = 0;
	b->failed = false;
}

static __attribute__((noinline)) int encode_buf_grow(struct encode_buf *b, size_t len)
{
	size_t cap = b->cap ? b->cap : 64 * 1024;
	while (cap - b->size < len)
		cap *= 2;
	char *d = pagemem_realloc(b->data, cap);
	if (!d) {
		b->failed = true;
		return -1;
	}
	/* The buffer grows to be filled: its new pages in one call (prefault.h). */
	uintptr_t from = ((uintptr_t)d + b->size + 4095) & ~(uintptr_t)4095,
		  to = ((uintptr_t)d + cap) & ~(uintptr_t)4095;
	if (to > from)
		prefault((void *)from, to - from);
	if (b->nofork)
		pagemem_nofork(d);
	b->data = d;
	b->cap = cap;
	return 0;
}

static inline int buf_append(struct encode_buf *b, const void *src, size_t len)
{
	if (__builtin_expect(b->cap - b->size < len, 0) && encode_buf_grow(b, len) != 0)
		return -1;
	memcpy(b->data + b->size, src, len);
	b->size += len;
	return 0;
}

int encode_buf_write(void *data, const char *buf, size_t len)
{
	return buf_append(data, buf, len);
}

/*
 * msgpack-c's own packing code (msgpack/pack_template.h, what msgpack_pack_* are
 * made of) instantiated a second time, as bufpack_*, with an inline append to a
 * struct encode_buf in place of the packer's callback: the same bytes, without a
 * call and a variable-length copy per field. The template is meant for this: it
 * takes the user type and the append as macros and undefines them after.
 */
#define msgpack_pack_inline_func(name)		   static inline int bufpack##name
#define msgpack_pack_user			   struct encode_buf *
#define msgpack_pack_append_buffer(user, buf, len) return buf_append(user, buf, len)
#include <msgpack/pack_template.h>

/*
 * The two records of every event, ALLOC and FREE, built whole on the stack and
 * handed to the packer's sink in one call (the writer's: one bounds check and one
 * copy a record, where msgpack_pack_* made a call and a check a field). Each field
 * takes the form msgpack-c's packer would choose: test_format compares the bytes
 * with msgpack-c's at both sides of every form's bounds.
 */
static inline unsigned char *put_be(unsigned char *o, unsigned char tag, uint64_t v, unsigned n)
{
	*o++ = tag;
	for (unsigned i = n; i-- > 0;)
		*o++ = (unsigned char)(v >> (8 * i));
	return o;
}

static inline unsigned char *put_uint(unsigned char *o, uint64_t v)
{
	if (v < 128) {
		*o = (unsigned char)v;
		return o + 1;
	}
	if (v < 1ull << 8)
		return put_be(o, 0xcc, v, 1);
	if (v < 1ull << 16)
		return put_be(o, 0xcd, v, 2);
	if (v < 1ull << 32)
		return put_be(o, 0xce, v, 4);
	return put_be(o, 0xcf, v, 8);
}

static inline unsigned char *put_int(unsigned char *o, int64_t v)
{
	if (v >= 0)
		return put_uint(o, (uint64_t)v);
	if (v >= -32) { /* negative fixnum */
		*o = (unsigned char)v;
		return o + 1;
	}
	if (v >= -(1ll << 7))
		return put_be(o, 0xd0, (uint64_t)v, 1);
	if (v >= -(1ll << 15))
		return put_be(o, 0xd1, (uint64_t)v, 2);
	if (v >= -(1ll << 31))
		return put_be(o, 0xd2, (uint64_t)v, 4);
	return put_be(o, 0xd3, (uint64_t)v, 8);
}

static inline unsigned char *put_double(unsigned char *o, double d)
{
	uint64_t bits;
	memcpy(&bits, &d, sizeof(bits));
	return put_be(o, 0xcb, bits, 8);
}

/*
 * Where a record of at most `max` bytes is built: straight in the writer's encode
 * buffer (made room for first), or in `tmp` for any other packer. emit_end then
 * commits it: the buffer's size moves on, or `tmp` goes to the packer in one call.
 * In place, an event costs no copy and no call (the writer's memmove and its
 * callback were a fifth of its own time).
 */
static inline unsigned char *emit_begin(msgpack_packer *pk, unsigned char *tmp, size_t max)
{
	if (pk->callback == encode_buf_write) {
		struct encode_buf *b = pk->data;
		if (__builtin_expect(b->cap - b->size >= max, 1) || encode_buf_grow(b, max) == 0)
			return (unsigned char *)b->data + b->size;
	}
	return tmp;
}

static inline void emit_end(msgpack_packer *pk, const unsigned char *tmp, const unsigned char *rec,
			    const unsigned char *end)
{
	if (rec != tmp)
		((struct encode_buf *)pk->data)->size += (size_t)(end - rec);
	else
		pk->callback(pk->data, (const char *)rec, (size_t)(end - rec));
}

/* The hot records, the writer's (its packer appends to an encode_buf) through
 * bufpack_*, anyone else's through msgpack_pack_*: one field list for both. */
#define PACK_THROUGH(pk, RECORD)                                                                   \
	do {                                                                                       \
		if ((pk)->callback == encode_buf_write) {                                          \
			struct encode_buf *u = (pk)->data;                                         \
			RECORD(bufpack, u);                                                        \
		} else {                                                                           \
			RECORD(msgpack_pack, pk);                                                  \
		}                                                                                  \
	} while (0)

void encode_str(msgpack_packer *pk, const char *s)
{
	size_t n = strlen(s);
	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, s, n);
}

void encode_thread(msgpack_packer *pk, int32_t pid, int32_t tid, const char *name,
		   uint64_t start_ticks)
{
	msgpack_pack_array(pk, 5);
	msgpack_pack_uint8(pk, TT_REC_THREAD);
	msgpack_pack_int32(pk, pid);
	msgpack_pack_int32(pk, tid);
	encode_str(pk, name);
	msgpack_pack_uint64(pk, start_ticks);
}

void encode_name(msgpack_packer *pk, const char *name)
{
	msgpack_pack_array(pk, 2);
	msgpack_pack_uint8(pk, TT_REC_NAME);
	encode_str(pk, name);
}

void encode_stack(msgpack_packer *pk, uint32_t id, uint32_t flags, const uint64_t *frames,
		  unsigned n)
{
#define STACK_RECORD(P, u)                                                                         \
	P##_array(u, 4);                                                                           \
	P##_uint8(u, TT_REC_STACK);                                                                \
	P##_uint32(u, id);                                                                         \
	P##_uint32(u, flags);                                                                      \
	P##_array(u, n);                                                                           \
	for (unsigned i = 0; i < n; i++)                                                           \
		P##_uint64(u, frames[i]);
	PACK_THROUGH(pk, STACK_RECORD);
}

void encode_events_init(struct encode_events *e, uint64_t start_ticks)
{
	memset(e, 0, sizeof(*e));
	e->last_ts = start_ticks;
}

static inline size_t prob_slot(uint64_t bits)
{
	return (size_t)((bits * 0x9E3779B97F4A7C15ull) >> 56) & (ENCODE_PROB_SLOTS - 1);
}

/* The probability field: 0 for 1, else a PROB record's number (written here the
 * first time), or the float itself once the file has TT_PROB_MAX of them. */
static inline void pack_probability(msgpack_packer *pk, struct encode_events *e, double p,
				    uint64_t *k)
{
	*k = 0;
	if (p == 1.0)
		return;
	uint64_t bits;
	memcpy(&bits, &p, sizeof(bits));
	size_t i = prob_slot(bits);
	if (e->prob[i].bits == bits) {
		*k = e->prob[i].k;
		return;
	}
	if (e->probs >= TT_PROB_MAX) {
		*k = UINT64_MAX; /* a float */
		return;
	}
	e->probs++;
#define PROB_RECORD(P, u)                                                                          \
	P##_array(u, 3);                                                                           \
	P##_uint8(u, TT_REC_PROB);                                                                 \
	P##_uint32(u, e->probs);                                                                   \
	P##_double(u, p);
	PACK_THROUGH(pk, PROB_RECORD);
	e->prob[i].bits = bits;
	e->prob[i].k = e->probs;
	*k = e->probs;
}

void encode_alloc(msgpack_packer *pk, struct encode_events *e, uint64_t ts, uint64_t ptr,
		  uint64_t size, uint32_t stack_id, double probability)
{
	uint64_t k;
	pack_probability(pk, e, probability, &k);
	int64_t dt = (int64_t)(ts - e->last_ts), dp = (int64_t)(ptr - e->last_ptr);
	e->last_ts = ts;
	e->last_ptr = ptr;
	unsigned char tmp[43]; /* fixarray, type, 2 x int64, uint64, uint32, double */
	unsigned char *rec = emit_begin(pk, tmp, sizeof(tmp)), *o = rec;
	*o++ = 0x96;
	*o++ = TT_REC_ALLOC;
	o = put_int(o, dt);
	o = put_int(o, dp);
	o = put_uint(o, size);
	o = put_uint(o, stack_id);
	o = k == UINT64_MAX ? put_double(o, probability) : put_uint(o, k);
	emit_end(pk, tmp, rec, o);
}

void encode_free(msgpack_packer *pk, struct encode_events *e, uint64_t ts, uint64_t ptr)
{
	int64_t dt = (int64_t)(ts - e->last_ts), dp = (int64_t)(ptr - e->last_ptr);
	e->last_ts = ts;
	e->last_ptr = ptr;
	unsigned char tmp[20]; /* fixarray, type, 2 x int64 */
	unsigned char *rec = emit_begin(pk, tmp, sizeof(tmp)), *o = rec;
	*o++ = 0x93;
	*o++ = TT_REC_FREE;
	o = put_int(o, dt);
	o = put_int(o, dp);
	emit_end(pk, tmp, rec, o);
}

void encode_drops(msgpack_packer *pk, uint64_t emitted, uint64_t dropped, uint64_t dropped_bytes,
		  uint64_t shed)
{
	msgpack_pack_array(pk, 5);
	msgpack_pack_uint8(pk, TT_REC_DROPS);
	msgpack_pack_uint64(pk, emitted);
	msgpack_pack_uint64(pk, dropped);
	msgpack_pack_uint64(pk, dropped_bytes);
	msgpack_pack_uint64(pk, shed);
}

void encode_end(msgpack_packer *pk, uint64_t emitted, uint64_t recorded, uint64_t dropped,
		uint64_t end_ticks)
{
	msgpack_pack_array(pk, 5);
	msgpack_pack_uint8(pk, TT_REC_END);
	msgpack_pack_uint64(pk, emitted);
	msgpack_pack_uint64(pk, recorded);
	msgpack_pack_uint64(pk, dropped);
	msgpack_pack_uint64(pk, end_ticks);
}

void encode_site(msgpack_packer *pk, uint64_t site, uint64_t count, uint64_t bytes)
{
	msgpack_pack_array(pk, 4);
	msgpack_pack_uint8(pk, TT_REC_SITE);
	msgpack_pack_uint64(pk, site);
	msgpack_pack_uint64(pk, count);
	msgpack_pack_uint64(pk, bytes);
}

void encode_snapshot(msgpack_packer *pk, uint64_t ticks, uint64_t nsites)
{
	msgpack_pack_array(pk, 3);
	msgpack_pack_uint8(pk, TT_REC_SNAPSHOT);
	msgpack_pack_uint64(pk, ticks);
	msgpack_pack_uint64(pk, nsites);
}

void encode_clock(msgpack_packer *pk, uint64_t ticks, uint64_t mono_ns, uint64_t real_ns)
{
	msgpack_pack_array(pk, 4);
	msgpack_pack_uint8(pk, TT_REC_CLOCK);
	msgpack_pack_uint64(pk, ticks);
	msgpack_pack_uint64(pk, mono_ns);
	msgpack_pack_uint64(pk, real_ns);
}

void encode_kv_str(msgpack_packer *pk, const char *key, const char *val)
{
	encode_str(pk, key);
	encode_str(pk, val);
}

void encode_kv_u64(msgpack_packer *pk, const char *key, uint64_t val)
{
	encode_str(pk, key);
	msgpack_pack_uint64(pk, val);
}

void encode_kv_i64(msgpack_packer *pk, const char *key, int64_t val)
{
	encode_str(pk, key);
	msgpack_pack_int64(pk, val);
}
