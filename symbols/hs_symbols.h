/*
 * hs_symbols: ELF core files (reading and writing), unwinding and symbols.
 *
 * The core reader is a backend of the target interface: once a core is
 * open, nothing above this layer knows it is not a live process.  The core
 * writer uses only the target interface, so it dumps a live process and
 * rewrites a core alike.
 *
 * This layer knows nothing of ptrace, /proc or glibc's malloc.
 */
#ifndef HS_SYMBOLS_H
#define HS_SYMBOLS_H

#include "hs_core.h"

/* ---- reading cores ---------------------------------------------------- */

/*
 * Opens an ELF core file (kernel core, gdb gcore, heapscan dump) as a
 * target with ops name "core", or "dump" when it carries heapscan's note.
 * exe may be NULL; when given it replaces the core's main executable as
 * the backing file of its unmodified mappings.
 *
 * Maps come from the heapscan note when present (the live run's table:
 * paths, smaps figures, classes), else from the PT_LOADs (perms from
 * p_flags) named by NT_FILE, with [heap], [stack], [vdso] and [vvar]
 * inferred and hs_classify() run.  Threads come from NT_PRSTATUS (with the
 * NT_FPREGSET / NT_X86_XSTATE that follow each), in note order, so the
 * first thread is the one that took the signal.
 *
 * read: bytes inside p_filesz come from the file; bytes in p_filesz ..
 * p_memsz are missing (a short read), except that an unmodified
 * file-backed mapping (read-only or executable, with a path in NT_FILE) is
 * read from that file if it still exists, as gdb does.
 *
 * A truncated or damaged core opens as long as its ELF header and program
 * headers are sane: what is missing is logged (hs_log, one warning per
 * problem, saying which segments or notes and how many bytes) and marks
 * the target HS_TSTATE_PARTIAL.  A bad note stops note parsing but keeps
 * what came before it.
 *
 * Errors: -errno (opening path or exe), -EISDIR, -HS_E_NOT_REGULAR (a
 * FIFO, device or socket: refused without blocking), -HS_E_NOT_CORE (not
 * an ELF file, not ET_CORE, not x86_64 ELFCLASS64 little-endian),
 * -HS_E_TRUNCATED (no complete program header table), -HS_E_CORRUPT
 * (bad e_phentsize), -HS_E_INTERRUPTED (SIGINT/SIGTERM while reading).
 *
 * The core is untrusted: memory copied from it is bounded (segments,
 * threads, note data: doc/hostile-input.md), and memory a segment claims
 * beyond what the file or a backing file holds is a hole, which the
 * target's next_data op reports so that readers skip it in one step.
 */
int hs_target_open_core(const char *path, const char *exe,
			struct hs_target **out) HS_MUST_CHECK;

/* ---- writing cores ---------------------------------------------------- */

/* What the writer puts in the file for one mapping. */
enum hs_dump_policy {
	HS_DUMP_SKIP = 0,  /* program header only, p_filesz 0 */
	HS_DUMP_HEADER,    /* the first page, if it begins an ELF image */
	HS_DUMP_FULL,      /* every byte (zero and absent pages as holes) */
};

/*
 * Reports which of npages pages starting at addr (page aligned) are
 * present in memory or swapped out: present[i] = 0 for a page never
 * touched, which the writer then leaves as a hole without reading it.
 * Returns 0, or a negative code (the writer then reads every page).
 * Must be safe to call from several threads at once.
 */
typedef int (*hs_dump_pagemap_fn)(void *ud, hs_addr_t addr, size_t npages,
				  unsigned char *present);

struct hs_dump_stats;
typedef void (*hs_dump_progress_fn)(void *ud, const struct hs_dump_stats *st);

struct hs_dump_opts {
	/*
	 * Region selection, in the spirit of the kernel's coredump_filter.
	 * classes == 0 selects the default policy (hs_dump_policy_for):
	 * in full: heap, arena, anon, stack, anon-ro, file-backed writable
	 * data, every private file mapping the process has modified (smaps
	 * Anonymous > 0, e.g. relocated RELRO), anonymous/tmpfs shared memory
	 * and [vdso]; first page only: unmodified file-backed text and
	 * read-only data (so build ids stay findable); nothing: reservations
	 * (---p), [vvar] and friends, shared mappings of regular files.
	 * Otherwise classes is a mask of 1 << enum hs_class dumped in full,
	 * every other mapping as HS_DUMP_HEADER or HS_DUMP_SKIP as above.
	 */
	unsigned classes;
	bool all;             /* every readable mapping in full */
	bool force;           /* replace an existing file */
	bool no_sync;         /* skip fsync before the rename */
	size_t bufsz;         /* copy buffer per worker, 0 = 1 MiB (min 64 KiB) */
	unsigned jobs;        /* copy workers, 0 = 2 (1 on one CPU), max 16 */
	hs_dump_pagemap_fn pagemap; /* may be NULL; called from several
				       workers at once */
	void *pagemap_ud;
	/* May be NULL; called after each chunk, one call at a time. */
	hs_dump_progress_fn progress;
	void *progress_ud;
};

struct hs_dump_stats {
	size_t regions;            /* PT_LOADs written */
	size_t regions_full, regions_header;
	size_t threads;
	uint64_t bytes_total;      /* memory selected for copying */
	uint64_t bytes_done;       /* of bytes_total, processed so far */
	uint64_t bytes_written;    /* non-zero present bytes stored */
	uint64_t bytes_absent;     /* never-touched pages left as holes */
	uint64_t bytes_zero;       /* all-zero pages left as holes */
	uint64_t bytes_unreadable; /* pages the target would not give (holes) */
	uint64_t file_size;        /* logical size of the file */
	uint64_t disk_bytes;       /* allocated on disk (st_blocks * 512) */
	uint64_t copy_ns;          /* copying memory */
	uint64_t stop_ns;          /* t->stop_ns after resuming */
	uint64_t wall_ns;          /* the whole hs_dump_write */
};

/* The policy the writer applies to map m under o (o may be NULL: default). */
enum hs_dump_policy hs_dump_policy_for(const struct hs_map *m,
				       const struct hs_dump_opts *o);

/*
 * Writes t as an ELF core to path: one PT_NOTE (per thread NT_PRSTATUS,
 * NT_FPREGSET, NT_X86_XSTATE in kernel order, with NT_PRPSINFO, NT_SIGINFO,
 * NT_AUXV and NT_FILE after the first thread's NT_PRSTATUS, then the
 * heapscan note), then one PT_LOAD per mapping in address order with
 * page-aligned offsets.  The first thread in t->threads becomes gdb's
 * current thread.
 *
 * The file is written through hs_outfile (hs_outfile.h: a temporary name
 * in path's directory, mode 0600, O_EXCL) and renamed to path only once
 * complete and synced; on any error
 * (including -HS_E_INTERRUPTED) the temporary file is removed and nothing
 * is left at path.  Without o->force an existing path is -EEXIST (checked
 * again, atomically, at the rename).
 *
 * hs_target_resume(t) is called as soon as memory has been copied (a no-op
 * for targets that are not suspended), before syncing.
 *
 * st (may be NULL) is filled also on error, as far as the run got.
 * Returns 0, or -errno (-ENOSPC, -EEXIST, ...), -HS_E_INTERRUPTED, -ESRCH
 * (target went away while copying).
 */
int hs_dump_write(struct hs_target *t, const char *path,
		  const struct hs_dump_opts *o, struct hs_dump_stats *st) HS_MUST_CHECK;

#endif
