/* SPDX-License-Identifier: MIT */
/*
 * tt_symbolize against fixture.c built -g -O2 (libsymfix.so), a copy with another
 * build-id, a stripped copy and its separate debug file; odd files; the cache.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <ftw.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../src/analysis/symbolize.h"

#define MAX_FRAMES 16

static const char *env(const char *name)
{
	const char *v = getenv(name);
	cr_assert_not_null(v, "%s is not set (run through meson test)", name);
	return v;
}

/* path of a file in the fixture's build directory; static storage, one at a time. */
static const char *fixture_path(const char *file)
{
	static char buf[4096];
	snprintf(buf, sizeof(buf), "%s/%s", env("SYMFIX_DIR"), file);
	return buf;
}

/* The fixture's recorded build-id, from SYMFIX_BUILD_ID (hex). */
static size_t fixture_build_id(uint8_t *out, size_t cap)
{
	const char *hex = env("SYMFIX_BUILD_ID");
	size_t n = 0;
	for (; hex[0] && hex[1] && n < cap; hex += 2) {
		unsigned v;
		cr_assert_eq(sscanf(hex, "%2x", &v), 1);
		out[n++] = (uint8_t)v;
	}
	return n;
}

/* Line number of the "LINE:marker" comment in fixture.c. */
static unsigned source_line(const char *marker)
{
	char want[128], line[512];
	snprintf(want, sizeof(want), "LINE:%s ", marker);
	FILE *f = fopen(env("SYMFIX_SRC"), "r");
	cr_assert_not_null(f);
	unsigned n = 0, found = 0;
	while (!found && fgets(line, sizeof(line), f)) {
		n++;
		if (strstr(line, want))
			found = n;
	}
	fclose(f);
	cr_assert_neq(found, 0, "marker %s not in fixture.c", marker);
	return found;
}

static const char *base_name(const char *path)
{
	const char *slash = path ? strrchr(path, '/') : NULL;
	return slash ? slash + 1 : path;
}

/* The loaded fixture (libsymfix.so) and its load bias. */
static void *fixture_handle(uintptr_t *bias)
{
	static void *h;
	if (!h) {
		h = dlopen(fixture_path("libsymfix.so"), RTLD_NOW | RTLD_LOCAL);
		cr_assert_not_null(h, "dlopen: %s", dlerror());
	}
	struct link_map *lm = NULL;
	cr_assert_eq(dlinfo(h, RTLD_DI_LINKMAP, &lm), 0);
	*bias = lm->l_addr;
	return h;
}

/* Calls fixture function `name` and returns, as an ELF vaddr of the fixture, the
 * return address fixture_leaf saw: a call site inside `name`. */
static uint64_t call_site_of(const char *name)
{
	uintptr_t bias;
	void *h = fixture_handle(&bias);
	int (*fn)(int) = (int (*)(int))dlsym(h, name);
	void **ra = dlsym(h, "fixture_ra");
	cr_assert(fn && ra);
	*ra = NULL;
	fn(3);
	cr_assert_not_null(*ra);
	return (uint64_t)(uintptr_t)*ra - bias;
}

/* ELF vaddr of the fixture's symbol `name`. */
static uint64_t fixture_symbol(const char *name)
{
	uintptr_t bias;
	void *p = dlsym(fixture_handle(&bias), name);
	cr_assert_not_null(p, "%s", name);
	return (uint64_t)(uintptr_t)p - bias;
}

/*
 * A fresh debug root under TMPDIR; with_debug_file: it holds the fixture's debug file
 * as <root>/.build-id/xx/rest.debug (a -dbgsym package's layout). Returned in buf.
 */
static const char *make_debug_root(char *buf, size_t len, bool with_debug_file)
{
	snprintf(buf, len, "%s/symdbg-XXXXXX", env("TMPDIR"));
	cr_assert_not_null(mkdtemp(buf));
	if (!with_debug_file)
		return buf;
	const char *hex = env("SYMFIX_BUILD_ID");
	char dir[4096], link[4200];
	snprintf(dir, sizeof(dir), "%s/.build-id", buf);
	cr_assert_eq(mkdir(dir, 0755), 0);
	snprintf(dir, sizeof(dir), "%s/.build-id/%.2s", buf, hex);
	cr_assert_eq(mkdir(dir, 0755), 0);
	snprintf(link, sizeof(link), "%s/%s.debug", dir, hex + 2);
	cr_assert_eq(symlink(fixture_path("libsymfix.debug"), link), 0);
	return buf;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

/* Removes a debug root made by make_debug_root, and what a test put there. */
static void remove_tree(const char *root)
{
	cr_expect_eq(nftw(root, remove_entry, 8, FTW_DEPTH | FTW_PHYS), 0, "%s", root);
}

static void check_frame(const struct tt_sym_frame *f, const char *function, unsigned line,
			bool inlined)
{
	cr_assert_not_null(f->function);
	cr_expect_str_eq(f->function, function);
	cr_assert_not_null(f->file, "%s: no file", function);
	cr_expect_str_eq(base_name(f->file), "fixture.c");
	cr_expect_eq(f->line, line, "%s: line %u, want %u", function, f->line, line);
	cr_expect_eq(f->inlined, inlined, "%s: inlined %d", function, f->inlined);
}

Test(symbolize, plain_call_site)
{
	uint8_t id[64];
	size_t idlen = fixture_build_id(id, sizeof(id));
	char root[4096];
	struct tt_symbolizer *s = tt_symbolizer_create(make_debug_root(root, sizeof(root), false));
	struct tt_sym_frame f[MAX_FRAMES];

	unsigned n = tt_symbolize(s, fixture_path("libsymfix.so"), id, idlen,
				  call_site_of("fixture_plain"), true, f, MAX_FRAMES);
	cr_assert_eq(n, 1);
	check_frame(&f[0], "fixture_plain", source_line("plain_call"), false);
	cr_expect_eq(tt_symbolizer_missing_modules(s), 0);
	remove_tree(root);
	tt_symbolizer_destroy(s);
}

Test(symbolize, inline_chain)
{
	uint8_t id[64];
	size_t idlen = fixture_build_id(id, sizeof(id));
	struct tt_symbolizer *s = tt_symbolizer_create(NULL);
	struct tt_sym_frame f[MAX_FRAMES];

	unsigned n = tt_symbolize(s, fixture_path("libsymfix.so"), id, idlen,
				  call_site_of("fixture_outer"), true, f, MAX_FRAMES);
	cr_assert_eq(n, 2);
	check_frame(&f[0], "fixture_inl", source_line("inl_call"), true);
	check_frame(&f[1], "fixture_outer", source_line("outer_call"), false);

	/* cap 1 keeps the innermost; cap 0 writes nothing. */
	struct tt_sym_frame one;
	n = tt_symbolize(s, fixture_path("libsymfix.so"), id, idlen, call_site_of("fixture_outer"),
			 true, &one, 1);
	cr_assert_eq(n, 1);
	cr_expect_eq(one.function, f[0].function);
	cr_expect_eq(tt_symbolize(s, fixture_path("libsymfix.so"), id, idlen,
				  call_site_of("fixture_outer"), true, NULL, 0),
		     0);
	tt_symbolizer_destroy(s);
}

Test(symbolize, function_entry_and_cxx_name)
{
	struct tt_symbolizer *s = tt_symbolizer_create(NULL);
	struct tt_sym_frame f[MAX_FRAMES];

	/* Not a return address: the entry itself is looked up. */
	unsigned n = tt_symbolize(s, fixture_path("libsymfix.so"), NULL, 0,
				  fixture_symbol("fixture_leaf"), false, f, MAX_FRAMES);
	cr_assert_eq(n, 1);
	cr_assert_not_null(f[0].function);
	cr_expect_str_eq(f[0].function, "fixture_leaf");
	cr_expect_str_eq(base_name(f[0].file), "fixture.c");
	cr_expect_gt(f[0].line, 0);

	n = tt_symbolize(s, fixture_path("libsymfix.so"), NULL, 0,
			 fixture_symbol("_ZN2tt7fixture3addEii"), false, f, MAX_FRAMES);
	cr_assert_eq(n, 1);
	cr_assert_not_null(f[0].function);
	cr_expect_str_eq(f[0].function, "tt::fixture::add(int, int)");
	cr_expect_str_eq(base_name(f[0].file), "fixture.c");
	tt_symbolizer_destroy(s);
}

Test(symbolize, stripped_names_from_dynsym)
{
	uint8_t id[64];
	size_t idlen = fixture_build_id(id, sizeof(id));
	char root[4096];
	struct tt_symbolizer *s = tt_symbolizer_create(make_debug_root(root, sizeof(root), false));
	struct tt_sym_frame f[MAX_FRAMES];
	const char *path = fixture_path("libsymfix-stripped.so");
	char stripped[4096];
	snprintf(stripped, sizeof(stripped), "%s", path);

	unsigned n = tt_symbolize(s, stripped, id, idlen, call_site_of("fixture_plain"), true, f,
				  MAX_FRAMES);
	cr_assert_eq(n, 1);
	cr_assert_not_null(f[0].function);
	cr_expect_str_eq(f[0].function, "fixture_plain");
	cr_expect_null(f[0].file);
	cr_expect_eq(f[0].line, 0);

	/* No DWARF: no inline frame either, the symbol that holds the code. */
	n = tt_symbolize(s, stripped, id, idlen, call_site_of("fixture_outer"), true, f,
			 MAX_FRAMES);
	cr_assert_eq(n, 1);
	cr_expect_str_eq(f[0].function, "fixture_outer");
	cr_expect_eq(f[0].inlined, false);

	n = tt_symbolize(s, stripped, id, idlen, fixture_symbol("_ZN2tt7fixture3addEii"), false, f,
			 MAX_FRAMES);
	cr_assert_eq(n, 1);
	cr_assert_not_null(f[0].function);
	cr_expect_str_eq(f[0].function, "tt::fixture::add(int, int)");
	cr_expect_eq(tt_symbolizer_missing_modules(s), 0);
	remove_tree(root);
	tt_symbolizer_destroy(s);
}

Test(symbolize, stripped_with_debug_file_by_build_id)
{
	uint8_t id[64];
	size_t idlen = fixture_build_id(id, sizeof(id));
	char root[4096];
	struct tt_symbolizer *s = tt_symbolizer_create(make_debug_root(root, sizeof(root), true));
	struct tt_sym_frame f[MAX_FRAMES];
	char stripped[4096];
	snprintf(stripped, sizeof(stripped), "%s", fixture_path("libsymfix-stripped.so"));

	unsigned n = tt_symbolize(s, stripped, id, idlen, call_site_of("fixture_outer"), true, f,
				  MAX_FRAMES);
	cr_assert_eq(n, 2);
	check_frame(&f[0], "fixture_inl", source_line("inl_call"), true);
	check_frame(&f[1], "fixture_outer", source_line("outer_call"), false);
	remove_tree(root);
	tt_symbolizer_destroy(s);
}

Test(symbolize, build_id_mismatch_is_missing)
{
	uint8_t id[64];
	size_t idlen = fixture_build_id(id, sizeof(id));
	char root[4096];
	struct tt_symbolizer *s = tt_symbolizer_create(make_debug_root(root, sizeof(root), false));
	struct tt_sym_frame f[MAX_FRAMES];
	char rebuilt[4096];
	snprintf(rebuilt, sizeof(rebuilt), "%s", fixture_path("libsymfix_rebuilt.so"));

	for (int i = 0; i < 3; i++) {
		unsigned n = tt_symbolize(s, rebuilt, id, idlen, call_site_of("fixture_plain") + i,
					  true, f, MAX_FRAMES);
		cr_assert_eq(n, 1);
		cr_expect_null(f[0].function);
		cr_expect_null(f[0].file);
		cr_expect_eq(f[0].line, 0);
	}
	cr_expect_eq(tt_symbolizer_missing_modules(s), 1);

	/* No recorded build-id: the path is trusted. */
	unsigned n =
	    tt_symbolize(s, rebuilt, NULL, 0, call_site_of("fixture_plain"), true, f, MAX_FRAMES);
	cr_assert_eq(n, 1);
	cr_assert_not_null(f[0].function);
	cr_expect_str_eq(f[0].function, "fixture_plain");
	cr_expect_eq(tt_symbolizer_missing_modules(s), 1);
	remove_tree(root);
	tt_symbolizer_destroy(s);
}

Test(symbolize, build_id_mismatch_uses_debug_file)
{
	uint8_t id[64];
	size_t idlen = fixture_build_id(id, sizeof(id));
	char root[4096];
	struct tt_symbolizer *s = tt_symbolizer_create(make_debug_root(root, sizeof(root), true));
	struct tt_sym_frame f[MAX_FRAMES];
	char rebuilt[4096];
	snprintf(rebuilt, sizeof(rebuilt), "%s", fixture_path("libsymfix_rebuilt.so"));

	unsigned n =
	    tt_symbolize(s, rebuilt, id, idlen, call_site_of("fixture_plain"), true, f, MAX_FRAMES);
	cr_assert_eq(n, 1);
	check_frame(&f[0], "fixture_plain", source_line("plain_call"), false);
	cr_expect_eq(tt_symbolizer_missing_modules(s), 0);

	/* The module file gone altogether: the debug file still answers. */
	n = tt_symbolize(s, "/nonexistent/libsymfix.so", id, idlen, call_site_of("fixture_outer"),
			 true, f, MAX_FRAMES);
	cr_assert_eq(n, 2);
	check_frame(&f[1], "fixture_outer", source_line("outer_call"), false);
	cr_expect_eq(tt_symbolizer_missing_modules(s), 0);
	remove_tree(root);
	tt_symbolizer_destroy(s);
}

static void write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	cr_assert_not_null(f, "%s", path);
	cr_assert_eq(fwrite(data, 1, len, f), len);
	cr_assert_eq(fclose(f), 0);
}

Test(symbolize, odd_files_are_missing)
{
	uint8_t id[64];
	size_t idlen = fixture_build_id(id, sizeof(id));
	char root[4096];
	make_debug_root(root, sizeof(root), false);
	struct tt_symbolizer *s = tt_symbolizer_create(root);
	struct tt_sym_frame f[MAX_FRAMES];

	/* The fixture's bytes, to cut short. */
	FILE *in = fopen(fixture_path("libsymfix.so"), "rb");
	cr_assert_not_null(in);
	static unsigned char elf[1 << 20];
	size_t elf_len = fread(elf, 1, sizeof(elf), in);
	fclose(in);
	cr_assert_gt(elf_len, 4096);

	char empty[4200], dir[4200], text[4200], header[4200], half[4200], fifo[4200];
	snprintf(empty, sizeof(empty), "%s/empty.so", root);
	snprintf(dir, sizeof(dir), "%s/dir.so", root);
	snprintf(text, sizeof(text), "%s/text.so", root);
	snprintf(header, sizeof(header), "%s/header.so", root);
	snprintf(half, sizeof(half), "%s/half.so", root);
	snprintf(fifo, sizeof(fifo), "%s/fifo.so", root);
	write_file(empty, "", 0);
	cr_assert_eq(mkdir(dir, 0755), 0);
	write_file(text, "not an ELF file\n", 16);
	write_file(header, elf, 64);
	write_file(half, elf, elf_len / 2);
	cr_assert_eq(mkfifo(fifo, 0600), 0); /* opening it for reading would block */

	const char *missing[] = {"/nonexistent/libnothing.so", empty, dir, text, header, fifo};
	unsigned nmissing = sizeof(missing) / sizeof(missing[0]);
	uint64_t addr = fixture_symbol("fixture_plain");
	for (unsigned i = 0; i < nmissing; i++) {
		for (int with_id = 0; with_id < 2; with_id++) {
			f[0].function = "x";
			unsigned n = tt_symbolize(s, missing[i], id, with_id ? idlen : 0, addr,
						  true, f, MAX_FRAMES);
			cr_assert_eq(n, 1, "%s", missing[i]);
			cr_expect_null(f[0].function, "%s", missing[i]);
			cr_expect_null(f[0].file, "%s", missing[i]);
		}
	}
	cr_expect_eq(tt_symbolizer_missing_modules(s), 2 * nmissing);

	/* Half an ELF file: whatever it gives, one frame at least and no crash. */
	for (uint64_t a = 0; a < 0x4000; a += 0x3f)
		cr_assert_geq(tt_symbolize(s, half, NULL, 0, a, true, f, MAX_FRAMES), 1);
	cr_assert_geq(tt_symbolize(s, half, id, idlen, addr, true, f, MAX_FRAMES), 1);
	remove_tree(root);
	tt_symbolizer_destroy(s);
}

/* std::chrono::system_clock::now from libstdc++ as this process loaded it: a C++
 * library's exported names come from .dynsym, demangled. */
Test(symbolize, libstdcxx_demangled)
{
	const char *mangled = "_ZNSt6chrono3_V212system_clock3nowEv";
	void *p = dlsym(RTLD_DEFAULT, mangled);
	if (!p) {
		void *h = dlopen("libstdc++.so.6", RTLD_NOW | RTLD_LOCAL);
		cr_assert_not_null(h, "dlopen libstdc++: %s", dlerror());
		p = dlsym(h, mangled);
	}
	cr_assert_not_null(p);
	Dl_info info;
	struct link_map *lm = NULL;
	cr_assert_neq(dladdr1(p, &info, (void **)&lm, RTLD_DL_LINKMAP), 0);

	char root[4096];
	struct tt_symbolizer *s = tt_symbolizer_create(make_debug_root(root, sizeof(root), false));
	struct tt_sym_frame f[MAX_FRAMES];
	uint64_t addr = (uint64_t)(uintptr_t)p - lm->l_addr;
	unsigned n = tt_symbolize(s, info.dli_fname, NULL, 0, addr, false, f, MAX_FRAMES);
	cr_assert_geq(n, 1);
	cr_assert_not_null(f[n - 1].function, "%s", info.dli_fname);
	cr_expect_str_eq(f[n - 1].function, "std::chrono::_V2::system_clock::now()");
	remove_tree(root);
	tt_symbolizer_destroy(s);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

Test(symbolize, cache_returns_same_strings)
{
	uint8_t id[64];
	size_t idlen = fixture_build_id(id, sizeof(id));
	struct tt_symbolizer *s = tt_symbolizer_create(NULL);
	struct tt_sym_frame a[MAX_FRAMES], b[MAX_FRAMES];
	const char *path = fixture_path("libsymfix.so");
	uint64_t addrs[4] = {
	    call_site_of("fixture_plain"),
	    call_site_of("fixture_outer"),
	    fixture_symbol("fixture_leaf"),
	    fixture_symbol("_ZN2tt7fixture3addEii"),
	};

	unsigned na = tt_symbolize(s, path, id, idlen, addrs[1], true, a, MAX_FRAMES);
	unsigned nb = tt_symbolize(s, path, id, idlen, addrs[1], true, b, MAX_FRAMES);
	cr_assert_eq(na, 2);
	cr_assert_eq(nb, na);
	for (unsigned i = 0; i < na; i++) {
		cr_expect_eq(a[i].function, b[i].function);
		cr_expect_eq(a[i].file, b[i].file);
		cr_expect_eq(a[i].line, b[i].line);
	}
	/* Interned: the same file name from two different addresses is one pointer. */
	tt_symbolize(s, path, id, idlen, addrs[0], true, b, MAX_FRAMES);
	cr_expect_eq(a[0].file, b[0].file);

	/* A million frames over few addresses: all cache hits, answers unchanged. A
	 * path built per call, as a reader would, so no pointer identity is relied on.
	 * The time is logged, never asserted (shared machines are noisy). */
	char copy[4096];
	snprintf(copy, sizeof(copy), "%s", path);
	double t0 = now_s();
	unsigned long frames = 0;
	for (unsigned i = 0; i < 1000000; i++)
		frames +=
		    tt_symbolize(s, copy, id, idlen, addrs[i & 3], (i & 3) < 2, b, MAX_FRAMES);
	double dt = now_s() - t0;
	cr_log_info("1e6 cached lookups: %.1f ms (%.0f ns each)", dt * 1e3, dt * 1e3);
	cr_expect_eq(frames, 1000000ul + 250000ul); /* fixture_outer's answer is 2 frames */
	tt_symbolizer_destroy(s);
}
