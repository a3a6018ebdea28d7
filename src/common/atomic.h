/* SPDX-License-Identifier: MIT */
/*
 * Named-order wrappers over C11 atomics. Every shared field is accessed through one
 * of these so the memory order is visible at the call site (after mimalloc's atomic.h).
 */
#ifndef TT_ATOMIC_H
#define TT_ATOMIC_H

#include <stdatomic.h>
#include <stdint.h>

#define TT_CACHELINE	     64
#define tt_cacheline_aligned _Alignas(TT_CACHELINE)

#define load_relaxed(p)		atomic_load_explicit((p), memory_order_relaxed)
#define load_acquire(p)		atomic_load_explicit((p), memory_order_acquire)
#define store_relaxed(p, v)	atomic_store_explicit((p), (v), memory_order_relaxed)
#define store_release(p, v)	atomic_store_explicit((p), (v), memory_order_release)
#define store_seq_cst(p, v)	atomic_store_explicit((p), (v), memory_order_seq_cst)
#define load_seq_cst(p)		atomic_load_explicit((p), memory_order_seq_cst)
#define fetch_add_relaxed(p, v) atomic_fetch_add_explicit((p), (v), memory_order_relaxed)
#define fetch_add_acq_rel(p, v) atomic_fetch_add_explicit((p), (v), memory_order_acq_rel)
#define exchange_acq_rel(p, v)	atomic_exchange_explicit((p), (v), memory_order_acq_rel)
#if defined(__SANITIZE_THREAD__)
/* GCC's ThreadSanitizer does not model fences; a seq_cst RMW orders the same way
 * here and is something it understands. Sanitizer builds only. */
extern _Atomic unsigned tt_tsan_fence_word;
#define TT_TSAN 1
#define fence_seq_cst()                                                                            \
	((void)atomic_fetch_add_explicit(&tt_tsan_fence_word, 0, memory_order_seq_cst))
#else
#define TT_TSAN		0
#define fence_seq_cst() atomic_thread_fence(memory_order_seq_cst)
#endif
/* Orders against a signal handler on the same thread only: a compiler barrier. */
#define signal_fence() atomic_signal_fence(memory_order_seq_cst)

/*
 * Single-writer counter: only one thread ever writes it, others read it. A relaxed
 * load + store (no RMW, no lock prefix) is enough and costs a plain add.
 */
static inline void counter_add_single_writer(_Atomic uint64_t *c, uint64_t v)
{
	store_relaxed(c, load_relaxed(c) + v);
}

#endif /* TT_ATOMIC_H */
