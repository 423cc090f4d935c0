/*
 * String-frequency analysis: which printable strings fill a target's memory.
 *
 * Three layers, each usable on its own:
 *
 *   - the scanner (struct hs_str_scanner): a pure function over buffers.
 *     Fed consecutive pieces of memory, it reports every run of printable
 *     characters of at least min_len, once, with its start address, even
 *     when the run crosses pieces.  A piece whose address does not follow
 *     the previous one ends the open run (a gap: unreadable memory);
 *   - the input (struct hs_str_ranges): address ranges, each with the region
 *     class it is counted under.  hs_str_ranges_from_maps() builds them from
 *     t->maps; a heap walker can instead give chunk ranges;
 *   - the driver (hs_strings_scan()): streams the ranges through
 *     hs_target_stream() in bounded chunks, on several threads, and counts
 *     the runs within a memory budget.
 *
 * Counting.  While the distinct strings fit in the budget, counts are exact.
 * Beyond it, the table sheds its least frequent entries (a batched form of
 * Space-Saving, Metwally et al. 2005): every kept count is then an upper
 * bound and count - err a lower bound, and a string that is not reported
 * occurred at most err_bound times.  hs_str_result says which.
 *
 * Two passes at most.  The exact pass: each worker counts the segments it
 * takes (the address space cut at multiples of the segment size) into one
 * table of its own, and the tables are summed at the end (up to 4 tables
 * joined read-only by key on the workers' threads, more merged into the
 * largest); sums do not depend on who counted what, and samples are the
 * lowest addresses.  If a
 * table would exceed its share of the budget, the pass is abandoned and
 * the estimating pass reads everything again: each segment is counted in
 * address order into its own table, and the tables are merged into the
 * result in segment order.  A run belongs to the segment holding its first
 * byte.  Workers only change who counts a segment, so results do not
 * depend on --jobs (in estimated mode, for jobs <= 2: the per-segment
 * budget is max_mem / (2 * max(jobs, 2))).
 *
 * Printable: ASCII 0x20..0x7e and tab, as strings(1).  UTF-16LE: such a
 * character followed by a 0 byte, at even addresses.  Runs are never longer
 * than their range: a run ends at the end of a range.
 *
 * This layer knows only the target interface.
 */
#ifndef HS_STRINGS_H
#define HS_STRINGS_H

#include "hs_core.h"

enum hs_str_encoding {
	HS_STR_ASCII,
	HS_STR_UTF16LE,
};

/* "ascii", "utf16le"; parse returns -1 if unknown. */
const char *hs_str_encoding_name(enum hs_str_encoding e);
int hs_str_encoding_parse(const char *s);

#define HS_STR_MIN_LEN_DEFAULT 6
#define HS_STR_MAX_LEN_DEFAULT 1024
#define HS_STR_MAX_LEN_LIMIT 65536
#define HS_STR_MAX_MEM_DEFAULT (256ull << 20)
#define HS_STR_MAX_MEM_MIN (4ull << 20)
#define HS_STR_CHUNK_DEFAULT (1u << 20)
#define HS_STR_SEG_CHUNKS 32 /* segment size = 32 chunks */
#define HS_STR_TOP_DEFAULT 20
#define HS_STR_SAMPLES 3
#define HS_STR_JOBS_MAX 64

/* ---- where a string lives ------------------------------------------------ */

/*
 * Relative to malloc: in an in-use chunk, in a free chunk, in neither
 * (outside malloc's heaps: other mappings, heap_info and arena headers),
 * in a Python object's memory (a pymalloc arena, or a glibc chunk that
 * holds a str or bytes object: given only for a Python process), or
 * unknown (no heap information was given).
 */
enum hs_str_loc {
	HS_STR_LOC_INUSE,
	HS_STR_LOC_FREE,
	HS_STR_LOC_OUTSIDE,
	HS_STR_LOC_PYTHON,
	HS_STR_LOC_UNKNOWN,
	HS_STR_LOC_N
};

/* "inuse", "free", "outside", "python", "unknown". */
const char *hs_str_loc_name(enum hs_str_loc l);

/*
 * Chunk space as sorted, disjoint, coalesced intervals, each INUSE or
 * FREE; an address in no interval is OUTSIDE.  A chunk at c of size s
 * covers [c + 8, c + s + 8): its first word (prev_size) belongs to the
 * previous chunk, whose user data may run into it, and the next chunk's
 * prev_size to it (mmapped chunks and top stop at c + s).
 * Free intervals are capped (max_free): past the cap free chunks count as
 * in use and `approximate` is set; it is also set when the walker's own
 * free set was full.  Memory: 24 bytes per interval.
 */
struct hs_str_where_iv {
	hs_addr_t start, end;
	enum hs_str_loc loc;
};

struct hs_str_where {
	struct hs_str_where_iv *v; /* owned */
	size_t n, alloc;
	size_t max_free;        /* cap on free intervals; 0: the default */
	size_t nfree;           /* free intervals kept */
	bool approximate;
	bool finished;          /* sorted and coalesced (hs_str_where_finish) */
	bool python;            /* PYTHON intervals were laid over it */
	uint64_t chunks;        /* chunks seen */
	uint64_t inuse_bytes, free_bytes;
	/* Problems (corruption) the glibc heap it came from had recorded
	 * when it was made: its locations may then be wrong. */
	uint64_t heap_problems;
};

#define HS_STR_WHERE_MAX_FREE_DEFAULT (1u << 20)
#define HS_STR_WHERE_INIT { NULL, 0, 0, 0, 0, false, false, false, 0, 0, 0, 0 }

void hs_str_where_release(struct hs_str_where *w);
/* Records [start, end) as loc (INUSE or FREE), coalescing with the last
 * interval when adjacent.  Any order; call hs_str_where_finish after. */
void hs_str_where_add(struct hs_str_where *w, hs_addr_t start, hs_addr_t end,
		      enum hs_str_loc loc);
/* Sorts and coalesces; where intervals overlap (hostile metadata) the
 * earlier one wins.  Idempotent. */
void hs_str_where_finish(struct hs_str_where *w);
/*
 * Lays the intervals ov[n] (sorted, disjoint, each of one loc) over w
 * (finished): inside them their loc wins over w's, elsewhere w is kept.
 * Sets w->python when one of them is PYTHON.  Memory: w->n + 2n intervals.
 */
void hs_str_where_overlay(struct hs_str_where *w, const struct hs_str_where_iv *ov,
			  size_t n);
/*
 * Chunk space of h into w (empty, max_free as wanted), finished.  Without
 * walking the heap: the free chunks the free lists name and each top
 * (hs_glibc_for_each_free_chunk, one header read each) are FREE, mmapped
 * chunks INUSE, and every other byte of each heap segment's chunks INUSE
 * (a segment that lost its top ends at its fencepost).  This is the
 * walk's answer for a consistent heap; it differs only where the heap is
 * not: a chunk free by its successor's PREV_INUSE but in no list
 * (UNBINNED) counts as in use, and bytes after a corrupt header count as
 * in use rather than outside.  When h recorded a problem (h->nproblems:
 * corrupt lists at open, or a walk's findings) the walk is used instead.
 * Past max_free the free intervals of highest address count as in use.
 * Returns 0 or the error of reading (w is then released).
 */
struct hs_glibc_heap;
int hs_str_where_from_glibc(struct hs_str_where *w, struct hs_glibc_heap *h) HS_MUST_CHECK;
/*
 * The same from a walk of every chunk (hs_glibc_for_each_chunk: heaps,
 * top, mmapped chunks): UNBINNED chunks are free, UNPARSED bytes outside;
 * past max_free, free chunks count as in use in walk order.  Reads every
 * chunk header: about as much memory as the scan itself.
 */
int hs_str_where_from_glibc_walk(struct hs_str_where *w, struct hs_glibc_heap *h) HS_MUST_CHECK;
/*
 * The same from any walker's blocks (hs_block.h): in-use blocks INUSE,
 * cached and free ones FREE, every other byte outside; past max_free,
 * free blocks count as in use in walk order.  The glibc functions above
 * stay the reference for glibc (they also cover each chunk's size
 * word); this is how the jemalloc heap gives strings their places.
 */
struct hs_blocks;
int hs_str_where_from_blocks(struct hs_str_where *w, const struct hs_blocks *b) HS_MUST_CHECK;
/* Where addr lives (w finished). */
enum hs_str_loc hs_str_where_find(const struct hs_str_where *w, hs_addr_t addr);
/* Index of the first interval of w ending after addr (w->n if none). */
size_t hs_str_where_lower(const struct hs_str_where *w, hs_addr_t addr);

/* ---- scanner ---------------------------------------------------------- */

/*
 * Called once per run: s/stored are the first min(len, max_len) characters
 * (for UTF-16LE, the low bytes), len the run's real length in characters,
 * addr its first byte.  s is borrowed for the call only.
 */
typedef void (*hs_str_emit_fn)(void *ud, hs_addr_t addr, const char *s,
			       size_t stored, uint64_t len);

struct hs_str_scanner {
	/* configuration, set by hs_str_scanner_init */
	enum hs_str_encoding enc;
	unsigned min_len, max_len;
	hs_str_emit_fn emit;
	void *ud;
	/* state */
	bool skip;          /* drop the printable units at the start */
	bool have_next;
	hs_addr_t next;     /* address that would continue the last piece */
	bool have_odd;      /* UTF-16: first byte of a unit split by a piece */
	unsigned char odd;
	hs_addr_t run_addr;
	uint64_t run_len;   /* characters in the open run; 0: none */
	char *carry;        /* owned, max_len bytes: open run's first chars */
	size_t carry_len;
};

/* min_len >= 1, max_len >= min_len (clamped); emit must not be NULL. */
void hs_str_scanner_init(struct hs_str_scanner *sc, enum hs_str_encoding enc,
			 unsigned min_len, unsigned max_len,
			 hs_str_emit_fn emit, void *ud);
void hs_str_scanner_release(struct hs_str_scanner *sc);
/*
 * Scans len bytes at addr.  If addr does not continue the previous piece,
 * the open run is ended first.  A piece of length 0 changes nothing.
 */
void hs_str_scan(struct hs_str_scanner *sc, hs_addr_t addr, const void *buf,
		 size_t len);
/* Ends the open run (end of a range, or a gap), emitting it if long enough,
 * and forgets the position: the next piece starts afresh. */
void hs_str_scan_end(struct hs_str_scanner *sc);
/* Whether a run is open (the next contiguous byte could extend it). */
bool hs_str_scan_in_run(const struct hs_str_scanner *sc);

/* ---- input ranges ------------------------------------------------------ */

struct hs_str_range {
	hs_addr_t start, end; /* [start, end) */
	enum hs_class cls;
};

struct hs_str_ranges {
	struct hs_str_range *v;
	size_t n, alloc;
};

#define HS_STR_RANGES_INIT { NULL, 0, 0 }
void hs_str_ranges_release(struct hs_str_ranges *r);
/* Appends one range (empty ranges are ignored).  Ranges should be sorted
 * by address and disjoint; hs_strings_scan() checks that. */
void hs_str_ranges_add(struct hs_str_ranges *r, hs_addr_t start, hs_addr_t end,
		       enum hs_class cls);
/* The readable mappings of maps whose class is in class_mask
 * (1 << HS_CLASS_x). */
void hs_str_ranges_from_maps(struct hs_str_ranges *r, const struct hs_maps *maps,
			     unsigned class_mask);
/*
 * out = the parts of in that lie in w's intervals of the locations in
 * loc_mask (1 << HS_STR_LOC_x; OUTSIDE selects the complement of chunk
 * space), each keeping its range's class.  w must be finished; in sorted.
 */
void hs_str_ranges_restrict(struct hs_str_ranges *out, const struct hs_str_ranges *in,
			    const struct hs_str_where *w, unsigned loc_mask);
/* heap, arena, anon: where leaked data lives. */
#define HS_STR_CLASSES_DEFAULT                                              \
	((1u << HS_CLASS_HEAP) | (1u << HS_CLASS_ARENA) | (1u << HS_CLASS_ANON))

/* ---- the analysis ----------------------------------------------------- */

enum hs_str_rank {
	HS_STR_BY_COUNT,
	HS_STR_BY_BYTES,
};

struct hs_str_opts {
	enum hs_str_encoding enc;
	unsigned min_len;      /* characters */
	unsigned max_len;      /* characters kept per string; longer runs are
	                          told apart by their first max_len characters
	                          and their length */
	uint64_t max_mem;      /* heapscan's own memory for the analysis */
	size_t chunk;          /* read size, a power of two >= 4096 */
	unsigned jobs;         /* worker threads, 1..HS_STR_JOBS_MAX */
	unsigned top;          /* strings kept in the result */
	enum hs_str_rank by;
	/* Chunk space, for each string's location (finished; borrowed for
	 * the call); NULL: every location is unknown. */
	const struct hs_str_where *where;
	/* Progress, called from whichever thread merges; may be NULL. */
	void (*progress)(void *ud, uint64_t done, uint64_t total);
	void *progress_ud;
	/* Called at most once, on the calling thread, when the scan will
	 * read no more of the target: before the tables are joined and
	 * ranked, so the caller can let the target run (hs_target_resume)
	 * during that work.  Not called when the scan fails before reading.
	 * May be NULL. */
	void (*read_done)(void *ud);
	void *read_done_ud;
};

/* The defaults documented in 'heapscan strings --help'. */
void hs_str_opts_init(struct hs_str_opts *o);

struct hs_str_item {
	char *s;               /* owned by the result, NUL-terminated */
	size_t stored;         /* bytes in s (<= max_len) */
	uint64_t len;          /* real length in characters */
	bool truncated;        /* len > stored */
	uint64_t count;        /* occurrences (upper bound if estimated) */
	uint64_t err;          /* count - err <= true count <= count */
	uint64_t bytes;        /* bytes the occurrences take in the target
	                          (characters times 1 or 2) */
	uint64_t cls_count[HS_CLASS_N]; /* occurrences seen per class; sum is
	                                   count - err */
	uint64_t loc_count[HS_STR_LOC_N]; /* the same per location */
	hs_addr_t samples[HS_STR_SAMPLES]; /* lowest addresses seen */
	unsigned nsamples;
};

struct hs_str_result {
	struct hs_str_item *top; /* owned, ranked, ntop <= opts.top */
	size_t ntop;
	bool exact;              /* every count is exact */
	uint64_t err_bound;      /* estimated: a string not in the table
	                            occurred at most this often, and every
	                            count is over by at most this */
	uint64_t distinct;       /* exact: distinct strings; else estimate */
	bool distinct_exact;
	uint64_t occurrences;    /* runs counted (exact in both modes) */
	uint64_t string_bytes;   /* bytes those runs take */
	uint64_t bytes_scanned;  /* bytes read and scanned */
	uint64_t unreadable;     /* bytes that could not be read */
	uint64_t nranges;
	uint64_t class_bytes[HS_CLASS_N]; /* bytes scanned per class */
	uint64_t scan_ns;        /* wall time of hs_strings_scan */
	uint64_t mem_peak;       /* bytes of tables and buffers at most */
	unsigned jobs;
	unsigned nsegments;
	unsigned passes;         /* 2: the exact pass ran out of memory and
				    the estimating pass read everything again */
	bool where_known;        /* opts.where was given */
	bool where_approximate;  /* and it was approximate */
	bool where_python;       /* and it had PYTHON intervals */
	uint64_t where_heap_problems; /* and its heap was corrupt: see
					 hs_str_where.heap_problems */
	struct hs_str_opts opts; /* as used (where, progress: NULL) */
};

/*
 * Counts the strings in ranges r of t with options o (NULL: defaults) and
 * fills res (zeroed first; release with hs_str_result_release, also after
 * an error).  Ranges must be sorted and disjoint (-EINVAL if not).
 * Unreadable pages are skipped and counted (res->unreadable, and the target
 * gets HS_TSTATE_PARTIAL).  Does not suspend or resume the target.
 * Returns 0, -EINVAL for bad options, -ESRCH if the target went away,
 * -HS_E_INTERRUPTED, or another negative error from reading; the result
 * is empty then.
 */
int hs_strings_scan(struct hs_target *t, const struct hs_str_ranges *r,
		    const struct hs_str_opts *o, struct hs_str_result *res) HS_MUST_CHECK;
void hs_str_result_release(struct hs_str_result *res);

#endif
