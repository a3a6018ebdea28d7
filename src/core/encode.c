/* SPDX-License-Identifier: MIT */
/* Record encoders: one function per record kind, fields in the order format.h gives. */
#include "encode.h"

#include <string.h>

#include "../common/format.h"

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

void encode_stack(msgpack_packer *pk, uint32_t id, uint32_t flags, const uint64_t *frames,
		  unsigned n)
{
	msgpack_pack_array(pk, 4);
	msgpack_pack_uint8(pk, TT_REC_STACK);
	msgpack_pack_uint32(pk, id);
	msgpack_pack_uint32(pk, flags);
	msgpack_pack_array(pk, n);
	for (unsigned i = 0; i < n; i++)
		msgpack_pack_uint64(pk, frames[i]);
}

void encode_alloc(msgpack_packer *pk, int64_t dt_ns, uint64_t ptr, uint64_t size, uint32_t stack_id,
		  double probability)
{
	msgpack_pack_array(pk, 6);
	msgpack_pack_uint8(pk, TT_REC_ALLOC);
	msgpack_pack_int64(pk, dt_ns);
	msgpack_pack_uint64(pk, ptr);
	msgpack_pack_uint64(pk, size);
	msgpack_pack_uint32(pk, stack_id);
	msgpack_pack_double(pk, probability);
}

void encode_free(msgpack_packer *pk, int64_t dt_ns, uint64_t ptr)
{
	msgpack_pack_array(pk, 3);
	msgpack_pack_uint8(pk, TT_REC_FREE);
	msgpack_pack_int64(pk, dt_ns);
	msgpack_pack_uint64(pk, ptr);
}

void encode_drops(msgpack_packer *pk, uint64_t emitted, uint64_t dropped, uint64_t dropped_bytes)
{
	msgpack_pack_array(pk, 4);
	msgpack_pack_uint8(pk, TT_REC_DROPS);
	msgpack_pack_uint64(pk, emitted);
	msgpack_pack_uint64(pk, dropped);
	msgpack_pack_uint64(pk, dropped_bytes);
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
