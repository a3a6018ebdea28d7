/* SPDX-License-Identifier: MIT */
/* Format v2 (and v1): exact round trip through the real writer, truncated tails, bad input. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <dirent.h>
#include <msgpack.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "../src/analysis/decode.h"
#include "../src/common/format.h"
#include "../src/core/encode.h"
#include "support.h"
#include "thagtrace.h"

static char dir[512];

/* Trace a known sequence on one thread in two halves, with a pause of pause_us
 * between them once the writer has taken the first half out of the ring; return
 * its .bin path in `bin`. The writer gathers a thread's events for ten flush
 * intervals (1 s at most) before it writes them out as a frame. */
static void trace_halves(char *bin, size_t cap, uint32_t flush_ms, useconds_t pause_us)
{
	snprintf(dir, sizeof(dir), "%s", support_tmpdir("format"));
	struct thagtrace_config c;
	thagtrace_config_init(&c);
	snprintf(c.output_dir, sizeof(c.output_dir), "%s", dir);
	c.flush_interval_ms = flush_ms;
	cr_assert_eq(thagtrace_start(&c), 0);
	struct thagtrace_thread *t = thagtrace_thread_register("fmt", NULL);
	cr_assert_not_null(t);
	for (uint64_t i = 0; i < 300; i++) {
		/* Stacks 0..9 of depth i%10+1, so ids repeat and definitions come once. */
		uintptr_t frames[10];
		for (unsigned k = 0; k <= i % 10; k++)
			frames[k] = 0x1000 * (i % 10) + k + 0x400000;
		double p = (i % 4 + 1) / 4.0;
		cr_assert_eq(thagtrace_record_alloc_sampled(t, (void *)(0x10000 + 16 * i), i + 1, p,
							    frames, (unsigned)(i % 10 + 1)),
			     0);
		if (i % 3 == 0)
			cr_assert_eq(thagtrace_record_free(t, (void *)(0x10000 + 16 * i)), 0);
		if (i == 149) {
			struct thagtrace_thread_stats st;
			do {
				usleep(2000);
				thagtrace_thread_stats(t, &st);
			} while (st.recorded < st.emitted);
			usleep(pause_us);
		}
	}
	thagtrace_thread_unregister(t);
	cr_assert_eq(thagtrace_stop(), 0);

	DIR *d = opendir(dir);
	struct dirent *e;
	bin[0] = '\0';
	while ((e = readdir(d)))
		if (strstr(e->d_name, ".bin"))
			snprintf(bin, cap, "%s/%s", dir, e->d_name);
	closedir(d);
	cr_assert(bin[0], "no .bin written");
}

/* The halves in two frames: a 2 ms flush, so events wait 20 ms at most, and a
 * 100 ms pause. */
static void make_trace(char *bin, size_t cap)
{
	trace_halves(bin, cap, 2, 100000);
}

static void cleanup(void)
{
	support_rmdir(dir);
}

TestSuite(format, .fini = cleanup);

Test(format, round_trip_exact)
{
	char bin[1024];
	make_trace(bin, sizeof(bin));
	char err[512];
	struct tt_decoder *d = tt_decoder_open(bin, err, sizeof(err));
	cr_assert_not_null(d, "%s", err);
	cr_assert_eq(tt_decoder_kind(d), TT_FILE_EVENTS);

	struct tt_record r;
	cr_assert_eq(tt_decoder_next(d, &r), 1);
	cr_assert_eq(r.tag, TT_REC_THREAD);
	cr_assert_str_eq(r.thread.name, "fmt");
	cr_assert_eq(r.thread.pid, getpid());

	uint64_t frames_of[10][10];
	unsigned depth_of[10] = {0};
	bool defined[64] = {false};
	uint64_t i = 0, last_ts = 0, stacks = 0;
	uint32_t id_for[10];
	while (i < 300) {
		cr_assert_eq(tt_decoder_next(d, &r), 1, "%s", tt_decoder_error(d));
		if (r.tag == TT_REC_STACK) {
			cr_assert_lt(r.stack.id, 64);
			defined[r.stack.id] = true;
			unsigned which = (unsigned)((r.stack.frames[0] - 0x400000) / 0x1000);
			cr_assert_lt(which, 10);
			depth_of[which] = r.stack.nframes;
			memcpy(frames_of[which], r.stack.frames, r.stack.nframes * 8);
			id_for[which] = r.stack.id;
			cr_assert_eq(r.stack.flags, 0);
			stacks++;
			continue;
		}
		cr_assert_eq(r.tag, TT_REC_ALLOC, "record %lu", (unsigned long)i);
		cr_assert_eq(r.alloc.ptr, 0x10000 + 16 * i);
		cr_assert_eq(r.alloc.size, i + 1);
		cr_assert_eq(r.alloc.probability, (i % 4 + 1) / 4.0, "probability is exact");
		cr_assert(r.alloc.ts >= last_ts);
		last_ts = r.alloc.ts;
		unsigned which = (unsigned)(i % 10);
		cr_assert(defined[r.alloc.stack_id], "stack defined before use");
		cr_assert_eq(r.alloc.stack_id, id_for[which]);
		cr_assert_eq(depth_of[which], which + 1);
		for (unsigned k = 0; k <= which; k++)
			cr_assert_eq(frames_of[which][k], 0x1000 * which + k + 0x400000);
		if (i % 3 == 0) {
			cr_assert_eq(tt_decoder_next(d, &r), 1);
			cr_assert_eq(r.tag, TT_REC_FREE);
			cr_assert_eq(r.free.ptr, 0x10000 + 16 * i);
			cr_assert(r.free.ts >= last_ts);
			last_ts = r.free.ts;
		}
		i++;
	}
	cr_assert_eq(stacks, 10, "each stack written once per file");
	/* Closing records: the final counters, then END; nothing after. */
	bool end = false;
	while (tt_decoder_next(d, &r) == 1) {
		if (r.tag == TT_REC_END) {
			end = true;
			cr_assert_eq(r.end.emitted, 400);
			cr_assert_eq(r.end.recorded, 400);
			cr_assert_eq(r.end.dropped, 0);
		}
	}
	cr_assert(end);
	cr_assert_geq(tt_decoder_frames(d), 2, "two flushes, two frames");
	cr_assert(!tt_decoder_truncated(d, NULL));
	tt_decoder_destroy(d);
}

/* At the default flush (events wait up to 1 s), halves 20 ms apart go out as one
 * frame at the thread's end, every record in it. */
Test(format, a_threads_events_gather_into_one_frame)
{
	char bin[1024];
	trace_halves(bin, sizeof(bin), 100, 20000);
	char err[512];
	struct tt_decoder *d = tt_decoder_open(bin, err, sizeof(err));
	cr_assert_not_null(d, "%s", err);
	struct tt_record r;
	unsigned allocs = 0, frees = 0;
	while (tt_decoder_next(d, &r) == 1) {
		allocs += r.tag == TT_REC_ALLOC;
		frees += r.tag == TT_REC_FREE;
	}
	cr_assert_eq(allocs, 300);
	cr_assert_eq(frees, 100);
	cr_assert_eq(tt_decoder_frames(d), 1, "gathered: %lu frames",
		     (unsigned long)tt_decoder_frames(d));
	cr_assert(!tt_decoder_truncated(d, NULL));
	tt_decoder_destroy(d);
}

/* Cut the file at every length: never a crash; a cut inside the last frame keeps
 * every record of the frames before it and says "truncated". */
Test(format, truncated_at_every_length)
{
	char bin[1024], cut[800];
	make_trace(bin, sizeof(bin));
	unsigned char *data;
	long n = support_slurp(bin, &data);
	cr_assert_gt(n, TT_HEADER_SIZE);
	snprintf(cut, sizeof(cut), "%s/cut.bin", dir);

	/* Records of the complete file, and where its last frame starts. */
	char err[512];
	struct tt_decoder *d = tt_decoder_open(bin, err, sizeof(err));
	struct tt_record r;
	uint64_t total = 0, before_last = 0, last_frame = 0;
	while (tt_decoder_next(d, &r) == 1) {
		if (r.frame_offset != last_frame) {
			before_last = total;
			last_frame = r.frame_offset;
		}
		total++;
	}
	tt_decoder_destroy(d);
	cr_assert_gt(before_last, 0);

	for (long len = 0; len < n; len++) {
		support_spit(cut, data, (size_t)len);
		d = tt_decoder_open(cut, err, sizeof(err));
		if (len < (long)TT_HEADER_SIZE) {
			cr_assert_null(d, "a %ld-byte file has no complete header", len);
			cr_assert(strncmp(err, "offset ", 7) == 0, "%s", err);
			continue;
		}
		cr_assert_not_null(d, "%s", err);
		uint64_t got = 0;
		int rc;
		while ((rc = tt_decoder_next(d, &r)) == 1)
			got++;
		cr_assert_eq(rc, 0, "cut at %ld: a clean cut is not corruption: %s", len,
			     tt_decoder_error(d));
		uint64_t off = 0;
		bool trunc = tt_decoder_truncated(d, &off);
		if (len > (long)last_frame) {
			cr_assert(trunc, "cut at %ld inside the last frame", len);
			cr_assert_eq(off, last_frame);
			cr_assert_eq(got, before_last, "records of complete frames survive");
		}
		cr_assert_leq(got, total);
		tt_decoder_destroy(d);
	}
	free(data);
}

static void expect_error(const char *path, const char *want_prefix)
{
	char err[512];
	struct tt_decoder *d = tt_decoder_open(path, err, sizeof(err));
	if (d) {
		struct tt_record r;
		int rc;
		while ((rc = tt_decoder_next(d, &r)) == 1)
			;
		cr_assert_eq(rc, -1, "expected an error like \"%s\"", want_prefix);
		snprintf(err, sizeof(err), "%s", tt_decoder_error(d));
		tt_decoder_destroy(d);
	}
	cr_assert(strncmp(err, want_prefix, strlen(want_prefix)) == 0, "got \"%s\", want \"%s\"",
		  err, want_prefix);
}

Test(format, wrong_magic_version_and_empty)
{
	char bin[1024], bad[800];
	make_trace(bin, sizeof(bin));
	unsigned char *data;
	long n = support_slurp(bin, &data);
	snprintf(bad, sizeof(bad), "%s/bad.bin", dir);

	support_spit(bad, "", 0);
	expect_error(bad, "offset 0: empty file");

	data[9] ^= 0xff; /* inside "THAGTRAC" */
	support_spit(bad, data, (size_t)n);
	expect_error(bad, "offset 0: bad magic, not a thagtrace file");
	data[9] ^= 0xff;

	data[16] = TT_FORMAT_VERSION + 1; /* version */
	support_spit(bad, data, (size_t)n);
	expect_error(bad, "offset 16: format version 3 is not supported");
	data[16] = 0;
	support_spit(bad, data, (size_t)n);
	expect_error(bad, "offset 16: format version 0 is not supported");
	data[16] = TT_FORMAT_VERSION;

	support_spit(bad, "\x28\xb5\x2f\xfd plain zstd, not ours", 25);
	expect_error(bad, "offset 0: bad magic");
	free(data);
}

Test(format, corrupt_frame_names_its_offset)
{
	char bin[1024], bad[800];
	make_trace(bin, sizeof(bin));
	unsigned char *data;
	long n = support_slurp(bin, &data);
	snprintf(bad, sizeof(bad), "%s/bad.bin", dir);
	/* Flip a byte in the middle of the first frame's compressed data. */
	long at = TT_HEADER_SIZE + 20;
	data[at] ^= 0x5a;
	support_spit(bad, data, (size_t)n);
	expect_error(bad, "offset 24: ");
	/* Garbage after the last frame: an error at the garbage's offset. */
	data[at] ^= 0x5a;
	unsigned char *more = malloc((size_t)n + 16);
	memcpy(more, data, (size_t)n);
	memset(more + n, 0x41, 16);
	support_spit(bad, more, (size_t)n + 16);
	char want[64];
	snprintf(want, sizeof(want), "offset %ld: corrupt compressed frame", n);
	expect_error(bad, want);
	free(more);
	free(data);
}

/* Write a file of our format whose one frame holds `content`. */
static void write_raw(const char *path, const void *content, size_t len)
{
	unsigned char hdr[TT_HEADER_SIZE];
	tt_header_encode(hdr, TT_FILE_EVENTS);
	size_t cap = ZSTD_compressBound(len);
	unsigned char *buf = malloc(sizeof(hdr) + cap);
	memcpy(buf, hdr, sizeof(hdr));
	size_t c = ZSTD_compress(buf + sizeof(hdr), cap, content, len, 1);
	cr_assert(!ZSTD_isError(c));
	support_spit(path, buf, sizeof(hdr) + c);
	free(buf);
}

Test(format, bad_records_inside_a_valid_frame)
{
	char bad[600];
	snprintf(dir, sizeof(dir), "%s", support_tmpdir("records"));
	snprintf(bad, sizeof(bad), "%s/rec.bin", dir);

	write_raw(bad, "\xc1", 1); /* 0xc1: never used in MessagePack */
	expect_error(bad, "offset 24: malformed MessagePack in record #1");

	/* An array header claiming 2^32 - 1 elements in a 5-byte frame: refused before
	 * msgpack-c would allocate room for them. */
	write_raw(bad, "\xdd\xff\xff\xff\xff", 5);
	expect_error(bad, "offset 24: frame ends inside record #1");
	write_raw(bad, "\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x01",
		  18); /* nested 17 deep */
	expect_error(bad, "offset 24: malformed MessagePack in record #1");

	write_raw(bad, "\x05", 1); /* a bare integer */
	expect_error(bad, "offset 24: record #1 is not a [tag, ...] array");

	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, 6); /* alloc with a string where the delta goes */
	msgpack_pack_uint8(&pk, TT_REC_ALLOC);
	msgpack_pack_str_with_body(&pk, "x", 1);
	for (int i = 0; i < 3; i++)
		msgpack_pack_uint8(&pk, 1);
	msgpack_pack_double(&pk, 1.0);
	write_raw(bad, sb.data, sb.size);
	expect_error(bad, "offset 24: alloc record #1: field 1 is not a time delta");

	msgpack_sbuffer_clear(&sb);
	msgpack_pack_array(&pk, 3); /* too few fields */
	msgpack_pack_uint8(&pk, TT_REC_ALLOC);
	msgpack_pack_uint8(&pk, 1);
	msgpack_pack_uint8(&pk, 1);
	write_raw(bad, sb.data, sb.size);
	expect_error(bad, "offset 24: alloc record #1 has 3 fields, needs 6");

	/* The probability field: a float out of range, a number no PROB defined. */
	const struct {
		bool is_float;
		double value;
		const char *want;
	} alloc_p[] = {
	    {true, 1.5, "offset 24: alloc record #1: field 5 is not a probability in (0, 1]"},
	    {false, 3, "offset 24: alloc record #1: probability 3 is not defined (0 are)"},
	};
	for (size_t i = 0; i < sizeof(alloc_p) / sizeof(alloc_p[0]); i++) {
		msgpack_sbuffer_clear(&sb);
		msgpack_pack_array(&pk, 6);
		msgpack_pack_uint8(&pk, TT_REC_ALLOC);
		for (int f = 0; f < 4; f++)
			msgpack_pack_uint8(&pk, 1);
		if (alloc_p[i].is_float)
			msgpack_pack_double(&pk, alloc_p[i].value);
		else
			msgpack_pack_uint8(&pk, (uint8_t)alloc_p[i].value);
		write_raw(bad, sb.data, sb.size);
		expect_error(bad, alloc_p[i].want);
	}

	/* Forward compatibility: an unknown tag is skipped, extra fields ignored. */
	msgpack_sbuffer_clear(&sb);
	msgpack_pack_array(&pk, 2);
	msgpack_pack_uint8(&pk, 99);
	msgpack_pack_nil(&pk);
	msgpack_pack_array(&pk, 4);
	msgpack_pack_uint8(&pk, TT_REC_FREE);
	msgpack_pack_uint8(&pk, 7);
	msgpack_pack_uint16(&pk, 0xbeef);
	msgpack_pack_str_with_body(&pk, "future field", 12);
	write_raw(bad, sb.data, sb.size);
	char err[512];
	struct tt_decoder *d = tt_decoder_open(bad, err, sizeof(err));
	cr_assert_not_null(d, "%s", err);
	struct tt_record r;
	cr_assert_eq(tt_decoder_next(d, &r), 1, "%s", tt_decoder_error(d));
	cr_assert_eq(r.tag, TT_REC_FREE);
	cr_assert_eq(r.free.ptr, 0xbeef);
	cr_assert_eq(r.free.ts, 7);
	cr_assert_eq(tt_decoder_next(d, &r), 0);
	tt_decoder_destroy(d);

	/* v2's probability numbers: defined in order, before use. */
	const struct {
		uint8_t k;
		double p;
		const char *want;
	} probs[] = {
	    {2, 0.5, "offset 24: prob record: number is not 1, the next one"},
	    {1, 0.0, "offset 24: prob record 1: not a probability in (0, 1]"},
	};
	for (size_t i = 0; i < sizeof(probs) / sizeof(probs[0]); i++) {
		msgpack_sbuffer_clear(&sb);
		msgpack_pack_array(&pk, 3);
		msgpack_pack_uint8(&pk, TT_REC_PROB);
		msgpack_pack_uint8(&pk, probs[i].k);
		msgpack_pack_double(&pk, probs[i].p);
		write_raw(bad, sb.data, sb.size);
		expect_error(bad, probs[i].want);
	}

	/* NAME: the name, cut to what the decoder keeps; a name that is not a string is
	 * an error naming the record. */
	msgpack_sbuffer_clear(&sb);
	encode_name(&pk, "renamed-worker");
	write_raw(bad, sb.data, sb.size);
	d = tt_decoder_open(bad, err, sizeof(err));
	cr_assert_not_null(d, "%s", err);
	cr_assert_eq(tt_decoder_next(d, &r), 1, "%s", tt_decoder_error(d));
	cr_assert_eq(r.tag, TT_REC_NAME);
	cr_assert_str_eq(r.name.name, "renamed-worker");
	cr_assert_eq(tt_decoder_next(d, &r), 0);
	tt_decoder_destroy(d);
	msgpack_sbuffer_clear(&sb);
	msgpack_pack_array(&pk, 2);
	msgpack_pack_uint8(&pk, TT_REC_NAME);
	msgpack_pack_uint8(&pk, 7);
	write_raw(bad, sb.data, sb.size);
	expect_error(bad, "offset 24: name record #1: field 1 is not a string");
	msgpack_sbuffer_destroy(&sb);
}

/* An ALLOC and a FREE encoded from fresh event state (so the differences are the
 * values given), through `pk`: their bytes. */
static void encode_pair(msgpack_packer *pk, int64_t dt, int64_t dp, uint64_t size, uint32_t stack,
			double p, bool floats)
{
	static struct encode_events e; /* large: off the stack */
	encode_events_init(&e, 0);
	if (floats) /* the file has all the PROB records it may: floats from here */
		e.probs = TT_PROB_MAX;
	encode_alloc(pk, &e, (uint64_t)dt, (uint64_t)dp, size, stack, p);
	encode_free(pk, &e, (uint64_t)dt + (uint64_t)dp, (uint64_t)dp - (uint64_t)dt);
}

/* The same two records written field by field with msgpack-c's packer. */
static void reference_pair(msgpack_packer *pk, int64_t dt, int64_t dp, uint64_t size,
			   uint32_t stack, double p, bool floats)
{
	if (p != 1.0 && !floats) {
		msgpack_pack_array(pk, 3);
		msgpack_pack_uint8(pk, TT_REC_PROB);
		msgpack_pack_uint32(pk, 1);
		msgpack_pack_double(pk, p);
	}
	msgpack_pack_array(pk, 6);
	msgpack_pack_uint8(pk, TT_REC_ALLOC);
	msgpack_pack_int64(pk, dt);
	msgpack_pack_int64(pk, dp);
	msgpack_pack_uint64(pk, size);
	msgpack_pack_uint32(pk, stack);
	if (p == 1.0)
		msgpack_pack_uint32(pk, 0);
	else if (floats)
		msgpack_pack_double(pk, p);
	else
		msgpack_pack_uint32(pk, 1);
	msgpack_pack_array(pk, 3);
	msgpack_pack_uint8(pk, TT_REC_FREE);
	msgpack_pack_int64(pk, dp);			     /* ts: dt + dp after dt */
	msgpack_pack_int64(pk, (int64_t)(0 - (uint64_t)dt)); /* ptr: dp - dt after dp */
}

static void same_bytes(int64_t dt, int64_t dp, uint64_t size, uint32_t stack, double p, bool floats)
{
	struct encode_buf b; /* the writer's sink */
	encode_buf_init(&b);
	msgpack_packer bpk;
	msgpack_packer_init(&bpk, &b, encode_buf_write);
	encode_pair(&bpk, dt, dp, size, stack, p, floats);
	msgpack_sbuffer sb; /* anyone else's */
	msgpack_sbuffer_init(&sb);
	msgpack_packer spk;
	msgpack_packer_init(&spk, &sb, msgpack_sbuffer_write);
	encode_pair(&spk, dt, dp, size, stack, p, floats);
	msgpack_sbuffer ref;
	msgpack_sbuffer_init(&ref);
	msgpack_packer rpk;
	msgpack_packer_init(&rpk, &ref, msgpack_sbuffer_write);
	reference_pair(&rpk, dt, dp, size, stack, p, floats);
	cr_assert(!b.failed);
	cr_assert(b.size == ref.size && memcmp(b.data, ref.data, ref.size) == 0 &&
		      sb.size == ref.size && memcmp(sb.data, ref.data, ref.size) == 0,
		  "dt %lld dp %lld size %llu stack %u p %g: %zu and %zu bytes, msgpack-c %zu",
		  (long long)dt, (long long)dp, (unsigned long long)size, stack, p, b.size, sb.size,
		  ref.size);
	encode_buf_destroy(&b);
	msgpack_sbuffer_destroy(&sb);
	msgpack_sbuffer_destroy(&ref);
}

/* The writer's direct ALLOC and FREE encoding against msgpack-c's packer, at both
 * sides of every bound between msgpack's integer forms. */
Test(format, direct_records_are_msgpack_cs_bytes)
{
	const int64_t ints[] = {0,
				1,
				31,
				32,
				127,
				128,
				255,
				256,
				65535,
				65536,
				0xFFFFFFFFll,
				0x100000000ll,
				INT64_MAX,
				-1,
				-32,
				-33,
				-128,
				-129,
				-32768,
				-32769,
				INT32_MIN,
				(int64_t)INT32_MIN - 1,
				INT64_MIN};
	const size_t n = sizeof(ints) / sizeof(ints[0]);
	const double probs[] = {1.0, 0.5, 0x1.0p-64};
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < n; j++) {
			uint64_t size = (uint64_t)ints[(i + j) % n];
			uint32_t stack = (uint32_t)ints[(i * 7 + j) % n];
			same_bytes(ints[i], ints[j], size, stack, probs[(i + j) % 3], false);
			same_bytes(ints[i], ints[j], size, stack, probs[(i + j) % 3], true);
		}
}

/* v2 by hand: addresses as differences (either way), probabilities by number (0 for
 * 1) or as floats; the decoder returns whole values. */
Test(format, v2_differences_and_probability_numbers)
{
	char path[600];
	snprintf(dir, sizeof(dir), "%s", support_tmpdir("v2"));
	snprintf(path, sizeof(path), "%s/v2.bin", dir);
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, 3);
	msgpack_pack_uint8(&pk, TT_REC_PROB);
	msgpack_pack_uint8(&pk, 1);
	msgpack_pack_double(&pk, 0.25);
	const int64_t dp[4] = {0x7f0000001000, 0x40, -0x1000, 0x30};
	const uint64_t want_ptr[4] = {0x7f0000001000, 0x7f0000001040, 0x7f0000000040,
				      0x7f0000000070};
	const double want_p[3] = {0.25, 1.0, 0.125};
	for (int i = 0; i < 4; i++) {
		if (i == 3) {
			msgpack_pack_array(&pk, 3);
			msgpack_pack_uint8(&pk, TT_REC_FREE);
			msgpack_pack_uint8(&pk, 5);
			msgpack_pack_int64(&pk, dp[i]);
			break;
		}
		msgpack_pack_array(&pk, 6);
		msgpack_pack_uint8(&pk, TT_REC_ALLOC);
		msgpack_pack_uint8(&pk, 10);
		msgpack_pack_int64(&pk, dp[i]);
		msgpack_pack_uint8(&pk, 16);
		msgpack_pack_uint8(&pk, 0);
		if (i == 2)
			msgpack_pack_double(&pk, 0.125);
		else
			msgpack_pack_uint8(&pk, i == 0 ? 1 : 0);
	}
	write_raw(path, sb.data, sb.size);
	char err[512];
	struct tt_decoder *d = tt_decoder_open(path, err, sizeof(err));
	cr_assert_not_null(d, "%s", err);
	struct tt_record r;
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(tt_decoder_next(d, &r), 1, "%s", tt_decoder_error(d));
		if (i == 3) {
			cr_assert_eq(r.tag, TT_REC_FREE);
			cr_assert_eq(r.free.ptr, want_ptr[i]);
			cr_assert_eq(r.free.ts, 35);
		} else {
			cr_assert_eq(r.tag, TT_REC_ALLOC);
			cr_assert_eq(r.alloc.ptr, want_ptr[i], "alloc %d: %#llx", i,
				     (unsigned long long)r.alloc.ptr);
			cr_assert_eq(r.alloc.ts, 10u * (unsigned)(i + 1));
			cr_assert_eq(r.alloc.probability, want_p[i]);
		}
	}
	cr_assert_eq(tt_decoder_next(d, &r), 0);
	cr_assert_eq(tt_decoder_records(d), 4, "PROB records are not returned");
	tt_decoder_destroy(d);
	msgpack_sbuffer_destroy(&sb);
}

/* Deterministic mutation fuzzing: whatever the damage, the decoder ends with a record
 * count, a clean end or an error naming an offset; never a crash or a hang. */
Test(format, mutations_never_crash, .timeout = 60)
{
	char bin[1024], bad[800];
	make_trace(bin, sizeof(bin));
	unsigned char *data;
	long n = support_slurp(bin, &data);
	unsigned char *m = malloc((size_t)n);
	snprintf(bad, sizeof(bad), "%s/mut.bin", dir);
	uint64_t seed = 42;
	int errors = 0;
	for (int iter = 0; iter < 2000; iter++) {
		memcpy(m, data, (size_t)n);
		int flips = 1 + iter % 4;
		for (int k = 0; k < flips; k++) {
			seed = seed * 6364136223846793005ull + 1442695040888963407ull;
			long at = (long)((seed >> 33) % (uint64_t)n);
			m[at] ^= (unsigned char)(1u << ((seed >> 20) & 7));
		}
		support_spit(bad, m, (size_t)n);
		char err[512];
		struct tt_decoder *d = tt_decoder_open(bad, err, sizeof(err));
		if (!d) {
			cr_assert(strncmp(err, "offset ", 7) == 0, "%s", err);
			errors++;
			continue;
		}
		struct tt_record r;
		int rc;
		uint64_t guard = 0;
		while ((rc = tt_decoder_next(d, &r)) == 1)
			cr_assert_lt(++guard, 100000, "runaway decode");
		if (rc < 0) {
			cr_assert(strncmp(tt_decoder_error(d), "offset ", 7) == 0, "%s",
				  tt_decoder_error(d));
			errors++;
		}
		tt_decoder_destroy(d);
	}
	cr_assert_gt(errors, 1500, "checksums catch nearly every flipped bit (%d/2000)", errors);
	free(m);
	free(data);
}
