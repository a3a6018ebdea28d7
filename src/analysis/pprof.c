/* SPDX-License-Identifier: MIT */
/*
 * pprof output: strings, mappings, functions and locations are interned in hash tables
 * as samples arrive; the protobuf-c view of the Profile is built only to be packed in
 * tt_pprof_write, gzipped with zlib into a temporary file renamed over the target.
 */
#define _GNU_SOURCE
#include "pprof.h"
#include "profile.pb-c.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define ARENA_BLOCK (64u * 1024)  /* string storage grows by blocks of this size */
#define OUT_CHUNK   (128u * 1024) /* gzip output buffer */
#define IN_CHUNK    (1u << 30)	  /* deflate input per call (avail_in is 32-bit) */

/* Open-addressing hash table of indices into one of the tables below. */
struct hslot {
	uint32_t idx1; /* index + 1; 0: empty */
	uint32_t hash; /* the key's hash (low 32 bits), to skip compares and to rehash */
};
struct htab {
	struct hslot *slot;
	size_t mask; /* size - 1, size a power of two */
	size_t n;
};

struct arena_block {
	struct arena_block *next;
	size_t used, cap;
	char data[];
};

struct pmap {
	int64_t file, build_id; /* string indices */
	uint64_t start, limit, offset;
	bool has_functions, has_filenames, has_line_numbers, has_inline_frames;
};

struct pfunc {
	int64_t name, file; /* string indices */
};

struct pline {
	uint64_t function_id;
	int64_t line;
};

struct ploc {
	uint64_t address;
	uint64_t mapping_id; /* 0: outside every known module */
	size_t line0;	     /* first of its nline entries in tt_pprof.lines */
	uint32_t nline;
};

_Static_assert(sizeof(unsigned) <= sizeof(uint32_t), "line and location counts fit uint32_t");

struct psample {
	size_t loc0; /* first of its nloc entries in tt_pprof.locids */
	uint32_t nloc;
	int64_t value[TT_PPROF_VALUES];
};

struct tt_pprof {
	char **str; /* string_table; strings live in the arena */
	size_t nstr, capstr;
	struct htab str_h;
	struct arena_block *arena;

	struct pmap *maps;
	size_t nmap, capmap;
	struct htab map_h;

	struct pfunc *funcs;
	size_t nfunc, capfunc;
	struct htab func_h;

	struct ploc *locs;
	size_t nloc, caploc;
	struct htab loc_h;
	struct pline *lines;
	size_t nline, capline;

	struct psample *samples;
	size_t nsample, capsample;
	uint64_t *locids;
	size_t nlocid, caplocid;

	int64_t *comments;
	size_t ncomment, capcomment;

	int64_t time_nanos, duration_nanos;
	int64_t type_str[2 * TT_PPROF_VALUES]; /* sample_type (type, unit) indices */
	int64_t space_str, bytes_str, default_str;
};

/* Room for `more` elements past n in an array of capacity *cap; doubles. 0 or -1. */
static int grow(void **arr, size_t *cap, size_t n, size_t more, size_t elem)
{
	if (more <= *cap - n)
		return 0;
	if (n > SIZE_MAX - more)
		return -1;
	size_t need = n + more, nc = *cap ? *cap : 16;
	while (nc < need) {
		if (nc > SIZE_MAX / 2)
			return -1;
		nc *= 2;
	}
	if (nc > SIZE_MAX / elem)
		return -1;
	void *q = realloc(*arr, nc * elem);
	if (!q)
		return -1;
	*arr = q;
	*cap = nc;
	return 0;
}

#define GROW(arr, cap, n, more)                                                                    \
	({                                                                                         \
		void *grow_p_ = (arr);                                                             \
		int grow_rc_ = grow(&grow_p_, &(cap), (n), (more), sizeof(*(arr)));                \
		(arr) = grow_p_;                                                                   \
		grow_rc_;                                                                          \
	})

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

static uint32_t hash_pair(uint64_t a, uint64_t b)
{
	return (uint32_t)mix64(mix64(a) ^ (b + 0x9e3779b97f4a7c15ull));
}

static uint32_t hash_str(const char *s, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
	return (uint32_t)mix64(h);
}

static int htab_init(struct htab *h, size_t size)
{
	h->slot = calloc(size, sizeof(*h->slot));
	h->mask = size - 1;
	h->n = 0;
	return h->slot ? 0 : -1;
}

/* Room for one more entry at load factor <= 1/2. 0 or -1. */
static int htab_reserve(struct htab *h)
{
	size_t size = h->mask + 1;
	if ((h->n + 1) * 2 <= size)
		return 0;
	if (size > SIZE_MAX / 2 / sizeof(struct hslot))
		return -1;
	struct hslot *ns = calloc(size * 2, sizeof(*ns));
	if (!ns)
		return -1;
	size_t nmask = size * 2 - 1;
	for (size_t i = 0; i < size; i++) {
		if (!h->slot[i].idx1)
			continue;
		size_t j = h->slot[i].hash & nmask;
		while (ns[j].idx1)
			j = (j + 1) & nmask;
		ns[j] = h->slot[i];
	}
	free(h->slot);
	h->slot = ns;
	h->mask = nmask;
	return 0;
}

typedef bool (*htab_eq)(const struct tt_pprof *p, size_t idx, const void *key);

/* The slot holding key, or the empty slot where it would go. */
static struct hslot *htab_find(const struct htab *h, uint32_t hash, htab_eq eq,
			       const struct tt_pprof *p, const void *key)
{
	size_t i = hash & h->mask;
	for (;;) {
		struct hslot *s = &h->slot[i];
		if (!s->idx1 || (s->hash == hash && eq(p, s->idx1 - 1, key)))
			return s;
		i = (i + 1) & h->mask;
	}
}

/* Copy of s[0..len) plus a NUL, in the string arena; NULL when out of memory. */
static char *arena_dup(struct tt_pprof *p, const char *s, size_t len)
{
	struct arena_block *b = p->arena;
	if (!b || b->cap - b->used < len + 1) {
		size_t cap = len + 1 > ARENA_BLOCK ? len + 1 : ARENA_BLOCK;
		b = malloc(sizeof(*b) + cap);
		if (!b)
			return NULL;
		b->used = 0;
		b->cap = cap;
		/* A string bigger than a block gets its own block behind the current one,
		 * which keeps its free space. */
		if (p->arena && cap > ARENA_BLOCK) {
			b->next = p->arena->next;
			p->arena->next = b;
		} else {
			b->next = p->arena;
			p->arena = b;
		}
	}
	char *d = b->data + b->used;
	memcpy(d, s, len);
	d[len] = '\0';
	b->used += len + 1;
	return d;
}

struct str_key {
	const char *s;
	size_t len;
};

static bool str_eq(const struct tt_pprof *p, size_t idx, const void *key)
{
	const struct str_key *k = key;
	return strncmp(p->str[idx], k->s, k->len) == 0 && p->str[idx][k->len] == '\0';
}

/* Index of s in the string table, added if new; NULL is "" (index 0). -1: no memory. */
static int64_t intern(struct tt_pprof *p, const char *s)
{
	if (!s)
		s = "";
	struct str_key k = {s, strlen(s)};
	uint32_t h = hash_str(s, k.len);
	if (htab_reserve(&p->str_h))
		return -1;
	struct hslot *slot = htab_find(&p->str_h, h, str_eq, p, &k);
	if (slot->idx1)
		return slot->idx1 - 1;
	if (p->nstr >= UINT32_MAX - 1 || GROW(p->str, p->capstr, p->nstr, 1))
		return -1;
	char *d = arena_dup(p, s, k.len);
	if (!d)
		return -1;
	p->str[p->nstr] = d;
	slot->idx1 = (uint32_t)++p->nstr;
	slot->hash = h;
	p->str_h.n++;
	return (int64_t)p->nstr - 1;
}

static bool map_eq(const struct tt_pprof *p, size_t idx, const void *key)
{
	const struct pmap *a = &p->maps[idx], *b = key;
	return a->file == b->file && a->start == b->start && a->limit == b->limit &&
	       a->offset == b->offset;
}

/* Mapping id (>= 1) of the location's module, added if new; 0 when it has none, -1
 * when out of memory. The build-id is the one first seen for the path and range. */
static int64_t mapping_id(struct tt_pprof *p, const struct tt_pprof_location *l)
{
	if (!l->module || !l->module[0])
		return 0;
	struct pmap m = {
	    .start = l->module_start, .limit = l->module_end, .offset = l->module_offset};
	m.file = intern(p, l->module);
	if (m.file < 0)
		return -1;
	uint32_t h = hash_pair((uint64_t)m.file ^ mix64(m.offset), m.start ^ mix64(m.limit));
	if (htab_reserve(&p->map_h))
		return -1;
	struct hslot *slot = htab_find(&p->map_h, h, map_eq, p, &m);
	if (slot->idx1)
		return slot->idx1;
	m.build_id = intern(p, l->build_id);
	if (m.build_id < 0 || p->nmap >= UINT32_MAX - 1 || GROW(p->maps, p->capmap, p->nmap, 1))
		return -1;
	p->maps[p->nmap] = m;
	slot->idx1 = (uint32_t)++p->nmap;
	slot->hash = h;
	p->map_h.n++;
	return (int64_t)p->nmap;
}

static bool func_eq(const struct tt_pprof *p, size_t idx, const void *key)
{
	const struct pfunc *a = &p->funcs[idx], *b = key;
	return a->name == b->name && a->file == b->file;
}

/* Function id (>= 1) of (name, file), added if new; -1 when out of memory. */
static int64_t function_id(struct tt_pprof *p, const char *name, const char *file)
{
	struct pfunc f;
	f.name = intern(p, name);
	f.file = intern(p, file);
	if (f.name < 0 || f.file < 0)
		return -1;
	uint32_t h = hash_pair((uint64_t)f.name, (uint64_t)f.file);
	if (htab_reserve(&p->func_h))
		return -1;
	struct hslot *slot = htab_find(&p->func_h, h, func_eq, p, &f);
	if (slot->idx1)
		return slot->idx1;
	if (p->nfunc >= UINT32_MAX - 1 || GROW(p->funcs, p->capfunc, p->nfunc, 1))
		return -1;
	p->funcs[p->nfunc] = f;
	slot->idx1 = (uint32_t)++p->nfunc;
	slot->hash = h;
	p->func_h.n++;
	return (int64_t)p->nfunc;
}

/*
 * The name shown for an address no symbol covers: "libfoo.so+0x1a2b" (module base
 * name, file offset as addr2line wants it), or "0x7f..." outside every module.
 */
static void synthetic_name(char *buf, size_t cap, const struct tt_pprof_location *l)
{
	if (!l->module || !l->module[0]) {
		snprintf(buf, cap, "0x%" PRIx64, l->address);
		return;
	}
	const char *base = strrchr(l->module, '/');
	base = base && base[1] ? base + 1 : l->module;
	uint64_t off = l->address - l->module_start + l->module_offset;
	if (l->address < l->module_start)
		off = l->address;
	snprintf(buf, cap, "%.200s+0x%" PRIx64, base, off);
}

struct loc_key {
	uint64_t address, mapping_id;
};

static bool loc_eq(const struct tt_pprof *p, size_t idx, const void *key)
{
	const struct ploc *a = &p->locs[idx];
	const struct loc_key *b = key;
	return a->address == b->address && a->mapping_id == b->mapping_id;
}

/*
 * Location id (>= 1) of l, added if new with its lines; -1 when out of memory. Lines
 * without a function, and locations without any line, get a synthetic function name
 * (synthetic_name): a Line-less location is "<unknown>" in `pprof -top` and flame
 * graphs, all of them merged into one node, whereas "libfoo.so+0x1a2b" stays apart
 * and says where to look.
 */
static int64_t location_id(struct tt_pprof *p, const struct tt_pprof_location *l)
{
	int64_t mid = mapping_id(p, l);
	if (mid < 0)
		return -1;
	struct loc_key k = {l->address, (uint64_t)mid};
	uint32_t h = hash_pair(l->address, (uint64_t)mid);
	struct hslot *slot = htab_find(&p->loc_h, h, loc_eq, p, &k);
	if (slot->idx1)
		return slot->idx1;

	bool known = false; /* any function, file or line given */
	for (unsigned i = 0; i < l->nlines; i++)
		if (l->lines[i].function || l->lines[i].file || l->lines[i].line)
			known = true;
	unsigned nl = known ? l->nlines : 1;
	if (GROW(p->lines, p->capline, p->nline, nl))
		return -1;
	/* Written past nline, committed below once the location is in. */
	struct pline *out = p->lines + p->nline;
	char synth[256];
	bool real_func = false, any_file = false, any_line = false;
	for (unsigned i = 0; i < nl; i++) {
		const struct tt_pprof_line *ln = known ? &l->lines[i] : NULL;
		const char *name = ln ? ln->function : NULL;
		const char *file = ln ? ln->file : NULL;
		if (name) {
			real_func = true;
		} else {
			synthetic_name(synth, sizeof(synth), l);
			name = synth;
		}
		any_file |= file && file[0];
		any_line |= ln && ln->line > 0;
		int64_t fid = function_id(p, name, file);
		if (fid < 0)
			return -1;
		out[i].function_id = (uint64_t)fid;
		out[i].line = ln && ln->line > 0 ? ln->line : 0;
	}

	if (p->nloc >= UINT32_MAX - 1 || GROW(p->locs, p->caploc, p->nloc, 1) ||
	    htab_reserve(&p->loc_h))
		return -1;
	slot = htab_find(&p->loc_h, h, loc_eq, p, &k); /* the table may have moved */
	p->locs[p->nloc] = (struct ploc){
	    .address = l->address, .mapping_id = (uint64_t)mid, .line0 = p->nline, .nline = nl};
	p->nline += nl;
	slot->idx1 = (uint32_t)++p->nloc;
	slot->hash = h;
	p->loc_h.n++;
	if (mid) {
		/* As pprof's own symbolizer sets them: what at least one location has. */
		struct pmap *m = &p->maps[mid - 1];
		m->has_functions |= real_func;
		m->has_filenames |= any_file;
		m->has_line_numbers |= any_line;
		m->has_inline_frames |= real_func && nl > 1;
	}
	return (int64_t)p->nloc;
}

struct tt_pprof *tt_pprof_create(void)
{
	static const char *const types[2 * TT_PPROF_VALUES] = {
	    "alloc_space", "bytes", "alloc_objects", "count",
	    "inuse_space", "bytes", "inuse_objects", "count",
	};
	struct tt_pprof *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	if (htab_init(&p->str_h, 1024) || htab_init(&p->map_h, 16) || htab_init(&p->func_h, 1024) ||
	    htab_init(&p->loc_h, 1024) || intern(p, "") != 0)
		goto fail;
	for (unsigned i = 0; i < 2 * TT_PPROF_VALUES; i++)
		if ((p->type_str[i] = intern(p, types[i])) < 0)
			goto fail;
	p->default_str = p->type_str[0];
	if ((p->space_str = intern(p, "space")) < 0 || (p->bytes_str = intern(p, "bytes")) < 0)
		goto fail;
	return p;
fail:
	tt_pprof_destroy(p);
	return NULL;
}

void tt_pprof_destroy(struct tt_pprof *p)
{
	if (!p)
		return;
	while (p->arena) {
		struct arena_block *next = p->arena->next;
		free(p->arena);
		p->arena = next;
	}
	free(p->str);
	free(p->str_h.slot);
	free(p->maps);
	free(p->map_h.slot);
	free(p->funcs);
	free(p->func_h.slot);
	free(p->locs);
	free(p->loc_h.slot);
	free(p->lines);
	free(p->samples);
	free(p->locids);
	free(p->comments);
	free(p);
}

int tt_pprof_add_comment(struct tt_pprof *p, const char *text)
{
	if (GROW(p->comments, p->capcomment, p->ncomment, 1))
		return -1;
	int64_t s = intern(p, text);
	if (s < 0)
		return -1;
	p->comments[p->ncomment++] = s;
	return 0;
}

void tt_pprof_set_time(struct tt_pprof *p, int64_t time_nanos, int64_t duration_nanos)
{
	p->time_nanos = time_nanos;
	p->duration_nanos = duration_nanos;
}

int tt_pprof_add_mapping(struct tt_pprof *p, const struct tt_pprof_location *where)
{
	return mapping_id(p, where) < 0 ? -1 : 0;
}

int tt_pprof_add_sample(struct tt_pprof *p, const struct tt_pprof_location *locs, unsigned nlocs,
			const int64_t values[TT_PPROF_VALUES])
{
	if (GROW(p->samples, p->capsample, p->nsample, 1) ||
	    GROW(p->locids, p->caplocid, p->nlocid, nlocs))
		return -1;
	/* Ids go past nlocid and are committed with the sample: a failure half-way
	 * leaves at most unused locations behind, which pprof accepts. */
	for (unsigned i = 0; i < nlocs; i++) {
		int64_t id = location_id(p, &locs[i]);
		if (id < 0)
			return -1;
		p->locids[p->nlocid + i] = (uint64_t)id;
	}
	struct psample *s = &p->samples[p->nsample++];
	s->loc0 = p->nlocid;
	s->nloc = nlocs;
	memcpy(s->value, values, sizeof(s->value));
	p->nlocid += nlocs;
	return 0;
}

/* The protobuf-c structures tt_pprof_write packs: arrays pointing into tt_pprof. */
struct view {
	Perftools__Profiles__Profile prof;
	Perftools__Profiles__ValueType vt[TT_PPROF_VALUES + 1], *vtp[TT_PPROF_VALUES];
	Perftools__Profiles__Mapping *maps, **mapp;
	Perftools__Profiles__Function *funcs, **funcp;
	Perftools__Profiles__Location *locs, **locp;
	Perftools__Profiles__Line *lines, **linep;
	Perftools__Profiles__Sample *samples, **samplep;
};

static void view_free(struct view *v)
{
	free(v->maps);
	free(v->mapp);
	free(v->funcs);
	free(v->funcp);
	free(v->locs);
	free(v->locp);
	free(v->lines);
	free(v->linep);
	free(v->samples);
	free(v->samplep);
}

/* calloc for n elements, never NULL for n == 0 on success. */
static void *alloc_n(size_t n, size_t elem)
{
	return calloc(n ? n : 1, elem);
}

/* Fill v from p. 0, or -1 when out of memory (v is freed by the caller either way). */
static int view_build(struct view *v, struct tt_pprof *p)
{
	memset(v, 0, sizeof(*v));
	v->maps = alloc_n(p->nmap, sizeof(*v->maps));
	v->mapp = alloc_n(p->nmap, sizeof(*v->mapp));
	v->funcs = alloc_n(p->nfunc, sizeof(*v->funcs));
	v->funcp = alloc_n(p->nfunc, sizeof(*v->funcp));
	v->locs = alloc_n(p->nloc, sizeof(*v->locs));
	v->locp = alloc_n(p->nloc, sizeof(*v->locp));
	v->lines = alloc_n(p->nline, sizeof(*v->lines));
	v->linep = alloc_n(p->nline, sizeof(*v->linep));
	v->samples = alloc_n(p->nsample, sizeof(*v->samples));
	v->samplep = alloc_n(p->nsample, sizeof(*v->samplep));
	if (!v->maps || !v->mapp || !v->funcs || !v->funcp || !v->locs || !v->locp || !v->lines ||
	    !v->linep || !v->samples || !v->samplep)
		return -1;

	Perftools__Profiles__Profile *pr = &v->prof;
	perftools__profiles__profile__init(pr);
	for (unsigned i = 0; i <= TT_PPROF_VALUES; i++) {
		perftools__profiles__value_type__init(&v->vt[i]);
		if (i < TT_PPROF_VALUES) {
			v->vt[i].type = p->type_str[2 * i];
			v->vt[i].unit = p->type_str[2 * i + 1];
			v->vtp[i] = &v->vt[i];
		}
	}
	v->vt[TT_PPROF_VALUES].type = p->space_str;
	v->vt[TT_PPROF_VALUES].unit = p->bytes_str;
	pr->n_sample_type = TT_PPROF_VALUES;
	pr->sample_type = v->vtp;
	pr->period_type = &v->vt[TT_PPROF_VALUES];
	pr->period = 1; /* values are already estimates of the true totals */
	pr->default_sample_type = p->default_str;
	pr->time_nanos = p->time_nanos;
	pr->duration_nanos = p->duration_nanos;
	pr->n_comment = p->ncomment;
	pr->comment = p->comments;
	pr->n_string_table = p->nstr;
	pr->string_table = p->str;

	for (size_t i = 0; i < p->nmap; i++) {
		Perftools__Profiles__Mapping *m = &v->maps[i];
		const struct pmap *s = &p->maps[i];
		perftools__profiles__mapping__init(m);
		m->id = i + 1;
		m->memory_start = s->start;
		m->memory_limit = s->limit;
		m->file_offset = s->offset;
		m->filename = s->file;
		m->build_id = s->build_id;
		m->has_functions = s->has_functions;
		m->has_filenames = s->has_filenames;
		m->has_line_numbers = s->has_line_numbers;
		m->has_inline_frames = s->has_inline_frames;
		v->mapp[i] = m;
	}
	pr->n_mapping = p->nmap;
	pr->mapping = v->mapp;

	for (size_t i = 0; i < p->nfunc; i++) {
		Perftools__Profiles__Function *f = &v->funcs[i];
		perftools__profiles__function__init(f);
		f->id = i + 1;
		f->name = p->funcs[i].name;
		f->system_name = p->funcs[i].name;
		f->filename = p->funcs[i].file;
		v->funcp[i] = f;
	}
	pr->n_function = p->nfunc;
	pr->function = v->funcp;

	for (size_t i = 0; i < p->nline; i++) {
		perftools__profiles__line__init(&v->lines[i]);
		v->lines[i].function_id = p->lines[i].function_id;
		v->lines[i].line = p->lines[i].line;
		v->linep[i] = &v->lines[i];
	}
	for (size_t i = 0; i < p->nloc; i++) {
		Perftools__Profiles__Location *l = &v->locs[i];
		const struct ploc *s = &p->locs[i];
		perftools__profiles__location__init(l);
		l->id = i + 1;
		l->mapping_id = s->mapping_id;
		l->address = s->address;
		l->n_line = s->nline;
		l->line = s->nline ? v->linep + s->line0 : NULL;
		v->locp[i] = l;
	}
	pr->n_location = p->nloc;
	pr->location = v->locp;

	for (size_t i = 0; i < p->nsample; i++) {
		Perftools__Profiles__Sample *s = &v->samples[i];
		struct psample *ps = &p->samples[i];
		perftools__profiles__sample__init(s);
		s->n_location_id = ps->nloc;
		s->location_id = ps->nloc ? p->locids + ps->loc0 : NULL;
		s->n_value = TT_PPROF_VALUES;
		s->value = ps->value;
		v->samplep[i] = s;
	}
	pr->n_sample = p->nsample;
	pr->sample = v->samplep;
	return 0;
}

/* "PATH: what (reason)" into err. Returns -1. */
static int report(char *err, size_t errcap, const char *path, const char *what, const char *reason)
{
	if (err && errcap)
		snprintf(err, errcap, "%s: %s (%s)", path, what, reason);
	return -1;
}

static int write_all(int fd, const unsigned char *buf, size_t len)
{
	while (len) {
		ssize_t w = write(fd, buf, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf += w;
		len -= (size_t)w;
	}
	return 0;
}

/*
 * gzip buf[0..len) into fd. 0, or -1 with *what set (and errno for write errors, or
 * *zerr to zlib's code).
 */
static int gzip_to_fd(int fd, const unsigned char *buf, size_t len, const char **what, int *zerr)
{
	z_stream zs;
	memset(&zs, 0, sizeof(zs));
	*zerr = Z_OK;
	int rc =
	    deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
	if (rc != Z_OK) {
		*what = "gzip initialization failed";
		*zerr = rc;
		return -1;
	}
	unsigned char *out = malloc(OUT_CHUNK);
	if (!out) {
		deflateEnd(&zs);
		*what = "out of memory compressing the profile";
		errno = ENOMEM;
		return -1;
	}
	int ret = -1;
	size_t left = len;
	zs.next_in = (Bytef *)(uintptr_t)buf;
	for (;;) {
		if (zs.avail_in == 0 && left) {
			zs.avail_in = left > IN_CHUNK ? IN_CHUNK : (uInt)left;
			left -= zs.avail_in;
		}
		int flush = left || zs.avail_in ? Z_NO_FLUSH : Z_FINISH;
		zs.next_out = out;
		zs.avail_out = OUT_CHUNK;
		rc = deflate(&zs, flush);
		if (rc == Z_STREAM_ERROR) {
			*what = "gzip compression failed";
			*zerr = rc;
			goto done;
		}
		if (write_all(fd, out, OUT_CHUNK - zs.avail_out)) {
			*what = "write failed";
			goto done;
		}
		if (rc == Z_STREAM_END)
			break;
	}
	ret = 0;
done:
	free(out);
	deflateEnd(&zs);
	return ret;
}

int tt_pprof_write(struct tt_pprof *p, const char *path, char *err, size_t errcap)
{
	struct view v;
	if (view_build(&v, p)) {
		view_free(&v);
		return report(err, errcap, path, "out of memory building the profile",
			      strerror(ENOMEM));
	}
	size_t size = perftools__profiles__profile__get_packed_size(&v.prof);
	uint8_t *buf = malloc(size ? size : 1);
	if (!buf) {
		view_free(&v);
		return report(err, errcap, path, "out of memory packing the profile",
			      strerror(ENOMEM));
	}
	size_t packed = perftools__profiles__profile__pack(&v.prof, buf);
	view_free(&v);
	if (packed != size) {
		free(buf);
		return report(err, errcap, path, "packing the profile", "size mismatch");
	}

	size_t tmplen = strlen(path) + 32;
	char *tmp = malloc(tmplen);
	if (!tmp) {
		free(buf);
		return report(err, errcap, path, "out of memory naming the temporary file",
			      strerror(ENOMEM));
	}
	snprintf(tmp, tmplen, "%s.tmp.%ld", path, (long)getpid());
	const char *step = NULL;
	int zerr = Z_OK, fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		int e = errno;
		if (err && errcap)
			snprintf(err, errcap, "%s: cannot create %s (%s)", path, tmp, strerror(e));
		free(tmp);
		free(buf);
		return -1;
	}
	int rc = gzip_to_fd(fd, buf, size, &step, &zerr);
	int e = errno;
	free(buf);
	if (rc == 0 && fsync(fd) != 0 && errno != EINVAL && errno != EROFS) {
		e = errno;
		rc = -1;
		step = "fsync failed";
	}
	if (close(fd) != 0 && rc == 0) {
		e = errno;
		rc = -1;
		step = "close failed";
	}
	if (rc == 0 && rename(tmp, path) != 0) {
		e = errno;
		rc = -1;
		step = "rename failed";
	}
	if (rc != 0) {
		char zmsg[32];
		if (zerr != Z_OK)
			snprintf(zmsg, sizeof(zmsg), "zlib error %d", zerr);
		report(err, errcap, path, step, zerr != Z_OK ? zmsg : strerror(e));
		unlink(tmp);
	}
	free(tmp);
	return rc;
}
