/* SPDX-License-Identifier: MIT */
/* Process facts for <pid>.meta: pid, executable, command line, clocks, settings. */
#define _GNU_SOURCE
#include "meta.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "../common/format.h"
#include "encode.h"
#include "sink.h"

const char *meta_sample_mode_name(uint32_t mode)
{
	switch (mode) {
	case THAGTRACE_SAMPLE_ALL:
		return "all";
	case THAGTRACE_SAMPLE_TIERED:
		return "tiered";
	case THAGTRACE_SAMPLE_POISSON:
		return "poisson";
	}
	return "unknown";
}

/* Pack /proc/self/cmdline as an array of strings (at most 64 KiB of it). */
static void pack_cmdline(msgpack_packer *pk)
{
	static char buf[65536];
	size_t len = 0;
	int fd = sink_open("/proc/self/cmdline", O_RDONLY, 0);
	if (fd >= 0) {
		ssize_t r;
		while (len < sizeof(buf) && (r = read(fd, buf + len, sizeof(buf) - len)) > 0)
			len += (size_t)r;
		close(fd);
	}
	unsigned n = 0;
	for (size_t i = 0; i < len; i++)
		n += buf[i] == '\0';
	msgpack_pack_array(pk, n);
	for (size_t i = 0, start = 0; i < len; i++) {
		if (buf[i] == '\0') {
			msgpack_pack_str(pk, i - start);
			msgpack_pack_str_body(pk, buf + start, i - start);
			start = i + 1;
		}
	}
}

void meta_encode_process(msgpack_packer *pk, const struct thagtrace_config *cfg,
			 const char *clock_name)
{
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	exe[n > 0 ? n : 0] = '\0';

	msgpack_pack_array(pk, 2);
	msgpack_pack_uint8(pk, TT_REC_PROCESS);
	msgpack_pack_map(pk, 10);
	encode_kv_i64(pk, "pid", getpid());
	encode_kv_i64(pk, "ppid", getppid());
	encode_kv_str(pk, "exe", exe);
	encode_str(pk, "cmdline");
	pack_cmdline(pk);
	encode_kv_str(pk, "clock", clock_name);
	encode_kv_u64(pk, "format_version", TT_FORMAT_VERSION);
	encode_kv_str(pk, "library_version", thagtrace_version());
	encode_kv_u64(pk, "page_size", (uint64_t)sysconf(_SC_PAGESIZE));
	encode_str(pk, "sampling");
	msgpack_pack_map(pk, 4);
	encode_kv_str(pk, "mode", meta_sample_mode_name(cfg->sample_mode));
	encode_kv_u64(pk, "min_size", cfg->min_size);
	encode_kv_u64(pk, "poisson_mean", cfg->poisson_mean);
	encode_kv_u64(pk, "max_frames", cfg->max_frames);
	encode_str(pk, "settings");
	msgpack_pack_map(pk, 3);
	encode_kv_u64(pk, "ring_kb", cfg->ring_kb);
	encode_kv_u64(pk, "flush_interval_ms", cfg->flush_interval_ms);
	encode_kv_i64(pk, "zstd_level", cfg->zstd_level);
}

void meta_encode_end(msgpack_packer *pk, const struct meta_totals *m)
{
	msgpack_pack_array(pk, 2);
	msgpack_pack_uint8(pk, TT_REC_PROCESS_END);
	msgpack_pack_map(pk, 9);
	encode_kv_u64(pk, "untraced_allocs", m->untraced_allocs);
	encode_kv_u64(pk, "untraced_bytes", m->untraced_bytes);
	encode_kv_u64(pk, "untraced_frees", m->untraced_frees);
	encode_kv_u64(pk, "freeset_full", m->freeset_full);
	encode_kv_u64(pk, "threads", m->threads);
	encode_kv_u64(pk, "emitted", m->emitted);
	encode_kv_u64(pk, "recorded", m->recorded);
	encode_kv_u64(pk, "dropped", m->dropped);
	encode_kv_u64(pk, "shed", m->shed);
}
