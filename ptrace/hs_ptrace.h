/*
 * hs_ptrace: the live-process backend.
 *
 * Opening reads /proc (status, cmdline, exe, auxv, smaps, tasks) without
 * stopping anything.  hs_target_suspend() stops every thread with
 * PTRACE_SEIZE + PTRACE_INTERRUPT (re-listing /proc/PID/task until no new
 * thread appears), records each thread's state and registers, and re-reads
 * the maps so the picture is consistent; hs_target_resume() detaches every
 * thread, re-injecting any signal that arrived meanwhile.  A process that
 * was already group-stopped stays stopped.  Memory is read with
 * process_vm_readv, split at mapping boundaries, falling back to pread on
 * /proc/PID/mem.
 *
 * This layer knows nothing of glibc, ELF or the analyses.
 */
#ifndef HS_PTRACE_H
#define HS_PTRACE_H

#include "hs_core.h"

/*
 * Open flag of the live backend only (next to enum hs_target_flags):
 * hs_target_suspend() stops the process just long enough to make a
 * copy-on-write fork of it inside the process (an injected clone(2)
 * syscall, made by a guard process: see ptrace/fork.c and doc/fork.md),
 * lets the process run again, and serves every read from that stopped
 * child until hs_target_resume() or hs_target_close() have the guard kill
 * it and reap it (a second, shorter stop of one thread).  Maps and thread registers are the parent's, taken during the
 * stop.  Where a fork snapshot cannot be made (seccomp, 32-bit process,
 * a group-stopped process, no syscall instruction, clone failed) suspend
 * logs one warning and stops the process for the whole read instead;
 * hs_live_fork_fallback() says why.
 */
enum hs_ptrace_flags {
	HS_TARGET_FORK = 1 << 8,
};

/* Whether the last hs_target_suspend() of live target t served reads from
 * a fork snapshot.  false for other backends. */
bool hs_live_forked(const struct hs_target *t);
/* Why the last suspend with HS_TARGET_FORK stopped the process instead, or
 * NULL.  Static string. */
const char *hs_live_fork_fallback(const struct hs_target *t);

/*
 * Opens live process pid.  flags: enum hs_target_flags.
 * Errors: -ESRCH no such process, -HS_E_ZOMBIE, -HS_E_KTHREAD, -HS_E_SELF,
 * -EPERM/-EACCES (see hs_ptrace_diagnose_eperm), other -errno.
 */
int hs_target_open_pid(pid_t pid, unsigned flags, struct hs_target **out) HS_MUST_CHECK;

/*
 * Explains why this process may not trace pid: another tracer (TracerPid),
 * a different uid, Yama ptrace_scope, a non-dumpable process without
 * CAP_SYS_PTRACE.  Writes one lowercase sentence fragment into sb.
 */
void hs_ptrace_diagnose_eperm(pid_t pid, struct hs_buf *sb);

/* ---- /proc parsers (take FILE * so tests feed them fixtures) ---- */

/*
 * Parses /proc/PID/maps or /proc/PID/smaps text, appending to maps.
 * smaps field lines fill map->smaps[] and set HS_MAP_HAS_SMAPS; unknown
 * fields are ignored.  Returns 0, or -HS_E_FORMAT with the 1-based line
 * number in *bad_line (may be NULL).
 */
int hs_proc_parse_maps(FILE *f, struct hs_maps *maps, int *bad_line) HS_MUST_CHECK;

/* Parses /proc/PID/status into info (pid, ppid, uids, state, sizes...). */
int hs_proc_parse_status(FILE *f, struct hs_proc_info *info) HS_MUST_CHECK;

/* Fields of /proc/PID/status that do not belong in hs_proc_info. */
struct hs_proc_status_extra {
	pid_t tracer_pid;
	bool kthread;        /* "Kthread: 1" (6.x), or no VmSize line */
	bool exiting;        /* "Kthread: 0" and no VmSize: its memory is gone */
	uint64_t cap_eff;
	int threads;
	int seccomp;         /* "Seccomp:" 0 off, 1 strict, 2 filter */
};
int hs_proc_parse_status_extra(FILE *f, struct hs_proc_status_extra *x) HS_MUST_CHECK;

#endif
