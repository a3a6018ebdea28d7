/* SPDX-License-Identifier: MIT */
/* Module map: executable segments, load biases and build-ids of loaded objects. */
#define _GNU_SOURCE
#include "modules.h"
#include "unwind_cfi.h"

#include <elf.h>
#include <link.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/atomic.h"
#include "../common/format.h"
#include "encode.h"
#include "tracer.h"

static _Atomic(struct module_map *) current; /* publish: store_release; read: acquire */
static pthread_mutex_t refresh_lock = PTHREAD_MUTEX_INITIALIZER;
static struct module_map *retired; /* under refresh_lock */
static uint64_t seen_generation;   /* under refresh_lock */
/* The objects' generation the CFI cache was filled under (under refresh_lock): a
 * new session, a fork child's among them, keeps a cache still true. */
static uint64_t cfi_generation = UINT64_MAX;

struct build {
	struct module_map *m;
	size_t cap_ranges, cap_mods;
	bool failed;
};

static void find_build_id(const struct dl_phdr_info *info, struct module_info *mod)
{
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_NOTE)
			continue;
		const unsigned char *p = (const unsigned char *)(info->dlpi_addr + ph->p_vaddr);
		const unsigned char *end = p + ph->p_memsz;
		while (p + sizeof(ElfW(Nhdr)) <= end) {
			const ElfW(Nhdr) *n = (const ElfW(Nhdr) *)p;
			size_t name = (n->n_namesz + 3) & ~3u, desc = (n->n_descsz + 3) & ~3u;
			const unsigned char *d = p + sizeof(*n) + name;
			if (d + n->n_descsz > end)
				break;
			if (n->n_type == NT_GNU_BUILD_ID && n->n_namesz == 4 &&
			    !memcmp(p + sizeof(*n), "GNU", 4) &&
			    n->n_descsz <= MODULE_BUILD_ID_MAX) {
				memcpy(mod->build_id, d, n->n_descsz);
				mod->build_id_len = n->n_descsz;
				return;
			}
			p = d + desc;
		}
	}
}

static int add_object(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	struct build *b = arg;
	struct module_map *m = b->m;
	if (m->nmods == b->cap_mods) {
		b->cap_mods = b->cap_mods ? 2 * b->cap_mods : 64;
		void *p = realloc(m->mods, b->cap_mods * sizeof(*m->mods));
		if (!p)
			return b->failed = true, 1;
		m->mods = p;
	}
	struct module_info *mod = &m->mods[m->nmods];
	memset(mod, 0, sizeof(*mod));
	const char *name = info->dlpi_name;
	char exe[4096];
	if (!name || !name[0]) {
		/* The main program: the loader gives it no name. */
		ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		exe[n > 0 ? n : 0] = '\0';
		name = exe;
	}
	mod->path = strdup(name);
	mod->bias = info->dlpi_addr;
	if (!mod->path)
		return b->failed = true, 1;
	find_build_id(info, mod);
	bool any = false;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X) || !ph->p_memsz)
			continue;
		if (m->nranges == b->cap_ranges) {
			b->cap_ranges = b->cap_ranges ? 2 * b->cap_ranges : 64;
			void *p = realloc(m->ranges, b->cap_ranges * sizeof(*m->ranges));
			if (!p)
				return b->failed = true, 1;
			m->ranges = p;
		}
		m->ranges[m->nranges++] = (struct module_range){
		    info->dlpi_addr + ph->p_vaddr, info->dlpi_addr + ph->p_vaddr + ph->p_memsz,
		    (uint32_t)m->nmods};
		any = true;
	}
	if (any)
		m->nmods++;
	else
		free(mod->path);
	return 0;
}

static int cmp_range(const void *a, const void *b)
{
	const struct module_range *x = a, *y = b;
	return (x->start > y->start) - (x->start < y->start);
}

static int read_generation(struct dl_phdr_info *info, size_t size, void *arg)
{
	/* dlpi_adds/dlpi_subs exist since glibc 2.4; size tells whether they are there. */
	if (size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof(info->dlpi_subs))
		*(uint64_t *)arg = (uint64_t)info->dlpi_adds + (uint64_t)info->dlpi_subs;
	return 1; /* the first object is enough */
}

uint64_t modules_generation(void)
{
	uint64_t g = 0;
	dl_iterate_phdr(read_generation, &g);
	return g;
}

void modules_refresh(void)
{
	pthread_mutex_lock(&refresh_lock);
	uint64_t g = modules_generation();
	if (g != seen_generation) {
		struct module_map *m = modules_snapshot();
		if (m) { /* else: try again next time */
			seen_generation = g;
			/* Unloaded objects' addresses may now be another's code. */
			if (g != cfi_generation) {
				unwind_cfi_flush();
				cfi_generation = g;
			}
			struct module_map *old = modules_publish(m);
			if (old) {
				old->retired_next = retired;
				retired = old;
			}
		}
	}
	pthread_mutex_unlock(&refresh_lock);
}

static unsigned write_chain(msgpack_packer *pk, struct module_map *m)
{
	if (!m)
		return 0;
	unsigned n = write_chain(pk, m->retired_next); /* oldest first */
	if (!load_acquire(&m->written)) {
		modules_encode(pk, m, m->ticks);
		store_release(&m->written, 1);
		n++;
	}
	return n;
}

unsigned modules_write_pending(msgpack_packer *pk)
{
	pthread_mutex_lock(&refresh_lock);
	unsigned n = write_chain(pk, retired);
	struct module_map *cur = load_acquire(&current);
	if (cur && !load_acquire(&cur->written)) {
		modules_encode(pk, cur, cur->ticks);
		store_release(&cur->written, 1);
		n++;
	}
	pthread_mutex_unlock(&refresh_lock);
	return n;
}

void modules_session_start(void)
{
	modules_retire_all();
	modules_destroy(modules_publish(NULL));
	pthread_mutex_lock(&refresh_lock);
	seen_generation = UINT64_MAX; /* forces modules_refresh to take a snapshot */
	pthread_mutex_unlock(&refresh_lock);
	modules_refresh();
}

void modules_fork_lock(void)
{
	pthread_mutex_lock(&refresh_lock);
}

void modules_fork_unlock(void)
{
	pthread_mutex_unlock(&refresh_lock);
}

void modules_retire_all(void)
{
	pthread_mutex_lock(&refresh_lock);
	while (retired) {
		struct module_map *next = retired->retired_next;
		modules_destroy(retired);
		retired = next;
	}
	pthread_mutex_unlock(&refresh_lock);
}

struct module_map *modules_snapshot(void)
{
	struct build b = {calloc(1, sizeof(struct module_map)), 0, 0, false};
	if (!b.m)
		return NULL;
	dl_iterate_phdr(add_object, &b);
	if (b.failed) {
		modules_destroy(b.m);
		return NULL;
	}
	qsort(b.m->ranges, b.m->nranges, sizeof(*b.m->ranges), cmp_range);
	b.m->ticks = tt_ticks();
	/* libc: the object holding abort(), all of its executable segments. */
	uintptr_t probe = (uintptr_t)&abort;
	for (size_t i = 0; i < b.m->nranges; i++) {
		const struct module_range *r = &b.m->ranges[i];
		if (probe < r->start || probe >= r->end)
			continue;
		for (size_t j = 0; j < b.m->nranges; j++)
			if (b.m->ranges[j].module == r->module) {
				if (!b.m->libc_lo || b.m->ranges[j].start < b.m->libc_lo)
					b.m->libc_lo = b.m->ranges[j].start;
				if (b.m->ranges[j].end > b.m->libc_hi)
					b.m->libc_hi = b.m->ranges[j].end;
			}
		break;
	}
	return b.m;
}

void modules_destroy(struct module_map *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->nmods; i++)
		free(m->mods[i].path);
	free(m->mods);
	free(m->ranges);
	free(m);
}

_Atomic uint32_t tt_modules_epoch;

struct module_map *modules_publish(struct module_map *m)
{
	/* Pairs with modules_is_code's load_acquire: the table is complete first. */
	struct module_map *old = atomic_exchange_explicit(&current, m, memory_order_acq_rel);
	atomic_fetch_add_explicit(&tt_modules_epoch, 1, memory_order_release);
	return old;
}

bool modules_is_libc(uintptr_t addr)
{
	const struct module_map *m = load_acquire(&current);
	return m && addr >= m->libc_lo && addr < m->libc_hi;
}

const struct module_map *modules_current(void)
{
	return load_acquire(&current);
}

bool modules_is_code(uintptr_t addr, size_t *hint)
{
	const struct module_map *m = load_acquire(&current);
	if (!m)
		return true;
	if (*hint < m->nranges && m->ranges[*hint].start <= addr && addr < m->ranges[*hint].end)
		return true;
	size_t lo = 0, hi = m->nranges;
	while (lo < hi) { /* first range with start > addr */
		size_t mid = lo + (hi - lo) / 2;
		if (m->ranges[mid].start <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo > 0 && addr < m->ranges[lo - 1].end) {
		*hint = lo - 1;
		return true;
	}
	return false;
}

void modules_encode(msgpack_packer *pk, const struct module_map *m, uint64_t ticks)
{
	msgpack_pack_array(pk, 3);
	msgpack_pack_uint8(pk, TT_REC_MODULES);
	msgpack_pack_uint64(pk, ticks);
	msgpack_pack_array(pk, m->nranges);
	for (size_t i = 0; i < m->nranges; i++) {
		const struct module_range *r = &m->ranges[i];
		const struct module_info *mod = &m->mods[r->module];
		msgpack_pack_array(pk, 5);
		encode_str(pk, mod->path);
		msgpack_pack_uint64(pk, mod->bias);
		msgpack_pack_uint64(pk, r->start);
		msgpack_pack_uint64(pk, r->end);
		msgpack_pack_bin(pk, mod->build_id_len);
		msgpack_pack_bin_body(pk, mod->build_id, mod->build_id_len);
	}
}
