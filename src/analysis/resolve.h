/* SPDX-License-Identifier: MIT */
/*
 * Stacks of addresses to stacks of source frames: each return address is found in
 * its process's module map (at the time the stack was first used) and symbolized
 * (symbolize.c), inline frames expanded. Answers are cached per address.
 */
#ifndef TT_RESOLVE_H
#define TT_RESOLVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "merge.h"

struct tt_rframe {
	const char *function; /* NULL: no symbol (print name() instead) */
	const char *file;     /* NULL: no line information */
	unsigned line;
	const char *module; /* path; NULL: outside every known module */
	uint64_t addr;	    /* runtime return address */
	uint64_t offset;    /* addr - module load bias (ELF vaddr) */
	const struct tt_module *mod;
	bool inlined;
	bool own; /* in the tracer's own library */
};

struct tt_resolver;

/* symbols false: no symbolization, every frame is module+offset (fast). */
struct tt_resolver *tt_resolver_create(const struct tt_trace *t, bool symbols);
void tt_resolver_destroy(struct tt_resolver *r); /* NULL is a no-op */

/* The frames of s, leaf first, inline frames expanded, in *out (valid until the
 * next call). Returns how many; 0 only when out of memory. */
unsigned tt_resolve_stack(struct tt_resolver *r, const struct tt_stack *s,
			  const struct tt_rframe **out);

/* A frame's display name: its function, or "module+0xoffset", or "0xaddr", or
 * "[unattributed]" for site 0. Returns buf or the function's own string. */
const char *tt_rframe_name(const struct tt_rframe *f, char *buf, size_t cap);

/* "file:line" (basename of file), or "" when unknown; returns buf. */
const char *tt_rframe_where(const struct tt_rframe *f, char *buf, size_t cap);

/* Modules the symbolizer could not open or match (each counted once). */
unsigned tt_resolver_missing_modules(const struct tt_resolver *r);

#endif /* TT_RESOLVE_H */
