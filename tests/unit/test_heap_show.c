/*
 * Unit tests of heap/show.c: the reference scan and string peek on "mem"
 * targets built word by word, and chunk lookup plus the whole show picture
 * on this test process's own glibc heap, exposed as a mem target over its
 * readable mappings (skipped under ASan, whose allocator is not glibc's).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hs_heap.h"

#if defined(__SANITIZE_ADDRESS__)
#define HS_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HS_TEST_ASAN 1
#endif
#endif

#define BASE 0x10000000ull

static void assert_sane_refs(const struct hs_refs *r, hs_addr_t lo, hs_addr_t hi)
{
	for (size_t i = 0; i < r->n; i++) {
		assert_true(r->v[i].value >= lo && r->v[i].value < hi);
		assert_int_equal(r->v[i].at & 7, 0);
		if (i)
			assert_true(r->v[i - 1].at < r->v[i].at);
	}
}

/* A target with one rw anon region of n words (zero) at BASE, one rw
 * region "[heap]" right after a hole, and one read-only file region. */
struct fake {
	struct hs_target *t;
	uint64_t anon[4096];     /* 32 KiB */
	uint64_t heap[1024];
	uint64_t ro[512];
};

#define ANON_AT BASE
#define HEAP_AT (BASE + 0x100000)
#define RO_AT (BASE + 0x200000)

static struct fake *fake_new(void)
{
	struct fake *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(hs_target_open_mem(&f->t), 0);
	hs_target_mem_add(f->t, ANON_AT, f->anon, sizeof(f->anon),
			  HS_PERM_R | HS_PERM_W, NULL);
	hs_target_mem_add(f->t, HEAP_AT, f->heap, sizeof(f->heap),
			  HS_PERM_R | HS_PERM_W, "[heap]");
	hs_target_mem_add(f->t, RO_AT, f->ro, sizeof(f->ro), HS_PERM_R, "/lib/x.so");
	hs_classify(f->t);
	return f;
}

static void fake_free(struct fake *f)
{
	hs_target_close(f->t);
	free(f);
}

static void test_refs_exact(void **state)
{
	struct fake *f = fake_new();
	struct hs_refs r = { 0 };
	const hs_addr_t lo = HEAP_AT + 0x100, hi = HEAP_AT + 0x140;
	unsigned char *bytes = (unsigned char *)f->anon;
	uint64_t mis = lo + 8;

	(void)state;
	f->anon[7] = lo;                  /* first byte: a reference */
	f->anon[4095] = hi - 1;           /* last byte, in the last word */
	f->anon[100] = hi;                /* one past: not */
	f->anon[101] = lo - 1;            /* one before: not */
	memcpy(bytes + 8 * 200 + 4, &mis, 8); /* unaligned: not */
	f->heap[5] = lo + 0x10;           /* in [heap] */
	f->heap[0x100 / 8] = lo + 0x20;   /* inside the object itself: skipped */
	f->ro[3] = lo;                    /* read-only: not scanned */
	struct hs_refs_opts o = { .skip_lo = lo, .skip_hi = hi, .bufsz = 4096 };

	assert_int_equal(hs_refs_scan(f->t, lo, hi, &o, &r), 0);
	assert_sane_refs(&r, lo, hi);
	assert_int_equal(r.cut, HS_REFS_COMPLETE);
	assert_int_equal(r.n, 3);
	assert_int_equal(r.v[0].at, ANON_AT + 7 * 8);
	assert_int_equal(r.v[0].value, lo);
	assert_int_equal(r.v[1].at, ANON_AT + 4095 * 8);
	assert_int_equal(r.v[2].at, HEAP_AT + 5 * 8);
	assert_int_equal(f->t->maps.v[r.v[2].map].cls, HS_CLASS_HEAP);
	assert_int_equal(r.scanned, sizeof(f->anon) + sizeof(f->heap));
	assert_int_equal(r.maps_scanned, 2);
	assert_int_equal(r.unreadable, 0);
	hs_refs_release(&r);

	/* Without the skip range the object's own word counts. */
	o.skip_lo = o.skip_hi = 0;
	assert_int_equal(hs_refs_scan(f->t, lo, hi, &o, &r), 0);
	assert_int_equal(r.n, 4);
	hs_refs_release(&r);

	/* Only the heap class. */
	o.classes = 1u << HS_CLASS_HEAP;
	assert_int_equal(hs_refs_scan(f->t, lo, hi, &o, &r), 0);
	assert_int_equal(r.n, 2);
	assert_int_equal(r.scanned, sizeof(f->heap));
	hs_refs_release(&r);

	/* Empty range. */
	assert_int_equal(hs_refs_scan(f->t, lo, lo, NULL, &r), -EINVAL);
	hs_refs_release(&r);
	fake_free(f);
}

static void test_refs_limits(void **state)
{
	struct fake *f = fake_new();
	struct hs_refs r = { 0 };
	const hs_addr_t lo = 0x7000, hi = 0x8000;

	(void)state;
	for (size_t i = 0; i < 4096; i += 16)
		f->anon[i] = lo + i;          /* 256 references */

	struct hs_refs_opts o = { .max_results = 10 };
	assert_int_equal(hs_refs_scan(f->t, lo, hi, &o, &r), 0);
	assert_int_equal(r.cut, HS_REFS_CUT_RESULTS);
	assert_int_equal(r.n, 10);
	assert_int_equal(r.v[9].at, ANON_AT + 9 * 128);
	assert_sane_refs(&r, lo, hi);
	hs_refs_release(&r);

	/* A byte budget inside the first piece: exactly that many bytes. */
	o = (struct hs_refs_opts){ .max_results = 1000, .max_bytes = 1000,
				   .classes = 1u << HS_CLASS_ANON };
	assert_int_equal(hs_refs_scan(f->t, lo, hi, &o, &r), 0);
	assert_int_equal(r.cut, HS_REFS_CUT_BYTES);
	assert_int_equal(r.scanned, 1000);
	assert_int_equal(r.n, 8);             /* words 0, 16, ... 112 */
	hs_refs_release(&r);

	/* Budget larger than everything: complete, all found. */
	o.max_bytes = 1 << 30;
	assert_int_equal(hs_refs_scan(f->t, lo, hi, &o, &r), 0);
	assert_int_equal(r.cut, HS_REFS_COMPLETE);
	assert_int_equal(r.n, 256);
	hs_refs_release(&r);

	/* An already-passed deadline stops after the first piece. */
	o = (struct hs_refs_opts){ .max_results = 1000, .max_ns = 1, .bufsz = 4096 };
	assert_int_equal(hs_refs_scan(f->t, lo, hi, &o, &r), 0);
	assert_int_equal(r.cut, HS_REFS_CUT_TIME);
	assert_true(r.scanned <= 4096);
	hs_refs_release(&r);
	assert_string_equal(hs_refs_cut_name(HS_REFS_CUT_TIME), "time");
	fake_free(f);
}

/* A mapping with an unreadable middle page (a map wider than its data). */
static void test_refs_gap(void **state)
{
	static uint64_t a[1024], b[512];
	struct hs_target *t;
	struct hs_refs r = { 0 };
	struct hs_map *m;

	(void)state;
	assert_int_equal(hs_target_open_mem(&t), 0);
	a[511] = 0x5008;
	b[0] = 0x5010;
	hs_target_mem_add(t, BASE, a, 4096, 0, NULL);
	hs_target_mem_add(t, BASE + 8192, b, 4096, 0, NULL);
	m = hs_maps_add(&t->maps, BASE, BASE + 12288, NULL);
	m->perms = HS_PERM_R | HS_PERM_W;
	hs_classify(t);
	assert_int_equal(hs_refs_scan(t, 0x5000, 0x6000, NULL, &r), 0);
	assert_int_equal(r.n, 2);
	assert_int_equal(r.v[0].at, BASE + 511 * 8);
	assert_int_equal(r.v[1].at, BASE + 8192);
	assert_int_equal(r.unreadable, 4096);
	assert_int_equal(r.scanned, 8192);
	assert_true(t->state & HS_TSTATE_PARTIAL);
	hs_refs_release(&r);
	hs_target_close(t);
}

static void test_peek_string(void **state)
{
	static char mem[64] = "hello, world\0ab\0\x01\x02xyzzy-tail";
	struct hs_target *t;
	char out[8], big[64];

	(void)state;
	assert_int_equal(hs_target_open_mem(&t), 0);
	hs_target_mem_add(t, BASE, mem, 28, HS_PERM_R, NULL);
	assert_int_equal(hs_show_peek_string(t, BASE, 4, big, sizeof(big)), 12);
	assert_string_equal(big, "hello, world");
	/* bounded by out: max - 1 bytes */
	assert_int_equal(hs_show_peek_string(t, BASE, 4, out, sizeof(out)), 7);
	assert_string_equal(out, "hello, ");
	/* too short, not printable, unreadable */
	assert_int_equal(hs_show_peek_string(t, BASE + 13, 4, big, sizeof(big)), 0);
	assert_string_equal(big, "");
	assert_int_equal(hs_show_peek_string(t, BASE + 16, 1, big, sizeof(big)), 0);
	assert_int_equal(hs_show_peek_string(t, BASE + 0x1000, 1, big, sizeof(big)), 0);
	/* a run that ends where the readable memory ends */
	assert_int_equal(hs_show_peek_string(t, BASE + 18, 4, big, sizeof(big)), 10);
	assert_string_equal(big, "xyzzy-tail");
	hs_target_close(t);
}

/* ---- this process as a target ---- */

static struct hs_target *self_target(void)
{
	struct hs_target *t;
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];

	assert_non_null(f);
	assert_int_equal(hs_target_open_mem(&t), 0);
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		char perms[8] = "";
		int pathoff = 0;
		const char *path;
		unsigned p = 0;

		if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %n", &lo, &hi, perms, &pathoff) < 3)
			continue;
		line[strcspn(line, "\n")] = '\0';
		path = pathoff ? line + pathoff : "";
		/* Only what reads back safely: readable, not the kernel's
		 * special pages. */
		if (perms[0] != 'r' || !strncmp(path, "[v", 2))
			continue;
		p = HS_PERM_R | (perms[1] == 'w' ? HS_PERM_W : 0) |
		    (perms[2] == 'x' ? HS_PERM_X : 0);
		hs_target_mem_add(t, lo, (const void *)lo, hi - lo, p, path);
	}
	fclose(f);
	hs_classify(t);
	return t;
}

char show_test_global[32] = "show-test-global";
static void *show_test_root;

struct rec {
	char name[24];
	char *global;
	char *label;
};

static void test_self_show(void **state)
{
	struct hs_glibc_opts go = { .flags = HS_GLIBC_NO_TLS };
	struct hs_glibc_heap *h = NULL;
	struct hs_target *t;
	struct hs_show s;
	struct hs_show_opts so = { .refs = true };
	struct rec *r;
	char *label, *gone;
	hs_addr_t gone_at;
	size_t size;
	int ret;

	(void)state;
#ifdef HS_TEST_ASAN
	skip();
#endif
	/* Grow [heap] now and keep it, so that the allocations made while the
	 * maps are copied do not move the break past the copied [heap]. */
	mallopt(M_TRIM_THRESHOLD, 256 << 20);
	mallopt(M_TOP_PAD, 16 << 20);
	{
		void *blocks[4096];
		void *brk0 = sbrk(0);
		size_t nb = 0;

		while (nb < HS_ARRAY_SIZE(blocks) && sbrk(0) == brk0)
			blocks[nb++] = malloc(60000);
		assert_true(sbrk(0) != brk0);
		while (nb)
			free(blocks[--nb]);
	}
	label = strdup("self-label-string");
	r = calloc(1, sizeof(*r));
	strcpy(r->name, "self-record-name");
	r->global = show_test_global;
	r->label = label;
	show_test_root = r;
	size = malloc_usable_size(r) + 8;
	gone = malloc(1000);
	gone_at = (hs_addr_t)gone;
	/* Reads go to live memory: free after the maps are copied (which
	 * allocates), into the tcache, in a size nothing else here uses. */
	t = self_target();
	free(gone);
	ret = hs_glibc_open(t, &go, &h);
	assert_int_equal(ret, 0);

	{
		struct hs_show_loc q[5] = {
			{ .addr = (hs_addr_t)r + 3 }, { .addr = (hs_addr_t)r - 16 },
			{ .addr = gone_at }, { .addr = (hs_addr_t)show_test_global },
			{ .addr = (hs_addr_t)r - 16 + size - 1 },
		};

		assert_true(hs_show_maybe_chunk(h, q[0].addr));
		assert_false(hs_show_maybe_chunk(h, q[3].addr));
		assert_int_equal(hs_show_locate(h, q, 5), 0);
		for (int i = 0; i < 5; i++)
			if (i != 2 && i != 3) {
				assert_true(q[i].found);
				assert_int_equal(q[i].chunk.addr, (hs_addr_t)r - 16);
				assert_int_equal(q[i].chunk.size, size);
				assert_int_equal(q[i].chunk.state, HS_CHUNK_INUSE);
				assert_int_equal(q[i].chunk.arena, 0);
			}
		assert_true(q[2].found);
		assert_int_equal(q[2].chunk.addr, gone_at - 16);
		assert_int_equal(q[2].chunk.state, HS_CHUNK_TCACHE);
		assert_false(q[3].found);
	}

	memset(&s, 0, sizeof(s));
	assert_int_equal(hs_show_collect(t, h, (hs_addr_t)r->name + 5, &so, &s), 0);
	assert_true(s.in_chunk);
	assert_int_equal(s.chunk.addr, (hs_addr_t)r - 16);
	assert_int_equal(s.dump_addr, (hs_addr_t)r - 16);
	assert_int_equal(s.dump_len, size + 8);
	assert_int_equal(s.nwords, (size + 8) / 8);
	assert_int_equal(s.words[0].header, 1);
	assert_int_equal(s.words[1].header, 2);
	assert_memory_equal(s.dump + 16, "self-record-name", 17);
	/* words 5 and 6: the global, the label (its own chunk, a string) */
	assert_int_equal(s.words[5].value, (hs_addr_t)show_test_global);
	assert_int_equal(t->maps.v[s.words[5].map].cls, HS_CLASS_DATA);
	assert_false(s.words[5].in_chunk);
	assert_string_equal(s.words[5].str, "show-test-global");
	assert_true(s.words[6].in_chunk);
	assert_int_equal(s.words[6].chunk.addr, (hs_addr_t)label - 16);
	assert_string_equal(s.words[6].str, "self-label-string");
	/* the global show_test_root is among the references (this process's
	 * stack holds more: it is scanned whole, with no thread sp known) */
	assert_true(s.has_refs);
	{
		bool seen = false;

		for (size_t i = 0; i < s.refs.n; i++) {
			assert_true(s.refs.v[i].value - s.obj_lo < s.obj_hi - s.obj_lo);
			if (s.refs.v[i].at == (hs_addr_t)&show_test_root) {
				seen = true;
				assert_false(s.xrefs[i].in_chunk);
			}
		}
		assert_true(seen);
	}
	hs_show_release(&s);

	/* Outside any chunk: the global's own bytes. */
	memset(&s, 0, sizeof(s));
	so = (struct hs_show_opts){ .len = 40 };
	assert_int_equal(hs_show_collect(t, h, (hs_addr_t)show_test_global + 2, &so, &s), 0);
	assert_false(s.in_chunk);
	assert_int_equal(s.dump_addr, ((hs_addr_t)show_test_global + 2) & ~15ull);
	assert_int_equal(s.obj_lo, (hs_addr_t)show_test_global + 2);
	assert_int_equal(s.dump_len, 40 + (((hs_addr_t)show_test_global + 2) & 15));
	hs_show_release(&s);

	/* Not mapped. */
	memset(&s, 0, sizeof(s));
	assert_int_equal(hs_show_collect(t, h, 0x10, NULL, &s), -HS_E_NOT_FOUND);
	hs_show_release(&s);

	hs_glibc_close(h);
	hs_target_close(t);
	show_test_root = NULL;
	free(r);
	free(label);
}

/* Without a heap: no chunks, the rest works. */
static void test_no_heap(void **state)
{
	struct fake *f = fake_new();
	struct hs_show s;
	struct hs_show_opts so = { .refs = true, .len = 64 };
	struct hs_show_loc q = { .addr = HEAP_AT };

	(void)state;
	f->heap[2] = HEAP_AT + 8;
	f->anon[9] = HEAP_AT + 0x18;
	assert_int_equal(hs_show_locate(NULL, &q, 1), 0);
	assert_false(q.found);
	memset(&s, 0, sizeof(s));
	assert_int_equal(hs_show_collect(f->t, NULL, HEAP_AT, &so, &s), 0);
	assert_false(s.in_chunk);
	assert_false(s.locate_done);
	assert_int_equal(s.dump_len, 64);
	assert_int_equal(s.obj_hi, HEAP_AT + 64);
	assert_int_equal(s.words[2].map, 1);   /* points into [heap] */
	assert_int_equal(s.refs.n, 1);
	assert_int_equal(s.refs.v[0].at, ANON_AT + 9 * 8);
	hs_show_release(&s);
	/* The dump is cut at the mapping's end. */
	memset(&s, 0, sizeof(s));
	so.refs = false;
	assert_int_equal(hs_show_collect(f->t, NULL, HEAP_AT + sizeof(f->heap) - 8,
					 &so, &s), 0);
	assert_int_equal(s.dump_len, 16);
	hs_show_release(&s);
	fake_free(f);
}

/* Registers: every user_regs_struct member of every thread with registers,
 * [lo, hi) exactly, threads without registers counted apart. */
static void test_refs_regs(void **state)
{
	struct fake *f = fake_new();
	struct hs_reg_refs g;
	struct hs_show s;
	struct hs_show_opts so = { .refs = true, .len = 64 };

	(void)state;
	assert_string_equal(hs_reg_name(HS_REG_RSI), "rsi");
	assert_string_equal(hs_reg_name(HS_REG_ORIG_RAX), "orig_rax");
	assert_string_equal(hs_reg_name(HS_REG_GS), "gs");
	assert_string_equal(hs_reg_name(HS_REG_N), "?");
	f->t->threads = calloc(3, sizeof(*f->t->threads));
	assert_non_null(f->t->threads);
	f->t->nthreads = 3;
	f->t->threads[0].tid = 100;
	f->t->threads[0].has_regs = true;
	f->t->threads[0].regs.r[HS_REG_RSI] = HEAP_AT + 0x10;
	f->t->threads[0].regs.r[HS_REG_RIP] = HEAP_AT;          /* lo: in */
	f->t->threads[0].regs.r[HS_REG_RAX] = HEAP_AT + 64;     /* hi: out */
	f->t->threads[0].regs.r[HS_REG_RDI] = HEAP_AT - 1;      /* out */
	f->t->threads[1].tid = 101;                             /* no regs */
	f->t->threads[1].regs.r[HS_REG_RSI] = HEAP_AT + 8;
	f->t->threads[2].tid = 102;
	f->t->threads[2].has_regs = true;
	f->t->threads[2].regs.r[HS_REG_R15] = HEAP_AT + 63;
	f->t->threads[2].regs.r[HS_REG_GS] = HEAP_AT + 1;       /* last member */

	memset(&g, 0, sizeof(g));
	assert_int_equal(hs_refs_scan_regs(f->t, HEAP_AT, HEAP_AT, &g), -EINVAL);
	assert_int_equal(hs_refs_scan_regs(f->t, HEAP_AT, HEAP_AT + 64, &g), 0);
	assert_int_equal(g.threads, 2);
	assert_int_equal(g.threads_noregs, 1);
	assert_int_equal(g.n, 4);
	/* thread order, then register order */
	assert_int_equal(g.v[0].tid, 100);
	assert_int_equal(g.v[0].reg, HS_REG_RSI);
	assert_int_equal(g.v[0].value, HEAP_AT + 0x10);
	assert_int_equal(g.v[1].tid, 100);
	assert_int_equal(g.v[1].reg, HS_REG_RIP);
	assert_int_equal(g.v[2].tid, 102);
	assert_int_equal(g.v[2].reg, HS_REG_R15);
	assert_int_equal(g.v[3].reg, HS_REG_GS);
	hs_reg_refs_release(&g);
	assert_null(g.v);
	assert_int_equal(g.n, 0);

	/* collect: registers beside the memory refs, not counted in them and
	 * not cut by max_results */
	f->anon[3] = HEAP_AT + 0x20;
	f->anon[5] = HEAP_AT + 0x28;
	so.refs_opts.max_results = 1;
	memset(&s, 0, sizeof(s));
	assert_int_equal(hs_show_collect(f->t, NULL, HEAP_AT + 8, &so, &s), 0);
	assert_int_equal(s.obj_base, HEAP_AT + 8);
	assert_int_equal(s.refs.n, 1);
	assert_int_equal(s.refs.cut, HS_REFS_CUT_RESULTS);
	/* object is [HEAP_AT + 8, HEAP_AT + 8 + 64): rip (HEAP_AT) and gs
	 * (HEAP_AT + 1) fall below it, rax (HEAP_AT + 64) now inside */
	assert_int_equal(s.regrefs.n, 3);
	assert_int_equal(s.regrefs.v[0].reg, HS_REG_RAX);
	assert_int_equal(s.regrefs.v[1].reg, HS_REG_RSI);
	assert_int_equal(s.regrefs.v[2].reg, HS_REG_R15);
	hs_show_release(&s);
	assert_int_equal(s.regrefs.n, 0);
	/* without refs, no register check either */
	so.refs = false;
	memset(&s, 0, sizeof(s));
	assert_int_equal(hs_show_collect(f->t, NULL, HEAP_AT + 8, &so, &s), 0);
	assert_int_equal(s.regrefs.n, 0);
	assert_int_equal(s.regrefs.threads, 0);
	hs_show_release(&s);
	fake_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refs_exact),
		cmocka_unit_test(test_refs_limits),
		cmocka_unit_test(test_refs_gap),
		cmocka_unit_test(test_peek_string),
		cmocka_unit_test(test_self_show),
		cmocka_unit_test(test_no_heap),
		cmocka_unit_test(test_refs_regs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
