/* SPDX-License-Identifier: MIT */
/*
 * The list of registered thread handles: a liburcu RCU list. Adding takes a mutex
 * (registration is rare) and publishes the node, so the writer walks the list while
 * threads register, without a lock. The writer is its only reader and the only one
 * that removes, so it frees what it unlinked once past its walk, with no grace
 * period (and so no RCU flavour, reader registration or fork hook).
 */
#ifndef TT_REGISTRY_H
#define TT_REGISTRY_H

#include <stddef.h>
#include <stdint.h>
#include <urcu/list.h>

struct thagtrace_thread;

extern struct cds_list_head registry_list;

/* Open the registry for session `gen` (start) or close it (gen 0, the writer's final
 * pass): once closed, registry_add fails, so the final pass sees every handle. */
void registry_set_session(uint64_t gen);

/* Add a handle created for session `gen`. Returns 0, or -1 if that session is no
 * longer open (the caller then frees the handle). Any thread; takes the mutex. */
int registry_add(struct thagtrace_thread *t, uint64_t gen);

/* The writer's walk: the node after pos (registry_next(&registry_list) is the
 * first; &registry_list again at the end), read as liburcu publishes it. One
 * place for that read: ThreadSanitizer cannot see liburcu's ordering (tsan.supp). */
struct cds_list_head *registry_next(struct cds_list_head *pos);

/* Writer: unlink a handle (free it once past its walk). */
void registry_remove(struct thagtrace_thread *t);

/* Handles in the list now (a snapshot). */
size_t registry_count(void);

/* fork: hold the mutex across it (registry_fork_lock in prepare, _unlock in the
 * parent); in the child, forget the parent's handles (their events are the
 * parent's to write, their memory is wiped in the child: nofork.h), empty the list and
 * release the mutex. */
void registry_fork_lock(void);
void registry_fork_unlock(void);
void registry_fork_child_discard(void);

#endif /* TT_REGISTRY_H */
