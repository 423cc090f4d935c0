/*
 * hs_jemalloc: a walker for jemalloc 5.x (5.3.0 first: Debian 12's
 * libjemalloc2) on x86_64, without debug info.  Layout facts: doc/jemalloc.md.
 *
 * jemalloc indexes every extent it owns (slabs of small regions, large
 * allocations, and its free dirty/muzzy/retained page runs) in one radix
 * tree keyed by page (the emap's rtree, a global of the library).  Full
 * slabs and large extents of the automatic arenas are on no list, so the
 * tree is the only complete index: hs_jemalloc_open() walks it over the
 * target's anonymous mappings (less opts.skip, the objects' bss tails),
 * extent by extent: the leaf entry of an extent's first page and its
 * 128-byte edata_t, both through one-page caches; the interior entries of
 * an extent are never read, so the untouched interior pages of the tree's
 * leaves are not faulted in.  A slab's free regions are a bitmap in its
 * edata.
 * Thread caches are stacks of freed pointers in each thread's tsd, a
 * static TLS variable of the library found from the thread's fs_base.
 *
 * The symbols layer proposes where the tree is (opts.rtree, from the
 * library's code) and where each thread's tsd lies (opts.tsd_tpoff, from
 * the library's TLS relocation read in the target); this layer checks the
 * proposal against the structures (every extent must point back at the
 * page that named it) and knows nothing of ELF or ptrace.
 *
 * Target memory is hostile: every loop is bounded, every edata is checked
 * against the page that led to it, sizes against the size-class table,
 * and the number of extents and cached pointers is capped.
 */
#ifndef HS_JEMALLOC_H
#define HS_JEMALLOC_H

#include "hs_core.h"

#define HS_JE_NSIZES 232 /* size classes (LG_QUANTUM 4, LG_PAGE 12) */
#define HS_JE_NBINS 36   /* of which small (slab) classes: 8 .. 14336 */
#define HS_JE_MAX_CANDIDATES 8

/* The extent states of jemalloc 5.3 (edata e_bits state). */
enum hs_je_extent_state {
	HS_JE_ACTIVE,
	HS_JE_DIRTY,
	HS_JE_MUZZY,
	HS_JE_RETAINED,
	HS_JE_STATE_N
};
const char *hs_je_state_name(enum hs_je_extent_state s); /* "active" ... */

struct hs_jemalloc_opts {
	/* Candidates for &arena_emap_global.rtree (the emap's rtree_t: a
	 * base pointer, a mutex, then the root array), tried in order; the
	 * first whose tree holds consistent extents is kept. */
	hs_addr_t rtree[HS_JE_MAX_CANDIDATES];
	const char *rtree_how[HS_JE_MAX_CANDIDATES]; /* static; NULL: "candidate" */
	size_t nrtree;
	/* A thread's tsd is at fs_base + tsd_tpoff (have_tpoff), and is
	 * tsd_size bytes (the library's PT_TLS p_memsz; 0: 0xa48). */
	bool have_tpoff;
	int64_t tsd_tpoff;
	uint64_t tsd_size;
	/* Offset of tsd_t's state byte (from the code; 0: not known, then
	 * the tcache is found by its self-references). */
	unsigned tsd_state_off;
	char version[32];        /* "5.3.0-0-g..." if the caller read it */
	/* Anonymous ranges that are no allocator's (the bss tails of the
	 * mapped objects), [start, end) sorted by start; never walked.
	 * Borrowed for hs_jemalloc_open; may be NULL. */
	const hs_addr_t (*skip)[2];
	size_t nskip;
	size_t max_extents;      /* extents kept (104 bytes each); 0: 1 Mi */
	size_t max_cached;       /* cached pointers kept (8 bytes each); 0: 4 Mi */
};

struct hs_je_count {
	uint64_t count, bytes;
};

/* One size class: counts of regions (small) or allocations (large). */
struct hs_je_class {
	uint64_t size;           /* the class's usable size */
	uint64_t in_use;         /* handed to the program */
	uint64_t tcache;         /* freed into a thread cache */
	uint64_t free;           /* free in a slab (small only) */
	uint64_t slabs;          /* slabs of this class (small only) */
	uint64_t nregs;          /* regions per slab (small only) */
	hs_addr_t sample;        /* first in-use region met, 0 if none */
};

struct hs_je_tcache {
	hs_addr_t tsd;           /* the thread's tsd (its tcache inside) */
	pid_t tid;
	struct hs_je_count cached;
};

#define HS_JE_MAX_PROBLEMS 32

/* One extent as the tree gives it (kept sorted by address). */
struct hs_je_extent {
	hs_addr_t addr;          /* its first page */
	hs_addr_t uptr;          /* e_addr: a large allocation's pointer */
	uint64_t size;           /* e_size (pages) */
	hs_addr_t edata;
	uint64_t bits;           /* e_bits */
	uint64_t bitmap[8];      /* slab: free regions (1 = free) */
};

struct hs_jemalloc_heap {
	struct hs_target *t;     /* borrowed: must outlive the heap */
	struct hs_jemalloc_opts opts;
	hs_addr_t rtree;         /* the rtree kept */
	unsigned root_off;       /* offset of its root array (0x78 on Debian) */
	const char *rtree_how;
	hs_addr_t tsd_off_tcache; /* tcache_t's offset in tsd_t, 0 if none */
	unsigned narenas;        /* highest arena index seen + 1 */
	struct hs_je_class cls[HS_JE_NSIZES];
	struct hs_je_count extents[HS_JE_STATE_N]; /* by state, bytes of pages */
	struct hs_je_count slabs, large;           /* active extents */
	struct hs_je_count in_use, tcache, free;   /* regions, usable bytes */
	struct hs_je_tcache *tcaches; /* owned */
	size_t ntcaches;
	bool tcache_known;       /* every thread's tsd was read */
	bool truncated;          /* a cap was hit: counts are partial */
	struct hs_je_extent *ext; /* owned, sorted by addr */
	size_t next;
	hs_addr_t *cached;       /* owned, sorted: pointers in tcaches */
	size_t ncached;
	uint64_t walk_ns;
	struct hs_problem problems[HS_JE_MAX_PROBLEMS];
	size_t nproblems;
};

/* jemalloc's usable size of class index ind (< HS_JE_NSIZES), 0 beyond. */
uint64_t hs_je_index2size(unsigned ind);

/*
 * Finds the tree (opts->rtree), walks it, reads every thread's tcache and
 * counts regions per size class.  Call with the target stopped.  *out is
 * set on success; the caller frees it with hs_jemalloc_close().
 * Errors: -HS_E_NOT_FOUND (no candidate holds a consistent tree), -ESRCH,
 * -HS_E_INTERRUPTED, -ENOMEM.
 */
int hs_jemalloc_open(struct hs_target *t, const struct hs_jemalloc_opts *opts,
		     struct hs_jemalloc_heap **out) HS_MUST_CHECK;
void hs_jemalloc_close(struct hs_jemalloc_heap *h);

enum hs_je_region_state {
	HS_JE_REG_INUSE,
	HS_JE_REG_TCACHE,
	HS_JE_REG_FREE,          /* free in a slab, or a free extent's pages */
};

struct hs_je_region {
	hs_addr_t addr;          /* small: the region; large: its pointer */
	uint64_t size;           /* small: region size; large: to the extent's end */
	unsigned szind;          /* size class; HS_JE_NSIZES for free pages */
	enum hs_je_region_state state;
	unsigned arena;
	bool large;
	hs_addr_t edata;         /* its slab's or extent's edata_t */
};

/*
 * Calls cb for every region of every slab and every large extent (in
 * address order), and with HS_JE_REGIONS_FREE_EXTENTS every free extent
 * (dirty, muzzy) as one FREE block.  Retained extents have no memory
 * behind them and never come.  cb returns 0 to go on, anything else
 * stops the walk and is returned.
 */
enum hs_je_regions_flags {
	HS_JE_REGIONS_FREE_EXTENTS = 1 << 0,
};
typedef int (*hs_je_region_fn)(void *ud, const struct hs_je_region *r);
int hs_jemalloc_for_each_region(struct hs_jemalloc_heap *h, unsigned flags,
				hs_je_region_fn cb, void *ud) HS_MUST_CHECK;

/* True if the pointer p was found in a thread cache. */
bool hs_jemalloc_is_cached(const struct hs_jemalloc_heap *h, hs_addr_t p);

#endif
