/* SPDX-License-Identifier: MIT */
/* libFuzzer target: any bytes as a thagtrace file; the decoder must end cleanly
 * (records, end, or an error naming an offset) without crashing, leaking or hanging. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../../src/analysis/decode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	static char path[64];
	if (fd < 0) {
		fd = memfd_create("fuzz", 0);
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	}
	if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
		return 0;
	char err[512];
	struct tt_decoder *d = tt_decoder_open(path, err, sizeof(err));
	if (!d) {
		if (strncmp(err, "offset ", 7) != 0)
			__builtin_trap();
		return 0;
	}
	struct tt_record r;
	int rc;
	while ((rc = tt_decoder_next(d, &r)) == 1)
		;
	if (rc < 0 && strncmp(tt_decoder_error(d), "offset ", 7) != 0)
		__builtin_trap();
	tt_decoder_destroy(d);
	return 0;
}
