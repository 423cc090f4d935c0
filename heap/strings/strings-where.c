/*
 * Where strings live relative to malloc: chunk space as intervals from the
 * glibc walker, and input ranges restricted to in-use or free chunks.
 * See hs_strings.h.
 */
#include "hs_heap.h"

#include <stdlib.h>
#include <string.h>

const char *hs_str_loc_name(enum hs_str_loc l)
{
	switch (l) {
	case HS_STR_LOC_INUSE:
		return "inuse";
	case HS_STR_LOC_FREE:
		return "free";
	case HS_STR_LOC_OUTSIDE:
		return "outside";
	case HS_STR_LOC_PYTHON:
		return "python";
	default:
		return "unknown";
	}
}

void hs_str_where_release(struct hs_str_where *w)
{
	size_t max_free = w->max_free;

	free(w->v);
	memset(w, 0, sizeof(*w));
	w->max_free = max_free;
}

void hs_str_where_add(struct hs_str_where *w, hs_addr_t start, hs_addr_t end,
		      enum hs_str_loc loc)
{
	size_t cap = w->max_free ? w->max_free : HS_STR_WHERE_MAX_FREE_DEFAULT;
	struct hs_str_where_iv *last = w->n ? &w->v[w->n - 1] : NULL;

	if (end <= start || (loc != HS_STR_LOC_INUSE && loc != HS_STR_LOC_FREE &&
			     loc != HS_STR_LOC_PYTHON))
		return;
	if (loc == HS_STR_LOC_FREE && w->nfree >= cap &&
	    !(last && last->loc == loc && last->end == start)) {
		/* Past the cap, a free chunk counts as in use (it then
		 * coalesces with its in-use neighbours). */
		w->approximate = true;
		loc = HS_STR_LOC_INUSE;
	}
	if (loc == HS_STR_LOC_FREE)
		w->free_bytes += end - start;
	else
		w->inuse_bytes += end - start;
	w->finished = false;
	if (last && last->loc == loc && last->end == start) {
		last->end = end;
		return;
	}
	HS_ALLOC_GROW(w->v, w->n + 1, w->alloc);
	w->v[w->n++] = (struct hs_str_where_iv){ start, end, loc };
	if (loc == HS_STR_LOC_FREE)
		w->nfree++;
}

static int cmp_iv(const void *a, const void *b)
{
	const struct hs_str_where_iv *x = a, *y = b;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return x->end < y->end ? -1 : x->end > y->end;
}

void hs_str_where_finish(struct hs_str_where *w)
{
	size_t j = 0;

	if (w->finished)
		return;
	/* Stable enough: equal starts are ordered by end, and the earlier
	 * (shorter) interval wins an overlap. */
	if (w->n > 1)   /* qsort(NULL, 0) is undefined */
		qsort(w->v, w->n, sizeof(*w->v), cmp_iv);
	w->nfree = 0;
	for (size_t i = 0; i < w->n; i++) {
		struct hs_str_where_iv iv = w->v[i];

		if (j && iv.start < w->v[j - 1].end)
			iv.start = w->v[j - 1].end; /* overlap: clip */
		if (iv.end <= iv.start)
			continue;
		if (j && w->v[j - 1].loc == iv.loc && w->v[j - 1].end == iv.start) {
			w->v[j - 1].end = iv.end;
			continue;
		}
		w->v[j++] = iv;
	}
	w->n = j;
	for (size_t i = 0; i < w->n; i++)
		w->nfree += w->v[i].loc == HS_STR_LOC_FREE;
	w->finished = true;
}

static void push_iv(struct hs_str_where_iv **v, size_t *n, size_t *alloc,
		    hs_addr_t start, hs_addr_t end, enum hs_str_loc loc)
{
	if (end <= start)
		return;
	if (*n && (*v)[*n - 1].loc == loc && (*v)[*n - 1].end == start) {
		(*v)[*n - 1].end = end;
		return;
	}
	HS_ALLOC_GROW(*v, *n + 1, *alloc);
	(*v)[(*n)++] = (struct hs_str_where_iv){ start, end, loc };
}

void hs_str_where_overlay(struct hs_str_where *w, const struct hs_str_where_iv *ov,
			  size_t n)
{
	struct hs_str_where_iv *v = NULL;
	size_t nv = 0, alloc = 0, i = 0, k = 0;

	hs_str_where_finish(w);
	/* Merge: w's intervals cut around the overlay's. */
	while (i < w->n || k < n) {
		if (k < n && (i >= w->n || ov[k].start <= w->v[i].start)) {
			push_iv(&v, &nv, &alloc, ov[k].start, ov[k].end, ov[k].loc);
			if (ov[k].loc == HS_STR_LOC_PYTHON)
				w->python = true;
			k++;
			continue;
		}
		/* w->v[i] from where the last pushed interval ends, up to the
		 * next overlay interval; the rest of it comes back later. */
		hs_addr_t s = w->v[i].start, e = w->v[i].end;

		if (nv && v[nv - 1].end > s)
			s = v[nv - 1].end;
		if (k < n && ov[k].start < e) {
			push_iv(&v, &nv, &alloc, s, ov[k].start, w->v[i].loc);
			/* what is left after the overlay interval */
			if (ov[k].end < e) {
				w->v[i].start = ov[k].end;
				continue;
			}
			i++;
			continue;
		}
		push_iv(&v, &nv, &alloc, s, e, w->v[i].loc);
		i++;
	}
	free(w->v);
	w->v = v;
	w->n = nv;
	w->alloc = alloc;
	w->nfree = 0;
	for (size_t j = 0; j < w->n; j++)
		w->nfree += w->v[j].loc == HS_STR_LOC_FREE;
}

static int on_chunk(void *ud, const struct hs_glibc_chunk *c)
{
	struct hs_str_where *w = ud;
	hs_addr_t start = c->addr + 8, end = c->addr + c->size;
	enum hs_str_loc loc;

	w->chunks++;
	if (c->state == HS_CHUNK_UNPARSED || c->size < 16 || end < c->addr)
		return 0;
	/* A heap chunk's user data may run into the next chunk's prev_size;
	 * nothing follows an mmapped chunk or top. */
	if (c->state != HS_CHUNK_MMAPPED && c->state != HS_CHUNK_TOP && end + 8 > end)
		end += 8;
	loc = hs_chunk_state_is_free(c->state) ? HS_STR_LOC_FREE : HS_STR_LOC_INUSE;
	hs_str_where_add(w, start, end, loc);
	return 0;
}

int hs_str_where_from_glibc_walk(struct hs_str_where *w, struct hs_glibc_heap *h)
{
	int ret = hs_glibc_for_each_chunk(h, on_chunk, w);

	if (ret) {
		hs_str_where_release(w);
		return ret;
	}
	if (h->free_set_full)
		w->approximate = true;
	w->heap_problems = h->nproblems;
	hs_str_where_finish(w);
	return 0;
}

/* Free chunks, top and mmapped chunks as the walk's on_chunk sees them. */
static int on_free_chunk(void *ud, const struct hs_glibc_chunk *c)
{
	struct hs_str_where *w = ud;
	hs_addr_t start = c->addr + 8, end = c->addr + c->size;
	enum hs_str_loc loc = c->state == HS_CHUNK_MMAPPED ? HS_STR_LOC_INUSE : HS_STR_LOC_FREE;

	w->chunks++;
	if (c->size < 16 || end < c->addr)
		return 0;
	if (c->state != HS_CHUNK_MMAPPED && c->state != HS_CHUNK_TOP && end + 8 > end)
		end += 8;
	hs_str_where_add(w, start, end, loc);
	return 0;
}

struct span {
	hs_addr_t start, end;
};

static int cmp_span(const void *a, const void *b)
{
	const struct span *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/*
 * Where the walk's chunks of segment s end (the end of the last chunk's
 * interval is this + 8): its top, or for a heap that lost its top the
 * first of the two fenceposts sysmalloc() leaves in its last 32 bytes
 * (sizes 16 and 0; heap ends are pages, chunks 16-aligned), as the
 * walk's fencepost test finds them; else the heap's end.
 */
static hs_addr_t seg_chunks_end(struct hs_target *t, const struct hs_glibc_seg *s)
{
	uint64_t hdr[4];

	if (s->has_top || s->end < s->start + 32 ||
	    hs_target_read_full(t, s->end - 32, hdr, sizeof(hdr)) < 0)
		return s->end;
	if ((hdr[1] & ~7ull) == 16 && (hdr[3] & ~7ull) <= 16)
		return s->end - 32;
	return s->end;
}

int hs_str_where_from_glibc(struct hs_str_where *w, struct hs_glibc_heap *h)
{
	struct hs_str_where fr = HS_STR_WHERE_INIT;
	struct span *sp = NULL;
	size_t nsp = 0, asp = 0, k = 0, cap, kept = 0;
	int ret;

	/* Corruption seen while collecting the free lists: the walk's
	 * answer (UNPARSED bytes are outside, list entries off the chunk
	 * boundaries ignored) is the one to give. */
	if (h->nproblems)
		return hs_str_where_from_glibc_walk(w, h);
	fr.max_free = SIZE_MAX;
	ret = hs_glibc_for_each_free_chunk(h, HS_GLIBC_FREE_MMAPPED, on_free_chunk, &fr);
	if (ret) {
		hs_str_where_release(&fr);
		hs_str_where_release(w);
		return ret;
	}
	hs_str_where_finish(&fr);
	/* Every other byte of a segment's chunks is in use. */
	for (size_t i = 0; i < h->narenas; i++)
		for (size_t j = 0; j < h->arenas[i].nsegs; j++) {
			const struct hs_glibc_seg *s = &h->arenas[i].segs[j];
			hs_addr_t e = seg_chunks_end(h->t, s);

			if (e <= s->start || e + 8 < e)
				continue;
			HS_ALLOC_GROW(sp, nsp + 1, asp);
			sp[nsp++] = (struct span){ s->start + 8, e + 8 };
		}
	if (nsp > 1)
		qsort(sp, nsp, sizeof(*sp), cmp_span);
	for (size_t i = 0; i < nsp; i++) {
		hs_addr_t a = sp[i].start;

		while (k > 0 && fr.v[k - 1].end > a)
			k--;
		while (k < fr.n && fr.v[k].end <= a)
			k++;
		for (; a < sp[i].end; k++) {
			hs_addr_t b = k < fr.n && fr.v[k].start < sp[i].end ? fr.v[k].start : sp[i].end;

			if (b > a)
				hs_str_where_add(w, a, b, HS_STR_LOC_INUSE);
			if (k >= fr.n || fr.v[k].start >= sp[i].end)
				break;
			if (fr.v[k].end > a)
				a = fr.v[k].end;
		}
	}
	free(sp);
	/* Then the free (and mmapped) intervals; past the cap, in address
	 * order, free ones count as in use, as in hs_str_where_add. */
	cap = w->max_free ? w->max_free : HS_STR_WHERE_MAX_FREE_DEFAULT;
	for (size_t i = 0; i < fr.n; i++) {
		enum hs_str_loc loc = fr.v[i].loc;

		if (loc == HS_STR_LOC_FREE && kept++ >= cap) {
			loc = HS_STR_LOC_INUSE;
			w->approximate = true;
		}
		hs_str_where_add(w, fr.v[i].start, fr.v[i].end, loc);
	}
	w->chunks = fr.chunks;
	hs_str_where_release(&fr);
	if (h->free_set_full)
		w->approximate = true;
	w->heap_problems = h->nproblems;
	hs_str_where_finish(w);
	return 0;
}

static int on_block(void *ud, const struct hs_block *b)
{
	struct hs_str_where *w = ud;

	w->chunks++;
	if (!b->size || b->addr + b->size < b->addr)
		return 0;
	hs_str_where_add(w, b->addr, b->addr + b->size,
			 b->state == HS_BLOCK_INUSE ? HS_STR_LOC_INUSE : HS_STR_LOC_FREE);
	return 0;
}

int hs_str_where_from_blocks(struct hs_str_where *w, const struct hs_blocks *b)
{
	int ret = b->for_each(b->heap, on_block, w);

	if (ret) {
		hs_str_where_release(w);
		return ret;
	}
	hs_str_where_finish(w);
	return 0;
}

size_t hs_str_where_lower(const struct hs_str_where *w, hs_addr_t addr)
{
	size_t lo = 0, hi = w->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (w->v[mid].end <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

enum hs_str_loc hs_str_where_find(const struct hs_str_where *w, hs_addr_t addr)
{
	size_t lo = hs_str_where_lower(w, addr);

	if (lo < w->n && w->v[lo].start <= addr)
		return w->v[lo].loc;
	return HS_STR_LOC_OUTSIDE;
}

void hs_str_ranges_restrict(struct hs_str_ranges *out, const struct hs_str_ranges *in,
			    const struct hs_str_where *w, unsigned loc_mask)
{
	size_t k = 0;

	for (size_t i = 0; i < in->n; i++) {
		const struct hs_str_range *rg = &in->v[i];
		hs_addr_t a = rg->start;

		/* Walk the intervals that meet [start, end), and the gaps
		 * between them (OUTSIDE). */
		while (k > 0 && w->v[k - 1].end > a)
			k--;
		while (k < w->n && w->v[k].end <= a)
			k++;
		while (a < rg->end) {
			hs_addr_t b;
			unsigned loc;

			if (k < w->n && w->v[k].start <= a) {
				b = w->v[k].end;
				loc = w->v[k].loc;
				k++;
			} else {
				b = k < w->n ? w->v[k].start : rg->end;
				loc = HS_STR_LOC_OUTSIDE;
			}
			if (b > rg->end)
				b = rg->end;
			if (loc_mask & (1u << loc)) {
				struct hs_str_range *last = out->n ? &out->v[out->n - 1] : NULL;

				if (last && last->end == a && last->cls == rg->cls)
					last->end = b;
				else
					hs_str_ranges_add(out, a, b, rg->cls);
			}
			a = b;
		}
	}
}
