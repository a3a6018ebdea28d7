/* SPDX-License-Identifier: MIT */
/* The merged/ directory: folded stacks per metric, pprof, summary.json. */
#define _GNU_SOURCE
#include "merged.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "folded.h"
#include "pprof.h"

static void hex(const uint8_t *b, unsigned n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (unsigned i = 0; i < n; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 15];
	}
	out[2 * n] = 0;
}

static int64_t rounded(double v)
{
	return v >= 0.5 ? (int64_t)llround(v) : 0;
}

/* The mapping fields of a location in module m; id: room for its hex build-id. */
static void set_mapping(struct tt_pprof_location *l, const struct tt_module *m, char id[81])
{
	l->module = m->path;
	l->module_start = m->start;
	l->module_end = m->end;
	l->module_offset = m->start - m->bias;
	hex(m->build_id, m->build_id_len < 40 ? m->build_id_len : 40, id);
	l->build_id = id;
}

/* One pprof location per return address, its inline frames as lines. The resolved
 * stack (tracer frames already left out) lists each address's frames innermost
 * first, the last of them the one not inlined: that ends a location. */
static int add_stack(struct tt_pprof *pp, struct tt_resolver *r, const struct tt_stack *s,
		     const int64_t values[TT_PPROF_VALUES])
{
	const struct tt_rframe *fr;
	unsigned n = tt_resolve_stack(r, s, &fr);
	if (!n)
		return -1;
	struct tt_pprof_location *locs = calloc(n, sizeof(*locs));
	struct tt_pprof_line *lines = calloc(n, sizeof(*lines));
	char(*ids)[81] = calloc(n, sizeof(*ids));
	int rc = -1;
	if (!locs || !lines || !ids)
		goto out;
	unsigned nlocs = 0;
	for (unsigned k = 0; k < n;) {
		struct tt_pprof_location *l = &locs[nlocs];
		l->address = fr[k].addr;
		l->lines = &lines[k];
		if (fr[k].mod)
			set_mapping(l, fr[k].mod, ids[nlocs]);
		unsigned first = k;
		do {
			if (fr[k].function || fr[k].file)
				lines[first + l->nlines++] =
				    (struct tt_pprof_line){fr[k].function, fr[k].file, fr[k].line};
		} while (fr[k++].inlined && k < n);
		nlocs++;
	}
	rc = tt_pprof_add_sample(pp, locs, nlocs, values);
out:
	free(locs);
	free(lines);
	free(ids);
	return rc;
}

int tt_merged_pprof(const char *path, const struct tt_profile *p, struct tt_resolver *r, char *err,
		    size_t errcap)
{
	struct tt_pprof *pp = tt_pprof_create();
	if (!pp) {
		snprintf(err, errcap, "%s: out of memory", path);
		return -1;
	}
	char text[512];
	const struct tt_trace *t = p->trace;
	for (unsigned i = 0; i < t->nprocs; i++) {
		const struct tt_process *pr = &t->procs[i];
		if (p->filter.pid && pr->pid != p->filter.pid)
			continue;
		snprintf(text, sizeof(text),
			 "pid %d: %s; sampling %s (values are estimates of "
			 "the true totals, calibrated on exact call-site counts)",
			 pr->pid, pr->cmdline[0] ? pr->cmdline : pr->exe, pr->mode);
		tt_pprof_add_comment(pp, text);
		int64_t start, dur;
		tt_process_span(pr, &start, &dur);
		if (i == 0 || p->filter.pid)
			tt_pprof_set_time(pp, start, dur);
	}
	/* The traced program's own executable first: pprof names the profile after it. */
	for (unsigned i = 0; i < t->nprocs; i++) {
		const struct tt_process *pr = &t->procs[i];
		if ((p->filter.pid && pr->pid != p->filter.pid) || !pr->nmaps || !pr->exe[0])
			continue;
		const struct tt_modmap *mm = &pr->maps[0];
		for (unsigned k = 0; k < mm->n; k++) {
			const struct tt_module *m = &mm->mods[k];
			if (strcmp(m->path, pr->exe))
				continue;
			char id[81];
			struct tt_pprof_location l = {0};
			set_mapping(&l, m, id);
			tt_pprof_add_mapping(pp, &l);
			break;
		}
		break;
	}
	snprintf(text, sizeof(text), "dropped events: %llu; samples: %llu; shed under load: %llu",
		 (unsigned long long)p->dropped, (unsigned long long)p->samples,
		 (unsigned long long)p->shed);
	tt_pprof_add_comment(pp, text);
	int rc = 0;
	for (unsigned i = 0; i < p->nstacks && !rc; i++) {
		const struct tt_stack *s = &p->stacks[i];
		int64_t v[TT_PPROF_VALUES] = {rounded(s->alloc_bytes), rounded(s->alloc_count),
					      rounded(s->live_bytes), rounded(s->live_count)};
		if (!v[0] && !v[1] && !v[2] && !v[3])
			continue;
		if (add_stack(pp, r, s, v)) {
			snprintf(err, errcap, "%s: out of memory", path);
			rc = -1;
		}
	}
	if (!rc)
		rc = tt_pprof_write(pp, path, err, errcap);
	tt_pprof_destroy(pp);
	return rc;
}

static int write_json(const char *path, const struct tt_profile *p, struct tt_resolver *r,
		      char *err, size_t errcap)
{
	char tmp[4200];
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
	FILE *f = fopen(tmp, "w");
	if (!f) {
		snprintf(err, errcap, "%s: %s", tmp, strerror(errno));
		return -1;
	}
	struct tt_report_opts o = {.top = 0, .by = TT_BY_BYTES};
	int rc = tt_report_json(f, p, r, &o);
	if (fclose(f) != 0 || rc) {
		snprintf(err, errcap, "%s: %s", tmp, strerror(errno ? errno : EIO));
		unlink(tmp);
		return -1;
	}
	if (rename(tmp, path) != 0) {
		snprintf(err, errcap, "%s: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

int tt_merged_write(const char *outdir, const struct tt_profile *p, struct tt_resolver *r,
		    char *err, size_t errcap)
{
	if (mkdir(outdir, 0777) != 0 && errno != EEXIST) {
		snprintf(err, errcap, "%s: %s", outdir, strerror(errno));
		return -1;
	}
	static const struct {
		const char *name;
		enum tt_sort_by by;
	} folded[] = {
	    {"alloc_bytes.folded", TT_BY_BYTES},
	    {"alloc_count.folded", TT_BY_COUNT},
	    {"live_bytes.folded", TT_BY_LIVE},
	    {"peak_bytes.folded", TT_BY_PEAK},
	};
	char path[4096 - 32];
	for (size_t i = 0; i < sizeof(folded) / sizeof(*folded); i++) {
		snprintf(path, sizeof(path), "%s/%s", outdir, folded[i].name);
		if (tt_folded_write(path, p, r, folded[i].by, err, errcap))
			return -1;
	}
	snprintf(path, sizeof(path), "%s/profile.pb.gz", outdir);
	if (tt_merged_pprof(path, p, r, err, errcap))
		return -1;
	snprintf(path, sizeof(path), "%s/summary.json", outdir);
	return write_json(path, p, r, err, errcap);
}
