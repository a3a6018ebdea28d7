/* SPDX-License-Identifier: MIT */
/* Test helpers: temporary directories and whole-directory decoding. */
#define _GNU_SOURCE
#include "support.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../src/analysis/decode.h"

const char *support_tmpdir(const char *tag)
{
	static char path[512];
	const char *base = getenv("TMPDIR");
	snprintf(path, sizeof(path), "%s/thagtrace-test-%s-XXXXXX", base ? base : "/tmp", tag);
	if (!mkdtemp(path))
		return NULL;
	return path;
}

int support_each_file(const char *dir, void (*fn)(const char *path, void *ctx), void *ctx)
{
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	struct dirent *e;
	char p[1024];
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		fn(p, ctx);
	}
	closedir(d);
	return 0;
}

static void unlink_one(const char *path, void *ctx)
{
	(void)ctx;
	unlink(path);
}

void support_rmdir(const char *dir)
{
	support_each_file(dir, unlink_one, NULL);
	rmdir(dir);
}

static void add_size(const char *path, void *ctx)
{
	struct stat st;
	if (stat(path, &st) == 0)
		*(long long *)ctx += st.st_size;
}

long long support_dir_bytes(const char *dir)
{
	long long total = 0;
	support_each_file(dir, add_size, &total);
	return total;
}

static struct support_thread *thread_slot(struct support_dir *d, int32_t pid, int32_t tid)
{
	for (size_t i = 0; i < d->nthreads; i++)
		if (d->threads[i].tid == tid && d->threads[i].pid == pid)
			return &d->threads[i];
	d->threads = realloc(d->threads, (d->nthreads + 1) * sizeof(*d->threads));
	struct support_thread *t = &d->threads[d->nthreads++];
	memset(t, 0, sizeof(*t));
	t->pid = pid;
	t->tid = tid;
	t->stack_ids_ok = true;
	t->ts_monotonic = true;
	return t;
}

struct site_seen {
	uint64_t site, count, bytes;
};

static void note_error(struct support_dir *out, const char *path, const char *msg)
{
	if (!out->errors++)
		snprintf(out->first_error, sizeof(out->first_error), "%s: %s", path, msg);
}

static void read_file(const char *path, struct support_dir *out)
{
	char err[512];
	struct tt_decoder *dec = tt_decoder_open(path, err, sizeof(err));
	if (!dec) {
		note_error(out, path, err);
		return;
	}
	/* The .bin/.freq name carries pid-tid; the THREAD record confirms it. */
	int32_t pid = 0, tid = 0;
	const char *base = strrchr(path, '/');
	sscanf(base ? base + 1 : path, "%d-%d", &pid, &tid);
	struct support_thread *t = NULL;
	if (tt_decoder_kind(dec) != TT_FILE_META)
		t = thread_slot(out, pid, tid);
	else
		out->nmeta++;

	struct site_seen *sites = NULL;
	size_t nsites = 0;
	uint32_t *defined = NULL;
	size_t ndefined = 0;
	uint64_t last_ts = 0;
	struct tt_record r;
	int rc;
	while ((rc = tt_decoder_next(dec, &r)) > 0) {
		switch (r.tag) {
		case TT_REC_NAME:
			snprintf(t->name, sizeof(t->name), "%s", r.name.name);
			break;
		case TT_REC_THREAD:
			snprintf(t->name, sizeof(t->name), "%s", r.thread.name);
			if (r.thread.tid != tid || r.thread.pid != pid)
				note_error(out, path, "thread record does not match file name");
			break;
		case TT_REC_STACK:
			t->stacks++;
			defined = realloc(defined, (ndefined + 1) * sizeof(*defined));
			defined[ndefined++] = r.stack.id;
			break;
		case TT_REC_ALLOC: {
			bool found = false;
			for (size_t i = ndefined; i-- > 0;)
				if (defined[i] == r.alloc.stack_id) {
					found = true;
					break;
				}
			if (!found)
				t->stack_ids_ok = false;
			if (r.alloc.ts < last_ts)
				t->ts_monotonic = false;
			last_ts = r.alloc.ts;
			t->allocs++;
			t->alloc_bytes += r.alloc.size;
			t->alloc_ptr_sum += r.alloc.ptr;
			t->weighted_bytes += (double)r.alloc.size / r.alloc.probability;
			break;
		}
		case TT_REC_FREE:
			if (r.free.ts < last_ts)
				t->ts_monotonic = false;
			last_ts = r.free.ts;
			t->frees++;
			t->free_ptr_sum += r.free.ptr;
			break;
		case TT_REC_DROPS:
			t->drops_dropped = r.drops.dropped;
			break;
		case TT_REC_END:
			t->has_end = true;
			t->end_emitted = r.end.emitted;
			t->end_recorded = r.end.recorded;
			t->end_dropped = r.end.dropped;
			break;
		case TT_REC_SITE: {
			size_t i;
			for (i = 0; i < nsites && sites[i].site != r.site.site; i++)
				;
			if (i == nsites) {
				sites = realloc(sites, (nsites + 1) * sizeof(*sites));
				nsites++;
			}
			sites[i] = (struct site_seen){r.site.site, r.site.count, r.site.bytes};
			break;
		}
		case TT_REC_PROCESS_END: {
			out->process_end_seen = true;
			const msgpack_object_map *m = &r.meta.body->via.map;
			for (uint32_t i = 0; i < m->size; i++) {
				const msgpack_object_str *k = &m->ptr[i].key.via.str;
				uint64_t v = m->ptr[i].val.via.u64;
				if (k->size == 7 && !memcmp(k->ptr, "threads", 7))
					out->pe_threads += v;
				else if (k->size == 7 && !memcmp(k->ptr, "emitted", 7))
					out->pe_emitted += v;
				else if (k->size == 8 && !memcmp(k->ptr, "recorded", 8))
					out->pe_recorded += v;
				else if (k->size == 7 && !memcmp(k->ptr, "dropped", 7))
					out->pe_dropped += v;
			}
			break;
		}
		default:
			break;
		}
	}
	if (rc < 0)
		note_error(out, path, tt_decoder_error(dec));
	if (t && tt_decoder_kind(dec) == TT_FILE_FREQ) {
		for (size_t i = 0; i < nsites; i++) {
			t->site_count += sites[i].count;
			t->site_bytes += sites[i].bytes;
		}
		t->nsites = nsites;
	}
	free(sites);
	free(defined);
	tt_decoder_destroy(dec);
}

static void read_file_cb(const char *path, void *ctx)
{
	read_file(path, ctx);
}

int support_read_dir(const char *dir, struct support_dir *out)
{
	memset(out, 0, sizeof(*out));
	if (support_each_file(dir, read_file_cb, out) != 0)
		note_error(out, dir, "cannot open directory");
	return out->errors ? -1 : 0;
}

void support_dir_free(struct support_dir *d)
{
	free(d->threads);
	d->threads = NULL;
}

struct support_thread *support_find_tid(struct support_dir *d, int32_t tid)
{
	for (size_t i = 0; i < d->nthreads; i++)
		if (d->threads[i].tid == tid)
			return &d->threads[i];
	return NULL;
}

long support_slurp(const char *path, unsigned char **data)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -1;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	*data = malloc((size_t)n + 1);
	if (fread(*data, 1, (size_t)n, f) != (size_t)n)
		n = -1;
	fclose(f);
	return n;
}

int support_spit(const char *path, const void *data, size_t n)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return -1;
	size_t w = fwrite(data, 1, n, f);
	return fclose(f) == 0 && w == n ? 0 : -1;
}
