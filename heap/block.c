/* The block views of the glibc and jemalloc walkers; see hs_block.h. */
#include "hs_block.h"
#include "hs_glibc.h"
#include "hs_jemalloc.h"

#include <string.h>

const char *hs_block_state_name(enum hs_block_state s)
{
	static const char *const names[] = { "inuse", "cached", "free" };

	return (unsigned)s < HS_BLOCK_STATE_N ? names[s] : "?";
}

struct fwd {
	hs_block_fn cb;
	void *ud;
};

static int glibc_chunk(void *ud, const struct hs_glibc_chunk *c)
{
	const struct fwd *f = ud;
	struct hs_block b = { .arena = c->arena, .meta = c->addr, .cls = c->size };

	if (c->state == HS_CHUNK_UNPARSED || c->size < 16 || c->addr + c->size < c->addr)
		return 0;
	b.addr = c->addr + 16;
	/* The next chunk's prev_size word is this chunk's while in use;
	 * nothing follows an mmapped chunk or top. */
	b.size = c->size - 16;
	if (c->state != HS_CHUNK_MMAPPED && c->state != HS_CHUNK_TOP)
		b.size += 8;
	if (c->state == HS_CHUNK_TCACHE)
		b.state = HS_BLOCK_CACHED;
	else if (hs_chunk_state_is_free(c->state))
		b.state = HS_BLOCK_FREE;
	else
		b.state = HS_BLOCK_INUSE;
	return f->cb(f->ud, &b);
}

static int glibc_each(void *heap, hs_block_fn cb, void *ud)
{
	struct fwd f = { cb, ud };

	return hs_glibc_for_each_chunk(heap, glibc_chunk, &f);
}

static int je_region(void *ud, const struct hs_je_region *r)
{
	const struct fwd *f = ud;
	struct hs_block b = {
		.addr = r->addr, .size = r->size, .arena = (int)r->arena, .meta = r->edata,
		.cls = hs_je_index2size(r->szind),
	};

	b.state = r->state == HS_JE_REG_INUSE ? HS_BLOCK_INUSE
		  : r->state == HS_JE_REG_TCACHE ? HS_BLOCK_CACHED : HS_BLOCK_FREE;
	return f->cb(f->ud, &b);
}

static int je_each(void *heap, hs_block_fn cb, void *ud)
{
	struct fwd f = { cb, ud };

	return hs_jemalloc_for_each_region(heap, HS_JE_REGIONS_FREE_EXTENTS, je_region, &f);
}

void hs_blocks_glibc(struct hs_blocks *b, struct hs_glibc_heap *h)
{
	*b = (struct hs_blocks){ "glibc", h, glibc_each };
}

void hs_blocks_jemalloc(struct hs_blocks *b, struct hs_jemalloc_heap *h)
{
	*b = (struct hs_blocks){ "jemalloc", h, je_each };
}

struct find {
	hs_addr_t addr;
	struct hs_block *out;
};

static int find_cb(void *ud, const struct hs_block *b)
{
	struct find *F = ud;

	if (F->addr >= b->addr && F->addr - b->addr < b->size) {
		*F->out = *b;
		return 1;
	}
	return 0;
}

int hs_blocks_find(const struct hs_blocks *b, hs_addr_t addr, struct hs_block *out)
{
	struct find F = { addr, out };
	int ret = b->for_each(b->heap, find_cb, &F);

	if (ret == 1)
		return 0;
	return ret < 0 ? ret : -HS_E_NOT_FOUND;
}
