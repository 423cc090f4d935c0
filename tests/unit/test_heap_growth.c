/* Unit tests for growth profiles: the file format (round trip, hostile
 * input) and the diff (ranking, cuts, correlated groups). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "hs_heap.h"
#include "growth/profile-internal.h"

static void add_str(struct hs_profile *p, const char *s, uint64_t count)
{
	struct hs_profile_string *x = hs_profile_add_string(p);

	x->s = hs_xstrdup(s);
	x->stored = strlen(s);
	x->len = x->stored;
	x->count = count;
	x->bytes = count * x->len;
}

static void add_chunk(struct hs_profile *p, int arena, uint64_t size, uint64_t count)
{
	struct hs_profile_chunk *c = hs_profile_add_chunk(p);

	c->arena = arena;
	c->size = size;
	c->count = count;
	c->bytes = count * size;
}

/* A small profile: two arenas, a region, chunks, strings with odd bytes. */
static void make(struct hs_profile *p, uint64_t leaked)
{
	struct hs_profile_region *r;
	struct hs_profile_arena *a;

	hs_profile_init(p);
	hs_profile_set_str(&p->exe, "/usr/bin/worker");
	hs_profile_set_str(&p->source, "pid 42");
	hs_profile_set_str(&p->kind, "live");
	p->pid = 42;
	p->time_ns = 1000000000ull * (1000 + leaked);
	p->has_smaps = true;
	p->strings_done = true;
	p->strings_exact = true;
	p->strings_min_len = 6;
	p->strings_keep = 10;
	r = hs_profile_add_region(p);
	r->start = 0x1000;
	r->end = 0x100000 + leaked * 0x1000;
	r->perms = HS_PERM_R | HS_PERM_W;
	r->cls = HS_CLASS_HEAP;
	r->mem.size = r->end - r->start;
	r->mem.rss = 0x10000 + leaked * 64;
	r->path = hs_xstrdup("[heap]");
	p->classes[HS_CLASS_HEAP] = r->mem;
	p->classes[HS_CLASS_HEAP].count = 1;
	r = hs_profile_add_region(p);
	r->start = 0x7f0000000000;
	r->end = 0x7f0000001000;
	r->cls = HS_CLASS_DATA;
	r->mem.rss = 4096;
	r->path = hs_xstrdup("/path with spaces/lib\\x.so ");
	a = hs_profile_add_arena(p);
	a->idx = 0;
	a->addr = 0x7ffff7e19c80;
	a->is_main = true;
	a = hs_profile_add_arena(p);
	a->idx = 1;
	a->addr = 0x7fffe0000030;
	/* sorted by (arena, size), as hs_profile_build leaves them */
	add_chunk(p, -1, 0x21000, 2);
	add_chunk(p, 0, 0x20, 500);
	add_chunk(p, 1, 0x60, 100 + leaked);
	add_str(p, "alpha.context", 100 + leaked);
	add_str(p, "peer:beta", 100 + leaked);
	add_str(p, "steady state", 7);
	add_str(p, "tab\there \x7f\x80 ", 3);
}

static char *write_mem(const struct hs_profile *p, size_t *len)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);

	assert_non_null(f);
	assert_int_equal(hs_profile_write(p, f), 0);
	fclose(f);
	return buf;
}

static int read_mem(const char *text, size_t len, struct hs_profile *p, unsigned *line)
{
	FILE *f = fmemopen((void *)text, len, "r");
	int ret;

	assert_non_null(f);
	ret = hs_profile_read(p, f, line);
	fclose(f);
	return ret;
}

static void test_round_trip(void **state)
{
	struct hs_profile a, b;
	char *text, *text2;
	size_t len, len2;

	(void)state;
	make(&a, 5);
	text = write_mem(&a, &len);
	assert_int_equal(read_mem(text, len, &b, NULL), 0);
	assert_int_equal(b.nregions, 2);
	assert_string_equal(b.regions[1].path, "/path with spaces/lib\\x.so ");
	assert_int_equal(b.regions[0].mem.rss, a.regions[0].mem.rss);
	assert_int_equal(b.nstrings, 4);
	assert_string_equal(b.strings[3].s, "tab\there \x7f\x80 ");
	assert_int_equal(b.narenas, 2);
	assert_int_equal(b.nchunks, 3);
	assert_int_equal(b.chunks[0].arena, -1);
	assert_string_equal(b.exe, "/usr/bin/worker");
	assert_int_equal(b.pid, 42);
	/* Writing what was read gives the same bytes. */
	text2 = write_mem(&b, &len2);
	assert_int_equal(len, len2);
	assert_memory_equal(text, text2, len);
	free(text);
	free(text2);
	hs_profile_release(&a);
	hs_profile_release(&b);
}

static void test_hostile(void **state)
{
	struct hs_profile a, b;
	char *text, *bad;
	size_t len;
	unsigned line;

	(void)state;
	make(&a, 0);
	text = write_mem(&a, &len);
	/* Every truncation is an error, never a crash or a success. */
	for (size_t cut = 0; cut < len; cut++) {
		int ret = read_mem(text, cut, &b, &line);

		assert_true(ret == -HS_E_TRUNCATED || ret == -HS_E_FORMAT ||
			    ret == -HS_E_CORRUPT);
		if (cut > strlen(HS_PROFILE_MAGIC) + 3)
			assert_int_equal(ret, -HS_E_TRUNCATED);
		hs_profile_release(&b);
	}
	/* Foreign files. */
	assert_int_equal(read_mem("hello\n", 6, &b, NULL), -HS_E_FORMAT);
	hs_profile_release(&b);
	assert_int_equal(read_mem("", 0, &b, NULL), -HS_E_FORMAT);
	hs_profile_release(&b);
	/* Another version. */
	bad = hs_xstrdup(text);
	bad[strlen(HS_PROFILE_MAGIC) + 1] = '7';
	assert_int_equal(read_mem(bad, len, &b, NULL), -HS_E_VERSION);
	assert_int_equal(b.version, 7);
	hs_profile_release(&b);
	free(bad);
	/* A bad number, a bad escape, a wrong end count. */
	{
		static const char *const lines[] = {
			"chunk 0 12x 1 1\n", "string 1 3 3 a\\qb\n", "string 1 3 3 a\\x00b\n",
			"region 0x10 0x5 rw-p heap 0 0 0 0 0 x\n", "class nosuch 0 0 0 0 0 0\n",
			"arena 0 0x10 both 0 0 0 0 0\n", "string 5 1 5 \n",
		};
		for (size_t i = 0; i < HS_ARRAY_SIZE(lines); i++) {
			struct hs_buf sb = HS_BUF_INIT;

			hs_buf_addf(&sb, "%s %d\n%send 1\n", HS_PROFILE_MAGIC,
				    HS_PROFILE_VERSION, lines[i]);
			assert_int_equal(read_mem(sb.buf, sb.len, &b, &line), -HS_E_CORRUPT);
			assert_int_equal(line, 2);
			hs_profile_release(&b);
			hs_buf_release(&sb);
		}
	}
	{
		struct hs_buf sb = HS_BUF_INIT;

		/* An unknown record type is skipped; the end count must match. */
		hs_buf_addf(&sb, "%s %d\nfuture 1 2 3\nend 1\n", HS_PROFILE_MAGIC,
			    HS_PROFILE_VERSION);
		assert_int_equal(read_mem(sb.buf, sb.len, &b, NULL), 0);
		hs_profile_release(&b);
		hs_buf_reset(&sb);
		hs_buf_addf(&sb, "%s %d\nend 3\n", HS_PROFILE_MAGIC, HS_PROFILE_VERSION);
		assert_int_equal(read_mem(sb.buf, sb.len, &b, NULL), -HS_E_CORRUPT);
		hs_profile_release(&b);
		/* A line longer than the bound. */
		hs_buf_reset(&sb);
		hs_buf_addf(&sb, "%s %d\nmeta exe ", HS_PROFILE_MAGIC, HS_PROFILE_VERSION);
		for (int i = 0; i < HS_PROFILE_LINE_MAX; i++)
			hs_buf_addch(&sb, 'x');
		hs_buf_adds(&sb, "\nend 1\n");
		assert_int_equal(read_mem(sb.buf, sb.len, &b, NULL), -HS_E_CORRUPT);
		hs_profile_release(&b);
		hs_buf_release(&sb);
	}
	free(text);
	hs_profile_release(&a);
}

static const struct hs_growth_item *lookup(const struct hs_diff *d, enum hs_growth_kind k,
					   const char *s, uint64_t size)
{
	for (size_t i = 0; i < d->nitems; i++) {
		const struct hs_growth_item *it = &d->items[i];

		if (it->kind != k)
			continue;
		if (k == HS_GROWTH_STRING && !strcmp(it->s, s))
			return it;
		if (k == HS_GROWTH_CHUNK && it->size == size)
			return it;
		if ((k == HS_GROWTH_REGION || k == HS_GROWTH_CLASS) && !s)
			return it;
	}
	return NULL;
}

/* lookup() that fails the test (and never returns NULL) when absent. */
static const struct hs_growth_item *find(const struct hs_diff *d, enum hs_growth_kind k,
					 const char *s, uint64_t size)
{
	const struct hs_growth_item *it = lookup(d, k, s, size);

	if (!it) {
		print_error("no such item: %s\n", s ? s : "(chunk)");
		fail();
		abort();
	}
	return it;
}

static void test_diff_groups(void **state)
{
	struct hs_profile a, b;
	struct hs_diff d;
	const struct hs_growth_item *s1, *s2, *c;

	(void)state;
	make(&a, 0);
	make(&b, 1000);
	/* Noise: a string growing by a different count joins no group. */
	add_str(&a, "unrelated", 10);
	add_str(&b, "unrelated", 400);
	assert_int_equal(hs_diff_compute(&d, &a, &b, NULL), 0);
	assert_string_equal(d.warnings.buf, "");
	assert_true(d.by_rss);
	assert_true(d.elapsed_s > 999 && d.elapsed_s < 1001);
	s1 = find(&d, HS_GROWTH_STRING, "alpha.context", 0);
	s2 = find(&d, HS_GROWTH_STRING, "peer:beta", 0);
	c = find(&d, HS_GROWTH_CHUNK, NULL, 0x60);
	assert_non_null(s1);
	assert_non_null(s2);
	assert_non_null(c);
	assert_int_equal(s1->dcount, 1000);
	assert_int_equal(c->dcount, 1000);
	assert_int_equal(c->dbytes, 1000 * 0x60);
	assert_false(c->arena_main);
	assert_null(lookup(&d, HS_GROWTH_STRING, "steady state", 0));
	assert_null(lookup(&d, HS_GROWTH_CHUNK, NULL, 0x20));
	assert_int_equal(d.ngroups, 1);
	assert_int_equal(d.groups[0].n, 3);
	assert_int_equal(s1->group, 0);
	assert_int_equal(s2->group, 0);
	assert_int_equal(c->group, 0);
	assert_int_equal(find(&d, HS_GROWTH_STRING, "unrelated", 0)->group, -1);
	/* Ranked by bytes: growth descending. */
	for (size_t i = 1; i < d.ngrowth; i++)
		assert_true(d.items[i - 1].dbytes >= d.items[i].dbytes);
	assert_int_equal(d.ngrowth, d.nitems);
	hs_diff_release(&d);

	/* The other way round: everything is shrinkage, no groups. */
	assert_int_equal(hs_diff_compute(&d, &b, &a, NULL), 0);
	assert_int_equal(d.ngrowth, 0);
	assert_true(d.nitems > 0);
	assert_int_equal(d.ngroups, 0);
	hs_diff_release(&d);

	/* Same profile: nothing. */
	assert_int_equal(hs_diff_compute(&d, &a, &a, NULL), 0);
	assert_int_equal(d.nitems, 0);
	hs_diff_release(&d);
	hs_profile_release(&a);
	hs_profile_release(&b);
}

static void test_diff_factor_and_cut(void **state)
{
	struct hs_profile a, b;
	struct hs_diff d;
	const struct hs_growth_item *it;

	(void)state;
	make(&a, 0);
	make(&b, 0);
	/* Two strings doubling from different bases: same factor. */
	add_str(&a, "doubles.one", 1000);
	add_str(&b, "doubles.one", 2000);
	add_str(&a, "doubles.two", 5000);
	add_str(&b, "doubles.two", 10000);
	/* B was cut at 50: a string only in B is exact before (A kept all);
	 * a string only in A is "<= 50" after. */
	b.strings_cut = 50;
	add_str(&b, "new.in.b", 80);
	add_str(&a, "gone.from.b", 900);
	hs_profile_set_str(&b.heapscan_version, "9.9.9");
	b.pid = 43;
	assert_int_equal(hs_diff_compute(&d, &a, &b, NULL), 0);
	assert_non_null(strstr(d.warnings.buf, "different processes"));
	assert_non_null(strstr(d.warnings.buf, "different heapscan versions"));
	assert_int_equal(d.ngroups, 1);
	assert_true(d.groups[0].by_factor);
	assert_int_equal(d.groups[0].n, 2);
	it = find(&d, HS_GROWTH_STRING, "new.in.b", 0);
	assert_non_null(it);
	assert_true(it->flags & HS_GI_NEW);
	assert_int_equal(it->dcount, 80);
	it = find(&d, HS_GROWTH_STRING, "gone.from.b", 0);
	assert_non_null(it);
	assert_true(it->flags & HS_GI_AFTER_CUT);
	assert_int_equal(it->count_b, 50);
	assert_int_equal(it->group, -1);
	hs_diff_release(&d);
	/* Different exes are detected (the CLI refuses them). */
	hs_profile_set_str(&b.exe, "/usr/bin/other");
	assert_true(hs_profile_exe_differs(&a, &b));
	hs_profile_release(&a);
	hs_profile_release(&b);
}

/* Each member keeps its own delta; a group's bytes are its chunks' (the
 * strings live inside them); a string new in B below A's cut and small
 * steady growth both group. */
static void test_diff_group_figures(void **state)
{
	struct hs_profile a, b;
	struct hs_diff d;
	const struct hs_growth_group *g;
	const struct hs_growth_item *c1, *c2, *s1, *k;

	(void)state;
	make(&a, 0);
	make(&b, 0);
	/* The same rate (x2.9), different deltas: +189999, +120000, +70000. */
	add_chunk(&a, 1, 0x70, 100000);
	add_chunk(&b, 1, 0x70, 289999);
	add_chunk(&a, 1, 0x80, 63158);
	add_chunk(&b, 1, 0x80, 183158);
	add_str(&a, "rate.record", 36842);
	add_str(&b, "rate.record", 106842);
	assert_int_equal(hs_diff_compute(&d, &a, &b, NULL), 0);
	c1 = find(&d, HS_GROWTH_CHUNK, NULL, 0x70);
	c2 = find(&d, HS_GROWTH_CHUNK, NULL, 0x80);
	s1 = find(&d, HS_GROWTH_STRING, "rate.record", 0);
	assert_int_equal(d.ngroups, 1);
	g = &d.groups[0];
	assert_true(g->by_factor);
	assert_int_equal(g->n, 3);
	assert_int_equal(c1->dcount, 189999);
	assert_int_equal(c2->dcount, 120000);
	assert_int_equal(s1->dcount, 70000);
	assert_int_equal(g->dcount_min, 70000);
	assert_int_equal(g->dcount_max, 189999);
	/* Bytes: the chunks only, never chunks + the strings inside them. */
	assert_int_equal(g->bytes_of, HS_GROWTH_CHUNK);
	assert_int_equal(g->dbytes, 189999 * 0x70 + 120000 * 0x80);
	hs_diff_release(&d);
	hs_profile_release(&a);
	hs_profile_release(&b);

	/* A was cut at 3: a key new in B (<=3 before, 10120 after) groups
	 * with the chunk size that grew as much. */
	make(&a, 0);
	make(&b, 0);
	a.strings_cut = 3;
	add_chunk(&a, 1, 0x70, 50);
	add_chunk(&b, 1, 0x70, 50 + 10120);
	add_str(&b, "key:session:new", 10120);
	assert_int_equal(hs_diff_compute(&d, &a, &b, NULL), 0);
	k = find(&d, HS_GROWTH_STRING, "key:session:new", 0);
	assert_true(k->flags & HS_GI_BEFORE_CUT);
	assert_int_equal(d.ngroups, 1);
	assert_int_equal(d.groups[0].n, 2);
	assert_int_equal(k->group, 0);
	assert_false(d.groups[0].by_factor);
	hs_diff_release(&d);
	hs_profile_release(&a);
	hs_profile_release(&b);

	/* Small steady growth: +5% and +5% group (by rate), +0.8% does not. */
	make(&a, 0);
	make(&b, 0);
	add_chunk(&a, 1, 0x70, 1000);
	add_chunk(&b, 1, 0x70, 1050);
	add_chunk(&a, 1, 0x80, 2000);
	add_chunk(&b, 1, 0x80, 2100);
	add_chunk(&a, 1, 0x90, 5000);
	add_chunk(&b, 1, 0x90, 5040);
	assert_int_equal(hs_diff_compute(&d, &a, &b, NULL), 0);
	assert_int_equal(d.ngroups, 1);
	assert_true(d.groups[0].by_factor);
	assert_int_equal(d.groups[0].n, 2);
	assert_int_equal(find(&d, HS_GROWTH_CHUNK, NULL, 0x90)->group, -1);
	assert_int_equal(d.groups[0].dcount_min, 50);
	assert_int_equal(d.groups[0].dcount_max, 100);
	hs_diff_release(&d);
	hs_profile_release(&a);
	hs_profile_release(&b);
}

static void test_build_mem(void **state)
{
	static char heap[8192];
	struct hs_target *t;
	struct hs_profile p;

	(void)state;
	for (int i = 0; i < 10; i++)
		memcpy(heap + i * 64, "leaked-record-name", 19);
	assert_int_equal(hs_target_open_mem(&t), 0);
	hs_target_mem_add(t, 0x10000, heap, sizeof(heap), HS_PERM_R | HS_PERM_W, "[heap]");
	hs_classify(t);
	assert_int_equal(hs_profile_build(t, NULL, &p), 0);
	/* No glibc in a buffer: the heap is an explained absence. */
	assert_true(p.heap_error[0] != '\0');
	assert_int_equal(p.nregions, 1);
	assert_int_equal(p.regions[0].cls, HS_CLASS_HEAP);
	assert_int_equal(p.nstrings, 1);
	assert_string_equal(p.strings[0].s, "leaked-record-name");
	assert_int_equal(p.strings[0].count, 10);
	assert_int_equal(p.strings_cut, 0);
	hs_profile_release(&p);
	hs_target_close(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_hostile),
		cmocka_unit_test(test_diff_groups),
		cmocka_unit_test(test_diff_group_figures),
		cmocka_unit_test(test_diff_factor_and_cut),
		cmocka_unit_test(test_build_mem),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
