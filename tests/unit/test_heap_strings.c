/*
 * Unit tests of the string-frequency analysis: the scanner on buffers, and
 * the driver on the mem backend (chunk and segment seams, gaps, jobs,
 * the estimated mode).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hs_heap.h"

/* ---- scanner ---- */

struct seen {
	hs_addr_t addr;
	char s[128];
	size_t stored;
	uint64_t len;
};

struct sink {
	struct seen v[64];
	size_t n;
};

static void collect(void *ud, hs_addr_t addr, const char *s, size_t stored,
		    uint64_t len)
{
	struct sink *k = ud;

	assert_true(k->n < HS_ARRAY_SIZE(k->v));
	assert_true(stored <= len);
	assert_true(stored < sizeof(k->v[0].s));
	k->v[k->n].addr = addr;
	memcpy(k->v[k->n].s, s, stored);
	k->v[k->n].s[stored] = '\0';
	k->v[k->n].stored = stored;
	k->v[k->n].len = len;
	k->n++;
}

static void scan_all(struct sink *k, enum hs_str_encoding enc, unsigned min,
		     unsigned max, hs_addr_t addr, const void *buf, size_t len)
{
	struct hs_str_scanner sc;

	memset(k, 0, sizeof(*k));
	hs_str_scanner_init(&sc, enc, min, max, collect, k);
	hs_str_scan(&sc, addr, buf, len);
	hs_str_scan_end(&sc);
	hs_str_scanner_release(&sc);
}

static void test_scan_empty(void **state)
{
	struct sink k;

	(void)state;
	scan_all(&k, HS_STR_ASCII, 4, 64, 0x1000, "", 0);
	assert_int_equal(k.n, 0);
	scan_all(&k, HS_STR_ASCII, 4, 64, 0x1000, "\0\1\2\377", 4);
	assert_int_equal(k.n, 0);
}

static void test_scan_all_printable(void **state)
{
	char buf[100];
	struct sink k;

	(void)state;
	memset(buf, 'x', sizeof(buf));
	buf[50] = '\t'; /* tab is printable, as in strings(1) */
	scan_all(&k, HS_STR_ASCII, 4, 64, 0x2000, buf, sizeof(buf));
	assert_int_equal(k.n, 1);
	assert_int_equal(k.v[0].addr, 0x2000);
	assert_int_equal(k.v[0].len, 100);
	assert_int_equal(k.v[0].stored, 64); /* kept: the first max_len */
	assert_memory_equal(k.v[0].s, buf, 64);
}

static void test_scan_min_len_edges(void **state)
{
	static const char buf[] = "\001abcde\001abcdef\001abcdefg\001";
	struct sink k;

	(void)state;
	scan_all(&k, HS_STR_ASCII, 6, 64, 0x100, buf, sizeof(buf) - 1);
	assert_int_equal(k.n, 2);
	assert_string_equal(k.v[0].s, "abcdef");
	assert_int_equal(k.v[0].addr, 0x100 + 7);
	assert_string_equal(k.v[1].s, "abcdefg");
	scan_all(&k, HS_STR_ASCII, 7, 64, 0x100, buf, sizeof(buf) - 1);
	assert_int_equal(k.n, 1);
	scan_all(&k, HS_STR_ASCII, 1, 64, 0x100, buf, sizeof(buf) - 1);
	assert_int_equal(k.n, 3);
}

static void test_scan_terminated_or_not(void **state)
{
	static const char nul[] = "hello world";   /* with its NUL */
	static const char bare[] = "hello world";  /* scanned without it */
	struct hs_str_scanner sc;
	struct sink k;

	(void)state;
	/* NUL-terminated: the run ends inside the piece. */
	memset(&k, 0, sizeof(k));
	hs_str_scanner_init(&sc, HS_STR_ASCII, 4, 64, collect, &k);
	hs_str_scan(&sc, 0x10, nul, sizeof(nul));
	assert_int_equal(k.n, 1);
	assert_false(hs_str_scan_in_run(&sc));
	hs_str_scan_end(&sc);
	/* Unterminated: open until the end of the range is declared. */
	hs_str_scan(&sc, 0x100, bare, sizeof(bare) - 1);
	assert_int_equal(k.n, 1);
	assert_true(hs_str_scan_in_run(&sc));
	hs_str_scan_end(&sc);
	assert_int_equal(k.n, 2);
	assert_string_equal(k.v[1].s, "hello world");
	assert_int_equal(k.v[1].addr, 0x100);
	hs_str_scanner_release(&sc);
}

/* Splitting the input anywhere gives the same runs as one piece. */
static void check_splits(enum hs_str_encoding enc, const char *buf, size_t len,
			 hs_addr_t addr)
{
	struct sink whole, part;

	scan_all(&whole, enc, 3, 8, addr, buf, len);
	assert_true(whole.n > 0);
	for (size_t cut1 = 0; cut1 <= len; cut1++) {
		for (size_t cut2 = cut1; cut2 <= len; cut2 += 3) {
			struct hs_str_scanner sc;

			memset(&part, 0, sizeof(part));
			hs_str_scanner_init(&sc, enc, 3, 8, collect, &part);
			hs_str_scan(&sc, addr, buf, cut1);
			hs_str_scan(&sc, addr + cut1, buf + cut1, cut2 - cut1);
			hs_str_scan(&sc, addr + cut2, buf + cut2, len - cut2);
			hs_str_scan_end(&sc);
			hs_str_scanner_release(&sc);
			assert_int_equal(part.n, whole.n);
			for (size_t i = 0; i < whole.n; i++) {
				assert_int_equal(part.v[i].addr, whole.v[i].addr);
				assert_int_equal(part.v[i].len, whole.v[i].len);
				assert_string_equal(part.v[i].s, whole.v[i].s);
			}
		}
	}
}

static void test_scan_splits(void **state)
{
	static const char a[] = "ab\001abc\002abcdefghijkl\377xyz1234\000\000tail!";
	static const char w[] = "h\0e\0l\0l\0o\0\0\0x\0y\0\1\0w\0o\0r\0l\0d\0s\0";

	(void)state;
	check_splits(HS_STR_ASCII, a, sizeof(a) - 1, 0x5000);
	check_splits(HS_STR_UTF16LE, w, sizeof(w) - 1, 0x5000);
}

static void test_scan_gap_ends_run(void **state)
{
	struct hs_str_scanner sc;
	struct sink k;

	(void)state;
	memset(&k, 0, sizeof(k));
	hs_str_scanner_init(&sc, HS_STR_ASCII, 4, 64, collect, &k);
	hs_str_scan(&sc, 0x1000, "abcdef", 6);
	hs_str_scan(&sc, 0x2000, "ghijkl", 6); /* not at 0x1006: a gap */
	hs_str_scan_end(&sc);
	assert_int_equal(k.n, 2);
	assert_string_equal(k.v[0].s, "abcdef");
	assert_string_equal(k.v[1].s, "ghijkl");
	assert_int_equal(k.v[1].addr, 0x2000);
	hs_str_scanner_release(&sc);
}

static void test_scan_utf16(void **state)
{
	static const char w[] = "\1\0h\0e\0l\0l\0o\0!\0\0\0" "a\0b\0";
	struct sink k;

	(void)state;
	scan_all(&k, HS_STR_UTF16LE, 4, 64, 0x3000, w, sizeof(w) - 1);
	assert_int_equal(k.n, 1);
	assert_string_equal(k.v[0].s, "hello!");
	assert_int_equal(k.v[0].addr, 0x3002);
	assert_int_equal(k.v[0].len, 6);
	/* Shifted by one byte, the characters sit at odd addresses: none. */
	scan_all(&k, HS_STR_UTF16LE, 4, 64, 0x3000, w + 1, sizeof(w) - 2);
	assert_int_equal(k.n, 0);
	/* ASCII mode does not see UTF-16 text. */
	scan_all(&k, HS_STR_ASCII, 2, 64, 0x3000, w, sizeof(w) - 1);
	assert_int_equal(k.n, 0);
}

static void test_scan_skip(void **state)
{
	struct hs_str_scanner sc;
	struct sink k;

	(void)state;
	memset(&k, 0, sizeof(k));
	hs_str_scanner_init(&sc, HS_STR_ASCII, 4, 64, collect, &k);
	sc.skip = true;
	hs_str_scan(&sc, 0x1000, "tailof\0next!", 12);
	hs_str_scan_end(&sc);
	assert_int_equal(k.n, 1);
	assert_string_equal(k.v[0].s, "next!");
	hs_str_scanner_release(&sc);
}

/* ---- driver on the mem backend ---- */

static uint64_t rng = 88172645463325252ull;

static uint64_t xrand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* Binary noise that never forms a printable run. */
static void noise(unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(0x80 + xrand() % 0x80);
}

static void put(unsigned char *buf, size_t off, const char *s)
{
	buf[off - 1] = 0;
	memcpy(buf + off, s, strlen(s));
	buf[off + strlen(s)] = 0;
}

static bool near(size_t off, size_t at)
{
	return off + 64 > at && off < at + 64;
}

static const struct hs_str_item *find_item(const struct hs_str_result *res,
					   const char *s)
{
	for (size_t i = 0; i < res->ntop; i++)
		if (!strcmp(res->top[i].s, s))
			return &res->top[i];
	return NULL;
}

/* find_item() that fails the test when the string is missing. */
static const struct hs_str_item *get_item(const struct hs_str_result *res,
					  const char *s)
{
	const struct hs_str_item *it = find_item(res, s);

	if (!it) {
		print_error("string \"%s\" not in the result\n", s);
		fail();
		abort();
	}
	return it;
}

static void assert_same_result(const struct hs_str_result *a,
			       const struct hs_str_result *b)
{
	assert_int_equal(a->exact, b->exact);
	assert_int_equal(a->err_bound, b->err_bound);
	assert_int_equal(a->occurrences, b->occurrences);
	assert_int_equal(a->distinct, b->distinct);
	assert_int_equal(a->bytes_scanned, b->bytes_scanned);
	assert_int_equal(a->ntop, b->ntop);
	for (size_t i = 0; i < a->ntop; i++) {
		const struct hs_str_item *x = &a->top[i], *y = &b->top[i];

		assert_string_equal(x->s, y->s);
		assert_int_equal(x->count, y->count);
		assert_int_equal(x->err, y->err);
		assert_int_equal(x->bytes, y->bytes);
		assert_int_equal(x->nsamples, y->nsamples);
		assert_memory_equal(x->cls_count, y->cls_count, sizeof(x->cls_count));
		assert_memory_equal(x->samples, y->samples,
				    x->nsamples * sizeof(x->samples[0]));
	}
}

#define HEAP_BASE 0x10000000ull
#define ANON_BASE 0x20000000ull
#define MEM_SZ (1u << 20)

static void test_driver_exact_seams(void **state)
{
	unsigned char *heap = malloc(MEM_SZ), *anon = malloc(MEM_SZ);
	struct hs_target *t;
	struct hs_str_ranges r = HS_STR_RANGES_INIT;
	struct hs_str_opts o;
	struct hs_str_result base, res;
	const struct hs_str_item *it;
	unsigned n_alpha = 0, n_beta = 0;

	(void)state;
	noise(heap, MEM_SZ);
	noise(anon, MEM_SZ);
	/* Strings straddling 4K chunk seams and 128K segment seams (chunk 4K:
	 * segments of 32 chunks). */
	put(heap, 0x20000 - 7, "straddle-segment-seam");
	put(heap, 0x3000 - 5, "straddle-chunk-seam");
	put(anon, 0x40000 - 3, "straddle-segment-seam");
	/* A run that spans a whole segment (owned by the previous one). */
	anon[0x60000 - 11] = 0;
	memset(anon + 0x60000 - 10, 'L', 0x20000 + 20);
	anon[0x80000 + 10] = 0;
	/* At the very end of a region, no terminator. */
	heap[MEM_SZ - 12] = 0;
	memcpy(heap + MEM_SZ - 11, "end-of-map!", 11);
	/* Spread copies that stay clear of the above. */
	for (size_t off = 100; off + 64 < MEM_SZ; off += 997 + xrand() % 3000) {
		if (near(off, 0x20000 - 7) || near(off, 0x3000 - 5) ||
		    off + 64 > MEM_SZ - 12)
			continue;
		put(heap, off, "alpha-marker-string");
		n_alpha++;
	}
	for (size_t off = 50; off + 64 < MEM_SZ; off += 4093) {
		if (near(off, 0x40000 - 3) ||
		    (off + 64 > 0x60000 - 11 && off < 0x80000 + 11))
			continue;
		put(anon, off, "beta-marker");
		n_beta++;
	}

	assert_int_equal(hs_target_open_mem(&t), 0);
	hs_target_mem_add(t, HEAP_BASE, heap, MEM_SZ, HS_PERM_R | HS_PERM_W, "[heap]");
	hs_target_mem_add(t, ANON_BASE, anon, MEM_SZ, HS_PERM_R | HS_PERM_W, NULL);
	hs_classify(t);
	hs_str_ranges_from_maps(&r, &t->maps, HS_STR_CLASSES_DEFAULT);
	assert_int_equal(r.n, 2);

	hs_str_opts_init(&o);
	o.top = 50;
	o.jobs = 1;
	o.chunk = 1u << 20;
	assert_int_equal(hs_strings_scan(t, &r, &o, &base), 0);
	assert_true(base.exact);
	assert_int_equal(base.bytes_scanned, 2 * MEM_SZ);
	it = get_item(&base, "alpha-marker-string");
	assert_int_equal(it->count, n_alpha);
	assert_int_equal(it->err, 0);
	assert_int_equal(it->cls_count[HS_CLASS_HEAP], n_alpha);
	assert_int_equal(it->bytes, (uint64_t)n_alpha * 19);
	assert_int_equal(it->nsamples, HS_STR_SAMPLES);
	assert_int_equal(it->samples[0], HEAP_BASE + 100);
	it = get_item(&base, "beta-marker");
	assert_int_equal(it->count, n_beta);
	assert_int_equal(it->cls_count[HS_CLASS_ANON], n_beta);
	it = get_item(&base, "straddle-segment-seam");
	assert_int_equal(it->count, 2);
	assert_int_equal(it->cls_count[HS_CLASS_HEAP], 1);
	assert_int_equal(it->cls_count[HS_CLASS_ANON], 1);
	assert_int_equal(it->samples[0], HEAP_BASE + 0x20000 - 7);
	it = get_item(&base, "straddle-chunk-seam");
	assert_int_equal(it->count, 1);
	it = get_item(&base, "end-of-map!");
	assert_int_equal(it->count, 1);
	assert_int_equal(base.occurrences, n_alpha + n_beta + 5);

	/* Small chunks (seams everywhere), both job counts: same answer. */
	for (unsigned jobs = 1; jobs <= 3; jobs++) {
		for (size_t chunk = 4096; chunk <= (1u << 20); chunk <<= 4) {
			o.jobs = jobs;
			o.chunk = chunk;
			assert_int_equal(hs_strings_scan(t, &r, &o, &res), 0);
			assert_same_result(&base, &res);
			it = get_item(&res, "straddle-chunk-seam");
			hs_str_result_release(&res);
		}
	}
	hs_str_result_release(&base);
	hs_str_ranges_release(&r);
	hs_target_close(t);
	free(heap);
	free(anon);
}

/*
 * Repeated strings whose sightings change place: a long and a short key,
 * each written many times across in-use and free intervals and in two
 * region classes.  The hot cache holds their sightings in its slot and
 * adds them at every change of place: the per-class and per-location
 * counts and the lowest samples must be exactly what was written, with
 * 1 and 2 jobs, the chunk cutting the runs of sightings anywhere.
 */
static void test_driver_hot_places(void **state)
{
	static const char *const words[] = { "a-hot-key-longer-than-8", "hot4" };
	enum { NW = 2 };
	unsigned char *heap = malloc(MEM_SZ), *anon = malloc(MEM_SZ);
	uint64_t cls[NW][2] = { { 0 } }, loc[NW][HS_STR_LOC_N] = { { 0 } };
	hs_addr_t low[NW][HS_STR_SAMPLES];
	unsigned nlow[NW] = { 0 };
	struct hs_target *t;
	struct hs_str_ranges r = HS_STR_RANGES_INIT;
	struct hs_str_where w = HS_STR_WHERE_INIT;
	struct hs_str_result res;
	struct hs_str_opts o;

	(void)state;
	noise(heap, MEM_SZ);
	noise(anon, MEM_SZ);
	/* In-use 0x300 bytes, then free 0x100, over the heap. */
	for (hs_addr_t a = HEAP_BASE; a < HEAP_BASE + MEM_SZ; a += 0x400) {
		hs_str_where_add(&w, a, a + 0x300, HS_STR_LOC_INUSE);
		hs_str_where_add(&w, a + 0x300, a + 0x400, HS_STR_LOC_FREE);
	}
	hs_str_where_finish(&w);
	for (unsigned m = 0; m < 2; m++) {
		unsigned char *buf = m ? anon : heap;
		hs_addr_t base = m ? ANON_BASE : HEAP_BASE;

		for (size_t off = 16; off + 40 < MEM_SZ; off += 40 + xrand() % 24) {
			unsigned k = (unsigned)(xrand() % NW);
			hs_addr_t a = base + off;
			unsigned l = m ? HS_STR_LOC_OUTSIDE :
				     ((a - HEAP_BASE) % 0x400 < 0x300 ? HS_STR_LOC_INUSE
								     : HS_STR_LOC_FREE);

			put(buf, off, words[k]);
			cls[k][m]++;
			loc[k][l]++;
			if (nlow[k] < HS_STR_SAMPLES)
				low[k][nlow[k]++] = a;	/* heap first, rising */
		}
	}
	assert_int_equal(hs_target_open_mem(&t), 0);
	hs_target_mem_add(t, HEAP_BASE, heap, MEM_SZ, HS_PERM_R | HS_PERM_W, "[heap]");
	hs_target_mem_add(t, ANON_BASE, anon, MEM_SZ, HS_PERM_R | HS_PERM_W, NULL);
	hs_classify(t);
	hs_str_ranges_from_maps(&r, &t->maps, HS_STR_CLASSES_DEFAULT);
	hs_str_opts_init(&o);
	o.min_len = 4;
	o.where = &w;
	for (unsigned jobs = 1; jobs <= 2; jobs++) {
		for (size_t chunk = 4096; chunk <= 65536; chunk *= 16) {
			o.jobs = jobs;
			o.chunk = chunk;
			assert_int_equal(hs_strings_scan(t, &r, &o, &res), 0);
			assert_true(res.exact);
			for (unsigned k = 0; k < NW; k++) {
				const struct hs_str_item *it = get_item(&res, words[k]);

				assert_int_equal(it->count, cls[k][0] + cls[k][1]);
				assert_int_equal(it->cls_count[HS_CLASS_HEAP], cls[k][0]);
				assert_int_equal(it->cls_count[HS_CLASS_ANON], cls[k][1]);
				assert_memory_equal(it->loc_count, loc[k], sizeof(loc[k]));
				assert_int_equal(it->nsamples, HS_STR_SAMPLES);
				assert_memory_equal(it->samples, low[k], sizeof(low[k]));
			}
			hs_str_result_release(&res);
		}
	}
	hs_str_where_release(&w);
	hs_str_ranges_release(&r);
	hs_target_close(t);
	free(heap);
	free(anon);
}

/*
 * Several thousand distinct strings, each in several segments, so every
 * worker's table holds many of the same keys: the join of 2-4 tables
 * (and the merge past JOIN_MAX) must give the single table's answer, per
 * place and sample too, whatever --top and the ranking.
 */
static void test_driver_jobs_join(void **state)
{
	const size_t sz = 2u << 20;
	unsigned char *heap = malloc(sz);
	struct hs_target *t;
	struct hs_str_ranges r = HS_STR_RANGES_INIT;
	struct hs_str_where w = HS_STR_WHERE_INIT;
	struct hs_str_result base, res;
	struct hs_str_opts o;
	uint64_t placed = 0, sum = 0;

	(void)state;
	noise(heap, sz);
	for (size_t off = 16; off + 64 < sz; off += 48 + xrand() % 32) {
		char s[64];
		unsigned id = xrand() % 3000;

		/* Short (inline) keys and long ones, and a few very common. */
		if (id < 5)
			snprintf(s, sizeof(s), "common-%u", id);
		else if (id & 1)
			snprintf(s, sizeof(s), "k%u", id);
		else
			snprintf(s, sizeof(s), "a-longer-key-number-%u-xyz", id);
		put(heap, off, s);
		placed++;
	}
	for (hs_addr_t a = HEAP_BASE; a < HEAP_BASE + sz; a += 0x2000) {
		hs_str_where_add(&w, a, a + 0x1000, HS_STR_LOC_INUSE);
		hs_str_where_add(&w, a + 0x1000, a + 0x1800, HS_STR_LOC_FREE);
	}
	hs_str_where_finish(&w);
	assert_int_equal(hs_target_open_mem(&t), 0);
	hs_target_mem_add(t, HEAP_BASE, heap, sz, HS_PERM_R | HS_PERM_W, "[heap]");
	hs_classify(t);
	hs_str_ranges_from_maps(&r, &t->maps, HS_STR_CLASSES_DEFAULT);
	hs_str_opts_init(&o);
	o.min_len = 2;
	o.chunk = 4096;
	o.where = &w;
	for (unsigned by = 0; by < 2; by++) {
		for (unsigned top = 7; top <= 7000; top *= 1000) {
			o.by = by ? HS_STR_BY_BYTES : HS_STR_BY_COUNT;
			o.top = top;
			o.jobs = 1;
			assert_int_equal(hs_strings_scan(t, &r, &o, &base), 0);
			assert_true(base.exact);
			assert_int_equal(base.occurrences, placed);
			if (top > base.distinct) {
				assert_int_equal(base.ntop, base.distinct);
				sum = 0;
				for (size_t i = 0; i < base.ntop; i++)
					sum += base.top[i].count;
				assert_int_equal(sum, placed);
			}
			for (unsigned jobs = 2; jobs <= 6; jobs++) {
				o.jobs = jobs;
				assert_int_equal(hs_strings_scan(t, &r, &o, &res), 0);
				assert_same_result(&base, &res);
				for (size_t i = 0; i < base.ntop; i++)
					assert_memory_equal(base.top[i].loc_count, res.top[i].loc_count,
							    sizeof(base.top[i].loc_count));
				hs_str_result_release(&res);
			}
			hs_str_result_release(&base);
		}
	}
	hs_str_where_release(&w);
	hs_str_ranges_release(&r);
	hs_target_close(t);
	free(heap);
}

static void test_driver_gap(void **state)
{
	static unsigned char a[8192], b[8192];
	struct hs_target *t;
	struct hs_str_ranges r = HS_STR_RANGES_INIT;
	struct hs_str_result res;
	struct hs_str_opts o;

	(void)state;
	noise(a, sizeof(a));
	noise(b, sizeof(b));
	memcpy(a + sizeof(a) - 6, "before", 6);  /* runs into the hole */
	memcpy(b, "after!", 6);
	b[6] = 0;
	assert_int_equal(hs_target_open_mem(&t), 0);
	hs_target_mem_add(t, 0x100000, a, sizeof(a), 0, NULL);
	hs_target_mem_add(t, 0x100000 + 3 * 4096, b, sizeof(b), 0, NULL);
	hs_str_ranges_add(&r, 0x100000, 0x100000 + 5 * 4096, HS_CLASS_HEAP);
	hs_str_opts_init(&o);
	o.chunk = 4096;
	o.jobs = 1;
	assert_int_equal(hs_strings_scan(t, &r, &o, &res), 0);
	assert_int_equal(res.unreadable, 4096);
	assert_int_equal(res.bytes_scanned, 4 * 4096);
	assert_int_equal(res.occurrences, 2);
	assert_non_null(find_item(&res, "before"));
	assert_non_null(find_item(&res, "after!"));
	assert_true(t->state & HS_TSTATE_PARTIAL);
	hs_str_result_release(&res);
	hs_str_ranges_release(&r);
	hs_target_close(t);
}

/*
 * Adjacent mappings are one stream: a string across the boundary of two
 * ranges that touch is one string, counted once, in the class where it
 * starts, whatever --chunk and --jobs cut; a gap still ends a string.
 */
static void test_driver_adjacent_ranges(void **state)
{
	static unsigned char a[8192], b[8192], c[8192];
	const char *cross = "hs-cross-boundary-string";
	struct hs_target *t;
	struct hs_str_ranges r = HS_STR_RANGES_INIT;
	struct hs_str_result res;
	struct hs_str_opts o;
	size_t cut = 10, n = strlen(cross);

	(void)state;
	noise(a, sizeof(a));
	noise(b, sizeof(b));
	noise(c, sizeof(c));
	a[sizeof(a) - cut - 1] = 0;
	memcpy(a + sizeof(a) - cut, cross, cut);
	memcpy(b, cross + cut, n - cut);
	b[n - cut] = 0;
	/* b into c (another class): counted in b's class */
	b[sizeof(b) - 5 - 1] = 0;
	memcpy(b + sizeof(b) - 5, cross, 5);
	memcpy(c, cross + 5, n - 5);
	c[n - 5] = 0;
	assert_int_equal(hs_target_open_mem(&t), 0);
	hs_target_mem_add(t, 0x100000, a, sizeof(a), 0, NULL);
	hs_target_mem_add(t, 0x100000 + sizeof(a), b, sizeof(b), 0, NULL);
	hs_target_mem_add(t, 0x100000 + sizeof(a) + sizeof(b), c, sizeof(c), 0, NULL);
	hs_str_ranges_add(&r, 0x100000, 0x100000 + sizeof(a), HS_CLASS_HEAP);
	hs_str_ranges_add(&r, 0x100000 + sizeof(a), 0x100000 + sizeof(a) + sizeof(b),
			  HS_CLASS_HEAP);
	hs_str_ranges_add(&r, 0x100000 + sizeof(a) + sizeof(b),
			  0x100000 + sizeof(a) + sizeof(b) + sizeof(c), HS_CLASS_ANON);
	for (unsigned jobs = 1; jobs <= 2; jobs++)
		for (size_t chunk = 4096; chunk <= 8192; chunk *= 2) {
			const struct hs_str_item *it;

			hs_str_opts_init(&o);
			o.chunk = chunk;
			o.jobs = jobs;
			o.min_len = 4;
			assert_int_equal(hs_strings_scan(t, &r, &o, &res), 0);
			assert_true(res.exact);
			it = get_item(&res, cross);
			assert_int_equal(it->count, 2);
			assert_int_equal(it->cls_count[HS_CLASS_HEAP], 2);
			assert_int_equal(it->samples[0], 0x100000 + sizeof(a) - cut);
			assert_int_equal(it->samples[1], 0x100000 + sizeof(a) + sizeof(b) - 5);
			/* no fragment of it */
			for (size_t i = 0; i < res.ntop; i++)
				assert_null(strstr(cross + 1, res.top[i].s));
			hs_str_result_release(&res);
		}
	hs_str_ranges_release(&r);
	hs_target_close(t);
}

static void test_driver_bad_ranges(void **state)
{
	static unsigned char a[4096];
	struct hs_target *t;
	struct hs_str_ranges r = HS_STR_RANGES_INIT;
	struct hs_str_result res;

	(void)state;
	assert_int_equal(hs_target_open_mem(&t), 0);
	hs_target_mem_add(t, 0x100000, a, sizeof(a), 0, NULL);
	hs_str_ranges_add(&r, 0x200000, 0x201000, HS_CLASS_HEAP);
	hs_str_ranges_add(&r, 0x100000, 0x101000, HS_CLASS_HEAP);
	assert_int_equal(hs_strings_scan(t, &r, NULL, &res), -EINVAL);
	hs_str_result_release(&res);
	hs_str_ranges_release(&r);
	hs_target_close(t);
}

static void test_driver_estimated(void **state)
{
	const size_t sz = 16u << 20;
	unsigned char *buf = malloc(sz);
	struct hs_target *t;
	struct hs_str_ranges r = HS_STR_RANGES_INIT;
	struct hs_str_result a, b;
	struct hs_str_opts o;
	const struct hs_str_item *hot, *warm;
	unsigned n_hot = 0, n_warm = 0, n_all = 0;
	size_t off = 16;

	(void)state;
	memset(buf, 0, sz);
	/* Mostly distinct strings, plus two recurring ones. */
	while (off + 40 < sz) {
		char tmp[32];
		unsigned k = (unsigned)(xrand() % 8);

		if (k == 0) {
			put(buf, off, "hot-recurring-string");
			n_hot++;
		} else if (k == 1 && n_warm < 20000) {
			put(buf, off, "warm-string");
			n_warm++;
		} else {
			snprintf(tmp, sizeof(tmp), "id-%llx",
				 (unsigned long long)(xrand() & 0xffffffffffull));
			put(buf, off, tmp);
		}
		n_all++;
		off += 24;
	}
	assert_int_equal(hs_target_open_mem(&t), 0);
	hs_target_mem_add(t, 0x40000000, buf, sz, 0, NULL);
	hs_str_ranges_add(&r, 0x40000000, 0x40000000 + sz, HS_CLASS_ANON);
	hs_str_opts_init(&o);
	o.max_mem = 4u << 20;
	o.chunk = 64u << 10;
	o.jobs = 1;
	o.top = 10;
	assert_int_equal(hs_strings_scan(t, &r, &o, &a), 0);
	assert_false(a.exact);
	assert_true(a.err_bound > 0);
	assert_int_equal(a.occurrences, n_all);
	assert_false(a.distinct_exact);
	/* HyperLogLog: within 10% of the truth (n_all - repeats). */
	{
		double truth = (double)(n_all - n_hot - n_warm + 2);
		double est = (double)a.distinct;
		assert_true(est > truth * 0.9 && est < truth * 1.1);
	}
	assert_true(a.mem_peak <= o.max_mem);
	hot = get_item(&a, "hot-recurring-string");
	assert_string_equal(a.top[0].s, "hot-recurring-string");
	assert_true(hot->count - hot->err <= n_hot && n_hot <= hot->count);
	assert_true(hot->err <= a.err_bound);
	warm = get_item(&a, "warm-string");
	assert_true(warm->count - warm->err <= n_warm && n_warm <= warm->count);

	o.jobs = 2;
	assert_int_equal(hs_strings_scan(t, &r, &o, &b), 0);
	assert_same_result(&a, &b);
	hs_str_result_release(&b);

	/* With room, the same input is counted exactly. */
	o.max_mem = 256u << 20;
	assert_int_equal(hs_strings_scan(t, &r, &o, &b), 0);
	assert_true(b.exact);
	hot = get_item(&b, "hot-recurring-string");
	assert_int_equal(hot->count, n_hot);
	assert_int_equal(hot->err, 0);
	hs_str_result_release(&b);

	hs_str_result_release(&a);
	hs_str_ranges_release(&r);
	hs_target_close(t);
	free(buf);
}

static void test_driver_by_bytes(void **state)
{
	static unsigned char buf[8192];
	struct hs_target *t;
	struct hs_str_ranges r = HS_STR_RANGES_INIT;
	struct hs_str_result res;
	struct hs_str_opts o;
	char big[200];

	(void)state;
	memset(buf, 0, sizeof(buf));
	memset(big, 'B', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	put(buf, 1, big);
	for (int i = 0; i < 5; i++)
		put(buf, 1000 + 20 * (size_t)i, "short1");
	assert_int_equal(hs_target_open_mem(&t), 0);
	hs_target_mem_add(t, 0x1000000, buf, sizeof(buf), 0, NULL);
	hs_str_ranges_add(&r, 0x1000000, 0x1000000 + sizeof(buf), HS_CLASS_HEAP);
	hs_str_opts_init(&o);
	o.jobs = 1;
	assert_int_equal(hs_strings_scan(t, &r, &o, &res), 0);
	assert_string_equal(res.top[0].s, "short1");
	hs_str_result_release(&res);
	o.by = HS_STR_BY_BYTES;
	o.max_len = 100;
	assert_int_equal(hs_strings_scan(t, &r, &o, &res), 0);
	assert_int_equal(res.top[0].len, 199);
	assert_int_equal(res.top[0].stored, 100);
	assert_true(res.top[0].truncated);
	assert_int_equal(res.top[0].bytes, 199);
	hs_str_result_release(&res);
	hs_str_ranges_release(&r);
	hs_target_close(t);
}

/*
 * Look-alikes repeated many times, interleaved: the same first 8 bytes
 * and length but another tail, the same key but another length (max_len
 * cuts them), short keys differing in one byte.  The hot cache must tell
 * each apart: counts, samples and classes exactly what was written, with
 * 1 and 2 jobs and in estimated mode (a prune empties the cache).
 */
static void test_driver_lookalikes(void **state)
{
	static const char *const words[] = {
		"prefix00-AAAA", "prefix00-AAAB", "prefix00-BAAA", "prefix00-AAAA-x",
		"prefix00", "prefix01", "abcd", "abce", "long-key-cut-by-max-len-1",
		"long-key-cut-by-max-len-2", "long-key-cut-by-max-len-22",
	};
	enum { NW = sizeof(words) / sizeof(words[0]) };
	unsigned char *buf = malloc(MEM_SZ);
	uint64_t want[NW] = { 0 };
	hs_addr_t first[NW];
	struct hs_target *t;
	struct hs_str_ranges r = HS_STR_RANGES_INIT;
	struct hs_str_result res, res2;
	struct hs_str_opts o;
	size_t off = 16;

	(void)state;
	memset(buf, 0, MEM_SZ);
	for (unsigned i = 0; i < NW; i++)
		first[i] = 0;
	while (off + 40 < MEM_SZ) {
		unsigned k = (unsigned)(xrand() % NW);

		put(buf, off, words[k]);
		if (!want[k])
			first[k] = HEAP_BASE + off;
		want[k]++;
		off += strlen(words[k]) + 1 + xrand() % 4;
	}
	assert_int_equal(hs_target_open_mem(&t), 0);
	hs_target_mem_add(t, HEAP_BASE, buf, MEM_SZ, 0, NULL);
	hs_str_ranges_add(&r, HEAP_BASE, HEAP_BASE + MEM_SZ, HS_CLASS_HEAP);
	hs_str_opts_init(&o);
	o.min_len = 4;
	o.max_len = 24; /* the two long keys share their first 24 bytes... */
	o.top = 50;
	o.chunk = 65536;
	for (unsigned jobs = 1; jobs <= 2; jobs++) {
		o.jobs = jobs;
		assert_int_equal(hs_strings_scan(t, &r, &o, &res), 0);
		assert_true(res.exact);
		/* ...and differ in length, except -1 and -2 (one key, two
		 * strings of the same length: counted together). */
		assert_int_equal(res.distinct, NW - 1);
		for (unsigned i = 0; i < NW; i++) {
			const struct hs_str_item *it;
			char key[32];
			uint64_t n = want[i];

			snprintf(key, sizeof(key), "%.24s", words[i]);
			it = NULL;
			for (size_t j = 0; j < res.ntop && !it; j++)
				if (!strcmp(res.top[j].s, key) &&
				    res.top[j].len == strlen(words[i]))
					it = &res.top[j];
			assert_non_null(it);
			if (i == 8 || i == 9)
				n = want[8] + want[9];
			assert_int_equal(it->count, n);
			assert_int_equal(it->cls_count[HS_CLASS_HEAP], n);
			if (i < 8)
				assert_int_equal(it->samples[0], first[i]);
		}
		hs_str_result_release(&res);
	}
	/* Estimated: several prunes; 1 and 2 jobs agree. */
	o.max_mem = HS_STR_MAX_MEM_MIN;
	o.chunk = 4096;
	o.jobs = 1;
	assert_int_equal(hs_strings_scan(t, &r, &o, &res), 0);
	o.jobs = 2;
	assert_int_equal(hs_strings_scan(t, &r, &o, &res2), 0);
	assert_same_result(&res, &res2);
	for (size_t i = 0; i < res.ntop; i++)
		for (unsigned k = 0; k < NW; k++)
			if (i != 8 && i != 9 && !strcmp(res.top[i].s, words[k]))
				assert_true(res.top[i].count - res.top[i].err <= want[k] &&
					    want[k] <= res.top[i].count);
	hs_str_result_release(&res);
	hs_str_result_release(&res2);
	hs_str_ranges_release(&r);
	hs_target_close(t);
	free(buf);
}

/* ---- the block scanner against a byte-at-a-time reference ---- */

struct ref_run {
	hs_addr_t addr;
	uint64_t len;
	char head[16];
	size_t stored;
};

struct ref_sink {
	struct ref_run *v;
	size_t n, cap;
};

static void ref_collect(void *ud, hs_addr_t addr, const char *s, size_t stored,
			uint64_t len)
{
	struct ref_sink *k = ud;

	assert_true(k->n < k->cap);
	k->v[k->n].addr = addr;
	k->v[k->n].len = len;
	k->v[k->n].stored = stored;
	memcpy(k->v[k->n].head, s, stored < 16 ? stored : 16);
	k->n++;
}

static bool ref_printable(unsigned char c)
{
	return (c >= 0x20 && c < 0x7f) || c == '\t';
}

/* Random buffers, mostly printable in long and short stretches, fed in
 * random pieces: the runs must be those a byte loop finds. */
static void test_scan_blocks_vs_reference(void **state)
{
	enum { N = 5000 };
	unsigned char *buf = malloc(N);
	struct ref_run *want = calloc(N, sizeof(*want));
	struct ref_sink got = { calloc(N, sizeof(struct ref_run)), 0, N };

	(void)state;
	for (int round = 0; round < 300; round++) {
		/* Some rounds with min-len around and past the scanner's 64-byte
		 * block (its look-ahead filter covers at most 64). */
		unsigned min = round % 5 == 4 ? 56 + (unsigned)(xrand() % 24)
					     : 1 + (unsigned)(xrand() % 9);
		unsigned max = min + (unsigned)(xrand() % 12);
		size_t nw = 0, i = 0;
		struct hs_str_scanner sc;

		while (i < N) {
			size_t n = 1 + xrand() % (round % 3 ? 20 : 200);
			bool pr = xrand() % 2;

			if (round % 5 == 4 && pr)
				n = 40 + xrand() % 60;

			for (size_t k = 0; k < n && i < N; k++, i++)
				buf[i] = pr ? (unsigned char)(0x20 + xrand() % 0x5f)
					    : (unsigned char)(xrand() % 3 ? 0 : 0x80 + xrand() % 0x80);
		}
		for (size_t a = 0; a < N;) {
			size_t b = a;

			while (b < N && ref_printable(buf[b]))
				b++;
			if (b - a >= min) {
				want[nw].addr = 0x7000 + a;
				want[nw].len = b - a;
				want[nw].stored = b - a < max ? b - a : max;
				memcpy(want[nw].head, buf + a, want[nw].stored < 16 ? want[nw].stored : 16);
				nw++;
			}
			a = b == a ? a + 1 : b;
		}
		got.n = 0;
		hs_str_scanner_init(&sc, HS_STR_ASCII, min, max, ref_collect, &got);
		for (size_t a = 0; a < N;) {
			size_t n = round % 2 ? 1 + xrand() % 130 : N;

			if (n > N - a)
				n = N - a;
			hs_str_scan(&sc, 0x7000 + a, buf + a, n);
			a += n;
		}
		hs_str_scan_end(&sc);
		hs_str_scanner_release(&sc);
		assert_int_equal(got.n, nw);
		for (size_t k = 0; k < nw; k++) {
			assert_int_equal(got.v[k].addr, want[k].addr);
			assert_int_equal(got.v[k].len, want[k].len);
			assert_int_equal(got.v[k].stored, want[k].stored);
			assert_memory_equal(got.v[k].head, want[k].head,
					    want[k].stored < 16 ? want[k].stored : 16);
		}
	}
	free(got.v);
	free(want);
	free(buf);
}

/* ---- where strings live ---- */

static void assert_sane_where(const struct hs_str_where *w)
{
	size_t nfree = 0;

	assert_true(w->finished);
	for (size_t i = 0; i < w->n; i++) {
		assert_true(w->v[i].start < w->v[i].end);
		assert_true(w->v[i].loc == HS_STR_LOC_INUSE || w->v[i].loc == HS_STR_LOC_FREE);
		nfree += w->v[i].loc == HS_STR_LOC_FREE;
		if (i) {
			assert_true(w->v[i - 1].end <= w->v[i].start);
			/* coalesced */
			assert_false(w->v[i - 1].end == w->v[i].start &&
				     w->v[i - 1].loc == w->v[i].loc);
		}
	}
	assert_int_equal(nfree, w->nfree);
}

static void test_where_intervals(void **state)
{
	struct hs_str_where w = HS_STR_WHERE_INIT;

	(void)state;
	/* Out of order, adjacent pieces, an overlap (hostile metadata). */
	hs_str_where_add(&w, 0x3000, 0x3100, HS_STR_LOC_INUSE);
	hs_str_where_add(&w, 0x1000, 0x1100, HS_STR_LOC_INUSE);
	hs_str_where_add(&w, 0x1100, 0x1200, HS_STR_LOC_INUSE);
	hs_str_where_add(&w, 0x1200, 0x1300, HS_STR_LOC_FREE);
	hs_str_where_add(&w, 0x1300, 0x2000, HS_STR_LOC_INUSE);
	hs_str_where_add(&w, 0x1f00, 0x2100, HS_STR_LOC_FREE);
	hs_str_where_add(&w, 0x2100, 0x2000, HS_STR_LOC_FREE); /* empty: ignored */
	hs_str_where_finish(&w);
	assert_sane_where(&w);
	assert_int_equal(w.n, 5);
	assert_int_equal(hs_str_where_find(&w, 0xfff), HS_STR_LOC_OUTSIDE);
	assert_int_equal(hs_str_where_find(&w, 0x1000), HS_STR_LOC_INUSE);
	assert_int_equal(hs_str_where_find(&w, 0x11ff), HS_STR_LOC_INUSE);
	assert_int_equal(hs_str_where_find(&w, 0x1200), HS_STR_LOC_FREE);
	assert_int_equal(hs_str_where_find(&w, 0x12ff), HS_STR_LOC_FREE);
	assert_int_equal(hs_str_where_find(&w, 0x1300), HS_STR_LOC_INUSE);
	assert_int_equal(hs_str_where_find(&w, 0x1f80), HS_STR_LOC_INUSE); /* earlier wins */
	assert_int_equal(hs_str_where_find(&w, 0x2000), HS_STR_LOC_FREE);
	assert_int_equal(hs_str_where_find(&w, 0x2100), HS_STR_LOC_OUTSIDE);
	assert_int_equal(hs_str_where_find(&w, 0x3050), HS_STR_LOC_INUSE);
	assert_int_equal(hs_str_where_find(&w, 0x3100), HS_STR_LOC_OUTSIDE);
	assert_false(w.approximate);
	hs_str_where_release(&w);

	/* The cap: past it, free chunks count as in use, and say so. */
	w.max_free = 2;
	for (hs_addr_t a = 0x10000; a < 0x10000 + 10 * 0x200; a += 0x200) {
		hs_str_where_add(&w, a, a + 0x100, HS_STR_LOC_INUSE);
		hs_str_where_add(&w, a + 0x100, a + 0x200, HS_STR_LOC_FREE);
	}
	hs_str_where_finish(&w);
	assert_sane_where(&w);
	assert_true(w.approximate);
	assert_int_equal(w.nfree, 2);
	assert_int_equal(hs_str_where_find(&w, 0x10100), HS_STR_LOC_FREE);
	assert_int_equal(hs_str_where_find(&w, 0x10300), HS_STR_LOC_FREE);
	assert_int_equal(hs_str_where_find(&w, 0x10500), HS_STR_LOC_INUSE);
	hs_str_where_release(&w);
}

static void test_ranges_restrict(void **state)
{
	struct hs_str_where w = HS_STR_WHERE_INIT;
	struct hs_str_ranges in = HS_STR_RANGES_INIT, out = HS_STR_RANGES_INIT;

	(void)state;
	hs_str_where_add(&w, 0x1100, 0x1200, HS_STR_LOC_INUSE);
	hs_str_where_add(&w, 0x1200, 0x1300, HS_STR_LOC_FREE);
	hs_str_where_add(&w, 0x1300, 0x2800, HS_STR_LOC_INUSE); /* spans two ranges */
	hs_str_where_add(&w, 0x2900, 0x2a00, HS_STR_LOC_FREE);
	hs_str_where_finish(&w);
	hs_str_ranges_add(&in, 0x1000, 0x2000, HS_CLASS_HEAP);
	hs_str_ranges_add(&in, 0x2000, 0x3000, HS_CLASS_ANON);

	hs_str_ranges_restrict(&out, &in, &w, 1u << HS_STR_LOC_INUSE);
	assert_int_equal(out.n, 3);
	assert_int_equal(out.v[0].start, 0x1100);
	assert_int_equal(out.v[0].end, 0x1200);
	assert_int_equal(out.v[1].start, 0x1300);
	assert_int_equal(out.v[1].end, 0x2000);
	assert_int_equal(out.v[1].cls, HS_CLASS_HEAP);
	assert_int_equal(out.v[2].start, 0x2000);
	assert_int_equal(out.v[2].end, 0x2800);
	assert_int_equal(out.v[2].cls, HS_CLASS_ANON);
	hs_str_ranges_release(&out);

	hs_str_ranges_restrict(&out, &in, &w, 1u << HS_STR_LOC_FREE);
	assert_int_equal(out.n, 2);
	assert_int_equal(out.v[0].start, 0x1200);
	assert_int_equal(out.v[0].end, 0x1300);
	assert_int_equal(out.v[1].start, 0x2900);
	assert_int_equal(out.v[1].end, 0x2a00);
	hs_str_ranges_release(&out);

	hs_str_ranges_restrict(&out, &in, &w, 1u << HS_STR_LOC_OUTSIDE);
	assert_int_equal(out.n, 3);
	assert_int_equal(out.v[0].start, 0x1000);
	assert_int_equal(out.v[0].end, 0x1100);
	assert_int_equal(out.v[1].start, 0x2800);
	assert_int_equal(out.v[1].end, 0x2900);
	assert_int_equal(out.v[2].start, 0x2a00);
	assert_int_equal(out.v[2].end, 0x3000);
	hs_str_ranges_release(&out);

	/* Every location: the input again, coalesced only within a class. */
	hs_str_ranges_restrict(&out, &in, &w, 7);
	assert_int_equal(out.n, 2);
	assert_int_equal(out.v[0].start, 0x1000);
	assert_int_equal(out.v[0].end, 0x2000);
	assert_int_equal(out.v[1].start, 0x2000);
	assert_int_equal(out.v[1].end, 0x3000);
	hs_str_ranges_release(&out);
	hs_str_ranges_release(&in);
	hs_str_where_release(&w);
}

/*
 * Locations on the mem backend: a heap-like buffer of 64-byte "chunks",
 * every third one free, each holding one string; counts per location must
 * be exact, equal across --jobs and chunk sizes, and --chunks-style
 * restricted ranges must count only their own.
 */
static void test_driver_where(void **state)
{
	unsigned char *heap = calloc(1, MEM_SZ);
	struct hs_target *t;
	struct hs_str_where w = HS_STR_WHERE_INIT;
	struct hs_str_ranges r = HS_STR_RANGES_INIT, rr = HS_STR_RANGES_INIT;
	struct hs_str_opts o;
	struct hs_str_result base, res;
	const struct hs_str_item *it;
	unsigned n_live = 0, n_dead = 0, n_out = 0;
	hs_addr_t chunks_end = HEAP_BASE + MEM_SZ / 2;

	(void)state;
	for (hs_addr_t c = HEAP_BASE; c < chunks_end; c += 64) {
		size_t off = (size_t)(c - HEAP_BASE);
		bool free_chunk = (off / 64) % 3 == 0;

		hs_str_where_add(&w, c + 8, c + 64 + 8,
				 free_chunk ? HS_STR_LOC_FREE : HS_STR_LOC_INUSE);
		put(heap, off + 24, free_chunk ? "dead-string" : "live-string");
		*(free_chunk ? &n_dead : &n_live) += 1;
	}
	/* Past the chunks (like heap_info or a neighbour): outside. */
	for (size_t off = MEM_SZ / 2 + 100; off + 64 < MEM_SZ; off += 4000) {
		put(heap, off, "outside-string");
		n_out++;
	}
	hs_str_where_finish(&w);
	assert_int_equal(hs_target_open_mem(&t), 0);
	hs_target_mem_add(t, HEAP_BASE, heap, MEM_SZ, HS_PERM_R | HS_PERM_W, "[heap]");
	hs_str_ranges_add(&r, HEAP_BASE, HEAP_BASE + MEM_SZ, HS_CLASS_HEAP);

	hs_str_opts_init(&o);
	o.where = &w;
	o.jobs = 1;
	o.chunk = 4096;
	o.top = 10;
	assert_int_equal(hs_strings_scan(t, &r, &o, &base), 0);
	assert_true(base.exact);
	assert_int_equal(base.passes, 1);
	assert_true(base.where_known);
	it = get_item(&base, "live-string");
	assert_int_equal(it->count, n_live);
	assert_int_equal(it->loc_count[HS_STR_LOC_INUSE], n_live);
	assert_int_equal(it->loc_count[HS_STR_LOC_FREE], 0);
	it = get_item(&base, "dead-string");
	assert_int_equal(it->count, n_dead);
	assert_int_equal(it->loc_count[HS_STR_LOC_FREE], n_dead);
	it = get_item(&base, "outside-string");
	assert_int_equal(it->count, n_out);
	assert_int_equal(it->loc_count[HS_STR_LOC_OUTSIDE], n_out);
	assert_int_equal(it->cls_count[HS_CLASS_HEAP], n_out);

	for (unsigned jobs = 2; jobs <= 3; jobs++) {
		o.jobs = jobs;
		o.chunk = jobs == 2 ? 65536 : 4096;
		assert_int_equal(hs_strings_scan(t, &r, &o, &res), 0);
		assert_same_result(&base, &res);
		for (size_t i = 0; i < base.ntop; i++)
			assert_memory_equal(base.top[i].loc_count, res.top[i].loc_count,
					    sizeof(base.top[i].loc_count));
		hs_str_result_release(&res);
	}

	/* Only free chunks: thousands of small ranges. */
	hs_str_ranges_restrict(&rr, &r, &w, 1u << HS_STR_LOC_FREE);
	assert_int_equal(rr.n, n_dead);
	o.jobs = 2;
	assert_int_equal(hs_strings_scan(t, &rr, &o, &res), 0);
	assert_null(find_item(&res, "live-string"));
	assert_null(find_item(&res, "outside-string"));
	it = get_item(&res, "dead-string");
	assert_int_equal(it->count, n_dead);
	assert_int_equal(it->loc_count[HS_STR_LOC_FREE], n_dead);
	assert_int_equal(res.bytes_scanned, (uint64_t)n_dead * 64);
	hs_str_result_release(&res);
	hs_str_ranges_release(&rr);

	/* Without where, every location is unknown. */
	o.where = NULL;
	assert_int_equal(hs_strings_scan(t, &r, &o, &res), 0);
	assert_false(res.where_known);
	it = get_item(&res, "live-string");
	assert_int_equal(it->loc_count[HS_STR_LOC_UNKNOWN], n_live);
	hs_str_result_release(&res);

	/* An unfinished where is refused. */
	w.finished = false;
	o.where = &w;
	assert_int_equal(hs_strings_scan(t, &r, &o, &res), -EINVAL);

	hs_str_result_release(&base);
	hs_str_ranges_release(&r);
	hs_str_where_release(&w);
	hs_target_close(t);
	free(heap);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scan_empty),
		cmocka_unit_test(test_scan_all_printable),
		cmocka_unit_test(test_scan_min_len_edges),
		cmocka_unit_test(test_scan_terminated_or_not),
		cmocka_unit_test(test_scan_splits),
		cmocka_unit_test(test_scan_gap_ends_run),
		cmocka_unit_test(test_scan_utf16),
		cmocka_unit_test(test_scan_skip),
		cmocka_unit_test(test_driver_exact_seams),
		cmocka_unit_test(test_driver_gap),
		cmocka_unit_test(test_driver_adjacent_ranges),
		cmocka_unit_test(test_driver_bad_ranges),
		cmocka_unit_test(test_driver_estimated),
		cmocka_unit_test(test_driver_by_bytes),
		cmocka_unit_test(test_scan_blocks_vs_reference),
		cmocka_unit_test(test_driver_lookalikes),
		cmocka_unit_test(test_where_intervals),
		cmocka_unit_test(test_ranges_restrict),
		cmocka_unit_test(test_driver_where),
		cmocka_unit_test(test_driver_jobs_join),
		cmocka_unit_test(test_driver_hot_places),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
