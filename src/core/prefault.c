/* SPDX-License-Identifier: MIT */
/* Mapping pages ahead of use (see prefault.h). */
#include "prefault.h"

#include <errno.h>
#include <sys/mman.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

bool prefault(void *p, size_t n)
{
	int saved = errno;
	bool ok = madvise(p, n, MADV_POPULATE_WRITE) == 0;
	errno = saved;
	return ok;
}
