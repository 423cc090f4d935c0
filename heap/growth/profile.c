/* Building a growth profile from a target; see hs_growth.h. */
#include "hs_growth.h"
#include "hs_glibc.h"
#include "hs_block.h"
#include "hs_strings.h"
#include "profile-internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void hs_profile_init(struct hs_profile *p)
{
	memset(p, 0, sizeof(*p));
	p->version = HS_PROFILE_VERSION;
	p->heapscan_version = hs_xstrdup(HS_VERSION);
	p->source = hs_xstrdup("");
	p->kind = hs_xstrdup("");
	p->exe = hs_xstrdup("");
	p->cmdline = hs_xstrdup("");
	p->heap_error = hs_xstrdup("");
}

void hs_profile_release(struct hs_profile *p)
{
	free(p->heapscan_version);
	free(p->source);
	free(p->kind);
	free(p->exe);
	free(p->cmdline);
	free(p->heap_error);
	for (size_t i = 0; i < p->nregions; i++)
		free(p->regions[i].path);
	free(p->regions);
	free(p->arenas);
	free(p->chunks);
	for (size_t i = 0; i < p->nstrings; i++)
		free(p->strings[i].s);
	free(p->strings);
	for (size_t i = 0; i < p->ntypes; i++) {
		free(p->types[i].kind);
		free(p->types[i].name);
	}
	free(p->types);
	memset(p, 0, sizeof(*p));
}

void hs_profile_set_str(char **field, const char *s)
{
	free(*field);
	*field = hs_xstrdup(s ? s : "");
}

/* Appends one zeroed element to array v (n used, a allocated). */
#define ADD_ZEROED(v, n, a)                                                  \
	({                                                                   \
		HS_ALLOC_GROW(v, (n) + 1, a);                                \
		memset(&(v)[n], 0, sizeof(*(v)));                            \
		&(v)[(n)++];                                                 \
	})

struct hs_profile_region *hs_profile_add_region(struct hs_profile *p)
{
	return ADD_ZEROED(p->regions, p->nregions, p->aregions);
}

struct hs_profile_arena *hs_profile_add_arena(struct hs_profile *p)
{
	return ADD_ZEROED(p->arenas, p->narenas, p->aarenas);
}

struct hs_profile_chunk *hs_profile_add_chunk(struct hs_profile *p)
{
	return ADD_ZEROED(p->chunks, p->nchunks, p->achunks);
}

struct hs_profile_string *hs_profile_add_string(struct hs_profile *p)
{
	return ADD_ZEROED(p->strings, p->nstrings, p->astrings);
}

struct hs_profile_type *hs_profile_add_type(struct hs_profile *p)
{
	return ADD_ZEROED(p->types, p->ntypes, p->atypes);
}

int hs_profile_type_cmp(const void *x, const void *y)
{
	const struct hs_profile_type *a = x, *b = y;
	int c = strcmp(a->kind, b->kind);

	return c ? c : strcmp(a->name, b->name);
}

/* Sorts p->types and merges equal (kind, name) rows. */
void hs_profile_types_finish(struct hs_profile *p)
{
	size_t j = 0;

	if (p->ntypes > 1)
		qsort(p->types, p->ntypes, sizeof(*p->types), hs_profile_type_cmp);
	for (size_t i = 0; i < p->ntypes; i++) {
		if (j && !hs_profile_type_cmp(&p->types[j - 1], &p->types[i])) {
			p->types[j - 1].count += p->types[i].count;
			p->types[j - 1].bytes += p->types[i].bytes;
			free(p->types[i].kind);
			free(p->types[i].name);
			continue;
		}
		p->types[j++] = p->types[i];
	}
	p->ntypes = j;
}

void hs_profile_add_census(struct hs_profile *p, const struct hs_census *c)
{
	for (size_t i = 0; i < c->n; i++) {
		struct hs_profile_type *ty;

		if (!c->rows[i].count)
			continue;
		ty = hs_profile_add_type(p);
		ty->kind = hs_xstrdup(hs_census_kind_name(c->rows[i].kind));
		ty->name = hs_xstrdup(c->rows[i].type);
		ty->count = c->rows[i].count;
		ty->bytes = c->rows[i].bytes;
	}
	hs_profile_types_finish(p);
	p->types_done = true;
}

/* ---- regions ---------------------------------------------------------- */

static void add_regions(struct hs_profile *p, const struct hs_target *t)
{
	for (size_t i = 0; i < t->maps.n; i++) {
		const struct hs_map *m = &t->maps.v[i];
		struct hs_profile_region *r = hs_profile_add_region(p);
		struct hs_profile_mem *c;

		r->start = m->start;
		r->end = m->end;
		r->perms = m->perms;
		r->cls = m->cls < HS_CLASS_N ? m->cls : HS_CLASS_ANON;
		r->path = hs_xstrdup(m->path ? m->path : "");
		if (m->flags & HS_MAP_HAS_SMAPS) {
			p->has_smaps = true;
			r->mem.size = m->smaps[HS_SMAPS_SIZE];
			r->mem.rss = m->smaps[HS_SMAPS_RSS];
			r->mem.pss = m->smaps[HS_SMAPS_PSS];
			r->mem.private_dirty = m->smaps[HS_SMAPS_PRIVATE_DIRTY];
			r->mem.swap = m->smaps[HS_SMAPS_SWAP];
		} else {
			r->mem.size = m->end - m->start;
		}
		c = &p->classes[r->cls];
		c->count++;
		c->size += r->mem.size;
		c->rss += r->mem.rss;
		c->pss += r->mem.pss;
		c->private_dirty += r->mem.private_dirty;
		c->swap += r->mem.swap;
	}
}

/* ---- chunk histogram per arena ---------------------------------------- */

/*
 * (arena, size) -> count/bytes in an open-addressing table.  The walk
 * gives sizes in address order, not sorted, and a heap of millions of
 * chunks has few distinct sizes; the table is capped at
 * HS_PROFILE_CHUNK_SIZES_MAX pairs, beyond which a size is counted under
 * its arena's size 0 ("all other sizes").
 */
struct hist_slot {
	bool used;
	int arena;
	uint64_t size, count, bytes;
};

struct hist {
	struct hist_slot *v;
	size_t cap, n;           /* cap a power of two */
	struct hs_profile_arena *arenas; /* per arena idx, narenas */
	size_t narenas;
};

static uint64_t hist_hash(int arena, uint64_t size)
{
	uint64_t h = size * 0x9e3779b97f4a7c15ull ^ (uint64_t)(int64_t)arena * 0xff51afd7ed558ccdull;

	return h ^ (h >> 29);
}

static struct hist_slot *hist_find(struct hist *hi, int arena, uint64_t size)
{
	size_t i = hist_hash(arena, size) & (hi->cap - 1);

	for (;;) {
		struct hist_slot *s = &hi->v[i];

		if (!s->used || (s->arena == arena && s->size == size))
			return s;
		i = (i + 1) & (hi->cap - 1);
	}
}

static void hist_grow(struct hist *hi)
{
	struct hist_slot *old = hi->v;
	size_t ocap = hi->cap;

	hi->cap = ocap ? ocap * 2 : 256;
	hi->v = hs_xcalloc(hi->cap, sizeof(*hi->v));
	for (size_t i = 0; i < ocap; i++) {
		if (old[i].used)
			*hist_find(hi, old[i].arena, old[i].size) = old[i];
	}
	free(old);
}

/* The slot of (arena, size), created if absent. */
static struct hist_slot *hist_slot(struct hist *hi, int arena, uint64_t size)
{
	struct hist_slot *s;

	if ((hi->n + 1) * 2 > hi->cap)
		hist_grow(hi);
	s = hist_find(hi, arena, size);
	if (!s->used) {
		s->used = true;
		s->arena = arena;
		s->size = size;
		hi->n++;
	}
	return s;
}

static void hist_add(struct hist *hi, int arena, uint64_t size)
{
	struct hist_slot *s = NULL;

	if (hi->n < HS_PROFILE_CHUNK_SIZES_MAX) {
		s = hist_slot(hi, arena, size);
	} else {
		/* Full: a size not seen yet goes to "all other sizes" of its
		 * arena (one more slot per arena, bounded by the arenas). */
		s = hist_find(hi, arena, size);
		if (!s->used)
			s = hist_slot(hi, arena, 0);
	}
	s->count++;
	s->bytes += size;
}

static int chunk_cb(void *ud, const struct hs_glibc_chunk *c)
{
	struct hist *hi = ud;
	struct hs_profile_arena *a = NULL;

	if (c->arena >= 0 && (size_t)c->arena < hi->narenas)
		a = &hi->arenas[c->arena];
	if (c->state == HS_CHUNK_INUSE || c->state == HS_CHUNK_MMAPPED) {
		hist_add(hi, c->state == HS_CHUNK_MMAPPED ? -1 : c->arena, c->size);
		if (a) {
			a->inuse_count++;
			a->inuse_bytes += c->size;
		}
	} else if (hs_chunk_state_is_free(c->state) && a) {
		a->free_count++;
		a->free_bytes += c->size;
	}
	return 0;
}

static int cmp_chunk(const void *x, const void *y)
{
	const struct hs_profile_chunk *a = x, *b = y;

	if (a->arena != b->arena)
		return a->arena < b->arena ? -1 : 1;
	return a->size < b->size ? -1 : a->size > b->size;
}

static int add_heap(struct hs_profile *p, struct hs_target *t,
		    const struct hs_glibc_opts *go)
{
	struct hs_glibc_heap *h = NULL;
	struct hist hi = { 0 };
	struct hs_buf why = HS_BUF_INIT;
	int ret;

	ret = hs_glibc_open(t, go, &h);
	if (ret == -ESRCH || ret == -HS_E_INTERRUPTED)
		goto out;
	if (ret < 0) {
		if (ret == -HS_E_UNSUPPORTED && h && h->version_minor)
			hs_buf_addf(&why, "glibc 2.%u is not supported by the heap walker",
				    h->version_minor);
		else if (ret == -HS_E_NOT_FOUND)
			hs_buf_adds(&why, "glibc main_arena not found");
		else
			hs_buf_addf(&why, "heap walk failed: %s", hs_strerror(ret));
		hs_profile_set_str(&p->heap_error, why.buf);
		p->glibc_minor = h ? h->version_minor : 0;
		ret = 0;
		goto out;
	}
	p->glibc_minor = h->version_minor;
	hi.narenas = h->narenas;
	hi.arenas = hs_xcalloc(h->narenas ? h->narenas : 1, sizeof(*hi.arenas));
	for (size_t i = 0; i < h->narenas; i++) {
		hi.arenas[i].idx = (int)i;
		hi.arenas[i].addr = h->arenas[i].addr;
		hi.arenas[i].is_main = h->arenas[i].is_main;
		hi.arenas[i].system_mem = h->arenas[i].system_mem;
	}
	ret = hs_glibc_for_each_chunk(h, chunk_cb, &hi);
	if (ret < 0)
		goto out;
	p->heap_problems = h->nproblems;
	for (size_t i = 0; i < hi.narenas; i++)
		*hs_profile_add_arena(p) = hi.arenas[i];
	for (size_t i = 0; i < hi.cap; i++) {
		struct hist_slot *s = &hi.v[i];
		struct hs_profile_chunk *c;

		if (!s->used)
			continue;
		c = hs_profile_add_chunk(p);
		c->arena = s->arena;
		c->size = s->size;
		c->count = s->count;
		c->bytes = s->bytes;
	}
	if (p->nchunks)
		qsort(p->chunks, p->nchunks, sizeof(*p->chunks), cmp_chunk);
out:
	free(hi.v);
	free(hi.arenas);
	hs_buf_release(&why);
	hs_glibc_close(h);
	return ret;
}

/* Another allocator's blocks: arenas appear as their blocks do. */
struct block_hist {
	struct hist hi;
	struct hs_profile_arena *arenas;
	size_t narenas;
};

static int block_cb(void *ud, const struct hs_block *b)
{
	struct block_hist *bh = ud;
	struct hs_profile_arena *a;
	size_t idx = b->arena >= 0 && b->arena < 4096 ? (size_t)b->arena : 0;

	if (idx >= bh->narenas) {
		struct hs_profile_arena *na = realloc(bh->arenas, (idx + 1) * sizeof(*na));

		if (!na)
			return -ENOMEM;
		for (size_t i = bh->narenas; i <= idx; i++)
			na[i] = (struct hs_profile_arena){ .idx = (int)i, .is_main = i == 0 };
		bh->arenas = na;
		bh->narenas = idx + 1;
	}
	a = &bh->arenas[idx];
	a->system_mem += b->size;
	if (b->state == HS_BLOCK_INUSE) {
		hist_add(&bh->hi, (int)idx, b->cls ? b->cls : b->size);
		a->inuse_count++;
		a->inuse_bytes += b->cls ? b->cls : b->size;
	} else {
		a->free_count++;
		a->free_bytes += b->cls ? b->cls : b->size;
	}
	return 0;
}

static int add_heap_blocks(struct hs_profile *p, const struct hs_blocks *blocks)
{
	struct block_hist bh = { 0 };
	int ret = blocks->for_each(blocks->heap, block_cb, &bh);

	if (!strcmp(blocks->allocator, "jemalloc"))
		p->heap_allocator = HS_PROFILE_JEMALLOC;
	if (ret < 0)
		goto out;
	for (size_t i = 0; i < bh.narenas; i++)
		*hs_profile_add_arena(p) = bh.arenas[i];
	for (size_t i = 0; i < bh.hi.cap; i++) {
		struct hist_slot *s = &bh.hi.v[i];
		struct hs_profile_chunk *c;

		if (!s->used)
			continue;
		c = hs_profile_add_chunk(p);
		c->arena = s->arena;
		c->size = s->size;
		c->count = s->count;
		c->bytes = s->bytes;
	}
	if (p->nchunks)
		qsort(p->chunks, p->nchunks, sizeof(*p->chunks), cmp_chunk);
out:
	free(bh.hi.v);
	free(bh.arenas);
	return ret;
}

/* ---- strings ------------------------------------------------------------ */

static int add_strings(struct hs_profile *p, struct hs_target *t,
		       const struct hs_profile_opts *o)
{
	struct hs_str_ranges r = HS_STR_RANGES_INIT;
	struct hs_str_result res;
	struct hs_str_opts so;
	unsigned keep = o && o->keep ? o->keep : HS_PROFILE_KEEP_DEFAULT;
	int ret;

	if (keep > HS_PROFILE_KEEP_MAX)
		keep = HS_PROFILE_KEEP_MAX;
	hs_str_opts_init(&so);
	so.top = keep;
	if (o && o->jobs)
		so.jobs = o->jobs;
	hs_str_ranges_from_maps(&r, &t->maps, HS_STR_CLASSES_DEFAULT);
	ret = hs_strings_scan(t, &r, &so, &res);
	hs_str_ranges_release(&r);
	if (ret < 0)
		goto out;
	p->strings_done = true;
	p->strings_exact = res.exact;
	p->strings_err = res.err_bound;
	p->strings_distinct = res.distinct;
	p->strings_occurrences = res.occurrences;
	p->strings_min_len = res.opts.min_len;
	p->strings_keep = keep;
	for (size_t i = 0; i < res.ntop; i++) {
		const struct hs_str_item *it = &res.top[i];
		struct hs_profile_string *s = hs_profile_add_string(p);

		s->s = hs_xstrndup(it->s, it->stored);
		s->stored = it->stored;
		s->len = it->len;
		s->count = it->count;
		s->bytes = it->bytes;
	}
	/* A string absent from the table occurred at most as often as the
	 * least frequent one kept (when the table was cut), and at most
	 * err_bound times (estimated counts). */
	if (res.ntop && res.ntop >= keep && (!res.distinct_exact || res.distinct > res.ntop))
		p->strings_cut = res.top[res.ntop - 1].count;
	if (!res.exact && res.err_bound > p->strings_cut)
		p->strings_cut = res.err_bound;
out:
	hs_str_result_release(&res);
	return ret;
}

int hs_profile_build(struct hs_target *t, const struct hs_profile_opts *o,
		     struct hs_profile *p)
{
	uint64_t t0 = hs_now_ns();
	struct timespec ts;
	int ret = 0;

	hs_profile_init(p);
	hs_profile_set_str(&p->source, t->source);
	hs_profile_set_str(&p->kind, t->ops->name);
	hs_profile_set_str(&p->exe, t->info.exe);
	hs_profile_set_str(&p->cmdline, t->info.cmdline);
	p->pid = t->info.pid;
	p->time_ns = t->info.time_ns;
	if (!p->time_ns && clock_gettime(CLOCK_REALTIME, &ts) == 0)
		p->time_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	add_regions(p, t);
	if (!(o && (o->flags & HS_PROFILE_NO_HEAP))) {
		if (o && o->blocks)
			ret = add_heap_blocks(p, o->blocks);
		else
			ret = add_heap(p, t, o ? o->glibc : NULL);
		if (ret < 0)
			goto out;
	} else {
		hs_profile_set_str(&p->heap_error, "not collected");
	}
	if (hs_interrupted) {
		ret = -HS_E_INTERRUPTED;
		goto out;
	}
	if (!(o && (o->flags & HS_PROFILE_NO_STRINGS))) {
		ret = add_strings(p, t, o);
		if (ret < 0)
			goto out;
	}
out:
	p->stop_ns = t->stop_ns;
	p->partial = (t->state & HS_TSTATE_PARTIAL) != 0;
	p->build_ns = hs_now_ns() - t0;
	return ret;
}
