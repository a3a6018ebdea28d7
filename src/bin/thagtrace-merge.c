/* SPDX-License-Identifier: MIT */
/* thagtrace-merge: a trace directory in, DIR/merged/ out (folded stacks, pprof,
 * summary.json). */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/parse.h"
#include "../analysis/merged.h"

#ifndef THAGTRACE_VERSION
#define THAGTRACE_VERSION "unknown"
#endif

static void usage(FILE *f)
{
	fprintf(f, "usage: thagtrace-merge [OPTIONS] DIR\n"
		   "Merge a trace directory's per-thread files into DIR/merged/:\n"
		   "  alloc_bytes.folded alloc_count.folded live_bytes.folded peak_bytes.folded\n"
		   "  (flamegraph.pl, inferno, speedscope), profile.pb.gz (go tool pprof),\n"
		   "  summary.json (thagtrace-report --json's schema, every stack).\n"
		   "\n"
		   "  -o, --output DIR   write there instead of DIR/merged\n"
		   "      --pid PID      only this process (several share DIR after fork/exec)\n"
		   "      --no-symbols   no symbolization: frames are module+offset (fast)\n"
		   "  -q, --quiet        no progress and no summary\n"
		   "  -h, --help         this text\n"
		   "      --version      the version\n");
}

struct progress {
	bool on;
};

static void show_progress(uint64_t events, unsigned done, unsigned files, void *ctx)
{
	struct progress *p = ctx;
	if (p->on)
		fprintf(stderr, "\rthagtrace-merge: %.1fM events, %u/%u thread files", events / 1e6,
			done, files);
}

int main(int argc, char **argv)
{
	opterr = 0; /* getopt's own message names the full path: say it our way */
	static const struct option opts[] = {
	    {"output", required_argument, NULL, 'o'},
	    {"pid", required_argument, NULL, 'p'},
	    {"no-symbols", no_argument, NULL, 'S'},
	    {"quiet", no_argument, NULL, 'q'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	const char *outdir = NULL;
	struct tt_filter filter = {0};
	bool symbols = true, quiet = false;
	int c;
	while ((c = getopt_long(argc, argv, "o:qh", opts, NULL)) != -1) {
		switch (c) {
		case 'o':
			outdir = optarg;
			break;
		case 'p':
			if (!tt_parse_id(optarg, &filter.pid)) {
				fprintf(stderr,
					"thagtrace-merge: --pid: '%s' is not a process id\n",
					optarg);
				usage(stderr);
				return 2;
			}
			break;
		case 'S':
			symbols = false;
			break;
		case 'q':
			quiet = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("thagtrace-merge %s\n", THAGTRACE_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind + 1 != argc) {
		fprintf(stderr, "thagtrace-merge: %s\n",
			optind >= argc ? "no trace directory given" : "one trace directory only");
		usage(stderr);
		return 2;
	}
	const char *dir = argv[optind];
	char err[1024];
	struct tt_trace *t = tt_trace_open(dir, err, sizeof(err));
	if (!t) {
		fprintf(stderr, "thagtrace-merge: %s\n", err);
		return 1;
	}
	if (filter.pid && tt_trace_find_proc(t, filter.pid) < 0) {
		fprintf(stderr, "thagtrace-merge: %s: no process %d in this trace\n", dir,
			filter.pid);
		tt_trace_destroy(t);
		return 1;
	}
	struct progress pr = {.on = !quiet && isatty(STDERR_FILENO)};
	struct tt_profile *p = tt_profile_build(t, &filter, show_progress, &pr, err, sizeof(err));
	if (pr.on)
		fputc('\n', stderr);
	if (!p) {
		fprintf(stderr, "thagtrace-merge: %s\n", err);
		tt_trace_destroy(t);
		return 1;
	}
	char def[4096];
	if (!outdir) {
		snprintf(def, sizeof(def), "%s/merged", dir);
		outdir = def;
	}
	struct tt_resolver *r = tt_resolver_create(t, symbols);
	int rc = 0;
	if (!r) {
		fprintf(stderr, "thagtrace-merge: out of memory\n");
		rc = 1;
	} else if (tt_merged_write(outdir, p, r, err, sizeof(err))) {
		fprintf(stderr, "thagtrace-merge: %s\n", err);
		rc = 1;
	} else if (!quiet) {
		printf("thagtrace-merge: %s: %u process%s, %u thread%s, %llu events, %u stacks\n",
		       dir, p->nprocesses, p->nprocesses == 1 ? "" : "es", p->nthreads,
		       p->nthreads == 1 ? "" : "s", (unsigned long long)p->events, p->nstacks);
		printf("  allocated %.0f bytes in %.0f calls; live at end %.0f bytes; peak %.0f "
		       "bytes\n",
		       p->alloc_bytes, p->alloc_count, p->live_bytes, p->peak_bytes);
		if (p->dropped)
			printf("  !! %llu events were dropped (full rings): see thagtrace-report\n",
			       (unsigned long long)p->dropped);
		for (unsigned i = 0; i < t->nnotes; i++)
			printf("  note: %s\n", t->notes[i]);
		printf("  wrote %s/{alloc_bytes,alloc_count,live_bytes,peak_bytes}.folded, "
		       "profile.pb.gz, summary.json\n",
		       outdir);
	}
	tt_resolver_destroy(r);
	tt_profile_destroy(p);
	tt_trace_destroy(t);
	return rc;
}
