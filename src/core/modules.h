/* SPDX-License-Identifier: MIT */
/*
 * The module map: every loaded object's executable segments, load bias and build-id.
 * It validates return addresses during frame-pointer walks (a broken chain yields
 * words that are not code) and goes to the process file so offline tools can
 * symbolize after the process is gone.
 */
#ifndef TT_MODULES_H
#define TT_MODULES_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MODULE_BUILD_ID_MAX 64

struct module_info {
	char *path;
	uintptr_t bias; /* load bias: runtime address = bias + ELF vaddr */
	unsigned char build_id[MODULE_BUILD_ID_MAX];
	unsigned build_id_len;
};

struct module_range {
	uintptr_t start, end; /* [start, end) of one executable segment, runtime */
	uint32_t module;      /* index into mods */
};

struct module_map {
	struct module_map *retired_next; /* replaced maps, freed at stop */
	uintptr_t libc_lo, libc_hi;	 /* libc's executable span (0, 0: unknown) */
	uint64_t ticks;			 /* when it was taken */
	_Atomic int written;		 /* the writer put it in the process file */
	size_t nranges, nmods;
	struct module_range *ranges; /* sorted by start, disjoint */
	struct module_info *mods;
};

/* Snapshot the loaded objects (dl_iterate_phdr). Allocates: never on the event path.
 * NULL when out of memory. */
struct module_map *modules_snapshot(void);

void modules_destroy(struct module_map *m);

/* Make `m` the map return addresses are checked against (may be NULL: no check).
 * Returns the previous one, which the caller frees once no event can be using it. */
struct module_map *modules_publish(struct module_map *m);

/* The loader's count of objects added and removed so far (dlpi_adds + dlpi_subs):
 * when it changes, a dlopen or dlclose happened and the map is stale. Cheap: one
 * dl_iterate_phdr callback. */
uint64_t modules_generation(void);

/* If objects were loaded or unloaded since the last call, snapshot and publish a
 * new map. Called by the writer every pass and by the dlopen wrapper; serialized
 * inside. Old maps are kept until modules_retire_all (an event may still be
 * reading one, and the writer may not have written it yet). */
void modules_refresh(void);

/* Writer: encode every map taken this session and not yet written, oldest first
 * (a map replaced before the writer saw it still matters for its time span).
 * Returns how many. */
unsigned modules_write_pending(msgpack_packer *pk);

/* Start of a session (no event running): free every map of the last one and
 * publish a new snapshot, loaded objects changed or not. */
void modules_session_start(void);

/* Bumped by every modules_publish: the same return addresses may now be another
 * object's code (a dlclose, then a dlopen at the same address), so a thread's
 * cached stack ids from before must be defined again (record.c checks it), and
 * the merge tells the two stacks apart by their objects. */
extern _Atomic uint32_t tt_modules_epoch;

/* fork: hold the refresh lock across it. */
void modules_fork_lock(void);
void modules_fork_unlock(void);

/* At stop, no event running: free the maps replaced during the session. */
void modules_retire_all(void);

/* The published map (NULL if none); valid until the next modules_publish. */
const struct module_map *modules_current(void);

/* Event path: is addr in the C library's code? A frame-pointer walk that stops
 * there has reached the program's outer frames (process and thread start, which
 * libc builds without frame pointers), not a break in the program's own code. */
bool modules_is_libc(uintptr_t addr);

/* Event path: is addr inside an executable segment of the published map? True when
 * no map is published. Lock-free; async-signal-safe. *hint (start it at 0) caches
 * the range that matched last, checked before the binary search: neighbouring frames
 * mostly share a segment. */
bool modules_is_code(uintptr_t addr, size_t *hint);

/* Encode the TT_REC_MODULES record for `m` at `ticks`. */
void modules_encode(msgpack_packer *pk, const struct module_map *m, uint64_t ticks);

#endif /* TT_MODULES_H */
