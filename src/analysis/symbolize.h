/* SPDX-License-Identifier: MIT */
/*
 * Offline symbolization with elfutils libdw: a return address inside a module
 * (path, build-id, address relative to the ELF's virtual addresses) becomes the
 * functions, source files and lines it stands for, inline frames included, C++ names
 * demangled. One Dwfl per module, opened on first use and cached with every address
 * already answered.
 */
#ifndef TT_SYMBOLIZE_H
#define TT_SYMBOLIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One source-level frame. Strings belong to the symbolizer and stay valid until
 * tt_symbolizer_destroy. */
struct tt_sym_frame {
	const char *function; /* demangled; NULL when no symbol covers the address */
	const char *file;     /* source file; NULL when there is no line information */
	unsigned line;	      /* 0 when unknown */
	bool inlined;	      /* inlined into the frame that follows it */
};

struct tt_symbolizer;

/* A symbolizer. debug_root: where separate debug files live ("/usr/lib/debug" when
 * NULL): <root>/.build-id/xx/yyyy.debug is tried for stripped modules. Returns NULL
 * only when out of memory. */
struct tt_symbolizer *tt_symbolizer_create(const char *debug_root);

/* Frees everything, strings handed out included. NULL is a no-op. */
void tt_symbolizer_destroy(struct tt_symbolizer *s);

/*
 * Symbolize `addr` (an ELF virtual address of the module: runtime address minus its
 * load bias) in the module at `path` whose GNU build-id is build_id[0..build_id_len)
 * (len 0: unknown, the path is trusted). `return_address`: addr is a return address,
 * so the call instruction before it is what gets looked up (addr - 1).
 *
 * Writes the frames innermost first (an inlined callee before the function it was
 * inlined into) into out[0..cap) and returns how many (at least 1 when cap >= 1). A
 * module that cannot be opened, whose build-id differs from the recorded one (and
 * no debug file with that id exists), or that has no symbol covering addr gives one
 * frame with function == NULL: the caller prints it as module+0xoffset. Never fails
 * otherwise; the answer is cached per (module, addr).
 */
unsigned tt_symbolize(struct tt_symbolizer *s, const char *path, const uint8_t *build_id,
		      size_t build_id_len, uint64_t addr, bool return_address,
		      struct tt_sym_frame *out, unsigned cap);

/* How many modules could not be opened or did not match their build-id (each is
 * counted once); for the report's notes. */
unsigned tt_symbolizer_missing_modules(const struct tt_symbolizer *s);

#endif /* TT_SYMBOLIZE_H */
