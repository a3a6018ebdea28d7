/* SPDX-License-Identifier: MIT */
/* Loading a trace directory: file names, .meta facts and module maps, .freq tables. */
#define _GNU_SOURCE
#include "trace.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "decode.h"
#include "u64map.h"

/* Parsed file name: <pid>[-<tid>][.<n>].<ext> */
struct fname {
	int32_t pid, tid;
	bool has_tid;
	char stem[64]; /* the name without its extension */
	enum tt_file_kind kind;
};

static bool parse_name(const char *name, struct fname *f)
{
	const char *dot = strrchr(name, '.');
	if (!dot)
		return false;
	if (!strcmp(dot, ".bin"))
		f->kind = TT_FILE_EVENTS;
	else if (!strcmp(dot, ".freq"))
		f->kind = TT_FILE_FREQ;
	else if (!strcmp(dot, ".meta"))
		f->kind = TT_FILE_META;
	else
		return false;
	size_t stem_len = (size_t)(dot - name);
	if (stem_len == 0 || stem_len >= sizeof(f->stem))
		return false;
	memcpy(f->stem, name, stem_len);
	f->stem[stem_len] = 0;
	char *end;
	long pid = strtol(name, &end, 10);
	if (end == name || pid <= 0 || pid > INT32_MAX)
		return false;
	f->pid = (int32_t)pid;
	f->has_tid = *end == '-';
	f->tid = 0;
	if (f->has_tid) {
		const char *t = end + 1;
		long tid = strtol(t, &end, 10);
		if (end == t || tid < 0 || tid > INT32_MAX)
			return false;
		f->tid = (int32_t)tid;
	}
	/* What is left: "" or ".<n>" before the extension. */
	if (end != dot) {
		if (*end != '.')
			return false;
		const char *n = end + 1;
		strtol(n, &end, 10);
		if (end == n || end != dot)
			return false;
	}
	return (f->kind == TT_FILE_META) != f->has_tid;
}

void tt_trace_note(struct tt_trace *t, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	char **n = realloc(t->notes, (t->nnotes + 1) * sizeof(*n));
	if (!n)
		return;
	t->notes = n;
	if ((n[t->nnotes] = strdup(buf)))
		t->nnotes++;
}

int tt_trace_find_proc(const struct tt_trace *t, int32_t pid)
{
	for (unsigned i = 0; i < t->nprocs; i++)
		if (t->procs[i].pid == pid)
			return (int)i;
	return -1;
}

static int proc_for(struct tt_trace *t, int32_t pid)
{
	int i = tt_trace_find_proc(t, pid);
	if (i >= 0)
		return i;
	struct tt_process *p = realloc(t->procs, (t->nprocs + 1) * sizeof(*p));
	if (!p)
		return -1;
	t->procs = p;
	p[t->nprocs] = (struct tt_process){
	    .pid = pid, .exe = "", .cmdline = "", .clock = "tsc", .mode = "unknown"};
	return (int)t->nprocs++;
}

static void *fmt_err(char *err, size_t cap, const char *path, const char *msg)
{
	snprintf(err, cap, "%s: %s", path, msg);
	return NULL;
}

/* ---- .meta ---- */

static const msgpack_object *map_get(const msgpack_object *m, const char *key)
{
	if (m->type != MSGPACK_OBJECT_MAP)
		return NULL;
	size_t kl = strlen(key);
	for (uint32_t i = 0; i < m->via.map.size; i++) {
		const msgpack_object *k = &m->via.map.ptr[i].key;
		if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == kl &&
		    !memcmp(k->via.str.ptr, key, kl))
			return &m->via.map.ptr[i].val;
	}
	return NULL;
}

static uint64_t map_u64(const msgpack_object *m, const char *key)
{
	const msgpack_object *v = map_get(m, key);
	return v && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? v->via.u64 : 0;
}

static const char *dup_str(const msgpack_object *o, const char *fallback)
{
	if (!o || (o->type != MSGPACK_OBJECT_STR && o->type != MSGPACK_OBJECT_BIN))
		return fallback;
	return strndup(o->via.str.ptr, o->via.str.size);
}

static const char *join_cmdline(const msgpack_object *o)
{
	if (!o || o->type != MSGPACK_OBJECT_ARRAY)
		return "";
	size_t len = 1;
	for (uint32_t i = 0; i < o->via.array.size; i++)
		if (o->via.array.ptr[i].type == MSGPACK_OBJECT_STR)
			len += o->via.array.ptr[i].via.str.size + 1;
	char *s = malloc(len), *w = s;
	if (!s)
		return "";
	for (uint32_t i = 0; i < o->via.array.size; i++) {
		const msgpack_object *a = &o->via.array.ptr[i];
		if (a->type != MSGPACK_OBJECT_STR)
			continue;
		if (w != s)
			*w++ = ' ';
		memcpy(w, a->via.str.ptr, a->via.str.size);
		w += a->via.str.size;
	}
	*w = 0;
	return s;
}

static bool owned(const char *s)
{
	/* The literals proc_for starts with are not ours to free. */
	static const char *const lits[] = {"", "tsc", "unknown"};
	for (size_t i = 0; i < sizeof(lits) / sizeof(*lits); i++)
		if (s == lits[i])
			return false;
	return s != NULL;
}

static void set_str(const char **dst, const char *s)
{
	if (owned(*dst))
		free((void *)*dst);
	*dst = s;
}

static void read_process(struct tt_process *p, const msgpack_object *m)
{
	if (p->has_meta) {
		/* A later image of the same pid (the process exec'd; its .meta files are
		 * read in order): the first image's command line stays, the new exe is
		 * kept beside it. */
		set_str(&p->exec_exe, dup_str(map_get(m, "exe"), ""));
		return;
	}
	p->has_meta = true;
	p->ppid = (int32_t)map_u64(m, "ppid");
	set_str(&p->exe, dup_str(map_get(m, "exe"), ""));
	set_str(&p->cmdline, join_cmdline(map_get(m, "cmdline")));
	set_str(&p->clock, dup_str(map_get(m, "clock"), "tsc"));
	const msgpack_object *s = map_get(m, "sampling");
	if (s) {
		set_str(&p->mode, dup_str(map_get(s, "mode"), "unknown"));
		p->min_size = map_u64(s, "min_size");
		p->poisson_mean = map_u64(s, "poisson_mean");
		p->max_frames = map_u64(s, "max_frames");
	}
}

static void read_process_end(struct tt_process *p, const msgpack_object *m)
{
	p->has_end = true;
	p->end_threads = map_u64(m, "threads");
	p->end_emitted = map_u64(m, "emitted");
	p->end_recorded = map_u64(m, "recorded");
	p->end_dropped = map_u64(m, "dropped");
	p->end_shed = map_u64(m, "shed");
	p->untraced_allocs = map_u64(m, "untraced_allocs");
	p->untraced_bytes = map_u64(m, "untraced_bytes");
	p->untraced_frees = map_u64(m, "untraced_frees");
	p->freeset_full = map_u64(m, "freeset_full");
}

static int cmp_module(const void *a, const void *b)
{
	const struct tt_module *x = a, *y = b;
	return x->start < y->start ? -1 : x->start > y->start;
}

/* [10, ts, [[path, bias, start, end, build_id], ...]]; entries of the wrong shape
 * are skipped (the decoder checked the record's own shape). */
static int read_modules(struct tt_process *p, const msgpack_object *rec)
{
	const msgpack_object *f = rec->via.array.ptr;
	if (rec->via.array.size < 3 || f[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
	    f[2].type != MSGPACK_OBJECT_ARRAY)
		return 0;
	struct tt_modmap *maps = realloc(p->maps, (p->nmaps + 1) * sizeof(*maps));
	if (!maps)
		return -1;
	p->maps = maps;
	struct tt_modmap *mm = &maps[p->nmaps];
	mm->ts = f[1].via.u64;
	mm->n = 0;
	mm->mods = calloc(f[2].via.array.size ? f[2].via.array.size : 1, sizeof(*mm->mods));
	if (!mm->mods)
		return -1;
	p->nmaps++;
	for (uint32_t i = 0; i < f[2].via.array.size; i++) {
		const msgpack_object *e = &f[2].via.array.ptr[i];
		if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size < 5)
			continue;
		const msgpack_object *g = e->via.array.ptr;
		if (g[0].type != MSGPACK_OBJECT_STR ||
		    g[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
		    g[2].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
		    g[3].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
			continue;
		struct tt_module *m = &mm->mods[mm->n];
		m->path = dup_str(&g[0], "");
		m->bias = g[1].via.u64;
		m->start = g[2].via.u64;
		m->end = g[3].via.u64;
		m->build_id_len = 0;
		if ((g[4].type == MSGPACK_OBJECT_BIN || g[4].type == MSGPACK_OBJECT_STR) &&
		    g[4].via.bin.size <= sizeof(m->build_id)) {
			memcpy(m->build_id, g[4].via.bin.ptr, g[4].via.bin.size);
			m->build_id_len = g[4].via.bin.size;
		}
		mm->n++;
	}
	qsort(mm->mods, mm->n, sizeof(*mm->mods), cmp_module);
	return 0;
}

static int add_anchor(struct tt_process *p, const struct tt_record *r)
{
	struct tt_anchor *a = realloc(p->anchors, (p->nanchors + 1) * sizeof(*a));
	if (!a)
		return -1;
	p->anchors = a;
	a[p->nanchors++] = (struct tt_anchor){r->clock.ticks, r->clock.mono_ns, r->clock.real_ns};
	return 0;
}

/* Decode a whole file, calling fn on each record; decode errors fill err. */
static int each_record(struct tt_trace *t, const char *path,
		       int (*fn)(const struct tt_record *r, void *ctx), void *ctx, bool *truncated,
		       char *err, size_t errcap)
{
	struct tt_decoder *d = tt_decoder_open(path, err, errcap);
	if (!d) {
		char msg[600];
		snprintf(msg, sizeof(msg), "%s", err);
		fmt_err(err, errcap, path, msg);
		return -1;
	}
	struct tt_record r;
	int rc;
	while ((rc = tt_decoder_next(d, &r)) > 0)
		if (fn(&r, ctx)) {
			fmt_err(err, errcap, path, "out of memory");
			tt_decoder_destroy(d);
			return -1;
		}
	if (rc < 0) {
		fmt_err(err, errcap, path, tt_decoder_error(d));
		tt_decoder_destroy(d);
		return -1;
	}
	uint64_t off;
	*truncated = tt_decoder_truncated(d, &off);
	if (*truncated)
		tt_trace_note(t,
			      "%s: truncated at offset %llu (the process crashed or the disk "
			      "filled?): records before it are used",
			      path, (unsigned long long)off);
	tt_decoder_destroy(d);
	return 0;
}

static int meta_record(const struct tt_record *r, void *ctx)
{
	struct tt_process *p = ctx;
	switch (r->tag) {
	case TT_REC_PROCESS:
		read_process(p, r->meta.body);
		break;
	case TT_REC_PROCESS_END:
		read_process_end(p, r->meta.body);
		p->last_image_ended = true;
		if (p->nanchors) /* written just before it, as the session stopped */
			p->end_ticks = p->anchors[p->nanchors - 1].ticks;
		break;
	case TT_REC_MODULES:
		return read_modules(p, r->meta.body);
	case TT_REC_CLOCK:
		return add_anchor(p, r);
	}
	return 0;
}

/* ---- .freq ---- */

struct freq_ctx {
	struct tt_thread *th;
	struct u64map index; /* site + 1 -> slot in th->sites */
	size_t cap;
};

static int freq_record(const struct tt_record *r, void *ctx)
{
	struct freq_ctx *c = ctx;
	if (r->tag != TT_REC_SITE)
		return 0;
	uint32_t slot;
	if (!u64map_get(&c->index, r->site.site + 1, &slot)) {
		if (c->th->nsites == c->cap) {
			size_t ncap = c->cap ? c->cap * 2 : 64;
			struct tt_site *s = realloc(c->th->sites, ncap * sizeof(*s));
			if (!s)
				return -1;
			c->th->sites = s;
			c->cap = ncap;
		}
		slot = c->th->nsites++;
		if (u64map_put(&c->index, r->site.site + 1, slot))
			return -1;
		c->th->sites[slot].site = r->site.site;
	}
	/* Cumulative: the last record holds the totals. */
	c->th->sites[slot].count = r->site.count;
	c->th->sites[slot].bytes = r->site.bytes;
	return 0;
}

/* The .bin's THREAD record: name, start. Only the first frame is decoded. */
static int read_thread_header(struct tt_thread *th, char *err, size_t errcap)
{
	struct tt_decoder *d = tt_decoder_open(th->bin, err, errcap);
	if (!d) {
		char msg[600];
		snprintf(msg, sizeof(msg), "%s", err);
		fmt_err(err, errcap, th->bin, msg);
		return -1;
	}
	struct tt_record r;
	int rc = tt_decoder_next(d, &r);
	if (rc < 0) {
		fmt_err(err, errcap, th->bin, tt_decoder_error(d));
		tt_decoder_destroy(d);
		return -1;
	}
	if (rc > 0 && r.tag != TT_REC_THREAD) {
		snprintf(err, errcap, "%s: offset %llu: the first record is %s, not thread",
			 th->bin, (unsigned long long)r.frame_offset, tt_record_tag_name(r.tag));
		tt_decoder_destroy(d);
		return -1;
	}
	if (rc > 0) {
		snprintf(th->name, sizeof(th->name), "%s", r.thread.name);
		th->start = r.thread.start;
		if (r.thread.pid != th->pid || r.thread.tid != th->tid) {
			/* The name is the writer's; the record is the truth. */
			th->pid = r.thread.pid;
			th->tid = r.thread.tid;
		}
	}
	tt_decoder_destroy(d);
	return 0;
}

/* ---- the directory ---- */

static struct tt_thread *thread_for(struct tt_trace *t, const struct fname *f, char ***stems)
{
	for (unsigned i = 0; i < t->nthreads; i++)
		if (!strcmp((*stems)[i], f->stem))
			return &t->threads[i];
	struct tt_thread *th = realloc(t->threads, (t->nthreads + 1) * sizeof(*th));
	char **s = realloc(*stems, (t->nthreads + 1) * sizeof(*s));
	if (th)
		t->threads = th;
	if (s)
		*stems = s;
	if (!th || !s || !(s[t->nthreads] = strdup(f->stem)))
		return NULL;
	th = &t->threads[t->nthreads++];
	*th = (struct tt_thread){.pid = f->pid, .tid = f->tid};
	return th;
}

static int cmp_thread(const void *a, const void *b)
{
	const struct tt_thread *x = a, *y = b;
	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return x->tid < y->tid ? -1 : x->tid > y->tid;
}

/* "DIR/PID.meta" before "DIR/PID.N.meta", by N. */
static int cmp_meta(const void *a, const void *b)
{
	const char *x = strrchr(*(char *const *)a, '/') + 1,
		   *y = strrchr(*(char *const *)b, '/') + 1;
	char *ex, *ey;
	long px = strtol(x, &ex, 10), py = strtol(y, &ey, 10);
	if (px != py)
		return px < py ? -1 : 1;
	long nx = *ex == '.' && ex[1] != 'm' ? strtol(ex + 1, NULL, 10) : 0;
	long ny = *ey == '.' && ey[1] != 'm' ? strtol(ey + 1, NULL, 10) : 0;
	return (nx > ny) - (nx < ny);
}

static int cmp_anchor(const void *a, const void *b)
{
	const struct tt_anchor *x = a, *y = b;
	return (x->mono_ns > y->mono_ns) - (x->mono_ns < y->mono_ns);
}

static int cmp_map(const void *a, const void *b)
{
	const struct tt_modmap *x = a, *y = b;
	return (x->ts > y->ts) - (x->ts < y->ts);
}

struct tt_trace *tt_trace_open(const char *dir, char *err, size_t errcap)
{
	DIR *dh = opendir(dir);
	if (!dh)
		return fmt_err(err, errcap, dir, strerror(errno));
	struct tt_trace *t = calloc(1, sizeof(*t));
	char **stems = NULL;
	char **metas = NULL;
	unsigned nmetas = 0;
	if (!t || !(t->dir = strdup(dir)))
		goto oom;
	struct dirent *e;
	char path[4096];
	while ((e = readdir(dh))) {
		struct fname f;
		if (!parse_name(e->d_name, &f))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		struct stat st;
		if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
			tt_trace_note(t, "%s: not a regular file, skipped", path);
			continue;
		}
		if (st.st_size == 0) {
			/* Created, and the process exec'd or died before the header went
			 * out (a fork child that execs at once): nothing in it. */
			tt_trace_note(t, "%s: empty (its process ended before writing it), skipped",
				      path);
			continue;
		}
		if (f.kind == TT_FILE_META) {
			char **m = realloc(metas, (nmetas + 1) * sizeof(*m));
			if (!m)
				goto oom;
			metas = m;
			if (!(metas[nmetas] = strdup(path)))
				goto oom;
			nmetas++;
			continue;
		}
		struct tt_thread *th = thread_for(t, &f, &stems);
		if (!th)
			goto oom;
		const char **slot = f.kind == TT_FILE_EVENTS ? &th->bin : &th->freq;
		if (!(*slot = strdup(path)))
			goto oom;
	}
	closedir(dh);
	dh = NULL;
	if (nmetas == 0 && t->nthreads == 0) {
		snprintf(err, errcap, "%s: no thagtrace files (*.meta, *.bin, *.freq) in it", dir);
		goto fail;
	}

	/* A pid's images in order: PID.meta, then PID.1.meta, PID.2.meta (each exec
	 * takes the next free name). */
	if (nmetas > 1)
		qsort(metas, nmetas, sizeof(*metas), cmp_meta);
	for (unsigned i = 0; i < nmetas; i++) {
		struct fname f;
		const char *base = strrchr(metas[i], '/') + 1;
		parse_name(base, &f);
		int pi = proc_for(t, f.pid);
		bool trunc;
		if (pi < 0)
			goto oom;
		t->procs[pi].last_image_ended = false; /* until this image's PROCESS_END */
		if (each_record(t, metas[i], meta_record, &t->procs[pi], &trunc, err, errcap))
			goto fail;
	}
	for (unsigned i = 0; i < t->nprocs; i++) { /* images interleave their records */
		struct tt_process *p = &t->procs[i];
		if (p->nanchors > 1)
			qsort(p->anchors, p->nanchors, sizeof(*p->anchors), cmp_anchor);
		if (p->nmaps > 1)
			qsort(p->maps, p->nmaps, sizeof(*p->maps), cmp_map);
	}
	for (unsigned i = 0; i < t->nthreads; i++) {
		struct tt_thread *th = &t->threads[i];
		if (th->bin && read_thread_header(th, err, errcap))
			goto fail;
		if (th->freq) {
			struct freq_ctx c = {.th = th};
			int rc = each_record(t, th->freq, freq_record, &c, &th->freq_truncated, err,
					     errcap);
			u64map_fini(&c.index);
			if (rc)
				goto fail;
			for (unsigned s = 0; s < th->nsites; s++) {
				th->freq_count += th->sites[s].count;
				th->freq_bytes += th->sites[s].bytes;
			}
		}
		if (!th->name[0])
			snprintf(th->name, sizeof(th->name), "%s",
				 th->tid ? "" : "(shared handle)");
		int pi = proc_for(t, th->pid);
		if (pi < 0)
			goto oom;
		th->proc = (unsigned)pi;
	}
	for (unsigned i = 0; i < t->nthreads; i++) {
		/* The writer creates both files of a thread together: one alone was
		 * deleted, or its process was killed between the two. */
		const struct tt_thread *th = &t->threads[i];
		if (th->bin && !th->freq)
			tt_trace_note(t,
				      "%s: no .freq beside it: the exact call-site counts of "
				      "thread %d are missing, so pid %d's figures are not "
				      "calibrated on exact counts (estimates only)",
				      th->bin, th->tid, th->pid);
		else if (th->freq && !th->bin)
			tt_trace_note(t,
				      "%s: no .bin beside it: the events of thread %d are "
				      "missing (its frees too: live and peak figures may count "
				      "blocks it freed), so pid %d's figures are not calibrated "
				      "on exact counts (estimates only)",
				      th->freq, th->tid, th->pid);
		if ((th->bin != NULL) != (th->freq != NULL))
			t->procs[th->proc].uncalibrated = true;
	}
	for (unsigned i = 0; i < t->nprocs; i++)
		if (!t->procs[i].has_meta)
			tt_trace_note(t,
				      "pid %d: no .meta file: no module map (frames stay "
				      "addresses) and no sampling settings",
				      t->procs[i].pid);
	qsort(t->threads, t->nthreads, sizeof(*t->threads), cmp_thread);
	for (unsigned i = 0; i < t->nthreads; i++)
		t->threads[i].proc = (unsigned)tt_trace_find_proc(t, t->threads[i].pid);
	for (unsigned i = 0; i < t->nthreads; i++)
		free(stems[i]);
	free(stems);
	for (unsigned i = 0; i < nmetas; i++)
		free(metas[i]);
	free(metas);
	return t;
oom:
	snprintf(err, errcap, "%s: out of memory", dir);
fail:
	if (dh)
		closedir(dh);
	if (t)
		for (unsigned i = 0; i < t->nthreads; i++)
			free(stems[i]);
	free(stems);
	for (unsigned i = 0; i < nmetas; i++)
		free(metas[i]);
	free(metas);
	tt_trace_destroy(t);
	return NULL;
}

void tt_trace_destroy(struct tt_trace *t)
{
	if (!t)
		return;
	for (unsigned i = 0; i < t->nprocs; i++) {
		struct tt_process *p = &t->procs[i];
		set_str(&p->exe, NULL);
		set_str(&p->cmdline, NULL);
		set_str(&p->exec_exe, NULL);
		set_str(&p->clock, NULL);
		set_str(&p->mode, NULL);
		for (unsigned m = 0; m < p->nmaps; m++) {
			for (unsigned j = 0; j < p->maps[m].n; j++)
				free((void *)p->maps[m].mods[j].path);
			free(p->maps[m].mods);
		}
		free(p->maps);
		free(p->anchors);
	}
	for (unsigned i = 0; i < t->nthreads; i++) {
		free((void *)t->threads[i].bin);
		free((void *)t->threads[i].freq);
		free(t->threads[i].sites);
	}
	for (unsigned i = 0; i < t->nnotes; i++)
		free(t->notes[i]);
	free(t->notes);
	free(t->procs);
	free(t->threads);
	free((void *)t->dir);
	free(t);
}

/* ---- time and modules ---- */

bool tt_process_ticks_ns(const struct tt_process *p, uint64_t ticks, double *ns)
{
	if (p->nanchors == 0)
		return false;
	const struct tt_anchor *a = &p->anchors[0], *b = &p->anchors[p->nanchors - 1];
	double rate;
	if (b->ticks > a->ticks && b->mono_ns > a->mono_ns)
		rate = (double)(b->mono_ns - a->mono_ns) / (double)(b->ticks - a->ticks);
	else if (!strcmp(p->clock, "monotonic"))
		rate = 1.0;
	else
		return false;
	*ns = ((double)ticks - (double)a->ticks) * rate;
	return true;
}

void tt_process_span(const struct tt_process *p, int64_t *start_real_ns, int64_t *duration_ns)
{
	*start_real_ns = 0;
	*duration_ns = 0;
	if (p->nanchors == 0)
		return;
	*start_real_ns = (int64_t)p->anchors[0].real_ns;
	*duration_ns = (int64_t)(p->anchors[p->nanchors - 1].mono_ns - p->anchors[0].mono_ns);
}

static const struct tt_module *map_find(const struct tt_modmap *m, uint64_t addr)
{
	size_t lo = 0, hi = m->n;
	while (lo < hi) { /* first module starting after addr */
		size_t mid = (lo + hi) / 2;
		if (m->mods[mid].start <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return NULL;
	const struct tt_module *c = &m->mods[lo - 1];
	return addr < c->end ? c : NULL;
}

const struct tt_module *tt_process_module(const struct tt_process *p, uint64_t addr, uint64_t ts)
{
	/* The map in force at ts first, then the later ones, then the earlier ones. */
	unsigned at = 0;
	if (ts)
		while (at + 1 < p->nmaps && p->maps[at + 1].ts <= ts)
			at++;
	else if (p->nmaps)
		at = p->nmaps - 1;
	for (unsigned i = at; i < p->nmaps; i++) {
		const struct tt_module *m = map_find(&p->maps[i], addr);
		if (m)
			return m;
	}
	for (unsigned i = at; i-- > 0;) {
		const struct tt_module *m = map_find(&p->maps[i], addr);
		if (m)
			return m;
	}
	return NULL;
}
