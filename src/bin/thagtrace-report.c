/* SPDX-License-Identifier: MIT */
/* thagtrace-report: the hotspot report of a trace directory, as text or JSON. */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/parse.h"
#include "../analysis/report.h"

#ifndef THAGTRACE_VERSION
#define THAGTRACE_VERSION "unknown"
#endif

static void usage(FILE *f)
{
	fprintf(f, "usage: thagtrace-report [OPTIONS] DIR\n"
		   "Report on a trace directory: hottest stacks (estimates with 95%% intervals),\n"
		   "exact call sites, the thousand cuts, leaks, the peak, threads, sizes, drops.\n"
		   "\n"
		   "      --top N          N stacks per list (text default 10; JSON default all)\n"
		   "      --by WHAT        bytes (default), count, live (leaks) or peak\n"
		   "      --thread TID     only allocations made by this thread\n"
		   "      --pid PID        only this process\n"
		   "      --json           one JSON object (schema thagtrace-report/1) on stdout\n"
		   "      --diff BASE      what grew or shrank from trace directory BASE to DIR\n"
		   "      --no-symbols     frames as module+offset (fast)\n"
		   "  -h, --help           this text\n"
		   "      --version        the version\n");
}

struct loaded {
	struct tt_trace *t;
	struct tt_profile *p;
	struct tt_resolver *r;
};

static void unload(struct loaded *l)
{
	tt_resolver_destroy(l->r);
	tt_profile_destroy(l->p);
	tt_trace_destroy(l->t);
}

static int load(const char *dir, const struct tt_filter *f, bool symbols, struct loaded *l)
{
	char err[1024];
	*l = (struct loaded){0};
	if (!(l->t = tt_trace_open(dir, err, sizeof(err)))) {
		fprintf(stderr, "thagtrace-report: %s\n", err);
		return -1;
	}
	if (f->pid && tt_trace_find_proc(l->t, f->pid) < 0) {
		fprintf(stderr, "thagtrace-report: %s: no process %d in this trace\n", dir, f->pid);
		unload(l);
		return -1;
	}
	if (f->tid) {
		bool found = false;
		for (unsigned i = 0; i < l->t->nthreads; i++)
			found |= l->t->threads[i].tid == f->tid;
		if (!found) {
			fprintf(stderr, "thagtrace-report: %s: no thread %d in this trace\n", dir,
				f->tid);
			unload(l);
			return -1;
		}
	}
	if (!(l->p = tt_profile_build(l->t, f, NULL, NULL, err, sizeof(err)))) {
		fprintf(stderr, "thagtrace-report: %s\n", err);
		unload(l);
		return -1;
	}
	if (!(l->r = tt_resolver_create(l->t, symbols))) {
		fprintf(stderr, "thagtrace-report: out of memory\n");
		unload(l);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	opterr = 0; /* getopt's own message names the full path: say it our way */
	static const struct option opts[] = {
	    {"top", required_argument, NULL, 'n'},    {"by", required_argument, NULL, 'b'},
	    {"thread", required_argument, NULL, 't'}, {"pid", required_argument, NULL, 'p'},
	    {"json", no_argument, NULL, 'j'},	      {"diff", required_argument, NULL, 'd'},
	    {"no-symbols", no_argument, NULL, 'S'},   {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},      {NULL, 0, NULL, 0},
	};
	struct tt_report_opts o = {.top = 0, .by = TT_BY_BYTES};
	struct tt_filter filter = {0};
	const char *diff = NULL;
	bool json = false, symbols = true;
	int c;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		int32_t v;
		switch (c) {
		case 'n':
			if (!tt_parse_id(optarg, &v)) {
				fprintf(stderr,
					"thagtrace-report: --top: '%s' is not a positive number\n",
					optarg);
				usage(stderr);
				return 2;
			}
			o.top = (unsigned)v;
			break;
		case 'b':
			if (!tt_sort_by_parse(optarg, &o.by)) {
				fprintf(stderr,
					"thagtrace-report: --by: '%s': expected bytes, count, live "
					"or peak\n",
					optarg);
				usage(stderr);
				return 2;
			}
			break;
		case 't':
		case 'p':
			if (!tt_parse_id(optarg, c == 't' ? &filter.tid : &filter.pid)) {
				fprintf(stderr, "thagtrace-report: --%s: '%s' is not an id\n",
					c == 't' ? "thread" : "pid", optarg);
				usage(stderr);
				return 2;
			}
			break;
		case 'j':
			json = true;
			break;
		case 'd':
			diff = optarg;
			break;
		case 'S':
			symbols = false;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("thagtrace-report %s\n", THAGTRACE_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind + 1 != argc) {
		fprintf(stderr, "thagtrace-report: %s\n",
			optind >= argc ? "no trace directory given" : "one trace directory only");
		usage(stderr);
		return 2;
	}
	struct loaded cur, base;
	if (load(argv[optind], &filter, symbols, &cur))
		return 1;
	int rc;
	if (diff) {
		struct tt_filter none = {0};
		if (load(diff, &none, symbols, &base)) {
			unload(&cur);
			return 1;
		}
		rc = json ? tt_diff_json(stdout, base.p, base.r, cur.p, cur.r, &o)
			  : tt_diff_text(stdout, base.p, base.r, cur.p, cur.r, &o);
		unload(&base);
	} else {
		rc = json ? tt_report_json(stdout, cur.p, cur.r, &o)
			  : tt_report_text(stdout, cur.p, cur.r, &o);
	}
	unload(&cur);
	if (fflush(stdout) != 0 || rc) {
		perror("thagtrace-report: stdout");
		return 1;
	}
	return 0;
}
