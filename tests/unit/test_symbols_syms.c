/*
 * Unit tests of the symbol resolver (symbols/syms.c).
 *
 * The resolver runs over a "mem" target whose maps mirror this test
 * process's own /proc/self/maps (paths, offsets, inodes), so every answer
 * can be checked against the truth the process knows: the addresses of its
 * own functions and globals, dlsym() in libc, getauxval(AT_SYSINFO_EHDR).
 * Only [vdso] gets a readable segment (the resolver reads it from memory);
 * modules are otherwise read from their files.  Damaged and missing files
 * are mapped at made-up addresses.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

#include "hs_syms.h"

/* Ground truth: names the resolver must find in this executable. */
extern int hs_test_global[4];
extern int hs_test_bss[64];
int hs_test_function(int x);
int hs_test_global[4] = { 1, 2, 3, 4 };
int hs_test_bss[64];
enum { TEST_FUNC_LINE = __LINE__ };
__attribute__((noinline)) int hs_test_function(int x)
{
	return x * 3 + hs_test_bss[x & 63];
}

/* A C function whose symbol is a mangled C++ name: hstest::twice(int). */
int _ZN6hstest5twiceEi(int x);
__attribute__((noinline)) int _ZN6hstest5twiceEi(int x)
{
	return 2 * x + hs_test_bss[(x + 1) & 63];
}

static char exe_path[4096];

/* Adds every mapping of this process to t's maps (no segments). */
static void mirror_self(struct hs_target *t)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[4352];

	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		unsigned long long start, end, off, inode;
		unsigned maj, min;
		char perms[8], path[4096] = "";
		struct hs_map *m;
		int n = sscanf(line, "%llx-%llx %7s %llx %x:%x %llu %4095[^\n]",
			       &start, &end, perms, &off, &maj, &min, &inode, path);

		assert_true(n >= 7);
		m = hs_maps_add(&t->maps, start, end, path[0] ? path : NULL);
		m->offset = off;
		m->inode = inode;
		m->perms = (perms[0] == 'r' ? HS_PERM_R : 0) |
			   (perms[1] == 'w' ? HS_PERM_W : 0) |
			   (perms[2] == 'x' ? HS_PERM_X : 0);
		if (!strcmp(path, "[vdso]"))
			hs_target_mem_add(t, start, (const void *)(uintptr_t)start,
					  end - start, 0, NULL);
	}
	fclose(f);
	hs_maps_sort(&t->maps);
}

static int setup_self(void **state)
{
	struct hs_target *t = NULL;
	ssize_t n;

	assert_int_equal(hs_target_open_mem(&t), 0);
	mirror_self(t);
	n = readlink("/proc/self/exe", exe_path, sizeof(exe_path) - 1);
	assert_true(n > 0);
	exe_path[n] = 0;
	*state = t;
	return 0;
}

static int teardown_target(void **state)
{
	hs_target_close(*state);
	return 0;
}

static void test_lookup_function(void **state)
{
	struct hs_syms *s = NULL;
	struct hs_sym_info si;
	hs_addr_t fn = (hs_addr_t)(uintptr_t)&hs_test_function;

	assert_int_equal(hs_syms_open(*state, 0, &s), 0);
	assert_int_equal(hs_syms_lookup(s, fn + 2, &si), 0);
	assert_string_equal(si.name, "hs_test_function");
	assert_int_equal(si.kind, HS_SYM_FUNC);
	assert_int_equal(si.sym_addr, fn);
	assert_int_equal(si.offset, 2);
	assert_true(si.sym_size > 2);
	assert_string_equal(si.module, exe_path);
	assert_string_equal(si.module_name, strrchr(exe_path, '/') + 1);
	/* Debug info (the tests build with -g): this file, near the line. */
	assert_non_null(si.src_file);
	assert_non_null(strstr(si.src_file, "test_symbols_syms.c"));
	assert_in_range(si.src_line, TEST_FUNC_LINE, TEST_FUNC_LINE + 4);
	hs_syms_close(s);

	/* Without debug info: the same name, no source. */
	assert_int_equal(hs_syms_open(*state, HS_SYMS_NO_DEBUGINFO, &s), 0);
	assert_int_equal(hs_syms_lookup(s, fn, &si), 0);
	assert_string_equal(si.name, "hs_test_function");
	assert_int_equal(si.offset, 0);
	assert_null(si.src_file);
	assert_int_equal(si.src_line, 0);
	hs_syms_close(s);
}

static void test_lookup_data_and_bss(void **state)
{
	struct hs_syms *s = NULL;
	struct hs_sym_info si;
	hs_addr_t g = (hs_addr_t)(uintptr_t)hs_test_global;
	hs_addr_t b = (hs_addr_t)(uintptr_t)hs_test_bss;
	hs_addr_t a = 0;
	uint64_t size = 0;

	assert_int_equal(hs_syms_open(*state, 0, &s), 0);
	assert_int_equal(hs_syms_lookup(s, g + 8, &si), 0);
	assert_string_equal(si.name, "hs_test_global");
	assert_int_equal(si.kind, HS_SYM_OBJECT);
	assert_int_equal(si.offset, 8);
	assert_int_equal(si.sym_size, sizeof(hs_test_global));
	/* .bss may sit in an anonymous mapping after the file's: still ours. */
	assert_int_equal(hs_syms_lookup(s, b + 100, &si), 0);
	assert_string_equal(si.name, "hs_test_bss");
	assert_int_equal(si.offset, 100);

	assert_int_equal(hs_syms_by_name(s, NULL, "hs_test_global", &a, &size), 0);
	assert_int_equal(a, g);
	assert_int_equal(size, sizeof(hs_test_global));
	assert_int_equal(hs_syms_by_name(s, exe_path, "hs_test_bss", &a, NULL), 0);
	assert_int_equal(a, b);
	assert_int_equal(hs_syms_by_name(s, strrchr(exe_path, '/') + 1,
					 "hs_test_function", &a, NULL), 0);
	assert_int_equal(a, (hs_addr_t)(uintptr_t)&hs_test_function);
	assert_int_equal(hs_syms_by_name(s, "libc", "hs_test_global", &a, NULL),
			 -HS_E_NOT_FOUND);
	assert_int_equal(hs_syms_by_name(s, NULL, "no_such_symbol_xyz", &a, NULL),
			 -HS_E_NOT_FOUND);
	hs_syms_close(s);
}

static void test_libc(void **state)
{
	struct hs_syms *s = NULL;
	struct hs_sym_info si;
	void *h = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
	hs_addr_t want, a = 0, a2 = 0;
	char buf[256];

	assert_non_null(h);
	/* libc's own malloc (dlsym on the handle, not an interposer's). */
	want = (hs_addr_t)(uintptr_t)dlsym(h, "malloc");
	assert_true(want != 0);
	assert_int_equal(hs_syms_open(*state, 0, &s), 0);
	assert_int_equal(hs_syms_by_name(s, "libc", "malloc", &a, NULL), 0);
	assert_int_equal(a, want);
	assert_int_equal(hs_syms_by_name(s, "libc.so.6", "free", &a2, NULL), 0);
	assert_int_equal(a2, (hs_addr_t)(uintptr_t)dlsym(h, "free"));
	/* A versioned symbol (spelled "name@@VERSION" in a debug .symtab)
	 * is found by its plain name: the default version, as dlsym. */
	assert_int_equal(hs_syms_by_name(s, "libc", "pthread_cond_wait", &a2, NULL), 0);
	assert_int_equal(a2, (hs_addr_t)(uintptr_t)dlsym(h, "pthread_cond_wait"));
	/* "libc" is a prefix of the basename up to '.', not of "libcap". */
	assert_int_equal(hs_syms_lookup(s, want, &si), 0);
	assert_non_null(si.name);
	assert_int_equal(si.sym_addr, want);
	assert_int_equal(si.offset, 0);
	assert_non_null(strstr(si.module_name, "libc"));
	/* The name it gives back resolves to the same address. */
	assert_int_equal(hs_syms_by_name(s, "libc", si.name, &a, NULL), 0);
	assert_int_equal(a, want);
	hs_syms_format(s, want + 0x10, buf, sizeof(buf));
	assert_non_null(strstr(buf, "+0x10 (libc.so.6)"));
	hs_syms_close(s);
	dlclose(h);
}

static void test_vdso(void **state)
{
	struct hs_syms *s = NULL;
	struct hs_sym_info si;
	hs_addr_t vdso = getauxval(AT_SYSINFO_EHDR), a = 0;

	if (!vdso)
		skip();
	assert_int_equal(hs_syms_open(*state, 0, &s), 0);
	assert_int_equal(hs_syms_by_name(s, "[vdso]", "__vdso_clock_gettime", &a,
					 NULL), 0);
	assert_true(a > vdso && a < vdso + (1 << 20));
	assert_int_equal(hs_syms_lookup(s, a + 1, &si), 0);
	assert_string_equal(si.module_name, "[vdso]");
	assert_non_null(si.name);
	assert_int_equal(si.offset, 1);
	hs_syms_close(s);
}

static void test_not_found_and_format(void **state)
{
	struct hs_syms *s = NULL;
	struct hs_sym_info si;
	char buf[128];

	assert_int_equal(hs_syms_open(*state, 0, &s), 0);
	assert_int_equal(hs_syms_lookup(s, 0x1000, &si), -HS_E_NOT_FOUND);
	assert_string_equal(hs_syms_format(s, 0x1000, buf, sizeof(buf)), "0x1000");
	hs_syms_format(s, (hs_addr_t)(uintptr_t)&hs_test_function, buf, sizeof(buf));
	assert_int_equal(strncmp(buf, "hs_test_function (", 18), 0);
	hs_syms_format(s, (hs_addr_t)(uintptr_t)&hs_test_function + 3, buf, 20);
	assert_int_equal(strlen(buf), 19); /* truncated, terminated */
	hs_syms_close(s);
}

/* Is libstdc++'s demangler there?  (The resolver loads it at run time.) */
static bool have_demangler(void)
{
	void *h = dlopen("libstdc++.so.6", RTLD_LAZY | RTLD_LOCAL);
	bool ok = h && dlsym(h, "__cxa_demangle");

	if (h)
		dlclose(h);
	return ok;
}

static void test_demangle(void **state)
{
	struct hs_syms *s = NULL;
	char *huge;
	const char *d;
	static const char broken[] = "_ZN3foo", plain[] = "malloc";

	if (!have_demangler())
		skip();
	assert_int_equal(hs_syms_open(*state, 0, &s), 0);
	assert_string_equal(hs_syms_demangle(s, "_ZN3foo3barEi"), "foo::bar(int)");
	assert_string_equal(hs_syms_demangle(s, "_ZTV3Foo"), "vtable for Foo");
	/* Not mangled, or not valid: the very same string back. */
	assert_ptr_equal(hs_syms_demangle(s, plain), plain);
	assert_ptr_equal(hs_syms_demangle(s, broken), broken);
	assert_null(hs_syms_demangle(s, NULL));
	/* A debug .symtab's version suffix survives. */
	assert_string_equal(hs_syms_demangle(s, "_ZN3foo3barEi@@GLIBCXX_3.4"),
			    "foo::bar(int)@@GLIBCXX_3.4");
	d = hs_syms_demangle(s, "_ZN3foo3barEi@");
	assert_string_equal(d, "foo::bar(int)@");
	/*
	 * Over 4096 bytes stays raw: "_Z" <length> <identifier> "v" names
	 * ident().  (libstdc++ 12 itself refuses names over 1024 bytes, its
	 * recursion limit; the resolver's bound is for runtimes without one.)
	 */
	huge = malloc(5000 + 16);
	assert_non_null(huge);
	snprintf(huge, 16, "_Z%d", 4990);
	memset(huge + 6, 'a', 4990);
	strcpy(huge + 6 + 4990, "v");
	assert_int_equal(strlen(huge), 4997);
	assert_ptr_equal(hs_syms_demangle(s, huge), huge);
	/* A long name within both bounds demangles whole. */
	snprintf(huge, 16, "_Z%d", 1000);
	memset(huge + 6, 'b', 1000);
	strcpy(huge + 6 + 1000, "v");
	d = hs_syms_demangle(s, huge);
	assert_ptr_not_equal(d, huge);
	assert_int_equal(strlen(d), 1000 + 2); /* "bbb...b()" */
	assert_int_equal(strspn(d, "b"), 1000);
	free(huge);
	hs_syms_close(s);
}

/* Lookups give the demangled name, once per symbol; by_name takes the raw. */
static void test_lookup_demangled(void **state)
{
	struct hs_syms *s = NULL;
	struct hs_sym_info si;
	hs_addr_t fn = (hs_addr_t)(uintptr_t)&_ZN6hstest5twiceEi, a = 0;
	const char *first;
	char buf[256];

	if (!have_demangler())
		skip();
	assert_int_equal(hs_syms_open(*state, 0, &s), 0);
	assert_int_equal(hs_syms_lookup(s, fn + 1, &si), 0);
	assert_string_equal(si.name, "hstest::twice(int)");
	assert_int_equal(si.kind, HS_SYM_FUNC);
	assert_int_equal(si.sym_addr, fn);
	assert_int_equal(si.offset, 1);
	first = si.name;
	/* Cached: the same string, not a second demangling. */
	assert_int_equal(hs_syms_lookup(s, fn, &si), 0);
	assert_ptr_equal(si.name, first);
	hs_syms_format(s, fn + 4, buf, sizeof(buf));
	assert_int_equal(strncmp(buf, "hstest::twice(int)+0x4 (", 24), 0);
	/* C names are untouched. */
	assert_int_equal(hs_syms_lookup(s, (hs_addr_t)(uintptr_t)&hs_test_function,
					&si), 0);
	assert_string_equal(si.name, "hs_test_function");
	/* by_name matches the mangled name only. */
	assert_int_equal(hs_syms_by_name(s, NULL, "_ZN6hstest5twiceEi", &a, NULL), 0);
	assert_int_equal(a, fn);
	assert_int_equal(hs_syms_by_name(s, NULL, "hstest::twice(int)", &a, NULL),
			 -HS_E_NOT_FOUND);
	hs_syms_close(s);

	/* .symtab only: demangled too. */
	assert_int_equal(hs_syms_open(*state, HS_SYMS_NO_DEBUGINFO, &s), 0);
	assert_int_equal(hs_syms_lookup(s, fn, &si), 0);
	assert_string_equal(si.name, "hstest::twice(int)");
	hs_syms_close(s);
}

/* A file of given bytes in a temporary directory. */
static void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

/* Damaged, hostile and missing files degrade to module+offset. */
static void test_degrades(void **state)
{
	char dir[] = "/tmp/hs-syms-XXXXXX", junk[64], trunc[64], hostile[64];
	static const char missing[] = "/nonexistent/dir/libgone.so.1";
	unsigned char buf[4096];
	struct hs_target *t = NULL;
	struct hs_syms *s = NULL;
	struct hs_sym_info si;
	Elf64_Ehdr *eh = (Elf64_Ehdr *)buf;
	const char *paths[3];
	int fd;
	char out[128];

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(junk, sizeof(junk), "%s/libjunk.so", dir);
	snprintf(trunc, sizeof(trunc), "%s/libtrunc.so", dir);
	snprintf(hostile, sizeof(hostile), "%s/libhostile.so", dir);
	memset(buf, 'x', sizeof(buf));
	write_file(junk, buf, sizeof(buf));
	fd = open("/proc/self/exe", O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, buf, sizeof(buf)), (ssize_t)sizeof(buf));
	close(fd);
	write_file(trunc, buf, 100);
	/* Program headers claimed far past the end of the file. */
	eh->e_phoff = 1ull << 40;
	eh->e_phnum = 0xffff;
	eh->e_shoff = 1ull << 41;
	write_file(hostile, buf, sizeof(buf));

	paths[0] = junk;
	paths[1] = trunc;
	paths[2] = hostile;
	assert_int_equal(hs_target_open_mem(&t), 0);
	for (int i = 0; i < 3; i++)
		hs_maps_add(&t->maps, 0x10000000 + i * 0x100000,
			    0x10004000 + i * 0x100000, paths[i])->perms = HS_PERM_R | HS_PERM_X;
	hs_maps_add(&t->maps, 0x20000000, 0x20002000, missing)->perms = HS_PERM_R;
	hs_maps_sort(&t->maps);
	assert_int_equal(hs_syms_open(t, 0, &s), 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(hs_syms_lookup(s, 0x10000123 + i * 0x100000, &si), 0);
		assert_null(si.name);
		assert_int_equal(si.kind, HS_SYM_NONE);
		assert_string_equal(si.module, paths[i]);
		assert_int_equal(si.offset, 0x123);
	}
	assert_int_equal(hs_syms_lookup(s, 0x20000010, &si), 0);
	assert_string_equal(si.module_name, "libgone.so.1");
	assert_int_equal(si.offset, 0x10);
	assert_string_equal(hs_syms_format(s, 0x20000010, out, sizeof(out)),
			    "libgone.so.1+0x10");
	/* Past the mapping of a file that could not be read: not a module. */
	assert_int_equal(hs_syms_lookup(s, 0x20002000, &si), -HS_E_NOT_FOUND);
	assert_int_equal(hs_syms_by_name(s, NULL, "malloc", NULL, NULL),
			 -HS_E_NOT_FOUND);
	hs_syms_close(s);
	hs_target_close(t);
	unlink(junk);
	unlink(trunc);
	unlink(hostile);
	rmdir(dir);
}

static void test_empty(void **state)
{
	struct hs_target *t = NULL;
	struct hs_syms *s = NULL;
	struct hs_sym_info si;

	(void)state;
	assert_int_equal(hs_target_open_mem(&t), 0);
	assert_int_equal(hs_syms_open(t, 0, &s), 0);
	assert_int_equal(hs_syms_lookup(s, 0x400000, &si), -HS_E_NOT_FOUND);
	assert_int_equal(hs_syms_by_name(s, NULL, "main", NULL, NULL),
			 -HS_E_NOT_FOUND);
	hs_syms_close(s);
	hs_syms_close(NULL);
	hs_target_close(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_lookup_function, setup_self, teardown_target),
		cmocka_unit_test_setup_teardown(test_lookup_data_and_bss, setup_self, teardown_target),
		cmocka_unit_test_setup_teardown(test_libc, setup_self, teardown_target),
		cmocka_unit_test_setup_teardown(test_vdso, setup_self, teardown_target),
		cmocka_unit_test_setup_teardown(test_not_found_and_format, setup_self, teardown_target),
		cmocka_unit_test_setup_teardown(test_demangle, setup_self, teardown_target),
		cmocka_unit_test_setup_teardown(test_lookup_demangled, setup_self, teardown_target),
		cmocka_unit_test(test_degrades),
		cmocka_unit_test(test_empty),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
