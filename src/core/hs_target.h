/*
 * The target interface: one inspected address space, whatever it comes from.
 *
 * Backends fill the descriptive parts (info, maps, threads) when they open a
 * target and implement `read`, the only memory primitive.  Everything else
 * (stream, read_u64, read_cstr, the classifier) is built on `read` here, so
 * the analyses in heap/ run unchanged on a live process (ptrace/), a core
 * file or a heapscan dump (symbols/), or a buffer in a unit test (mem).
 *
 * Backends: "live" hs_target_open_pid() in hs_ptrace.h; "core" in
 * hs_symbols.h; "mem" hs_target_open_mem() below.
 *
 * Addresses in the target are hs_addr_t, never C pointers.
 */
#ifndef HS_TARGET_H
#define HS_TARGET_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

typedef uint64_t hs_addr_t;

/* ---- mappings -------------------------------------------------------- */

enum hs_perm {
	HS_PERM_R = 1 << 0,
	HS_PERM_W = 1 << 1,
	HS_PERM_X = 1 << 2,
	HS_PERM_SHARED = 1 << 3, /* 's' in maps; private ('p') otherwise */
};

/*
 * Every field of /proc/PID/smaps (kernel 6.x) that carries a number.
 * name, smaps key, unit: KB fields are stored in bytes, NUM as printed.
 */
#define HS_SMAPS_FIELDS(X)                                                  \
	X(SIZE, "Size", KB)                                                     \
	X(KERNEL_PAGE_SIZE, "KernelPageSize", KB)                               \
	X(MMU_PAGE_SIZE, "MMUPageSize", KB)                                     \
	X(RSS, "Rss", KB)                                                       \
	X(PSS, "Pss", KB)                                                       \
	X(PSS_DIRTY, "Pss_Dirty", KB)                                           \
	X(PSS_ANON, "Pss_Anon", KB)                                             \
	X(PSS_FILE, "Pss_File", KB)                                             \
	X(PSS_SHMEM, "Pss_Shmem", KB)                                           \
	X(SHARED_CLEAN, "Shared_Clean", KB)                                     \
	X(SHARED_DIRTY, "Shared_Dirty", KB)                                     \
	X(PRIVATE_CLEAN, "Private_Clean", KB)                                   \
	X(PRIVATE_DIRTY, "Private_Dirty", KB)                                   \
	X(REFERENCED, "Referenced", KB)                                         \
	X(ANONYMOUS, "Anonymous", KB)                                           \
	X(KSM, "KSM", KB)                                                       \
	X(LAZY_FREE, "LazyFree", KB)                                            \
	X(ANON_HUGE_PAGES, "AnonHugePages", KB)                                 \
	X(SHMEM_PMD_MAPPED, "ShmemPmdMapped", KB)                               \
	X(FILE_PMD_MAPPED, "FilePmdMapped", KB)                                 \
	X(SHARED_HUGETLB, "Shared_Hugetlb", KB)                                 \
	X(PRIVATE_HUGETLB, "Private_Hugetlb", KB)                               \
	X(SWAP, "Swap", KB)                                                     \
	X(SWAP_PSS, "SwapPss", KB)                                              \
	X(LOCKED, "Locked", KB)                                                 \
	X(THP_ELIGIBLE, "THPeligible", NUM)                                     \
	X(PROTECTION_KEY, "ProtectionKey", NUM)

enum hs_smaps_field {
#define HS_X_(n, k, u) HS_SMAPS_##n,
	HS_SMAPS_FIELDS(HS_X_)
#undef HS_X_
	HS_SMAPS_N
};

/* smaps key of a field ("Rss"), and whether it is a kB field. */
const char *hs_smaps_key(enum hs_smaps_field f);
bool hs_smaps_is_kb(enum hs_smaps_field f);

/*
 * Region classes, in report order.  name, label.
 * Every mapping has exactly one class, so class totals add up to the
 * totals over all mappings.  Dumps store the number: add new classes at
 * the end.  PYTHON is never given by hs_classify() (it reads no memory):
 * the Python census refines ANON mappings that hold pymalloc arenas.
 */
#define HS_CLASSES(X)                                                       \
	X(HEAP, "heap", "main heap [heap]")                                     \
	X(ARENA, "arena", "glibc thread arena heaps")                           \
	X(ANON, "anon", "other anonymous rw")                                   \
	X(STACK, "stack", "thread stacks")                                      \
	X(CODE, "code", "file-backed code")                                     \
	X(RODATA, "rodata", "file-backed read-only data")                       \
	X(DATA, "data", "file-backed writable data")                            \
	X(SHM, "shm", "shared memory")                                          \
	X(RESERVED, "reserved", "reservations and guards (no access)")          \
	X(ANON_RO, "anon-ro", "other anonymous read-only/exec")                 \
	X(SPECIAL, "special", "kernel special mappings")                        \
	X(PYTHON, "python", "Python object arenas (pymalloc)")

enum hs_class {
#define HS_X_(n, s, l) HS_CLASS_##n,
	HS_CLASSES(HS_X_)
#undef HS_X_
	HS_CLASS_N
};

const char *hs_class_name(enum hs_class c);  /* "heap" */
const char *hs_class_label(enum hs_class c); /* "main heap [heap]" */
/* Parses a class name; returns -1 if unknown. */
int hs_class_parse(const char *name);

enum hs_map_flags {
	HS_MAP_DELETED = 1 << 0,   /* path ended in " (deleted)" (stripped) */
	HS_MAP_HAS_SMAPS = 1 << 1, /* smaps[] is filled */
	HS_MAP_SPECIAL = 1 << 2,   /* [vdso], [vvar], [vsyscall], [uprobes]... */
};

struct hs_map {
	hs_addr_t start, end; /* [start, end) */
	uint64_t offset;
	uint64_t inode;
	unsigned dev_major, dev_minor;
	unsigned perms;          /* enum hs_perm */
	unsigned flags;          /* enum hs_map_flags */
	char *path;              /* owned by the hs_maps; "" if anonymous */
	uint64_t smaps[HS_SMAPS_N];
	char vmflags[96];        /* smaps VmFlags, "rd wr mr mw me ac" */
	enum hs_class cls;       /* set by hs_classify() */
	pid_t stack_tid;         /* STACK: the thread whose sp is inside, or 0 */
};

struct hs_maps {
	struct hs_map *v;
	size_t n, alloc;
};

void hs_maps_release(struct hs_maps *m);
/* Appends a zeroed map with path copied (path may be NULL for ""). */
struct hs_map *hs_maps_add(struct hs_maps *m, hs_addr_t start, hs_addr_t end,
			   const char *path);
/* The mapping containing addr, or NULL.  Maps must be sorted by start. */
const struct hs_map *hs_maps_find(const struct hs_maps *m, hs_addr_t addr);
/* Sorts by start address. */
void hs_maps_sort(struct hs_maps *m);

/* ---- threads and registers --------------------------------------------- */

/* x86_64 user_regs_struct order (also elf_prstatus.pr_reg). */
enum hs_reg {
	HS_REG_R15, HS_REG_R14, HS_REG_R13, HS_REG_R12, HS_REG_RBP, HS_REG_RBX,
	HS_REG_R11, HS_REG_R10, HS_REG_R9, HS_REG_R8, HS_REG_RAX, HS_REG_RCX,
	HS_REG_RDX, HS_REG_RSI, HS_REG_RDI, HS_REG_ORIG_RAX, HS_REG_RIP,
	HS_REG_CS, HS_REG_EFLAGS, HS_REG_RSP, HS_REG_SS, HS_REG_FS_BASE,
	HS_REG_GS_BASE, HS_REG_DS, HS_REG_ES, HS_REG_FS, HS_REG_GS,
	HS_REG_N
};

struct hs_regs {
	uint64_t r[HS_REG_N];
};

struct hs_thread {
	pid_t tid;
	char name[17];         /* comm */
	char state;            /* /proc state letter before we stopped it */
	bool has_regs;         /* regs valid (stopped live thread, or core) */
	struct hs_regs regs;
	hs_addr_t sp;          /* stack pointer, 0 if unknown */
	bool has_fpregs;
	unsigned char fpregs[512];   /* FXSAVE image (NT_FPREGSET) */
	unsigned char *xstate;       /* XSAVE image (NT_X86_XSTATE), owned */
	size_t xstate_len;
	int cursig;            /* pending signal (cores), else 0 */
};

/* ---- process description ----------------------------------------------- */

struct hs_proc_info {
	pid_t pid, ppid;
	uid_t uid, euid;
	gid_t gid, egid;
	char state;            /* letter from /proc/PID/status or prpsinfo */
	char comm[17];
	char *exe;             /* owned; "" if unknown */
	char *cmdline;         /* owned; arguments joined by spaces */
	int nthreads;
	/* From /proc/PID/status, in bytes; 0 where unknown (cores). */
	uint64_t vm_size, vm_rss, rss_anon, rss_file, rss_shmem, vm_swap, vm_hwm;
	unsigned char *auxv;   /* owned, raw NT_AUXV / /proc/PID/auxv */
	size_t auxv_len;
	uint64_t time_ns;      /* when this picture was taken (CLOCK_REALTIME) */
};

/* ---- the target ------------------------------------------------------ */

struct hs_target;

struct hs_target_ops {
	const char *name; /* "live", "core", "dump", "mem" */
	/*
	 * Copies up to len bytes at addr into buf; *nread is how many bytes
	 * were copied, contiguous from addr (a short count means the rest is
	 * not readable: a hole, unmapped, or missing from a core).  Returns 0
	 * when *nread > 0 or len == 0, -EFAULT when addr itself is not
	 * readable, -ESRCH when the target has gone.  Must be safe to call
	 * from several threads at once.
	 */
	int (*read)(struct hs_target *t, hs_addr_t addr, void *buf, size_t len,
		    size_t *nread);
	/* Stop the target for a consistent picture and refresh maps and
	 * threads; resume undoes it.  May be NULL (post-mortem targets). */
	int (*suspend)(struct hs_target *t);
	int (*resume)(struct hs_target *t);
	/*
	 * Opens the file behind mapping m, read-only, as a regular file, and
	 * returns its fd (the caller closes it) or a negative error (-ENOENT
	 * when there is none).  A live process: the file it maps, seen from its
	 * own mount namespace or the mapping itself; a core: the path it
	 * names.  May be NULL: then m->path is opened as is.
	 */
	int (*open_file)(struct hs_target *t, const struct hs_map *m);
	/* Releases backend state (t->priv).  May be NULL. */
	void (*close)(struct hs_target *t);
	/*
	 * Where data may be, like lseek's SEEK_DATA: sets [*start, *end) to
	 * the first extent at or after addr that read may return bytes for
	 * (*start > addr: [addr, *start) is a hole).  Returns 0, or -ENXIO
	 * when nothing readable follows addr.  May be NULL: every mapped
	 * byte may then be data.  Lets a core's holes (a segment the file
	 * does not back, whatever p_memsz it claims) be skipped in one step
	 * rather than page by page.
	 */
	int (*next_data)(struct hs_target *t, hs_addr_t addr, hs_addr_t *start,
			 hs_addr_t *end);
};

/*
 * What a target can do, set by its backend at open.  Analyses and reports
 * ask these, never which backend they run on.
 */
enum hs_target_caps {
	/* suspend() holds the process still while it is read (and stop_ns
	 * says for how long), unless the target was opened HS_TARGET_NO_STOP. */
	HS_CAP_STOPPABLE = 1 << 0,
	/* Reading changes the target: a page read is faulted into its page
	 * tables (doc/reading-policy.md).  Read only what an analysis needs;
	 * never scan file-backed read-only data for a signature. */
	HS_CAP_READ_FAULTS = 1 << 1,
	/* The maps carry smaps figures (Rss, Pss, Swap ...). */
	HS_CAP_SMAPS = 1 << 2,
	/* A picture that no longer runs (core, dump, buffer): reading is free
	 * and nothing changes between two reads. */
	HS_CAP_POST_MORTEM = 1 << 3,
	/* Threads can be unwound by ptrace (libunwind-ptrace); otherwise from
	 * the registers and memory of the picture. */
	HS_CAP_PTRACE_UNWIND = 1 << 4,
};

enum hs_target_flags {
	HS_TARGET_NO_STOP = 1 << 0, /* live: never stop the process */
	HS_TARGET_NO_SWAPIN = 1 << 1, /* live: leave swapped-out pages unread
					 (short reads; counted in swap_skipped) */
};

enum hs_target_state_flags {
	HS_TSTATE_PARTIAL = 1 << 0,   /* something could not be read */
	HS_TSTATE_GONE = 1 << 1,      /* target exited during the run */
	HS_TSTATE_SUSPENDED = 1 << 2, /* currently stopped by us */
	HS_TSTATE_COPY_LOST = 1 << 3, /* with GONE: the --fork copy died
					 mid-run (its guard was killed); the
					 target itself runs on */
};

struct hs_target {
	const struct hs_target_ops *ops;
	unsigned flags;          /* enum hs_target_flags, from open */
	unsigned caps;           /* enum hs_target_caps, set by the backend */
	unsigned state;          /* enum hs_target_state_flags */
	struct hs_proc_info info;
	struct hs_maps maps;     /* sorted by start, classified */
	struct hs_thread *threads;
	size_t nthreads;
	uint64_t stop_ns;        /* total time the target was stopped by us */
	uint64_t open_ns;        /* hs_now_ns() when the target was opened */
	uint64_t unreadable;     /* bytes asked for that could not be read */
	/* Live reads (doc/reading-policy.md): bytes read that were in swap
	 * (the one change reading makes to the target), and bytes asked for
	 * that were left in swap under HS_TARGET_NO_SWAPIN.  page_policy is
	 * a static string saying how untouched pages were kept untouched
	 * ("pagemap", ...), or NULL for targets where it does not apply. */
	uint64_t swapped_in;
	uint64_t swap_skipped;
	/* Live reads: bytes of pages the process did not have that had to be
	 * read through it anyway (their file could not be opened), which
	 * maps them into it. */
	uint64_t faulted_in;
	const char *page_policy;
	char *source;            /* owned: "pid 1234" or the core's path */
	void *priv;              /* backend state */
};

/* Allocates a target with ops; the backend fills the rest. */
struct hs_target *hs_target_new(const struct hs_target_ops *ops);
/* Resumes if suspended, releases the backend and everything owned.
 * t may be NULL. */
void hs_target_close(struct hs_target *t);

/* The file behind mapping m (see hs_target_ops.open_file): an fd or a
 * negative error.  Never anything but a regular file. */
int hs_target_open_file(struct hs_target *t, const struct hs_map *m) HS_MUST_CHECK;

/* Whether the target is held still while it is read (stoppable, and not
 * opened with HS_TARGET_NO_STOP): reports say "stopped for N ms". */
bool hs_target_holds(const struct hs_target *t);

/* No-ops (return 0) when the backend has no such operation. */
int hs_target_suspend(struct hs_target *t) HS_MUST_CHECK;
int hs_target_resume(struct hs_target *t);

/* Frees the thread array (and each xstate) and the info strings. */
void hs_target_clear_threads(struct hs_target *t);
void hs_proc_info_release(struct hs_proc_info *info);

/* See hs_target_ops.read.  Records -ESRCH as HS_TSTATE_GONE. */
int hs_target_read(struct hs_target *t, hs_addr_t addr, void *buf, size_t len,
		   size_t *nread) HS_MUST_CHECK;
/* All of [addr, addr+len) or an error (-EFAULT if any part is missing). */
int hs_target_read_full(struct hs_target *t, hs_addr_t addr, void *buf,
			size_t len) HS_MUST_CHECK;
int hs_read_u64(struct hs_target *t, hs_addr_t addr, uint64_t *out) HS_MUST_CHECK;
/* A NUL-terminated string of at most max-1 bytes into out[max]; returns
 * its length, or a negative error.  Unterminated within max: -HS_E_CORRUPT */
int hs_read_cstr(struct hs_target *t, hs_addr_t addr, char *out, size_t max) HS_MUST_CHECK;

/*
 * The first extent [*start, *end) within [addr, limit) that may hold data
 * (see hs_target_ops.next_data); without that op, [addr, limit) itself.
 * Returns 0, or -ENXIO when [addr, limit) is all hole.
 */
int hs_target_next_data(struct hs_target *t, hs_addr_t addr, hs_addr_t limit,
			hs_addr_t *start, hs_addr_t *end) HS_MUST_CHECK;

/*
 * Streams [start, end) through cb in pieces of at most bufsz bytes read into
 * buf (caller-owned, so memory stays bounded).  Unreadable pages (and the
 * holes hs_target_next_data reports, in one step) are skipped and added to *unreadable (may be NULL) and to t->unreadable; the next
 * call to cb then has an address that does not follow the previous one,
 * which is how a consumer tells a gap.  cb returns 0 to go on, anything
 * else to stop (returned as is).  Polls hs_interrupted.
 * Returns 0, cb's value, -ESRCH if the target went away, or
 * -HS_E_INTERRUPTED.
 */
typedef int (*hs_chunk_cb)(void *ud, hs_addr_t addr, const void *data,
			   size_t len);
int hs_target_stream(struct hs_target *t, hs_addr_t start, hs_addr_t end,
		     void *buf, size_t bufsz, hs_chunk_cb cb, void *ud,
		     uint64_t *unreadable) HS_MUST_CHECK;

/*
 * Assigns a class to every mapping (map->cls, map->stack_tid) from the maps
 * and the threads' stack pointers.  Reads no memory.
 */
void hs_classify(struct hs_target *t);

/* The mapping containing addr, or NULL. */
const struct hs_map *hs_target_find_map(const struct hs_target *t, hs_addr_t addr);

/* ---- problems found in target memory ------------------------------- */

/*
 * An inconsistency a walker found in target memory (corruption, or a
 * picture torn by --no-stop): where, and what.  Walkers keep the first
 * few in an array and count them all.
 */
struct hs_problem {
	hs_addr_t addr;
	char msg[112];
};

/* Records a problem in v[cap] while *n < cap, and counts it in *n
 * either way.  Not locked: callers on several threads lock around it. */
void hs_problem_vadd(struct hs_problem *v, size_t cap, size_t *n, hs_addr_t addr,
		     const char *fmt, va_list ap) HS_PRINTF(5, 0);
void hs_problem_add(struct hs_problem *v, size_t cap, size_t *n, hs_addr_t addr,
		    const char *fmt, ...) HS_PRINTF(5, 6);

/* ---- mem backend (unit tests) ---------------------------------------- */

/*
 * A target over caller-owned buffers: each segment maps [addr, addr+len)
 * to data.  Add maps and segments after open; the data must outlive the
 * target.  Reads outside every segment fail with -EFAULT.
 */
int hs_target_open_mem(struct hs_target **out) HS_MUST_CHECK;
/* Adds a readable segment; also adds a map with perms and path (path may be
 * NULL) unless perms is 0. */
void hs_target_mem_add(struct hs_target *t, hs_addr_t addr, const void *data,
		       size_t len, unsigned perms, const char *path);

#endif
