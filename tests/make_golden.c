/* SPDX-License-Identifier: MIT */
/*
 * Writes a small, fully known trace for the golden tests: one thread, fixed
 * pointers, sizes, stacks, probabilities and sites. See tests/data/golden-v1/README.
 * usage: make_golden DIR
 */
#include <stdio.h>

#include "thagtrace.h"

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: make_golden DIR\n");
		return 2;
	}
	struct thagtrace_config c;
	thagtrace_config_init(&c);
	snprintf(c.output_dir, sizeof(c.output_dir), "%s", argv[1]);
	if (thagtrace_start(&c) != 0)
		return 1;
	struct thagtrace_thread *t = thagtrace_thread_register("golden", NULL);
	static const uintptr_t a[] = {0x401010, 0x402020, 0x403030};
	static const uintptr_t b[] = {0x404040, 0x402020, 0x403030};
	for (uintptr_t i = 0; i < 6; i++) {
		const uintptr_t *st = i % 2 ? b : a;
		thagtrace_record_alloc_sampled(t, (void *)(0x7f0000001000 + 0x100 * i), 16 << i,
					       i < 3 ? 0.01 : 1.0, st, 3);
		thagtrace_record_site(t, st[0], 16u << i);
		if (i % 3 == 0)
			thagtrace_record_free(t, (void *)(0x7f0000001000 + 0x100 * i));
	}
	thagtrace_thread_unregister(t);
	return thagtrace_stop() != 0;
}
