/* SPDX-License-Identifier: MIT */
/*
 * Offline symbolization with elfutils libdwfl: one Dwfl per module (path + build-id),
 * an answer cache per (module, address) and an intern table that owns every string
 * handed out. Single-threaded: one symbolizer belongs to one thread at a time.
 */
#define _GNU_SOURCE
#include "symbolize.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* libstdc++'s demangler (abi::__cxa_demangle), through its C linkage. */
char *__cxa_demangle(const char *mangled, char *buf, size_t *len, int *status);

#define SYM_DEFAULT_DEBUG_ROOT "/usr/lib/debug"
#define SYM_MIN_TABLE	       64u /* first size of every hash table, a power of two */

/* A module as the caller names it; dwfl == NULL once opened means "missing". */
struct sym_module {
	char *path;
	uint8_t *build_id;
	size_t build_id_len;
	uint64_t hash; /* of path and build-id */
	Dwfl *dwfl;
	Dwfl_Module *mod;
};

/* One answered address: frames[first .. first + count) of the symbolizer. */
struct sym_entry {
	uint64_t addr;	 /* the address looked up (after the return-address step) */
	uint32_t module; /* module index + 1; 0: empty slot */
	uint32_t first;
	uint32_t count;
};

/* An interned string; s == NULL: empty slot. */
struct sym_string {
	uint64_t hash;
	char *s;
};

struct tt_symbolizer {
	/* dwfl_begin keeps a pointer to the callbacks, so they live here. */
	Dwfl_Callbacks callbacks;
	char *debuginfo_path; /* ":.debug:<root>", see dwfl_standard_find_debuginfo */
	char *debug_root;

	struct sym_module *modules;
	uint32_t nmodules, modules_cap;
	uint32_t *module_slots; /* open addressing: module index + 1, 0 empty */
	uint32_t module_slots_cap;

	struct sym_entry *cache;
	size_t cache_cap, cache_used;

	struct tt_sym_frame *frames;
	size_t nframes, frames_cap;

	struct sym_string *strings;
	size_t strings_cap, strings_used;

	unsigned missing;
};

/* ---- hashing ---------------------------------------------------------------------------- */

static uint64_t sym_fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

#define SYM_FNV_SEED 0xcbf29ce484222325ull

static uint64_t sym_mix(uint64_t x)
{
	/* splitmix64's finalizer: addresses differ in few low bits, spread them. */
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

static uint64_t sym_module_hash(const char *path, const uint8_t *build_id, size_t len)
{
	uint64_t h = sym_fnv(SYM_FNV_SEED, path, strlen(path) + 1);

	return sym_fnv(h, build_id, len);
}

/* ---- interned strings ------------------------------------------------------------------- */

static bool sym_strings_grow(struct tt_symbolizer *s)
{
	size_t cap = s->strings_cap ? s->strings_cap * 2 : SYM_MIN_TABLE;
	struct sym_string *t = calloc(cap, sizeof(*t));

	if (!t)
		return false;
	for (size_t i = 0; i < s->strings_cap; i++) {
		struct sym_string *o = &s->strings[i];
		if (!o->s)
			continue;
		size_t j = o->hash & (cap - 1);
		while (t[j].s)
			j = (j + 1) & (cap - 1);
		t[j] = *o;
	}
	free(s->strings);
	s->strings = t;
	s->strings_cap = cap;
	return true;
}

/* The symbolizer's copy of str (NULL stays NULL); NULL too when out of memory. */
static const char *sym_intern(struct tt_symbolizer *s, const char *str)
{
	if (!str)
		return NULL;
	if (2 * (s->strings_used + 1) > s->strings_cap && !sym_strings_grow(s))
		return NULL;

	size_t n = strlen(str);
	uint64_t h = sym_fnv(SYM_FNV_SEED, str, n);
	size_t mask = s->strings_cap - 1;
	size_t i = h & mask;

	for (; s->strings[i].s; i = (i + 1) & mask) {
		if (s->strings[i].hash == h && strcmp(s->strings[i].s, str) == 0)
			return s->strings[i].s;
	}
	char *copy = malloc(n + 1);
	if (!copy)
		return NULL;
	memcpy(copy, str, n + 1);
	s->strings[i].hash = h;
	s->strings[i].s = copy;
	s->strings_used++;
	return copy;
}

/* An interned, demangled form of name: C++ names ("_Z...") demangled, others as is. */
static const char *sym_intern_function(struct tt_symbolizer *s, const char *name)
{
	if (!name || strncmp(name, "_Z", 2) != 0)
		return sym_intern(s, name);

	int status = -1;
	char *dem = __cxa_demangle(name, NULL, NULL, &status);
	const char *r = sym_intern(s, status == 0 && dem ? dem : name);
	free(dem);
	return r;
}

/* An interned source file name: a relative name is joined to its compilation
 * directory (comp_dir, NULL when unknown) so that it names a file. */
static const char *sym_intern_file(struct tt_symbolizer *s, const char *comp_dir, const char *name)
{
	if (!name || name[0] == '/' || !comp_dir || !comp_dir[0])
		return sym_intern(s, name);

	size_t dl = strlen(comp_dir), nl = strlen(name);
	char *full = malloc(dl + nl + 2);
	if (!full)
		return NULL;
	memcpy(full, comp_dir, dl);
	full[dl] = '/';
	memcpy(full + dl + 1, name, nl + 1);
	const char *r = sym_intern(s, full);
	free(full);
	return r;
}

/* ---- modules ---------------------------------------------------------------------------- */

/* A Dwfl holding only the ELF file at path, reported so that module addresses are the
 * ELF's virtual addresses (bias 0). NULL when the file is no usable ELF. */
static Dwfl *sym_report(struct tt_symbolizer *s, const char *path, Dwfl_Module **modp)
{
	struct stat st;

	/* Regular files only: a FIFO or a device would block or never end. */
	if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
		return NULL;
	Dwfl *dwfl = dwfl_begin(&s->callbacks);
	if (!dwfl)
		return NULL;
	dwfl_report_begin(dwfl);
	/*
	 * base 0 with add_p_vaddr: the bias is base itself (0) whatever the first
	 * PT_LOAD's vaddr, so module addresses equal ELF vaddrs for ET_EXEC, ET_DYN
	 * and prelinked objects alike.
	 */
	Dwfl_Module *mod = dwfl_report_elf(dwfl, path, path, -1, 0, true);
	if (dwfl_report_end(dwfl, NULL, NULL) != 0 || !mod) {
		dwfl_end(dwfl);
		return NULL;
	}
	*modp = mod;
	return dwfl;
}

static bool sym_build_id_matches(Dwfl_Module *mod, const struct sym_module *m)
{
	const unsigned char *bits;
	GElf_Addr vaddr;
	int len = dwfl_module_build_id(mod, &bits, &vaddr);

	return len > 0 && (size_t)len == m->build_id_len &&
	       memcmp(bits, m->build_id, m->build_id_len) == 0;
}

/* <debug_root>/.build-id/xx/rest.debug for m's build-id; NULL when out of memory. */
static char *sym_debug_file(const struct tt_symbolizer *s, const struct sym_module *m)
{
	size_t n = strlen(s->debug_root) + sizeof("/.build-id//.debug") + 2 * m->build_id_len;
	char *p = malloc(n);

	if (!p)
		return NULL;
	int k = snprintf(p, n, "%s/.build-id/%02x/", s->debug_root, m->build_id[0]);
	for (size_t i = 1; i < m->build_id_len; i++)
		k += snprintf(p + k, n - (size_t)k, "%02x", m->build_id[i]);
	snprintf(p + k, n - (size_t)k, ".debug");
	return p;
}

/*
 * Opens m: the file at its path when its build-id is the recorded one (or none is
 * recorded), else the debug file named by the recorded build-id, which carries the
 * same symbols and addresses. Neither: m stays without a Dwfl and counts as missing.
 */
static void sym_module_open(struct tt_symbolizer *s, struct sym_module *m)
{
	Dwfl_Module *mod = NULL;
	Dwfl *dwfl = sym_report(s, m->path, &mod);

	if (dwfl && m->build_id_len > 0 && !sym_build_id_matches(mod, m)) {
		dwfl_end(dwfl);
		dwfl = NULL;
	}
	if (!dwfl && m->build_id_len > 0) {
		char *debug = sym_debug_file(s, m);
		if (debug) {
			dwfl = sym_report(s, debug, &mod);
			if (dwfl && !sym_build_id_matches(mod, m)) {
				dwfl_end(dwfl);
				dwfl = NULL;
			}
			free(debug);
		}
	}
	m->dwfl = dwfl;
	m->mod = dwfl ? mod : NULL;
	if (!dwfl)
		s->missing++;
}

static bool sym_module_slots_grow(struct tt_symbolizer *s)
{
	uint32_t cap = s->module_slots_cap ? s->module_slots_cap * 2 : SYM_MIN_TABLE;
	uint32_t *t = calloc(cap, sizeof(*t));

	if (!t)
		return false;
	for (uint32_t i = 0; i < s->nmodules; i++) {
		uint32_t j = (uint32_t)s->modules[i].hash & (cap - 1);
		while (t[j])
			j = (j + 1) & (cap - 1);
		t[j] = i + 1;
	}
	free(s->module_slots);
	s->module_slots = t;
	s->module_slots_cap = cap;
	return true;
}

/* Index of the module (path, build-id), opened on first use; -1 when out of memory. */
static int64_t sym_module_get(struct tt_symbolizer *s, const char *path, const uint8_t *build_id,
			      size_t build_id_len)
{
	uint64_t h = sym_module_hash(path, build_id, build_id_len);
	uint32_t mask = s->module_slots_cap - 1;
	uint32_t i = (uint32_t)h & mask;

	for (; s->module_slots && s->module_slots[i]; i = (i + 1) & mask) {
		struct sym_module *m = &s->modules[s->module_slots[i] - 1];
		if (m->hash == h && m->build_id_len == build_id_len &&
		    (build_id_len == 0 || memcmp(m->build_id, build_id, build_id_len) == 0) &&
		    strcmp(m->path, path) == 0)
			return s->module_slots[i] - 1;
	}

	if (s->nmodules == s->modules_cap) {
		uint32_t cap = s->modules_cap ? s->modules_cap * 2 : 8;
		struct sym_module *t = realloc(s->modules, cap * sizeof(*t));
		if (!t)
			return -1;
		s->modules = t;
		s->modules_cap = cap;
	}
	if (2 * (s->nmodules + 1) > s->module_slots_cap && !sym_module_slots_grow(s))
		return -1;

	struct sym_module *m = &s->modules[s->nmodules];
	*m = (struct sym_module){.hash = h, .build_id_len = build_id_len};
	m->path = strdup(path);
	m->build_id = malloc(build_id_len ? build_id_len : 1);
	if (!m->path || !m->build_id) {
		free(m->path);
		free(m->build_id);
		return -1;
	}
	if (build_id_len)
		memcpy(m->build_id, build_id, build_id_len);
	sym_module_open(s, m);

	mask = s->module_slots_cap - 1;
	for (i = (uint32_t)h & mask; s->module_slots[i]; i = (i + 1) & mask)
		;
	s->module_slots[i] = ++s->nmodules;
	return s->nmodules - 1;
}

/* ---- answers ---------------------------------------------------------------------------- */

static uint64_t sym_entry_hash(uint32_t module, uint64_t addr)
{
	return sym_mix(addr ^ ((uint64_t)module << 48));
}

static bool sym_cache_grow(struct tt_symbolizer *s)
{
	size_t cap = s->cache_cap ? s->cache_cap * 2 : 1024;
	struct sym_entry *t = calloc(cap, sizeof(*t));

	if (!t)
		return false;
	for (size_t i = 0; i < s->cache_cap; i++) {
		struct sym_entry *o = &s->cache[i];
		if (!o->module)
			continue;
		size_t j = sym_entry_hash(o->module, o->addr) & (cap - 1);
		while (t[j].module)
			j = (j + 1) & (cap - 1);
		t[j] = *o;
	}
	free(s->cache);
	s->cache = t;
	s->cache_cap = cap;
	return true;
}

/* Appends a frame to the symbolizer's frame store; false when out of memory. */
static bool sym_push(struct tt_symbolizer *s, const char *function, const char *file, unsigned line,
		     bool inlined)
{
	if (s->nframes == s->frames_cap) {
		size_t cap = s->frames_cap ? s->frames_cap * 2 : 1024;
		struct tt_sym_frame *t = realloc(s->frames, cap * sizeof(*t));
		if (!t)
			return false;
		s->frames = t;
		s->frames_cap = cap;
	}
	s->frames[s->nframes++] = (struct tt_sym_frame){
	    .function = function,
	    .file = file,
	    .line = file ? line : 0,
	    .inlined = inlined,
	};
	return true;
}

/* The name DWARF gives a subprogram or inlined subroutine: its linkage name
 * (demangled) when it has one, else its plain name; NULL when neither. */
static const char *sym_die_name(struct tt_symbolizer *s, Dwarf_Die *die, bool *from_linkage)
{
	Dwarf_Attribute attr;
	const char *name = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_linkage_name, &attr));

	if (!name)
		name = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &attr));
	*from_linkage = name != NULL;
	if (!name)
		name = dwarf_diename(die);
	return sym_intern_function(s, name);
}

/*
 * The real function's name: DWARF's linkage name; else the symbol table's when it is
 * a C++ name (qualified, unlike DW_AT_name); else DW_AT_name (no ".constprop.0"-style
 * clone suffix); else the symbol table's.
 */
static const char *sym_function_name(struct tt_symbolizer *s, Dwarf_Die *die, const char *symname)
{
	bool linkage = false;
	const char *dwname = die ? sym_die_name(s, die, &linkage) : NULL;

	if (linkage)
		return dwname;
	if (symname && strncmp(symname, "_Z", 2) == 0)
		return sym_intern_function(s, symname);
	return dwname ? dwname : sym_intern_function(s, symname);
}

/*
 * Appends the frames for addr in m to the store, innermost first; returns how many
 * (0 only when out of memory). Line information first gives the innermost location;
 * walking the DIEs that contain it outwards, each inlined subroutine is one frame
 * whose DW_AT_call_file/line is the location in the frame that follows, up to the
 * subprogram that holds the code (as eu-addr2line -i does).
 */
static uint32_t sym_resolve(struct tt_symbolizer *s, struct sym_module *m, uint64_t addr)
{
	size_t first = s->nframes;
	GElf_Off off;
	GElf_Sym sym;
	const char *symname = dwfl_module_addrinfo(m->mod, addr, &off, &sym, NULL, NULL, NULL);

	const char *file = NULL;
	unsigned line = 0;
	Dwfl_Line *dl = dwfl_module_getsrc(m->mod, addr);
	if (dl) {
		int lineno = 0;
		const char *src = dwfl_lineinfo(dl, NULL, &lineno, NULL, NULL, NULL);
		if (src && lineno > 0) {
			file = sym_intern_file(s, dwfl_line_comp_dir(dl), src);
			line = (unsigned)lineno;
		}
	}

	Dwarf_Addr bias = 0;
	Dwarf_Die *cudie = dwfl_module_addrdie(m->mod, addr, &bias);
	Dwarf_Die *scopes = NULL;
	int n = cudie ? dwarf_getscopes(cudie, addr - bias, &scopes) : 0;
	if (n > 0) {
		/* dwarf_getscopes continues past an inlined instance into its abstract
		 * origin's scopes; the concrete nesting is what the frames need. */
		Dwarf_Die inner = scopes[0];
		free(scopes);
		scopes = NULL;
		n = dwarf_getscopes_die(&inner, &scopes);
	}

	Dwarf_Files *files = NULL;
	const char *comp_dir = NULL;
	if (n > 0) {
		Dwarf_Die cu;
		Dwarf_Attribute attr;
		if (!dwarf_diecu(&scopes[0], &cu, NULL, NULL) ||
		    dwarf_getsrcfiles(&cu, &files, NULL) != 0)
			files = NULL;
		else
			comp_dir = dwarf_formstring(dwarf_attr(&cu, DW_AT_comp_dir, &attr));
	}

	Dwarf_Die *function = NULL;
	for (int i = 0; i < n; i++) {
		Dwarf_Die *die = &scopes[i];
		int tag = dwarf_tag(die);
		if (tag == DW_TAG_subprogram || tag == DW_TAG_entry_point) {
			function = die;
			break;
		}
		if (tag != DW_TAG_inlined_subroutine)
			continue;

		bool linkage;
		if (!sym_push(s, sym_die_name(s, die, &linkage), file, line, true))
			goto oom;
		/* Where it was inlined: the location in the frame that follows. */
		Dwarf_Attribute attr;
		Dwarf_Word val;
		file = NULL;
		line = 0;
		if (files && dwarf_formudata(dwarf_attr(die, DW_AT_call_file, &attr), &val) == 0)
			file = sym_intern_file(s, comp_dir, dwarf_filesrc(files, val, NULL, NULL));
		if (dwarf_formudata(dwarf_attr(die, DW_AT_call_line, &attr), &val) == 0)
			line = (unsigned)val;
	}
	if (!sym_push(s, sym_function_name(s, function, symname), file, line, false))
		goto oom;
	free(scopes);
	return (uint32_t)(s->nframes - first);
oom:
	free(scopes);
	s->nframes = first;
	return 0;
}

/* ---- public ----------------------------------------------------------------------------- */

struct tt_symbolizer *tt_symbolizer_create(const char *debug_root)
{
	struct tt_symbolizer *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->debug_root = strdup(debug_root ? debug_root : SYM_DEFAULT_DEBUG_ROOT);
	if (s->debug_root) {
		size_t n = strlen(s->debug_root) + sizeof(":.debug:");
		s->debuginfo_path = malloc(n);
		if (s->debuginfo_path)
			snprintf(s->debuginfo_path, n, ":.debug:%s", s->debug_root);
	}
	if (!s->debuginfo_path) {
		free(s->debug_root);
		free(s);
		return NULL;
	}
	/*
	 * Separate debug files: by build-id under every absolute element of the path
	 * (<root>/.build-id/xx/yy.debug, Debian's -dbgsym layout), by .gnu_debuglink
	 * name next to the module, in its .debug/ and under <root>/<its directory>.
	 */
	s->callbacks = (Dwfl_Callbacks){
	    .find_elf = dwfl_build_id_find_elf,
	    .find_debuginfo = dwfl_standard_find_debuginfo,
	    .section_address = dwfl_offline_section_address,
	    .debuginfo_path = &s->debuginfo_path,
	};
	return s;
}

void tt_symbolizer_destroy(struct tt_symbolizer *s)
{
	if (!s)
		return;
	for (uint32_t i = 0; i < s->nmodules; i++) {
		if (s->modules[i].dwfl)
			dwfl_end(s->modules[i].dwfl);
		free(s->modules[i].path);
		free(s->modules[i].build_id);
	}
	for (size_t i = 0; i < s->strings_cap; i++)
		free(s->strings[i].s);
	free(s->strings);
	free(s->modules);
	free(s->module_slots);
	free(s->cache);
	free(s->frames);
	free(s->debuginfo_path);
	free(s->debug_root);
	free(s);
}

/* The answer for a missing module, or when out of memory: no function. */
static unsigned sym_unknown(struct tt_sym_frame *out, unsigned cap)
{
	if (cap == 0)
		return 0;
	out[0] = (struct tt_sym_frame){0};
	return 1;
}

unsigned tt_symbolize(struct tt_symbolizer *s, const char *path, const uint8_t *build_id,
		      size_t build_id_len, uint64_t addr, bool return_address,
		      struct tt_sym_frame *out, unsigned cap)
{
	if (!build_id)
		build_id_len = 0;
	int64_t mi = sym_module_get(s, path, build_id, build_id_len);
	if (mi < 0 || !s->modules[mi].dwfl)
		return sym_unknown(out, cap);
	if (return_address && addr > 0)
		addr--;

	uint32_t module = (uint32_t)mi + 1;
	uint64_t h = sym_entry_hash(module, addr);
	struct sym_entry *e = NULL;
	if (s->cache_cap) {
		size_t mask = s->cache_cap - 1;
		for (size_t i = h & mask; s->cache[i].module; i = (i + 1) & mask) {
			if (s->cache[i].module == module && s->cache[i].addr == addr) {
				e = &s->cache[i];
				break;
			}
		}
	}
	if (!e) {
		if (2 * (s->cache_used + 1) > s->cache_cap && !sym_cache_grow(s))
			return sym_unknown(out, cap);
		size_t first = s->nframes;
		uint32_t count = sym_resolve(s, &s->modules[mi], addr);
		if (count == 0)
			return sym_unknown(out, cap);
		size_t mask = s->cache_cap - 1;
		size_t i = h & mask;
		while (s->cache[i].module)
			i = (i + 1) & mask;
		e = &s->cache[i];
		*e = (struct sym_entry){
		    .addr = addr, .module = module, .first = (uint32_t)first, .count = count};
		s->cache_used++;
	}

	unsigned n = e->count < cap ? e->count : cap;
	if (n)
		memcpy(out, &s->frames[e->first], n * sizeof(*out));
	return n;
}

unsigned tt_symbolizer_missing_modules(const struct tt_symbolizer *s)
{
	return s->missing;
}
