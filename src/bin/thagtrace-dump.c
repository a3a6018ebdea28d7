/* SPDX-License-Identifier: MIT */
/* thagtrace-dump: print the records of thagtrace files as text, one per line. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "../analysis/decode.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: thagtrace-dump [--counts] FILE...\n"
		   "Print every record of thagtrace .bin, .freq and .meta files, one per line.\n"
		   "  --counts  print only the number of records of each kind per file\n"
		   "Exit status: 0 when every file decoded (a truncated file is a warning),\n"
		   "1 when a file is unreadable or corrupt, 2 for bad arguments.\n");
}

static void print_object(const msgpack_object *o)
{
	msgpack_object_print(stdout, *o);
}

static void print_record(const struct tt_record *r)
{
	printf("%s", tt_record_tag_name(r->tag));
	switch (r->tag) {
	case TT_REC_THREAD:
		printf(" pid=%d tid=%d name=\"%s\" start=%" PRIu64, r->thread.pid, r->thread.tid,
		       r->thread.name, r->thread.start);
		break;
	case TT_REC_NAME:
		printf(" name=\"%s\"", r->name.name);
		break;
	case TT_REC_STACK:
		printf(" id=%u flags=%u frames=", r->stack.id, r->stack.flags);
		for (unsigned i = 0; i < r->stack.nframes; i++)
			printf("%s0x%" PRIx64, i ? "," : "", r->stack.frames[i]);
		break;
	case TT_REC_ALLOC:
		printf(" ts=%" PRIu64 " ptr=0x%" PRIx64 " size=%" PRIu64 " stack=%u p=%.17g",
		       r->alloc.ts, r->alloc.ptr, r->alloc.size, r->alloc.stack_id,
		       r->alloc.probability);
		break;
	case TT_REC_FREE:
		printf(" ts=%" PRIu64 " ptr=0x%" PRIx64, r->free.ts, r->free.ptr);
		break;
	case TT_REC_DROPS:
		printf(" emitted=%" PRIu64 " dropped=%" PRIu64 " dropped_bytes=%" PRIu64,
		       r->drops.emitted, r->drops.dropped, r->drops.dropped_bytes);
		if (r->drops.shed) /* older files have none (read as 0) */
			printf(" shed=%" PRIu64, r->drops.shed);
		break;
	case TT_REC_END:
		printf(" emitted=%" PRIu64 " recorded=%" PRIu64 " dropped=%" PRIu64 " end=%" PRIu64,
		       r->end.emitted, r->end.recorded, r->end.dropped, r->end.end);
		break;
	case TT_REC_SITE:
		printf(" site=0x%" PRIx64 " count=%" PRIu64 " bytes=%" PRIu64, r->site.site,
		       r->site.count, r->site.bytes);
		break;
	case TT_REC_SNAPSHOT:
		printf(" ts=%" PRIu64 " sites=%" PRIu64, r->snapshot.ts, r->snapshot.nsites);
		break;
	case TT_REC_CLOCK:
		printf(" ticks=%" PRIu64 " monotonic_ns=%" PRIu64 " realtime_ns=%" PRIu64,
		       r->clock.ticks, r->clock.mono_ns, r->clock.real_ns);
		break;
	default:
		putchar(' ');
		print_object(r->meta.body);
		break;
	}
	putchar('\n');
}

static int dump(const char *path, int counts_only)
{
	char err[512];
	struct tt_decoder *d = tt_decoder_open(path, err, sizeof(err));
	if (!d) {
		fprintf(stderr, "thagtrace-dump: %s: %s\n", path, err);
		return 1;
	}
	uint64_t counts[TT_REC_TAG_MAX + 1] = {0};
	struct tt_record r;
	int rc;
	while ((rc = tt_decoder_next(d, &r)) > 0) {
		counts[r.tag]++;
		if (!counts_only)
			print_record(&r);
	}
	int status = 0;
	if (rc < 0) {
		fflush(stdout);
		fprintf(stderr, "thagtrace-dump: %s: %s\n", path, tt_decoder_error(d));
		status = 1;
	} else {
		uint64_t off;
		if (tt_decoder_truncated(d, &off))
			fprintf(stderr,
				"thagtrace-dump: %s: offset %" PRIu64
				": warning: file ends inside a frame (cut short); records "
				"before it were decoded\n",
				path, off);
	}
	if (counts_only) {
		printf("%s:", path);
		for (unsigned t = 1; t <= TT_REC_TAG_MAX; t++)
			if (counts[t])
				printf(" %s=%" PRIu64, tt_record_tag_name(t), counts[t]);
		printf(" frames=%" PRIu64 "\n", tt_decoder_frames(d));
	}
	tt_decoder_destroy(d);
	return status;
}

int main(int argc, char **argv)
{
	int counts_only = 0, first = 1;
	for (; first < argc && argv[first][0] == '-'; first++) {
		if (!strcmp(argv[first], "--help") || !strcmp(argv[first], "-h")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(argv[first], "--counts")) {
			counts_only = 1;
		} else if (!strcmp(argv[first], "--")) {
			first++;
			break;
		} else {
			fprintf(stderr, "thagtrace-dump: unknown option %s\n", argv[first]);
			usage(stderr);
			return 2;
		}
	}
	if (first >= argc) {
		usage(stderr);
		return 2;
	}
	int status = 0;
	for (int i = first; i < argc; i++)
		status |= dump(argv[i], counts_only);
	return status;
}
