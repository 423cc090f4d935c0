/*
 * The reading policy's decision (ptrace/pagemap.c, doc/reading-policy.md)
 * on made-up pagemap words and mappings: which pages are read through the
 * process, which are zeros, which come from the file or heapscan's vDSO,
 * and which are swapped out.  The machine need not have swap, hugetlb or
 * guard regions for this to run.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "hs_ptrace.h"

static struct hs_map map(const char *path, unsigned perms, const char *vmflags)
{
	struct hs_map m;

	memset(&m, 0, sizeof(m));
	m.start = 0x7f0000000000ull;
	m.end = m.start + 0x10000;
	m.perms = perms;
	m.path = (char *)path;
	m.cls = HS_CLASS_ANON;
	snprintf(m.vmflags, sizeof(m.vmflags), "%s", vmflags);
	return m;
}

#define R HS_PERM_R
#define W HS_PERM_W
#define X HS_PERM_X
#define S HS_PERM_SHARED

static void test_kinds(void **state)
{
	struct hs_map m;

	(void)state;
	static const struct {
		const char *path;
		unsigned perms;
		const char *vmflags;
		enum hs_page_kind kind;
	} cases[] = {
		{ "", R | W, "rd wr mr mw me ac", HS_PK_ANON },
		{ "[heap]", R | W, "", HS_PK_ANON },
		{ "[stack]", R | W, "", HS_PK_ANON },
		{ "[stack:1234]", R | W, "", HS_PK_ANON },
		{ "[anon:worker pool]", R | W, "", HS_PK_ANON },
		{ "[anon_shmem:ring]", R | W | S, "", HS_PK_SHARED },
		{ "", R | W | S, "", HS_PK_SHARED },
		{ "/dev/zero", R | W, "", HS_PK_ANON },      /* private: anonymous */
		{ "/dev/zero", R | W | S, "", HS_PK_SHARED }, /* shared: shmem */
		{ "/usr/lib/x86_64-linux-gnu/libc.so.6", R | X, "", HS_PK_FILE },
		{ "/usr/lib/x86_64-linux-gnu/libc.so.6", R, "", HS_PK_FILE },
		{ "/srv/data file.db", R | S, "", HS_PK_SHARED },
		{ "/dev/shm/queue", R | W | S, "", HS_PK_SHARED },
		{ "/memfd:jit", R | X, "", HS_PK_FILE },
		{ "/SYSV00000000", R | W | S, "", HS_PK_SHARED },
		{ "/anon_hugepage", R | W, "rd wr mr mw me ht", HS_PK_ANON },
		{ "/dev/hugepages/x", R | W | S, "rd wr sh mr mw me ms ht", HS_PK_SHARED },
		{ "/dev/hugepages/x", R | W, "rd wr mr mw me ht", HS_PK_FILE },
		{ "/dev/dri/renderD128", R | W | S, "rd wr sh io pf", HS_PK_DIRECT },
		{ "anon_inode:i915.gem", R | W | S, "", HS_PK_DIRECT },
		{ "[vdso]", R | X, "", HS_PK_VDSO },
		{ "[vvar]", R, "", HS_PK_DIRECT },
		{ "[vvar_vclock]", R, "", HS_PK_DIRECT },
		{ "[vsyscall]", X, "", HS_PK_DIRECT },
		{ "[uprobes]", R | X, "", HS_PK_DIRECT },
		{ "", 0, "", HS_PK_DIRECT },                  /* PROT_NONE guard */
		{ "/usr/lib/x86_64-linux-gnu/libc.so.6", 0, "", HS_PK_DIRECT },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		m = map(cases[i].path, cases[i].perms, cases[i].vmflags);
		if (hs_page_kind_of(&m) != cases[i].kind)
			fail_msg("%s (perms %u): kind %d, want %d", cases[i].path,
				 cases[i].perms, hs_page_kind_of(&m), cases[i].kind);
	}
	/* A special mapping by class or flag (a core's or a test's maps). */
	m = map("[whatever]", R, "");
	m.flags = HS_MAP_SPECIAL;
	assert_int_equal(hs_page_kind_of(&m), HS_PK_DIRECT);
	m = map("", R, "");
	m.cls = HS_CLASS_SPECIAL;
	assert_int_equal(hs_page_kind_of(&m), HS_PK_DIRECT);
}

/* Words as the kernel gives them to an unprivileged reader: PFN bits 0,
 * flags kept (soft-dirty 55, exclusive 56 thrown in to show they do not
 * matter). */
#define PRESENT HS_PM_PRESENT
#define SWAPPED (HS_PM_SWAP | 0x1234ull) /* swap type/offset bits */
#define FILEPG HS_PM_FILE_SHARED
#define SOFTDIRTY (1ull << 55)
#define EXCL (1ull << 56)

static void test_decide_table(void **state)
{
	(void)state;
	static const struct {
		uint64_t word;
		enum hs_page_kind kind;
		enum hs_page_src src;
	} cases[] = {
		/* present: always through the process */
		{ PRESENT | EXCL, HS_PK_ANON, HS_PS_TARGET },
		{ PRESENT | FILEPG, HS_PK_FILE, HS_PS_TARGET },
		{ PRESENT | EXCL | SOFTDIRTY, HS_PK_FILE, HS_PS_TARGET }, /* a COW copy */
		{ PRESENT | FILEPG, HS_PK_SHARED, HS_PS_TARGET },
		{ PRESENT, HS_PK_VDSO, HS_PS_TARGET },
		/* neither present nor swapped */
		{ 0, HS_PK_ANON, HS_PS_ZERO },
		{ SOFTDIRTY, HS_PK_ANON, HS_PS_ZERO },
		{ 0, HS_PK_FILE, HS_PS_FILE },
		{ 0, HS_PK_SHARED, HS_PS_FILE },
		{ 0, HS_PK_VDSO, HS_PS_VDSO },
		/* swapped out: real data, whatever the mapping */
		{ SWAPPED, HS_PK_ANON, HS_PS_SWAP },
		{ SWAPPED | EXCL, HS_PK_FILE, HS_PS_SWAP },
		{ SWAPPED, HS_PK_SHARED, HS_PS_SWAP },
		/* a guard region marker is swap-typed but no data */
		{ HS_PM_SWAP | HS_PM_GUARD, HS_PK_ANON, HS_PS_TARGET },
		/* direct mappings are read as they are, whatever pagemap says */
		{ 0, HS_PK_DIRECT, HS_PS_TARGET },
		{ SWAPPED, HS_PK_DIRECT, HS_PS_TARGET },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (hs_page_decide(cases[i].word, cases[i].kind) != cases[i].src)
			fail_msg("case %zu: word %#llx kind %d: %d, want %d", i,
				 (unsigned long long)cases[i].word, cases[i].kind,
				 hs_page_decide(cases[i].word, cases[i].kind), cases[i].src);
}

/*
 * A fake pagemap of one 16 MiB malloc chunk in an anonymous mapping, as
 * the victim of test_pagemap.py has it: the header page present, three
 * pages swapped out, the rest untouched.  The decision reads 1 page, 3
 * swapped, and produces the other 4092 as zeros; a private file mapping
 * with the same words takes those 4092 from the file instead.
 */
static void test_fake_pagemap(void **state)
{
	enum { N = 4096 };
	static uint64_t w[N];
	size_t n[HS_PS_VDSO + 1];

	(void)state;
	memset(w, 0, sizeof(w));
	w[0] = PRESENT | EXCL | SOFTDIRTY;
	w[100] = w[101] = w[4095] = SWAPPED;
	memset(n, 0, sizeof(n));
	for (size_t i = 0; i < N; i++)
		n[hs_page_decide(w[i], HS_PK_ANON)]++;
	assert_int_equal(n[HS_PS_TARGET], 1);
	assert_int_equal(n[HS_PS_SWAP], 3);
	assert_int_equal(n[HS_PS_ZERO], N - 4);
	assert_int_equal(n[HS_PS_FILE], 0);
	memset(n, 0, sizeof(n));
	for (size_t i = 0; i < N; i++)
		n[hs_page_decide(w[i], HS_PK_FILE)]++;
	assert_int_equal(n[HS_PS_FILE], N - 4);
	assert_int_equal(n[HS_PS_ZERO], 0);
}

/* The touched-pages answer for the core writer refuses other targets. */
static void test_pages_touched_not_live(void **state)
{
	struct hs_target *t;
	unsigned char present[4];
	static const char data[4096];

	(void)state;
	assert_int_equal(hs_target_open_mem(&t), 0);
	hs_target_mem_add(t, 0x1000, data, sizeof(data), HS_PERM_R, NULL);
	assert_int_equal(hs_live_pages_touched(t, 0x1000, 1, present), -ENOTSUP);
	assert_int_equal(hs_live_pages_touched(NULL, 0x1000, 1, present), -ENOTSUP);
	hs_target_close(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kinds),
		cmocka_unit_test(test_decide_table),
		cmocka_unit_test(test_fake_pagemap),
		cmocka_unit_test(test_pages_touched_not_live),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
