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
};

/* attach.c */
int hs_live_seize_all(struct hs_target *t, struct live_priv *p);
void hs_live_detach_all(struct live_priv *p);

/* Reads /proc/PID/smaps (or maps) into t->maps and classifies. */
int hs_live_read_maps(struct hs_target *t, pid_t pid);
/* Refreshes t->threads from /proc/PID/task (names, states, sp if known). */
int hs_live_list_threads(struct hs_target *t, pid_t pid);

#endif
