/*
 * Unit tests of the CPython census (heap/python) on synthetic interpreter
 * memory served by the "mem" target, for every supported version's
 * geometry (256 KiB arenas of 4 KiB pools in 3.8-3.9, 1 MiB of 16 KiB
 * from 3.10) and object placement (GC header; the 3.11+ pre-header of a
 * type with a managed dict): static types in the module's data, the arena
 * vector found by its shape through a word in that data, pools with free
 * lists, freelisted (refcount 0) objects, a corrupt pool, a refused
 * version.  The offsets are written out here from doc/python.md, not
 * taken from heap/python's tables.  Also the pieces around the census:
 * the strings' "python" locations (hs_str_where_overlay) and the type
 * records of growth profiles (write, read, diff).
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
#include "hs_python.h"

#define MODULE "/usr/lib/libpython3.X.so.1.0"
#define RODATA_A 0x7ff000000000ull
#define DATA_A 0x7ff000100000ull
#define DATA_LEN 0x4000u
#define HEAP_A 0x555555559000ull
#define HEAP_LEN 0x2000u
#define ARENA_A 0x7f0000000000ull

#define TYPE_A (DATA_A + 0x100)
#define FLOAT_A (DATA_A + 0x400)
#define TUPLE_A (DATA_A + 0x700)
#define NODE_A (DATA_A + 0xa00)
#define VECPTR_A (DATA_A + 0x2000)
#define VEC_A (HEAP_A + 0x110)

#define F_READY (1ull << 12)
#define F_GC (1ull << 14)
#define F_META (1ull << 31)
#define F_MDICT (1ull << 4)

struct mem {
	unsigned char rodata[0x100];
	unsigned char data[DATA_LEN];
	unsigned char heap[HEAP_LEN];
	unsigned char *arena;
	uint64_t arena_size, pool_size;
	unsigned minor;
	struct hs_target *t;
};

static void put64(unsigned char *p, uint64_t v) { memcpy(p, &v, 8); }
static void put32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }

static void mk_type(struct mem *m, hs_addr_t a, const char *name_at_rodata_off,
		    unsigned name_off, uint64_t basic, uint64_t item, uint64_t flags)
{
	unsigned char *p = m->data + (a - DATA_A);

	strcpy((char *)m->rodata + name_off, name_at_rodata_off);
	put64(p + 0, 100);                 /* ob_refcnt */
	put64(p + 8, TYPE_A);              /* ob_type: type */
	put64(p + 24, RODATA_A + name_off); /* tp_name */
	put64(p + 32, basic);
	put64(p + 40, item);
	put64(p + 168, flags);
}

/* A pool of blocks of `size` bytes with `nalloc` carved blocks. */
static unsigned char *mk_pool(struct mem *m, unsigned idx, uint32_t size,
			      uint32_t carved, uint32_t refcount)
{
	uint64_t first = 0; /* the arena is pool-aligned */
	unsigned char *p = m->arena + first + idx * m->pool_size;

	put32(p + 0, refcount);
	put32(p + 32, 0);                  /* arenaindex */
	put32(p + 36, size / 16 - 1);      /* szidx */
	put32(p + 40, 48 + carved * size); /* nextoffset */
	put32(p + 44, (uint32_t)m->pool_size - size); /* maxnextoffset */
	return p;
}

/* An object at block b (offset off in it) of type ty with refcount rc. */
static void mk_obj(unsigned char *b, unsigned off, hs_addr_t ty, uint64_t rc)
{
	put64(b + off, rc);
	put64(b + off + 8, ty);
}

struct expect {
	uint64_t floats, float_free, tuples, nodes, blocks;
};

static void build(struct mem *m, unsigned minor, struct expect *e)
{
	unsigned char *p, *vec;
	hs_addr_t pool0 = ARENA_A;
	unsigned node_off = minor >= 11 ? 32 : 16;

	memset(m, 0, sizeof(*m));
	m->minor = minor;
	m->arena_size = minor >= 10 ? (1u << 20) : (256u << 10);
	m->pool_size = minor >= 10 ? (16u << 10) : (4u << 10);
	m->arena = calloc(1, m->arena_size);
	assert_non_null(m->arena);
	/* type, a metatype of itself; float (not GC); tuple (GC); Node (GC,
	 * managed dict: a pre-header from 3.11) */
	mk_type(m, TYPE_A, "type", 0, 900, 40, F_READY | F_GC | F_META);
	mk_type(m, FLOAT_A, "float", 16, 24, 0, F_READY);
	mk_type(m, TUPLE_A, "tuple", 32, 24, 8, F_READY | F_GC);
	mk_type(m, NODE_A, "mod.Node", 48, 16, 0, F_READY | F_GC | F_MDICT);
	/* the arena vector: a malloc chunk of 16 entries, one used */
	put64(m->data + (VECPTR_A - DATA_A), VEC_A);
	put64(m->heap + (VEC_A - HEAP_A) - 8, (16 * 48 + 16) | 1);
	vec = m->heap + (VEC_A - HEAP_A);
	put64(vec + 0, ARENA_A);
	put64(vec + 8, ARENA_A + 4 * m->pool_size);   /* 4 pools carved */
	put32(vec + 16, (uint32_t)(m->arena_size / m->pool_size) - 3);
	put32(vec + 20, (uint32_t)(m->arena_size / m->pool_size));
	for (unsigned i = 1; i < 16; i++)  /* unused, linked */
		put64(vec + i * 48 + 32, i + 1 < 16 ? VEC_A + (i + 1) * 48 : 0);

	/* pool 0: floats, 32-byte blocks: 10 carved, block 3 and 7 free, block
	 * 5 a dead float on a freelist (refcount 0) */
	p = mk_pool(m, 0, 32, 10, 8);
	for (unsigned b = 0; b < 10; b++)
		mk_obj(p + 48 + b * 32, 0, FLOAT_A, b == 5 ? 0 : 1);
	put64(p + 8, pool0 + 48 + 3 * 32);                /* freeblock */
	put64(p + 48 + 3 * 32, pool0 + 48 + 7 * 32);      /* -> 7 */
	put64(p + 48 + 7 * 32, 0);
	/* pool 1: tuples behind a GC header, 48-byte blocks, 6 carved; and
	 * one block of other data (no type) */
	p = mk_pool(m, 1, 48, 6, 6);
	for (unsigned b = 0; b < 5; b++)
		mk_obj(p + 48 + b * 48, 16, TUPLE_A, 2);
	/* pool 2: Nodes, 64-byte blocks, 4 carved and allocated */
	p = mk_pool(m, 2, 64, 4, 4);
	for (unsigned b = 0; b < 4; b++)
		mk_obj(p + 48 + b * 64, node_off, NODE_A, 1);
	/* pool 3: empty (count 0), stale objects not counted */
	p = mk_pool(m, 3, 32, 3, 0);
	for (unsigned b = 0; b < 3; b++)
		mk_obj(p + 48 + b * 32, 0, FLOAT_A, 1);
	/* beyond pool_address: never used; an object-looking block there is
	 * not counted */
	mk_obj(m->arena + 4 * m->pool_size + 48, 0, FLOAT_A, 1);

	e->floats = 7;
	e->float_free = 1;
	e->tuples = 5;
	e->nodes = 4;
	e->blocks = 8 + 6 + 4;

	assert_int_equal(hs_target_open_mem(&m->t), 0);
	hs_target_mem_add(m->t, RODATA_A, m->rodata, sizeof(m->rodata), HS_PERM_R, MODULE);
	hs_target_mem_add(m->t, DATA_A, m->data, sizeof(m->data),
			  HS_PERM_R | HS_PERM_W, MODULE);
	hs_target_mem_add(m->t, HEAP_A, m->heap, sizeof(m->heap),
			  HS_PERM_R | HS_PERM_W, "[heap]");
	hs_target_mem_add(m->t, ARENA_A, m->arena, m->arena_size,
			  HS_PERM_R | HS_PERM_W, NULL);
}

static void release(struct mem *m)
{
	hs_target_close(m->t);
	free(m->arena);
}

/* The type named name; fails the test (and returns a zeroed one) if none. */
static const struct hs_py_type *find_type(const struct hs_py *py, const char *name)
{
	static const struct hs_py_type none;

	for (size_t i = 0; i < py->ntypes; i++)
		if (!strcmp(py->types[i].name, name))
			return &py->types[i];
	fail_msg("no type '%s'", name);
	return &none;
}

static struct hs_py_opts opts_for(unsigned minor)
{
	struct hs_py_opts o;

	memset(&o, 0, sizeof(o));
	o.runtime = DATA_A + 0x3000;
	o.type_type = TYPE_A;
	o.major = 3;
	o.minor = minor;
	o.module = MODULE;
	return o;
}

static void census_version(unsigned minor)
{
	struct mem m;
	struct expect e;
	struct hs_py *py = NULL;
	struct hs_py_opts o = opts_for(minor);
	const struct hs_py_type *f, *tu, *n;
	struct hs_census c = HS_CENSUS_INIT;

	build(&m, minor, &e);
	assert_int_equal(hs_py_open(m.t, &o, &py), 0);
	if (!py)
		fail();
	assert_int_equal(py->arena_size, m.arena_size);
	assert_int_equal(py->pool_size, m.pool_size);
	assert_int_equal(py->arenas_vec, VEC_A);
	assert_int_equal(py->arenas_ptr, VECPTR_A);
	assert_int_equal(py->narenas, 1);
	assert_int_equal(py->nstatic_types, 4);
	assert_int_equal(hs_py_census(py, NULL), 0);
	f = find_type(py, "float");
	tu = find_type(py, "tuple");
	n = find_type(py, "mod.Node");
	assert_int_equal(f->count, e.floats);
	assert_int_equal(f->bytes, e.floats * 32);
	assert_int_equal(f->free_count, e.float_free);
	assert_int_equal(tu->count, e.tuples);
	assert_int_equal(tu->bytes, e.tuples * 48);
	assert_int_equal(n->count, e.nodes);
	assert_int_equal(py->pymalloc_blocks.count, e.blocks);
	assert_int_equal(py->pymalloc_pools.count, 3);
	assert_int_equal(py->objects.count, e.floats + e.tuples + e.nodes);
	assert_int_equal(py->nproblems, 0);
	assert_non_null(hs_py_arena_find(py, ARENA_A + 100));
	assert_null(hs_py_arena_find(py, ARENA_A + m.arena_size));
	/* the rows, sorted by bytes */
	hs_py_census_rows(py, &c);
	hs_census_sort(&c);
	assert_int_equal(c.n, 3);
	/* Node 4 x 64 bytes, tuple 5 x 48, float 7 x 32 */
	assert_string_equal(c.rows[0].type, "mod.Node");
	assert_string_equal(c.rows[1].type, "tuple");
	assert_string_equal(c.rows[2].type, "float");
	assert_int_equal(c.rows[2].free_count, 1);
	assert_int_equal(c.rows[0].kind, HS_CENSUS_PYTHON);
	assert_string_equal(hs_census_kind_name(c.rows[0].kind), "python");
	hs_census_release(&c);
	hs_py_close(py);
	release(&m);
}

static void test_3_8(void **state) { (void)state; census_version(8); }
static void test_3_9(void **state) { (void)state; census_version(9); }
static void test_3_10(void **state) { (void)state; census_version(10); }
static void test_3_11(void **state) { (void)state; census_version(11); }
static void test_3_12(void **state) { (void)state; census_version(12); }
static void test_3_13(void **state) { (void)state; census_version(13); }

/* The 3.11 placement read as 3.10 (no pre-header): Nodes are not found. */
static void test_wrong_version_misses_preheader(void **state)
{
	struct mem m;
	struct expect e;
	struct hs_py *py = NULL;
	struct hs_py_opts o = opts_for(10);

	(void)state;
	build(&m, 11, &e);
	/* 3.11's geometry is 3.10's: only the pre-header differs */
	assert_int_equal(hs_py_open(m.t, &o, &py), 0);
	assert_int_equal(hs_py_census(py, NULL), 0);
	assert_int_equal(find_type(py, "mod.Node")->count, 0);
	assert_int_equal(find_type(py, "float")->count, e.floats);
	hs_py_close(py);
	release(&m);
}

static void test_corrupt_pool_and_loop(void **state)
{
	struct mem m;
	struct expect e;
	struct hs_py *py = NULL;
	struct hs_py_opts o = opts_for(12);
	unsigned char *p;

	(void)state;
	build(&m, 12, &e);
	/* pool 1: a size class out of range */
	put32(m.arena + m.pool_size + 36, 77);
	/* pool 0: the free list loops back to its head */
	p = m.arena;
	put64(p + 48 + 7 * 32, ARENA_A + 48 + 3 * 32);
	assert_int_equal(hs_py_open(m.t, &o, &py), 0);
	assert_int_equal(hs_py_census(py, NULL), 0);
	assert_true(py->nproblems >= 2);
	assert_int_equal(find_type(py, "tuple")->count, 0);
	/* the loop is cut where it closes: still exactly the live floats */
	assert_int_equal(find_type(py, "float")->count, e.floats);
	hs_py_close(py);
	release(&m);
}

static void test_no_vector(void **state)
{
	struct mem m;
	struct expect e;
	struct hs_py *py = NULL;
	struct hs_py_opts o = opts_for(11);

	(void)state;
	build(&m, 11, &e);
	/* a vector whose used entry has an impossible pool count */
	put32(m.heap + (VEC_A - HEAP_A) + 20, 3);
	assert_int_equal(hs_py_open(m.t, &o, &py), 0);
	assert_int_equal(py->arenas_vec, 0);
	assert_int_equal(hs_py_census(py, NULL), 0);
	assert_int_equal(py->objects.count, 0);
	hs_py_close(py);
	release(&m);
}

static void test_versions_refused(void **state)
{
	struct mem m;
	struct expect e;
	struct hs_py *py = NULL;
	struct hs_py_opts o;

	(void)state;
	build(&m, 11, &e);
	o = opts_for(7);
	assert_int_equal(hs_py_open(m.t, &o, &py), -HS_E_UNSUPPORTED);
	assert_non_null(py);
	assert_string_equal(py->version, "3.7");
	hs_py_close(py);
	o = opts_for(14);
	assert_int_equal(hs_py_open(m.t, &o, &py), -HS_E_UNSUPPORTED);
	hs_py_close(py);
	o = opts_for(11);
	o.type_type = 0;
	py = NULL;
	assert_int_equal(hs_py_open(m.t, &o, &py), -HS_E_NOT_FOUND);
	assert_null(py);
	/* PyType_Type that is no type */
	o = opts_for(11);
	o.type_type = FLOAT_A;
	assert_int_equal(hs_py_open(m.t, &o, &py), -HS_E_CORRUPT);
	hs_py_close(py);
	release(&m);
}

/* Hostile memory: the synthetic interpreter with its data, vector and
 * arena overwritten by random words (pointers into the segments among
 * them) must give an answer, never a crash or a hang (run under ASan). */
static void test_random_memory(void **state)
{
	uint64_t seed = 0x9E3779B97F4A7C15ull;

	(void)state;
	for (unsigned round = 0; round < 40; round++) {
		struct mem m;
		struct expect e;
		struct hs_py *py = NULL;
		struct hs_py_opts o = opts_for(8 + round % 6);
		const hs_addr_t bases[] = { DATA_A, HEAP_A, ARENA_A, TYPE_A, FLOAT_A };

		build(&m, 8 + round % 6, &e);
		for (unsigned k = 0; k < 4000; k++) {
			uint64_t r, v;
			unsigned char *where;
			size_t off;

			seed ^= seed << 13;
			seed ^= seed >> 7;
			seed ^= seed << 17;
			r = seed;
			/* a random word, or a pointer near a known address */
			v = (r & 1) ? r : bases[(r >> 1) % 5] + ((r >> 8) & 0xfff8);
			switch ((r >> 20) % 4) {
			case 0:
				where = m.data;
				off = (size_t)((r >> 24) % (DATA_LEN / 8)) * 8;
				break;
			case 1:
				where = m.heap;
				off = (size_t)((r >> 24) % (HEAP_LEN / 8)) * 8;
				break;
			default:
				where = m.arena;
				off = (size_t)((r >> 24) % (4 * m.pool_size / 8)) * 8;
				break;
			}
			/* keep PyType_Type itself a type, or nothing happens */
			if (where == m.data && off >= TYPE_A - DATA_A &&
			    off < TYPE_A - DATA_A + 272)
				continue;
			put64(where + off, v);
		}
		assert_int_equal(hs_py_open(m.t, &o, &py), 0);
		if (!py)
			fail();
		assert_int_equal(hs_py_census(py, NULL), 0);
		assert_true(py->objects.count <= py->pymalloc_blocks.count);
		hs_py_close(py);
		release(&m);
	}
}

/* Strings' locations: PYTHON intervals laid over malloc's. */
static void test_where_overlay(void **state)
{
	struct hs_str_where w = HS_STR_WHERE_INIT;
	static const struct hs_str_where_iv ov[] = {
		{ 0x1010, 0x1020, HS_STR_LOC_PYTHON }, /* inside an in-use chunk */
		{ 0x1ff0, 0x2100, HS_STR_LOC_PYTHON }, /* across two intervals */
		{ 0x5000, 0x6000, HS_STR_LOC_PYTHON }, /* outside all (an arena) */
	};

	(void)state;
	hs_str_where_add(&w, 0x1000, 0x2000, HS_STR_LOC_INUSE);
	hs_str_where_add(&w, 0x2000, 0x3000, HS_STR_LOC_FREE);
	hs_str_where_finish(&w);
	hs_str_where_overlay(&w, ov, 3);
	assert_true(w.python);
	assert_int_equal(hs_str_where_find(&w, 0x1000), HS_STR_LOC_INUSE);
	assert_int_equal(hs_str_where_find(&w, 0x1010), HS_STR_LOC_PYTHON);
	assert_int_equal(hs_str_where_find(&w, 0x101f), HS_STR_LOC_PYTHON);
	assert_int_equal(hs_str_where_find(&w, 0x1020), HS_STR_LOC_INUSE);
	assert_int_equal(hs_str_where_find(&w, 0x1fef), HS_STR_LOC_INUSE);
	assert_int_equal(hs_str_where_find(&w, 0x1ff0), HS_STR_LOC_PYTHON);
	assert_int_equal(hs_str_where_find(&w, 0x20ff), HS_STR_LOC_PYTHON);
	assert_int_equal(hs_str_where_find(&w, 0x2100), HS_STR_LOC_FREE);
	assert_int_equal(hs_str_where_find(&w, 0x2fff), HS_STR_LOC_FREE);
	assert_int_equal(hs_str_where_find(&w, 0x3000), HS_STR_LOC_OUTSIDE);
	assert_int_equal(hs_str_where_find(&w, 0x5800), HS_STR_LOC_PYTHON);
	assert_int_equal(w.nfree, 1);
	/* sorted and disjoint */
	for (size_t i = 1; i < w.n; i++)
		assert_true(w.v[i - 1].end <= w.v[i].start);
	assert_string_equal(hs_str_loc_name(HS_STR_LOC_PYTHON), "python");
	hs_str_where_release(&w);
}

/* Profiles carry the census; diff names the type that grew. */
static void test_profile_types_roundtrip_and_diff(void **state)
{
	struct hs_census c1 = HS_CENSUS_INIT, c2 = HS_CENSUS_INIT;
	struct hs_profile a, b, r;
	struct hs_diff d;
	char *buf = NULL;
	size_t len = 0;
	FILE *f;
	bool found = false;

	(void)state;
	hs_census_add(&c1, HS_CENSUS_PYTHON, "__main__.Leaky", 100, 6400);
	hs_census_add(&c1, HS_CENSUS_PYTHON, "int", 50, 1600);
	/* a class defined twice prints one name: one profile row */
	hs_census_add(&c1, HS_CENSUS_PYTHON, "int", 5, 160);
	hs_census_add(&c2, HS_CENSUS_PYTHON, "__main__.Leaky", 500100, 32006400);
	hs_census_add(&c2, HS_CENSUS_PYTHON, "int", 55, 1760);
	hs_census_add(&c2, HS_CENSUS_CXX, "Widget", 3, 96);
	hs_profile_init(&a);
	hs_profile_init(&b);
	hs_profile_add_census(&a, &c1);
	hs_profile_add_census(&b, &c2);
	assert_int_equal(a.ntypes, 2);
	assert_true(a.types_done);
	/* b through the file format */
	f = open_memstream(&buf, &len);
	assert_non_null(f);
	assert_int_equal(hs_profile_write(&b, f), 0);
	fclose(f);
	assert_non_null(strstr(buf, "type python 500100 32006400 __main__.Leaky\n"));
	f = fmemopen(buf, len, "r");
	assert_non_null(f);
	assert_int_equal(hs_profile_read(&r, f, NULL), 0);
	fclose(f);
	assert_true(r.types_done);
	assert_int_equal(r.ntypes, 3);
	assert_int_equal(hs_diff_compute(&d, &a, &r, NULL), 0);
	for (size_t i = 0; i < d.nitems; i++) {
		const struct hs_growth_item *it = &d.items[i];

		if (it->kind != HS_GROWTH_TYPE || strcmp(it->s, "__main__.Leaky"))
			continue;
		found = true;
		assert_int_equal(it->dcount, 500000);
		assert_int_equal(it->count_a, 100);
		assert_string_equal(it->path, "python");
		assert_int_equal(i, 0); /* the largest growth */
	}
	assert_true(found);
	assert_string_equal(hs_growth_kind_name(HS_GROWTH_TYPE), "type");
	hs_diff_release(&d);
	hs_profile_release(&r);
	hs_profile_release(&a);
	hs_profile_release(&b);
	hs_census_release(&c1);
	hs_census_release(&c2);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_3_8),
		cmocka_unit_test(test_3_9),
		cmocka_unit_test(test_3_10),
		cmocka_unit_test(test_3_11),
		cmocka_unit_test(test_3_12),
		cmocka_unit_test(test_3_13),
		cmocka_unit_test(test_wrong_version_misses_preheader),
		cmocka_unit_test(test_corrupt_pool_and_loop),
		cmocka_unit_test(test_no_vector),
		cmocka_unit_test(test_versions_refused),
		cmocka_unit_test(test_random_memory),
		cmocka_unit_test(test_where_overlay),
		cmocka_unit_test(test_profile_types_roundtrip_and_diff),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
