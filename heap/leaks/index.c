/*
 * The chunk index and the marking engine of hs_leaks (doc/leaks.md).
 *
 * Index: every heap segment gets a run of bits, one per 16-byte granule,
 * in each bitmap: `start` (a chunk, free or not, starts here), `inuse`,
 * and the per-phase marks.  A pointer v is resolved to its chunk with no
 * search: the last start bit at or below (v - 16) within one 64-bit word,
 * else `cover` (the chunk covering the word's first granule).  Mmapped
 * chunks are few and large: a sorted array.
 *
 * Engine: a chunk to scan is "pending" (a phase-specific expression of
 * its bits).  Scheduling one sets its window's dirty bit, or pushes it on
 * a bounded stack when it lies in the window being processed (so a list
 * that runs backwards through memory costs no extra sweep); a full stack
 * leaves the window dirty, and the window is processed again.  lk_run()
 * sweeps the dirty windows in address order until none is left.  A
 * window with many pending chunks is read whole (one 256 KiB read); a
 * window with few has them read one by one.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define IS_MMAPPED_REF(r) ((r) & LK_MM)
/* A window is read whole from this many single-chunk reads on. */
#define DENSE_READS 8

/* ---- building ---- */

struct build {
	struct lk *L;
	size_t seg;             /* cache */
	int err;
};

const struct lk_seg *lk_seg_search(struct lk *L, hs_addr_t a)
{
	size_t lo = 0, hi = L->nsegs;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (L->segs[mid].hi <= a)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < L->nsegs && a >= L->segs[lo].lo && a < L->segs[lo].hi) {
		__atomic_store_n(&L->last_seg, lo, __ATOMIC_RELAXED);
		return &L->segs[lo];
	}
	return NULL;
}

const struct lk_seg *lk_seg_of_gran(const struct lk *L, uint64_t g)
{
	return &L->segs[L->win_seg[g / LK_WIN_GRANS]];
}

static int build_cb(void *ud, const struct hs_glibc_chunk *c)
{
	struct build *b = ud;
	struct lk *L = b->L;

	if (c->arena < 0 || c->state == HS_CHUNK_MMAPPED) {
		if (c->state != HS_CHUNK_MMAPPED)
			return 0;
		HS_ALLOC_GROW(L->mm, L->nmm + 1, L->amm);
		L->mm[L->nmm].addr = c->addr;
		L->mm[L->nmm].size = c->size;
		L->mm[L->nmm].f = 0;
		L->nmm++;
		return 0;
	}
	{
		const struct lk_seg *s = lk_seg_of_addr(L, c->addr);
		uint64_t g;

		if (!s || (c->addr & 15))
			return 0;
		g = s->base + ((c->addr - s->lo) >> LK_GRAN_SHIFT);
		lk_set(L->start, g);
		if (c->state == HS_CHUNK_INUSE)
			lk_set(L->inuse, g);
	}
	return 0;
}

static int cmp_seg(const void *x, const void *y)
{
	const struct lk_seg *a = x, *b = y;

	return a->lo < b->lo ? -1 : a->lo > b->lo;
}

static int cmp_mm(const void *x, const void *y)
{
	const struct lk_mm *a = x, *b = y;

	return a->addr < b->addr ? -1 : a->addr > b->addr;
}

static uint64_t *bm_alloc(struct lk *L)
{
	return hs_xcalloc(L->nwords ? L->nwords : 1, sizeof(uint64_t));
}

int lk_build(struct lk *L, uint64_t max_mem, bool want_types)
{
	struct hs_glibc_heap *h = L->h;
	struct build b = { L, 0, 0 };
	uint64_t gran = 0, need;
	unsigned nbm;
	int ret;

	L->t = h->t;
	L->want_types = want_types;
	L->cur_win = LK_NONE;
	L->leader = LK_NONE;
	for (size_t i = 0; i < h->narenas; i++)
		for (size_t j = 0; j < h->arenas[i].nsegs; j++) {
			const struct hs_glibc_arena *a = &h->arenas[i];
			const struct hs_glibc_seg *sg = &a->segs[j];
			struct lk_seg s;

			if (sg->end <= sg->start || (sg->start & 15))
				continue;
			s.lo = sg->start;
			s.hi = sg->end;
			if (sg->has_top && a->top == sg->end && a->top_size &&
			    a->top + a->top_size > s.hi && a->top + a->top_size <= sg->map_end)
				s.hi = a->top + a->top_size;
			L->segs = hs_xrealloc(L->segs, (L->nsegs + 1) * sizeof(*L->segs));
			L->segs[L->nsegs++] = s;
		}
	if (L->nsegs)
		qsort(L->segs, L->nsegs, sizeof(*L->segs), cmp_seg);
	for (size_t i = 0; i < L->nsegs; i++) {
		struct lk_seg *s = &L->segs[i];

		if (i && s->lo < L->segs[i - 1].hi) {
			/* Overlapping segments: a corrupt arena; keep the
			 * first one's claim. */
			s->lo = L->segs[i - 1].hi;
			if (s->hi < s->lo)
				s->hi = s->lo;
		}
		s->ngran = (s->hi - s->lo) >> LK_GRAN_SHIFT;
		s->base = gran;
		gran += (s->ngran + LK_WIN_GRANS - 1) / LK_WIN_GRANS * LK_WIN_GRANS;
	}
	L->nwords = gran / 64;
	L->nwin = gran / LK_WIN_GRANS;
	if (gran >= (uint64_t)UINT32_MAX / 2)
		return -HS_E_BUDGET; /* 32 GiB of heap: refs and cover are 32 bits */
	nbm = 7 + (want_types ? 1 : 0);
	need = L->nwords * 8 * nbm + L->nwords * 4 + L->nwin * 4 + LK_WIN_BYTES +
	       LK_SCRATCH + LK_STACK * 8;
	if (need > max_mem)
		return -HS_E_BUDGET;
	if (L->nsegs) {
		L->lo_all = L->segs[0].lo;
		L->hi_all = L->segs[L->nsegs - 1].hi;
	}
	L->start = bm_alloc(L);
	L->inuse = bm_alloc(L);
	L->mdef = bm_alloc(L);
	L->many = bm_alloc(L);
	L->sdef = bm_alloc(L);
	L->sany = bm_alloc(L);
	if (want_types)
		L->typed = bm_alloc(L);
	L->cover = hs_xmalloc((L->nwords ? L->nwords : 1) * sizeof(uint32_t));
	L->win_seg = hs_xmalloc((L->nwin ? L->nwin : 1) * sizeof(uint32_t));
	L->dirty = hs_xcalloc((L->nwin + 63) / 64 + 1, sizeof(uint64_t));
	L->wbuf = hs_xmalloc(LK_WIN_BYTES + 16);
	L->scratch = hs_xmalloc(LK_SCRATCH);
	L->stack = hs_xmalloc(LK_STACK * sizeof(uint64_t));
	for (size_t i = 0; i < L->nsegs; i++)
		for (uint64_t w = L->segs[i].base / LK_WIN_GRANS;
		     w < (L->segs[i].base + L->segs[i].ngran + LK_WIN_GRANS - 1) / LK_WIN_GRANS;
		     w++)
			L->win_seg[w] = (uint32_t)i;

	ret = hs_glibc_for_each_chunk(h, build_cb, &b);
	if (ret)
		return ret;
	/* A sentinel start (free) where each walk stopped, so a pointer past
	 * the last parsed chunk resolves to nothing. */
	for (size_t i = 0; i < h->narenas; i++)
		for (size_t j = 0; j < h->arenas[i].nsegs; j++) {
			const struct hs_glibc_seg *sg = &h->arenas[i].segs[j];
			const struct lk_seg *s = lk_seg_of_addr(L, sg->start);

			if (s && sg->walked_to > s->lo && sg->walked_to < s->hi &&
			    !(sg->walked_to & 15) && !(sg->has_top && sg->walked_to == sg->end))
				lk_set(L->start, s->base + ((sg->walked_to - s->lo) >> LK_GRAN_SHIFT));
		}
	for (size_t i = 0; i < L->nsegs; i++) {
		const struct lk_seg *s = &L->segs[i];
		uint32_t last = UINT32_MAX;
		uint64_t w0 = s->base / 64, w1 = (s->base + s->ngran + 63) / 64;

		for (uint64_t w = w0; w < w1; w++) {
			L->cover[w] = last;
			if (L->start[w])
				last = (uint32_t)(w * 64 + 63 - (unsigned)__builtin_clzll(L->start[w]));
		}
		/* Words of the window padding after the segment. */
		for (uint64_t w = w1; w < (s->base / LK_WIN_GRANS + (s->ngran + LK_WIN_GRANS - 1) / LK_WIN_GRANS) * LK_WIN_WORDS; w++)
			L->cover[w] = UINT32_MAX;
	}
	if (L->nmm)
		qsort(L->mm, L->nmm, sizeof(*L->mm), cmp_mm);
	if (L->nmm > UINT32_MAX / 2)
		return -HS_E_BUDGET;
	if (L->nmm) {
		L->mm_lo = L->mm[0].addr;
		L->mm_hi = L->mm[L->nmm - 1].addr + L->mm[L->nmm - 1].size;
	}
	return 0;
}

void lk_free(struct lk *L)
{
	free(L->segs);
	free(L->win_seg);
	free(L->start);
	free(L->inuse);
	free(L->mdef);
	free(L->many);
	free(L->sdef);
	free(L->sany);
	free(L->typed);
	free(L->ind);
	free(L->cover);
	free(L->mm);
	free(L->dirty);
	free(L->wbuf);
	free(L->scratch);
	free(L->stack);
	free(L->edges);
	memset(L, 0, sizeof(*L));
}

/* ---- lookups ---- */

hs_addr_t lk_addr(const struct lk *L, uint64_t ref)
{
	const struct lk_seg *s;

	if (IS_MMAPPED_REF(ref))
		return L->mm[ref & ~LK_MM].addr;
	s = lk_seg_of_gran(L, ref);
	return s->lo + ((ref - s->base) << LK_GRAN_SHIFT);
}

uint64_t lk_size(const struct lk *L, uint64_t ref)
{
	const struct lk_seg *s;
	uint64_t end, w, bits;

	if (IS_MMAPPED_REF(ref))
		return L->mm[ref & ~LK_MM].size;
	s = lk_seg_of_gran(L, ref);
	end = s->base + s->ngran;
	w = ref >> 6;
	bits = (ref & 63) == 63 ? 0 : L->start[w] & (~0ull << ((ref & 63) + 1));
	while (!bits && ++w * 64 < end)
		bits = L->start[w];
	if (bits) {
		uint64_t n = w * 64 + (unsigned)__builtin_ctzll(bits);

		if (n < end)
			return (n - ref) << LK_GRAN_SHIFT;
	}
	return (end - ref) << LK_GRAN_SHIFT;
}

/* ---- the engine ---- */

void lk_schedule(struct lk *L, uint64_t ref)
{
	uint64_t win;

	if (IS_MMAPPED_REF(ref)) {
		L->mm_dirty = true;
		return;
	}
	win = ref / LK_WIN_GRANS;
	if (win == L->cur_win && L->sp < LK_STACK) {
		L->stack[L->sp++] = ref;
		return;
	}
	L->dirty[win >> 6] |= 1ull << (win & 63);
}

void lk_dirty_all(struct lk *L)
{
	for (uint64_t w = 0; w < L->nwin; w++)
		L->dirty[w >> 6] |= 1ull << (w & 63);
	L->mm_dirty = L->nmm > 0;
}

/* Feeds [addr, addr+len) of chunk ref to lk_visit, reading it from the
 * window buffer or the target. */
static int feed(struct lk *L, uint64_t ref, hs_addr_t addr, uint64_t len)
{
	bool first = true;

	if (L->wlen && addr >= L->wlo && addr + len <= L->wlo + L->wlen) {
		lk_visit(L, ref, addr, L->wbuf + (addr - L->wlo), (size_t)len, true);
		L->scanned_bytes += len;
		return 0;
	}
	while (len) {
		size_t want = len < LK_SCRATCH ? (size_t)len : LK_SCRATCH, got = 0;
		int ret = hs_target_read(L->t, addr, L->scratch, want, &got);

		if (ret == -ESRCH)
			return ret;
		if (ret < 0 || got == 0) {
			/* Unreadable page: skip to the next one. */
			uint64_t skip = 4096 - (addr & 4095);

			if (skip > len)
				skip = len;
			L->unreadable += skip;
			addr += skip;
			len -= skip;
			first = false;
			continue;
		}
		got &= ~(size_t)7;
		if (!got)
			break;
		lk_visit(L, ref, addr, L->scratch, got, first);
		L->scanned_bytes += got;
		first = false;
		addr += got;
		len -= got;
		if (hs_interrupted)
			return -HS_E_INTERRUPTED;
	}
	return 0;
}

int lk_scan_chunk(struct lk *L, uint64_t ref)
{
	hs_addr_t a;
	uint64_t size, len;
	int ret;

	if (!lk_begin(L, ref))
		return 0;
	a = lk_addr(L, ref);
	size = lk_size(L, ref);
	/* User bytes: from the header's end to the next chunk's size field
	 * (its prev_size is ours while we are in use); an mmapped chunk has
	 * no successor. */
	len = IS_MMAPPED_REF(ref) ? size - 16 : size - 8;
	if (!IS_MMAPPED_REF(ref) && !L->wlen && L->cur_win != LK_NONE &&
	    ++L->win_reads == DENSE_READS) {
		/* Many chunks of this window are being read one by one: read
		 * the whole window instead. */
		const struct lk_seg *s = lk_seg_of_gran(L, ref);
		uint64_t g0 = L->cur_win * LK_WIN_GRANS;
		hs_addr_t lo = s->lo + ((g0 - s->base) << LK_GRAN_SHIFT);
		hs_addr_t hi = lo + LK_WIN_BYTES;
		size_t got = 0;

		if (hi > s->hi + 8)
			hi = s->hi + 8;
		ret = hs_target_read(L->t, lo, L->wbuf, (size_t)(hi - lo), &got);
		if (ret == -ESRCH)
			return ret;
		L->wlo = lo;
		L->wlen = got;
	}
	return feed(L, ref, a + 16, len);
}

static int drain(struct lk *L)
{
	while (L->sp) {
		uint64_t ref = L->stack[--L->sp];
		int ret;

		if (!lk_pending(L, ref))
			continue;
		ret = lk_scan_chunk(L, ref);
		if (ret)
			return ret;
	}
	return 0;
}

static int process_window(struct lk *L, uint64_t win)
{
	uint64_t w0 = win * LK_WIN_WORDS, w1 = w0 + LK_WIN_WORDS;
	int ret = 0;

	L->cur_win = win;
	L->wlen = 0;
	L->win_reads = 0;
	{
		/* Many pending chunks: one read of the whole window. */
		unsigned n = 0;

		for (uint64_t w = w0; w < w1 && n < DENSE_READS; w++)
			n += (unsigned)__builtin_popcountll(lk_pending_word(L, w));
		if (n >= DENSE_READS)
			L->win_reads = DENSE_READS - 1;
	}
	for (;;) {
		for (uint64_t w = w0; w < w1; w++) {
			uint64_t m = lk_pending_word(L, w);

			while (m) {
				uint64_t b = (unsigned)__builtin_ctzll(m);

				ret = lk_scan_chunk(L, w * 64 + b);
				if (!ret)
					ret = drain(L);
				if (ret)
					goto out;
				m = b == 63 ? 0 : lk_pending_word(L, w) & (~0ull << (b + 1));
			}
		}
		if (!(L->dirty[win >> 6] & (1ull << (win & 63))))
			break;
		/* The stack overflowed: go over the window again. */
		L->dirty[win >> 6] &= ~(1ull << (win & 63));
		if (hs_interrupted) {
			ret = -HS_E_INTERRUPTED;
			break;
		}
	}
out:
	L->cur_win = LK_NONE;
	L->wlen = 0;
	L->sp = 0;
	return ret;
}

int lk_run(struct lk *L)
{
	for (;;) {
		bool any = false;
		uint64_t nw = (L->nwin + 63) / 64;

		for (uint64_t i = 0; i < nw; i++) {
			while (L->dirty[i]) {
				uint64_t b = (unsigned)__builtin_ctzll(L->dirty[i]);
				int ret;

				L->dirty[i] &= ~(1ull << b);
				any = true;
				ret = process_window(L, i * 64 + b);
				if (ret)
					return ret;
			}
			if (hs_interrupted)
				return -HS_E_INTERRUPTED;
		}
		if (L->mm_dirty) {
			L->mm_dirty = false;
			for (size_t i = 0; i < L->nmm; i++)
				if (lk_pending(L, LK_MM | i)) {
					int ret = lk_scan_chunk(L, LK_MM | i);

					any = true;
					if (ret)
						return ret;
				}
		}
		if (!any)
			return 0;
		L->passes++;
	}
}

uint64_t lk_lookup_mm(const struct lk *L, uint64_t v, bool *is_start)
{
	size_t lo = 0, hi = L->nmm;

	if (!L->nmm || v - L->mm_lo >= L->mm_hi - L->mm_lo)
		return LK_NONE;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (L->mm[mid].addr + L->mm[mid].size <= v)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < L->nmm && v >= L->mm[lo].addr + 16 && v < L->mm[lo].addr + L->mm[lo].size) {
		*is_start = v == L->mm[lo].addr + 16;
		return LK_MM | lo;
	}
	return LK_NONE;
}
