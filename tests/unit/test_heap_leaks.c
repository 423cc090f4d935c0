/*
 * Unit tests of heap/leaks/: reachability on a small glibc 2.36 main heap
 * laid out in a mem target, and the vtable lookup.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "hs_leaks.h"

#define DATA_A 0x7f0000000000ull  /* libc's data: main_arena */
#define APP_A 0x7f1000000000ull   /* the program's .data: the roots */
#define HEAP_A 0x555500000000ull
#define HEAP_LEN 0x10000u
#define ARENA (DATA_A + 0x100)
#define VT_A (DATA_A + 0x1800)   /* a vtable symbol's range */
/* glibc 2.35-2.40 malloc_state offsets (doc: reference of glibc.c) */
#define MS_FASTBINS 0x10
#define MS_TOP 0x60
#define MS_BINS 0x70
#define MS_NEXT 0x870
#define MS_ATTACHED 0x880
#define MS_SYSTEM_MEM 0x888

struct fake {
	unsigned char data[0x2000], app[0x1000], heap[HEAP_LEN];
	hs_addr_t cur;
	size_t nroots;
	struct hs_target *t;
};

static unsigned char *at(struct fake *f, hs_addr_t a)
{
	if (a >= DATA_A && a + 8 <= DATA_A + sizeof(f->data))
		return f->data + (a - DATA_A);
	if (a >= APP_A && a + 8 <= APP_A + sizeof(f->app))
		return f->app + (a - APP_A);
	if (a >= HEAP_A && a + 8 <= HEAP_A + sizeof(f->heap))
		return f->heap + (a - HEAP_A);
	fail_msg("0x%llx outside the fake", (unsigned long long)a);
	return NULL;
}

static void w64(struct fake *f, hs_addr_t a, uint64_t v)
{
	memcpy(at(f, a), &v, 8);
}

/* An in-use (or fastbin) chunk of size at f->cur: its header address. */
static hs_addr_t chunk(struct fake *f, uint64_t size)
{
	hs_addr_t c = f->cur;

	w64(f, c + 8, size | 1);
	memset(at(f, c + 16), 'Z', 8); /* no pointer-like payload */
	f->cur += size;
	return c;
}

static void root(struct fake *f, uint64_t v)
{
	w64(f, APP_A + 8 * f->nroots++, v);
}

/*
 * A: anchored by a start pointer from the roots; B: A's first word;
 * C: only A's pointer 24 bytes into it (possible); D -> E leaked (D
 * unreferenced, E indirect); F <-> G a leaked cycle; X free in a fastbin,
 * pointed to by a root (anchors nothing); H: only a root pointing at its
 * successor's header, i.e. H's last word (possible); I: only a root at its
 * own size field (leaked); N and M: interior pointers memcheck's
 * heuristics count as start pointers (anchored, not possible); the last
 * chunk before top (main_arena.top points at top's header: must not
 * anchor it).
 */
static void build(struct fake *f)
{
	hs_addr_t A, B, C, D, E, F, G, X, H, I, N, M, topc;

	memset(f, 0, sizeof(*f));
	for (int i = 1; i < 128; i++) {
		hs_addr_t h = ARENA + MS_BINS + (hs_addr_t)(i - 1) * 16 - 16;

		w64(f, h + 16, h);
		w64(f, h + 24, h);
	}
	w64(f, ARENA + MS_NEXT, ARENA);
	w64(f, ARENA + MS_ATTACHED, 1);
	w64(f, ARENA + MS_SYSTEM_MEM, HEAP_LEN);
	f->cur = HEAP_A;
	A = chunk(f, 0x30);
	B = chunk(f, 0x30);
	C = chunk(f, 0x40);
	D = chunk(f, 0x30);
	E = chunk(f, 0x50);
	F = chunk(f, 0x60);
	G = chunk(f, 0x60);
	X = chunk(f, 0x30);
	H = chunk(f, 0x70);
	N = chunk(f, 0x40);
	M = chunk(f, 0x30);
	I = chunk(f, 0x80);
	topc = f->cur;
	w64(f, topc + 8, (HEAP_A + HEAP_LEN - topc) | 1);
	w64(f, ARENA + MS_TOP, topc);
	/* X in fastbin 1 (0x30), safe-linked: the end is (field >> 12) ^ 0. */
	w64(f, X + 16, (X + 16) >> 12);
	w64(f, ARENA + MS_FASTBINS + 8, X);

	root(f, A + 16);
	w64(f, C + 16, VT_A + 16);  /* C holds an object of class "Vt" */
	w64(f, A + 16, B + 16);
	w64(f, A + 24, C + 16 + 24);
	w64(f, D + 16, E + 16);
	w64(f, F + 24, G + 16);
	w64(f, G + 16, F + 16);
	root(f, X + 16);
	root(f, H + 0x70);     /* H's last word: its successor's prev_size */
	root(f, I + 8);        /* I's size field: in no chunk */
	/* memcheck's heuristics make these interior pointers start pointers:
	 * N as new[] of 3 elements of 16 bytes (request 56: chunk 0x40),
	 * M as an object with a second vtable pointer at +16. */
	w64(f, N + 16, 3);
	root(f, N + 16 + 8);
	w64(f, M + 16, VT_A + 16);
	w64(f, M + 32, VT_A + 24);
	root(f, M + 16 + 16);

	assert_int_equal(hs_target_open_mem(&f->t), 0);
	hs_target_mem_add(f->t, DATA_A, f->data, sizeof(f->data), HS_PERM_R | HS_PERM_W,
			  "/usr/lib/x86_64-linux-gnu/libc.so.6");
	hs_target_mem_add(f->t, APP_A, f->app, sizeof(f->app), HS_PERM_R | HS_PERM_W, "/app");
	hs_target_mem_add(f->t, HEAP_A, f->heap, sizeof(f->heap), HS_PERM_R | HS_PERM_W, "[heap]");
	hs_classify(f->t);
}

static struct hs_glibc_heap *open_heap(struct fake *f)
{
	struct hs_glibc_opts o;
	struct hs_glibc_heap *h = NULL;

	memset(&o, 0, sizeof(o));
	o.main_arena = ARENA;
	o.version_minor = 36;
	o.flags = HS_GLIBC_NO_TLS | HS_GLIBC_NO_MMAPPED | HS_GLIBC_NO_SCAN;
	assert_int_equal(hs_glibc_open(f->t, &o, &h), 0);
	return h;
}

static void assert_count(const struct hs_leaks_count *c, uint64_t n, uint64_t bytes)
{
	assert_int_equal(c->count, n);
	assert_int_equal(c->bytes, bytes);
}

static const struct hs_vtable vt_v[] = { { VT_A, VT_A + 0x40, "Vt" } };
static const struct hs_vtables vt = { vt_v, 1 };

static void check(struct fake *f, unsigned flags)
{
	struct hs_glibc_heap *h = open_heap(f);
	struct hs_leaks_opts o;
	struct hs_leaks_result r;
	bool typed = false;

	memset(&o, 0, sizeof(o));
	o.flags = flags;
	o.vtables = &vt;
	assert_int_equal(hs_leaks_run(h, &o, &r), 0);
	assert_count(&r.inuse, 11, 0x30 + 0x30 + 0x40 + 0x30 + 0x50 + 0x60 + 0x60 + 0x70 + 0x80 +
		     0x40 + 0x30);
	assert_count(&r.anchored, 6, 0x30 + 0x30 + 0x40 + 0x70 + 0x40 + 0x30);
	assert_count(&r.possible, 2, 0x40 + 0x70);
	assert_count(&r.leaked, 5, 0x30 + 0x50 + 0x60 + 0x60 + 0x80);
	assert_count(&r.unreferenced, 2, 0x30 + 0x80);
	/* D, I and one of the equal-sized cycle */
	assert_count(&r.definite, 3, 0x30 + 0x80 + 0x60);
	assert_count(&r.indirect, 2, 0x50 + 0x60);
	assert_int_equal(r.leak_cycles, 1);
	assert_true(r.ngroups >= 6);
	for (size_t i = 0; i < r.ngroups; i++)
		if (r.groups[i].type == 0 && r.groups[i].size == 0x40) {
			/* C: reached only through its middle */
			assert_false(typed);
			typed = true;
			assert_count(&r.groups[i].possible, 1, 0x40);
			assert_int_equal(r.groups[i].samples[0], HEAP_A + 0x60);
		} else if (r.groups[i].type == 0) {
			/* M: a second vtable pointer is a start pointer */
			assert_int_equal(r.groups[i].size, 0x30);
			assert_count(&r.groups[i].anchored, 1, 0x30);
			assert_count(&r.groups[i].possible, 0, 0);
		}
	assert_true(typed);
	hs_leaks_result_release(&r);
	hs_glibc_close(h);
}

static void test_reachability(void **state)
{
	struct fake *f = malloc(sizeof(*f));

	(void)state;
	assert_non_null(f);
	build(f);
	check(f, 0);
	/* Without the edge list, the closures read the chunks: same. */
	check(f, HS_LEAKS_NO_EDGES);
	hs_target_close(f->t);
	free(f);
}

static void test_census(void **state)
{
	struct fake *f = malloc(sizeof(*f));
	struct hs_glibc_heap *h;
	struct hs_cxx_type *v = NULL;
	size_t n = 0;

	(void)state;
	assert_non_null(f);
	build(f);
	h = open_heap(f);
	assert_int_equal(hs_cxx_census(h, &vt, NULL, &v, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(v[0].name, "Vt");
	assert_int_equal(v[0].type, 0);
	assert_int_equal(v[0].count, 2); /* C and M */
	assert_int_equal(v[0].bytes, 0x40 + 0x30);
	assert_int_equal(v[0].sample, HEAP_A + 0x60);
	free(v);
	/* No vtables: an empty census. */
	assert_int_equal(hs_cxx_census(h, NULL, NULL, &v, &n), 0);
	assert_int_equal(n, 0);
	assert_null(v);
	hs_glibc_close(h);
	hs_target_close(f->t);
	free(f);
}

static void test_budget(void **state)
{
	struct fake *f = malloc(sizeof(*f));
	struct hs_glibc_heap *h;
	struct hs_leaks_opts o;
	struct hs_leaks_result r;

	(void)state;
	assert_non_null(f);
	build(f);
	h = open_heap(f);
	memset(&o, 0, sizeof(o));
	o.max_mem = 4096;
	assert_int_equal(hs_leaks_run(h, &o, &r), -HS_E_BUDGET);
	hs_glibc_close(h);
	hs_target_close(f->t);
	free(f);
}

static void test_vtables_find(void **state)
{
	static const struct hs_vtable v[] = {
		{ 0x1000, 0x1040, "A" },
		{ 0x1040, 0x1080, "B" },
		{ 0x2000, 0x2018, "C" },
	};
	struct hs_vtables tab = { v, HS_ARRAY_SIZE(v) };

	(void)state;
	assert_int_equal(hs_vtables_find(&tab, 0x1010), 0);
	assert_int_equal(hs_vtables_find(&tab, 0x1038), 0);
	assert_int_equal(hs_vtables_find(&tab, 0x1000), -1); /* offset-to-top */
	assert_int_equal(hs_vtables_find(&tab, 0x1008), -1); /* typeinfo */
	assert_int_equal(hs_vtables_find(&tab, 0x1050), 1);
	assert_int_equal(hs_vtables_find(&tab, 0x1052), -1); /* unaligned */
	assert_int_equal(hs_vtables_find(&tab, 0x2010), 2);
	assert_int_equal(hs_vtables_find(&tab, 0x2018), -1); /* the end */
	assert_int_equal(hs_vtables_find(&tab, 0x0ff8), -1);
	assert_int_equal(hs_vtables_find(&tab, 0x3000), -1);
	assert_int_equal(hs_vtables_find(NULL, 0x1010), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reachability),
		cmocka_unit_test(test_census),
		cmocka_unit_test(test_budget),
		cmocka_unit_test(test_vtables_find),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
