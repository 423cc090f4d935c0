/*
 * Growth analysis: what grew between two pictures of a process.
 *
 * A profile (struct hs_profile) is a small summary of one picture: the
 * region table with its smaps figures (per class and per mapping), the
 * glibc arenas with their in-use chunk histogram by size PER ARENA (and
 * mmapped chunks as a pseudo-arena), the most frequent strings, totals,
 * the time, pid and exe.  hs_profile_build() makes one from a target,
 * hs_profile_write()/hs_profile_read() keep it in a line-oriented text
 * file (format below), hs_diff_compute() compares two of them and groups
 * the items that grew together.
 *
 * Which strings a profile keeps: the `keep` most frequent (default
 * HS_PROFILE_KEEP_DEFAULT) as ranked by hs_strings_scan().  When the target
 * held more distinct strings than that, the profile records its cut: the
 * count of the least frequent string kept.  A string absent from such a
 * profile occurred at most `cut` times there (the diff shows "<=cut", not
 * 0); with cut 0 every string is in the profile.
 *
 * Profile file, version 1 (HS_PROFILE_VERSION): UTF-8-agnostic text, one
 * record per line, fields separated by one space, numbers in decimal
 * except addresses (0x hex):
 *
 *   heapscan-profile 1                        magic and version (line 1)
 *   meta KEY VALUE                            metadata, VALUE escaped;
 *                                             heap_allocator 1: arena and
 *                                             chunk records are jemalloc's
 *                                             (arenas, size classes)
 *   class NAME COUNT SIZE RSS PSS PRIVDIRTY SWAP
 *   region START END PERMS CLASS SIZE RSS PSS PRIVDIRTY SWAP PATH
 *   arena IDX ADDR main|thread SYSMEM INUSE_N INUSE_B FREE_N FREE_B
 *   chunk ARENA SIZE COUNT BYTES              ARENA -1: mmapped chunks;
 *                                             SIZE 0: all other sizes
 *   string COUNT LEN BYTES TEXT               LEN: real length in chars
 *   type KIND COUNT BYTES NAME                objects by type (hs_census:
 *                                             KIND "python", "c++"); only
 *                                             when meta "types" is 1
 *   end NRECORDS                              last line: records before it
 *
 * Escaped fields (meta values, PATH, TEXT, NAME) are the rest of the line; a
 * backslash, a byte outside 0x20..0x7e, and a trailing space are written
 * as \\ or \xHH.  Lines starting with '#' are comments.  Readers treat the
 * file as hostile: lines are bounded (HS_PROFILE_LINE_MAX), record counts
 * are bounded, a missing "end" line is a truncation, a number that does
 * not parse is corruption, unknown record types are skipped (so later
 * versions may add records) but a different version number is refused.
 *
 * This layer sees only hs_core.h and the other hs_heap analyses.
 */
#ifndef HS_GROWTH_H
#define HS_GROWTH_H

#include "hs_core.h"
#include "hs_census.h"

struct hs_glibc_opts;

#define HS_PROFILE_MAGIC "heapscan-profile"
#define HS_PROFILE_VERSION 1
#define HS_PROFILE_KEEP_DEFAULT 10000
#define HS_PROFILE_KEEP_MAX 1000000
#define HS_PROFILE_LINE_MAX 65536
#define HS_PROFILE_RECORDS_MAX (4u << 20)
/* Distinct (arena, chunk size) pairs kept; beyond, sizes go to SIZE 0. */
#define HS_PROFILE_CHUNK_SIZES_MAX 65536

/* Metric of a region or class: the smaps figures kept. */
struct hs_profile_mem {
	uint64_t count; /* mappings (classes only) */
	uint64_t size, rss, pss, private_dirty, swap;
};

struct hs_profile_region {
	hs_addr_t start, end;
	unsigned perms;          /* enum hs_perm */
	enum hs_class cls;
	struct hs_profile_mem mem;
	char *path;              /* owned, "" if anonymous */
};

struct hs_profile_arena {
	int idx;                 /* 0 is main_arena */
	hs_addr_t addr;
	bool is_main;
	uint64_t system_mem;
	uint64_t inuse_count, inuse_bytes, free_count, free_bytes;
};

struct hs_profile_chunk {
	int arena;               /* arena idx; -1: mmapped chunks */
	uint64_t size;           /* chunk size; 0: all other sizes (cap hit) */
	uint64_t count, bytes;
};

struct hs_profile_string {
	char *s;                 /* owned, NUL-terminated (printable run) */
	size_t stored;           /* bytes in s */
	uint64_t len;            /* real length in characters */
	uint64_t count, bytes;
};

/* Objects of one type (rows of a census, merged by kind and name). */
struct hs_profile_type {
	char *kind;              /* owned: "python", "c++" */
	char *name;              /* owned */
	uint64_t count, bytes;
};

struct hs_profile {
	unsigned version;        /* of the file it came from, or ours */
	char *heapscan_version;  /* owned */
	char *source;            /* owned: "pid 1234", a core's path */
	char *kind;              /* owned: target backend, "live", "core" */
	char *exe;               /* owned, "" if unknown */
	char *cmdline;           /* owned */
	pid_t pid;
	uint64_t time_ns;        /* CLOCK_REALTIME of the picture */
	uint64_t stop_ns;        /* how long the target was stopped */
	uint64_t build_ns;       /* how long building the profile took */
	bool has_smaps;          /* Rss etc. are real (live); else Size only */
	bool partial;            /* some memory could not be read */
	/* heap */
	char *heap_error;        /* owned; "" when the walk worked */
	unsigned glibc_minor;
	/* Whose heap the arena and chunk records describe: glibc's (0, and
	 * what a file without the record means) or jemalloc's (its arenas;
	 * chunk sizes are its size classes). */
	unsigned heap_allocator; /* enum hs_profile_allocator */
	uint64_t heap_problems;
	/* strings */
	bool strings_done;       /* the strings were counted */
	bool strings_exact;
	uint64_t strings_err, strings_distinct, strings_occurrences;
	unsigned strings_min_len, strings_keep;
	uint64_t strings_cut;    /* see above; 0: every string kept */
	/* records */
	struct hs_profile_mem classes[HS_CLASS_N];
	struct hs_profile_region *regions;
	size_t nregions, aregions;
	struct hs_profile_arena *arenas;
	size_t narenas, aarenas;
	struct hs_profile_chunk *chunks;  /* sorted by (arena, size) */
	size_t nchunks, achunks;
	struct hs_profile_string *strings; /* ranked by count */
	size_t nstrings, astrings;
	/* objects by type: set by the caller (hs_profile_add_census) */
	bool types_done;
	struct hs_profile_type *types;     /* sorted by (kind, name) */
	size_t ntypes, atypes;
};

enum hs_profile_allocator {
	HS_PROFILE_GLIBC = 0,
	HS_PROFILE_JEMALLOC = 1,
};
/*
 * Adds the rows of c (live objects; freelists are not kept) to p, rows
 * of one kind and name merged, and sets p->types_done.  Called by a layer
 * that can take a census (the CLI) after hs_profile_build().
 */
void hs_profile_add_census(struct hs_profile *p, const struct hs_census *c);

void hs_profile_init(struct hs_profile *p);
void hs_profile_release(struct hs_profile *p);

enum hs_profile_build_flags {
	HS_PROFILE_NO_STRINGS = 1 << 0,
	HS_PROFILE_NO_HEAP = 1 << 1,
};

struct hs_profile_opts {
	unsigned keep;           /* strings kept; 0: the default */
	unsigned flags;          /* enum hs_profile_build_flags */
	unsigned jobs;           /* string scan threads; 0: default */
	/* How to open the glibc heap (main_arena, candidates); NULL: the
	 * walker's own scan. */
	const struct hs_glibc_opts *glibc;
	/* Another allocator's heap as blocks (hs_block.h); when set it is
	 * profiled instead of glibc's: its arenas by index (address 0,
	 * system memory the bytes of its blocks), "chunk" records per
	 * arena and size class for the blocks in use (cached and free ones
	 * count as free).  NULL: glibc. */
	const struct hs_blocks *blocks;
};

/*
 * Builds p (initialised here; release it also after an error) from t,
 * which the caller has suspended if it wants a consistent picture; this
 * neither suspends nor resumes.  o may be NULL.  The glibc heap failing
 * (unsupported version, no main_arena) is not an error: p->heap_error
 * says why.  Returns 0, -ESRCH (target gone), -HS_E_INTERRUPTED, or
 * another negative error of the string scan.
 */
int hs_profile_build(struct hs_target *t, const struct hs_profile_opts *o,
		     struct hs_profile *p) HS_MUST_CHECK;

/* Writes p to out in the format above.  Returns 0 or -errno (EIO when
 * the stream reports an error). */
int hs_profile_write(const struct hs_profile *p, FILE *out) HS_MUST_CHECK;

/*
 * Reads a profile from in into p (initialised here; release it also after
 * an error).  *line (may be NULL) receives the line number of an error.
 * Returns 0; -HS_E_FORMAT (not a heapscan profile), -HS_E_VERSION (another
 * profile version; p->version says which), -HS_E_TRUNCATED (no end line,
 * or a last line without newline), -HS_E_CORRUPT (a malformed line or a
 * count beyond the bounds), -errno for read errors.
 */
int hs_profile_read(struct hs_profile *p, FILE *in, unsigned *line) HS_MUST_CHECK;

/* Whether the first bytes of a file (n of them) look like a profile. */
bool hs_profile_sniff(const void *head, size_t n);

/* ---- diff --------------------------------------------------------------- */

#define HS_GROWTH_KINDS(X)                                                  \
	X(CLASS, "class")                                                       \
	X(REGION, "region")                                                     \
	X(CHUNK, "chunk")                                                       \
	X(STRING, "string")                                                     \
	X(TYPE, "type")

enum hs_growth_kind {
#define HS_X_(n, s) HS_GROWTH_##n,
	HS_GROWTH_KINDS(HS_X_)
#undef HS_X_
	HS_GROWTH_KIND_N
};

const char *hs_growth_kind_name(enum hs_growth_kind k);

enum hs_growth_item_flags {
	HS_GI_NEW = 1 << 0,        /* absent before (region: new mapping) */
	HS_GI_GONE = 1 << 1,       /* absent after */
	HS_GI_BEFORE_CUT = 1 << 2, /* string: below A's cut, before <= cut */
	HS_GI_AFTER_CUT = 1 << 3,  /* string: below B's cut, after <= cut */
};

/* One thing that changed between A and B. */
struct hs_growth_item {
	enum hs_growth_kind kind;
	unsigned flags;          /* enum hs_growth_item_flags */
	/* What it is: CLASS cls; REGION start/end (of B, else A), path, cls;
	 * CHUNK arena idx (-1 mmapped) + arena address + size; STRING s;
	 * TYPE s (the type's name) and path (its kind, "python"). */
	enum hs_class cls;
	hs_addr_t start, end;
	const char *path;        /* borrowed from a profile */
	int arena;
	hs_addr_t arena_addr;
	bool arena_main;
	uint64_t size;
	const char *s;           /* borrowed from a profile */
	size_t stored;
	uint64_t len;
	/* Figures.  count: chunks, occurrences or objects (0 for CLASS/REGION);
	 * bytes: Rss (Size without smaps), chunk bytes, string bytes.  A side
	 * below its cut holds the cut in count (and count*len in bytes). */
	uint64_t count_a, count_b, bytes_a, bytes_b;
	int64_t dcount, dbytes;  /* b - a */
	double ratio;            /* count (or bytes) b / a; 0 if a is 0 */
	int group;               /* correlated group index, -1 if none */
};

struct hs_growth_group {
	size_t *items;           /* owned, indexes into diff->items */
	size_t n;
	/* Byte growth, never counted twice: strings live inside chunks, so
	 * the sum over the chunk members when there are any (bytes_of
	 * HS_GROWTH_CHUNK), else over the string members. */
	int64_t dbytes;
	enum hs_growth_kind bytes_of;
	int64_t dcount;          /* the first member's count growth */
	int64_t dcount_min, dcount_max; /* over the members: each has its own */
	double ratio_min, ratio_max;    /* over members with a ratio; 0: none */
	bool by_factor;          /* joined by equal factor, not equal delta */
};

/*
 * Grouping: candidates are in-use chunk sizes and strings whose count grew
 * by at least min_count (a string known only as "<=N" before may join when
 * N is within the tolerance of its count after; "<=N" after never joins).
 * Taken by count growth descending, an item joins the first group whose
 * first member grew by the same count (|d1 - d2| <= tolerance * max) or,
 * both having been there at least min_count times, at the same rate
 * (growth / count before, within the tolerance of each other: +5% and
 * +5.2% match, +1% and +5% do not).
 */
struct hs_diff_opts {
	double tolerance;        /* relative: deltas (or rates) within this
				    share of each other correlate; 0: 0.05 */
	uint64_t min_count;      /* count growth an item needs to be grouped;
				    0: 16 */
};

struct hs_diff {
	const struct hs_profile *a, *b; /* borrowed */
	struct hs_growth_item *items;   /* owned: every changed item, growth
					   first (by dbytes descending), then
					   shrinkage (by dbytes ascending) */
	size_t nitems, aitems;
	size_t ngrowth;                 /* items[0..ngrowth) grew */
	struct hs_growth_group *groups; /* owned, by dbytes descending */
	size_t ngroups, agroups;
	bool by_rss;                    /* regions compared by Rss (both sides
					   have smaps), else by Size */
	double elapsed_s;               /* b.time - a.time */
	struct hs_buf warnings;         /* one warning per line */
	struct hs_diff_opts opts;       /* as used */
};

/*
 * Compares a (before) and b (after), which must outlive d.  o may be NULL.
 * Fills d (release with hs_diff_release, also after an error).  Different
 * pids, heapscan versions or exes are warnings in d->warnings (the caller
 * decides whether a different exe is fatal).  Returns 0.
 */
int hs_diff_compute(struct hs_diff *d, const struct hs_profile *a,
		    const struct hs_profile *b, const struct hs_diff_opts *o) HS_MUST_CHECK;
void hs_diff_release(struct hs_diff *d);

/* true when a and b name different executables (both known). */
bool hs_profile_exe_differs(const struct hs_profile *a, const struct hs_profile *b);

#endif
