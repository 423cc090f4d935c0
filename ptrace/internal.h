/* Private to hs_ptrace. */
#ifndef HS_PTRACE_INTERNAL_H
#define HS_PTRACE_INTERNAL_H

#include "hs_ptrace.h"

#include <pthread.h>

/* One stopped thread and what to restore when we let it go. */
struct seized {
	pid_t tid;
	bool stopped;      /* in a ptrace-stop we waited for */
	bool group_stop;   /* it reported a group-stop: leave it stopped */
	int pending_sig;   /* signal that arrived meanwhile: re-inject on detach */
};

struct live_priv {
	pid_t pid;
	int mem_fd;               /* /proc/PID/mem, opened lazily; -1 */
	bool use_pread;           /* process_vm_readv refused us */
	pthread_mutex_t lock;     /* mem_fd opening */
	struct seized *seized;
	size_t nseized, aseized;
	uint64_t stop_start;
	uint64_t test_kill_after; /* HEAPSCAN_TEST_KILL_AFTER_READS, 0 = off */
	uint64_t nreads;

	/* Fork snapshot (fork.c), HS_TARGET_FORK. */
	pid_t snap_pid;              /* stopped, traced child serving reads; 0 none */
	hs_addr_t snap_insn;         /* the syscall instruction used */
	int snap_mem_fd;             /* /proc/SNAP/mem, opened lazily; -1 */
	int snap_pidfd;              /* pidfd of the child: readable once it
					died (its guard was killed); -1 */
	unsigned char *from_parent;  /* per t->maps.v[i]: read it from pid
					(MADV_DONTFORK/WIPEONFORK), or NULL */
	bool forked;                 /* the last suspend made a snapshot */
	pid_t guard_pid;             /* the guard process (fork.c), 0 none */
	int guard_sock;              /* our end of its socket; -1 */
	void *guard_shm;             /* a page shared with it (fork.c), or NULL */
	const char *guard_why;       /* why there is no guard, or NULL */
	const char *fork_fallback;   /* why it did not, or NULL */

	/* Reading policy (pagemap.c): which pages may be read through the
	 * process, and where the others come from. */
	enum hs_read_policy policy;
	int pm_fd;                   /* /proc/PID/pagemap; -1 */
	int pm_snap_fd;              /* /proc/SNAP/pagemap; -1 */
	pid_t pm_snap_pid;           /* the snapshot pm_snap_fd belongs to */
	uint64_t pm_gen;             /* picture generation (pagemap.c cache) */
	int pm_scan;                 /* PAGEMAP_SCAN: 0 untried, -1 refused,
					else the category mask it takes */
	int *file_fd;                /* per t->maps.v[i]: its file, -1 not
					tried, -2 cannot be opened */
	size_t nfile_fd;
	bool file_warned;            /* logged a file that could not be opened */
	uint64_t *skipped;           /* pages counted in t->swap_skipped (+1),
					open addressing; 0 empty */
	size_t nskipped, askipped;
};

/* live.c: reads [addr, addr+len) through the process (or the snapshot
 * child) as they are, faulting in whatever is not present: the reads
 * before the reading policy, used by it for pages that may be read so. */
int hs_live_read_raw(struct hs_target *t, hs_addr_t addr, void *buf, size_t len,
		     size_t *nread);

/*
 * pagemap.c.  hs_live_policy_init: chooses p->policy (pagemap when
 * /proc/PID/pagemap reads, else smaps; HEAPSCAN_READ_POLICY overrides)
 * and sets t->page_policy.  hs_live_policy_read: the backend's read under
 * that policy (same contract as hs_target_ops.read).
 * hs_live_policy_maps_changed: t->maps was replaced; drops the file
 * descriptors kept per mapping.  hs_live_policy_release: closes all.
 */
void hs_live_policy_init(struct hs_target *t, struct live_priv *p);
/* Whether tok is one of the space-separated words of list (smaps
 * VmFlags, e.g. "ht", "dc", "wf"). */
bool hs_live_has_vmflag(const char *list, const char *tok);
int hs_live_policy_read(struct hs_target *t, hs_addr_t addr, void *buf, size_t len,
			size_t *nread);
void hs_live_policy_maps_changed(struct live_priv *p);
void hs_live_policy_release(struct live_priv *p);
/* In a fork of heapscan that closed every file (the --fork guard): forget
 * the policy's descriptors without closing them and open the target's
 * pagemap again. */
void hs_live_policy_reopen(struct hs_target *t, struct live_priv *p);
/* 1 if the page at addr is in the target's page tables (pagemap, not
 * cached), 0 if not, or a negative error where pagemap is not used. */
int hs_live_page_present(struct hs_target *t, hs_addr_t addr);
/* The file behind mapping m of process pid, read-only (map_files, else
 * /proc/PID/root/PATH, else PATH, each of m's inode): an fd or -errno. */
int hs_live_open_map_file(pid_t pid, const struct hs_map *m);

/* attach.c */
int hs_live_seize_all(struct hs_target *t, struct live_priv *p);
void hs_live_detach_all(struct live_priv *p);
/* Waits for seized thread s's first stop after PTRACE_INTERRUPT and
 * records what it was (stopped, group_stop, pending_sig). */
void hs_live_wait_stop(struct seized *s, pid_t tgid);
/* tid is gone, a zombie, or has SIGKILL pending (its process is being
 * killed): what an ESRCH from ptrace means then. */
bool hs_live_dying(pid_t tid);
/* From /proc/TID/status: 0 or -errno. */
struct hs_task_status {
	char state;           /* the State letter */
	pid_t tracer;         /* TracerPid, 0 none */
	uint64_t pending;     /* signals pending for it or its process, bit sig-1 */
};
int hs_live_task_status(pid_t tid, struct hs_task_status *ts);

/*
 * fork.c.  hs_live_fork_start: with every thread of t seized and stopped
 * and the maps fresh, makes the snapshot child (p->snap_pid) and leaves
 * every thread stopped exactly as it was (the caller detaches them).
 * Returns 0; -ESRCH if the target died; another negative code with
 * p->fork_fallback set when no snapshot could be made (the target is
 * unchanged and still stopped).  hs_live_fork_end: kills the child and
 * reaps it inside the target, adding that stop to t->stop_ns.
 */
int hs_live_fork_start(struct hs_target *t, struct live_priv *p);
/* hs_live_guard_start: forks the guard process before the stop (its fork
 * is not paid while the target is stopped); it waits for the job that
 * hs_live_fork_start sends.  hs_live_guard_stop: ends a guard that got
 * no job, or whose job is done, and waits for it.  Both idempotent. */
void hs_live_guard_start(struct hs_target *t, struct live_priv *p);
/* True once the snapshot child has died under us (only its guard's death
 * kills it before hs_live_fork_end); marks the target HS_TSTATE_COPY_LOST. */
bool hs_live_snap_lost(struct hs_target *t, struct live_priv *p);
void hs_live_guard_stop(struct live_priv *p);
void hs_live_fork_end(struct hs_target *t, struct live_priv *p);

/* Reads /proc/PID/smaps (or maps) into t->maps and classifies. */
int hs_live_read_maps(struct hs_target *t, pid_t pid);
/* Refreshes t->threads from /proc/PID/task (names, states, sp if known). */
int hs_live_list_threads(struct hs_target *t, pid_t pid);

#endif
