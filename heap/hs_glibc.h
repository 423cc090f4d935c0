/*
 * hs_glibc: a walker for glibc's malloc heap (ptmalloc2), glibc 2.12-2.40
 * on x86_64 (and RHEL 7's 2.17, whose arena has a backported field).
 *
 * hs_glibc_open() finds everything the walk needs and collects the free
 * lists; it does not walk the chunks yet:
 *   - the glibc version, which selects an offset table (glibc-layouts.c):
 *     from libc's own ELF image (the highest GLIBC_2.N version definition,
 *     read from pages the process already has resident: see
 *     hs_glibc_ident_read), narrowed by a libc-2.NN.so file name; on
 *     post-mortem targets (no suspend op: reading is free) from the
 *     "GNU C Library ... version 2.NN" banner in .rodata when the ELF
 *     image is missing; else the file name; else inferred from the
 *     structures.  A live target's libc .rodata is never read: that would
 *     fault its file pages in and grow its Rss;
 *   - main_arena: the caller's address if given (opts.main_arena, trusted),
 *     else the caller's candidates that pass the checks below
 *     (opts.candidates), else a scan of libc's writable mappings checked
 *     by the `next` ring, `top` and the self-referencing empty bins;
 *   - mp_ (optional: sbrk_base, n_mmaps, mmapped_mem), by a signature scan;
 *   - thread arenas through the ring, and each arena's heaps through the
 *     64 MiB-aligned heap_info of the heap holding top and its `prev` chain;
 *   - every thread's tcache (the first chunk of each arena's first heap,
 *     and pointers found in each thread's TLS below fs_base), every
 *     arena's fastbins (safe-linked on 2.32+) and unsorted/small/large
 *     bins, as a set of chunk addresses with their kind.
 * hs_glibc_for_each_chunk() then makes ONE linear pass over each heap
 * segment, reading chunk headers in 1 MiB batches, and names every chunk's
 * state; hs_glibc_analyze() is that pass plus counting.
 *
 * Target memory is hostile: every loop is bounded, free-list cycles are
 * detected through the set, sizes are checked against the segment, and a
 * bad header is recorded as a problem (address + reason) after which the
 * walk resynchronises on the next plausible chain of headers or gives up
 * on that segment.  Memory is bounded: no per-chunk arrays, the free set
 * is capped (opts.max_free_chunks), the size histogram is capped.
 *
 * This layer sees only hs_core.h: no ptrace, no libelf, no capstone.  A
 * symbols layer that knows main_arena's address passes it in opts.
 */
#ifndef HS_GLIBC_H
#define HS_GLIBC_H

#include "hs_core.h"

/* What a chunk is.  Every byte of a walked segment is in exactly one. */
#define HS_CHUNK_STATES(X)                                                  \
	X(INUSE, "inuse", "in use")                                             \
	X(TCACHE, "tcache", "free in a tcache")                                 \
	X(FASTBIN, "fastbin", "free in a fastbin")                              \
	X(UNSORTED, "unsorted", "free in the unsorted bin")                     \
	X(SMALLBIN, "small", "free in a small bin")                             \
	X(LARGEBIN, "large", "free in a large bin")                             \
	X(UNBINNED, "unbinned", "free (next PREV_INUSE clear) but in no list")  \
	X(TOP, "top", "top chunk (free)")                                       \
	X(MMAPPED, "mmapped", "mmapped chunk (in use)")                         \
	X(UNPARSED, "unparsed", "bytes skipped after a corrupt header")

enum hs_chunk_state {
#define HS_X_(n, s, l) HS_CHUNK_##n,
	HS_CHUNK_STATES(HS_X_)
#undef HS_X_
	HS_CHUNK_STATE_N
};

const char *hs_chunk_state_name(enum hs_chunk_state s);  /* "tcache" */
const char *hs_chunk_state_label(enum hs_chunk_state s); /* "free in a tcache" */
/* true for the free kinds (TCACHE..TOP); INUSE, MMAPPED, UNPARSED: false. */
bool hs_chunk_state_is_free(enum hs_chunk_state s);

/* Offsets of one glibc release range (x86_64), as data.  -1: absent. */
struct hs_glibc_layout {
	unsigned min_minor, max_minor; /* 2.min .. 2.max inclusive */
	const char *name;              /* "2.35-2.40" */
	/* struct malloc_state */
	int ms_fastbins, ms_top, ms_last_remainder, ms_bins;
	int ms_next, ms_next_free, ms_attached_threads, ms_system_mem;
	unsigned ms_size;
	/* struct heap_info: ar_ptr +0, prev +8, size +0x10, mprotect_size +0x18 */
	unsigned hi_size;
	/* struct malloc_par (mp_) */
	int mp_mmap_threshold, mp_arena_test, mp_n_mmaps, mp_n_mmaps_max;
	int mp_mmapped_mem, mp_sbrk_base, mp_tcache_bins, mp_tcache_count;
	unsigned mp_size;
	/* tcache_perthread_struct: 0 count_size means no tcache */
	unsigned tc_count_size;  /* 1 (char) or 2 (uint16_t) */
	unsigned tc_entries;     /* offset of entries[64] */
	unsigned tc_chunk_size;  /* its chunk size (0x250 / 0x290) */
	bool safe_linking;       /* 2.32+: tcache next and fastbin fd mangled */
};

/* The layout for glibc 2.minor, or NULL if unsupported. */
const struct hs_glibc_layout *hs_glibc_layout_for(unsigned major, unsigned minor);
/* L's variant with malloc_state.attached_threads backported before
 * system_mem (RHEL 7's 2.17), or NULL when L has it already. */
const struct hs_glibc_layout *hs_glibc_layout_backport(const struct hs_glibc_layout *L);

enum hs_glibc_open_flags {
	HS_GLIBC_NO_MMAPPED = 1 << 0, /* skip the anonymous-mapping scan */
	HS_GLIBC_NO_TLS = 1 << 1,     /* do not look for tcaches in TLS */
	HS_GLIBC_NO_SCAN = 1 << 2,    /* never scan libc's data for main_arena:
					 only opts.main_arena / candidates */
};

#define HS_GLIBC_MAX_CANDIDATES 8

struct hs_glibc_opts {
	hs_addr_t main_arena;    /* 0: candidates, then the scan */
	/* What main_arena came from, for the report ("symbol"); NULL:
	 * "caller".  Static storage: it is kept in the heap as is. */
	const char *main_arena_how;
	/* Guesses (a debug symbol, disassembly), tried in order; the first
	 * that passes the arena checks is main_arena, its source named by
	 * candidate_how[i] (static storage; NULL: "candidate").  None
	 * passes: the scan, unless HS_GLIBC_NO_SCAN. */
	hs_addr_t candidates[HS_GLIBC_MAX_CANDIDATES];
	const char *candidate_how[HS_GLIBC_MAX_CANDIDATES];
	size_t ncandidates;
	unsigned version_minor;  /* 0: detect (2.minor) */
	size_t max_free_chunks;  /* cap of the free set; 0: 4 Mi chunks */
	unsigned flags;          /* enum hs_glibc_open_flags */
};

/*
 * What libc's ELF image in the target says (glibc-elf.c): its build-id
 * and its highest GLIBC_2.N symbol-version definition.  That version is
 * the release's own only when the release added symbols (2.19-2.21 define
 * GLIBC_2.18 at most, 2.31 GLIBC_2.30, 2.37 GLIBC_2.36, 2.40 GLIBC_2.39),
 * so it gives a range of releases, which always falls in one layout row.
 */
struct hs_glibc_ident {
	unsigned verdef_minor;       /* N of the highest GLIBC_2.N, 0 if none */
	unsigned minor_lo, minor_hi; /* the releases it means: 2.lo .. 2.hi */
	/* The private symbol whose presence or absence narrowed the range
	 * (static string), or NULL. */
	const char *marker;
	bool marker_present;
	unsigned char build_id[32];  /* NT_GNU_BUILD_ID */
	size_t build_id_len;         /* 0: none found */
};

/*
 * Reads the ident of the libc whose first mapping (file offset 0) starts
 * at base, from its ELF header, program headers, PT_NOTE, PT_DYNAMIC
 * (DT_STRTAB, DT_STRSZ, DT_VERDEF, DT_VERDEFNUM) and .gnu.version_d: only
 * pages ld.so itself has touched, never .rodata.  Every read is bounded
 * to libc's mappings.  Returns 0 (verdef found; build_id may still be
 * empty), -HS_E_NOT_FOUND (not readable or no GLIBC_2.N; out->build_id
 * may be set), -HS_E_CORRUPT (not an x86_64 ELF image).
 */
int hs_glibc_ident_read(struct hs_target *t, hs_addr_t base,
			struct hs_glibc_ident *out) HS_MUST_CHECK;

struct hs_glibc_count {
	uint64_t count, bytes;
};

/* One heap of an arena, and how far the walk got. */
struct hs_glibc_seg {
	hs_addr_t heap;          /* heap_info (thread arenas) or sbrk_base */
	hs_addr_t start;         /* first chunk */
	hs_addr_t end;           /* end of the chunks: top, or heap end */
	hs_addr_t map_end;       /* end of the heap's memory (heap + size) */
	bool has_top;            /* end is this arena's top chunk */
	hs_addr_t walked_to;     /* set by the walk: where it stopped */
	bool complete;           /* the walk reached end */
};

struct hs_glibc_arena {
	hs_addr_t addr;
	bool is_main;
	hs_addr_t top;
	uint64_t top_size;
	uint64_t system_mem;
	/* The arena's mutex was held when it was read: a thread was inside
	 * malloc or free (a core taken then, or a live target stopped
	 * then), so its free lists may be mid-update. */
	bool locked;
	struct hs_glibc_seg *segs; /* owned */
	size_t nsegs;
	/* From the free lists at open (cross-check for the walk). */
	struct hs_glibc_count lists[HS_CHUNK_STATE_N];
	/* From the walk (hs_glibc_analyze). */
	struct hs_glibc_count st[HS_CHUNK_STATE_N];
};

struct hs_glibc_tcache {
	hs_addr_t addr;          /* the tcache_perthread_struct (user pointer) */
	pid_t tid;               /* thread whose TLS named it, 0 if unknown */
	struct hs_glibc_count entries;
};


struct hs_glibc_size_bucket {
	uint64_t size;           /* chunk size; 0 = "all other sizes" */
	uint64_t count, bytes;
	hs_addr_t sample;        /* the first chunk of this size the walk met
				    (its header address: `heapscan show` it) */
};

#define HS_GLIBC_MAX_PROBLEMS 32

struct hs_glibc_heap {
	struct hs_target *t;     /* borrowed: must outlive the heap */
	struct hs_glibc_opts opts;
	unsigned version_minor;  /* glibc 2.minor; 0 if not found */
	/* Highest release the evidence allows: == version_minor when exact,
	 * larger when only the symbol version was seen (2.36 -> 2.36-2.37). */
	unsigned version_minor_max;
	char version[96];        /* the banner or file name it came from */
	/* "verdef", "verdef+name", "banner", "file name", "given",
	 * "inferred", or "" */
	const char *version_source;
	struct hs_glibc_ident ident; /* libc's build-id and verdef, if read */
	const struct hs_glibc_layout *layout;
	hs_addr_t main_arena;
	/* "caller", the opts' how for a caller's address or candidate
	 * ("symbol", "disasm"), "scan" */
	const char *main_arena_how;
	hs_addr_t mp;            /* 0 if not found */
	uint64_t mp_n_mmaps, mp_mmapped_mem;
	struct hs_glibc_arena *arenas; /* owned; [0] is main_arena */
	size_t narenas;
	struct hs_glibc_tcache *tcaches; /* owned */
	size_t ntcaches;
	bool free_set_full;      /* the cap was hit: some free chunks count as
				    in use */
	/* Filled by hs_glibc_analyze(). */
	bool analyzed;
	struct hs_glibc_count mmapped;
	struct hs_glibc_count totals[HS_CHUNK_STATE_N];
	struct hs_glibc_size_bucket *hist; /* owned, in-use chunks, sorted by
					      bytes, descending */
	size_t nhist;
	uint64_t walk_ns;
	uint64_t walked_bytes;
	/* Corruption and inconsistencies, first HS_GLIBC_MAX_PROBLEMS kept. */
	struct hs_problem problems[HS_GLIBC_MAX_PROBLEMS];
	size_t nproblems;        /* total seen (may exceed the array) */
	void *priv;
};

/*
 * Finds the arenas and collects the free lists of target t (which should be
 * suspended for a consistent picture).  opts may be NULL.  On success *out
 * is a heap the caller frees with hs_glibc_close().
 * Errors: -HS_E_UNSUPPORTED (no glibc found, or a version without a
 * layout: then *out is still set, with version/version_minor filled and
 * layout NULL, so the caller can say which; nothing else is valid),
 * -HS_E_NOT_FOUND (main_arena not found; *out set likewise, layout set),
 * -ESRCH, -HS_E_INTERRUPTED.  On other errors *out is NULL.
 */
int hs_glibc_open(struct hs_target *t, const struct hs_glibc_opts *opts,
		  struct hs_glibc_heap **out) HS_MUST_CHECK;
void hs_glibc_close(struct hs_glibc_heap *h);

struct hs_glibc_chunk {
	hs_addr_t addr;          /* chunk header; user pointer is addr + 16 */
	uint64_t size;           /* chunk size, flags masked off */
	enum hs_chunk_state state;
	int arena;               /* index in h->arenas, -1 for mmapped */
};

/*
 * Calls cb for every chunk of every heap segment (in address order within
 * a segment), each top chunk, and (unless HS_GLIBC_NO_MMAPPED) every
 * mmapped chunk.  cb returns 0 to go on; anything else stops the walk and
 * is returned.  Problems found on the way are recorded in h (by the first
 * walk only: later walks see the same memory).  Returns 0,
 * cb's value, -ESRCH, -HS_E_INTERRUPTED.
 */
typedef int (*hs_glibc_chunk_fn)(void *ud, const struct hs_glibc_chunk *c);
int hs_glibc_for_each_chunk(struct hs_glibc_heap *h, hs_glibc_chunk_fn cb,
			    void *ud) HS_MUST_CHECK;

/*
 * The chunks that are not in use, found without walking the heap: every
 * chunk of the free set collected at open (tcache, fastbins, unsorted,
 * small and large bins; one header read each, for its size) and each
 * arena's top chunk; then, with HS_GLIBC_FREE_MMAPPED in flags (and
 * unless HS_GLIBC_NO_MMAPPED), every mmapped chunk (in use), as
 * hs_glibc_for_each_chunk finds them.  Free-set chunks come in no
 * particular order.  A free chunk whose size is below MINSIZE, not a
 * multiple of 16, or runs past the end of its heap segment is skipped
 * (hostile memory: it then counts as in use).  Not found this way: a
 * chunk that is free only by its successor's PREV_INUSE bit but in no
 * list (UNBINNED; a stopped, consistent heap has none), and parts of a
 * segment the walk would mark UNPARSED.  cb as for
 * hs_glibc_for_each_chunk.  Returns 0, cb's value, -ESRCH,
 * -HS_E_INTERRUPTED.
 */
enum hs_glibc_free_flags {
	HS_GLIBC_FREE_MMAPPED = 1 << 0,
};
int hs_glibc_for_each_free_chunk(struct hs_glibc_heap *h, unsigned flags,
				 hs_glibc_chunk_fn cb, void *ud) HS_MUST_CHECK;

/*
 * One walk that fills the per-arena and total counts, mmapped, the
 * histogram, and cross-checks them with the free lists (a mismatch is a
 * problem).  Returns as hs_glibc_for_each_chunk.
 */
int hs_glibc_analyze(struct hs_glibc_heap *h) HS_MUST_CHECK;

/* Free-but-held bytes (every free kind except top) / system_mem, 0..1. */
double hs_glibc_arena_fragmentation(const struct hs_glibc_arena *a);

/* Records a problem (also used by the walker's helpers). */
void hs_glibc_problem(struct hs_glibc_heap *h, hs_addr_t addr,
		      const char *fmt, ...) HS_PRINTF(3, 4);

#endif
