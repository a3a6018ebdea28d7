/* SPDX-License-Identifier: MIT */
/* Streaming decoder: header check, whole zstd frames, then MessagePack records. */
#define _GNU_SOURCE
#include "decode.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#define IN_CHUNK	  (256u * 1024)
#define MAX_FRAME_CONTENT (256u * 1024 * 1024) /* writers close frames near 1 MiB */

struct tt_decoder {
	int fd;
	enum tt_file_kind kind;
	ZSTD_DStream *ds;
	msgpack_unpacker up;
	bool up_ready;
	bool have_object;   /* the unpacker's zone holds the last returned object */
	msgpack_object obj; /* that object; records point into it */

	unsigned char *in;
	size_t in_len, in_pos;
	uint64_t in_file_off; /* file offset of in[0] */
	bool eof;

	uint64_t frame_off;    /* offset of the frame whose records are being parsed */
	uint64_t frame_parsed; /* unpacker parsed size at that frame's start */
	bool truncated;
	uint64_t truncated_at;

	unsigned version;
	uint64_t last_ts, last_ptr; /* v2: ALLOC and FREE carry differences from these */
	double *probs;		    /* v2: probs[k - 1] from PROB record k */
	uint32_t nprobs, cap_probs;
	uint64_t frames_done, records;
	char name[256];
	uint64_t frames[TT_DECODE_MAX_FRAMES];
	char err[512];
};

static int fail(struct tt_decoder *d, uint64_t off, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct tt_decoder *d, uint64_t off, const char *fmt, ...)
{
	int n = snprintf(d->err, sizeof(d->err), "offset %llu: ", (unsigned long long)off);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(d->err + n, sizeof(d->err) - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

const char *tt_record_tag_name(unsigned tag)
{
	static const char *const names[] = {
	    [TT_REC_THREAD] = "thread",
	    [TT_REC_STACK] = "stack",
	    [TT_REC_ALLOC] = "alloc",
	    [TT_REC_FREE] = "free",
	    [TT_REC_DROPS] = "drops",
	    [TT_REC_END] = "end",
	    [TT_REC_SITE] = "site",
	    [TT_REC_SNAPSHOT] = "snapshot",
	    [TT_REC_PROCESS] = "process",
	    [TT_REC_MODULES] = "modules",
	    [TT_REC_PROCESS_END] = "process-end",
	    [TT_REC_CLOCK] = "clock",
	    [TT_REC_PROB] = "prob",
	    [TT_REC_NAME] = "name",
	};
	return tag <= TT_REC_TAG_MAX && names[tag] ? names[tag] : "unknown";
}

static ssize_t read_full(int fd, void *buf, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, (char *)buf + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

static int check_header(struct tt_decoder *d, char *err, size_t errcap)
{
	unsigned char h[TT_HEADER_SIZE];
	ssize_t n = read_full(d->fd, h, sizeof(h));
	if (n < 0) {
		snprintf(err, errcap, "offset 0: cannot read: %s", strerror(errno));
		return -1;
	}
	if (n == 0) {
		snprintf(err, errcap, "offset 0: empty file, not a thagtrace file");
		return -1;
	}
	if (tt_get_le32(h) != TT_SKIPPABLE_MAGIC ||
	    (n >= 16 && memcmp(h + 8, TT_FILE_MAGIC, 8) != 0)) {
		snprintf(err, errcap, "offset 0: bad magic, not a thagtrace file");
		return -1;
	}
	if ((size_t)n < sizeof(h)) {
		snprintf(err, errcap, "offset %zd: file ends inside its %u-byte header", n,
			 TT_HEADER_SIZE);
		return -1;
	}
	if (tt_get_le32(h + 4) != TT_HEADER_PAYLOAD) {
		snprintf(err, errcap, "offset 4: header size %u, expected %u", tt_get_le32(h + 4),
			 TT_HEADER_PAYLOAD);
		return -1;
	}
	unsigned version = tt_get_le16(h + 16), kind = tt_get_le16(h + 18);
	if (version < TT_FORMAT_OLDEST || version > TT_FORMAT_VERSION) {
		snprintf(err, errcap,
			 "offset 16: format version %u is not supported (this reader reads "
			 "versions %u to %u)",
			 version, TT_FORMAT_OLDEST, TT_FORMAT_VERSION);
		return -1;
	}
	d->version = version;
	if (kind < TT_FILE_EVENTS || kind > TT_FILE_META) {
		snprintf(err, errcap, "offset 18: unknown file kind %u", kind);
		return -1;
	}
	d->kind = (enum tt_file_kind)kind;
	d->in_file_off = sizeof(h);
	return 0;
}

struct tt_decoder *tt_decoder_open(const char *path, char *err, size_t errcap)
{
	struct tt_decoder *d = calloc(1, sizeof(*d));
	if (!d) {
		snprintf(err, errcap, "offset 0: out of memory");
		return NULL;
	}
	/* Non-blocking: a FIFO or device put in a trace directory must not hang the
	 * tools; only a regular file is read. */
	d->fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (d->fd < 0) {
		snprintf(err, errcap, "offset 0: cannot open: %s", strerror(errno));
		free(d);
		return NULL;
	}
	struct stat st;
	if (fstat(d->fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errcap, "offset 0: not a regular file");
		close(d->fd);
		free(d);
		return NULL;
	}
	if (check_header(d, err, errcap) != 0) {
		close(d->fd);
		free(d);
		return NULL;
	}
	d->in = malloc(IN_CHUNK);
	d->ds = ZSTD_createDStream();
	d->up_ready = msgpack_unpacker_init(&d->up, MSGPACK_UNPACKER_INIT_BUFFER_SIZE);
	if (!d->in || !d->ds || !d->up_ready) {
		snprintf(err, errcap, "offset 0: out of memory");
		tt_decoder_destroy(d);
		return NULL;
	}
	/* Writers close frames near 1 MiB; refuse the huge windows a damaged frame header
	 * can ask for instead of allocating them. */
	ZSTD_DCtx_setParameter(d->ds, ZSTD_d_windowLogMax, 24);
	return d;
}

void tt_decoder_destroy(struct tt_decoder *d)
{
	if (!d)
		return;
	if (d->up_ready)
		msgpack_unpacker_destroy(&d->up);
	ZSTD_freeDStream(d->ds);
	free(d->in);
	free(d->probs);
	if (d->fd >= 0)
		close(d->fd);
	free(d);
}

enum tt_file_kind tt_decoder_kind(const struct tt_decoder *d)
{
	return d->kind;
}

bool tt_decoder_truncated(const struct tt_decoder *d, uint64_t *offset)
{
	if (offset)
		*offset = d->truncated_at;
	return d->truncated;
}

const char *tt_decoder_error(const struct tt_decoder *d)
{
	return d->err;
}

uint64_t tt_decoder_frames(const struct tt_decoder *d)
{
	return d->frames_done;
}

uint64_t tt_decoder_records(const struct tt_decoder *d)
{
	return d->records;
}

/* Refill the input buffer when empty. Returns 1 with data, 0 at EOF, -1 on error. */
static int fill_input(struct tt_decoder *d)
{
	if (d->in_pos < d->in_len)
		return 1;
	if (d->eof)
		return 0;
	d->in_file_off += d->in_len;
	d->in_len = d->in_pos = 0;
	ssize_t r = read_full(d->fd, d->in, IN_CHUNK);
	if (r < 0)
		return fail(d, d->in_file_off, "cannot read: %s", strerror(errno));
	if (r == 0) {
		d->eof = true;
		return 0;
	}
	d->in_len = (size_t)r;
	return 1;
}

/*
 * Decompress the next whole frame into the unpacker's buffer. Its records are only
 * parsed once the frame (and its checksum) is complete. Returns 1 for a frame, 0 at
 * a clean end, -1 on error; an incomplete last frame sets `truncated` and returns 0.
 */
static int load_frame(struct tt_decoder *d)
{
	int rc = fill_input(d);
	if (rc <= 0)
		return rc;
	uint64_t start = d->in_file_off + d->in_pos;
	size_t content = 0;
	ZSTD_DCtx_reset(d->ds, ZSTD_reset_session_only);
	for (;;) {
		rc = fill_input(d);
		if (rc < 0)
			return rc;
		if (rc == 0) {
			/* EOF inside the frame: everything before it stands. The partial
			 * content is in the unpacker's buffer but is never parsed. */
			d->truncated = true;
			d->truncated_at = start;
			return 0;
		}
		if (!msgpack_unpacker_reserve_buffer(&d->up, 64 * 1024))
			return fail(d, start, "out of memory decoding a frame");
		ZSTD_inBuffer in = {d->in, d->in_len, d->in_pos};
		ZSTD_outBuffer out = {msgpack_unpacker_buffer(&d->up),
				      msgpack_unpacker_buffer_capacity(&d->up), 0};
		size_t ret = ZSTD_decompressStream(d->ds, &out, &in);
		d->in_pos = in.pos;
		if (ZSTD_isError(ret))
			return fail(d, start, "corrupt compressed frame: %s",
				    ZSTD_getErrorName(ret));
		msgpack_unpacker_buffer_consumed(&d->up, out.pos);
		content += out.pos;
		if (content > MAX_FRAME_CONTENT)
			return fail(d, start, "frame content larger than %u bytes",
				    MAX_FRAME_CONTENT);
		if (ret == 0)
			break;
	}
	d->frame_off = start;
	d->frames_done++;
	return 1;
}

static bool get_u64(const msgpack_object *o, uint64_t *v)
{
	if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return false;
	*v = o->via.u64;
	return true;
}

/* A string field into d->name, cut to fit; false when it is not a string. */
static bool get_name(struct tt_decoder *d, const msgpack_object *o)
{
	if (o->type != MSGPACK_OBJECT_STR)
		return false;
	size_t n = o->via.str.size < sizeof(d->name) - 1 ? o->via.str.size : sizeof(d->name) - 1;
	if (n) /* msgpack-c gives an empty string a NULL pointer */
		memcpy(d->name, o->via.str.ptr, n);
	d->name[n] = '\0';
	return true;
}

static bool get_i64(const msgpack_object *o, int64_t *v)
{
	if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
		*v = o->via.i64;
		return true;
	}
	if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT64_MAX) {
		*v = (int64_t)o->via.u64;
		return true;
	}
	return false;
}

static bool get_u32(const msgpack_object *o, uint32_t *v)
{
	uint64_t x;
	if (!get_u64(o, &x) || x > UINT32_MAX)
		return false;
	*v = (uint32_t)x;
	return true;
}

/* Field check helpers: on a type error, say which record and field. */
#define FIELD_U64(i, dst)                                                                          \
	do {                                                                                       \
		if (!get_u64(&f[i], (dst)))                                                        \
			return bad_field(d, tag, i, "an unsigned integer");                        \
	} while (0)
#define FIELD_U32(i, dst)                                                                          \
	do {                                                                                       \
		if (!get_u32(&f[i], (dst)))                                                        \
			return bad_field(d, tag, i, "an unsigned 32-bit integer");                 \
	} while (0)

static uint64_t record_offset(const struct tt_decoder *d)
{
	return d->frame_off;
}

static int bad_field(struct tt_decoder *d, unsigned tag, unsigned i, const char *want)
{
	return fail(d, record_offset(d), "%s record #%llu: field %u is not %s",
		    tt_record_tag_name(tag), (unsigned long long)d->records + 1, i, want);
}

/* An event's address: v1 writes it whole, v2 as the difference from the last one. */
static bool event_ptr(struct tt_decoder *d, const msgpack_object *o, uint64_t *ptr)
{
	if (d->version == 1)
		return get_u64(o, ptr);
	int64_t delta;
	if (!get_i64(o, &delta))
		return false;
	d->last_ptr += (uint64_t)delta;
	*ptr = d->last_ptr;
	return true;
}

/* PROB [13, k, p]: the next number in order, a probability in (0, 1]. Consumed
 * here, not returned (the ALLOC records that use it carry the value). */
static int define_prob(struct tt_decoder *d, const msgpack_object *f)
{
	uint32_t k;
	if (!get_u32(&f[1], &k) || k != d->nprobs + 1)
		return fail(d, record_offset(d), "prob record: number is not %u, the next one",
			    d->nprobs + 1);
	if (k > TT_PROB_MAX)
		return fail(d, record_offset(d), "prob record: more than %u probabilities",
			    TT_PROB_MAX);
	if ((f[2].type != MSGPACK_OBJECT_FLOAT64 && f[2].type != MSGPACK_OBJECT_FLOAT32) ||
	    !(f[2].via.f64 > 0.0 && f[2].via.f64 <= 1.0))
		return fail(d, record_offset(d), "prob record %u: not a probability in (0, 1]", k);
	if (d->nprobs == d->cap_probs) {
		uint32_t cap = d->cap_probs ? d->cap_probs * 2 : 64;
		double *p = realloc(d->probs, cap * sizeof(*p));
		if (!p)
			return fail(d, record_offset(d), "out of memory");
		d->probs = p;
		d->cap_probs = cap;
	}
	d->probs[d->nprobs++] = f[2].via.f64;
	return 0;
}

static int decode_object(struct tt_decoder *d, const msgpack_object *o, struct tt_record *rec)
{
	if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size == 0 ||
	    o->via.array.ptr[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return fail(d, record_offset(d), "record #%llu is not a [tag, ...] array",
			    (unsigned long long)d->records + 1);
	const msgpack_object *f = o->via.array.ptr;
	uint64_t tag64 = f[0].via.u64;
	unsigned tag = tag64 <= TT_REC_TAG_MAX ? (unsigned)tag64 : 0;
	if (!tag)
		return 0; /* unknown tag: skip */
	if (o->via.array.size < tt_record_min_fields(tag))
		return fail(d, record_offset(d), "%s record #%llu has %u fields, needs %u",
			    tt_record_tag_name(tag), (unsigned long long)d->records + 1,
			    o->via.array.size, tt_record_min_fields(tag));
	rec->tag = tag;
	rec->frame_offset = d->frame_off;
	int64_t s;
	switch (tag) {
	case TT_REC_THREAD: {
		if (!get_i64(&f[1], &s) || s < 0 || s > INT32_MAX)
			return bad_field(d, tag, 1, "a pid");
		rec->thread.pid = (int32_t)s;
		if (!get_i64(&f[2], &s) || s < 0 || s > INT32_MAX)
			return bad_field(d, tag, 2, "a thread id");
		rec->thread.tid = (int32_t)s;
		if (!get_name(d, &f[3]))
			return bad_field(d, tag, 3, "a string");
		rec->thread.name = d->name;
		FIELD_U64(4, &rec->thread.start);
		d->last_ts = rec->thread.start;
		break;
	}
	case TT_REC_STACK: {
		FIELD_U32(1, &rec->stack.id);
		FIELD_U32(2, &rec->stack.flags);
		if (f[3].type != MSGPACK_OBJECT_ARRAY)
			return bad_field(d, tag, 3, "an array of frames");
		unsigned n = f[3].via.array.size;
		if (n > TT_DECODE_MAX_FRAMES)
			return fail(d, record_offset(d), "stack of %u frames, more than %u", n,
				    TT_DECODE_MAX_FRAMES);
		for (unsigned i = 0; i < n; i++)
			if (!get_u64(&f[3].via.array.ptr[i], &d->frames[i]))
				return bad_field(d, tag, 3, "an array of addresses");
		rec->stack.nframes = n;
		rec->stack.frames = d->frames;
		break;
	}
	case TT_REC_ALLOC:
		if (!get_i64(&f[1], &s))
			return bad_field(d, tag, 1, "a time delta");
		d->last_ts += (uint64_t)s;
		rec->alloc.ts = d->last_ts;
		if (!event_ptr(d, &f[2], &rec->alloc.ptr))
			return bad_field(d, tag, 2,
					 d->version == 1 ? "an address" : "an address delta");
		FIELD_U64(3, &rec->alloc.size);
		FIELD_U32(4, &rec->alloc.stack_id);
		if (f[5].type == MSGPACK_OBJECT_FLOAT64 || f[5].type == MSGPACK_OBJECT_FLOAT32) {
			rec->alloc.probability = f[5].via.f64;
		} else if (d->version >= 2 && f[5].type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
			uint64_t k = f[5].via.u64;
			if (k > d->nprobs)
				return fail(d, record_offset(d),
					    "alloc record #%llu: probability %llu is not defined "
					    "(%u are)",
					    (unsigned long long)d->records + 1,
					    (unsigned long long)k, d->nprobs);
			rec->alloc.probability = k ? d->probs[k - 1] : 1.0;
		} else {
			return bad_field(d, tag, 5, "a probability");
		}
		if (!(rec->alloc.probability > 0.0 && rec->alloc.probability <= 1.0))
			return bad_field(d, tag, 5, "a probability in (0, 1]");
		break;
	case TT_REC_FREE:
		if (!get_i64(&f[1], &s))
			return bad_field(d, tag, 1, "a time delta");
		d->last_ts += (uint64_t)s;
		rec->free.ts = d->last_ts;
		if (!event_ptr(d, &f[2], &rec->free.ptr))
			return bad_field(d, tag, 2,
					 d->version == 1 ? "an address" : "an address delta");
		break;
	case TT_REC_PROB:
		return define_prob(d, f);
	case TT_REC_NAME:
		if (!get_name(d, &f[1]))
			return bad_field(d, tag, 1, "a string");
		rec->name.name = d->name;
		break;
	case TT_REC_DROPS:
		FIELD_U64(1, &rec->drops.emitted);
		FIELD_U64(2, &rec->drops.dropped);
		FIELD_U64(3, &rec->drops.dropped_bytes);
		rec->drops.shed = 0;
		if (o->via.array.size > 4)
			FIELD_U64(4, &rec->drops.shed);
		break;
	case TT_REC_END:
		FIELD_U64(1, &rec->end.emitted);
		FIELD_U64(2, &rec->end.recorded);
		FIELD_U64(3, &rec->end.dropped);
		FIELD_U64(4, &rec->end.end);
		break;
	case TT_REC_SITE:
		FIELD_U64(1, &rec->site.site);
		FIELD_U64(2, &rec->site.count);
		FIELD_U64(3, &rec->site.bytes);
		break;
	case TT_REC_SNAPSHOT:
		FIELD_U64(1, &rec->snapshot.ts);
		FIELD_U64(2, &rec->snapshot.nsites);
		break;
	case TT_REC_CLOCK:
		FIELD_U64(1, &rec->clock.ticks);
		FIELD_U64(2, &rec->clock.mono_ns);
		FIELD_U64(3, &rec->clock.real_ns);
		break;
	case TT_REC_PROCESS:
	case TT_REC_PROCESS_END:
		if (f[1].type != MSGPACK_OBJECT_MAP)
			return bad_field(d, tag, 1, "a map");
		rec->meta.body = &f[1];
		break;
	case TT_REC_MODULES:
		rec->meta.body = o;
		break;
	}
	return 1;
}

#define MP_MAX_DEPTH 16

/* MessagePack type bytes 0xc0..0xdf: what follows the type byte. */
enum { MP_BAD, MP_FIXED, MP_BYTES, MP_ARRAY, MP_MAP };
static const struct {
	unsigned char kind;
	unsigned char len_bytes; /* size of a big-endian length/count field */
	unsigned char skip;	 /* fixed bytes after it (ext type byte, scalars) */
} mp_types[32] = {
    [0x00] = {MP_FIXED, 0, 0},	[0x01] = {MP_BAD, 0, 0},   /* nil, (never used) */
    [0x02] = {MP_FIXED, 0, 0},	[0x03] = {MP_FIXED, 0, 0}, /* false, true */
    [0x04] = {MP_BYTES, 1, 0},	[0x05] = {MP_BYTES, 2, 0}, /* bin 8, 16 */
    [0x06] = {MP_BYTES, 4, 0},	[0x07] = {MP_BYTES, 1, 1}, /* bin 32, ext 8 */
    [0x08] = {MP_BYTES, 2, 1},	[0x09] = {MP_BYTES, 4, 1}, /* ext 16, 32 */
    [0x0a] = {MP_FIXED, 0, 4},	[0x0b] = {MP_FIXED, 0, 8}, /* float 32, 64 */
    [0x0c] = {MP_FIXED, 0, 1},	[0x0d] = {MP_FIXED, 0, 2}, /* uint 8, 16 */
    [0x0e] = {MP_FIXED, 0, 4},	[0x0f] = {MP_FIXED, 0, 8}, /* uint 32, 64 */
    [0x10] = {MP_FIXED, 0, 1},	[0x11] = {MP_FIXED, 0, 2}, /* int 8, 16 */
    [0x12] = {MP_FIXED, 0, 4},	[0x13] = {MP_FIXED, 0, 8}, /* int 32, 64 */
    [0x14] = {MP_FIXED, 0, 2},	[0x15] = {MP_FIXED, 0, 3}, /* fixext 1, 2 */
    [0x16] = {MP_FIXED, 0, 5},	[0x17] = {MP_FIXED, 0, 9}, /* fixext 4, 8 */
    [0x18] = {MP_FIXED, 0, 17}, [0x19] = {MP_BYTES, 1, 0}, /* fixext 16, str 8 */
    [0x1a] = {MP_BYTES, 2, 0},	[0x1b] = {MP_BYTES, 4, 0}, /* str 16, 32 */
    [0x1c] = {MP_ARRAY, 2, 0},	[0x1d] = {MP_ARRAY, 4, 0}, /* array 16, 32 */
    [0x1e] = {MP_MAP, 2, 0},	[0x1f] = {MP_MAP, 4, 0},   /* map 16, 32 */
};

/*
 * Check the next MessagePack object in p[0..n) before msgpack-c parses it: a
 * container's element count must not exceed the bytes left (each element takes at
 * least one), and nesting stays under MP_MAX_DEPTH. msgpack-c allocates a container's
 * elements up front, so without this a 5-byte array header could ask for 64 GiB.
 * Returns the object's length, 0 when it runs past n, or -1 when it is invalid.
 */
static long mp_check(const unsigned char *p, size_t n)
{
	uint64_t left[MP_MAX_DEPTH]; /* elements still to read at each depth */
	int depth = 0;
	size_t pos = 0;
	left[0] = 1;
	while (depth >= 0) {
		if (left[depth] == 0) {
			depth--;
			continue;
		}
		left[depth]--;
		if (pos >= n)
			return 0;
		unsigned c = p[pos++];
		unsigned kind, len_bytes = 0;
		uint64_t v = 0; /* bytes to skip, or elements of a container */
		if (c <= 0x7f || c >= 0xe0) {
			continue; /* fixint */
		} else if (c <= 0x8f) {
			kind = MP_MAP, v = c & 0x0f;
		} else if (c <= 0x9f) {
			kind = MP_ARRAY, v = c & 0x0f;
		} else if (c <= 0xbf) {
			kind = MP_BYTES, v = c & 0x1f; /* fixstr */
		} else {
			kind = mp_types[c - 0xc0].kind;
			len_bytes = mp_types[c - 0xc0].len_bytes;
			v = mp_types[c - 0xc0].skip;
		}
		if (kind == MP_BAD)
			return -1;
		if (len_bytes) {
			if (n - pos < len_bytes)
				return 0;
			uint64_t len = 0;
			for (unsigned i = 0; i < len_bytes; i++)
				len = len << 8 | p[pos + i];
			pos += len_bytes;
			v = kind == MP_BYTES ? v + len : len;
		}
		if (kind == MP_MAP)
			v *= 2;
		if (kind == MP_ARRAY || kind == MP_MAP) {
			if (v > n - pos)
				return 0;
			if (v) {
				if (++depth == MP_MAX_DEPTH)
					return -1;
				left[depth] = v;
			}
		} else {
			if (v > n - pos)
				return 0;
			pos += v;
		}
	}
	return (long)pos;
}

/* Bytes buffered but not yet parsed (msgpack-c's C API has no accessor for it):
 * the next object starts at buffer + off. */
static size_t unparsed(const msgpack_unpacker *u)
{
	return u->used - u->off;
}

int tt_decoder_next(struct tt_decoder *d, struct tt_record *rec)
{
	for (;;) {
		if (d->have_object) {
			msgpack_unpacker_reset_zone(&d->up);
			d->have_object = false;
		}
		/* Bounds before msgpack-c allocates anything for the next object. */
		size_t avail = unparsed(&d->up);
		if (avail) {
			long len = mp_check((const unsigned char *)d->up.buffer + d->up.off, avail);
			if (len < 0)
				return fail(
				    d, record_offset(d),
				    "malformed MessagePack in record #%llu (byte %llu of "
				    "the frame's content)",
				    (unsigned long long)d->records + 1,
				    (unsigned long long)(msgpack_unpacker_parsed_size(&d->up) -
							 d->frame_parsed));
			if (len == 0)
				return fail(d, d->frame_off,
					    "frame ends inside record #%llu (%zu bytes left over)",
					    (unsigned long long)d->records + 1, avail);
		}
		int r = msgpack_unpacker_execute(&d->up);
		if (r < 0)
			return fail(d, record_offset(d),
				    "malformed MessagePack in record #%llu (byte %llu of the "
				    "frame's content)",
				    (unsigned long long)d->records + 1,
				    (unsigned long long)(msgpack_unpacker_parsed_size(&d->up) -
							 d->frame_parsed));
		if (r > 0) {
			d->obj = msgpack_unpacker_data(&d->up);
			d->have_object = true;
			msgpack_unpacker_reset(&d->up);
			int k = decode_object(d, &d->obj, rec);
			if (k < 0)
				return -1;
			if (k == 0)
				continue; /* unknown tag */
			d->records++;
			return 1;
		}
		/* The current frame is used up (mp_check saw every object whole). */
		int k = load_frame(d);
		if (k <= 0)
			return k;
		d->frame_parsed = msgpack_unpacker_parsed_size(&d->up);
	}
}
