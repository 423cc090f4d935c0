/*
 * hs_block: one allocator-neutral notion of a heap block, which every
 * walker produces and the analyses (strings' where, show, growth) consume.
 *
 * A block is what a program got from malloc (or what the allocator holds
 * back as free): [addr, addr + size) are the bytes the program could have
 * written.  glibc: a chunk's user data, from the user pointer to the next
 * chunk's size field (the next chunk's prev_size word is the program's
 * when this chunk is in use); an mmapped chunk's to its end.  jemalloc: a
 * small region, a large allocation's extent, a free extent's pages.
 */
#ifndef HS_BLOCK_H
#define HS_BLOCK_H

#include "hs_core.h"

enum hs_block_state {
	HS_BLOCK_INUSE,          /* handed to the program */
	HS_BLOCK_CACHED,         /* freed into a thread cache (tcache) */
	HS_BLOCK_FREE,           /* free in the allocator's own structures */
	HS_BLOCK_STATE_N
};

/* "inuse", "cached", "free". */
const char *hs_block_state_name(enum hs_block_state s);

struct hs_block {
	hs_addr_t addr;          /* first byte the program may use */
	uint64_t size;           /* bytes from addr */
	enum hs_block_state state;
	/* The allocator's size class: glibc the chunk size, jemalloc the
	 * class's usable size (0 for free pages). */
	uint64_t cls;
	int arena;               /* arena index, -1 if none (mmapped chunk) */
	/* Where the allocator's own record of it lies (glibc: the chunk
	 * header; jemalloc: the slab's or extent's edata_t). */
	hs_addr_t meta;
};

/* cb returns 0 to go on; anything else stops the walk and is returned. */
typedef int (*hs_block_fn)(void *ud, const struct hs_block *b);

/*
 * A heap seen through blocks: for_each calls cb for every block of heap
 * (address order within a segment, slab or extent).  Returns 0, cb's
 * value, -ESRCH, -HS_E_INTERRUPTED.
 */
struct hs_blocks {
	const char *allocator;   /* "glibc", "jemalloc" */
	void *heap;              /* struct hs_glibc_heap * / hs_jemalloc_heap * */
	int (*for_each)(void *heap, hs_block_fn cb, void *ud);
};

struct hs_glibc_heap;
struct hs_jemalloc_heap;
/* The block views of the two walkers (heap must outlive the view). */
void hs_blocks_glibc(struct hs_blocks *b, struct hs_glibc_heap *h);
void hs_blocks_jemalloc(struct hs_blocks *b, struct hs_jemalloc_heap *h);

/* The block holding addr (its first match), 0 with *out, or
 * -HS_E_NOT_FOUND. */
int hs_blocks_find(const struct hs_blocks *b, hs_addr_t addr,
		   struct hs_block *out) HS_MUST_CHECK;

#endif
