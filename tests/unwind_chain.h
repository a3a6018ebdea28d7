/* SPDX-License-Identifier: MIT */
/* test_unwind's chain of frames without frame pointers (unwind_chain.c). */
#ifndef TT_TEST_UNWIND_CHAIN_H
#define TT_TEST_UNWIND_CHAIN_H

#include <stdint.h>

typedef unsigned (*unwind_chain_probe)(void *arg);

/* Return addresses into chain_realigned, unwind_chain_top and its caller, as the
 * chain's frames saw them ([0] is where probe's caller resumes). */
extern uintptr_t unwind_chain_ras[3];

unsigned unwind_chain_top(unsigned n, unwind_chain_probe probe, void *arg);

#endif /* TT_TEST_UNWIND_CHAIN_H */
