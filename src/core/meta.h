/* SPDX-License-Identifier: MIT */
/* The per-process file's facts: who ran, when, with which settings. */
#ifndef TT_META_H
#define TT_META_H

#include <msgpack.h>
#include <stdint.h>

#include "thagtrace.h"

/* Encode the TT_REC_PROCESS record for this process. Not on the event path. */
void meta_encode_process(msgpack_packer *pk, const struct thagtrace_config *cfg,
			 const char *clock_name);

/* A session's totals, for TT_REC_PROCESS_END (format.md). */
struct meta_totals {
	uint64_t threads, emitted, recorded, dropped;
	uint64_t shed; /* sampled allocations shed under load (shed.h) */
	uint64_t untraced_allocs, untraced_bytes, untraced_frees, freeset_full;
};

/* Encode TT_REC_PROCESS_END with the session's totals. */
void meta_encode_end(msgpack_packer *pk, const struct meta_totals *m);

/* Name of a sample mode as the environment and the files spell it. */
const char *meta_sample_mode_name(uint32_t mode);

#endif /* TT_META_H */
