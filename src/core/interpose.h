/* SPDX-License-Identifier: MIT */
/* The malloc-family interposer's set-up (its exported functions need no header). */
#ifndef TT_INTERPOSE_H
#define TT_INTERPOSE_H

/* Look up the real allocation functions (dlsym RTLD_NEXT). Idempotent; called from
 * the library's constructor and lazily by the first allocation. */
void interpose_resolve(void);

#endif /* TT_INTERPOSE_H */
