/*
 * Unit tests of the jemalloc 5.3 walker on a synthetic address space served
 * through the "mem" target: an extent tree with a slab, a large extent, a
 * freed slab (stale slab flag and class), a cleared leaf entry, one
 * thread's tsd with two cached regions; and trees made of garbage.
 *
 * The encodings are written out here from doc/jemalloc.md, independently
 * of heap/jemalloc/jemalloc.c.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "hs_heap.h"

#define RT_A 0x7e0000000000ull        /* &arena_emap_global.rtree */
#define EXT_A 0x7f1000000000ull       /* the extents: root index EXT_A >> 30 */
#define LEAF_A 0x7f2000000000ull
#define EDATA_A 0x7f3000000000ull
#define TLS_A 0x7f4000000000ull
#define STACK_A 0x7f5000000000ull
#define NPAGES 16
#define TSD_SIZE 0xa48
#define FS_BASE (TLS_A + 0x1000)

static uint64_t leaf_entry(hs_addr_t edata, unsigned szind, unsigned state, bool slab)
{
	return ((uint64_t)szind << 48) | edata | ((uint64_t)state << 2) | (slab ? 1 : 0);
}

static uint64_t ebits(unsigned arena, bool slab, unsigned state, unsigned szind,
		      unsigned nfree)
{
	return arena | ((uint64_t)slab << 12) | (1ull << 13) | ((uint64_t)state << 17) |
	       ((uint64_t)szind << 20) | ((uint64_t)nfree << 28);
}

struct space {
	uint64_t root;                /* root[EXT_A >> 30] */
	uint64_t leaf[NPAGES];
	uint64_t edata[4][16];        /* 128 bytes each */
	unsigned char ext[NPAGES * 4096];
	uint64_t tsd[TSD_SIZE / 8 + 1];
	uint64_t stack[2];
};

/* The clean space: slab of 48-byte regions (pages 0-2, regions 0-9
 * free), a 16 KiB large allocation (pages 3-7, boundary entries only), a
 * freed 4096-byte slab now dirty (pages 8-9), a cleared entry (page 10). */
static void build(struct space *s)
{
	memset(s, 0, sizeof(*s));
	s->root = LEAF_A;
	for (int p = 0; p < 3; p++)
		s->leaf[p] = leaf_entry(EDATA_A, 3, 0, true);
	s->edata[0][0] = ebits(0, true, 0, 3, 10);
	s->edata[0][1] = EXT_A;
	s->edata[0][2] = 3 * 4096;
	s->edata[0][8] = 0x3ff; /* regions 0..9 free */

	s->leaf[3] = leaf_entry(EDATA_A + 128, 36, 0, false);
	s->leaf[7] = leaf_entry(EDATA_A + 128, 36, 0, false);
	s->edata[1][0] = ebits(0, false, 0, 36, 0);
	s->edata[1][1] = EXT_A + 3 * 4096 + 0x140; /* cache-oblivious offset */
	s->edata[1][2] = 5 * 4096;

	/* A freed slab keeps slab = 1 in its edata and its leaf. */
	s->leaf[8] = leaf_entry(EDATA_A + 256, 28, 1, true);
	s->leaf[9] = leaf_entry(EDATA_A + 256, 232, 1, false);
	s->edata[2][0] = ebits(0, true, 1, 232, 1);
	s->edata[2][1] = EXT_A + 8 * 4096;
	s->edata[2][2] = 2 * 4096;

	s->leaf[10] = 0x00e8000000000000ull; /* cleared: {NULL, SC_NSIZES} */
}

static struct hs_target *open_space_at(struct space *s, bool thread, unsigned root_off)
{
	struct hs_target *t = NULL;

	assert_int_equal(hs_target_open_mem(&t), 0);
	hs_target_mem_add(t, RT_A + root_off + (EXT_A >> 30) * 8, &s->root, 8, HS_PERM_R | HS_PERM_W,
			  "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2");
	hs_target_mem_add(t, LEAF_A + ((EXT_A >> 12) & 0x3ffff) * 8, s->leaf, sizeof(s->leaf),
			  HS_PERM_R | HS_PERM_W, NULL);
	hs_target_mem_add(t, EDATA_A, s->edata, sizeof(s->edata), HS_PERM_R | HS_PERM_W, NULL);
	hs_target_mem_add(t, EXT_A, s->ext, sizeof(s->ext), HS_PERM_R | HS_PERM_W, NULL);
	if (thread) {
		hs_addr_t tsd = FS_BASE - TSD_SIZE;

		/* tcache at +0x358 (state byte at +0x330): tcache_slow points
		 * into the tsd (+0x100), whose `tcache` (+168) points back. */
		s->tsd[0x358 / 8] = tsd + 0x100;
		s->tsd[(0x100 + 168) / 8] = tsd + 0x358;
		/* bins[3] (48 bytes): two cached pointers, regions 10 and 11 */
		s->tsd[(0x360 + 3 * 24) / 8] = STACK_A;
		s->tsd[(0x360 + 3 * 24 + 16) / 8] = (uint64_t)(uint16_t)(STACK_A + 16) << 32;
		s->stack[0] = EXT_A + 10 * 48;
		s->stack[1] = EXT_A + 11 * 48;
		hs_target_mem_add(t, tsd, s->tsd, TSD_SIZE, HS_PERM_R | HS_PERM_W, NULL);
		hs_target_mem_add(t, STACK_A, s->stack, sizeof(s->stack), HS_PERM_R | HS_PERM_W,
				  NULL);
		t->threads = calloc(1, sizeof(*t->threads));
		assert_non_null(t->threads);
		t->nthreads = 1;
		t->threads[0].tid = 42;
		t->threads[0].has_regs = true;
		t->threads[0].regs.r[HS_REG_FS_BASE] = FS_BASE;
	}
	return t;
}

static struct hs_target *open_space(struct space *s, bool thread)
{
	return open_space_at(s, thread, 0x78);
}

static struct hs_jemalloc_opts opts(void)
{
	struct hs_jemalloc_opts o;

	memset(&o, 0, sizeof(o));
	o.rtree[0] = RT_A + 0x1000; /* a wrong guess first */
	o.rtree[1] = RT_A;
	o.nrtree = 2;
	o.have_tpoff = true;
	o.tsd_tpoff = -TSD_SIZE;
	o.tsd_size = TSD_SIZE;
	o.tsd_state_off = 0x330;
	return o;
}

static void test_clean(void **state)
{
	struct space *s = calloc(1, sizeof(*s));
	struct hs_jemalloc_opts o = opts();
	struct hs_jemalloc_heap *h = NULL;
	struct hs_target *t;
	struct hs_blocks b;
	struct hs_block blk;

	(void)state;
	build(s);
	t = open_space(s, true);
	assert_int_equal(hs_jemalloc_open(t, &o, &h), 0);
	assert_int_equal(h->rtree, RT_A);
	assert_int_equal(h->nproblems, 0);
	assert_int_equal(h->next, 3);
	assert_int_equal(h->extents[HS_JE_ACTIVE].count, 2);
	assert_int_equal(h->extents[HS_JE_DIRTY].count, 1);
	assert_int_equal(h->extents[HS_JE_DIRTY].bytes, 2 * 4096);
	assert_true(h->tcache_known);
	assert_int_equal(h->ntcaches, 1);
	assert_int_equal(h->tcaches[0].tid, 42);
	assert_int_equal(h->tcaches[0].cached.count, 2);
	assert_int_equal(h->cls[3].size, 48);
	assert_int_equal(h->cls[3].in_use, 256 - 10 - 2);
	assert_int_equal(h->cls[3].tcache, 2);
	assert_int_equal(h->cls[3].free, 10);
	assert_int_equal(h->cls[3].slabs, 1);
	assert_int_equal(h->cls[36].size, 16384);
	assert_int_equal(h->cls[36].in_use, 1);
	assert_int_equal(h->cls[28].in_use + h->cls[28].free + h->cls[28].slabs, 0);

	/* The block view: a byte inside region 20, a cached region, the
	 * large allocation from its pointer, the dirty pages as free. */
	hs_blocks_jemalloc(&b, h);
	assert_int_equal(hs_blocks_find(&b, EXT_A + 20 * 48 + 7, &blk), 0);
	assert_int_equal(blk.addr, EXT_A + 20 * 48);
	assert_int_equal(blk.size, 48);
	assert_int_equal(blk.state, HS_BLOCK_INUSE);
	assert_int_equal(blk.meta, EDATA_A);
	assert_int_equal(hs_blocks_find(&b, EXT_A + 11 * 48, &blk), 0);
	assert_int_equal(blk.state, HS_BLOCK_CACHED);
	assert_int_equal(hs_blocks_find(&b, EXT_A + 3, &blk), 0);
	assert_int_equal(blk.state, HS_BLOCK_FREE);
	assert_int_equal(hs_blocks_find(&b, EXT_A + 3 * 4096 + 0x200, &blk), 0);
	assert_int_equal(blk.addr, EXT_A + 3 * 4096 + 0x140);
	assert_int_equal(blk.size, 5 * 4096 - 0x140);
	assert_int_equal(blk.cls, 16384);
	assert_int_equal(hs_blocks_find(&b, EXT_A + 9 * 4096, &blk), 0);
	assert_int_equal(blk.state, HS_BLOCK_FREE);
	assert_int_equal(hs_blocks_find(&b, EXT_A + 11 * 4096, &blk), -HS_E_NOT_FOUND);
	hs_jemalloc_close(h);
	hs_target_close(t);
	free(s);
}

/* A tree of garbage is refused; so is one whose slab bitmap disagrees
 * with nfree only as a problem (the walk still counts what it sees). */
static void test_garbage(void **state)
{
	struct space *s = calloc(1, sizeof(*s));
	struct hs_jemalloc_opts o = opts();
	struct hs_jemalloc_heap *h = NULL;
	struct hs_target *t;

	(void)state;
	build(s);
	/* Every leaf entry names an edata that covers some other page, or
	 * an absurd size, or a slab of a large class. */
	for (int p = 0; p < NPAGES; p++)
		s->leaf[p] = leaf_entry(EDATA_A + 128 * (p % 4), 3, 0, true);
	s->edata[0][1] = EXT_A + (1ull << 40);
	s->edata[1][0] = ebits(0, true, 0, 3, 0);
	s->edata[1][1] = EXT_A;
	s->edata[1][2] = 1ull << 50;
	s->edata[2][0] = ebits(0, true, 0, 40, 0);
	s->edata[2][1] = EXT_A;
	s->edata[2][2] = 16 * 4096;
	s->edata[3][0] = ebits(0, true, 7, 3, 0);
	t = open_space(s, false);
	assert_int_equal(hs_jemalloc_open(t, &o, &h), -HS_E_NOT_FOUND);
	assert_null(h);
	hs_target_close(t);

	/* nfree that disagrees with the bitmap: a problem, not a refusal */
	build(s);
	s->edata[0][0] = ebits(0, true, 0, 3, 11);
	t = open_space(s, false);
	assert_int_equal(hs_jemalloc_open(t, &o, &h), 0);
	assert_int_equal(h->nproblems, 1);
	assert_false(h->tcache_known);
	assert_int_equal(h->cls[3].free, 10);
	hs_jemalloc_close(h);
	hs_target_close(t);
	free(s);
}

/* Another build's rtree_t, whose mutex is larger: the root is found at
 * its offset all the same. */
static void test_root_offset(void **state)
{
	struct space *s = calloc(1, sizeof(*s));
	struct hs_jemalloc_opts o = opts();
	struct hs_jemalloc_heap *h = NULL;
	struct hs_target *t;

	(void)state;
	build(s);
	t = open_space_at(s, false, 0x98);
	assert_int_equal(hs_jemalloc_open(t, &o, &h), 0);
	assert_int_equal(h->rtree, RT_A);
	assert_int_equal(h->root_off, 0x98);
	assert_int_equal(h->cls[3].in_use, 256 - 10);
	hs_jemalloc_close(h);
	hs_target_close(t);
	free(s);
}

static void test_sizes(void **state)
{
	static const uint64_t want[][2] = {
		{ 0, 8 }, { 1, 16 }, { 4, 64 }, { 5, 80 }, { 9, 160 }, { 35, 14336 },
		{ 36, 16384 }, { 44, 65536 }, { 45, 81920 }, { 231, 0x7000000000000000ull },
		{ 232, 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		assert_int_equal(hs_je_index2size((unsigned)want[i][0]), want[i][1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_clean),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_root_offset),
		cmocka_unit_test(test_sizes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
