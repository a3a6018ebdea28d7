/* SPDX-License-Identifier: MIT */
/* Registry of thread handles: RCU list plus a mutex for updates. */
#include "registry.h"

#include <pthread.h>
#include <urcu/rculist.h>

#include "../common/atomic.h"
#include "thread.h"

struct cds_list_head registry_list = CDS_LIST_HEAD_INIT(registry_list);
static pthread_mutex_t registry_mutex = PTHREAD_MUTEX_INITIALIZER;
static uint64_t registry_gen;	  /* under registry_mutex */
static _Atomic size_t registry_n; /* written under registry_mutex */

void registry_set_session(uint64_t gen)
{
	pthread_mutex_lock(&registry_mutex);
	registry_gen = gen;
	pthread_mutex_unlock(&registry_mutex);
}

int registry_add(struct thagtrace_thread *t, uint64_t gen)
{
	int rc = -1;
	pthread_mutex_lock(&registry_mutex);
	if (gen && gen == registry_gen) {
		cds_list_add_tail_rcu(&t->node, &registry_list);
		store_relaxed(&registry_n, load_relaxed(&registry_n) + 1);
		rc = 0;
	}
	pthread_mutex_unlock(&registry_mutex);
	return rc;
}

void registry_remove(struct thagtrace_thread *t)
{
	pthread_mutex_lock(&registry_mutex);
	cds_list_del_rcu(&t->node);
	store_relaxed(&registry_n, load_relaxed(&registry_n) - 1);
	pthread_mutex_unlock(&registry_mutex);
}

struct cds_list_head *registry_next(struct cds_list_head *pos)
{
	return rcu_dereference(pos->next);
}

size_t registry_count(void)
{
	return load_relaxed(&registry_n);
}

void registry_fork_lock(void)
{
	pthread_mutex_lock(&registry_mutex);
}

void registry_fork_unlock(void)
{
	pthread_mutex_unlock(&registry_mutex);
}

void registry_fork_child_discard(void)
{
	/* Never walked: the handles are wiped in the child (nofork.h). */
	CDS_INIT_LIST_HEAD(&registry_list);
	store_relaxed(&registry_n, 0);
	registry_gen = 0;
	pthread_mutex_unlock(&registry_mutex);
}
