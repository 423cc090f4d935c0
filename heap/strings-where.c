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

	if (end <= start || (loc != HS_STR_LOC_INUSE && loc != HS_STR_LOC_FREE))
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

int hs_str_where_from_glibc(struct hs_str_where *w, struct hs_glibc_heap *h)
{
	int ret = hs_glibc_for_each_chunk(h, on_chunk, w);

	if (ret) {
		hs_str_where_release(w);
		return ret;
	}
	if (h->free_set_full)
		w->approximate = true;
	hs_str_where_finish(w);
	return 0;
}

enum hs_str_loc hs_str_where_find(const struct hs_str_where *w, hs_addr_t addr)
{
	size_t lo = 0, hi = w->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (w->v[mid].end <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
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
