/*
 * Unit tests of the glibc heap walker on synthetic heaps built in buffers
 * and served through the "mem" target: the layouts of 2.27, 2.31, 2.35 and
 * 2.39 (tcache counts char vs uint16, heap_info 0x20 vs 0x30, mangled vs
 * plain links), corrupt headers and cyclic free lists.
 *
 * The offsets below are written out independently of glibc-layouts.c
 * (from the struct definitions, doc/glibc-malloc.md), so a wrong table entry
 * fails here instead of being copied into the expectations.
 */
#include <elf.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "hs_heap.h"

struct tl {
	unsigned minor;
	unsigned ms_fastbins, ms_top, ms_bins, ms_next, ms_system_mem, ms_size;
	unsigned hi_size;
	unsigned mp_n_mmaps, mp_mmapped_mem, mp_sbrk_base, mp_tcache_bins, mp_size;
	unsigned tc_count_size, tc_entries, tc_chunk;
	bool safe;
	unsigned ms_attached;  /* malloc_state.attached_threads; 0: absent */
};

static const struct tl T27 = { 27, 0x10, 0x60, 0x70, 0x870, 0x888, 0x898, 0x20,
			       0x28, 0x38, 0x48, 0x50, 0x70, 1, 0x40, 0x250, false, 0 };
static const struct tl T31 = { 31, 0x10, 0x60, 0x70, 0x870, 0x888, 0x898, 0x20,
			       0x28, 0x38, 0x48, 0x50, 0x70, 2, 0x80, 0x290, false, 0 };
static const struct tl T35 = { 35, 0x10, 0x60, 0x70, 0x870, 0x888, 0x898, 0x30,
			       0x3c, 0x50, 0x60, 0x68, 0x88, 2, 0x80, 0x290, true, 0 };
static const struct tl T39 = { 39, 0x10, 0x60, 0x70, 0x870, 0x888, 0x898, 0x30,
			       0x3c, 0x50, 0x60, 0x68, 0x88, 2, 0x80, 0x290, true, 0 };
/*
 * No tcache.  2.12 (RHEL 6, PER_THREAD): malloc_state as 2.17; malloc_par
 * keeps `unsigned int pagesize` after no_dyn_threshold (0x34), so
 * mmapped_mem is at 0x40 and sbrk_base at 0x58 (size 0x60).  RHEL 7's
 * 2.17: upstream 2.17's malloc_par, and attached_threads (backport of
 * upstream bug 19048) at 0x878 before system_mem.
 */
static const struct tl T12 = { 12, 0x08, 0x58, 0x68, 0x868, 0x878, 0x888, 0x20,
			       0x28, 0x40, 0x58, 0, 0x60, 0, 0, 0, false, 0 };
static const struct tl T17R = { 17, 0x08, 0x58, 0x68, 0x868, 0x880, 0x890, 0x20,
				0x28, 0x38, 0x50, 0, 0x58, 0, 0, 0, false, 0x878 };

#define LIBC "/usr/lib/x86_64-linux-gnu/libc.so.6"
#define RODATA_A 0x7ffff7d00000ull
#define DATA_A 0x7ffff7f00000ull
#define ARENA_A (DATA_A + 0x800)
#define MP_A (DATA_A + 0x100)
#define HEAP_A 0x555555559000ull
#define T1_A 0x7f0000000000ull
#define T2_A 0x7f0004000000ull
#define MM_A 0x7f1000000000ull
#define TLS_A 0x7f2000000000ull
#define HEAP_LEN 0x10000u
#define THEAP_LEN 0x8000u
#define MM_LEN 0x3000u
#define TLS_LEN 0x4000u

struct region {
	hs_addr_t addr;
	unsigned char *buf;
	size_t len;
};

struct fake {
	const struct tl *L;
	struct region r[7];
	size_t nr;
	struct hs_target *t;
	/* builder state */
	hs_addr_t cur;             /* next chunk */
	uint64_t last_size;
	bool last_binned;
	/* what the walk must find, per arena (0 main, 1 thread) */
	struct hs_glibc_count want[2][HS_CHUNK_STATE_N];
	hs_addr_t tc_main, tc_thread;  /* tcache user pointers */
	hs_addr_t thread_arena;
	hs_addr_t keep[2][16];       /* some in-use chunks, for tests */
	size_t nkeep[2];
};

static unsigned char *at(struct fake *f, hs_addr_t a, size_t n)
{
	for (size_t i = 0; i < f->nr; i++)
		if (a >= f->r[i].addr && a + n <= f->r[i].addr + f->r[i].len)
			return f->r[i].buf + (a - f->r[i].addr);
	fail_msg("address 0x%llx outside the fake", (unsigned long long)a);
	return NULL;
}

static void w64(struct fake *f, hs_addr_t a, uint64_t v)
{
	memcpy(at(f, a, 8), &v, 8);
}

static uint64_t r64(struct fake *f, hs_addr_t a)
{
	uint64_t v;

	memcpy(&v, at(f, a, 8), 8);
	return v;
}

static void w32(struct fake *f, hs_addr_t a, uint32_t v)
{
	memcpy(at(f, a, 4), &v, 4);
}

static struct region *region(struct fake *f, hs_addr_t a, size_t len)
{
	struct region *r = &f->r[f->nr++];

	r->addr = a;
	r->len = len;
	r->buf = calloc(1, len);
	assert_non_null(r->buf);
	return r;
}

static hs_addr_t bin_head(struct fake *f, hs_addr_t arena, int i)
{
	return arena + f->L->ms_bins + (hs_addr_t)(i - 1) * 16 - 16;
}

static uint64_t mangle(struct fake *f, hs_addr_t field, hs_addr_t ptr)
{
	return f->L->safe ? (field >> 12) ^ ptr : ptr;
}

/* Lays out a chunk at f->cur; state is what the walk must call it. */
static hs_addr_t chunk(struct fake *f, int arena, uint64_t size,
		       enum hs_chunk_state st)
{
	hs_addr_t c = f->cur;
	uint64_t flags = arena ? 4 : 0;

	if (f->last_binned)
		w64(f, c, f->last_size); /* prev_size */
	else
		flags |= 1;
	w64(f, c + 8, size | flags);
	f->last_size = size;
	f->last_binned = st >= HS_CHUNK_UNSORTED && st <= HS_CHUNK_LARGEBIN;
	f->cur += size;
	f->want[arena][st].count++;
	f->want[arena][st].bytes += size;
	if (st == HS_CHUNK_INUSE && f->nkeep[arena] < 16)
		f->keep[arena][f->nkeep[arena]++] = c;
	return c;
}

static void init_arena(struct fake *f, hs_addr_t a, uint32_t flags)
{
	w32(f, a + 4, flags);
	for (int i = 1; i < 128; i++) {
		hs_addr_t h = bin_head(f, a, i);
		w64(f, h + 16, h);
		w64(f, h + 24, h);
	}
}

static void tc_push(struct fake *f, hs_addr_t tc, unsigned bin, hs_addr_t c)
{
	hs_addr_t e = c + 16, slot = tc + f->L->tc_entries + 8 * bin;
	unsigned char *cnt = at(f, tc + f->L->tc_count_size * bin, f->L->tc_count_size);

	w64(f, e, mangle(f, e, r64(f, slot)));
	w64(f, slot, e);
	cnt[0]++;
}

static void fb_push(struct fake *f, hs_addr_t arena, unsigned idx, hs_addr_t c)
{
	hs_addr_t slot = arena + f->L->ms_fastbins + 8 * idx;

	w64(f, c + 16, mangle(f, c + 16, r64(f, slot)));
	w64(f, slot, c);
}

static void bin_push(struct fake *f, hs_addr_t arena, int i, hs_addr_t c)
{
	hs_addr_t h = bin_head(f, arena, i), first = r64(f, h + 16);

	w64(f, c + 16, first);
	w64(f, c + 24, h);
	w64(f, first + 24, c);
	w64(f, h + 16, c);
}

static void top(struct fake *f, int arena, hs_addr_t arena_addr, hs_addr_t end)
{
	uint64_t size = end - f->cur;

	w64(f, arena_addr + f->L->ms_top, f->cur);
	if (f->last_binned)
		w64(f, f->cur, f->last_size);
	w64(f, f->cur + 8, size | (f->last_binned ? 0 : 1));
	f->want[arena][HS_CHUNK_TOP].count++;
	f->want[arena][HS_CHUNK_TOP].bytes += size;
	f->last_binned = false;
}

/*
 * A process with a main heap and a thread arena of two heaps, every kind
 * of chunk in each, two threads with their tcache pointers in TLS, and one
 * mmapped chunk.  version_minor goes into the libc banner.
 */
static void build(struct fake *f, const struct tl *L, unsigned banner_minor)
{
	struct region *ro;
	hs_addr_t a = ARENA_A, ta, tc, c, t1, t2, f1, f2, s1, u1, l1;
	char banner[128];

	memset(f, 0, sizeof(*f));
	f->L = L;
	ro = region(f, RODATA_A, 0x2000);
	snprintf(banner, sizeof(banner),
		 "GNU C Library (Test GLIBC 2.%u-1) stable release version 2.%u.\n",
		 banner_minor, banner_minor);
	memcpy(ro->buf + 0x1234, banner, strlen(banner));
	region(f, DATA_A, 0x2000);
	region(f, HEAP_A, HEAP_LEN);
	region(f, T1_A, THEAP_LEN);
	region(f, T2_A, THEAP_LEN);
	region(f, MM_A, MM_LEN);
	region(f, TLS_A, TLS_LEN);

	/* main arena */
	init_arena(f, a, 0);
	f->cur = HEAP_A;
	/* No tcache (before 2.26): what would be cached stays in use. */
	tc = L->tc_count_size ? chunk(f, 0, L->tc_chunk, HS_CHUNK_INUSE) + 16 : 0;
	f->tc_main = tc;
	for (int i = 0; i < 5; i++)
		chunk(f, 0, 0x30, HS_CHUNK_INUSE);
	t1 = chunk(f, 0, 0x30, tc ? HS_CHUNK_TCACHE : HS_CHUNK_INUSE);
	chunk(f, 0, 0x100, HS_CHUNK_INUSE);
	t2 = chunk(f, 0, 0x30, tc ? HS_CHUNK_TCACHE : HS_CHUNK_INUSE);
	f1 = chunk(f, 0, 0x40, HS_CHUNK_FASTBIN);
	chunk(f, 0, 0x20, HS_CHUNK_INUSE);
	f2 = chunk(f, 0, 0x40, HS_CHUNK_FASTBIN);
	u1 = chunk(f, 0, 0x110, HS_CHUNK_UNSORTED);
	chunk(f, 0, 0x50, HS_CHUNK_INUSE);
	s1 = chunk(f, 0, 0x200, HS_CHUNK_SMALLBIN);
	chunk(f, 0, 0x20, HS_CHUNK_INUSE);
	l1 = chunk(f, 0, 0x500, HS_CHUNK_LARGEBIN);
	for (int i = 0; i < 8; i++)
		chunk(f, 0, 0x1010, HS_CHUNK_INUSE);
	top(f, 0, a, HEAP_A + HEAP_LEN);
	if (tc) {
		tc_push(f, tc, 1, t1);
		tc_push(f, tc, 1, t2);
	}
	fb_push(f, a, 2, f1);
	fb_push(f, a, 2, f2);
	bin_push(f, a, 1, u1);
	bin_push(f, a, 0x200 >> 4, s1);
	bin_push(f, a, 68, l1);
	w64(f, a + L->ms_system_mem, HEAP_LEN);
	if (L->ms_attached)
		w64(f, a + L->ms_attached, 1);

	/* thread arena: first heap T1 (malloc_state inside, closed by
	 * fenceposts), second heap T2 holds top */
	ta = T1_A + L->hi_size;
	f->thread_arena = ta;
	w64(f, T1_A, ta);
	w64(f, T1_A + 8, 0);
	w64(f, T1_A + 16, THEAP_LEN);
	w64(f, T1_A + 24, THEAP_LEN);
	init_arena(f, ta, 2);
	f->last_binned = false;
	f->cur = (ta + L->ms_size + 15) & ~15ull;
	tc = L->tc_count_size ? chunk(f, 1, L->tc_chunk, HS_CHUNK_INUSE) + 16 : 0;
	f->tc_thread = tc;
	for (int i = 0; i < 4; i++)
		chunk(f, 1, 0x60, HS_CHUNK_INUSE);
	t1 = chunk(f, 1, 0x60, tc ? HS_CHUNK_TCACHE : HS_CHUNK_INUSE);
	chunk(f, 1, 0x30, HS_CHUNK_INUSE);
	f1 = chunk(f, 1, 0x20, HS_CHUNK_FASTBIN);
	chunk(f, 1, 0x30, HS_CHUNK_INUSE);
	/* an in-use chunk up to the fenceposts */
	c = f->cur;
	chunk(f, 1, T1_A + THEAP_LEN - 0x20 - c, HS_CHUNK_INUSE);
	w64(f, f->cur + 8, 0x10 | 1);
	w64(f, f->cur + 0x18, 0 | 1);
	if (tc)
		tc_push(f, tc, 4, t1);
	fb_push(f, ta, 0, f1);

	w64(f, T2_A, ta);
	w64(f, T2_A + 8, T1_A);
	w64(f, T2_A + 16, THEAP_LEN);
	w64(f, T2_A + 24, THEAP_LEN);
	f->last_binned = false;
	f->cur = T2_A + L->hi_size;
	for (int i = 0; i < 3; i++)
		chunk(f, 1, 0x60, HS_CHUNK_INUSE);
	s1 = chunk(f, 1, 0x90, HS_CHUNK_SMALLBIN);
	chunk(f, 1, 0x60, HS_CHUNK_INUSE);
	top(f, 1, ta, T2_A + THEAP_LEN);
	bin_push(f, ta, 0x90 >> 4, s1);
	w64(f, ta + L->ms_system_mem, 2 * THEAP_LEN);
	if (L->ms_attached)
		w64(f, ta + L->ms_attached, 1);

	/* the ring */
	w64(f, a + L->ms_next, ta);
	w64(f, ta + L->ms_next, a);

	/* mp_ */
	w64(f, MP_A + 0x10, 0x20000);
	w64(f, MP_A + 0x18, 8);
	w32(f, MP_A + L->mp_n_mmaps, 1);
	w32(f, MP_A + L->mp_n_mmaps + 4, 65536);
	w64(f, MP_A + L->mp_mmapped_mem, MM_LEN);
	w64(f, MP_A + L->mp_sbrk_base, HEAP_A);
	if (L->tc_count_size) {
		w64(f, MP_A + L->mp_tcache_bins, 64);
		w64(f, MP_A + L->mp_tcache_bins + 8, 0x408);
		w64(f, MP_A + L->mp_tcache_bins + 16, 7);
	} else if (L->minor < 15) {
		w32(f, MP_A + 0x38, 4096); /* the cached pagesize */
	}

	/* one mmapped chunk */
	w64(f, MM_A + 8, MM_LEN | 2);

	/* TLS: fs_base - 0x48 holds `tcache` (2.36's offset) */
	if (tc) {
		w64(f, TLS_A + 0x2000 - 0x48, f->tc_main);
		w64(f, TLS_A + 0x4000 - 0x48, f->tc_thread);
	}
}

/* When set, open_fake() maps the mmapped chunk as rw / no access / rw,
 * as an mprotect()ed guard page inside it leaves it. */
static bool split_mmapped;
/* When set, open_fake() maps the main heap and the thread heap holding
 * top as two adjacent rw mappings each, as a forked child whose heaps
 * grew past what it inherited has them. */
static bool split_heaps;

static void open_fake(struct fake *f)
{
	static const struct {
		hs_addr_t a;
		unsigned perms;
		const char *path;
	} maps[] = {
		{ RODATA_A, HS_PERM_R, LIBC },
		{ DATA_A, HS_PERM_R | HS_PERM_W, LIBC },
		{ HEAP_A, HS_PERM_R | HS_PERM_W, "[heap]" },
		{ T1_A, HS_PERM_R | HS_PERM_W, "" },
		{ T2_A, HS_PERM_R | HS_PERM_W, "" },
		{ MM_A, HS_PERM_R | HS_PERM_W, "" },
		{ TLS_A, HS_PERM_R | HS_PERM_W, "" },
	};

	assert_int_equal(hs_target_open_mem(&f->t), 0);
	for (size_t i = 0; i < HS_ARRAY_SIZE(maps); i++) {
		const struct region *r = &f->r[i]; /* build() adds them in this order */

		assert_int_equal(r->addr, maps[i].a);
		if (split_heaps && (r->addr == HEAP_A || r->addr == T2_A)) {
			size_t cut = r->addr == HEAP_A ? 0x3000 : 0x1000;

			hs_target_mem_add(f->t, r->addr, r->buf, cut, maps[i].perms,
					  maps[i].path);
			hs_target_mem_add(f->t, r->addr + cut, r->buf + cut, r->len - cut,
					  maps[i].perms, maps[i].path);
			continue;
		}
		if (split_mmapped && r->addr == MM_A) {
			hs_target_mem_add(f->t, r->addr, r->buf, 0x1000, maps[i].perms, "");
			/* perms 0 adds the bytes without a map: add the map */
			hs_target_mem_add(f->t, r->addr + 0x1000, r->buf + 0x1000, 0x1000,
					  0, "");
			hs_maps_add(&f->t->maps, r->addr + 0x1000, r->addr + 0x2000, "");
			hs_maps_sort(&f->t->maps);
			hs_target_mem_add(f->t, r->addr + 0x2000, r->buf + 0x2000,
					  r->len - 0x2000, maps[i].perms, "");
			continue;
		}
		hs_target_mem_add(f->t, r->addr, r->buf, r->len, maps[i].perms,
				  maps[i].path);
	}
	f->t->threads = hs_xcalloc(2, sizeof(*f->t->threads));
	f->t->nthreads = 2;
	for (int i = 0; i < 2; i++) {
		f->t->threads[i].tid = 100 + i;
		f->t->threads[i].has_regs = true;
		f->t->threads[i].regs.r[HS_REG_FS_BASE] = TLS_A + 0x2000 * (hs_addr_t)(i + 1);
	}
	hs_classify(f->t);
}

static void free_fake(struct fake *f)
{
	hs_target_close(f->t);
	for (size_t i = 0; i < f->nr; i++)
		free(f->r[i].buf);
}

static void dump_problems(const struct hs_glibc_heap *h)
{
	for (size_t i = 0; i < h->nproblems && i < HS_GLIBC_MAX_PROBLEMS; i++)
		print_message("problem 0x%llx: %s\n", (unsigned long long)h->problems[i].addr,
			      h->problems[i].msg);
}

/* The walk's counts equal what the builder laid out, kind by kind. */
static void assert_counts(struct fake *f, const struct hs_glibc_heap *h)
{
	for (int ar = 0; ar < 2; ar++)
		for (int k = 0; k < HS_CHUNK_STATE_N; k++) {
			if (k == HS_CHUNK_MMAPPED)
				continue;
			if (h->arenas[ar].st[k].count != f->want[ar][k].count ||
			    h->arenas[ar].st[k].bytes != f->want[ar][k].bytes)
				fail_msg("arena %d %s: got %llu/%llu want %llu/%llu", ar,
					 hs_chunk_state_name(k),
					 (unsigned long long)h->arenas[ar].st[k].count,
					 (unsigned long long)h->arenas[ar].st[k].bytes,
					 (unsigned long long)f->want[ar][k].count,
					 (unsigned long long)f->want[ar][k].bytes);
		}
}

static void check_version(const struct tl *L)
{
	struct fake f;
	struct hs_glibc_heap *h = NULL;
	const struct hs_glibc_layout *lay;

	build(&f, L, L->minor);
	open_fake(&f);
	assert_int_equal(hs_glibc_open(f.t, NULL, &h), 0);
	assert_non_null(h);
	assert_int_equal(h->version_minor, L->minor);
	lay = h->layout;
	assert_non_null(lay);
	assert_int_equal(lay->tc_count_size, L->tc_count_size);
	assert_int_equal(lay->hi_size, L->hi_size);
	assert_int_equal(lay->safe_linking, L->safe);
	assert_int_equal(h->main_arena, ARENA_A);
	assert_string_equal(h->main_arena_how, "scan");
	assert_int_equal(h->mp, MP_A);
	assert_int_equal(h->narenas, 2);
	assert_int_equal(h->arenas[1].addr, f.thread_arena);
	assert_int_equal(h->arenas[1].nsegs, 2);
	assert_int_equal(h->arenas[1].segs[0].heap, T1_A);
	assert_int_equal(h->arenas[1].segs[1].heap, T2_A);
	assert_int_equal(h->ntcaches, L->tc_count_size ? 2 : 0);
	assert_int_equal(lay->ms_system_mem, L->ms_system_mem);
	assert_int_equal(lay->mp_sbrk_base, L->mp_sbrk_base);
	assert_int_equal(h->arenas[0].system_mem, HEAP_LEN);
	assert_int_equal(h->arenas[1].system_mem, 2 * THEAP_LEN);
	assert_false(h->arenas[0].locked);
	assert_int_equal(hs_glibc_analyze(h), 0);
	dump_problems(h);
	assert_int_equal(h->nproblems, 0);
	assert_counts(&f, h);
	assert_true(h->arenas[0].segs[0].complete && h->arenas[1].segs[0].complete &&
		    h->arenas[1].segs[1].complete);
	assert_int_equal(h->mmapped.count, 1);
	assert_int_equal(h->mmapped.bytes, MM_LEN);
	/* tids from TLS */
	for (size_t i = 0; i < h->ntcaches; i++)
		assert_int_equal(h->tcaches[i].tid,
				 h->tcaches[i].addr == f.tc_main ? 100 : 101);
	/* histogram: 8 x 0x1010 is the most bytes among in-use sizes */
	assert_true(h->nhist > 3);
	assert_int_equal(h->hist[0].size, 0x1010);
	assert_int_equal(h->hist[0].count, 8);
	assert_true(h->hist[1].bytes <= h->hist[0].bytes);
	hs_glibc_close(h);
	free_fake(&f);
}

/*
 * The older rows, from glibc's struct definitions at each tag (malloc.c
 * malloc_state / malloc_par; PER_THREAD is always on from 2.17):
 *   2.17-2.22: mutex, flags, fastbinsY[10], top, last_remainder,
 *              bins[254], binmap[4], next, next_free, system_mem,
 *              max_system_mem; mp_ has max_total_mem before sbrk_base;
 *   2.23:      + attached_threads after next_free;
 *   2.24:      mp_ loses max_total_mem;
 *   2.26:      mp_ gains the four tcache fields, tcache counts are char.
 */
struct old_row {
	unsigned minor;
	int ms_fastbins, ms_top, ms_bins, ms_next, ms_attached, ms_system_mem;
	unsigned ms_size;
	int mp_n_mmaps, mp_mmapped_mem, mp_sbrk_base;
	unsigned mp_size, tc_count_size;
};

static const struct old_row old_rows[] = {
	{ 12, 0x08, 0x58, 0x68, 0x868, -1, 0x878, 0x888, 0x28, 0x40, 0x58, 0x60, 0 },
	{ 14, 0x08, 0x58, 0x68, 0x868, -1, 0x878, 0x888, 0x28, 0x40, 0x58, 0x60, 0 },
	{ 15, 0x08, 0x58, 0x68, 0x868, -1, 0x878, 0x888, 0x28, 0x38, 0x50, 0x58, 0 },
	{ 17, 0x08, 0x58, 0x68, 0x868, -1, 0x878, 0x888, 0x28, 0x38, 0x50, 0x58, 0 },
	{ 22, 0x08, 0x58, 0x68, 0x868, -1, 0x878, 0x888, 0x28, 0x38, 0x50, 0x58, 0 },
	{ 23, 0x08, 0x58, 0x68, 0x868, 0x878, 0x880, 0x890, 0x28, 0x38, 0x50, 0x58, 0 },
	{ 24, 0x08, 0x58, 0x68, 0x868, 0x878, 0x880, 0x890, 0x28, 0x38, 0x48, 0x50, 0 },
	{ 25, 0x08, 0x58, 0x68, 0x868, 0x878, 0x880, 0x890, 0x28, 0x38, 0x48, 0x50, 0 },
	{ 26, 0x08, 0x58, 0x68, 0x868, 0x878, 0x880, 0x890, 0x28, 0x38, 0x48, 0x70, 1 },
};

static void test_layout_table(void **state)
{
	const struct tl *all[] = { &T27, &T31, &T35, &T39 };

	(void)state;
	for (size_t i = 0; i < HS_ARRAY_SIZE(all); i++) {
		const struct tl *L = all[i];
		const struct hs_glibc_layout *y = hs_glibc_layout_for(2, L->minor);

		assert_non_null(y);
		assert_int_equal(y->ms_fastbins, L->ms_fastbins);
		assert_int_equal(y->ms_top, L->ms_top);
		assert_int_equal(y->ms_bins, L->ms_bins);
		assert_int_equal(y->ms_next, L->ms_next);
		assert_int_equal(y->ms_system_mem, L->ms_system_mem);
		assert_int_equal(y->ms_size, L->ms_size);
		assert_int_equal(y->hi_size, L->hi_size);
		assert_int_equal(y->mp_n_mmaps, L->mp_n_mmaps);
		assert_int_equal(y->mp_mmapped_mem, L->mp_mmapped_mem);
		assert_int_equal(y->mp_sbrk_base, L->mp_sbrk_base);
		assert_int_equal(y->mp_tcache_bins, L->mp_tcache_bins);
		assert_int_equal(y->mp_size, L->mp_size);
		assert_int_equal(y->tc_count_size, L->tc_count_size);
		assert_int_equal(y->tc_entries, L->tc_entries);
		assert_int_equal(y->tc_chunk_size, L->tc_chunk);
		assert_int_equal(y->safe_linking, L->safe);
	}
	/* 2.26 has the old malloc_state; 2.17 no tcache; outside: none */
	assert_int_equal(hs_glibc_layout_for(2, 26)->ms_top, 0x58);
	assert_int_equal(hs_glibc_layout_for(2, 17)->tc_count_size, 0);
	for (size_t i = 0; i < HS_ARRAY_SIZE(old_rows); i++) {
		const struct old_row *o = &old_rows[i];
		const struct hs_glibc_layout *y = hs_glibc_layout_for(2, o->minor);

		assert_non_null(y);
		assert_int_equal(y->ms_fastbins, o->ms_fastbins);
		assert_int_equal(y->ms_top, o->ms_top);
		assert_int_equal(y->ms_bins, o->ms_bins);
		assert_int_equal(y->ms_next, o->ms_next);
		assert_int_equal(y->ms_attached_threads, o->ms_attached);
		assert_int_equal(y->ms_system_mem, o->ms_system_mem);
		assert_int_equal(y->ms_size, o->ms_size);
		assert_int_equal(y->hi_size, 0x20);
		assert_int_equal(y->mp_n_mmaps, o->mp_n_mmaps);
		assert_int_equal(y->mp_mmapped_mem, o->mp_mmapped_mem);
		assert_int_equal(y->mp_sbrk_base, o->mp_sbrk_base);
		assert_int_equal(y->mp_size, o->mp_size);
		assert_int_equal(y->tc_count_size, o->tc_count_size);
		assert_false(y->safe_linking);
	}
	/* every release 2.12-2.40 has a row; rows do not overlap */
	for (unsigned m = 12; m <= 40; m++) {
		const struct hs_glibc_layout *y = hs_glibc_layout_for(2, m);

		assert_non_null(y);
		assert_true(y->min_minor <= m && m <= y->max_minor);
		assert_int_equal(y->safe_linking, m >= 32);
		assert_int_equal(y->hi_size, m >= 35 ? 0x30 : 0x20);
		assert_int_equal(y->tc_count_size, m < 26 ? 0 : m < 30 ? 1 : 2);
	}
	assert_null(hs_glibc_layout_for(2, 11));
	assert_null(hs_glibc_layout_for(2, 41));
	/* 2.12-2.14 cache the page size in mp_; 2.15 does not */
	assert_int_equal(hs_glibc_layout_for(2, 14)->mp_sbrk_base, 0x58);
	assert_int_equal(hs_glibc_layout_for(2, 15)->mp_sbrk_base, 0x50);
	assert_int_equal(hs_glibc_layout_for(2, 16)->mp_sbrk_base, 0x50);
	/* backports: attached_threads before system_mem, mp_ unchanged */
	{
		const struct hs_glibc_layout *r7 =
			hs_glibc_layout_backport(hs_glibc_layout_for(2, 17));

		assert_non_null(r7);
		assert_int_equal(r7->ms_attached_threads, 0x878);
		assert_int_equal(r7->ms_system_mem, 0x880);
		assert_int_equal(r7->ms_size, 0x890);
		assert_int_equal(r7->mp_sbrk_base, 0x50);
		assert_null(hs_glibc_layout_backport(r7));
		assert_null(hs_glibc_layout_backport(hs_glibc_layout_for(2, 23)));
		assert_int_equal(hs_glibc_layout_backport(hs_glibc_layout_for(2, 12))->mp_sbrk_base,
				 0x58);
	}
	assert_null(hs_glibc_layout_for(3, 0));
}

/* An mmapped chunk split into three mappings by mprotect is one chunk. */
static void test_mmapped_split_by_mprotect(void **state)
{
	struct fake f;
	struct hs_glibc_heap *h = NULL;

	(void)state;
	split_mmapped = true;
	build(&f, &T35, 35);
	open_fake(&f);
	split_mmapped = false;
	assert_int_equal(hs_target_find_map(f.t, MM_A + 0x1000)->perms, 0);
	assert_int_equal(hs_glibc_open(f.t, NULL, &h), 0);
	assert_int_equal(hs_glibc_analyze(h), 0);
	assert_int_equal(h->mmapped.count, 1);
	assert_int_equal(h->mmapped.bytes, MM_LEN);
	assert_int_equal(h->nproblems, 0);
	hs_glibc_close(h);
	free_fake(&f);
}

/* Heaps in two mappings each (fork): walked whole, exactly. */
static void test_split_heaps(void **state)
{
	(void)state;
	split_heaps = true;
	check_version(&T35);
	check_version(&T27);
	check_version(&T12);
	split_heaps = false;
}

static void test_glibc_2_27(void **state) { (void)state; check_version(&T27); }
static void test_glibc_2_31(void **state) { (void)state; check_version(&T31); }
static void test_glibc_2_35(void **state) { (void)state; check_version(&T35); }
static void test_glibc_2_39(void **state) { (void)state; check_version(&T39); }
static void test_glibc_2_12(void **state) { (void)state; check_version(&T12); }
/* RHEL 7: version 2.17 (banner), the backported attached_threads told
 * from the arena's figures: system 0x10000, not 1. */
static void test_glibc_2_17_rhel7(void **state) { (void)state; check_version(&T17R); }

/*
 * A core that names no libc (no NT_FILE): the version from the banner
 * found in whatever the core holds, main_arena from the caller
 * (--main-arena), mp_ in main_arena's mapping.  And a core taken while
 * an arena's mutex was held says so.
 */
static void test_unnamed_core_banner_main_arena(void **state)
{
	struct fake f;
	struct hs_glibc_heap *h = NULL;
	struct hs_glibc_opts o;

	(void)state;
	build(&f, &T12, 12);
	w32(&f, ARENA_A, 1); /* main_arena's mutex held */
	open_fake(&f);
	for (size_t i = 0; i < f.t->maps.n; i++)
		if (!strcmp(f.t->maps.v[i].path, LIBC)) {
			free(f.t->maps.v[i].path);
			f.t->maps.v[i].path = hs_xstrdup("");
		}
	hs_classify(f.t);
	/* Without the address: no libc to scan for main_arena. */
	assert_int_equal(hs_glibc_open(f.t, NULL, &h), -HS_E_NOT_FOUND);
	assert_int_equal(h->version_minor, 12);
	assert_string_equal(h->version_source, "banner");
	hs_glibc_close(h);
	memset(&o, 0, sizeof(o));
	o.main_arena = ARENA_A;
	assert_int_equal(hs_glibc_open(f.t, &o, &h), 0);
	assert_int_equal(h->version_minor, 12);
	assert_non_null(strstr(h->version, "version 2.12"));
	assert_string_equal(h->layout->name, "2.12-2.14");
	assert_int_equal(h->mp, MP_A);
	assert_true(h->arenas[0].locked);
	assert_false(h->arenas[1].locked);
	assert_int_equal(hs_glibc_analyze(h), 0);
	assert_counts(&f, h);
	assert_int_equal(h->mmapped.count, 1);
	hs_glibc_close(h);
	free_fake(&f);
}

/* No banner, no names, a RHEL 7 arena at the caller's address: the
 * layout is inferred, the backport found. */
static void test_caller_main_arena_inferred_rhel7(void **state)
{
	struct fake f;
	struct hs_glibc_heap *h = NULL;
	struct hs_glibc_opts o;

	(void)state;
	build(&f, &T17R, 17);
	memset(f.r[0].buf, 0, f.r[0].len);
	open_fake(&f);
	for (size_t i = 0; i < f.t->maps.n; i++)
		if (!strcmp(f.t->maps.v[i].path, LIBC)) {
			free(f.t->maps.v[i].path);
			f.t->maps.v[i].path = hs_xstrdup("");
		}
	hs_classify(f.t);
	memset(&o, 0, sizeof(o));
	o.main_arena = ARENA_A;
	assert_int_equal(hs_glibc_open(f.t, &o, &h), 0);
	assert_string_equal(h->version_source, "inferred");
	assert_int_equal(h->layout->ms_system_mem, 0x880);
	assert_int_equal(h->arenas[0].system_mem, HEAP_LEN);
	assert_int_equal(hs_glibc_analyze(h), 0);
	dump_problems(h);
	assert_int_equal(h->nproblems, 0);
	assert_counts(&f, h);
	hs_glibc_close(h);
	free_fake(&f);
}

static void test_unsupported_version(void **state)
{
	struct fake f;
	struct hs_glibc_heap *h = NULL;

	(void)state;
	build(&f, &T39, 41);
	open_fake(&f);
	assert_int_equal(hs_glibc_open(f.t, NULL, &h), -HS_E_UNSUPPORTED);
	assert_non_null(h);
	assert_int_equal(h->version_minor, 41);
	assert_null(h->layout);
	assert_non_null(strstr(h->version, "version 2.41"));
	/* the walk is a no-op on an unsupported heap */
	assert_int_equal(hs_glibc_analyze(h), 0);
	assert_int_equal(h->walked_bytes, 0);
	hs_glibc_close(h);
	free_fake(&f);
}

/* No banner (as in a core without libc's read-only segments): the layout
 * row is inferred from the structures, safe-linking included. */
static void check_inferred(const struct tl *L, const char *row)
{
	struct fake f;
	struct hs_glibc_heap *h = NULL;

	build(&f, L, L->minor);
	memset(f.r[0].buf, 0, f.r[0].len);
	open_fake(&f);
	assert_int_equal(hs_glibc_open(f.t, NULL, &h), 0);
	assert_int_equal(h->version_minor, 0);
	assert_string_equal(h->layout->name, row);
	assert_int_equal(h->main_arena, ARENA_A);
	assert_int_equal(hs_glibc_analyze(h), 0);
	dump_problems(h);
	assert_int_equal(h->nproblems, 0);
	assert_counts(&f, h);
	hs_glibc_close(h);
	free_fake(&f);
}

static void test_inferred_layout(void **state)
{
	(void)state;
	check_inferred(&T27, "2.27-2.29");
	check_inferred(&T31, "2.30-2.31");
	check_inferred(&T35, "2.35-2.40");
}

static void test_caller_main_arena(void **state)
{
	struct fake f;
	struct hs_glibc_heap *h = NULL;
	struct hs_glibc_opts o = { .main_arena = ARENA_A, .flags = HS_GLIBC_NO_TLS };

	(void)state;
	build(&f, &T35, 35);
	open_fake(&f);
	assert_int_equal(hs_glibc_open(f.t, &o, &h), 0);
	assert_string_equal(h->main_arena_how, "caller");
	/* without TLS the first chunks of the first heaps still give both */
	assert_int_equal(h->ntcaches, 2);
	assert_int_equal(hs_glibc_analyze(h), 0);
	assert_int_equal(h->nproblems, 0);
	assert_counts(&f, h);
	hs_glibc_close(h);
	free_fake(&f);
}

static bool has_problem(const struct hs_glibc_heap *h, hs_addr_t addr, const char *needle)
{
	for (size_t i = 0; i < h->nproblems && i < HS_GLIBC_MAX_PROBLEMS; i++)
		if (h->problems[i].addr == addr && strstr(h->problems[i].msg, needle))
			return true;
	return false;
}

static void test_corrupt_header_resync(void **state)
{
	struct fake f;
	struct hs_glibc_heap *h = NULL;
	hs_addr_t bad;

	(void)state;
	build(&f, &T35, 35);
	/* smash the size of the 3rd kept 0x30 chunk of the main heap */
	bad = f.keep[0][3];
	w64(&f, bad + 8, 0x39);
	open_fake(&f);
	assert_int_equal(hs_glibc_open(f.t, NULL, &h), 0);
	assert_int_equal(hs_glibc_analyze(h), 0);
	dump_problems(h);
	assert_true(has_problem(h, bad, "multiple of 16"));
	/* resynchronised at the next header: one 0x30 chunk unparsed, the
	 * rest of the heap counted as before */
	assert_int_equal(h->arenas[0].st[HS_CHUNK_UNPARSED].count, 1);
	assert_int_equal(h->arenas[0].st[HS_CHUNK_UNPARSED].bytes, 0x30);
	assert_int_equal(h->arenas[0].st[HS_CHUNK_INUSE].count,
			 f.want[0][HS_CHUNK_INUSE].count - 1);
	assert_int_equal(h->arenas[0].st[HS_CHUNK_TCACHE].count, 2);
	assert_int_equal(h->arenas[0].st[HS_CHUNK_TOP].count, 1);
	assert_true(h->arenas[0].segs[0].complete);
	/* a second walk (e.g. for strings) does not report it again */
	{
		size_t np = h->nproblems;
		struct hs_glibc_count again[HS_CHUNK_STATE_N];

		memcpy(again, h->arenas[0].st, sizeof(again));
		assert_int_equal(hs_glibc_analyze(h), 0);
		assert_int_equal(h->nproblems, np);
		assert_memory_equal(again, h->arenas[0].st, sizeof(again));
	}
	hs_glibc_close(h);
	free_fake(&f);
}

static void test_corrupt_header_past_end(void **state)
{
	struct fake f;
	struct hs_glibc_heap *h = NULL;
	hs_addr_t bad;

	(void)state;
	build(&f, &T31, 31);
	/* a size running past top, and nothing sane after it: the segment
	 * stops there instead of reading beyond */
	bad = f.keep[1][5];
	w64(&f, bad + 8, 0x40000000 | 5);
	open_fake(&f);
	assert_int_equal(hs_glibc_open(f.t, NULL, &h), 0);
	assert_int_equal(hs_glibc_analyze(h), 0);
	dump_problems(h);
	assert_true(has_problem(h, bad, "past the end"));
	hs_glibc_close(h);
	free_fake(&f);
}

static void test_fastbin_cycle(void **state)
{
	struct fake f;
	struct hs_glibc_heap *h = NULL;
	hs_addr_t head, second;

	(void)state;
	build(&f, &T39, 39);
	/* fastbin 2 of main: head -> second -> head ... */
	head = r64(&f, ARENA_A + T39.ms_fastbins + 16);
	second = r64(&f, head + 16) ^ ((head + 16) >> 12);
	w64(&f, second + 16, mangle(&f, second + 16, head));
	open_fake(&f);
	assert_int_equal(hs_glibc_open(f.t, NULL, &h), 0);
	dump_problems(h);
	assert_true(has_problem(h, head, "cycle"));
	assert_int_equal(hs_glibc_analyze(h), 0);
	assert_int_equal(h->arenas[0].st[HS_CHUNK_FASTBIN].count, 2);
	hs_glibc_close(h);
	free_fake(&f);
}

static void test_tcache_cycle(void **state)
{
	struct fake f;
	struct hs_glibc_heap *h = NULL;
	hs_addr_t e1, e2;

	(void)state;
	build(&f, &T27, 27);
	/* tcache bin 1 of the main thread: e1 -> e2 -> e1 (plain links) */
	e1 = r64(&f, f.tc_main + T27.tc_entries + 8);
	e2 = r64(&f, e1);
	w64(&f, e2, e1);
	open_fake(&f);
	assert_int_equal(hs_glibc_open(f.t, NULL, &h), 0);
	dump_problems(h);
	assert_true(has_problem(h, e1 - 16, "cycle"));
	assert_int_equal(hs_glibc_analyze(h), 0);
	assert_int_equal(h->arenas[0].st[HS_CHUNK_TCACHE].count, 2);
	hs_glibc_close(h);
	free_fake(&f);
}

static void test_bin_cycle_bounded(void **state)
{
	struct fake f;
	struct hs_glibc_heap *h = NULL;
	hs_addr_t head, c;

	(void)state;
	build(&f, &T35, 35);
	/* unsorted chunk's fd points to itself: a cycle not through the head */
	head = bin_head(&f, ARENA_A, 1);
	c = r64(&f, head + 16);
	w64(&f, c + 16, c);
	open_fake(&f);
	assert_int_equal(hs_glibc_open(f.t, NULL, &h), 0);
	assert_true(has_problem(h, c, "cycle"));
	hs_glibc_close(h);
	free_fake(&f);
}

static void test_wild_list_pointer(void **state)
{
	struct fake f;
	struct hs_glibc_heap *h = NULL;

	(void)state;
	build(&f, &T35, 35);
	/* fastbin 5 of the thread arena points into libc's data */
	w64(&f, f.thread_arena + T35.ms_fastbins + 5 * 8, DATA_A + 0x40);
	open_fake(&f);
	assert_int_equal(hs_glibc_open(f.t, NULL, &h), 0);
	assert_true(has_problem(h, DATA_A + 0x40, "outside"));
	assert_int_equal(hs_glibc_analyze(h), 0);
	assert_counts(&f, h);
	hs_glibc_close(h);
	free_fake(&f);
}

struct collect {
	uint64_t n[HS_CHUNK_STATE_N];
	hs_addr_t last;
	bool ordered;
	int stop_after;
};

static int collect_cb(void *ud, const struct hs_glibc_chunk *c)
{
	struct collect *co = ud;

	co->n[c->state]++;
	if (c->arena == 0 && c->state != HS_CHUNK_TOP) {
		if (c->addr < co->last)
			co->ordered = false;
		co->last = c->addr;
	}
	return --co->stop_after == 0 ? 42 : 0;
}

static void test_for_each_chunk(void **state)
{
	struct fake f;
	struct hs_glibc_heap *h = NULL;
	struct collect co;

	(void)state;
	build(&f, &T35, 35);
	open_fake(&f);
	assert_int_equal(hs_glibc_open(f.t, NULL, &h), 0);
	memset(&co, 0, sizeof(co));
	co.ordered = true;
	co.stop_after = -1;
	assert_int_equal(hs_glibc_for_each_chunk(h, collect_cb, &co), 0);
	assert_true(co.ordered);
	assert_int_equal(co.n[HS_CHUNK_TCACHE], 3);
	assert_int_equal(co.n[HS_CHUNK_FASTBIN], 3);
	assert_int_equal(co.n[HS_CHUNK_SMALLBIN], 2);
	assert_int_equal(co.n[HS_CHUNK_TOP], 2);
	assert_int_equal(co.n[HS_CHUNK_MMAPPED], 1);
	/* a callback's non-zero value stops the walk and comes back */
	memset(&co, 0, sizeof(co));
	co.stop_after = 3;
	assert_int_equal(hs_glibc_for_each_chunk(h, collect_cb, &co), 42);
	hs_glibc_close(h);
	free_fake(&f);
}

/* The block view of the same walk (hs_block.h): one block per chunk
 * (each top included), tcache chunks CACHED, the other free kinds FREE,
 * the user data from chunk + 16 through the next chunk's prev_size. */
struct blocks_seen {
	uint64_t n[HS_BLOCK_STATE_N];
	uint64_t chunks, chunk_free;
	bool sizes_ok;
	struct hs_glibc_chunk first_inuse;
};

static int chunk_count_cb(void *ud, const struct hs_glibc_chunk *c)
{
	struct blocks_seen *bs = ud;

	bs->chunks++;
	bs->chunk_free += hs_chunk_state_is_free(c->state) && c->state != HS_CHUNK_TCACHE;
	if (c->state == HS_CHUNK_INUSE && !bs->first_inuse.size)
		bs->first_inuse = *c;
	return 0;
}

static int block_cb(void *ud, const struct hs_block *b)
{
	struct blocks_seen *bs = ud;

	bs->n[b->state]++;
	if (b->addr != b->meta + 16 || (b->size != b->cls - 8 && b->size != b->cls - 16))
		bs->sizes_ok = false;
	return 0;
}

static void test_blocks_view(void **state)
{
	struct fake f;
	struct hs_glibc_heap *h = NULL;
	struct blocks_seen bs;
	struct hs_blocks b;
	struct hs_block blk;

	(void)state;
	build(&f, &T35, 35);
	open_fake(&f);
	assert_int_equal(hs_glibc_open(f.t, NULL, &h), 0);
	memset(&bs, 0, sizeof(bs));
	bs.sizes_ok = true;
	assert_int_equal(hs_glibc_for_each_chunk(h, chunk_count_cb, &bs), 0);
	hs_blocks_glibc(&b, h);
	assert_string_equal(b.allocator, "glibc");
	assert_int_equal(b.for_each(b.heap, block_cb, &bs), 0);
	assert_true(bs.sizes_ok);
	assert_int_equal(bs.n[HS_BLOCK_INUSE] + bs.n[HS_BLOCK_CACHED] + bs.n[HS_BLOCK_FREE],
			 bs.chunks);
	assert_int_equal(bs.n[HS_BLOCK_CACHED], 3);           /* the tcache chunks */
	assert_int_equal(bs.n[HS_BLOCK_FREE], bs.chunk_free);  /* fastbin, bins, tops */
	assert_true(bs.chunk_free >= 3 + 2 + 2);
	/* a byte of an in-use chunk's user data names that chunk's block */
	assert_true(bs.first_inuse.size > 0);
	assert_int_equal(hs_blocks_find(&b, bs.first_inuse.addr + 17, &blk), 0);
	assert_int_equal(blk.meta, bs.first_inuse.addr);
	assert_int_equal(blk.state, HS_BLOCK_INUSE);
	hs_glibc_close(h);
	free_fake(&f);
}

static void test_free_set_cap(void **state)
{
	struct fake f;
	struct hs_glibc_heap *h = NULL;
	struct hs_glibc_opts o = { .max_free_chunks = 2 };

	(void)state;
	build(&f, &T35, 35);
	open_fake(&f);
	assert_int_equal(hs_glibc_open(f.t, &o, &h), 0);
	assert_true(h->free_set_full);
	assert_true(has_problem(h, h->problems[0].addr, "set full"));
	assert_int_equal(hs_glibc_analyze(h), 0);
	hs_glibc_close(h);
	free_fake(&f);
}

static void test_no_glibc(void **state)
{
	struct hs_target *t;
	struct hs_glibc_heap *h = NULL;
	static unsigned char buf[4096];

	(void)state;
	assert_int_equal(hs_target_open_mem(&t), 0);
	hs_target_mem_add(t, 0x10000, buf, sizeof(buf), HS_PERM_R | HS_PERM_W, "");
	assert_int_equal(hs_glibc_open(t, NULL, &h), -HS_E_UNSUPPORTED);
	assert_non_null(h);
	assert_int_equal(h->version_minor, 0);
	hs_glibc_close(h);
	hs_target_close(t);
}

/* ---- libc's ELF image: version without .rodata ---- */

#define ELF_NOTE 0x200u
#define ELF_STRTAB 0x300u
#define ELF_VERDEF 0x400u
#define ELF_DYN (DATA_A + 0x1800)

static const unsigned char fake_build_id[20] = {
	0x5a, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09,
	0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0xa5,
};

struct elf_offs {
	hs_addr_t verdef_glibc;   /* the GLIBC_2.<minor> Elf64_Verdef */
	uint32_t strsz;
};

/*
 * Writes a libc ELF image into the first page of the r-- region (the
 * banner sits in the second): header, program headers, a build-id note,
 * .dynstr and .gnu.version_d defining libc.so.6 (base), GLIBC_2.2.5,
 * GLIBC_2.<minor> and GLIBC_PRIVATE; the dynamic section in libc's data,
 * with DT_STRTAB relocated in place and DT_VERDEF not (as ld.so leaves
 * them).
 */
static struct elf_offs add_elf(struct fake *f, unsigned minor)
{
	unsigned char *ro = at(f, RODATA_A, 0x1000);
	Elf64_Ehdr eh;
	Elf64_Phdr ph[4];
	Elf64_Nhdr nh = { 4, sizeof(fake_build_id), NT_GNU_BUILD_ID };
	Elf64_Dyn dyn[7];
	char names[4][16];
	uint32_t name_off[4], strsz = 1;
	struct elf_offs o;

	memset(&eh, 0, sizeof(eh));
	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS64;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_ident[EI_VERSION] = EV_CURRENT;
	eh.e_type = ET_DYN;
	eh.e_machine = EM_X86_64;
	eh.e_version = EV_CURRENT;
	eh.e_phoff = sizeof(eh);
	eh.e_phentsize = sizeof(Elf64_Phdr);
	eh.e_phnum = 4;
	eh.e_ehsize = sizeof(eh);
	memcpy(ro, &eh, sizeof(eh));

	memset(ph, 0, sizeof(ph));
	ph[0] = (Elf64_Phdr){ PT_LOAD, PF_R, 0, 0, 0, 0x2000, 0x2000, 0x1000 };
	ph[1] = (Elf64_Phdr){ PT_LOAD, PF_R | PF_W, 0x3000, DATA_A - RODATA_A,
			      DATA_A - RODATA_A, 0x2000, 0x2000, 0x1000 };
	ph[2] = (Elf64_Phdr){ PT_DYNAMIC, PF_R | PF_W, 0x3000 + 0x1800,
			      ELF_DYN - RODATA_A, ELF_DYN - RODATA_A, sizeof(dyn),
			      sizeof(dyn), 8 };
	ph[3] = (Elf64_Phdr){ PT_NOTE, PF_R, ELF_NOTE, ELF_NOTE, ELF_NOTE,
			      sizeof(nh) + 4 + sizeof(fake_build_id),
			      sizeof(nh) + 4 + sizeof(fake_build_id), 4 };
	memcpy(ro + sizeof(eh), ph, sizeof(ph));

	memcpy(ro + ELF_NOTE, &nh, sizeof(nh));
	memcpy(ro + ELF_NOTE + sizeof(nh), "GNU", 4);
	memcpy(ro + ELF_NOTE + sizeof(nh) + 4, fake_build_id, sizeof(fake_build_id));

	snprintf(names[0], sizeof(names[0]), "libc.so.6");
	snprintf(names[1], sizeof(names[1]), "GLIBC_2.2.5");
	snprintf(names[2], sizeof(names[2]), "GLIBC_2.%u", minor);
	snprintf(names[3], sizeof(names[3]), "GLIBC_PRIVATE");
	for (int i = 0; i < 4; i++) {
		name_off[i] = strsz;
		memcpy(ro + ELF_STRTAB + strsz, names[i], strlen(names[i]) + 1);
		strsz += (uint32_t)strlen(names[i]) + 1;
	}
	for (int i = 0; i < 4; i++) {
		Elf64_Verdef vd = { 1, i == 0 ? VER_FLG_BASE : 0, (Elf64_Half)(i + 1), 1, 0,
				    sizeof(Elf64_Verdef),
				    i == 3 ? 0 : sizeof(Elf64_Verdef) + sizeof(Elf64_Verdaux) };
		Elf64_Verdaux va = { name_off[i], 0 };
		size_t off = ELF_VERDEF + (size_t)i * (sizeof(vd) + sizeof(va));

		memcpy(ro + off, &vd, sizeof(vd));
		memcpy(ro + off + sizeof(vd), &va, sizeof(va));
	}
	o.verdef_glibc = RODATA_A + ELF_VERDEF + 2 * (sizeof(Elf64_Verdef) +
						       sizeof(Elf64_Verdaux));
	o.strsz = strsz;
	dyn[0] = (Elf64_Dyn){ DT_STRTAB, { RODATA_A + ELF_STRTAB } };
	dyn[1] = (Elf64_Dyn){ DT_STRSZ, { strsz } };
	dyn[2] = (Elf64_Dyn){ DT_VERDEF, { ELF_VERDEF } };
	dyn[3] = (Elf64_Dyn){ DT_VERDEFNUM, { 4 } };
	dyn[4] = dyn[5] = dyn[6] = (Elf64_Dyn){ DT_NULL, { 0 } };
	memcpy(at(f, ELF_DYN, sizeof(dyn)), dyn, sizeof(dyn));
	return o;
}

#define ELF_SYMTAB 0x800u
#define ELF_GNU_HASH 0x900u

/* Gives the fake a .dynsym of one symbol, name, and its .gnu.hash. */
static void add_dynsym(struct fake *f, struct elf_offs *o, const char *name)
{
	uint32_t h = 5381, hdr[4] = { 1, 1, 1, 6 }, bucket = 1, chain;
	uint64_t bloom = ~0ull;
	Elf64_Sym sym[2];

	for (const char *c = name; *c; c++)
		h = h * 33 + (unsigned char)*c;
	chain = h | 1;
	memcpy(at(f, RODATA_A + ELF_STRTAB + o->strsz, strlen(name) + 1), name,
	       strlen(name) + 1);
	memset(sym, 0, sizeof(sym));
	sym[1].st_name = o->strsz;
	sym[1].st_info = ELF64_ST_INFO(STB_GLOBAL, STT_FUNC);
	sym[1].st_shndx = 12;
	sym[1].st_value = 0x1000;
	o->strsz += (uint32_t)strlen(name) + 1;
	memcpy(at(f, RODATA_A + ELF_SYMTAB, sizeof(sym)), sym, sizeof(sym));
	memcpy(at(f, RODATA_A + ELF_GNU_HASH, 16), hdr, 16);
	memcpy(at(f, RODATA_A + ELF_GNU_HASH + 16, 8), &bloom, 8);
	memcpy(at(f, RODATA_A + ELF_GNU_HASH + 24, 4), &bucket, 4);
	memcpy(at(f, RODATA_A + ELF_GNU_HASH + 28, 4), &chain, 4);
	w64(f, ELF_DYN + 1 * 16 + 8, o->strsz);
	w64(f, ELF_DYN + 4 * 16, DT_GNU_HASH);
	w64(f, ELF_DYN + 4 * 16 + 8, RODATA_A + ELF_GNU_HASH);
	w64(f, ELF_DYN + 5 * 16, DT_SYMTAB);
	w64(f, ELF_DYN + 5 * 16 + 8, ELF_SYMTAB);
}

static void test_ident_marker(void **state)
{
	struct fake f;
	struct hs_glibc_ident id;
	struct hs_glibc_heap *h = NULL;
	struct elf_offs o;

	(void)state;
	/* 2.36 exports __libc_scratch_buffer_dupfree, 2.37 no longer */
	build(&f, &T35, 35);
	o = add_elf(&f, 36);
	add_dynsym(&f, &o, "__libc_scratch_buffer_dupfree");
	open_fake(&f);
	assert_int_equal(hs_glibc_ident_read(f.t, RODATA_A, &id), 0);
	assert_int_equal(id.minor_lo, 36);
	assert_int_equal(id.minor_hi, 36);
	assert_true(id.marker_present);
	assert_int_equal(hs_glibc_open(f.t, NULL, &h), 0);
	assert_int_equal(h->version_minor, 36);
	assert_int_equal(h->version_minor_max, 36);
	hs_glibc_close(h);
	free_fake(&f);

	build(&f, &T35, 35);
	o = add_elf(&f, 36);
	add_dynsym(&f, &o, "malloc");
	open_fake(&f);
	assert_int_equal(hs_glibc_ident_read(f.t, RODATA_A, &id), 0);
	assert_int_equal(id.minor_lo, 37);
	assert_int_equal(id.minor_hi, 37);
	assert_false(id.marker_present);
	assert_non_null(id.marker);
	free_fake(&f);

	/* the marker only splits 2.36/2.37 */
	build(&f, &T35, 35);
	o = add_elf(&f, 39);
	add_dynsym(&f, &o, "malloc");
	open_fake(&f);
	assert_int_equal(hs_glibc_ident_read(f.t, RODATA_A, &id), 0);
	assert_int_equal(id.minor_lo, 39);
	assert_int_equal(id.minor_hi, 40);
	assert_null(id.marker);
	free_fake(&f);
}

static void test_ident_read(void **state)
{
	static const unsigned cases[][3] = {
		/* verdef, releases lo..hi (x86_64 abilists) */
		{ 17, 17, 17 }, { 18, 18, 21 }, { 22, 22, 22 }, { 29, 29, 29 },
		{ 30, 30, 31 }, { 35, 35, 35 }, { 36, 36, 37 }, { 38, 38, 38 },
		{ 39, 39, 40 }, { 41, 41, 41 },
	};
	struct hs_glibc_ident id;

	(void)state;
	for (size_t i = 0; i < HS_ARRAY_SIZE(cases); i++) {
		struct fake f;

		build(&f, &T35, 35);
		add_elf(&f, cases[i][0]);
		open_fake(&f);
		assert_int_equal(hs_glibc_ident_read(f.t, RODATA_A, &id), 0);
		assert_int_equal(id.verdef_minor, cases[i][0]);
		assert_int_equal(id.minor_lo, cases[i][1]);
		assert_int_equal(id.minor_hi, cases[i][2]);
		assert_int_equal(id.build_id_len, sizeof(fake_build_id));
		assert_memory_equal(id.build_id, fake_build_id, sizeof(fake_build_id));
		/* not the start of a mapping, or no ELF there */
		assert_int_equal(hs_glibc_ident_read(f.t, RODATA_A + 0x1000, &id),
				 -HS_E_NOT_FOUND);
		assert_int_equal(hs_glibc_ident_read(f.t, DATA_A, &id), -HS_E_CORRUPT);
		free_fake(&f);
	}
}

static void test_ident_hostile(void **state)
{
	struct fake f;
	struct hs_glibc_ident id;
	struct elf_offs o;
	Elf64_Verdef vd;
	uint16_t phnum = 0xffff;

	(void)state;
	/* a program header count beyond the bound */
	build(&f, &T35, 35);
	add_elf(&f, 36);
	memcpy(at(&f, RODATA_A + offsetof(Elf64_Ehdr, e_phnum), 2), &phnum, 2);
	open_fake(&f);
	assert_int_equal(hs_glibc_ident_read(f.t, RODATA_A, &id), -HS_E_CORRUPT);
	free_fake(&f);

	/* GLIBC_2.36's name offset past .dynstr: that definition is ignored */
	build(&f, &T35, 35);
	o = add_elf(&f, 36);
	w32(&f, o.verdef_glibc + sizeof(Elf64_Verdef), o.strsz + 4);
	open_fake(&f);
	assert_int_equal(hs_glibc_ident_read(f.t, RODATA_A, &id), 0);
	assert_int_equal(id.verdef_minor, 2); /* GLIBC_2.2.5 */
	free_fake(&f);

	/* a huge DT_VERDEFNUM and a chain that steps out of the mapping */
	build(&f, &T35, 35);
	o = add_elf(&f, 36);
	w64(&f, ELF_DYN + 3 * 16 + 8, 1ull << 40);
	memcpy(&vd, at(&f, o.verdef_glibc, sizeof(vd)), sizeof(vd));
	vd.vd_next = 0x7ffffff0;
	memcpy(at(&f, o.verdef_glibc, sizeof(vd)), &vd, sizeof(vd));
	open_fake(&f);
	assert_int_equal(hs_glibc_ident_read(f.t, RODATA_A, &id), 0);
	assert_int_equal(id.verdef_minor, 36);
	free_fake(&f);

	/* DT_STRTAB outside libc's first mapping */
	build(&f, &T35, 35);
	add_elf(&f, 36);
	w64(&f, ELF_DYN + 8, HEAP_A);
	open_fake(&f);
	assert_int_equal(hs_glibc_ident_read(f.t, RODATA_A, &id), -HS_E_NOT_FOUND);
	assert_int_equal(id.build_id_len, sizeof(fake_build_id));
	free_fake(&f);
}

/*
 * A "live" target (it has a suspend op) over the fake's regions, which
 * counts reads that touch libc's second r-- page (where the banner is).
 */
static struct {
	struct fake *f;
	unsigned banner_reads;
} spy;

static int spy_read(struct hs_target *t, hs_addr_t a, void *buf, size_t len, size_t *nread)
{
	(void)t;
	*nread = 0;
	if (!len)
		return 0;
	if (a < RODATA_A + 0x2000 && a + len > RODATA_A + 0x1000)
		spy.banner_reads++;
	for (size_t i = 0; i < spy.f->nr; i++) {
		const struct region *r = &spy.f->r[i];

		if (a >= r->addr && a < r->addr + r->len) {
			size_t n = r->addr + r->len - a < len ? (size_t)(r->addr + r->len - a) : len;

			memcpy(buf, r->buf + (a - r->addr), n);
			*nread = n;
			return 0;
		}
	}
	return -EFAULT;
}

static int spy_noop(struct hs_target *t)
{
	(void)t;
	return 0;
}

static const struct hs_target_ops spy_ops = {
	.name = "spy", .read = spy_read, .suspend = spy_noop, .resume = spy_noop,
};

static void test_version_live_no_rodata(void **state)
{
	static const unsigned perms[] = {
		HS_PERM_R, HS_PERM_R | HS_PERM_W, HS_PERM_R | HS_PERM_W,
		HS_PERM_R | HS_PERM_W, HS_PERM_R | HS_PERM_W, HS_PERM_R | HS_PERM_W,
		HS_PERM_R | HS_PERM_W,
	};
	struct fake f;
	struct hs_glibc_heap *h = NULL;
	struct hs_target *t;

	(void)state;
	/* the banner says 2.39: a live target must not read it */
	build(&f, &T35, 39);
	add_elf(&f, 36);
	spy.f = &f;
	spy.banner_reads = 0;
	t = hs_target_new(&spy_ops);
	t->caps = HS_CAP_STOPPABLE | HS_CAP_READ_FAULTS; /* reads fault pages in */
	for (size_t i = 0; i < f.nr; i++) {
		struct hs_map *m = hs_maps_add(&t->maps, f.r[i].addr, f.r[i].addr + f.r[i].len,
					       i < 2 ? LIBC : i == 2 ? "[heap]" : "");
		m->perms = perms[i];
	}
	hs_maps_sort(&t->maps);
	t->threads = hs_xcalloc(2, sizeof(*t->threads));
	t->nthreads = 2;
	for (int i = 0; i < 2; i++) {
		t->threads[i].tid = 100 + i;
		t->threads[i].has_regs = true;
		t->threads[i].regs.r[HS_REG_FS_BASE] = TLS_A + 0x2000 * (hs_addr_t)(i + 1);
	}
	hs_classify(t);
	assert_int_equal(hs_glibc_open(t, NULL, &h), 0);
	assert_int_equal(h->version_minor, 36);
	assert_int_equal(h->version_minor_max, 37);
	assert_string_equal(h->version_source, "verdef");
	assert_non_null(strstr(h->version, "GLIBC_2.36"));
	assert_int_equal(h->ident.build_id_len, sizeof(fake_build_id));
	assert_string_equal(h->layout->name, "2.35-2.40");
	assert_int_equal(hs_glibc_analyze(h), 0);
	dump_problems(h);
	assert_int_equal(h->nproblems, 0);
	assert_counts(&f, h);
	assert_int_equal(spy.banner_reads, 0);
	hs_glibc_close(h);
	hs_target_close(t);
	free_fake(&f);
}

static void test_version_post_mortem(void **state)
{
	struct fake f;
	struct hs_glibc_heap *h = NULL;

	(void)state;
	/* a core: verdef 2.36 means 2.36 or 2.37, the banner settles it */
	build(&f, &T35, 37);
	add_elf(&f, 36);
	open_fake(&f);
	assert_int_equal(hs_glibc_open(f.t, NULL, &h), 0);
	assert_int_equal(h->version_minor, 37);
	assert_int_equal(h->version_minor_max, 37);
	assert_string_equal(h->version_source, "banner");
	hs_glibc_close(h);
	free_fake(&f);

	/* a banner outside the verdef's range is not believed */
	build(&f, &T35, 39);
	add_elf(&f, 36);
	open_fake(&f);
	assert_int_equal(hs_glibc_open(f.t, NULL, &h), 0);
	assert_int_equal(h->version_minor, 36);
	assert_int_equal(h->version_minor_max, 37);
	assert_string_equal(h->version_source, "verdef");
	hs_glibc_close(h);
	free_fake(&f);

	/* verdef 2.35 is exact: the banner is not even needed */
	build(&f, &T35, 35);
	add_elf(&f, 35);
	memset(at(&f, RODATA_A + 0x1000, 0x1000), 0, 0x1000);
	open_fake(&f);
	assert_int_equal(hs_glibc_open(f.t, NULL, &h), 0);
	assert_int_equal(h->version_minor, 35);
	assert_int_equal(h->version_minor_max, 35);
	assert_string_equal(h->version_source, "verdef");
	hs_glibc_close(h);
	free_fake(&f);
}

static void test_candidates(void **state)
{
	struct fake f;
	struct hs_glibc_heap *h = NULL;
	struct hs_glibc_opts o;

	(void)state;
	build(&f, &T35, 35);
	open_fake(&f);
	/* the first guess (mp_) fails the checks, the second is main_arena */
	memset(&o, 0, sizeof(o));
	o.candidates[0] = MP_A;
	o.candidates[1] = ARENA_A;
	o.ncandidates = 2;
	o.candidate_how[0] = "symbol";
	o.candidate_how[1] = "disasm";
	o.flags = HS_GLIBC_NO_SCAN;
	assert_int_equal(hs_glibc_open(f.t, &o, &h), 0);
	assert_int_equal(h->main_arena, ARENA_A);
	assert_string_equal(h->main_arena_how, "disasm");
	assert_int_equal(hs_glibc_analyze(h), 0);
	assert_int_equal(h->nproblems, 0);
	assert_counts(&f, h);
	hs_glibc_close(h);

	/* only bad guesses: the scan, unless it is forbidden */
	o.ncandidates = 1;
	o.flags = 0;
	assert_int_equal(hs_glibc_open(f.t, &o, &h), 0);
	assert_int_equal(h->main_arena, ARENA_A);
	assert_string_equal(h->main_arena_how, "scan");
	hs_glibc_close(h);
	o.flags = HS_GLIBC_NO_SCAN;
	assert_int_equal(hs_glibc_open(f.t, &o, &h), -HS_E_NOT_FOUND);
	assert_non_null(h);
	hs_glibc_close(h);

	/* a caller's address keeps the caller's name for its source */
	memset(&o, 0, sizeof(o));
	o.main_arena = ARENA_A;
	o.main_arena_how = "symbol";
	assert_int_equal(hs_glibc_open(f.t, &o, &h), 0);
	assert_string_equal(h->main_arena_how, "symbol");
	assert_int_equal(h->nproblems, 0);
	hs_glibc_close(h);
	free_fake(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout_table),
		cmocka_unit_test(test_blocks_view),
		cmocka_unit_test(test_glibc_2_27),
		cmocka_unit_test(test_mmapped_split_by_mprotect),
		cmocka_unit_test(test_split_heaps),
		cmocka_unit_test(test_glibc_2_31),
		cmocka_unit_test(test_glibc_2_35),
		cmocka_unit_test(test_glibc_2_39),
		cmocka_unit_test(test_glibc_2_12),
		cmocka_unit_test(test_glibc_2_17_rhel7),
		cmocka_unit_test(test_unnamed_core_banner_main_arena),
		cmocka_unit_test(test_caller_main_arena_inferred_rhel7),
		cmocka_unit_test(test_unsupported_version),
		cmocka_unit_test(test_inferred_layout),
		cmocka_unit_test(test_caller_main_arena),
		cmocka_unit_test(test_corrupt_header_resync),
		cmocka_unit_test(test_corrupt_header_past_end),
		cmocka_unit_test(test_fastbin_cycle),
		cmocka_unit_test(test_tcache_cycle),
		cmocka_unit_test(test_bin_cycle_bounded),
		cmocka_unit_test(test_wild_list_pointer),
		cmocka_unit_test(test_for_each_chunk),
		cmocka_unit_test(test_free_set_cap),
		cmocka_unit_test(test_no_glibc),
		cmocka_unit_test(test_ident_read),
		cmocka_unit_test(test_ident_hostile),
		cmocka_unit_test(test_ident_marker),
		cmocka_unit_test(test_version_live_no_rodata),
		cmocka_unit_test(test_version_post_mortem),
		cmocka_unit_test(test_candidates),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
