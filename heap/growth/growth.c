/* Diffing two profiles and grouping correlated growth; see hs_growth.h. */
#include "hs_growth.h"
#include "profile-internal.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *hs_growth_kind_name(enum hs_growth_kind k)
{
	static const char *const names[] = {
#define HS_X_(n, s) s,
		HS_GROWTH_KINDS(HS_X_)
#undef HS_X_
	};

	return (unsigned)k < HS_GROWTH_KIND_N ? names[k] : "?";
}

bool hs_profile_exe_differs(const struct hs_profile *a, const struct hs_profile *b)
{
	return a->exe[0] && b->exe[0] && strcmp(a->exe, b->exe) != 0;
}

static struct hs_growth_item *add_item(struct hs_diff *d, enum hs_growth_kind k)
{
	struct hs_growth_item *it;

	HS_ALLOC_GROW(d->items, d->nitems + 1, d->aitems);
	it = &d->items[d->nitems++];
	memset(it, 0, sizeof(*it));
	it->kind = k;
	it->group = -1;
	it->arena = -1;
	return it;
}

static void finish_item(struct hs_growth_item *it)
{
	it->dcount = (int64_t)(it->count_b - it->count_a);
	it->dbytes = (int64_t)(it->bytes_b - it->bytes_a);
	if (it->kind == HS_GROWTH_CHUNK || it->kind == HS_GROWTH_STRING ||
	    it->kind == HS_GROWTH_TYPE)
		it->ratio = it->count_a ? (double)it->count_b / (double)it->count_a : 0;
	else
		it->ratio = it->bytes_a ? (double)it->bytes_b / (double)it->bytes_a : 0;
}

/* ---- classes and regions ------------------------------------------------ */

static uint64_t metric(const struct hs_diff *d, const struct hs_profile_mem *m)
{
	return d->by_rss ? m->rss : m->size;
}

static void diff_classes(struct hs_diff *d)
{
	for (int c = 0; c < HS_CLASS_N; c++) {
		uint64_t a = metric(d, &d->a->classes[c]), b = metric(d, &d->b->classes[c]);
		struct hs_growth_item *it;

		/* Without Rss, a reservation's Size is address space, not
		 * memory: a growing arena heap moves its reservation. */
		if (a == b || (!d->by_rss && c == HS_CLASS_RESERVED))
			continue;
		it = add_item(d, HS_GROWTH_CLASS);
		it->cls = (enum hs_class)c;
		it->bytes_a = a;
		it->bytes_b = b;
		finish_item(it);
	}
}

static int cmp_region_ptr(const void *x, const void *y)
{
	const struct hs_profile_region *a = *(const struct hs_profile_region *const *)x;
	const struct hs_profile_region *b = *(const struct hs_profile_region *const *)y;

	if (a->start != b->start)
		return a->start < b->start ? -1 : 1;
	return strcmp(a->path, b->path);
}

static const struct hs_profile_region **sorted_regions(const struct hs_profile *p)
{
	const struct hs_profile_region **v = hs_xcalloc(p->nregions + 1, sizeof(*v));

	for (size_t i = 0; i < p->nregions; i++)
		v[i] = &p->regions[i];
	qsort(v, p->nregions, sizeof(*v), cmp_region_ptr);
	return v;
}

static void region_item(struct hs_diff *d, const struct hs_profile_region *ra,
			const struct hs_profile_region *rb)
{
	const struct hs_profile_region *r = rb ? rb : ra;
	uint64_t a = ra ? metric(d, &ra->mem) : 0, b = rb ? metric(d, &rb->mem) : 0;
	struct hs_growth_item *it;

	if (a == b || (!d->by_rss && r->cls == HS_CLASS_RESERVED))
		return;
	it = add_item(d, HS_GROWTH_REGION);
	it->flags = (ra ? 0 : HS_GI_NEW) | (rb ? 0 : HS_GI_GONE);
	it->cls = r->cls;
	it->start = r->start;
	it->end = r->end;
	it->path = r->path;
	it->bytes_a = a;
	it->bytes_b = b;
	finish_item(it);
}

/*
 * Mappings are matched by start address and path: [heap] and a thread
 * arena's heap keep their start while they grow at the end.  A merge of
 * the two lists sorted by (start, path).
 */
static void diff_regions(struct hs_diff *d)
{
	const struct hs_profile_region **va = sorted_regions(d->a);
	const struct hs_profile_region **vb = sorted_regions(d->b);
	size_t i = 0, j = 0;

	while (i < d->a->nregions || j < d->b->nregions) {
		int c;

		if (i == d->a->nregions)
			c = 1;
		else if (j == d->b->nregions)
			c = -1;
		else
			c = cmp_region_ptr(&va[i], &vb[j]);
		if (c == 0)
			region_item(d, va[i++], vb[j++]);
		else if (c < 0)
			region_item(d, va[i++], NULL);
		else
			region_item(d, NULL, vb[j++]);
	}
	free(va);
	free(vb);
}

/* ---- chunk sizes per arena ---------------------------------------------- */

struct keyed_chunk {
	uint64_t key;            /* which arena, comparable across profiles */
	const struct hs_profile_chunk *c;
	const struct hs_profile_arena *a; /* NULL: mmapped or unknown */
};

static const struct hs_profile_arena *arena_of(const struct hs_profile *p, int idx)
{
	for (size_t i = 0; i < p->narenas; i++)
		if (p->arenas[i].idx == idx)
			return &p->arenas[i];
	return NULL;
}

/*
 * The arena's identity: main_arena is "main" (key 0), mmapped chunks key 1,
 * a thread arena its address (the same process keeps its arenas where they
 * are), or, across different processes, its position in the ring.
 */
static uint64_t arena_key(const struct hs_profile_arena *a, int idx, bool same_pid)
{
	if (idx < 0)
		return 1;
	if (!a || a->is_main)
		return a ? 0 : 2 + (uint64_t)idx;
	return same_pid ? a->addr : 2 + (uint64_t)idx;
}

static int cmp_keyed(const void *x, const void *y)
{
	const struct keyed_chunk *a = x, *b = y;

	if (a->key != b->key)
		return a->key < b->key ? -1 : 1;
	return a->c->size < b->c->size ? -1 : a->c->size > b->c->size;
}

static struct keyed_chunk *keyed_chunks(const struct hs_profile *p, bool same_pid)
{
	struct keyed_chunk *v = hs_xcalloc(p->nchunks + 1, sizeof(*v));

	for (size_t i = 0; i < p->nchunks; i++) {
		const struct hs_profile_chunk *c = &p->chunks[i];

		v[i].c = c;
		v[i].a = c->arena >= 0 ? arena_of(p, c->arena) : NULL;
		v[i].key = arena_key(v[i].a, c->arena, same_pid);
	}
	qsort(v, p->nchunks, sizeof(*v), cmp_keyed);
	return v;
}

static void chunk_item(struct hs_diff *d, const struct keyed_chunk *ka,
		       const struct keyed_chunk *kb)
{
	const struct keyed_chunk *k = kb ? kb : ka;
	struct hs_growth_item *it;

	if (ka && kb && ka->c->count == kb->c->count && ka->c->bytes == kb->c->bytes)
		return;
	it = add_item(d, HS_GROWTH_CHUNK);
	it->flags = (ka ? 0 : HS_GI_NEW) | (kb ? 0 : HS_GI_GONE);
	it->arena = k->c->arena;
	it->arena_addr = k->a ? k->a->addr : 0;
	it->arena_main = k->a && k->a->is_main;
	it->size = k->c->size;
	it->count_a = ka ? ka->c->count : 0;
	it->bytes_a = ka ? ka->c->bytes : 0;
	it->count_b = kb ? kb->c->count : 0;
	it->bytes_b = kb ? kb->c->bytes : 0;
	finish_item(it);
}

static void diff_chunks(struct hs_diff *d, bool same_pid)
{
	struct keyed_chunk *va = keyed_chunks(d->a, same_pid);
	struct keyed_chunk *vb = keyed_chunks(d->b, same_pid);
	size_t i = 0, j = 0;

	while (i < d->a->nchunks || j < d->b->nchunks) {
		int c;

		if (i == d->a->nchunks)
			c = 1;
		else if (j == d->b->nchunks)
			c = -1;
		else
			c = cmp_keyed(&va[i], &vb[j]);
		if (c == 0)
			chunk_item(d, &va[i++], &vb[j++]);
		else if (c < 0)
			chunk_item(d, &va[i++], NULL);
		else
			chunk_item(d, NULL, &vb[j++]);
	}
	free(va);
	free(vb);
}

/* ---- strings ------------------------------------------------------------ */

/* A string's identity: its stored bytes and its real length. */
static uint64_t str_hash(const struct hs_profile_string *s)
{
	uint64_t h = 1469598103934665603ull ^ s->len;

	for (size_t i = 0; i < s->stored; i++) {
		h ^= (unsigned char)s->s[i];
		h *= 1099511628211ull;
	}
	return h ^ (h >> 31);
}

static bool str_eq(const struct hs_profile_string *a, const struct hs_profile_string *b)
{
	return a->len == b->len && a->stored == b->stored &&
	       !memcmp(a->s, b->s, a->stored);
}

static void string_item(struct hs_diff *d, const struct hs_profile_string *sa,
			const struct hs_profile_string *sb)
{
	const struct hs_profile_string *s = sb ? sb : sa;
	struct hs_growth_item *it;

	if (sa && sb && sa->count == sb->count)
		return;
	it = add_item(d, HS_GROWTH_STRING);
	it->s = s->s;
	it->stored = s->stored;
	it->len = s->len;
	/* Absent from a side that kept every string: 0 there.  Absent from a
	 * side that was cut: at most its cut, which is what we show (and
	 * flag), so the delta is a bound, never a made-up exact value. */
	if (sa) {
		it->count_a = sa->count;
		it->bytes_a = sa->bytes;
	} else if (d->a->strings_cut) {
		it->flags |= HS_GI_BEFORE_CUT;
		it->count_a = d->a->strings_cut < s->count ? d->a->strings_cut : s->count;
		it->bytes_a = s->count ? s->bytes / s->count * it->count_a : 0;
	} else {
		it->flags |= HS_GI_NEW;
	}
	if (sb) {
		it->count_b = sb->count;
		it->bytes_b = sb->bytes;
	} else if (d->b->strings_cut) {
		it->flags |= HS_GI_AFTER_CUT;
		it->count_b = d->b->strings_cut < s->count ? d->b->strings_cut : s->count;
		it->bytes_b = s->count ? s->bytes / s->count * it->count_b : 0;
	} else {
		it->flags |= HS_GI_GONE;
	}
	if (it->count_a == it->count_b) {
		d->nitems--; /* bounded to no change: nothing to say */
		return;
	}
	finish_item(it);
}

static void diff_strings(struct hs_diff *d)
{
	const struct hs_profile *a = d->a, *b = d->b;
	size_t cap = 16;
	const struct hs_profile_string **tab;
	bool *matched;

	while (cap < a->nstrings * 2 + 2)
		cap *= 2;
	tab = hs_xcalloc(cap, sizeof(*tab));
	matched = hs_xcalloc(a->nstrings + 1, sizeof(*matched));
	for (size_t i = 0; i < a->nstrings; i++) {
		size_t h = str_hash(&a->strings[i]) & (cap - 1);

		while (tab[h] && !str_eq(tab[h], &a->strings[i]))
			h = (h + 1) & (cap - 1);
		if (!tab[h]) /* a duplicate in a hand-made file: first wins */
			tab[h] = &a->strings[i];
	}
	for (size_t j = 0; j < b->nstrings; j++) {
		size_t h = str_hash(&b->strings[j]) & (cap - 1);
		const struct hs_profile_string *sa = NULL;

		while (tab[h]) {
			if (str_eq(tab[h], &b->strings[j])) {
				sa = tab[h];
				break;
			}
			h = (h + 1) & (cap - 1);
		}
		if (sa) {
			if (matched[sa - a->strings])
				continue;
			matched[sa - a->strings] = true;
		}
		string_item(d, sa, &b->strings[j]);
	}
	for (size_t i = 0; i < a->nstrings; i++)
		if (!matched[i])
			string_item(d, &a->strings[i], NULL);
	free(matched);
	free(tab);
}

/* ---- objects by type ----------------------------------------------------- */

static void type_item(struct hs_diff *d, const struct hs_profile_type *ta,
		      const struct hs_profile_type *tb)
{
	const struct hs_profile_type *ty = tb ? tb : ta;
	struct hs_growth_item *it;

	if (ta && tb && ta->count == tb->count && ta->bytes == tb->bytes)
		return;
	it = add_item(d, HS_GROWTH_TYPE);
	it->s = ty->name;
	it->stored = strlen(ty->name);
	it->len = it->stored;
	it->path = ty->kind;
	if (ta) {
		it->count_a = ta->count;
		it->bytes_a = ta->bytes;
	} else {
		it->flags |= HS_GI_NEW;
	}
	if (tb) {
		it->count_b = tb->count;
		it->bytes_b = tb->bytes;
	} else {
		it->flags |= HS_GI_GONE;
	}
	finish_item(it);
}

/* Both sides are sorted by (kind, name), merged: one pass. */
static void diff_types(struct hs_diff *d)
{
	const struct hs_profile *a = d->a, *b = d->b;
	size_t i = 0, j = 0;

	while (i < a->ntypes || j < b->ntypes) {
		int c = i >= a->ntypes ? 1 : j >= b->ntypes ? -1 :
			hs_profile_type_cmp(&a->types[i], &b->types[j]);

		if (c == 0)
			type_item(d, &a->types[i++], &b->types[j++]);
		else if (c < 0)
			type_item(d, &a->types[i++], NULL);
		else
			type_item(d, NULL, &b->types[j++]);
	}
}

/* ---- ranking and groups ------------------------------------------------- */

static int cmp_items(const void *x, const void *y)
{
	const struct hs_growth_item *a = x, *b = y;
	bool ga = a->dbytes > 0, gb = b->dbytes > 0;

	if (ga != gb)
		return ga ? -1 : 1;
	if (a->dbytes != b->dbytes) {
		/* growth: largest first; shrinkage: largest loss first */
		if (ga)
			return a->dbytes > b->dbytes ? -1 : 1;
		return a->dbytes < b->dbytes ? -1 : 1;
	}
	if (a->kind != b->kind)
		return a->kind < b->kind ? -1 : 1;
	if (a->start != b->start)
		return a->start < b->start ? -1 : 1;
	if (a->size != b->size)
		return a->size < b->size ? -1 : 1;
	if (a->arena != b->arena)
		return a->arena < b->arena ? -1 : 1;
	if (a->s && b->s)
		return strcmp(a->s, b->s);
	return 0;
}

static bool close_to(double x, double y, double tol)
{
	double m = fmax(fabs(x), fabs(y));

	return fabs(x - y) <= tol * m;
}

static bool groupable(const struct hs_diff *d, const struct hs_growth_item *it)
{
	if (it->kind != HS_GROWTH_CHUNK && it->kind != HS_GROWTH_STRING &&
	    it->kind != HS_GROWTH_TYPE)
		return false;
	if (it->flags & HS_GI_AFTER_CUT)
		return false;
	/* Below A's cut, the true growth is between dcount and count_b: close
	 * enough when the bound is within the tolerance (a string new in B,
	 * A having had more distinct strings than it kept). */
	if ((it->flags & HS_GI_BEFORE_CUT) &&
	    (double)it->count_a > d->opts.tolerance * (double)it->count_b)
		return false;
	if (it->kind == HS_GROWTH_CHUNK && it->size == 0)
		return false;
	return it->dcount > 0 && (uint64_t)it->dcount >= d->opts.min_count;
}

static int cmp_cand(const void *x, const void *y, void *ud)
{
	const struct hs_diff *d = ud;
	const struct hs_growth_item *a = &d->items[*(const size_t *)x];
	const struct hs_growth_item *b = &d->items[*(const size_t *)y];

	if (a->dcount != b->dcount)
		return a->dcount > b->dcount ? -1 : 1;
	return *(const size_t *)x < *(const size_t *)y ? -1 : 1;
}

static int cmp_group(const void *x, const void *y)
{
	const struct hs_growth_group *a = x, *b = y;

	if (a->dbytes != b->dbytes)
		return a->dbytes > b->dbytes ? -1 : 1;
	return a->items[0] < b->items[0] ? -1 : 1;
}

/* A group's byte growth (chunks, else strings: never both, as strings
 * live inside chunks) and the spread of its members' deltas and ratios. */
static void group_figures(const struct hs_diff *d, struct hs_growth_group *gr)
{
	int64_t chunk = 0, str = 0;
	bool any_chunk = false;

	gr->dcount_min = INT64_MAX;
	gr->dcount_max = INT64_MIN;
	gr->ratio_min = gr->ratio_max = 0;
	for (size_t m = 0; m < gr->n; m++) {
		const struct hs_growth_item *it = &d->items[gr->items[m]];

		if (it->kind == HS_GROWTH_CHUNK) {
			chunk += it->dbytes;
			any_chunk = true;
		} else {
			str += it->dbytes;
		}
		if (it->dcount < gr->dcount_min)
			gr->dcount_min = it->dcount;
		if (it->dcount > gr->dcount_max)
			gr->dcount_max = it->dcount;
		if (it->ratio > 0) {
			if (!gr->ratio_min || it->ratio < gr->ratio_min)
				gr->ratio_min = it->ratio;
			if (it->ratio > gr->ratio_max)
				gr->ratio_max = it->ratio;
		}
	}
	gr->dbytes = any_chunk ? chunk : str;
	gr->bytes_of = any_chunk ? HS_GROWTH_CHUNK : HS_GROWTH_STRING;
}

/*
 * Items that leak together grew by the same count (one record: two
 * strings and one chunk each) or, for items that were already there in
 * numbers, at the same rate.  Candidates, by count growth descending,
 * join the first group whose first member matches either way within the
 * tolerance, else start a group; groups of one are dropped.
 */
static void find_groups(struct hs_diff *d)
{
	size_t *cand = hs_xcalloc(d->ngrowth + 1, sizeof(*cand));
	size_t ncand = 0;
	double tol = d->opts.tolerance;

	for (size_t i = 0; i < d->ngrowth; i++)
		if (groupable(d, &d->items[i]))
			cand[ncand++] = i;
	qsort_r(cand, ncand, sizeof(*cand), cmp_cand, d);
	for (size_t k = 0; k < ncand; k++) {
		struct hs_growth_item *it = &d->items[cand[k]];
		size_t g;

		for (g = 0; g < d->ngroups; g++) {
			struct hs_growth_group *gr = &d->groups[g];
			const struct hs_growth_item *an = &d->items[gr->items[0]];
			bool by_delta = close_to((double)it->dcount, (double)an->dcount, tol);
			/* The same rate: growth over what was there, so that small
			 * steady growth (+5% and +5.2%) groups and +1% does not
			 * join +5% (ratios 1.01 and 1.05 are within 5%). */
			bool by_factor = !by_delta &&
				!((it->flags | an->flags) & HS_GI_BEFORE_CUT) &&
				it->count_a >= d->opts.min_count &&
				an->count_a >= d->opts.min_count &&
				close_to((double)it->dcount / (double)it->count_a,
					 (double)an->dcount / (double)an->count_a, tol);

			if (!by_delta && !by_factor)
				continue;
			gr->items = hs_xrealloc(gr->items, (gr->n + 1) * sizeof(*gr->items));
			gr->items[gr->n++] = cand[k];
			if (by_factor)
				gr->by_factor = true;
			break;
		}
		if (g == d->ngroups) {
			struct hs_growth_group *gr;

			HS_ALLOC_GROW(d->groups, d->ngroups + 1, d->agroups);
			gr = &d->groups[d->ngroups++];
			memset(gr, 0, sizeof(*gr));
			gr->items = hs_xmalloc(sizeof(*gr->items));
			gr->items[0] = cand[k];
			gr->n = 1;
			gr->dcount = it->dcount;
		}
	}
	for (size_t g = 0; g < d->ngroups; g++)
		group_figures(d, &d->groups[g]);
	/* Keep groups of two or more. */
	{
		size_t o = 0;

		for (size_t g = 0; g < d->ngroups; g++) {
			if (d->groups[g].n < 2) {
				free(d->groups[g].items);
				continue;
			}
			d->groups[o++] = d->groups[g];
		}
		d->ngroups = o;
	}
	if (d->ngroups)
		qsort(d->groups, d->ngroups, sizeof(*d->groups), cmp_group);
	for (size_t g = 0; g < d->ngroups; g++)
		for (size_t m = 0; m < d->groups[g].n; m++)
			d->items[d->groups[g].items[m]].group = (int)g;
	free(cand);
}

int hs_diff_compute(struct hs_diff *d, const struct hs_profile *a,
		    const struct hs_profile *b, const struct hs_diff_opts *o)
{
	bool same_pid = a->pid == b->pid;

	memset(d, 0, sizeof(*d));
	hs_buf_init(&d->warnings);
	d->a = a;
	d->b = b;
	if (o)
		d->opts = *o;
	if (!(d->opts.tolerance > 0 && d->opts.tolerance < 1))
		d->opts.tolerance = 0.05;
	if (!d->opts.min_count)
		d->opts.min_count = 16;
	d->by_rss = a->has_smaps && b->has_smaps;
	d->elapsed_s = ((double)b->time_ns - (double)a->time_ns) / 1e9;

	if (hs_profile_exe_differs(a, b))
		hs_buf_addf(&d->warnings, "different executables: '%s' and '%s'\n",
			    a->exe, b->exe);
	if (!same_pid)
		hs_buf_addf(&d->warnings, "different processes: pid %d and pid %d "
			    "(mappings are matched by address, thread arenas by position)\n",
			    (int)a->pid, (int)b->pid);
	if (strcmp(a->heapscan_version, b->heapscan_version))
		hs_buf_addf(&d->warnings, "profiles from different heapscan versions: "
			    "%s and %s\n", a->heapscan_version, b->heapscan_version);
	if (!d->by_rss && (a->has_smaps || b->has_smaps))
		hs_buf_adds(&d->warnings, "one side has no smaps figures: regions "
			    "are compared by Size, not Rss\n");
	if (a->partial || b->partial)
		hs_buf_adds(&d->warnings, "a profile is partial: some memory could "
			    "not be read\n");
	if (d->elapsed_s < 0)
		hs_buf_adds(&d->warnings, "the first profile is newer than the second\n");

	diff_classes(d);
	diff_regions(d);
	if (a->heap_error[0] || b->heap_error[0])
		hs_buf_addf(&d->warnings, "chunk sizes not compared: %s\n",
			    a->heap_error[0] ? a->heap_error : b->heap_error);
	else
		diff_chunks(d, same_pid);
	if (!a->strings_done || !b->strings_done) {
		hs_buf_adds(&d->warnings, "strings not compared: a profile has none\n");
	} else {
		if (a->strings_min_len != b->strings_min_len)
			hs_buf_addf(&d->warnings, "strings counted with different "
				    "min-len (%u and %u)\n", a->strings_min_len,
				    b->strings_min_len);
		if (!a->strings_exact || !b->strings_exact)
			hs_buf_adds(&d->warnings, "string counts are estimates in a "
				    "profile\n");
		diff_strings(d);
	}
	if (a->types_done && b->types_done)
		diff_types(d);
	else if (a->types_done || b->types_done)
		hs_buf_adds(&d->warnings, "objects by type not compared: a profile "
			    "has none\n");
	if (d->nitems)
		qsort(d->items, d->nitems, sizeof(*d->items), cmp_items);
	while (d->ngrowth < d->nitems && d->items[d->ngrowth].dbytes > 0)
		d->ngrowth++;
	find_groups(d);
	return 0;
}

void hs_diff_release(struct hs_diff *d)
{
	for (size_t g = 0; g < d->ngroups; g++)
		free(d->groups[g].items);
	free(d->groups);
	free(d->items);
	hs_buf_release(&d->warnings);
	memset(d, 0, sizeof(*d));
	hs_buf_init(&d->warnings);
}
