/*
 * Private to hs_symbols: the byte layout of the x86_64 core notes the
 * reader parses and the writer produces, and of heapscan's own note.
 *
 * The note layouts are written as offsets (doc/elf-cores.md) rather than by
 * casting file bytes to structs: notes come from hostile files, and the
 * reader must bound every access.  The static asserts tie the offsets to
 * glibc's <sys/procfs.h> so a mistake fails the build.
 */
#ifndef HS_SYMBOLS_INTERNAL_H
#define HS_SYMBOLS_INTERNAL_H

#include "hs_symbols.h"

#include <elf.h>
#include <stddef.h>
#include <sys/procfs.h>

#define HS_PAGE 4096ull

/* elf_prstatus (NT_PRSTATUS, "CORE"). */
#define PRS_SIZE 336
#define PRS_SIGNO 0
#define PRS_CODE 4
#define PRS_ERRNO 8
#define PRS_CURSIG 12
#define PRS_SIGPEND 16
#define PRS_SIGHOLD 24
#define PRS_PID 32
#define PRS_PPID 36
#define PRS_PGRP 40
#define PRS_SID 44
#define PRS_REG 112
#define PRS_FPVALID 328
_Static_assert(sizeof(struct elf_prstatus) == PRS_SIZE, "elf_prstatus size");
_Static_assert(offsetof(struct elf_prstatus, pr_cursig) == PRS_CURSIG, "cursig");
_Static_assert(offsetof(struct elf_prstatus, pr_pid) == PRS_PID, "pid");
_Static_assert(offsetof(struct elf_prstatus, pr_reg) == PRS_REG, "pr_reg");
_Static_assert(offsetof(struct elf_prstatus, pr_fpvalid) == PRS_FPVALID, "fpvalid");
_Static_assert(sizeof(((struct elf_prstatus *)0)->pr_reg) == 8 * HS_REG_N, "regs");

/* elf_prpsinfo (NT_PRPSINFO, "CORE"). */
#define PRPS_SIZE 136
#define PRPS_STATE 0
#define PRPS_SNAME 1
#define PRPS_ZOMB 2
#define PRPS_NICE 3
#define PRPS_FLAG 8
#define PRPS_UID 16
#define PRPS_GID 20
#define PRPS_PID 24
#define PRPS_PPID 28
#define PRPS_PGRP 32
#define PRPS_SID 36
#define PRPS_FNAME 40
#define PRPS_FNAME_LEN 16
#define PRPS_PSARGS 56
#define PRPS_PSARGS_LEN 80
_Static_assert(sizeof(struct elf_prpsinfo) == PRPS_SIZE, "elf_prpsinfo size");
_Static_assert(offsetof(struct elf_prpsinfo, pr_uid) == PRPS_UID, "uid");
_Static_assert(offsetof(struct elf_prpsinfo, pr_fname) == PRPS_FNAME, "fname");
_Static_assert(offsetof(struct elf_prpsinfo, pr_psargs) == PRPS_PSARGS, "psargs");

#define FPREGSET_SIZE 512
#define SIGINFO_SIZE 128

/*
 * heapscan's note: name "HEAPSCAN", type HS_NT_INFO.  The descriptor is a
 * sequence of records, each { u32 tag, u32 len, len bytes, zero padding to
 * 8 }, all little-endian.  Readers skip tags they do not know, so fields
 * can be added without a version bump; HS_NOTE_VERSION changes only when
 * an existing record changes meaning.
 *
 *   VERSION   u32 note format version (first record)
 *   TOOL      heapscan version string, e.g. "0.1.0"
 *   TIME      u64 capture time, ns since the epoch (CLOCK_REALTIME)
 *   PID       u32 pid, u32 ppid, u32 uid, u32 euid, u32 gid, u32 egid,
 *             u32 nthreads, u32 state letter
 *   COMM, EXE, CMDLINE   strings (no NUL)
 *   STATUS    u64 vm_size, vm_rss, rss_anon, rss_file, rss_shmem, vm_swap,
 *             vm_hwm
 *   MAP       one per mapping, in address order:
 *             u64 start, end, offset, inode; u32 dev_major, dev_minor,
 *             perms, flags, class, stack_tid, nsmaps; u32 pad;
 *             u64 smaps[nsmaps] (hs_smaps_field order); u32 vmflags_len,
 *             vmflags bytes, u32 path_len, path bytes
 */
#define HS_NOTE_NAME "HEAPSCAN"
#define HS_NT_INFO 1
#define HS_NOTE_VERSION 1

enum hs_note_tag {
	HS_TAG_VERSION = 1,
	HS_TAG_TOOL = 2,
	HS_TAG_TIME = 3,
	HS_TAG_PID = 4,
	HS_TAG_COMM = 5,
	HS_TAG_EXE = 6,
	HS_TAG_CMDLINE = 7,
	HS_TAG_STATUS = 8,
	HS_TAG_MAP = 9,
};

#define HS_NOTE_MAP_FIXED (4 * 8 + 8 * 4)

/* Little-endian field access on untrusted bytes (x86_64 only). */
static inline uint32_t hs_get_u32(const unsigned char *p)
{
	uint32_t v;

	__builtin_memcpy(&v, p, sizeof(v));
	return v;
}

static inline uint64_t hs_get_u64(const unsigned char *p)
{
	uint64_t v;

	__builtin_memcpy(&v, p, sizeof(v));
	return v;
}

#endif
