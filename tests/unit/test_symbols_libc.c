/*
 * Unit tests of symbols/libc.c on this process's own glibc: a "mem" target
 * whose segments are our own libc mappings (the data pointer is the
 * address itself), so the answer can be checked in our own memory.
 * main_arena is static data initialised with next = &main_arena (its ring
 * of one arena until a second thread mallocs), at +0x870 on 2.27-2.40.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <gnu/libc-version.h>
#include <cmocka.h>

#include "hs_libc.h"

#define MS_NEXT 0x870

static bool libc_name(const char *path)
{
	const char *b = strrchr(path, '/');

	b = b ? b + 1 : path;
	return !strncmp(b, "libc.so", 7) || !strncmp(b, "libc-2.", 7);
}

/* Our own libc mappings as a mem target; the number added in *n. */
static struct hs_target *self_libc(size_t *n, const char *rename)
{
	struct hs_target *t;
	FILE *f = fopen("/proc/self/maps", "r");
	char line[4096];

	assert_non_null(f);
	assert_int_equal(hs_target_open_mem(&t), 0);
	*n = 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long s, e, off;
		char perms[8], path[4096] = "";
		unsigned p = 0;

		if (sscanf(line, "%lx-%lx %7s %lx %*s %*s %4095s", &s, &e, perms, &off,
			   path) < 4 || !libc_name(path) || perms[0] != 'r')
			continue;
		p = HS_PERM_R | (perms[1] == 'w' ? HS_PERM_W : 0) |
		    (perms[2] == 'x' ? HS_PERM_X : 0);
		hs_target_mem_add(t, s, (const void *)s, e - s, p, rename ? rename : path);
		for (size_t i = 0; i < t->maps.n; i++)
			if (t->maps.v[i].start == s)
				t->maps.v[i].offset = off;
		(*n)++;
	}
	fclose(f);
	hs_maps_sort(&t->maps);
	hs_classify(t);
	return t;
}

static bool glibc_at_least(unsigned minor)
{
	const char *v = gnu_get_libc_version();

	return !strncmp(v, "2.", 2) && (unsigned)atoi(v + 2) >= minor;
}

static void test_disasm_finds_main_arena(void **state)
{
	hs_addr_t c[8];
	size_t n = 0, nmaps;
	struct hs_target *t = self_libc(&nmaps, NULL);
	const struct hs_map *m;
	uint64_t next;

	(void)state;
	if (!nmaps || !glibc_at_least(27)) {
		hs_target_close(t);
		skip();
	}
	assert_int_equal(hs_libc_main_arena_disasm(t, c, HS_ARRAY_SIZE(c), &n), 0);
	assert_true(n >= 1 && n <= HS_ARRAY_SIZE(c));
	/* the most-referenced address is in libc's writable data ... */
	m = hs_target_find_map(t, c[0]);
	assert_non_null(m);
	assert_true(m->perms & HS_PERM_W);
	/* ... and is main_arena: its next ring closes on itself */
	memcpy(&next, (const void *)(uintptr_t)(c[0] + MS_NEXT), sizeof(next));
	assert_int_equal(next, c[0]);
	/* max bounds the output */
	assert_int_equal(hs_libc_main_arena_disasm(t, c, 1, &n), 0);
	assert_int_equal(n, 1);
	hs_target_close(t);
}

static void test_symbol_agrees(void **state)
{
	hs_addr_t c[8], a = 0;
	size_t n = 0, nmaps;
	struct hs_target *t = self_libc(&nmaps, NULL);
	int ret;

	(void)state;
	if (!nmaps || !glibc_at_least(27)) {
		hs_target_close(t);
		skip();
	}
	ret = hs_libc_main_arena_symbol(t, &a);
	if (ret == -HS_E_NOT_FOUND) {
		/* no libc6-dbg here */
		hs_target_close(t);
		skip();
	}
	assert_int_equal(ret, 0);
	assert_int_equal(hs_libc_main_arena_disasm(t, c, HS_ARRAY_SIZE(c), &n), 0);
	assert_int_equal(a, c[0]);
	hs_target_close(t);
}

static void test_no_libc(void **state)
{
	struct hs_target *t;
	hs_addr_t c[2], a;
	size_t n = 7;
	static unsigned char buf[4096];

	(void)state;
	assert_int_equal(hs_target_open_mem(&t), 0);
	hs_target_mem_add(t, 0x10000, buf, sizeof(buf), HS_PERM_R | HS_PERM_W, "/bin/true");
	assert_int_equal(hs_libc_main_arena_disasm(t, c, 2, &n), -HS_E_NOT_FOUND);
	assert_int_equal(n, 0);
	assert_int_equal(hs_libc_main_arena_symbol(t, &a), -HS_E_NOT_FOUND);
	hs_target_close(t);
}

static void test_junk_file(void **state)
{
	char dir[] = "/tmp/hs-libc-XXXXXX", path[64];
	static unsigned char junk[8192];
	struct hs_target *t;
	hs_addr_t c[2];
	size_t n = 7;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/libc.so.6", dir);
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (unsigned char)(i * 131 + 7);
	memcpy(junk, "\177ELF\2\1\1", 7); /* an ELF magic, then garbage */
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(junk, 1, sizeof(junk), f), sizeof(junk));
	fclose(f);
	assert_int_equal(hs_target_open_mem(&t), 0);
	hs_target_mem_add(t, 0x10000, junk, sizeof(junk), HS_PERM_R, path);
	assert_int_equal(hs_libc_main_arena_disasm(t, c, 2, &n), -HS_E_NOT_FOUND);
	assert_int_equal(n, 0);
	hs_target_close(t);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_disasm_finds_main_arena),
		cmocka_unit_test(test_symbol_agrees),
		cmocka_unit_test(test_no_libc),
		cmocka_unit_test(test_junk_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
