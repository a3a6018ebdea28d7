/* SPDX-License-Identifier: MIT */
/* SPSC ring: set-up and the consumer side. The producer side is inline in ring.h. */
#include "ring.h"

#include <assert.h>
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif
#if defined(__x86_64__)
#include <cpuid.h>
#endif

struct ring_cpu ring_cpu;

__attribute__((constructor)) static void ring_probe_cpu(void)
{
#if defined(__x86_64__)
	unsigned a, b, c, d;
	if (__get_cpuid(0x80000001u, &a, &b, &c, &d))
		ring_cpu.prefetchw = (c & bit_PRFCHW) != 0;
#endif
}

void ring_init(struct ring *r, void *data, uint64_t capacity)
{
	assert(capacity >= RING_MIN_BYTES && (capacity & (capacity - 1)) == 0);
	memset(r, 0, sizeof(*r));
	r->data = data;
	r->capacity = capacity;
	r->mask = capacity - 1;
	r->fault_mark = UINT64_MAX; /* not ours to map: see ring_fault_init */
}

void ring_fault_init(struct ring *r, uint64_t mapped)
{
	r->fault_mark = mapped < r->capacity ? mapped : UINT64_MAX;
}

/*
 * Why map ahead: on the hosts this was measured on (paravirtualised, shadow page
 * tables) a page fault costs 15-20 us of system time, and 200 threads of
 * bench_overhead spent ~10 % more CPU with their rings faulted in page by page than
 * with the rings populated when mapped; one madvise for many pages costs a
 * fraction of their faults anywhere. Mapping the whole ring at registration would
 * cost every thread the full ring in memory, also a thread that records a dozen
 * events; doubling stretches keep that to about twice what it used. Called from a
 * reserve, so async-signal-safe: one system call, errno kept. A kernel without
 * MADV_POPULATE_WRITE (before 5.14) answers EINVAL once and the ring faults as
 * before.
 */
void ring_fault_ahead(struct ring *r, uint64_t end)
{
	uint64_t mark = r->fault_mark;
	if (mark >= r->capacity) {
		r->fault_mark = UINT64_MAX;
		return;
	}
	uint64_t stretch = mark > RING_FAULT_FIRST ? mark : RING_FAULT_FIRST;
	uint64_t to = mark + stretch;
	if (to < end)
		to = end;
	to = (to + RING_FAULT_FIRST - 1) & ~(uint64_t)(RING_FAULT_FIRST - 1);
	if (to > r->capacity)
		to = r->capacity;
	bool ok = ring_populate(r->data + mark, to - mark);
	r->fault_mark = ok && to < r->capacity ? to : UINT64_MAX;
}

bool ring_populate(void *p, size_t n)
{
	int saved = errno;
	bool ok = madvise(p, n, MADV_POPULATE_WRITE) == 0;
	errno = saved;
	return ok;
}

uint64_t ring_drain(struct ring *r, ring_visit_fn visit, void *ctx)
{
	uint64_t tail = load_relaxed(&r->tail); /* only we write it */
	/* Pairs with store_release(&head) in ring_commit: records up to head are
	 * complete. */
	uint64_t head = load_acquire(&r->head);
	uint64_t released = tail, visited = 0, counted = 0;
	const uint64_t batch = r->capacity / 4;
	/* At most one ring's worth per call, so a producer as fast as we are cannot keep
	 * the writer here while the other rings fill. */
	const uint64_t limit = tail + r->capacity;
	int stop = 0;

	while (tail != head && !stop) {
		const struct ring_rec *rec = (const struct ring_rec *)(r->data + (tail & r->mask));
		uint32_t len = rec->len;
		assert(len >= sizeof(*rec) && len % RING_ALIGN == 0 && len <= head - tail);
		if (rec->type != RING_REC_PAD) {
			stop = visit(rec, ctx);
			visited++;
		}
		tail += len;
		if (tail - released >= batch) {
			/* Pairs with the producer's load_acquire(&tail): we are done reading
			 * the bytes before tail, so it may overwrite them. */
			store_release(&r->tail, tail);
			released = tail;
			/* After the release: a record counted as recorded has its space back,
			 * so emitted - recorded - dropped never under-counts what the ring holds.
			 */
			counter_add_single_writer(&r->recorded, visited - counted);
			counted = visited;
		}
		if (tail == head && !stop && tail < limit)
			head = load_acquire(&r->head); /* take what arrived meanwhile */
	}
	store_release(&r->tail, tail);
	counter_add_single_writer(&r->recorded, visited - counted);
	return visited;
}
