/* SPDX-License-Identifier: MIT */
/*
 * A user of the installed library: a bump-pointer arena allocator that never calls
 * malloc, made visible to the tracer through the explicit API (config, start,
 * thread register, record_alloc / record_free, unregister, stop). Four threads;
 * every thread frees half its blocks and leaks the rest into the trace.
 * usage: consumer OUTPUT_DIR; exit 0 when the trace has a .meta and a .bin.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <thagtrace.h>

#define THREADS 4
#define BLOCKS	1000

struct arena {
	unsigned char mem[1 << 20];
	size_t used;
};

static struct arena arenas[THREADS];

/* The custom allocator: the tracer cannot see it except through these calls. */
static void *arena_alloc(struct arena *a, struct thagtrace_thread *t, size_t size)
{
	size = (size + 15) & ~(size_t)15;
	if (a->used + size > sizeof(a->mem))
		return NULL;
	void *p = a->mem + a->used;
	a->used += size;
	thagtrace_record_alloc(t, p, size); /* call site: here */
	return p;
}

static void arena_free(struct thagtrace_thread *t, void *p)
{
	thagtrace_record_free(t, p); /* an arena frees nothing until reset */
}

static void *worker(void *arg)
{
	unsigned id = (unsigned)(size_t)arg;
	char name[16];
	snprintf(name, sizeof(name), "arena-%u", id);
	int err = 0;
	struct thagtrace_thread *t = thagtrace_thread_register(name, &err);
	if (!t) {
		fprintf(stderr, "consumer: register: %s\n", thagtrace_strerror(err));
		return (void *)1;
	}
	for (unsigned i = 0; i < BLOCKS; i++) {
		void *p = arena_alloc(&arenas[id], t, 16 + (i % 64) * 8);
		if (p && i % 2)
			arena_free(t, p);
	}
	thagtrace_thread_unregister(t);
	return NULL;
}

static int has_suffix(const char *dir, const char *suffix)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int found = 0;
	size_t n = strlen(suffix);
	while (d && (e = readdir(d)))
		if (strlen(e->d_name) > n && !strcmp(e->d_name + strlen(e->d_name) - n, suffix))
			found = 1;
	if (d)
		closedir(d);
	return found;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: consumer OUTPUT_DIR\n");
		return 2;
	}
	struct thagtrace_config cfg;
	thagtrace_config_init(&cfg);
	snprintf(cfg.output_dir, sizeof(cfg.output_dir), "%s", argv[1]);
	cfg.sample_mode = THAGTRACE_SAMPLE_ALL;
	int rc = thagtrace_start(&cfg);
	if (rc) {
		fprintf(stderr, "consumer: thagtrace_start: %s\n", thagtrace_strerror(rc));
		return 1;
	}
	pthread_t th[THREADS];
	for (unsigned i = 0; i < THREADS; i++)
		pthread_create(&th[i], NULL, worker, (void *)(size_t)i);
	int failed = 0;
	for (unsigned i = 0; i < THREADS; i++) {
		void *ret;
		pthread_join(th[i], &ret);
		failed |= ret != NULL;
	}
	rc = thagtrace_stop();
	if (rc || failed) {
		fprintf(stderr, "consumer: thagtrace_stop: %s\n", thagtrace_strerror(rc));
		return 1;
	}
	if (!has_suffix(argv[1], ".meta") || !has_suffix(argv[1], ".bin")) {
		fprintf(stderr, "consumer: %s: no .meta or no .bin written\n", argv[1]);
		return 1;
	}
	printf("consumer: libthagtrace %s traced %u threads x %u arena blocks into %s\n",
	       thagtrace_version(), THREADS, BLOCKS, argv[1]);
	return 0;
}
