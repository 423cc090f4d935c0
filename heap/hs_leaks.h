/*
 * hs_leaks: which in-use glibc chunks are reachable from the program's
 * roots, and the C++ class of chunks that start with a vtable pointer.
 *
 * hs_leaks_run() indexes every chunk of an opened hs_glibc_heap (a few
 * bitmaps with one bit per 16 bytes of heap; no per-chunk records), marks
 * what the roots reach, then classifies the rest, as valgrind's memcheck
 * does (doc/leaks.md):
 *   - anchored: reached from a root (registers, stacks from their stack
 *     pointer up, every other readable and writable mapping that is not
 *     the malloc heap itself: modules' .data and .bss, TLS, anonymous
 *     mappings); "possible" are the anchored chunks reached only through a
 *     path with an interior pointer in it (memcheck's "possibly lost");
 *   - leaked: in use and not anchored (memcheck's definitely plus
 *     indirectly lost);
 *   - unreferenced: leaked, and no other leaked chunk points into it;
 *   - definite: unreferenced plus one head per leaked cycle that no
 *     unreferenced chunk reaches (memcheck's "definitely lost"); the rest
 *     of the leaked chunks are "indirect".
 * Free chunks (tcache and fastbin entries, bins, top) are never scanned
 * and never marked.
 *
 * Memory: 7 or 8 bits per 16 bytes of heap (94 MB for 1.6 GB) plus fixed
 * buffers, checked against opts.max_mem before anything is allocated;
 * then the pointers between leaked chunks (8 bytes each) while they fit
 * in what is left.  The target is only read (hs_target_read), in windows
 * of 256 KiB or chunk by chunk, whichever reads less; the sweep over
 * leaked chunks runs on two threads.
 *
 * This layer sees only hs_core.h and hs_glibc.h: vtable ranges come in as
 * data (struct hs_vtables), built by a layer that can read symbols.
 */
#ifndef HS_LEAKS_H
#define HS_LEAKS_H

#include "hs_core.h"
#include "hs_glibc.h"

/* One vtable symbol (_ZTV...) of a loaded module: [start, end). */
struct hs_vtable {
	hs_addr_t start, end;
	const char *name;        /* class name ("Foo::Bar"); borrowed */
};

/* Sorted by start, not overlapping.  Borrowed by every function here. */
struct hs_vtables {
	const struct hs_vtable *v;
	size_t n;
};

/*
 * The vtable a vtable pointer a points into, or -1: a must be 8-aligned
 * and at least start + 16 (past offset-to-top and the typeinfo pointer),
 * below end.  vt may be NULL.
 */
int hs_vtables_find(const struct hs_vtables *vt, hs_addr_t a);

struct hs_leaks_count {
	uint64_t count, bytes;   /* chunks, and their chunk sizes summed */
};

#define HS_LEAKS_SAMPLES 8

/* In-use chunks of one chunk size and one C++ class (or none). */
struct hs_leaks_group {
	uint64_t size;           /* chunk size */
	int type;                /* index in opts.vtables, -1: unknown */
	struct hs_leaks_count inuse, anchored, possible, leaked, unreferenced,
		definite;
	/* Chunk headers (`heapscan show` them): definite leaks first, then
	 * other leaked chunks, then anchored ones; lowest addresses first. */
	hs_addr_t samples[HS_LEAKS_SAMPLES];
	unsigned nsamples;
	/* The most frequent printable string (6+ characters, the first 47
	 * kept) among the sample chunks, each chunk counted once, or "". */
	char string[48];
	unsigned string_hits;    /* in how many of those chunks */
	unsigned string_of;      /* of how many chunks looked at */
};

enum hs_leaks_flags {
	/* Scan whole stack mappings, not from each thread's stack pointer
	 * (set it when the threads' registers are not known). */
	HS_LEAKS_WHOLE_STACKS = 1 << 0,
	/* Keep no leaked-to-leaked edges: the closures read the chunks
	 * again (what happens when the edges do not fit max_mem). */
	HS_LEAKS_NO_EDGES = 1 << 1,
};

struct hs_leaks_opts {
	const struct hs_vtables *vtables; /* may be NULL */
	uint64_t max_mem;        /* budget for the index; 0: 256 MiB */
	unsigned max_groups;     /* groups kept (largest leaked first); 0: 64K */
	unsigned string_groups;  /* groups given a string: the first N of the
				    result's order; 0: 20 */
	unsigned flags;          /* enum hs_leaks_flags */
};

struct hs_leaks_result {
	struct hs_leaks_count inuse, anchored, possible, leaked, unreferenced,
		definite, indirect;
	/* Sorted by leaked bytes, then anchored bytes, descending; owned. */
	struct hs_leaks_group *groups;
	size_t ngroups;
	bool groups_capped;      /* more (size, type) pairs than max_groups:
				    the rest are summed in a group of size 0 */
	/* Roots */
	uint64_t root_bytes;     /* bytes of memory scanned as roots */
	size_t root_ranges;
	size_t root_threads;     /* threads whose registers were roots */
	uint64_t unreadable;     /* root or chunk bytes that could not be read */
	/* Work */
	uint64_t index_bytes;    /* heapscan memory for the index */
	uint64_t heap_bytes;     /* bytes of heap the index covers */
	uint64_t scanned_bytes;  /* chunk bytes read and scanned (each chunk
				    about once) */
	uint64_t passes;         /* sweeps over the windows while marking */
	uint64_t index_ns, mark_ns, leaked_ns, groups_ns;
	uint64_t leak_cycles;    /* definite chunks that head a leaked cycle
				    (another leaked chunk points into them) */
};

/*
 * Classifies every in-use chunk of h (opened with hs_glibc_open on a
 * target that should be stopped).  opts may be NULL.  *out is filled on
 * success; release it with hs_leaks_result_release().
 * Errors: -HS_E_BUDGET (the index needs more than max_mem; nothing was
 * read), -HS_E_UNSUPPORTED (h has no layout or arenas), -ESRCH,
 * -HS_E_INTERRUPTED.
 */
int hs_leaks_run(struct hs_glibc_heap *h, const struct hs_leaks_opts *opts,
		 struct hs_leaks_result *out) HS_MUST_CHECK;
void hs_leaks_result_release(struct hs_leaks_result *r);

/* ---- C++ census --------------------------------------------------------- */

/* In-use chunks whose first word points into one vtable. */
struct hs_cxx_type {
	int type;                /* index in vt */
	const char *name;        /* vt->v[type].name: borrowed */
	uint64_t count, bytes;   /* chunks, chunk sizes summed */
	hs_addr_t sample;        /* the lowest such chunk's header */
};

/*
 * Counts the in-use chunks of h (heap chunks and mmapped ones) by the
 * vtable their first word points into.  *out (sorted by bytes, then
 * count, descending; free() it) and *n are set on success; no vtables
 * give an empty census.  Memory is bounded by opts' max_mem as for
 * hs_leaks_run (vt passed here, opts->vtables ignored; opts may be NULL).
 * Errors as hs_leaks_run.
 */
int hs_cxx_census(struct hs_glibc_heap *h, const struct hs_vtables *vt,
		  const struct hs_leaks_opts *opts, struct hs_cxx_type **out,
		  size_t *n) HS_MUST_CHECK;

#endif
