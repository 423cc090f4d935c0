/*
 * The census of a CPython heap: heap types from glibc chunks, then every
 * allocated pymalloc block and every in-use glibc chunk, each recognised
 * by its ob_type.  See hs_python.h; layouts in doc/python.md.
 */
#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <inttypes.h>
#include <stdlib.h>

#define WIN_BUF (1u << 20)
#define MAX_HT_CANDS (1u << 20)
/* What a chunk's head must show to be looked at: GC header, pre-header,
 * and the object's first three words. */
#define HEAD_BYTES (PY_GC_HEAD + PY_PREHEADER + 24)

/* A read-ahead window over the target, for chunks met in address order. */
struct win {
	struct hs_target *t;
	unsigned char *buf;
	hs_addr_t base;
	size_t len;
};

static const unsigned char *win_get(struct win *w, hs_addr_t addr, size_t n)
{
	const struct hs_map *m;
	size_t want, got = 0;

	if (addr >= w->base && addr + n <= w->base + w->len)
		return w->buf + (addr - w->base);
	m = hs_target_find_map(w->t, addr);
	if (!m || m->end - addr < n)
		return NULL;
	want = m->end - addr < WIN_BUF ? (size_t)(m->end - addr) : WIN_BUF;
	w->base = addr;
	w->len = 0;
	if (hs_target_read(w->t, addr, w->buf, want, &got) < 0)
		return NULL;
	w->len = got;
	return got >= n ? w->buf : NULL;
}

/*
 * Which type's object, if any, starts the block b of bsize bytes: the
 * first of the offsets 0, 16, 32 (no header, GC header, GC header and
 * pre-header) where ob_type is a known type whose flags put its object
 * there and whose fixed part fits.  *dead: refcount 0 (a freelist).
 */
static long classify(const struct hs_py *py, const unsigned char *b, size_t bsize,
		     bool *dead)
{
	for (unsigned off = 0; off <= PY_GC_HEAD + PY_PREHEADER; off += 16) {
		long idx;
		const struct hs_py_type *ty;
		uint64_t rc;

		if (off + 16 > bsize)
			break;
		idx = py_type_lookup(py, py_u64(b + off + PY_OB_TYPE));
		if (idx < 0)
			continue;
		ty = &py->types[idx];
		if (ty->obj_off != off || (uint64_t)ty->basicsize > bsize - off)
			continue;
		rc = py_u64(b + off + PY_OB_REFCNT);
		if (rc > PY_MAX_REFCNT)
			continue;
		*dead = rc == 0;
		return idx;
	}
	return -1;
}

/* Counts of one walker (a thread, or the glibc pass), merged at the end. */
struct tstat {
	uint64_t count, bytes, free_count, free_bytes;
	hs_addr_t sample;        /* lowest address seen: the same every run */
};

struct acc {
	struct tstat *ts;        /* per type, py->ntypes of them */
	struct hs_py_count blocks, pools, pm_objects, gl_objects, freelist;
};

static void acc_init(struct acc *a, const struct hs_py *py)
{
	memset(a, 0, sizeof(*a));
	a->ts = hs_xcalloc(py->ntypes ? py->ntypes : 1, sizeof(*a->ts));
}

static void acc_merge(struct hs_py *py, struct acc *a)
{
	for (size_t i = 0; i < py->ntypes; i++) {
		struct hs_py_type *ty = &py->types[i];
		const struct tstat *t = &a->ts[i];

		ty->count += t->count;
		ty->bytes += t->bytes;
		ty->free_count += t->free_count;
		ty->free_bytes += t->free_bytes;
		if (t->sample && (!ty->sample || t->sample < ty->sample))
			ty->sample = t->sample;
	}
	py->pymalloc_blocks.count += a->blocks.count;
	py->pymalloc_blocks.bytes += a->blocks.bytes;
	py->pymalloc_pools.count += a->pools.count;
	py->pymalloc_pools.bytes += a->pools.bytes;
	py->pymalloc_objects.count += a->pm_objects.count;
	py->pymalloc_objects.bytes += a->pm_objects.bytes;
	py->glibc_objects.count += a->gl_objects.count;
	py->glibc_objects.bytes += a->gl_objects.bytes;
	py->objects.count += a->pm_objects.count + a->gl_objects.count;
	py->objects.bytes += a->pm_objects.bytes + a->gl_objects.bytes;
	py->freelist.count += a->freelist.count;
	py->freelist.bytes += a->freelist.bytes;
	free(a->ts);
	a->ts = NULL;
}

static inline void count(struct acc *a, long idx, bool dead, uint64_t bytes,
			 hs_addr_t addr, struct hs_py_count *where)
{
	struct tstat *t = &a->ts[idx];

	if (dead) {
		t->free_count++;
		t->free_bytes += bytes;
		a->freelist.count++;
		a->freelist.bytes += bytes;
		return;
	}
	t->count++;
	t->bytes += bytes;
	if (!t->sample || addr < t->sample)
		t->sample = addr;
	where->count++;
	where->bytes += bytes;
}

/* ---- pymalloc ---------------------------------------------------------- */

static void walk_pool(struct hs_py *py, struct acc *a, const unsigned char *p,
		      hs_addr_t pool, uint32_t aidx, uint64_t *freemap)
{
	uint32_t ref = py_u32(p + PY_PH_REF), szidx = py_u32(p + PY_PH_SZIDX);
	uint32_t next = py_u32(p + PY_PH_NEXTOFFSET), maxnext = py_u32(p + PY_PH_MAXNEXTOFFSET);
	uint64_t size, nblocks, seen = 0, alloc = 0;
	hs_addr_t fb = py_u64(p + PY_PH_FREEBLOCK);

	if (ref == 0)
		return; /* empty: on the arena's free pool list */
	size = ((uint64_t)szidx + 1) * PY_ALIGN;
	if (szidx >= PY_NSIZES || py_u32(p + PY_PH_ARENAINDEX) != aidx ||
	    maxnext != py->pool_size - size || next > py->pool_size ||
	    next < PY_POOL_OVERHEAD + size) {
		hs_py_problem(py, pool, "pool header not sane (szidx %u, nextoffset %u)",
			      szidx, next);
		return;
	}
	nblocks = (next - PY_POOL_OVERHEAD) / size;
	memset(freemap, 0, (size_t)((nblocks + 63) / 64) * 8);
	/* The pool's free list: each free block's first word is the next. */
	while (fb && seen <= nblocks) {
		uint64_t off = fb - pool, bi;

		if (fb < pool || off < PY_POOL_OVERHEAD || off >= next ||
		    (off - PY_POOL_OVERHEAD) % size) {
			hs_py_problem(py, pool, "free block 0x%" PRIx64 " outside its pool", fb);
			break;
		}
		bi = (off - PY_POOL_OVERHEAD) / size;
		if (freemap[bi / 64] & (1ull << (bi % 64))) {
			hs_py_problem(py, pool, "free list of the pool loops");
			break;
		}
		freemap[bi / 64] |= 1ull << (bi % 64);
		fb = py_u64(p + off);
		seen++;
	}
	for (uint64_t bi = 0; bi < nblocks; bi++) {
		const unsigned char *b = p + PY_POOL_OVERHEAD + bi * size;
		bool dead = false;
		long idx;

		if (freemap[bi / 64] & (1ull << (bi % 64)))
			continue;
		alloc++;
		idx = classify(py, b, (size_t)size, &dead);
		if (idx >= 0)
			count(a, idx, dead, size, pool + PY_POOL_OVERHEAD + bi * size,
			      &a->pm_objects);
	}
	a->blocks.count += alloc;
	a->blocks.bytes += alloc * size;
	a->pools.count++;
	a->pools.bytes += py->pool_size;
	if (alloc != ref)
		hs_py_problem(py, pool, "pool holds %" PRIu64 " blocks, its count says %u",
			      alloc, ref);
}

#define MAX_JOBS 4

struct walker {
	struct hs_py *py;
	struct acc acc;
	size_t *next;            /* shared: the next arena to take */
	int *err;                /* shared: first error, stops everyone */
	pthread_t th;
};

static void *walk_arenas_thread(void *arg)
{
	struct walker *w = arg;
	struct hs_py *py = w->py;
	unsigned char *buf = hs_xmalloc((size_t)py->arena_size);
	uint64_t *freemap = hs_xmalloc((size_t)(py->pool_size / PY_ALIGN / 64 + 1) * 8);

	for (;;) {
		size_t i = __atomic_fetch_add(w->next, 1, __ATOMIC_RELAXED);
		const struct hs_py_arena *ar;
		hs_addr_t first;
		size_t n = 0;
		int ret;

		if (i >= py->narenas || __atomic_load_n(w->err, __ATOMIC_RELAXED))
			break;
		if (hs_interrupted) {
			__atomic_store_n(w->err, -HS_E_INTERRUPTED, __ATOMIC_RELAXED);
			break;
		}
		ar = &py->arenas[i];
		first = (ar->addr + py->pool_size - 1) & ~(py->pool_size - 1);
		if (ar->pool_address <= first)
			continue;
		/* Pools below pool_address have been carved: used or empty.
		 * Those above were never touched. */
		ret = hs_target_read(py->t, first, buf, (size_t)(ar->pool_address - first), &n);
		if (ret == -ESRCH) {
			__atomic_store_n(w->err, ret, __ATOMIC_RELAXED);
			break;
		}
		for (uint64_t off = 0; off + py->pool_size <= n; off += py->pool_size)
			walk_pool(py, &w->acc, buf + off, first + off, ar->index, freemap);
	}
	free(freemap);
	free(buf);
	return NULL;
}

/*
 * Every used arena, by py->jobs threads (each reads whole arenas: the
 * kernel's copy of the target's pages is most of the time).
 */
static int walk_arenas(struct hs_py *py)
{
	struct walker w[MAX_JOBS];
	size_t next = 0;
	int err = 0;
	unsigned n = py->jobs ? py->jobs : 1;

	if (n > MAX_JOBS)
		n = MAX_JOBS;
	if (n > py->narenas)
		n = py->narenas ? (unsigned)py->narenas : 1;
	for (unsigned i = 0; i < n; i++) {
		w[i].py = py;
		w[i].next = &next;
		w[i].err = &err;
		acc_init(&w[i].acc, py);
	}
	/* Thread 0 is this one; a thread that cannot start leaves its share
	 * to the others. */
	for (unsigned i = 1; i < n; i++)
		if (pthread_create(&w[i].th, NULL, walk_arenas_thread, &w[i]))
			w[i].py = NULL;
	walk_arenas_thread(&w[0]);
	for (unsigned i = 0; i < n; i++) {
		if (i && w[i].py)
			pthread_join(w[i].th, NULL);
		w[i].py = py;
		acc_merge(py, &w[i].acc);
	}
	return err;
}

/* ---- glibc chunks ------------------------------------------------------ */

struct ht_cand {
	hs_addr_t obj, meta;
};

struct glibc_ctx {
	struct hs_py *py;
	struct acc acc;
	struct win w;
	struct ht_cand *c;
	size_t n, alloc;
	unsigned min_chunk;
};

static const unsigned char *chunk_head(struct glibc_ctx *g, const struct hs_glibc_chunk *c,
				       size_t n)
{
	if (c->state == HS_CHUNK_MMAPPED) {
		/* Sparse, far apart: read just the head. */
		g->w.base = 0;
		g->w.len = 0;
		if (hs_target_read_full(g->w.t, c->addr + 16, g->w.buf, n) < 0)
			return NULL;
		return g->w.buf;
	}
	return win_get(&g->w, c->addr + 16, n);
}

static int find_heap_types_cb(void *ud, const struct hs_glibc_chunk *c)
{
	struct glibc_ctx *g = ud;
	const unsigned char *b;
	uint64_t flags;

	if ((c->state != HS_CHUNK_INUSE && c->state != HS_CHUNK_MMAPPED) ||
	    c->size < g->min_chunk)
		return 0;
	b = chunk_head(g, c, PY_GC_HEAD + PY_TP_FLAGS + 8);
	if (!b)
		return 0;
	flags = py_u64(b + PY_GC_HEAD + PY_TP_FLAGS);
	if (!(flags & PY_TPF_HEAPTYPE) || !(flags & PY_TPF_READY) || g->n >= MAX_HT_CANDS)
		return 0;
	HS_ALLOC_GROW(g->c, g->n + 1, g->alloc);
	g->c[g->n].obj = c->addr + 16 + PY_GC_HEAD;
	g->c[g->n].meta = py_u64(b + PY_GC_HEAD + PY_OB_TYPE);
	g->n++;
	return hs_interrupted ? -HS_E_INTERRUPTED : 0;
}

/* Classes to a fixed point: a candidate is a class once its ob_type is a
 * known metatype; a class that is itself a metatype admits more. */
static void accept_heap_types(struct hs_py *py, struct glibc_ctx *g)
{
	bool changed = true;

	for (unsigned round = 0; changed && round < 64 && !hs_interrupted; round++) {
		changed = false;
		for (size_t i = 0; i < g->n; i++) {
			long m, idx;

			if (!g->c[i].obj)
				continue;
			m = py_type_lookup(py, g->c[i].meta);
			if (m < 0 || !(py->types[m].flags & PY_TPF_TYPE_SUBCLASS))
				continue;
			idx = hs_py_type_add(py, g->c[i].obj, true);
			g->c[i].obj = 0;
			if (idx >= 0 && (py->types[idx].flags & PY_TPF_TYPE_SUBCLASS))
				changed = true;
		}
	}
}

static int objects_cb(void *ud, const struct hs_glibc_chunk *c)
{
	struct glibc_ctx *g = ud;
	const unsigned char *b;
	uint64_t usable;
	bool dead = false;
	long idx;

	if (c->state != HS_CHUNK_INUSE && c->state != HS_CHUNK_MMAPPED)
		return 0;
	usable = c->size - (c->state == HS_CHUNK_MMAPPED ? 16 : 8);
	if (c->size < 32 || usable < 24)
		return 0;
	b = chunk_head(g, c, usable < HEAD_BYTES ? (size_t)usable : HEAD_BYTES);
	if (!b)
		return 0;
	idx = classify(g->py, b, (size_t)usable, &dead);
	if (idx >= 0)
		count(&g->acc, idx, dead, c->size, c->addr + 16, &g->acc.gl_objects);
	return hs_interrupted ? -HS_E_INTERRUPTED : 0;
}

int hs_py_census(struct hs_py *py, struct hs_glibc_heap *h)
{
	const struct py_layout *lay = ((struct py_priv *)py->priv)->lay;
	struct glibc_ctx g;
	uint64_t t0 = hs_now_ns();
	int ret = 0;

	memset(&g, 0, sizeof(g));
	g.py = py;
	g.w.t = py->t;
	g.w.buf = hs_xmalloc(WIN_BUF);
	if (h) {
		g.min_chunk = lay->heaptype_size + 16;
		ret = hs_glibc_for_each_chunk(h, find_heap_types_cb, &g);
		if (ret < 0)
			goto out;
		accept_heap_types(py, &g);
		py->heap_types_found = true;
	}
	if (py->arenas_vec) {
		ret = walk_arenas(py);
		if (ret < 0)
			goto out;
	}
	if (h) {
		g.w.base = g.w.len = 0;
		acc_init(&g.acc, py);
		ret = hs_glibc_for_each_chunk(h, objects_cb, &g);
		acc_merge(py, &g.acc);
		if (ret < 0)
			goto out;
	}
	py->census_done = true;
out:
	py->walk_ns = hs_now_ns() - t0;
	free(g.c);
	free(g.w.buf);
	return ret;
}

void hs_py_census_rows(const struct hs_py *py, struct hs_census *c)
{
	for (size_t i = 0; i < py->ntypes; i++) {
		const struct hs_py_type *ty = &py->types[i];
		struct hs_census_row *r;

		if (!ty->count && !ty->free_count)
			continue;
		r = hs_census_add(c, HS_CENSUS_PYTHON, ty->name, ty->count, ty->bytes);
		r->free_count = ty->free_count;
		r->free_bytes = ty->free_bytes;
		r->type_addr = ty->addr;
		r->sample = ty->sample;
	}
}

/* ---- where strings are: Python objects' memory -------------------------- */

#define MAX_PLACES (1u << 20)

struct places_ctx {
	struct glibc_ctx g;
	long str_idx, bytes_idx;
	struct hs_str_where_iv *v;
	size_t n, alloc;
	bool capped;
};

static int places_cb(void *ud, const struct hs_glibc_chunk *c)
{
	struct places_ctx *pc = ud;
	const unsigned char *b;
	uint64_t usable;
	bool dead = false;
	long idx;

	if (c->state != HS_CHUNK_INUSE && c->state != HS_CHUNK_MMAPPED)
		return 0;
	usable = c->size - (c->state == HS_CHUNK_MMAPPED ? 16 : 8);
	if (c->size < 32 || usable < 24)
		return 0;
	b = chunk_head(&pc->g, c, usable < HEAD_BYTES ? (size_t)usable : HEAD_BYTES);
	if (!b)
		return 0;
	idx = classify(pc->g.py, b, (size_t)usable, &dead);
	if (idx < 0 || dead || (idx != pc->str_idx && idx != pc->bytes_idx))
		return 0;
	if (pc->n >= MAX_PLACES) {
		pc->capped = true;
		return 0;
	}
	HS_ALLOC_GROW(pc->v, pc->n + 1, pc->alloc);
	pc->v[pc->n++] = (struct hs_str_where_iv){ c->addr + 16, c->addr + 16 + usable,
						   HS_STR_LOC_PYTHON };
	return hs_interrupted ? -HS_E_INTERRUPTED : 0;
}

static int iv_cmp(const void *a, const void *b)
{
	const struct hs_str_where_iv *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

static long static_type(const struct hs_py *py, const char *name)
{
	for (size_t i = 0; i < py->ntypes; i++)
		if (!py->types[i].heap && !strcmp(py->types[i].name, name))
			return (long)i;
	return -1;
}

int hs_py_str_places(struct hs_py *py, struct hs_glibc_heap *h,
		     struct hs_str_where_iv **out, size_t *nout, bool *capped)
{
	struct places_ctx pc;
	size_t j = 0;
	int ret = 0;

	memset(&pc, 0, sizeof(pc));
	*out = NULL;
	*nout = 0;
	for (size_t i = 0; i < py->narenas; i++) {
		HS_ALLOC_GROW(pc.v, pc.n + 1, pc.alloc);
		pc.v[pc.n++] = (struct hs_str_where_iv){ py->arenas[i].addr,
			py->arenas[i].addr + py->arenas[i].size, HS_STR_LOC_PYTHON };
	}
	pc.str_idx = static_type(py, "str");
	pc.bytes_idx = static_type(py, "bytes");
	if (h && (pc.str_idx >= 0 || pc.bytes_idx >= 0)) {
		pc.g.py = py;
		pc.g.w.t = py->t;
		pc.g.w.buf = hs_xmalloc(WIN_BUF);
		ret = hs_glibc_for_each_chunk(h, places_cb, &pc);
		free(pc.g.w.buf);
		if (ret < 0) {
			free(pc.v);
			return ret;
		}
	}
	/* Sorted and disjoint (hostile input may overlap: keep the first). */
	if (pc.n > 1)
		qsort(pc.v, pc.n, sizeof(*pc.v), iv_cmp);
	for (size_t i = 0; i < pc.n; i++) {
		if (j && pc.v[i].start < pc.v[j - 1].end)
			continue;
		pc.v[j++] = pc.v[i];
	}
	*out = pc.v;
	*nout = j;
	if (capped)
		*capped = pc.capped;
	return 0;
}
