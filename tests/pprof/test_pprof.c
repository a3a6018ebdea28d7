/* SPDX-License-Identifier: MIT */
/* tt_pprof: profiles written, gunzipped and decoded back with protobuf-c, and read by
 * `go tool pprof` where it is installed. */
#define _GNU_SOURCE
#include "../../src/analysis/pprof.h"
#include "profile.pb-c.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

typedef Perftools__Profiles__Profile Profile;

static const char *tmpdir(void)
{
	const char *t = getenv("TMPDIR");
	return t && t[0] ? t : "/tmp";
}

static char *tmp_path(const char *name)
{
	char *path;
	cr_assert(asprintf(&path, "%s/pprof-%ld-%s", tmpdir(), (long)getpid(), name) > 0);
	return path;
}

/* gunzip and decode path; the caller frees with perftools__profiles__profile__free_unpacked. */
static Profile *read_profile(const char *path)
{
	FILE *f = fopen(path, "rb");
	cr_assert_not_null(f, "%s", path);
	unsigned char magic[2];
	cr_assert_eq(fread(magic, 1, 2, f), 2);
	cr_assert(magic[0] == 0x1f && magic[1] == 0x8b, "%s: not gzip", path);
	fclose(f);

	gzFile gz = gzopen(path, "rb");
	cr_assert_not_null(gz);
	size_t cap = 1 << 16, len = 0;
	unsigned char *buf = malloc(cap);
	for (;;) {
		if (cap - len < 4096)
			cr_assert_not_null(buf = realloc(buf, cap *= 2));
		int n = gzread(gz, buf + len, (unsigned)(cap - len));
		cr_assert_geq(n, 0, "gzread");
		if (n == 0)
			break;
		len += (size_t)n;
	}
	cr_assert_eq(gzclose(gz), Z_OK);
	Profile *pr = perftools__profiles__profile__unpack(NULL, len, buf);
	free(buf);
	cr_assert_not_null(pr, "%s: protobuf does not decode", path);
	return pr;
}

static const char *str(const Profile *pr, int64_t i)
{
	cr_assert(i >= 0 && (size_t)i < pr->n_string_table, "string index %lld", (long long)i);
	return pr->string_table[i];
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Ids are 1..n in order, every reference resolves, strings are unique. */
static void check_consistent(const Profile *pr)
{
	cr_assert_geq(pr->n_string_table, 1);
	cr_assert_str_eq(pr->string_table[0], "");
	char **sorted = malloc(pr->n_string_table * sizeof(*sorted));
	cr_assert_not_null(sorted);
	memcpy(sorted, pr->string_table, pr->n_string_table * sizeof(*sorted));
	qsort(sorted, pr->n_string_table, sizeof(*sorted), cmp_str);
	for (size_t i = 1; i < pr->n_string_table; i++)
		cr_assert_str_neq(sorted[i - 1], sorted[i], "'%s' interned twice", sorted[i]);
	free(sorted);
	for (size_t i = 0; i < pr->n_mapping; i++) {
		cr_assert_eq(pr->mapping[i]->id, i + 1);
		str(pr, pr->mapping[i]->filename);
		str(pr, pr->mapping[i]->build_id);
	}
	for (size_t i = 0; i < pr->n_function; i++) {
		const Perftools__Profiles__Function *f = pr->function[i];
		cr_assert_eq(f->id, i + 1);
		cr_assert_str_neq(str(pr, f->name), "");
		cr_assert_eq(f->name, f->system_name);
		str(pr, f->filename);
	}
	for (size_t i = 0; i < pr->n_location; i++) {
		const Perftools__Profiles__Location *l = pr->location[i];
		cr_assert_eq(l->id, i + 1);
		cr_assert_leq(l->mapping_id, pr->n_mapping);
		for (size_t j = 0; j < l->n_line; j++) {
			cr_assert(l->line[j]->function_id >= 1 &&
				  l->line[j]->function_id <= pr->n_function);
			cr_assert_geq(l->line[j]->line, 0);
		}
	}
	for (size_t i = 0; i < pr->n_sample; i++) {
		cr_assert_eq(pr->sample[i]->n_value, TT_PPROF_VALUES);
		for (size_t j = 0; j < pr->sample[i]->n_location_id; j++)
			cr_assert(pr->sample[i]->location_id[j] >= 1 &&
				  pr->sample[i]->location_id[j] <= pr->n_location);
	}
	for (size_t i = 0; i < pr->n_comment; i++)
		str(pr, pr->comment[i]);
}

static const Perftools__Profiles__Location *loc(const Profile *pr, uint64_t id)
{
	cr_assert(id >= 1 && id <= pr->n_location);
	return pr->location[id - 1];
}

static const char *line_func(const Profile *pr, const Perftools__Profiles__Line *ln)
{
	return str(pr, pr->function[ln->function_id - 1]->name);
}

static const char *line_file(const Profile *pr, const Perftools__Profiles__Line *ln)
{
	return str(pr, pr->function[ln->function_id - 1]->filename);
}

/* The fixture: an executable and a library, inline frames, unknown functions and an
 * address outside every module. */
#define APP_START 0x400000ull
#define LIB_START 0x7f0000000000ull
#define LIB_OFF	  0x1000ull
#define APP_BUILD "5f0c3e1a9b7d2c4e6f8091a2b3c4d5e6f7081920"
#define LIB_BUILD "0123456789abcdef0123456789abcdef01234567"

static const struct tt_pprof_line lines_inline[] = {
    {"inner_inline", "app.c", 10},
    {"make_node", "app.c", 42},
};
static const struct tt_pprof_line lines_main[] = {{"main", "app.c", 100}};
static const struct tt_pprof_line lines_foo[] = {{"foo_alloc", "foo.c", 7}};
static const struct tt_pprof_line lines_nofunc[] = {{NULL, "bar.c", 3}};

#define APP(addr, l, n)                                                                            \
	{                                                                                          \
		addr, "/usr/bin/app", APP_START, APP_START + 0x100000, 0, APP_BUILD, n, l          \
	}
#define LIB(addr, l, n)                                                                            \
	{                                                                                          \
		addr, "/usr/lib/libfoo.so", LIB_START, LIB_START + 0x200000, LIB_OFF, LIB_BUILD,   \
		    n, l                                                                           \
	}

static const struct tt_pprof_location L_inline = APP(0x401000, lines_inline, 2);
static const struct tt_pprof_location L_main = APP(0x402000, lines_main, 1);
static const struct tt_pprof_location L_nofunc = APP(0x403000, lines_nofunc, 1);
static const struct tt_pprof_location L_foo = LIB(LIB_START + 0x1234, lines_foo, 1);
static const struct tt_pprof_location L_foo_unknown = LIB(LIB_START + 0x5678, NULL, 0);
static const struct tt_pprof_location L_nomod = {0xdeadbeef, NULL, 0, 0, 0, NULL, 0, NULL};

static const int64_t V1[4] = {100, 1, 50, 1};
static const int64_t V2[4] = {2000, 20, 0, 0};
static const int64_t V3[4] = {300000, 3, 300000, 3};
static const int64_t V4[4] = {7, 1, 7, 1};
static const int64_t V5[4] = {64, 2, 0, 0};

static struct tt_pprof *fixture(void)
{
	struct tt_pprof *p = tt_pprof_create();
	cr_assert_not_null(p);
	const struct tt_pprof_location s1[] = {L_inline, L_main};
	const struct tt_pprof_location s2[] = {L_inline, L_foo, L_main};
	const struct tt_pprof_location s3[] = {L_foo_unknown, L_foo, L_main};
	const struct tt_pprof_location s4[] = {L_nomod, L_main};
	const struct tt_pprof_location s5[] = {L_nofunc, L_main};
	cr_assert_eq(tt_pprof_add_sample(p, s1, 2, V1), 0);
	cr_assert_eq(tt_pprof_add_sample(p, s2, 3, V2), 0);
	cr_assert_eq(tt_pprof_add_sample(p, s3, 3, V3), 0);
	cr_assert_eq(tt_pprof_add_sample(p, s4, 2, V4), 0);
	cr_assert_eq(tt_pprof_add_sample(p, s5, 2, V5), 0);
	cr_assert_eq(tt_pprof_add_comment(p, "sampling: every 512 KiB on average"), 0);
	cr_assert_eq(tt_pprof_add_comment(p, "dropped events: 0"), 0);
	tt_pprof_set_time(p, 1700000000123456789ll, 2500000000ll);
	return p;
}

static char *write_fixture(const char *name)
{
	struct tt_pprof *p = fixture();
	char *path = tmp_path(name);
	char err[512] = "";
	cr_assert_eq(tt_pprof_write(p, path, err, sizeof(err)), 0, "%s", err);
	tt_pprof_destroy(p);
	return path;
}

Test(pprof, header_and_types)
{
	char *path = write_fixture("types.pb.gz");
	Profile *pr = read_profile(path);
	check_consistent(pr);
	static const char *const want[] = {"alloc_space", "bytes", "alloc_objects", "count",
					   "inuse_space", "bytes", "inuse_objects", "count"};
	cr_assert_eq(pr->n_sample_type, 4);
	for (unsigned i = 0; i < 4; i++) {
		cr_assert_str_eq(str(pr, pr->sample_type[i]->type), want[2 * i]);
		cr_assert_str_eq(str(pr, pr->sample_type[i]->unit), want[2 * i + 1]);
	}
	cr_assert_str_eq(str(pr, pr->default_sample_type), "alloc_space");
	cr_assert_not_null(pr->period_type);
	cr_assert_str_eq(str(pr, pr->period_type->type), "space");
	cr_assert_str_eq(str(pr, pr->period_type->unit), "bytes");
	cr_assert_eq(pr->period, 1);
	cr_assert_eq(pr->time_nanos, 1700000000123456789ll);
	cr_assert_eq(pr->duration_nanos, 2500000000ll);
	cr_assert_eq(pr->n_comment, 2);
	cr_assert_str_eq(str(pr, pr->comment[0]), "sampling: every 512 KiB on average");
	cr_assert_str_eq(str(pr, pr->comment[1]), "dropped events: 0");
	perftools__profiles__profile__free_unpacked(pr, NULL);
	unlink(path);
	free(path);
}

Test(pprof, samples_locations_lines)
{
	char *path = write_fixture("samples.pb.gz");
	Profile *pr = read_profile(path);
	check_consistent(pr);

	const int64_t *want[] = {V1, V2, V3, V4, V5};
	const size_t nlocs[] = {2, 3, 3, 2, 2};
	cr_assert_eq(pr->n_sample, 5);
	for (size_t i = 0; i < 5; i++) {
		cr_assert_eq(pr->sample[i]->n_location_id, nlocs[i]);
		for (unsigned j = 0; j < 4; j++)
			cr_assert_eq(pr->sample[i]->value[j], want[i][j], "sample %zu value %u", i,
				     j);
	}
	/* 6 distinct (address, module) pairs, shared between samples. */
	cr_assert_eq(pr->n_location, 6);
	const Perftools__Profiles__Sample *const *s = (const void *)pr->sample;
	cr_assert_eq(s[0]->location_id[0], s[1]->location_id[0], "same leaf, same location");
	cr_assert_eq(s[1]->location_id[1], s[2]->location_id[1]);
	for (size_t i = 1; i < 5; i++)
		cr_assert_eq(s[i]->location_id[s[i]->n_location_id - 1], s[0]->location_id[1]);

	/* Leaf first, inline frames innermost first, runtime addresses. */
	const Perftools__Profiles__Location *l = loc(pr, s[0]->location_id[0]);
	cr_assert_eq(l->address, 0x401000);
	cr_assert_eq(l->n_line, 2);
	cr_assert_str_eq(line_func(pr, l->line[0]), "inner_inline");
	cr_assert_eq(l->line[0]->line, 10);
	cr_assert_str_eq(line_func(pr, l->line[1]), "make_node");
	cr_assert_eq(l->line[1]->line, 42);
	cr_assert_str_eq(line_file(pr, l->line[1]), "app.c");
	cr_assert_eq(l->line[0]->function_id != l->line[1]->function_id, true);
	l = loc(pr, s[0]->location_id[1]);
	cr_assert_eq(l->address, 0x402000);
	cr_assert_str_eq(line_func(pr, l->line[0]), "main");

	/* Unknown function in a known module: synthetic module+file-offset name. */
	l = loc(pr, s[2]->location_id[0]);
	cr_assert_eq(l->address, LIB_START + 0x5678);
	cr_assert_eq(l->n_line, 1);
	cr_assert_str_eq(line_func(pr, l->line[0]), "libfoo.so+0x6678");
	cr_assert_str_eq(line_file(pr, l->line[0]), "");
	cr_assert_eq(l->line[0]->line, 0);
	/* Unknown function, known file and line: both kept. */
	l = loc(pr, s[4]->location_id[0]);
	cr_assert_str_eq(line_func(pr, l->line[0]), "app+0x3000");
	cr_assert_str_eq(line_file(pr, l->line[0]), "bar.c");
	cr_assert_eq(l->line[0]->line, 3);
	/* Outside every module: no mapping, the address as the function's name. */
	l = loc(pr, s[3]->location_id[0]);
	cr_assert_eq(l->address, 0xdeadbeef);
	cr_assert_eq(l->mapping_id, 0);
	cr_assert_eq(l->n_line, 1);
	cr_assert_str_eq(line_func(pr, l->line[0]), "0xdeadbeef");

	/* Functions: one per (name, file). */
	cr_assert_eq(pr->n_function, 7);
	perftools__profiles__profile__free_unpacked(pr, NULL);
	unlink(path);
	free(path);
}

Test(pprof, mappings)
{
	char *path = write_fixture("mappings.pb.gz");
	Profile *pr = read_profile(path);
	check_consistent(pr);
	cr_assert_eq(pr->n_mapping, 2);
	const Perftools__Profiles__Mapping *app = pr->mapping[0], *lib = pr->mapping[1];
	cr_assert_str_eq(str(pr, app->filename), "/usr/bin/app");
	cr_assert_str_eq(str(pr, app->build_id), APP_BUILD);
	cr_assert_eq(app->memory_start, APP_START);
	cr_assert_eq(app->memory_limit, APP_START + 0x100000);
	cr_assert_eq(app->file_offset, 0);
	cr_assert(app->has_functions && app->has_filenames && app->has_line_numbers &&
		  app->has_inline_frames);
	cr_assert_str_eq(str(pr, lib->filename), "/usr/lib/libfoo.so");
	cr_assert_str_eq(str(pr, lib->build_id), LIB_BUILD);
	cr_assert_eq(lib->memory_start, LIB_START);
	cr_assert_eq(lib->memory_limit, LIB_START + 0x200000);
	cr_assert_eq(lib->file_offset, LIB_OFF);
	cr_assert(lib->has_functions && lib->has_filenames && lib->has_line_numbers);
	cr_assert_not(lib->has_inline_frames);
	for (size_t i = 0; i < pr->n_location; i++) {
		const Perftools__Profiles__Location *l = pr->location[i];
		if (l->mapping_id == 1)
			cr_assert(l->address >= APP_START && l->address < app->memory_limit);
		if (l->mapping_id == 2)
			cr_assert(l->address >= LIB_START && l->address < lib->memory_limit);
	}
	perftools__profiles__profile__free_unpacked(pr, NULL);
	unlink(path);
	free(path);
}

/* A module nothing was found in: flags say so, so pprof may symbolize it itself. */
Test(pprof, unsymbolized_module)
{
	struct tt_pprof *p = tt_pprof_create();
	cr_assert_not_null(p);
	const struct tt_pprof_location l = {0x5000, "/opt/stripped.so", 0x4000, 0x8000, 0, "", 0,
					    NULL};
	const int64_t v[4] = {1, 1, 1, 1};
	cr_assert_eq(tt_pprof_add_sample(p, &l, 1, v), 0);
	char *path = tmp_path("stripped.pb.gz");
	char err[512];
	cr_assert_eq(tt_pprof_write(p, path, err, sizeof(err)), 0, "%s", err);
	tt_pprof_destroy(p);
	Profile *pr = read_profile(path);
	check_consistent(pr);
	cr_assert_eq(pr->n_mapping, 1);
	cr_assert_not(pr->mapping[0]->has_functions || pr->mapping[0]->has_filenames ||
		      pr->mapping[0]->has_line_numbers || pr->mapping[0]->has_inline_frames);
	cr_assert_eq(pr->mapping[0]->build_id, 0);
	cr_assert_str_eq(line_func(pr, pr->location[0]->line[0]), "stripped.so+0x1000");
	perftools__profiles__profile__free_unpacked(pr, NULL);
	unlink(path);
	free(path);
}

Test(pprof, empty_profile)
{
	struct tt_pprof *p = tt_pprof_create();
	cr_assert_not_null(p);
	char *path = tmp_path("empty.pb.gz");
	char err[512];
	cr_assert_eq(tt_pprof_write(p, path, err, sizeof(err)), 0, "%s", err);
	tt_pprof_destroy(p);
	tt_pprof_destroy(NULL);
	Profile *pr = read_profile(path);
	check_consistent(pr);
	cr_assert_eq(pr->n_sample, 0);
	cr_assert_eq(pr->n_sample_type, 4);
	perftools__profiles__profile__free_unpacked(pr, NULL);
	unlink(path);
	free(path);
}

Test(pprof, unwritable_path)
{
	struct tt_pprof *p = fixture();
	char *path = tmp_path("no-such-dir/out.pb.gz");
	char err[512] = "";
	cr_assert_eq(tt_pprof_write(p, path, err, sizeof(err)), -1);
	cr_assert_not_null(strstr(err, path), "message names the path: %s", err);
	cr_assert_not_null(strstr(err, "No such file or directory"), "%s", err);
	/* A directory in the way of the rename: the temporary file is removed. */
	char *dir = tmp_path("a-directory");
	cr_assert_eq(mkdir(dir, 0755), 0);
	char sub[600];
	snprintf(sub, sizeof(sub), "%s/x", dir);
	cr_assert_eq(mkdir(sub, 0755), 0); /* non-empty: rename onto it fails */
	err[0] = '\0';
	cr_assert_eq(tt_pprof_write(p, dir, err, sizeof(err)), -1);
	cr_assert_not_null(strstr(err, dir), "%s", err);
	cr_assert_not_null(strstr(err, "rename"), "%s", err);
	char tmp[600];
	snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", dir, (long)getpid());
	cr_assert_neq(access(tmp, F_OK), 0, "temporary file left behind");
	rmdir(sub);
	rmdir(dir);
	/* Tiny or absent err buffers are fine. */
	cr_assert_eq(tt_pprof_write(p, path, err, 8), -1);
	cr_assert_eq(strlen(err), 7);
	cr_assert_eq(tt_pprof_write(p, path, NULL, 0), -1);
	tt_pprof_destroy(p);
	free(dir);
	free(path);
}

Test(pprof, replaces_existing)
{
	char *path = tmp_path("replace.pb.gz");
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs("old contents", f);
	fclose(f);
	struct tt_pprof *p = fixture();
	char err[512];
	cr_assert_eq(tt_pprof_write(p, path, err, sizeof(err)), 0, "%s", err);
	tt_pprof_destroy(p);
	Profile *pr = read_profile(path);
	cr_assert_eq(pr->n_sample, 5);
	perftools__profiles__profile__free_unpacked(pr, NULL);
	unlink(path);
	free(path);
}

/* Many samples, deep stacks, a bounded set of addresses: shared, and fast. */
Test(pprof, many_samples, .timeout = 120)
{
	enum { NSAMPLES = 200000, DEPTH = 64, NADDR = 5000, NFUNC = 1500 };
	struct tt_pprof *p = tt_pprof_create();
	cr_assert_not_null(p);
	static char names[NFUNC][32];
	for (unsigned i = 0; i < NFUNC; i++)
		snprintf(names[i], sizeof(names[i]), "fn_%u", i);
	static struct tt_pprof_line lines[NADDR];
	for (unsigned i = 0; i < NADDR; i++)
		lines[i] = (struct tt_pprof_line){names[i % NFUNC], "big.c", 1 + i};
	struct tt_pprof_location stack[DEPTH];
	uint64_t seed = 42;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (unsigned s = 0; s < NSAMPLES; s++) {
		for (unsigned d = 0; d < DEPTH; d++) {
			seed = seed * 6364136223846793005ull + 1442695040888963407ull;
			unsigned a = (unsigned)(seed >> 33) % NADDR;
			stack[d] = (struct tt_pprof_location){
			    0x400000 + 16 * a, "/usr/bin/big", 0x400000, 0x500000, 0, "ab", 1,
			    &lines[a]};
		}
		const int64_t v[4] = {s, 1, s / 2, 1};
		cr_assert_eq(tt_pprof_add_sample(p, stack, DEPTH, v), 0);
	}
	char *path = tmp_path("many.pb.gz");
	char err[512];
	cr_assert_eq(tt_pprof_write(p, path, err, sizeof(err)), 0, "%s", err);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	tt_pprof_destroy(p);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	cr_log_info("%d samples x %d frames added and written in %.2f s", NSAMPLES, DEPTH, secs);

	Profile *pr = read_profile(path);
	check_consistent(pr);
	cr_assert_eq(pr->n_sample, NSAMPLES);
	cr_assert_eq(pr->n_location, NADDR);
	cr_assert_eq(pr->n_function, NFUNC);
	cr_assert_eq(pr->n_mapping, 1);
	cr_assert_eq(pr->sample[NSAMPLES - 1]->value[0], NSAMPLES - 1);
	for (size_t i = 0; i < pr->n_location; i++)
		cr_assert_eq(pr->location[i]->id, i + 1);
	perftools__profiles__profile__free_unpacked(pr, NULL);
	unlink(path);
	free(path);
}

/* Out of memory (address space capped): add_sample fails cleanly, what was added
 * stays consistent, write fails or succeeds but never crashes. */
Test(pprof, out_of_memory, .timeout = 120)
{
#if defined(__SANITIZE_ADDRESS__)
	cr_skip_test("RLIMIT_AS and ASan's shadow memory do not mix");
#endif
	struct tt_pprof *p = tt_pprof_create();
	cr_assert_not_null(p);
	FILE *st = fopen("/proc/self/status", "r");
	cr_assert_not_null(st);
	char line[256];
	unsigned long vm_kb = 0;
	while (fgets(line, sizeof(line), st))
		sscanf(line, "VmSize: %lu kB", &vm_kb);
	fclose(st);
	cr_assert_gt(vm_kb, 0);
	struct rlimit old, lim;
	cr_assert_eq(getrlimit(RLIMIT_AS, &old), 0);
	lim = old;
	lim.rlim_cur = (rlim_t)vm_kb * 1024 + (48u << 20);
	cr_assert_eq(setrlimit(RLIMIT_AS, &lim), 0);

	char name[64], mod[64];
	unsigned added = 0;
	int rc = 0;
	for (unsigned i = 0; i < 10000000 && rc == 0; i++) {
		snprintf(name, sizeof(name), "function_with_a_long_name_%u", i);
		snprintf(mod, sizeof(mod), "/lib/module_%u.so", i / 4);
		const struct tt_pprof_line ln = {name, "file.c", i + 1};
		const struct tt_pprof_location l[2] = {
		    {0x1000 + 16ull * i, mod, 0, 1ull << 40, 0, "abcd", 1, &ln},
		    {0x100, NULL, 0, 0, 0, NULL, 0, NULL},
		};
		const int64_t v[4] = {i, 1, i, 1};
		rc = tt_pprof_add_sample(p, l, 2, v);
		if (rc == 0)
			added++;
	}
	cr_assert_eq(rc, -1, "the cap was never reached");
	char *path = tmp_path("oom.pb.gz");
	char err[512] = "";
	if (tt_pprof_write(p, path, err, sizeof(err)) != 0) {
		cr_assert_not_null(strstr(err, path), "%s", err);
		cr_log_info("write under the cap: %s", err);
	}
	cr_assert_eq(setrlimit(RLIMIT_AS, &old), 0);
	cr_assert_eq(tt_pprof_write(p, path, err, sizeof(err)), 0, "%s", err);
	tt_pprof_destroy(p);
	Profile *pr = read_profile(path);
	check_consistent(pr);
	cr_assert_eq(pr->n_sample, added);
	cr_log_info("%u samples added before running out of memory", added);
	perftools__profiles__profile__free_unpacked(pr, NULL);
	unlink(path);
	free(path);
}

/* Output of `go tool pprof -top -sample_index=alloc_space [extra] path`, stderr included. */
static char *go_pprof_top(const char *path, const char *extra)
{
	char *cmd;
	cr_assert(asprintf(&cmd, "go tool pprof -top -sample_index=alloc_space %s '%s' 2>&1", extra,
			   path) > 0);
	FILE *f = popen(cmd, "r");
	cr_assert_not_null(f);
	static char out[16384];
	size_t n = fread(out, 1, sizeof(out) - 1, f);
	out[n] = '\0';
	int st = pclose(f);
	cr_log_info("%s\n%s", cmd, out);
	cr_assert_eq(st, 0, "%s\n%s", cmd, out);
	static const char *const bad[] = {"arning", "failed", "rror", "nvalid", "nconsistent"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_null(strstr(out, bad[i]), "'%s' in:\n%s", bad[i], out);
	free(cmd);
	return out;
}

/* `go tool pprof` reads the file without a warning and names the expected functions. */
Test(pprof, go_tool_pprof, .timeout = 120)
{
	if (system("command -v go >/dev/null 2>&1") != 0)
		cr_skip_test("go is not on PATH");
	char *path = write_fixture("go.pb.gz");
	const char *out = go_pprof_top(path, "");
	static const char *const want[] = {"Type: alloc_space",
					   "Build ID: " APP_BUILD,
					   "sampling: every 512 KiB on average",
					   "libfoo.so+0x6678",
					   "inner_inline",
					   "make_node",
					   "foo_alloc",
					   "main"};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		cr_assert_not_null(strstr(out, want[i]), "'%s' missing in:\n%s", want[i], out);
	/* The heaviest leaf first: libfoo.so+0x6678 carries 300000 of 302171 bytes. */
	const char *row = strstr(out, "flat%");
	cr_assert_not_null(row);
	row = strchr(row, '\n');
	cr_assert_not_null(row);
	const char *eol = strchr(row + 1, '\n');
	cr_assert_not_null(eol);
	cr_assert_not_null(memmem(row, (size_t)(eol - row), "libfoo.so+0x6678", 16), "%s", out);

	/* Nothing dropped: the small nodes too, the bare address among them. */
	out = go_pprof_top(path, "-nodefraction=0 -edgefraction=0");
	static const char *const all[] = {"app+0x3000", "0xdeadbeef", "inner_inline (inline)"};
	cr_assert_null(strstr(out, "<unknown>"), "%s", out);
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		cr_assert_not_null(strstr(out, all[i]), "'%s' missing in:\n%s", all[i], out);
	unlink(path);
	free(path);
}
