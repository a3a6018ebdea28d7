/* SPDX-License-Identifier: MIT */
/* bench_unwind: the call chains it walks (bench_unwind_chain.c, two builds). */
#ifndef TT_BENCH_UNWIND_H
#define TT_BENCH_UNWIND_H

typedef unsigned (*unwind_probe_fn)(void *arg);

unsigned chain_fp(unsigned depth, unwind_probe_fn probe, void *arg);
unsigned chain_nofp(unsigned depth, unwind_probe_fn probe, void *arg);

#endif /* TT_BENCH_UNWIND_H */
