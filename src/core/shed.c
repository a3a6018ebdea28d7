/* SPDX-License-Identifier: MIT */
/* Load shedding's out-of-line step (shed.h): the second draw. */
#include "shed.h"

double shed_thin(struct thagtrace_thread *t, double p, unsigned k)
{
	/* Kept when the top k of 64 random bits are all zero: probability 2^-k exactly. */
	if (sampler_bits(&t->sampler) >> (64 - k) != 0) {
		counter_add_single_writer(&t->shed, 1);
		return 0.0;
	}
	return p * (1.0 / (double)(1u << k)); /* a power of two: exact */
}
