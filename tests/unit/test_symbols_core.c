/*
 * The core writer and reader on a hand-built "mem" target: round trips,
 * region policy, sparse output, safety (no overwrite, no partial file on
 * error or interrupt), and the reader on cut and corrupted files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hs_symbols.h"

#define PG 4096u
#define RW (HS_PERM_R | HS_PERM_W)
#define RX (HS_PERM_R | HS_PERM_X)

/* The fake process. */
#define HEAP_AT 0x555500010000ull
#define HEAP_LEN (16 * PG)
#define ANON_AT 0x7f0000000000ull
#define ANON_LEN (4 * PG)
#define LIB_AT 0x7f0000100000ull
#define LIB_LEN (3 * PG)
#define RES_AT (LIB_AT + LIB_LEN)
#define RES_LEN (2 * PG)
#define STACK_AT 0x7ffd00000000ull
#define STACK_LEN (2 * PG)

struct fixture {
	char dir[64];
	char path[128];
	unsigned char heap[HEAP_LEN];
	unsigned char anon[ANON_LEN];
	unsigned char lib[LIB_LEN];
	unsigned char stack[STACK_LEN];
	struct hs_target *t;
};

static void fill(unsigned char *p, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (unsigned char)(seed + i * 7 + (i >> 9));
}

static struct hs_target *make_target(struct fixture *f)
{
	struct hs_target *t;
	struct hs_map *m;
	static const uint64_t auxv[] = { 6, 4096, 33, 0x7fff00000000ull, 0, 0 };

	assert_int_equal(hs_target_open_mem(&t), 0);
	/* Heap: data in pages 0-2 and 9, the rest zero (holes when written). */
	memset(f->heap, 0, sizeof(f->heap));
	fill(f->heap, 3 * PG, 1);
	fill(f->heap + 9 * PG, PG, 2);
	memcpy(f->heap + 100, "needle-in-the-heap", 18);
	fill(f->anon, sizeof(f->anon), 3);
	memset(f->lib, 0x90, sizeof(f->lib));
	memcpy(f->lib, ELFMAG, SELFMAG);
	fill(f->stack, sizeof(f->stack), 4);

	hs_target_mem_add(t, HEAP_AT, f->heap, HEAP_LEN, RW, "[heap]");
	hs_target_mem_add(t, ANON_AT, f->anon, ANON_LEN, RW, NULL);
	hs_target_mem_add(t, LIB_AT, f->lib, LIB_LEN, RX, "/nonexistent/libfake.so");
	hs_target_mem_add(t, STACK_AT, f->stack, STACK_LEN, RW, "[stack]");
	m = hs_maps_add(&t->maps, RES_AT, RES_AT + RES_LEN, NULL);
	m->smaps[HS_SMAPS_SIZE] = RES_LEN;
	hs_maps_sort(&t->maps);
	m = (struct hs_map *)hs_target_find_map(t, LIB_AT);
	m->inode = 42;
	m->dev_major = 8;
	m->dev_minor = 1;
	m->flags |= HS_MAP_HAS_SMAPS;
	m->smaps[HS_SMAPS_PSS] = 1234 * 1024;
	strcpy(m->vmflags, "rd ex mr mw me");

	t->nthreads = 2;
	t->threads = hs_xcalloc(2, sizeof(*t->threads));
	for (int i = 0; i < 2; i++) {
		struct hs_thread *th = &t->threads[i];

		th->tid = 1000 + i;
		th->has_regs = true;
		for (int r = 0; r < HS_REG_N; r++)
			th->regs.r[r] = 0x1000u * (unsigned)i + (unsigned)r;
		th->regs.r[HS_REG_RSP] = STACK_AT + 64 + (uint64_t)i * 8;
		th->sp = th->regs.r[HS_REG_RSP];
		th->has_fpregs = true;
		memset(th->fpregs, 0x40 + i, sizeof(th->fpregs));
		th->xstate_len = 1024;
		th->xstate = hs_xmalloc(th->xstate_len);
		memset(th->xstate, 0x60 + i, th->xstate_len);
	}
	t->info.pid = 1000;
	t->info.ppid = 1;
	t->info.uid = t->info.euid = 7;
	t->info.gid = t->info.egid = 8;
	t->info.state = 'S';
	t->info.nthreads = 2;
	t->info.vm_rss = 123456;
	strcpy(t->info.comm, "fakeproc");
	free(t->info.exe);
	t->info.exe = hs_xstrdup("/usr/bin/fakeproc");
	free(t->info.cmdline);
	/* Longer than prpsinfo's 80 bytes: only the heapscan note keeps it. */
	t->info.cmdline = hs_xstrdup("fakeproc --a-rather-long-argument-list-that-does-not-fit "
				     "into-eighty-bytes --of-psargs");
	t->info.auxv_len = sizeof(auxv);
	t->info.auxv = hs_xmalloc(sizeof(auxv));
	memcpy(t->info.auxv, auxv, sizeof(auxv));
	t->info.time_ns = 1700000000123456789ull;
	hs_classify(t);
	return t;
}

static int setup(void **state)
{
	struct fixture *f = hs_xcalloc(1, sizeof(*f));

	strcpy(f->dir, "/tmp/hs-core-test-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/out.core", f->dir);
	f->t = make_target(f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	DIR *d = opendir(f->dir);
	struct dirent *de;
	char p[512];

	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", f->dir, de->d_name);
		unlink(p);
	}
	if (d)
		closedir(d);
	rmdir(f->dir);
	hs_target_close(f->t);
	free(f);
	return 0;
}

static size_t dir_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0;

	assert_non_null(d);
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

/* Every map readable in a sane way (no crash, short reads consistent). */
static void assert_sane_target(struct hs_target *t)
{
	static unsigned char buf[64 * 1024];

	for (size_t i = 0; i < t->maps.n; i++) {
		const struct hs_map *m = &t->maps.v[i];

		assert_non_null(m->path);
		assert_true(m->start < m->end);
		assert_true((unsigned)m->cls < HS_CLASS_N);
		if (i)
			assert_true(t->maps.v[i - 1].end <= m->start);
		for (hs_addr_t a = m->start; a < m->end && a - m->start < (1u << 20);
		     a += sizeof(buf)) {
			size_t want = m->end - a < sizeof(buf) ? (size_t)(m->end - a) : sizeof(buf);
			size_t n = 0;
			int ret = hs_target_read(t, a, buf, want, &n);

			assert_true(n <= want);
			assert_true(ret == 0 || ret == -EFAULT);
			assert_true((ret == 0) == (n > 0));
		}
	}
	for (size_t i = 0; i < t->nthreads; i++)
		assert_true(t->threads[i].xstate_len == 0 || t->threads[i].xstate);
}

static void write_ok(struct fixture *f, const struct hs_dump_opts *o,
		     struct hs_dump_stats *st)
{
	assert_int_equal(hs_dump_write(f->t, f->path, o, st), 0);
}

static void assert_mem(struct hs_target *t, hs_addr_t a, const void *want, size_t len)
{
	unsigned char *got = hs_xmalloc(len);

	assert_int_equal(hs_target_read_full(t, a, got, len), 0);
	assert_memory_equal(got, want, len);
	free(got);
}

static void test_roundtrip(void **state)
{
	struct fixture *f = *state;
	struct hs_dump_stats st;
	struct hs_target *c;
	struct stat sb;
	unsigned char b[16];
	size_t n;

	write_ok(f, NULL, &st);
	assert_int_equal(dir_entries(f->dir), 1);
	assert_int_equal(stat(f->path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_int_equal(st.regions, 5);
	assert_int_equal(st.regions_full, 3);   /* heap, anon, stack */
	assert_int_equal(st.regions_header, 1); /* lib's ELF header page */
	assert_int_equal(st.threads, 2);
	assert_int_equal(st.bytes_total, HEAP_LEN + ANON_LEN + STACK_LEN + PG);
	assert_int_equal(st.bytes_zero, 12 * PG);
	assert_int_equal(st.bytes_written, 4 * PG + ANON_LEN + STACK_LEN + PG);
	assert_int_equal(st.bytes_done, st.bytes_total);
	assert_int_equal(st.file_size, (uint64_t)sb.st_size);

	assert_int_equal(hs_target_open_core(f->path, NULL, &c), 0);
	assert_string_equal(c->ops->name, "dump");
	assert_false(c->state & HS_TSTATE_PARTIAL);
	/* Region table exactly as the source's. */
	assert_int_equal(c->maps.n, f->t->maps.n);
	for (size_t i = 0; i < c->maps.n; i++) {
		const struct hs_map *x = &f->t->maps.v[i], *y = &c->maps.v[i];

		assert_int_equal(x->start, y->start);
		assert_int_equal(x->end, y->end);
		assert_int_equal(x->perms, y->perms);
		assert_int_equal(x->flags, y->flags);
		assert_int_equal(x->cls, y->cls);
		assert_int_equal(x->inode, y->inode);
		assert_int_equal(x->stack_tid, y->stack_tid);
		assert_string_equal(x->path, y->path);
		assert_string_equal(x->vmflags, y->vmflags);
		assert_memory_equal(x->smaps, y->smaps, sizeof(x->smaps));
	}
	/* Process and threads. */
	assert_int_equal(c->info.pid, 1000);
	assert_int_equal(c->info.ppid, 1);
	assert_int_equal(c->info.uid, 7);
	assert_int_equal(c->info.vm_rss, 123456);
	assert_int_equal(c->info.time_ns, f->t->info.time_ns);
	assert_string_equal(c->info.comm, "fakeproc");
	assert_string_equal(c->info.exe, "/usr/bin/fakeproc");
	assert_string_equal(c->info.cmdline, f->t->info.cmdline);
	assert_int_equal(c->info.auxv_len, f->t->info.auxv_len);
	assert_memory_equal(c->info.auxv, f->t->info.auxv, c->info.auxv_len);
	assert_int_equal(c->nthreads, 2);
	for (size_t i = 0; i < 2; i++) {
		const struct hs_thread *x = &f->t->threads[i], *y = &c->threads[i];

		assert_int_equal(x->tid, y->tid);
		assert_true(y->has_regs && y->has_fpregs);
		assert_memory_equal(x->regs.r, y->regs.r, sizeof(x->regs.r));
		assert_int_equal(y->sp, x->sp);
		assert_memory_equal(x->fpregs, y->fpregs, sizeof(x->fpregs));
		assert_int_equal(x->xstate_len, y->xstate_len);
		assert_memory_equal(x->xstate, y->xstate, x->xstate_len);
	}
	/* Memory: full regions byte for byte, zero pages read back as zero. */
	assert_mem(c, HEAP_AT, f->heap, HEAP_LEN);
	assert_mem(c, ANON_AT, f->anon, ANON_LEN);
	assert_mem(c, STACK_AT, f->stack, STACK_LEN);
	/* A read across two abutting... none here; across a map end: short. */
	assert_int_equal(hs_target_read(c, ANON_AT + ANON_LEN - 8, b, 16, &n), 0);
	assert_int_equal(n, 8);
	/* The library: header page only; the rest is missing, not zero
	 * (its file does not exist to fill it in). */
	assert_mem(c, LIB_AT, f->lib, PG);
	assert_int_equal(hs_target_read(c, LIB_AT + PG - 4, b, 16, &n), 0);
	assert_int_equal(n, 4);
	assert_int_equal(hs_target_read(c, LIB_AT + PG, b, 16, &n), -EFAULT);
	assert_int_equal(hs_target_read(c, RES_AT, b, 16, &n), -EFAULT);
	assert_int_equal(hs_target_read(c, 0x1000, b, 16, &n), -EFAULT);
	assert_sane_target(c);

	/* Rewriting a dump gives the same dump (the writer only uses the
	 * target interface). */
	char again[160];
	struct hs_target *c2;
	snprintf(again, sizeof(again), "%s/again.core", f->dir);
	assert_int_equal(hs_dump_write(c, again, NULL, NULL), 0);
	assert_int_equal(hs_target_open_core(again, NULL, &c2), 0);
	assert_int_equal(c2->maps.n, c->maps.n);
	assert_mem(c2, HEAP_AT, f->heap, HEAP_LEN);
	assert_string_equal(c2->info.cmdline, f->t->info.cmdline);
	hs_target_close(c2);
	hs_target_close(c);
}

static void test_policy(void **state)
{
	struct fixture *f = *state;
	struct hs_map m;
	struct hs_dump_opts o = { 0 };

	(void)f;
	memset(&m, 0, sizeof(m));
	m.path = (char *)"";
	m.perms = RW;
	m.cls = HS_CLASS_HEAP;
	assert_int_equal(hs_dump_policy_for(&m, NULL), HS_DUMP_FULL);
	m.cls = HS_CLASS_RESERVED;
	m.perms = 0;
	assert_int_equal(hs_dump_policy_for(&m, NULL), HS_DUMP_SKIP);
	o.all = true;
	assert_int_equal(hs_dump_policy_for(&m, &o), HS_DUMP_SKIP); /* unreadable */
	/* File text: header page at offset 0, nothing elsewhere; full if
	 * modified (relocated RELRO) or with --all. */
	m.path = (char *)"/lib/libc.so.6";
	m.perms = RX;
	m.cls = HS_CLASS_CODE;
	assert_int_equal(hs_dump_policy_for(&m, NULL), HS_DUMP_HEADER);
	m.offset = 0x28000;
	assert_int_equal(hs_dump_policy_for(&m, NULL), HS_DUMP_SKIP);
	assert_int_equal(hs_dump_policy_for(&m, &o), HS_DUMP_FULL);
	m.cls = HS_CLASS_RODATA;
	m.perms = HS_PERM_R;
	m.flags = HS_MAP_HAS_SMAPS;
	m.smaps[HS_SMAPS_ANONYMOUS] = PG;
	assert_int_equal(hs_dump_policy_for(&m, NULL), HS_DUMP_FULL);
	/* A shared mapping of a regular file is not dumped; memfd is. */
	memset(&m, 0, sizeof(m));
	m.path = (char *)"/var/db/big.data";
	m.perms = RW | HS_PERM_SHARED;
	m.cls = HS_CLASS_SHM;
	m.offset = PG;
	assert_int_equal(hs_dump_policy_for(&m, NULL), HS_DUMP_SKIP);
	m.path = (char *)"/memfd:pool";
	assert_int_equal(hs_dump_policy_for(&m, NULL), HS_DUMP_FULL);
	/* [vvar] never, [vdso] always. */
	m.perms = HS_PERM_R;
	m.cls = HS_CLASS_SPECIAL;
	m.path = (char *)"[vvar]";
	assert_int_equal(hs_dump_policy_for(&m, &o), HS_DUMP_SKIP);
	m.path = (char *)"[vdso]";
	assert_int_equal(hs_dump_policy_for(&m, NULL), HS_DUMP_FULL);
	/* --regions: only the named classes in full. */
	o.all = false;
	o.classes = 1u << HS_CLASS_HEAP;
	m.path = (char *)"";
	m.perms = RW;
	m.cls = HS_CLASS_STACK;
	assert_int_equal(hs_dump_policy_for(&m, &o), HS_DUMP_SKIP);
	m.cls = HS_CLASS_HEAP;
	assert_int_equal(hs_dump_policy_for(&m, &o), HS_DUMP_FULL);
}

static void test_regions_and_all(void **state)
{
	struct fixture *f = *state;
	struct hs_dump_opts o = { .classes = 1u << HS_CLASS_HEAP };
	struct hs_dump_stats st;
	struct hs_target *c;
	unsigned char b[8];
	size_t n;

	write_ok(f, &o, &st);
	assert_int_equal(st.regions_full, 1);
	assert_int_equal(hs_target_open_core(f->path, NULL, &c), 0);
	assert_mem(c, HEAP_AT, f->heap, HEAP_LEN);
	assert_int_equal(hs_target_read(c, ANON_AT, b, 8, &n), -EFAULT);
	hs_target_close(c);

	o = (struct hs_dump_opts){ .all = true, .force = true };
	write_ok(f, &o, &st);
	assert_int_equal(st.regions_full, 4);
	assert_int_equal(hs_target_open_core(f->path, NULL, &c), 0);
	assert_mem(c, LIB_AT, f->lib, LIB_LEN);
	hs_target_close(c);
}

/* Pages the pagemap says were never touched are holes, never read. */
static int fake_pagemap(void *ud, hs_addr_t addr, size_t npages, unsigned char *present)
{
	(void)ud;
	for (size_t i = 0; i < npages; i++) {
		hs_addr_t a = addr + i * PG;
		/* Heap pages 1 and 2 "absent" even though they hold data. */
		present[i] = !(a == HEAP_AT + PG || a == HEAP_AT + 2 * PG);
	}
	return 0;
}

static void test_sparse_pagemap(void **state)
{
	struct fixture *f = *state;
	struct hs_dump_opts o = { .pagemap = fake_pagemap, .bufsz = 64 * 1024 };
	struct hs_dump_stats st;
	struct hs_target *c;
	unsigned char *want = hs_xmalloc(HEAP_LEN);
	struct stat sb;

	write_ok(f, &o, &st);
	assert_int_equal(st.bytes_absent, 2 * PG);
	assert_int_equal(st.bytes_zero, 12 * PG);
	assert_int_equal(hs_target_open_core(f->path, NULL, &c), 0);
	memcpy(want, f->heap, HEAP_LEN);
	memset(want + PG, 0, 2 * PG);
	assert_mem(c, HEAP_AT, want, HEAP_LEN);
	hs_target_close(c);
	/* Sparse on disk: at most the data pages plus headers. */
	assert_int_equal(stat(f->path, &sb), 0);
	assert_true((uint64_t)sb.st_blocks * 512 <= st.bytes_written + 4 * PG);
	assert_true((uint64_t)sb.st_blocks * 512 < (uint64_t)sb.st_size);
	free(want);
}

static void test_no_overwrite(void **state)
{
	struct fixture *f = *state;
	struct hs_dump_opts o = { .force = true };
	struct stat sb;
	int fd;

	fd = open(f->path, O_CREAT | O_WRONLY, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "keep", 4), 4);
	close(fd);
	assert_int_equal(hs_dump_write(f->t, f->path, NULL, NULL), -EEXIST);
	assert_int_equal(stat(f->path, &sb), 0);
	assert_int_equal(sb.st_size, 4);
	assert_int_equal(dir_entries(f->dir), 1);
	write_ok(f, &o, NULL);
	assert_int_equal(stat(f->path, &sb), 0);
	assert_true(sb.st_size > 4);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_int_equal(dir_entries(f->dir), 1);
}

static void test_interrupted(void **state)
{
	struct fixture *f = *state;

	hs_interrupted = 1;
	assert_int_equal(hs_dump_write(f->t, f->path, NULL, NULL), -HS_E_INTERRUPTED);
	hs_interrupted = 0;
	assert_int_equal(dir_entries(f->dir), 0);
}

/* A write error (here RLIMIT_FSIZE, as a full disk would) leaves nothing. */
static void test_write_error(void **state)
{
	struct fixture *f = *state;
	struct rlimit old, lim;
	struct hs_dump_opts o = { .no_sync = true };

	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_IGN);
	lim = old;
	lim.rlim_cur = 6 * PG;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	int ret = hs_dump_write(f->t, f->path, &o, NULL);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_DFL);
	assert_int_equal(ret, -EFBIG);
	assert_int_equal(dir_entries(f->dir), 0);
}

/* Replaces every occurrence of a byte string in a file. */
static void patch_file(const char *path, const void *from, const void *to, size_t len)
{
	struct hs_buf sb = HS_BUF_INIT;
	int fd;

	assert_int_equal(hs_buf_read_file(&sb, path), 0);
	for (size_t i = 0; i + len <= sb.len; i++)
		if (!memcmp(sb.buf + i, from, len))
			memcpy(sb.buf + i, to, len);
	fd = open(path, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, sb.buf, sb.len), (ssize_t)sb.len);
	close(fd);
	hs_buf_release(&sb);
}

/* Without heapscan's note the reader falls back to what any core has. */
static void test_plain_core(void **state)
{
	struct fixture *f = *state;
	struct hs_target *c;

	write_ok(f, NULL, NULL);
	patch_file(f->path, "HEAPSCAN", "NOTOURS!", 8);
	assert_int_equal(hs_target_open_core(f->path, NULL, &c), 0);
	assert_string_equal(c->ops->name, "core");
	assert_int_equal(c->maps.n, 5);
	assert_int_equal(c->nthreads, 2);
	assert_int_equal(c->threads[1].tid, 1001);
	assert_int_equal(c->info.pid, 1000);
	assert_string_equal(c->info.comm, "fakeproc");
	/* prpsinfo keeps 79 bytes of the command line. */
	assert_int_equal(strlen(c->info.cmdline), 79);
	const struct hs_map *m = hs_target_find_map(c, LIB_AT + 5);
	assert_non_null(m);
	assert_string_equal(m->path, "/nonexistent/libfake.so");
	assert_int_equal(m->perms, RX);
	assert_int_equal(m->cls, HS_CLASS_CODE);
	m = hs_target_find_map(c, RES_AT);
	assert_non_null(m);
	assert_int_equal(m->cls, HS_CLASS_RESERVED);
	/* The thread stacks are found from the registers. */
	m = hs_target_find_map(c, STACK_AT);
	assert_int_equal(m->cls, HS_CLASS_STACK);
	assert_mem(c, HEAP_AT, f->heap, HEAP_LEN);
	assert_sane_target(c);
	hs_target_close(c);
}

static void write_bytes(const char *path, const void *p, size_t len)
{
	int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, p, len), (ssize_t)len);
	close(fd);
}

static void test_not_core(void **state)
{
	struct fixture *f = *state;
	struct hs_target *c = (struct hs_target *)1;
	char path[160];

	snprintf(path, sizeof(path), "%s/x", f->dir);
	write_bytes(path, "", 0);
	assert_int_equal(hs_target_open_core(path, NULL, &c), -HS_E_NOT_CORE);
	assert_null(c);
	write_bytes(path, "hello, world\n", 13);
	assert_int_equal(hs_target_open_core(path, NULL, &c), -HS_E_NOT_CORE);
	/* An ELF executable is not a core. */
	assert_int_equal(hs_target_open_core("/proc/self/exe", NULL, &c), -HS_E_NOT_CORE);
	assert_int_equal(hs_target_open_core(f->dir, NULL, &c), -EISDIR);
	snprintf(path, sizeof(path), "%s/missing", f->dir);
	assert_int_equal(hs_target_open_core(path, NULL, &c), -ENOENT);
	/* --exe that does not exist is an error, not a silent fallback. */
	write_ok(f, NULL, NULL);
	assert_int_equal(hs_target_open_core(f->path, path, &c), -ENOENT);
}

/* Cut the file everywhere that matters: never crash, and say what's gone. */
static void test_truncated(void **state)
{
	struct fixture *f = *state;
	struct hs_buf sb = HS_BUF_INIT;
	char cut[160];
	Elf64_Ehdr eh;
	Elf64_Phdr note;
	size_t cuts[64], ncuts = 0;

	write_ok(f, NULL, NULL);
	assert_int_equal(hs_buf_read_file(&sb, f->path), 0);
	memcpy(&eh, sb.buf, sizeof(eh));
	memcpy(&note, sb.buf + eh.e_phoff, sizeof(note));
	assert_int_equal(note.p_type, PT_NOTE);
	size_t fixed[] = { 0, 1, 16, 63, 64, 65, 64 + 56 - 1, 64 + 56,
			   eh.e_phoff + eh.e_phnum * sizeof(Elf64_Phdr) - 1,
			   note.p_offset + 3, note.p_offset + 20,
			   note.p_offset + note.p_filesz / 3,
			   note.p_offset + note.p_filesz / 2,
			   note.p_offset + note.p_filesz - 1,
			   note.p_offset + note.p_filesz,
			   sb.len / 2, sb.len - PG - 1, sb.len - 1 };
	for (size_t i = 0; i < HS_ARRAY_SIZE(fixed); i++)
		if (fixed[i] < sb.len)
			cuts[ncuts++] = fixed[i];
	snprintf(cut, sizeof(cut), "%s/cut.core", f->dir);
	for (size_t i = 0; i < ncuts; i++) {
		struct hs_target *c;
		int ret;

		write_bytes(cut, sb.buf, cuts[i]);
		ret = hs_target_open_core(cut, NULL, &c);
		if (cuts[i] < eh.e_phoff + eh.e_phnum * sizeof(Elf64_Phdr)) {
			if (ret != -HS_E_NOT_CORE && ret != -HS_E_TRUNCATED)
				print_error("cut %zu: ret %d\n", cuts[i], ret);
			assert_true(ret == -HS_E_NOT_CORE || ret == -HS_E_TRUNCATED);
			continue;
		}
		assert_int_equal(ret, 0);
		assert_true(c->state & HS_TSTATE_PARTIAL);
		assert_sane_target(c);
		hs_target_close(c);
	}
	/* Cut inside the data: what is before the cut is still there. */
	{
		struct hs_target *c;
		Elf64_Phdr heap;
		unsigned char b[PG];
		size_t n;

		memcpy(&heap, sb.buf + eh.e_phoff + sizeof(Elf64_Phdr), sizeof(heap));
		assert_int_equal(heap.p_vaddr, HEAP_AT);
		write_bytes(cut, sb.buf, heap.p_offset + PG + 100);
		assert_int_equal(hs_target_open_core(cut, NULL, &c), 0);
		assert_true(c->state & HS_TSTATE_PARTIAL);
		assert_int_equal(c->nthreads, 2);
		assert_mem(c, HEAP_AT, f->heap, PG + 100);
		assert_int_equal(hs_target_read(c, HEAP_AT + PG, b, PG, &n), 0);
		assert_int_equal(n, 100);
		assert_int_equal(hs_target_read(c, ANON_AT, b, 8, &n), -EFAULT);
		hs_target_close(c);
	}
	hs_buf_release(&sb);
}

static int count_cb(void *ud, hs_addr_t addr, const void *data, size_t len)
{
	uint64_t *n = ud;

	(void)addr;
	(void)data;
	*n += len;
	return 0;
}

/* A cut core: what the file holds is data, the rest of every segment a
 * hole that next_data reports and the stream skips in one step. */
static void test_next_data(void **state)
{
	struct fixture *f = *state;
	struct hs_buf sb = HS_BUF_INIT;
	struct hs_target *c;
	char cut[160];
	Elf64_Ehdr eh;
	Elf64_Phdr heap;
	hs_addr_t s, e;
	uint64_t got = 0, holes = 0;
	unsigned char buf[PG];

	write_ok(f, NULL, NULL);
	assert_int_equal(hs_buf_read_file(&sb, f->path), 0);
	memcpy(&eh, sb.buf, sizeof(eh));
	memcpy(&heap, sb.buf + eh.e_phoff + sizeof(Elf64_Phdr), sizeof(heap));
	assert_int_equal(heap.p_vaddr, HEAP_AT);
	snprintf(cut, sizeof(cut), "%s/cut.core", f->dir);
	write_bytes(cut, sb.buf, heap.p_offset + PG + 100);
	assert_int_equal(hs_target_open_core(cut, NULL, &c), 0);

	assert_int_equal(hs_target_next_data(c, 0, UINT64_MAX, &s, &e), 0);
	assert_int_equal(s, HEAP_AT);
	assert_int_equal(e, HEAP_AT + PG + 100);
	assert_int_equal(hs_target_next_data(c, HEAP_AT + 10, HEAP_AT + 20, &s, &e), 0);
	assert_int_equal(s, HEAP_AT + 10);
	assert_int_equal(e, HEAP_AT + 20);
	assert_int_equal(hs_target_next_data(c, HEAP_AT + PG + 100, UINT64_MAX, &s, &e),
			 -ENXIO);
	assert_int_equal(hs_target_next_data(c, 5, 5, &s, &e), -ENXIO);

	/* The stream gives the data and counts the rest, holes included. */
	assert_int_equal(hs_target_stream(c, HEAP_AT, STACK_AT + STACK_LEN, buf, sizeof(buf),
					  count_cb, &got, &holes), 0);
	assert_int_equal(got, PG + 100);
	assert_int_equal(got + holes, STACK_AT + STACK_LEN - HEAP_AT);
	hs_target_close(c);
	hs_buf_release(&sb);
}

/* Random damage to the header, program headers and notes. */
static void test_corrupted(void **state)
{
	struct fixture *f = *state;
	struct hs_buf sb = HS_BUF_INIT;
	char bad[160];
	unsigned char *copy;
	uint64_t seed = 0x9e3779b97f4a7c15ull;
	size_t meta, opened = 0;
	Elf64_Ehdr eh;
	Elf64_Phdr note;

	write_ok(f, NULL, NULL);
	assert_int_equal(hs_buf_read_file(&sb, f->path), 0);
	memcpy(&eh, sb.buf, sizeof(eh));
	memcpy(&note, sb.buf + eh.e_phoff, sizeof(note));
	meta = note.p_offset + note.p_filesz;
	copy = hs_xmalloc(sb.len);
	snprintf(bad, sizeof(bad), "%s/bad.core", f->dir);
	for (int iter = 0; iter < 600; iter++) {
		struct hs_target *c;
		int flips = 1 + iter % 8;

		memcpy(copy, sb.buf, sb.len);
		for (int k = 0; k < flips; k++) {
			seed ^= seed << 13;
			seed ^= seed >> 7;
			seed ^= seed << 17;
			/* Mostly notes and program headers, sometimes the ELF
			 * header; sometimes a whole 0xff word (huge sizes). */
			size_t at = iter % 10 == 0 ? seed % sizeof(eh) : 64 + seed % (meta - 64);
			if (seed & 0x100)
				memset(copy + (at & ~3ul), 0xff, at + 4 <= sb.len ? 4 : 1);
			else
				copy[at] ^= (unsigned char)(1u << (seed >> 32) % 8);
		}
		write_bytes(bad, copy, sb.len);
		if (hs_target_open_core(bad, NULL, &c) == 0) {
			opened++;
			assert_sane_target(c);
			hs_target_close(c);
		}
	}
	/* Most damage is survivable: it is reported, the rest analysed. */
	assert_true(opened > 300);
	free(copy);
	hs_buf_release(&sb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_policy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_regions_and_all, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sparse_pagemap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_overwrite, setup, teardown),
		cmocka_unit_test_setup_teardown(test_interrupted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_plain_core, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_core, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_next_data, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
