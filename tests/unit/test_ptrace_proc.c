/* /proc parsers, fed fixtures with odd lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "hs_ptrace.h"

static FILE *fixture(const char *name)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/proc/%s", HS_FIXTURES, name);
	f = fopen(path, "r");
	assert_non_null(f);
	return f;
}

/* Invariants every parsed map set must hold. */
static void assert_sane_maps(const struct hs_maps *m)
{
	for (size_t i = 0; i < m->n; i++) {
		assert_non_null(m->v[i].path);
		assert_true(m->v[i].start <= m->v[i].end);
		if (i)
			assert_true(m->v[i - 1].end <= m->v[i].start);
	}
}

static void test_odd_smaps(void **state)
{
	struct hs_maps m = { 0 };
	FILE *f = fixture("odd.smaps");
	int bad = -1;

	(void)state;
	assert_int_equal(hs_proc_parse_maps(f, &m, &bad), 0);
	fclose(f);
	assert_sane_maps(&m);
	assert_int_equal(m.n, 14);

	assert_string_equal(m.v[0].path, "[heap]");
	assert_int_equal(m.v[0].start, 0x55d4a7c00000);
	assert_int_equal(m.v[0].perms, HS_PERM_R | HS_PERM_W);
	assert_int_equal(m.v[0].smaps[HS_SMAPS_RSS], 120 * 1024);
	assert_int_equal(m.v[0].smaps[HS_SMAPS_SWAP_PSS], 8 * 1024);
	assert_int_equal(m.v[0].smaps[HS_SMAPS_THP_ELIGIBLE], 0);
	assert_string_equal(m.v[0].vmflags, "rd wr mr mw me ac sd");
	assert_true(m.v[0].flags & HS_MAP_HAS_SMAPS);

	assert_string_equal(m.v[1].path, "");
	assert_int_equal(m.v[2].perms, 0);
	assert_string_equal(m.v[3].path, "anon_inode:[io_uring]");
	assert_true(m.v[3].perms & HS_PERM_SHARED);
	assert_string_equal(m.v[4].path, "socket:[5678]");
	assert_string_equal(m.v[5].path, "/opt/my app/lib with spaces.so");
	assert_int_equal(m.v[5].offset, 0x1000);
	assert_int_equal(m.v[5].inode, 424242);
	assert_int_equal(m.v[5].dev_major, 8);
	assert_int_equal(m.v[5].dev_minor, 1);
	assert_int_equal(m.v[5].perms, HS_PERM_R | HS_PERM_X);
	assert_string_equal(m.v[7].path, "/tmp/gone.so");
	assert_true(m.v[7].flags & HS_MAP_DELETED);
	assert_false(m.v[6].flags & HS_MAP_DELETED);
	assert_string_equal(m.v[9].path, "[anon:python arena]");
	assert_string_equal(m.v[13].path, "[vsyscall]");
	assert_int_equal(m.v[13].start, 0xffffffffff600000ull);
	assert_int_equal(m.v[13].perms, HS_PERM_X);
	hs_maps_release(&m);
}

static void test_bad_line(void **state)
{
	struct hs_maps m = { 0 };
	FILE *f = fixture("bad.maps");
	int bad = 0;

	(void)state;
	assert_int_equal(hs_proc_parse_maps(f, &m, &bad), -HS_E_FORMAT);
	assert_int_equal(bad, 2);
	fclose(f);
	hs_maps_release(&m);
}

static void test_from_string(const char *text, int expect, size_t n)
{
	struct hs_maps m = { 0 };
	FILE *f = fmemopen((void *)text, strlen(text), "r");

	assert_non_null(f);
	assert_int_equal(hs_proc_parse_maps(f, &m, NULL), expect);
	fclose(f);
	assert_int_equal(m.n, n);
	hs_maps_release(&m);
}

static void test_edge_lines(void **state)
{
	(void)state;
	test_from_string("", 0, 0);
	test_from_string("\n\n", 0, 0);
	/* end before start */
	test_from_string("2000-1000 rw-p 00000000 00:00 0\n", -HS_E_FORMAT, 0);
	/* field line before any mapping */
	test_from_string("Rss: 4 kB\n", -HS_E_FORMAT, 0);
	/* short perms */
	test_from_string("1000-2000 rw 00000000 00:00 0\n", -HS_E_FORMAT, 0);
	/* no trailing newline, no path */
	test_from_string("1000-2000 rw-p 00000000 00:00 0", 0, 1);
	/* unsorted input comes out sorted */
	{
		const char *t = "3000-4000 r--p 0 00:00 0\n1000-2000 r--p 0 00:00 0\n";
		struct hs_maps m = { 0 };
		FILE *f = fmemopen((void *)t, strlen(t), "r");
		assert_int_equal(hs_proc_parse_maps(f, &m, NULL), 0);
		fclose(f);
		assert_int_equal(m.v[0].start, 0x1000);
		assert_non_null(hs_maps_find(&m, 0x3fff));
		assert_null(hs_maps_find(&m, 0x2000));
		hs_maps_release(&m);
	}
}

static void test_status(void **state)
{
	struct hs_proc_info info = { 0 };
	struct hs_proc_status_extra x;
	FILE *f = fixture("status.txt");

	(void)state;
	assert_int_equal(hs_proc_parse_status(f, &info), 0);
	rewind(f);
	assert_int_equal(hs_proc_parse_status_extra(f, &x), 0);
	fclose(f);
	assert_string_equal(info.comm, "my worker");
	assert_int_equal(info.state, 'S');
	assert_int_equal(info.pid, 4242);
	assert_int_equal(info.ppid, 1);
	assert_int_equal(info.uid, 1000);
	assert_int_equal(info.euid, 1001);
	assert_int_equal(info.gid, 100);
	assert_int_equal(info.nthreads, 7);
	assert_int_equal(info.vm_rss, 40000ull * 1024);
	assert_int_equal(info.rss_anon, 30000ull * 1024);
	assert_int_equal(info.vm_swap, 512ull * 1024);
	assert_int_equal(x.tracer_pid, 777);
	assert_false(x.kthread);
	assert_int_equal(x.cap_eff, 0x80000);
	assert_int_equal(x.threads, 7);
}

static void test_status_kthread(void **state)
{
	const char *t = "Name:\tkworker/0:1\nState:\tI (idle)\nTgid:\t9\nPPid:\t2\n";
	struct hs_proc_status_extra x;
	FILE *f = fmemopen((void *)t, strlen(t), "r");

	(void)state;
	assert_int_equal(hs_proc_parse_status_extra(f, &x), 0);
	fclose(f);
	assert_true(x.kthread);
}

/* A process between exit_mm() and its zombie state has no Vm* lines: with
 * a "Kthread:" line that is an exiting process, not a kernel thread. */
static void test_status_exiting(void **state)
{
	const char *t = "Name:\tvictim\nState:\tR (running)\nTgid:\t42\nPPid:\t1\n"
			"Kthread:\t0\nThreads:\t1\n";
	const char *k = "Name:\tkworker/1:0\nState:\tI (idle)\nKthread:\t1\n";
	struct hs_proc_status_extra x;
	FILE *f = fmemopen((void *)t, strlen(t), "r");

	(void)state;
	assert_int_equal(hs_proc_parse_status_extra(f, &x), 0);
	fclose(f);
	assert_false(x.kthread);
	assert_true(x.exiting);
	f = fmemopen((void *)k, strlen(k), "r");
	assert_int_equal(hs_proc_parse_status_extra(f, &x), 0);
	fclose(f);
	assert_true(x.kthread);
	assert_false(x.exiting);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_odd_smaps),
		cmocka_unit_test(test_bad_line),
		cmocka_unit_test(test_edge_lines),
		cmocka_unit_test(test_status),
		cmocka_unit_test(test_status_kthread),
		cmocka_unit_test(test_status_exiting),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
