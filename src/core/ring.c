/* SPDX-License-Identifier: MIT */
/* SPSC ring: set-up and the consumer side. The producer side is inline in ring.h. */
#include "ring.h"

#include <assert.h>
#include <string.h>

#include "prefault.h"
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
	r->wake_at = capacity / 2;
	r->fault_mark = UINT64_MAX; /* not ours to map: see ring_fault_init */
}

void ring_fault_init(struct ring *r, uint64_t mapped)
{
	r->fault_mark = mapped < r->capacity ? mapped : UINT64_MAX;
}

/* Doubling stretches: mapping the whole ring at registration would cost every
 * thread the full ring in memory, also a thread that records a dozen events; this
 * keeps it to about twice what the ring has used. Capped, so that no allocation
 * call waits long for its stretch however large the ring. On a kernel that cannot,
 * the first call turns it off and the ring faults page by page as before. */
void ring_fault_ahead(struct ring *r, uint64_t end)
{
	uint64_t mark = r->fault_mark; /* below the capacity: else UINT64_MAX */
	uint64_t stretch = mark < RING_FAULT_FIRST ? RING_FAULT_FIRST
			   : mark > RING_FAULT_MAX ? RING_FAULT_MAX
						   : mark;
	uint64_t to = mark + stretch;
	if (to < end)
		to = end;
	to = (to + RING_FAULT_FIRST - 1) & ~(uint64_t)(RING_FAULT_FIRST - 1);
	if (to > r->capacity)
		to = r->capacity;
	bool ok = prefault(r->data + mark, to - mark);
	r->fault_mark = ok && to < r->capacity ? to : UINT64_MAX;
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
