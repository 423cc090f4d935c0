/*
 * hs_show: what is at one address of a target, and what points at it.
 *
 *   - hs_show_locate(): the malloc chunks holding a batch of addresses, in
 *     ONE pass of the glibc walker (hs_glibc_for_each_chunk) that stops as
 *     soon as every address that can be in a chunk has been found;
 *   - hs_refs_scan(): a bounded scan of the target's writable memory for
 *     aligned words whose value lies in [lo, hi): one range compare per
 *     word over pieces read by hs_target_stream, no call per word;
 *   - hs_show_collect(): the whole picture for `heapscan show ADDR`: the
 *     mapping, the chunk, a bounded copy of its bytes, each word classified
 *     (points into a mapping, into a chunk, at a printable string), and
 *     optionally the references to it, in memory and in the threads'
 *     registers (hs_refs_scan_regs()).
 *
 * Symbols are not this layer's business (it sees only hs_core.h): words
 * pointing into file-backed mappings are left for the caller to resolve.
 * Target memory is hostile: every read is bounded, every pointer read from
 * the target is only ever compared or looked up, never trusted as a size.
 */
#ifndef HS_SHOW_H
#define HS_SHOW_H

#include "hs_core.h"
#include "hs_block.h"
#include "hs_glibc.h"

/* ---- locating chunks ------------------------------------------------- */

struct hs_show_loc {
	hs_addr_t addr;               /* in: any address */
	bool found;                   /* out: chunk is valid */
	struct hs_glibc_chunk chunk;  /* out: the chunk holding addr */
	/* out: whose bytes addr is: chunk, except for chunk's prev_size word
	 * when the chunk before is in use and adjacent (its user bytes run
	 * into that word): then that chunk. */
	struct hs_glibc_chunk owner;
};

/*
 * true when a may lie in a chunk of h: inside a walked heap segment, a top
 * chunk, or (unless h walks without mmapped chunks) a read-write anonymous
 * mapping that could hold an mmapped chunk.  Reads no memory.
 */
bool hs_show_maybe_chunk(const struct hs_glibc_heap *h, hs_addr_t a);

/*
 * Fills found/chunk of each of the n entries of v (any order, duplicates
 * allowed) with one walk of h, stopped early once every entry for which
 * hs_show_maybe_chunk() holds has been found.  A chunk "holds" a when
 * chunk.addr <= a < chunk.addr + chunk.size.  h and v may be NULL/empty
 * (nothing found).  Returns 0, -ESRCH or -HS_E_INTERRUPTED.
 */
int hs_show_locate(struct hs_glibc_heap *h, struct hs_show_loc *v,
		   size_t n) HS_MUST_CHECK;

/* ---- reference scan -------------------------------------------------- */

enum hs_refs_cut {
	HS_REFS_COMPLETE = 0,  /* every selected mapping was scanned */
	HS_REFS_CUT_RESULTS,   /* max_results references found */
	HS_REFS_CUT_BYTES,     /* the byte budget ran out */
	HS_REFS_CUT_TIME,      /* the time budget ran out */
};

/* "complete", "results", "bytes", "time" */
const char *hs_refs_cut_name(enum hs_refs_cut c);

struct hs_refs_opts {
	size_t max_results;     /* 0: 64 */
	uint64_t max_bytes;     /* bytes to scan at most; 0: no limit */
	uint64_t max_ns;        /* wall time at most; 0: no limit */
	size_t bufsz;           /* piece size for hs_target_stream; 0: 1 MiB */
	unsigned classes;       /* mask of 1u << enum hs_class; 0: shm, heap, arena,
				   anon, stack, data */
	/* Words inside [skip_lo, skip_hi) are not references (the object's
	 * own words); empty when skip_lo >= skip_hi. */
	hs_addr_t skip_lo, skip_hi;
};

struct hs_ref {
	hs_addr_t at;           /* address of the word */
	uint64_t value;         /* the word: lo <= value < hi */
	size_t map;             /* index in t->maps.v of the mapping holding at */
};

struct hs_refs {
	struct hs_ref *v;       /* owned, sorted by at */
	size_t n, alloc;
	enum hs_refs_cut cut;
	uint64_t scanned;       /* bytes compared */
	uint64_t unreadable;    /* bytes of selected mappings not readable */
	size_t maps_scanned;    /* mappings scanned, completely or partly */
	uint64_t ns;            /* time spent */
};

/*
 * Scans the read-write mappings of the selected classes of t, smallest
 * classes first (data, stack, heap, arena, anon, shm), for 8-aligned words w
 * with lo <= w < hi.  A thread's stack is scanned from its stack pointer
 * minus the 128-byte red zone (below are dead frames) when the thread's sp
 * is known.  Memory use is the piece buffer plus the results;
 * time and bytes are bounded by opts (may be NULL: defaults), and r->cut
 * says which bound ended the scan.  r must be zeroed (or released) first
 * and is filled even on error (what was found so far).
 * Returns 0, -EINVAL (lo >= hi), -ESRCH or -HS_E_INTERRUPTED.
 */
int hs_refs_scan(struct hs_target *t, hs_addr_t lo, hs_addr_t hi,
		 const struct hs_refs_opts *opts, struct hs_refs *r) HS_MUST_CHECK;
void hs_refs_release(struct hs_refs *r);

/* ---- register references --------------------------------------------- */

/* A thread register whose value lies in [lo, hi). */
struct hs_reg_ref {
	pid_t tid;
	enum hs_reg reg;        /* index into struct hs_regs.r */
	uint64_t value;
};

struct hs_reg_refs {
	struct hs_reg_ref *v;   /* owned; in t->threads order, then register
				   order (enum hs_reg) */
	size_t n, alloc;
	size_t threads;         /* threads whose registers were checked */
	size_t threads_noregs;  /* threads without registers (a live target
				   read with --no-stop, a thread that could
				   not be stopped) */
};

/* "rsi", "orig_rax", "fs_base"...: the user_regs_struct member name of r
 * (lowercase); "?" when r is out of range. */
const char *hs_reg_name(enum hs_reg r);

/*
 * Checks every register of every thread of t that has registers
 * (has_regs) against [lo, hi): all HS_REG_N members of the x86_64
 * user_regs_struct, rip, rsp, rbp, orig_rax and the segment bases
 * included.  A pointer held only in a register (a buffer a thread is
 * blocked reading into, a loop cursor) is a reference the memory scan
 * cannot see.  Reads no memory; no limits apply, as there are at most
 * nthreads x HS_REG_N hits.  r must be zeroed (or released) first.
 * Returns 0, or -EINVAL when lo >= hi.
 */
int hs_refs_scan_regs(const struct hs_target *t, hs_addr_t lo, hs_addr_t hi,
		      struct hs_reg_refs *r) HS_MUST_CHECK;
void hs_reg_refs_release(struct hs_reg_refs *r);

/* ---- show ------------------------------------------------------------ */

/*
 * The printable string at addr, if there is one: at least min_len bytes of
 * printable ASCII (and tab), ended by a NUL, a non-printable byte or the
 * max-1 limit.  Copies it into out[max] NUL-terminated and returns its
 * length; 0 when there is none (or addr is unreadable).  Reads at most
 * max - 1 bytes.
 */
size_t hs_show_peek_string(struct hs_target *t, hs_addr_t addr, size_t min_len,
			   char *out, size_t max);

#define HS_SHOW_STR_MAX 48

/* One 8-byte word of the dump. */
struct hs_show_word {
	hs_addr_t at;
	uint64_t value;
	int header;             /* 1: prev_size, 2: size field of the chunk
				   shown; 0: data */
	size_t map;             /* index in t->maps.v holding value, or
				   (size_t)-1: value is not an address */
	bool in_chunk;
	struct hs_glibc_chunk chunk; /* valid if in_chunk */
	char str[HS_SHOW_STR_MAX];   /* printable string at value, or "" */
	size_t str_len;
};

struct hs_show_opts {
	size_t max_bytes;       /* bytes of a chunk to dump; 0: 4096 */
	size_t len;             /* bytes to dump outside a chunk; 0: 256 */
	bool refs;              /* run hs_refs_scan on the object */
	/* Another allocator's blocks (hs_block.h), used when h is NULL:
	 * the block holding addr is the object shown.  May be NULL. */
	const struct hs_blocks *blocks;
	struct hs_refs_opts refs_opts; /* skip_lo/hi are set by collect */
};

/* A reference, with the chunk that holds it. */
struct hs_show_ref {
	struct hs_ref ref;
	bool in_chunk;
	struct hs_glibc_chunk chunk;
};

struct hs_show {
	hs_addr_t addr;         /* the address asked about */
	size_t map;             /* index in t->maps.v holding addr */
	bool in_chunk;          /* addr is in chunk */
	struct hs_glibc_chunk chunk;
	hs_addr_t arena;        /* address of chunk's arena, 0 if mmapped/none */
	/* Without a glibc heap, the block of opts.blocks holding addr. */
	bool in_block;
	struct hs_block block;
	/* The object: the chunk [addr, addr+size), or else the dumped bytes. */
	hs_addr_t obj_lo, obj_hi;
	/* The dump: bytes at [dump_addr, dump_addr + dump_len). */
	hs_addr_t dump_addr;
	unsigned char *dump;    /* owned */
	size_t dump_len;
	size_t dump_want;       /* what the object had to show (before the
				   max_bytes/len bound and short reads) */
	struct hs_show_word *words; /* owned, one per aligned word of the dump */
	size_t nwords;
	bool has_refs;
	struct hs_refs refs;    /* owned; refs.v parallels xrefs */
	struct hs_show_ref *xrefs; /* owned, refs.n entries */
	bool locate_done;       /* chunk lookups were made (h not NULL) */
	/* With refs: the threads' registers pointing into [obj_lo, obj_hi)
	 * (hs_refs_scan_regs), owned.  Not counted in refs, not bounded by
	 * refs_opts. */
	struct hs_reg_refs regrefs;
	/* Where reference offsets count from: the user pointer (chunk + 16)
	 * of a chunk, else addr.  A value in a chunk's header is below it. */
	hs_addr_t obj_base;
};

/*
 * Collects the show picture of addr in t with h (may be NULL: no glibc
 * heap, so no chunks; everything else still works).  opts may be NULL.
 * The dump of a chunk starts at its header and ends at the end of its
 * usable bytes (for an in-use heap chunk that is 8 bytes into the next
 * chunk, whose prev_size field it uses), cut at max_bytes; outside a chunk
 * it is len bytes from addr rounded down to 16, cut at the mapping's end.
 * Map indices stay valid while t's maps are not refreshed (no suspend).
 * s must be zeroed first; release with hs_show_release() even on error.
 * Returns 0; -HS_E_NOT_FOUND when addr is in no mapping; -EFAULT when its
 * bytes cannot be read; -ESRCH; -HS_E_INTERRUPTED.
 */
int hs_show_collect(struct hs_target *t, struct hs_glibc_heap *h, hs_addr_t addr,
		    const struct hs_show_opts *opts, struct hs_show *s) HS_MUST_CHECK;
void hs_show_release(struct hs_show *s);

#endif
