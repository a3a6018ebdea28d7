/* SPDX-License-Identifier: MIT */
/* Address stacks to symbolized frames, cached per (process, address). */
#define _GNU_SOURCE
#include "resolve.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "symbolize.h"
#include "u64map.h"

#define MAX_INLINE 16

struct span {
	uint32_t start, n; /* in pool */
	bool own;	   /* in the tracer's own library: left out of stacks */
};

struct tt_resolver {
	const struct tt_trace *t;
	struct tt_symbolizer *sym; /* NULL: no symbols */
	struct u64map *by_addr;	   /* per process: addr + 1 -> span index */
	struct span *spans;
	size_t nspans, cap_spans;
	struct tt_rframe *pool;
	size_t npool, cap_pool;
	struct tt_rframe *out; /* tt_resolve_stack's answer */
	size_t cap_out;
};

struct tt_resolver *tt_resolver_create(const struct tt_trace *t, bool symbols)
{
	struct tt_resolver *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->t = t;
	r->by_addr = calloc(t->nprocs ? t->nprocs : 1, sizeof(*r->by_addr));
	if (!r->by_addr || (symbols && !(r->sym = tt_symbolizer_create(NULL)))) {
		tt_resolver_destroy(r);
		return NULL;
	}
	return r;
}

void tt_resolver_destroy(struct tt_resolver *r)
{
	if (!r)
		return;
	tt_symbolizer_destroy(r->sym);
	if (r->by_addr)
		for (unsigned i = 0; i < r->t->nprocs; i++)
			u64map_fini(&r->by_addr[i]);
	free(r->by_addr);
	free(r->spans);
	free(r->pool);
	free(r->out);
	free(r);
}

static bool reserve(void **buf, size_t *cap, size_t need, size_t size)
{
	if (need <= *cap)
		return true;
	size_t ncap = *cap ? *cap : 256;
	while (ncap < need)
		ncap *= 2;
	void *n = realloc(*buf, ncap * size);
	if (!n)
		return false;
	*buf = n;
	*cap = ncap;
	return true;
}

/* The frames of one address, innermost first; NULL when out of memory. */
static const struct span *resolve_addr(struct tt_resolver *r, unsigned proc, uint64_t addr,
				       uint64_t ts)
{
	/* One span per address, or per (address, object) when the process's maps
	 * differ over time: an object unloaded and another loaded at its address
	 * (keys addr + 1, then + 2^56 per other object there). */
	const struct tt_process *pr = &r->t->procs[proc];
	bool maps_differ = pr->nmaps > 1;
	const struct tt_module *m = NULL;
	bool looked = false;
	uint64_t key = addr + 1;
	uint32_t idx;
	while (u64map_get(&r->by_addr[proc], key, &idx)) {
		if (!maps_differ)
			return &r->spans[idx];
		if (!looked) {
			m = addr ? tt_process_module(pr, addr, ts) : NULL;
			looked = true;
		}
		const struct tt_module *o = r->pool[r->spans[idx].start].mod;
		if (o == m || (o && m && o->start == m->start && !strcmp(o->path, m->path)))
			return &r->spans[idx];
		key += 1ull << 56;
	}
	if (!reserve((void **)&r->spans, &r->cap_spans, r->nspans + 1, sizeof(*r->spans)) ||
	    !reserve((void **)&r->pool, &r->cap_pool, r->npool + MAX_INLINE, sizeof(*r->pool)))
		return NULL;
	if (!looked)
		m = addr ? tt_process_module(pr, addr, ts) : NULL;
	struct tt_rframe base = {.addr = addr, .offset = addr, .mod = m};
	if (m) {
		base.module = m->path;
		base.offset = addr - m->bias;
	}
	struct tt_rframe *dst = &r->pool[r->npool];
	unsigned n = 1;
	dst[0] = base;
	if (m && r->sym) {
		struct tt_sym_frame sf[MAX_INLINE];
		n = tt_symbolize(r->sym, m->path, m->build_id, m->build_id_len, base.offset, true,
				 sf, MAX_INLINE);
		if (n == 0)
			n = 1, sf[0] = (struct tt_sym_frame){0};
		for (unsigned i = 0; i < n; i++) {
			dst[i] = base;
			dst[i].function = sf[i].function;
			dst[i].file = sf[i].file;
			dst[i].line = sf[i].line;
			dst[i].inlined = sf[i].inlined;
		}
	}
	struct span *sp = &r->spans[r->nspans];
	sp->start = (uint32_t)r->npool;
	sp->n = n;
	/* The pthread_create wrapper's frames (thread_auto.c) sit under every thread
	 * the tracer started: they are the tracer's, not the program's. */
	const char *slash = m ? strrchr(m->path, '/') : NULL;
	sp->own = slash && !strncmp(slash + 1, "libthagtrace.so", 15);
	for (unsigned i = 0; i < n; i++)
		dst[i].own = sp->own;
	r->npool += n;
	if (u64map_put(&r->by_addr[proc], key, (uint32_t)r->nspans))
		return NULL;
	r->nspans++;
	return sp;
}

unsigned tt_resolve_stack(struct tt_resolver *r, const struct tt_stack *s,
			  const struct tt_rframe **out)
{
	size_t n = 0;
	for (unsigned i = 0; i < s->nframes; i++) {
		const struct span *sp = resolve_addr(r, s->proc, s->frames[i], s->first_ts);
		if (sp && sp->own && i > 0)
			continue;
		if (!sp || !reserve((void **)&r->out, &r->cap_out, n + sp->n, sizeof(*r->out)))
			return 0;
		memcpy(&r->out[n], &r->pool[sp->start], sp->n * sizeof(*r->out));
		n += sp->n;
	}
	*out = r->out;
	return (unsigned)n;
}

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

const char *tt_rframe_name(const struct tt_rframe *f, char *buf, size_t cap)
{
	if (f->function)
		return f->function;
	if (!f->addr)
		snprintf(buf, cap, "[unattributed]");
	else if (f->module)
		snprintf(buf, cap, "%s+0x%llx", base_name(f->module),
			 (unsigned long long)f->offset);
	else
		snprintf(buf, cap, "0x%llx", (unsigned long long)f->addr);
	return buf;
}

const char *tt_rframe_where(const struct tt_rframe *f, char *buf, size_t cap)
{
	if (f->file && f->line)
		snprintf(buf, cap, "%s:%u", base_name(f->file), f->line);
	else if (f->file)
		snprintf(buf, cap, "%s", base_name(f->file));
	else
		buf[0] = 0;
	return buf;
}

unsigned tt_resolver_missing_modules(const struct tt_resolver *r)
{
	return r->sym ? tt_symbolizer_missing_modules(r->sym) : 0;
}
