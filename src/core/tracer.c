/* SPDX-License-Identifier: MIT */
/* Tracer lifecycle: configuration defaults and checks, start, stop, disable. */
#define _GNU_SOURCE
#include "tracer.h"

#include <linux/membarrier.h>
#include <pthread.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../common/clock.h"
#include "../common/log.h"
#include "ring.h"
#include "freeset.h"
#include "modules.h"
#include "pagemem.h"
#include "unwind_cfi.h"
#include "unwind_libunwind.h"
#include "registry.h"
#include "thread.h"
#include "writer.h"

_Atomic uint64_t tt_active_gen;
_Atomic uint64_t tt_fast_gen;
#if TT_TSAN
_Atomic unsigned tt_tsan_fence_word;
#endif
bool tt_need_fence;
bool tt_use_tsc;
static bool clock_chosen;
struct thagtrace_config tt_cfg;
bool tt_unwind_cfi;
struct sampler_params tt_sampling;

static pthread_mutex_t lifecycle = PTHREAD_MUTEX_INITIALIZER;
static uint64_t last_gen;
static bool running;		  /* under lifecycle: a writer exists and must be joined */
static _Atomic pid_t session_pid; /* the process the running session writes for */
static _Atomic int disabled_said;

void thagtrace_config_init(struct thagtrace_config *cfg)
{
	if (!cfg)
		return;
	memset(cfg, 0, sizeof(*cfg));
	cfg->size = sizeof(*cfg);
	cfg->ring_kb = 256;
	cfg->flush_interval_ms = 100;
	cfg->max_frames = 64;
	cfg->zstd_level = 1;
	cfg->sample_mode = THAGTRACE_SAMPLE_TIERED;
	cfg->poisson_mean = 512 * 1024;
	cfg->min_size = 0;
	strcpy(cfg->output_dir, "thagtrace-out");
	cfg->tier_large_bytes = 10240;
	cfg->tier_medium_bytes = 1024;
	cfg->rate_medium = 0.10;
	cfg->rate_small = 0.01;
	cfg->boost_threshold = 1000;
	cfg->boost_max = 2;
	cfg->seed = 0;
}

/* Check every value; say what is wrong once on stderr. */
static bool ring_kb_ok(uint32_t kb)
{
	if (kb < RING_MIN_BYTES / 1024 || kb > (1u << 20) || (kb & (kb - 1))) {
		tt_log("ring size %u KiB (THAGTRACE_RING_KB) must be a power of two from %u to %u; "
		       "tracing off",
		       kb, RING_MIN_BYTES / 1024, 1u << 20);
		return false;
	}
	return true;
}

static int config_check(const struct thagtrace_config *c)
{
	uint64_t ring = (uint64_t)c->ring_kb * 1024;
	if (!ring_kb_ok(c->ring_kb) || (c->ring_kb_first && !ring_kb_ok(c->ring_kb_first)))
		return THAGTRACE_EINVAL;
	if (c->max_frames < 1 || c->max_frames > THAGTRACE_MAX_FRAMES_LIMIT) {
		tt_log("max frames %u (THAGTRACE_MAX_FRAMES) must be from 1 to %u; tracing off",
		       c->max_frames, THAGTRACE_MAX_FRAMES_LIMIT);
		return THAGTRACE_EINVAL;
	}
	if (sizeof(struct ev_alloc) + 8ull * c->max_frames > ring / 4) {
		tt_log("a ring of %u KiB is too small for stacks of %u frames (THAGTRACE_RING_KB, "
		       "THAGTRACE_MAX_FRAMES: a stack takes a quarter ring at most); tracing off",
		       c->ring_kb, c->max_frames);
		return THAGTRACE_EINVAL;
	}
	if (c->flush_interval_ms < 1 || c->flush_interval_ms > 60000) {
		tt_log("flush interval %u ms (THAGTRACE_FLUSH_MS) must be from 1 to 60000; tracing "
		       "off",
		       c->flush_interval_ms);
		return THAGTRACE_EINVAL;
	}
	if (c->zstd_level < -7 || c->zstd_level > 19) {
		tt_log("zstd level %d (THAGTRACE_ZSTD_LEVEL) must be from -7 to 19; tracing off",
		       c->zstd_level);
		return THAGTRACE_EINVAL;
	}
	if (c->unwind > THAGTRACE_UNWIND_LIBUNWIND) {
		tt_log("unwind mode %u is not one of auto (0), fp (1), libunwind (2); tracing off",
		       c->unwind);
		return THAGTRACE_EINVAL;
	}
	if (c->sample_mode > THAGTRACE_SAMPLE_POISSON) {
		tt_log("sample mode %u is not one of all (0), tiered (1), poisson (2); tracing off",
		       c->sample_mode);
		return THAGTRACE_EINVAL;
	}
	if (c->sample_mode == THAGTRACE_SAMPLE_POISSON && c->poisson_mean < 1) {
		tt_log("THAGTRACE_SAMPLE: the poisson mean must be at least 1 byte; tracing off");
		return THAGTRACE_EINVAL;
	}
	if (c->sample_mode == THAGTRACE_SAMPLE_TIERED) {
		if (!(c->rate_small > 0 && c->rate_small <= 1) ||
		    !(c->rate_medium > 0 && c->rate_medium <= 1)) {
			tt_log("THAGTRACE_SAMPLE: sampling rates must be in (0, 1]; tracing off");
			return THAGTRACE_EINVAL;
		}
		if (c->tier_medium_bytes > c->tier_large_bytes) {
			tt_log(
			    "THAGTRACE_SAMPLE: the medium tier (medium=%llu bytes) must not start "
			    "above the large tier (large=%llu bytes); tracing off",
			    (unsigned long long)c->tier_medium_bytes,
			    (unsigned long long)c->tier_large_bytes);
			return THAGTRACE_EINVAL;
		}
		if (c->boost_threshold < 1 || !(c->boost_max >= 1 && c->boost_max <= 1e6)) {
			tt_log("THAGTRACE_SAMPLE: boost_threshold must be >= 1 and boost_max in "
			       "[1, 1e6]; "
			       "tracing off");
			return THAGTRACE_EINVAL;
		}
	}
	if (!c->output_dir[0] || !memchr(c->output_dir, '\0', sizeof(c->output_dir))) {
		tt_log("THAGTRACE_OUT: the output directory is empty or too long; tracing off");
		return THAGTRACE_EINVAL;
	}
	return 0;
}

/* Ask for expedited membarrier so producers can skip their fence (see thread_enter). */
static void membarrier_setup(void)
{
	long cmds = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
	tt_need_fence = true;
	if (TT_TSAN)
		return; /* ThreadSanitizer cannot see membarrier's ordering; fence instead */
	if (cmds > 0 && (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) &&
	    syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0)
		tt_need_fence = false;
}

/*
 * One word in a page wiped in fork children (nofork.h), set while this process
 * runs a session. Zero with a session running means a child the fork handlers
 * never saw (a raw clone, _Fork); a vfork child shares the page and reads it set.
 */
static _Atomic(_Atomic int *) canary;

static void canary_arm(void)
{
	_Atomic int *c = load_relaxed(&canary);
	if (!c) {
		c = pagemem_alloc(sizeof(*c));
		if (!c)
			return; /* such children are then not recognised (they keep copies) */
		pagemem_nofork(c);
		store_release(&canary, c);
	}
	store_relaxed(c, 1);
}

static _Atomic bool foreign; /* set only in such a child (its memory is its own) */

bool tt_foreign_child(void)
{
	if (load_relaxed(&foreign))
		return true;
	_Atomic int *c = load_acquire(&canary);
	if (!c || load_relaxed(&tt_active_gen) == 0 || load_relaxed(c) != 0)
		return false;
	store_relaxed(&foreign, true);
	/* The session is the parent's; its writer and threads are not here, and its
	 * locks may be held by threads that are not either. Off, touching no lock. */
	store_seq_cst(&tt_fast_gen, 0);
	store_seq_cst(&tt_active_gen, 0);
	tt_self = NULL;
	return true;
}

/* The spare handle for exited threads: no stack bounds (events carry their call
 * site only), tid 0 so its files are <pid>-0.*, never reclaimed. */
static void exited_handle_create(uint64_t gen)
{
	int err;
	struct thagtrace_thread *t = thread_create("(shared handle)", gen, true, &err);
	if (!t)
		return; /* such events are then counted only */
	if (registry_add(t, gen) != 0) {
		thread_destroy(t);
		return;
	}
	store_release(&tt_exited_handle, t);
}

static int start_locked(const struct thagtrace_config *cfg);

/* The tracer's own work allocates (pthread_getattr_np, dl_iterate_phdr, zstd): the
 * guard keeps it from being traced and from re-entering the tracer. */
int thagtrace_start(const struct thagtrace_config *cfg)
{
	tt_guard_enter();
	int rc = start_locked(cfg);
	tt_guard_leave();
	return rc;
}

static int start_locked(const struct thagtrace_config *cfg)
{
	struct thagtrace_config c;
	thagtrace_config_init(&c);
	if (cfg) {
		if (cfg->size < offsetof(struct thagtrace_config, output_dir) + 1)
			return THAGTRACE_EINVAL;
		memcpy(&c, cfg, cfg->size < sizeof(c) ? cfg->size : sizeof(c));
		c.size = sizeof(c);
	}
	int rc = config_check(&c);
	if (rc != 0)
		return rc;
	/* A relative directory is taken from where the process starts: a program
	 * that changes directory later must not lose its files (or make new ones
	 * elsewhere). */
	char cwd[4096];
	if (c.output_dir[0] != '/' && getcwd(cwd, sizeof(cwd))) {
		char abs[sizeof(c.output_dir)];
		int n = snprintf(abs, sizeof(abs), "%s/%s", cwd, c.output_dir);
		if (n > 0 && (size_t)n < sizeof(abs))
			memcpy(c.output_dir, abs, sizeof(abs));
	}

	pthread_mutex_lock(&lifecycle);
	if (running) {
		pthread_mutex_unlock(&lifecycle);
		return THAGTRACE_ESTATE;
	}
	tt_cfg = c;
	sampler_params_init(&tt_sampling, &tt_cfg);
	/* auto: the call-frame tables, walked by our own cached unwinder; libunwind
	 * only where that cannot run (no _dl_find_object). */
	tt_unwind_cfi = c.unwind == THAGTRACE_UNWIND_AUTO && unwind_cfi_available();
	if (c.unwind != THAGTRACE_UNWIND_FP && !tt_unwind_cfi && !unwind_libunwind_load()) {
		if (c.unwind == THAGTRACE_UNWIND_LIBUNWIND)
			tt_log("libunwind.so.8 not found: stacks use frame pointers only");
		tt_cfg.unwind = THAGTRACE_UNWIND_FP;
	}
	membarrier_setup();
	if (!clock_chosen) {
		/* Once: handles of an earlier session must keep one clock. Before the
		 * module map, whose first record is stamped with it. */
		tt_use_tsc = tt_tsc_invariant();
		clock_chosen = true;
	}
	/* No event of an earlier session runs now (stop waited for them), so the
	 * previous map can go. */
	modules_session_start(); /* a fresh map, whatever the last session left */
	if (c.sample_mode != THAGTRACE_SAMPLE_ALL) {
		if (freeset_init() != 0) {
			tt_log("cannot map the set of sampled pointers; tracing off");
			pthread_mutex_unlock(&lifecycle);
			return THAGTRACE_ENOMEM;
		}
		freeset_clear();
	}
	uint64_t gen = ++last_gen;
	registry_set_session(gen);
	thread_session_reset();
	rc = writer_start(&tt_cfg);
	if (rc == 0) {
		canary_arm();
		running = true;
		store_relaxed(&session_pid, getpid());
		store_relaxed(&disabled_said, 0);
		/* Release: tt_cfg and the writer are set up before anyone sees gen. */
		store_seq_cst(&tt_active_gen, gen);
		freeset_gate_open(c.sample_mode == THAGTRACE_SAMPLE_ALL);
		if (!tt_need_fence)
			store_seq_cst(&tt_fast_gen, gen);
		exited_handle_create(gen);
	} else {
		registry_set_session(0);
	}
	pthread_mutex_unlock(&lifecycle);
	return rc;
}

/* The stop itself, with the lifecycle lock held and the session running. */
static bool stop_locked(unsigned wait_ms)
{
	store_seq_cst(&tt_fast_gen, 0);
	store_seq_cst(&tt_active_gen, 0);
	freeset_gate_close();
	store_release(&tt_exited_handle, NULL); /* the writer closes it with the rest */
	/* Every thread now either sees gen 0 or has its busy flag visible to the
	 * writer's final wait (see thread_enter). */
	if (!tt_need_fence)
		syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
	if (wait_ms) {
		if (!writer_stop_within(wait_ms))
			return false; /* the process exits now: what was written stays */
	} else {
		writer_stop();
	}
	modules_retire_all(); /* written by the writer's final pass */
	running = false;
	return true;
}

/* The stop of an exit or an exec: only in the process whose session it is, the
 * lifecycle lock tried for lock_ms at most (the thread calling exit may be a
 * signal handler's, over code that holds it), the writer waited for without a
 * join while it makes progress (writer_stop_within). */
static bool stop_at_exit(unsigned lock_ms)
{
	if (load_relaxed(&tt_active_gen) == 0 || load_relaxed(&session_pid) != getpid())
		return false;
	bool stopped = false;
	tt_guard_enter();
	for (unsigned waited = 0;; waited += 10) {
		if (pthread_mutex_trylock(&lifecycle) == 0) {
			if (running)
				stopped = stop_locked(EXIT_WAIT_MS);
			pthread_mutex_unlock(&lifecycle);
			break;
		}
		if (waited >= lock_ms)
			break;
		struct timespec ts = {0, 10 * 1000000};
		nanosleep(&ts, NULL);
	}
	tt_guard_leave();
	return stopped;
}

bool tt_stop_for_exit(void)
{
	return tt_guard == 0 && stop_at_exit(0);
}

void tt_stop_at_process_exit(void)
{
	if (!tt_foreign_child())
		(void)stop_at_exit(EXIT_WAIT_MS);
}

int thagtrace_stop(void)
{
	if (tt_foreign_child())
		return 0; /* no writer to stop here, and no lock may be taken */
	tt_guard_enter();
	pthread_mutex_lock(&lifecycle);
	if (!running) {
		pthread_mutex_unlock(&lifecycle);
		tt_guard_leave();
		return 0;
	}
	stop_locked(0);
	pthread_mutex_unlock(&lifecycle);
	tt_guard_leave();
	return 0;
}

/*
 * fork. prepare: hold every lock the child will need (the lifecycle, the registry,
 * the module map) and wait for the writer to be between passes (no walk, no file
 * opening or closing in progress), so nothing is copied held or half done by a
 * thread the child does not have. parent: let go. child: let go, then start over:
 * the parent's handles and rings are the parent's (wiped in the child, nofork.h,
 * and forgotten), the set of sampled pointers is cleared, and a new session with
 * the same settings writes <child pid>.meta and the child's own thread files.
 */
void tt_fork_prepare(void)
{
	/* The writer's order: its pass lock, then the registry's (retiring handles
	 * inside a pass). Taking the registry first deadlocked a fork against a pass
	 * that retired an ended thread while a new thread waited to register. */
	pthread_mutex_lock(&lifecycle);
	writer_fork_lock();
	registry_fork_lock();
	modules_fork_lock();
}

void tt_fork_parent(void)
{
	modules_fork_unlock();
	registry_fork_unlock();
	writer_fork_unlock();
	pthread_mutex_unlock(&lifecycle);
}

void tt_fork_child(void)
{
	writer_fork_child(); /* the writer thread itself is not in the child */
	modules_fork_unlock();
	bool was_running = running;
	store_seq_cst(&tt_fast_gen, 0);
	store_seq_cst(&tt_active_gen, 0);
	freeset_gate_close();
	running = false;
	/* Alone in the process now. The parent's handles are wiped (nofork.h): forget
	 * them unread (the writer closed the files it held open for them, above). */
	registry_fork_child_discard();
	thread_fork_child();
	if (tt_cfg.sample_mode != THAGTRACE_SAMPLE_ALL)
		freeset_clear();
	canary_arm(); /* wiped by the fork */
	pthread_mutex_unlock(&lifecycle);
	if (was_running) {
		struct thagtrace_config c = tt_cfg;
		thagtrace_start(&c);
	}
}

bool thagtrace_is_running(void)
{
	return load_relaxed(&tt_active_gen) != 0;
}

void tt_disable(const char *what, int err)
{
	store_seq_cst(&tt_fast_gen, 0);
	store_seq_cst(&tt_active_gen, 0);
	if (atomic_exchange(&disabled_said, 1) == 0)
		tt_log("%s: %s; tracing disabled, the program runs on untraced", what,
		       err ? strerrordesc_np(err) : "internal error");
}

const char *thagtrace_strerror(int code)
{
	switch (code) {
	case THAGTRACE_OK:
		return "success";
	case THAGTRACE_EINVAL:
		return "invalid argument or setting";
	case THAGTRACE_ENOMEM:
		return "out of memory";
	case THAGTRACE_EIO:
		return "cannot write the output";
	case THAGTRACE_ESTATE:
		return "not valid in the tracer's current state";
	case THAGTRACE_EDROPPED:
		return "event dropped (ring full), and counted";
	case THAGTRACE_EDISABLED:
		return "tracing is off";
	case THAGTRACE_ESYSTEM:
		return "a system call failed";
	}
	return "unknown error code";
}

const char *thagtrace_version(void)
{
#define TT_STR2(x) #x
#define TT_STR(x)  TT_STR2(x)
	return TT_STR(THAGTRACE_VERSION_MAJOR) "." TT_STR(THAGTRACE_VERSION_MINOR) "." TT_STR(
	    THAGTRACE_VERSION_PATCH);
}
