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
 * syscall, doc/ptrace.md, "The fork snapshot"), lets the process run again, and
 * serves every read from that stopped child until hs_target_resume() or
 * hs_target_close() kill it and reap it (a second, shorter stop of one
 * thread).  Maps and thread registers are the parent's, taken during the
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

/* ---- reading policy (pagemap.c; doc/reading-policy.md) ---- */

/*
 * Reading a page of another process through process_vm_readv or
 * /proc/PID/mem faults it in when it is not present: a never-touched
 * anonymous page becomes a real, zeroed page of the target's Rss.  The
 * live backend therefore looks at /proc/PID/pagemap before each read and
 * reads through the process only pages that are present (or swapped
 * out); the rest are produced without the process: zeros for untouched
 * private anonymous memory, the file's bytes for file and shared pages.
 */
enum hs_read_policy {
	HS_READ_PAGEMAP = 0, /* per page, from /proc/PID/pagemap */
	HS_READ_SMAPS,       /* pagemap unreadable: per mapping, from smaps
				(Rss and Swap 0: untouched as a whole) */
	HS_READ_OFF,         /* everything through the process (bench only:
				HEAPSCAN_READ_POLICY=off) */
};

/* What kind of memory a mapping is, as far as untouched pages go. */
enum hs_page_kind {
	HS_PK_ANON,   /* private anonymous (heap, stacks, [anon:...], private
			 /dev/zero): an untouched page is zeros */
	HS_PK_FILE,   /* private mapping of a file: an untouched page (never
			 written, so never copied) holds the file's bytes */
	HS_PK_SHARED, /* shared mapping of a file, shmem, memfd, SysV or
			 shared anonymous memory: the object holds the bytes */
	HS_PK_VDSO,   /* [vdso]: the kernel's one image, which heapscan has
			 mapped too: an absent page is copied from its own */
	HS_PK_DIRECT, /* other special and device mappings, and mappings
			 without read permission: read as they are */
};

/* Where one page's bytes come from. */
enum hs_page_src {
	HS_PS_TARGET, /* present (or unknown): read through the process */
	HS_PS_ZERO,   /* untouched anonymous: zeros, nothing read */
	HS_PS_FILE,   /* not present: from the mapped file at its offset */
	HS_PS_SWAP,   /* swapped out: reading swaps it in */
	HS_PS_VDSO,   /* not present in [vdso]: from heapscan's own vDSO */
};

/* pagemap entry bits (Documentation/admin-guide/mm/pagemap.rst). */
#define HS_PM_PRESENT (1ull << 63)
#define HS_PM_SWAP (1ull << 62)
#define HS_PM_FILE_SHARED (1ull << 61)
#define HS_PM_GUARD (1ull << 58)

enum hs_page_kind hs_page_kind_of(const struct hs_map *m);
/* The decision for one page from its pagemap word (a pure function: unit
 * tested on made-up words). */
enum hs_page_src hs_page_decide(uint64_t word, enum hs_page_kind kind);

/*
 * For the core writer (hs_dump_pagemap_fn; ud is the live target):
 * present[i] = 0 for each page of [addr, addr + npages pages) that reading
 * would produce as zeros without the process (untouched anonymous), 1
 * otherwise.  Returns 0, or -ENOTSUP when t is not live or its policy is
 * off.  Safe from several threads.
 */
int hs_live_pages_touched(void *t, hs_addr_t addr, size_t npages,
			  unsigned char *present);

/*
 * Opens live process pid.  flags: enum hs_target_flags.  Reads follow the
 * reading policy above; HS_TARGET_NO_SWAPIN makes swapped-out pages short
 * reads (t->swap_skipped) instead of swapping them in (t->swapped_in).
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
	uint64_t cap_eff;
	int threads;
	int seccomp;         /* "Seccomp:" 0 off, 1 strict, 2 filter */
};
int hs_proc_parse_status_extra(FILE *f, struct hs_proc_status_extra *x) HS_MUST_CHECK;

#endif
