/*
 * Private to heap/leaks/: the chunk index (bitmaps over the heap segments
 * plus the mmapped chunks) and the marking engine that leaks.c and cxx.c
 * share (each call of hs_leaks_run / hs_cxx_census owns one struct lk).  See doc/leaks.md for the design.
 */
#ifndef HS_LEAKS_INTERNAL_H
#define HS_LEAKS_INTERNAL_H

#include "hs_leaks.h"

#include <errno.h>
#include <string.h>

/* One granule = 16 bytes of heap = one bit in every bitmap. */
#define LK_GRAN_SHIFT 4
/* A window: 16384 granules = 256 KiB of heap, 256 bitmap words.  Segment
 * bases are window-aligned, so a window never spans two segments. */
#define LK_WIN_GRANS 16384u
#define LK_WIN_WORDS (LK_WIN_GRANS / 64)
#define LK_WIN_BYTES ((size_t)LK_WIN_GRANS << LK_GRAN_SHIFT)
#define LK_SCRATCH (64u << 10)
#define LK_STACK 65536u
#define LK_NONE UINT64_MAX
/* Chunk refs: a heap chunk is its global granule index; an mmapped chunk
 * is LK_MM | its index in mm[]. */
#define LK_MM (1ull << 63)

struct lk_seg {
	hs_addr_t lo, hi;        /* [first chunk, end of the last or of top) */
	uint64_t base;           /* global granule index of lo (window-aligned) */
	uint64_t ngran;          /* granules of [lo, hi) */
};

/* Per-chunk bits: the same names for mmapped chunks (mm[].f). */
enum lk_bit {
	LK_MDEF = 1 << 0,        /* reached by a start pointer along a definite
				    path; for leaked chunks: VIS */
	LK_MANY = 1 << 1,        /* reached at all (anchored) */
	LK_SDEF = 1 << 2,        /* scanned as definite; leaked chunks: REF */
	LK_SANY = 1 << 3,        /* scanned; leaked chunks: OUT */
	LK_TYPED = 1 << 4,       /* first word is a vtable pointer */
	LK_IND = 1 << 5,         /* leaked: reached from another leaked chunk
				    in the head/cycle closure */
};

struct lk_mm {
	hs_addr_t addr;
	uint64_t size;
	unsigned f;              /* enum lk_bit */
};

enum lk_phase {
	LK_PH_MARK,              /* from the roots */
	LK_PH_CLOSE,             /* leaked closure from heads / a cycle head */
};

struct lk {
	struct hs_glibc_heap *h;
	struct hs_target *t;
	const struct hs_vtables *vt;
	bool want_types;

	struct lk_seg *segs;
	size_t nsegs;
	size_t last_seg;         /* lookup cache */
	hs_addr_t lo_all, hi_all;
	uint64_t nwords, nwin;
	uint32_t *win_seg;       /* window -> segment */
	uint64_t *start, *inuse, *mdef, *many, *sdef, *sany, *typed, *ind;
	uint32_t *cover;         /* per word: the (global) granule of the chunk
				    covering its first granule; UINT32_MAX:
				    none */
	struct lk_mm *mm;
	size_t nmm, amm;
	hs_addr_t mm_lo, mm_hi;

	/* engine */
	enum lk_phase phase;
	uint64_t leader;         /* LK_PH_CLOSE: the cycle head, or LK_NONE */
	uint64_t *dirty;         /* one bit per window */
	bool mm_dirty;
	unsigned char *wbuf;     /* the current window, when read whole */
	hs_addr_t wlo, wlen;     /* what wbuf holds */
	uint64_t cur_win;        /* window being processed, or LK_NONE */
	unsigned win_reads;      /* single-chunk reads in the current window */
	unsigned char *scratch;
	uint64_t *stack;
	size_t sp;
	/* The sweep over leaked chunks (ref_pass) records each pointer from
	 * a leaked chunk into another (source, target as lk_ref32), in
	 * source order, while they fit in max_edges; the closures then need
	 * no second read. */
	uint32_t (*edges)[2];
	size_t nedges, max_edges;
	bool edges_over;
	bool cur_def;            /* LK_PH_MARK: the chunk is scanned definite */
	bool cur_first;          /* and for the first time */

	/* stats */
	uint64_t scanned_bytes, unreadable, passes;
};

/*
 * The granule where the next chunk starts after the one at bit b of
 * start-bitmap word w, or g_end if none before it.  *nw and *nbits carry
 * the word being scanned (and its bits not yet passed) from one call to
 * the next, so a walk over a window costs one pass over its words.
 */
static inline uint64_t lk_next_start(const struct lk *L, uint64_t w, unsigned b,
				     uint64_t g_end, uint64_t *nw, uint64_t *nbits)
{
	uint64_t next;

	if (*nw != w) {
		*nw = w;
		*nbits = L->start[w];
	}
	*nbits &= b == 63 ? 0 : ~0ull << (b + 1);
	while (!*nbits && (*nw + 1) * 64 < g_end)
		*nbits = L->start[++*nw];
	next = *nbits ? *nw * 64 + (unsigned)__builtin_ctzll(*nbits) : g_end;
	return next > g_end ? g_end : next;
}

/* Index every chunk of L->h; allocates the bitmaps (budget checked). */
int lk_build(struct lk *L, uint64_t max_mem, bool want_types) HS_MUST_CHECK;
void lk_free(struct lk *L);

hs_addr_t lk_addr(const struct lk *L, uint64_t ref);
/* Chunk size (from the next chunk start, or the segment end). */
uint64_t lk_size(const struct lk *L, uint64_t ref);
const struct lk_seg *lk_seg_of_gran(const struct lk *L, uint64_t g);

static inline bool lk_bit(const uint64_t *bm, uint64_t g)
{
	return (bm[g >> 6] >> (g & 63)) & 1;
}
static inline void lk_set(uint64_t *bm, uint64_t g)
{
	bm[g >> 6] |= 1ull << (g & 63);
}
static inline void lk_clr(uint64_t *bm, uint64_t g)
{
	bm[g >> 6] &= ~(1ull << (g & 63));
}

/* The segment holding a, or NULL (the last one found is tried first). */
const struct lk_seg *lk_seg_search(struct lk *L, hs_addr_t a);
static inline const struct lk_seg *lk_seg_of_addr(struct lk *L, hs_addr_t a)
{
	const struct lk_seg *s;

	if (!L->nsegs)
		return NULL;
	s = &L->segs[__atomic_load_n(&L->last_seg, __ATOMIC_RELAXED)];
	if (a - s->lo < s->hi - s->lo)
		return s;
	return lk_seg_search(L, a);
}

static inline uint64_t *lk_bm(const struct lk *L, unsigned bit)
{
	switch (bit) {
	case LK_MDEF: return L->mdef;
	case LK_MANY: return L->many;
	case LK_SDEF: return L->sdef;
	case LK_SANY: return L->sany;
	case LK_TYPED: return L->typed;
	case LK_IND: return L->ind;
	}
	return NULL;
}

/* Per-chunk flag access for both kinds of chunk (bit: one enum lk_bit). */
static inline bool lk_get(const struct lk *L, uint64_t ref, unsigned bit)
{
	const uint64_t *bm;

	if (ref & LK_MM)
		return (L->mm[ref & ~LK_MM].f & bit) != 0;
	bm = lk_bm(L, bit);
	return bm && lk_bit(bm, ref);
}

static inline void lk_put(struct lk *L, uint64_t ref, unsigned bit)
{
	uint64_t *bm;

	if (ref & LK_MM) {
		L->mm[ref & ~LK_MM].f |= bit;
		return;
	}
	bm = lk_bm(L, bit);
	if (bm)
		lk_set(bm, ref);
}

static inline void lk_unput(struct lk *L, uint64_t ref, unsigned bit)
{
	uint64_t *bm;

	if (ref & LK_MM) {
		L->mm[ref & ~LK_MM].f &= ~bit;
		return;
	}
	bm = lk_bm(L, bit);
	if (bm)
		lk_clr(bm, ref);
}

uint64_t lk_lookup_mm(const struct lk *L, uint64_t v, bool *is_start);

/* The chunk v points into (start or interior of its user bytes), or
 * LK_NONE; *is_start: v is the user pointer.  In-use chunks only. */
static inline uint64_t lk_lookup(struct lk *L, uint64_t v, bool *is_start)
{
	if (v - 16 - L->lo_all < L->hi_all - L->lo_all) {
		hs_addr_t a = v - 16;
		const struct lk_seg *s = lk_seg_of_addr(L, a);
		uint64_t g, w, bits, c, q;

		if (!s || v - 8 >= s->hi)
			return lk_lookup_mm(L, v, is_start);
		g = s->base + ((a - s->lo) >> LK_GRAN_SHIFT);
		w = g >> 6;
		bits = L->start[w] & (~0ull >> (63 - (g & 63)));
		if (bits)
			c = w * 64 + 63 - (unsigned)__builtin_clzll(bits);
		else if (L->cover[w] != UINT32_MAX)
			c = L->cover[w];
		else
			return LK_NONE;
		if (!lk_bit(L->inuse, c))
			return LK_NONE;
		/* v in the next chunk's size field: in no chunk.  The next
		 * chunk's prev_size (v - 8 < next) is the last word of ours. */
		q = (v - 8) & ~15ull;
		if (q > a && q < s->hi &&
		    lk_bit(L->start, s->base + ((q - s->lo) >> LK_GRAN_SHIFT)))
			return LK_NONE;
		*is_start = v == s->lo + ((c - s->base) << LK_GRAN_SHIFT) + 16;
		return c;
	}
	return lk_lookup_mm(L, v, is_start);
}

/* A chunk ref in 32 bits (heap granule, or past them an mmapped index). */
static inline uint32_t lk_ref32(const struct lk *L, uint64_t ref)
{
	return ref & LK_MM ? (uint32_t)(L->nwords * 64 + (ref & ~LK_MM)) : (uint32_t)ref;
}
static inline uint64_t lk_ref64(const struct lk *L, uint32_t r)
{
	return r >= L->nwords * 64 ? LK_MM | (r - L->nwords * 64) : r;
}

/* Schedules chunk ref for scanning in the current phase: pushes it when
 * it is in the window being processed, else marks its window dirty. */
void lk_schedule(struct lk *L, uint64_t ref);
/* Marks every window (and the mmapped chunks) dirty. */
void lk_dirty_all(struct lk *L);
/* Sweeps dirty windows until none is left (phase in L->phase). */
int lk_run(struct lk *L) HS_MUST_CHECK;

/* Reads chunk ref's user bytes and calls lk_scan_words on them (phase
 * dispatch is in leaks.c: lk_visit). */
int lk_scan_chunk(struct lk *L, uint64_t ref) HS_MUST_CHECK;

/*
 * Every in-use chunk once, in address order (heap segments, then mmapped
 * chunks), with its first user word read when need(L, ref) says so (a
 * window read whole where many are needed).  need may be NULL.
 */
typedef bool (*lk_need_fn)(const struct lk *L, uint64_t ref);
typedef void (*lk_each_fn)(void *ud, uint64_t ref, hs_addr_t addr, uint64_t size,
			   bool have_word, uint64_t word);
/* Inline, so that each caller's need and cb are inlined into the loop. */
static inline __attribute__((always_inline)) int
lk_for_each_inuse(struct lk *L, lk_need_fn need, lk_each_fn cb, void *ud)
{
	for (size_t si = 0; si < L->nsegs; si++) {
		const struct lk_seg *s = &L->segs[si];
		uint64_t g_end = s->base + s->ngran;
		/* The next chunk start after the current chunk, found once per
		 * chunk by going forward through `start` (chunks are in order). */
		uint64_t nw = s->base / 64, nbits = g_end > s->base ? L->start[nw] : 0;

		for (uint64_t g0 = s->base; g0 < g_end; g0 += LK_WIN_GRANS) {
			uint64_t g1 = g0 + LK_WIN_GRANS < g_end ? g0 + LK_WIN_GRANS : g_end;
			hs_addr_t wlo = s->lo + ((g0 - s->base) << LK_GRAN_SHIFT);
			unsigned nneed = 0;
			size_t got = 0;
			bool whole = false;

			for (uint64_t w = g0 / 64; need && w < (g1 + 63) / 64 && nneed < 24; w++) {
				uint64_t m = L->inuse[w];

				while (m && nneed < 24) {
					uint64_t g = w * 64 + (unsigned)__builtin_ctzll(m);

					m &= m - 1;
					if (need(L, g))
						nneed++;
				}
			}
			if (nneed >= 24) {
				hs_addr_t whi = wlo + LK_WIN_BYTES;

				if (whi > s->hi)
					whi = s->hi;
				if (hs_target_read(L->t, wlo, L->wbuf, (size_t)(whi - wlo), &got) == -ESRCH)
					return -ESRCH;
				whole = true;
			}
			for (uint64_t w = g0 / 64; w < (g1 + 63) / 64; w++) {
				uint64_t m = L->inuse[w];

				while (m) {
					uint64_t b = (unsigned)__builtin_ctzll(m);
					uint64_t g = w * 64 + b, next;
					hs_addr_t a = s->lo + ((g - s->base) << LK_GRAN_SHIFT);
					uint64_t word = 0;
					bool have = false;

					m &= m - 1;
					next = lk_next_start(L, w, (unsigned)b, g_end, &nw, &nbits);
					if (need && need(L, g)) {
						if (whole && a + 24 <= wlo + got) {
							memcpy(&word, L->wbuf + (a + 16 - wlo), 8);
							have = true;
						} else {
							have = hs_target_read_full(L->t, a + 16, &word, 8) == 0;
						}
					}
					cb(ud, g, a, (next - g) << LK_GRAN_SHIFT, have, word);
				}
			}
			if (hs_interrupted)
				return -HS_E_INTERRUPTED;
		}
	}
	for (size_t i = 0; i < L->nmm; i++) {
		uint64_t word = 0;
		bool have = false;

		if (need && need(L, LK_MM | i))
			have = hs_target_read_full(L->t, L->mm[i].addr + 16, &word, 8) == 0;
		cb(ud, LK_MM | i, L->mm[i].addr, L->mm[i].size, have, word);
	}
	return 0;
}


/* ---- phase hooks (inline: the engine calls them per chunk and word) ---- */

static inline uint64_t lk_pending_word(const struct lk *L, uint64_t w)
{
	switch (L->phase) {
	case LK_PH_MARK:
		return (L->mdef[w] & ~L->sdef[w]) | (L->many[w] & ~L->sany[w]);
	case LK_PH_CLOSE:
		return L->mdef[w] & L->sany[w] & ~L->many[w];
	}
	return 0;
}

static inline bool lk_pending(const struct lk *L, uint64_t ref)
{
	bool many = lk_get(L, ref, LK_MANY);

	switch (L->phase) {
	case LK_PH_MARK:
		return (lk_get(L, ref, LK_MDEF) && !lk_get(L, ref, LK_SDEF)) ||
		       (many && !lk_get(L, ref, LK_SANY));
	case LK_PH_CLOSE:
		return !many && lk_get(L, ref, LK_MDEF) && lk_get(L, ref, LK_SANY);
	}
	return false;
}

static inline bool lk_begin(struct lk *L, uint64_t ref)
{
	switch (L->phase) {
	case LK_PH_MARK:
		L->cur_first = !lk_get(L, ref, LK_SANY);
		if (lk_get(L, ref, LK_MDEF) && !lk_get(L, ref, LK_SDEF)) {
			L->cur_def = true;
			lk_put(L, ref, LK_SDEF);
			lk_put(L, ref, LK_SANY);
			return true;
		}
		if (lk_get(L, ref, LK_MANY) && L->cur_first) {
			L->cur_def = false;
			lk_put(L, ref, LK_SANY);
			return true;
		}
		return false;
	case LK_PH_CLOSE:
		lk_unput(L, ref, LK_SANY); /* OUT: done with it */
		L->cur_first = false;
		return true;
	}
	return false;
}

static inline void lk_mark(struct lk *L, uint64_t r, bool start_def)
{
	if (start_def) {
		if (!lk_get(L, r, LK_MDEF)) {
			lk_put(L, r, LK_MDEF);
			lk_put(L, r, LK_MANY);
			lk_schedule(L, r);
		}
	} else if (!lk_get(L, r, LK_MANY)) {
		lk_put(L, r, LK_MANY);
		lk_schedule(L, r);
	}
}

/*
 * memcheck's interior-pointer heuristics (doc/leaks.md): true when v, a
 * pointer into chunk r but not at its start, is one memcheck counts as a
 * start pointer: 24 bytes in after a (length, capacity) pair that fills
 * the chunk (std::string's old layout), 8 bytes in after the length of the
 * rest or after an element count that divides it (new[]), or at a second
 * vtable pointer of an object that starts with one (multiple
 * inheritance).  The request size they compare is unknown to glibc: any
 * size that rounds to r's chunk size passes.
 */
bool lk_heuristic(struct lk *L, uint64_t r, uint64_t v);

static inline bool lk_maybe_chunk(const struct lk *L, uint64_t v)
{
	return v - 16 - L->lo_all < L->hi_all - L->lo_all ||
	       v - L->mm_lo < L->mm_hi - L->mm_lo;
}

static inline void lk_visit(struct lk *L, uint64_t ref, hs_addr_t addr,
			    const unsigned char *data, size_t len, bool first)
{
	size_t n = len / 8;
	const unsigned char *p = data;

	(void)addr;
	if (first && L->cur_first && L->want_types && len >= 8) {
		uint64_t v0;

		memcpy(&v0, data, 8);
		if (hs_vtables_find(L->vt, v0) >= 0)
			lk_put(L, ref, LK_TYPED);
	}
	for (size_t i = 0; i < n; i++, p += 8) {
		uint64_t v, r;
		bool st = false;

		memcpy(&v, p, 8);
		if (!lk_maybe_chunk(L, v))
			continue;
		r = lk_lookup(L, v, &st);
		if (r == LK_NONE)
			continue;
		switch (L->phase) {
		case LK_PH_MARK:
			if (L->cur_def && !st && !lk_get(L, r, LK_MDEF))
				st = lk_heuristic(L, r, v);
			lk_mark(L, r, st && L->cur_def);
			break;
		case LK_PH_CLOSE:
			if (r == ref || r == L->leader || lk_get(L, r, LK_MANY))
				break;
			lk_put(L, r, LK_IND);
			if (!lk_get(L, r, LK_MDEF)) {
				lk_put(L, r, LK_MDEF); /* VIS */
				if (lk_get(L, r, LK_SANY))
					lk_schedule(L, r);
			}
			break;
		}
	}
}

#endif
