/* The region classifier on hand-built maps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "hs_core.h"

#define MB (1ull << 20)
#define RW (HS_PERM_R | HS_PERM_W)

static struct hs_map *add(struct hs_target *t, hs_addr_t s, hs_addr_t e,
			  unsigned perms, const char *path, uint64_t inode)
{
	struct hs_map *m = hs_maps_add(&t->maps, s, e, path);

	m->perms = perms;
	m->inode = inode;
	return m;
}

static enum hs_class cls_at(struct hs_target *t, hs_addr_t a)
{
	const struct hs_map *m = hs_target_find_map(t, a);

	assert_non_null(m);
	return m->cls;
}

static void test_classes(void **state)
{
	struct hs_target *t;
	struct hs_thread th[2];

	(void)state;
	assert_int_equal(hs_target_open_mem(&t), 0);
	add(t, 0x1000, 0x2000, HS_PERM_R | HS_PERM_X, "/usr/bin/app", 7);
	add(t, 0x2000, 0x3000, HS_PERM_R, "/usr/bin/app", 7);
	add(t, 0x3000, 0x4000, RW, "/usr/bin/app", 7);
	add(t, 0x10000, 0x20000, RW, "[heap]", 0);
	/* arena heap: 64 MiB aligned rw part + ---p rest of the 64 MiB */
	add(t, 64 * MB, 64 * MB + 0x21000, RW, "", 0);
	add(t, 64 * MB + 0x21000, 128 * MB, 0, "", 0);
	/* a full arena heap (no reservation left) */
	add(t, 128 * MB, 192 * MB, RW, "", 0);
	/* aligned but the reservation does not end at +64 MiB: plain anon */
	add(t, 256 * MB, 256 * MB + 0x1000, RW, "", 0);
	add(t, 256 * MB + 0x1000, 256 * MB + 0x2000, 0, "", 0);
	/* unaligned anon, and a thread stack with its guard */
	add(t, 300 * MB, 301 * MB, RW, "", 0);
	add(t, 302 * MB, 302 * MB + 0x1000, 0, "", 0);
	add(t, 302 * MB + 0x1000, 310 * MB, RW, "", 0);
	add(t, 400 * MB, 401 * MB, RW | HS_PERM_SHARED, "/dev/zero", 5);
	add(t, 402 * MB, 403 * MB, RW, "/dev/shm/pool", 9);
	add(t, 404 * MB, 405 * MB, HS_PERM_R, "", 0);
	add(t, 406 * MB, 407 * MB, RW, "[anon:python arena]", 0);
	add(t, 408 * MB, 409 * MB, HS_PERM_R | HS_PERM_X, "[vdso]", 0);
	add(t, 410 * MB, 411 * MB, HS_PERM_R, "[vvar]", 0);
	add(t, 500 * MB, 501 * MB, RW, "[stack]", 0);
	add(t, 0xffffffffff600000ull, 0xffffffffff601000ull, HS_PERM_X, "[vsyscall]", 0);
	hs_maps_sort(&t->maps);

	memset(th, 0, sizeof(th));
	th[0].tid = 100;
	th[0].sp = 500 * MB + 0x800;
	th[1].tid = 101;
	th[1].sp = 305 * MB;
	t->threads = hs_xmalloc(sizeof(th));
	memcpy(t->threads, th, sizeof(th));
	t->nthreads = 2;
	hs_classify(t);

	assert_int_equal(cls_at(t, 0x1000), HS_CLASS_CODE);
	assert_int_equal(cls_at(t, 0x2000), HS_CLASS_RODATA);
	assert_int_equal(cls_at(t, 0x3000), HS_CLASS_DATA);
	assert_int_equal(cls_at(t, 0x10000), HS_CLASS_HEAP);
	assert_int_equal(cls_at(t, 64 * MB), HS_CLASS_ARENA);
	assert_int_equal(cls_at(t, 64 * MB + 0x21000), HS_CLASS_RESERVED);
	assert_int_equal(cls_at(t, 128 * MB), HS_CLASS_ARENA);
	assert_int_equal(cls_at(t, 256 * MB), HS_CLASS_ANON);
	assert_int_equal(cls_at(t, 300 * MB), HS_CLASS_ANON);
	assert_int_equal(cls_at(t, 302 * MB), HS_CLASS_RESERVED);
	assert_int_equal(cls_at(t, 305 * MB), HS_CLASS_STACK);
	assert_int_equal(hs_target_find_map(t, 305 * MB)->stack_tid, 101);
	assert_int_equal(cls_at(t, 400 * MB), HS_CLASS_SHM);
	assert_int_equal(cls_at(t, 402 * MB), HS_CLASS_SHM);
	assert_int_equal(cls_at(t, 404 * MB), HS_CLASS_ANON_RO);
	assert_int_equal(cls_at(t, 406 * MB), HS_CLASS_ANON);
	assert_int_equal(cls_at(t, 408 * MB), HS_CLASS_SPECIAL);
	assert_int_equal(cls_at(t, 410 * MB), HS_CLASS_SPECIAL);
	assert_int_equal(cls_at(t, 500 * MB), HS_CLASS_STACK);
	assert_int_equal(hs_target_find_map(t, 500 * MB)->stack_tid, 100);
	assert_int_equal(cls_at(t, 0xffffffffff600000ull), HS_CLASS_SPECIAL);
	hs_target_close(t);
}

/* Heaps the kernel shows in pieces: a forked child's heap grown past what
 * it inherited, or an mprotect/madvise split.  Every piece is the heap's. */
static void test_split_heaps(void **state)
{
	struct hs_target *t;

	(void)state;
	assert_int_equal(hs_target_open_mem(&t), 0);
	add(t, 0x10000, 0x30000, RW, "[heap]", 0);
	add(t, 0x30000, 0x90000, RW, "[heap]", 0);
	/* arena heap: inherited rw, grown rw, ---p rest */
	add(t, 512 * MB, 512 * MB + 0x21000, RW, "", 0);
	add(t, 512 * MB + 0x21000, 512 * MB + 0x80000, RW, "", 0);
	add(t, 512 * MB + 0x80000, 576 * MB, 0, "", 0);
	/* a full arena heap in two pieces */
	add(t, 576 * MB, 608 * MB, RW, "", 0);
	add(t, 608 * MB, 640 * MB, RW, "", 0);
	/* unaligned run followed by a reservation: anon */
	add(t, 700 * MB, 701 * MB, RW, "", 0);
	add(t, 701 * MB, 702 * MB, RW, "", 0);
	add(t, 702 * MB, 768 * MB, 0, "", 0);
	/* aligned run that passes +64 MiB: anon */
	add(t, 768 * MB, 800 * MB, RW, "", 0);
	add(t, 800 * MB, 840 * MB, RW, "", 0);
	hs_maps_sort(&t->maps);
	hs_classify(t);

	assert_int_equal(cls_at(t, 0x10000), HS_CLASS_HEAP);
	assert_int_equal(cls_at(t, 0x30000), HS_CLASS_HEAP);
	assert_int_equal(cls_at(t, 512 * MB), HS_CLASS_ARENA);
	assert_int_equal(cls_at(t, 512 * MB + 0x21000), HS_CLASS_ARENA);
	assert_int_equal(cls_at(t, 512 * MB + 0x80000), HS_CLASS_RESERVED);
	assert_int_equal(cls_at(t, 576 * MB), HS_CLASS_ARENA);
	assert_int_equal(cls_at(t, 608 * MB), HS_CLASS_ARENA);
	assert_int_equal(cls_at(t, 700 * MB), HS_CLASS_ANON);
	assert_int_equal(cls_at(t, 701 * MB), HS_CLASS_ANON);
	assert_int_equal(cls_at(t, 768 * MB), HS_CLASS_ANON);
	assert_int_equal(cls_at(t, 800 * MB), HS_CLASS_ANON);
	hs_target_close(t);
}

static void test_names(void **state)
{
	(void)state;
	for (int c = 0; c < HS_CLASS_N; c++)
		assert_int_equal(hs_class_parse(hs_class_name(c)), c);
	assert_int_equal(hs_class_parse("nope"), -1);
	assert_string_equal(hs_class_name(HS_CLASS_ARENA), "arena");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classes),
		cmocka_unit_test(test_split_heaps),
		cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
