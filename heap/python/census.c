/*
 * The census of a CPython heap: heap types from glibc chunks, then every
 * allocated pymalloc block and every in-use glibc chunk, each recognised
 * by its ob_type.  See hs_python.h; layouts in doc/python.md.
 */
#include "internal.h"

#include <errno.h>
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

static void count(struct hs_py *py, long idx, bool dead, uint64_t bytes,
		  hs_addr_t addr, struct hs_py_count *where)
{
	struct hs_py_type *ty = &py->types[idx];

	if (dead) {
		ty->free_count++;
		ty->free_bytes += bytes;
		py->freelist.count++;
		py->freelist.bytes += bytes;
		return;
	}
	ty->count++;
	ty->bytes += bytes;
	if (!ty->sample)
		ty->sample = addr;
	where->count++;
	where->bytes += bytes;
	py->objects.count++;
	py->objects.bytes += bytes;
}

/* ---- pymalloc ---------------------------------------------------------- */

static void walk_pool(struct hs_py *py, const unsigned char *p, hs_addr_t pool,
		      uint32_t aidx, uint64_t *freemap)
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
			count(py, idx, dead, size,
			      pool + PY_POOL_OVERHEAD + bi * size, &py->pymalloc_objects);
	}
	py->pymalloc_blocks.count += alloc;
	py->pymalloc_blocks.bytes += alloc * size;
	py->pymalloc_pools.count++;
	py->pymalloc_pools.bytes += py->pool_size;
	if (alloc != ref)
		hs_py_problem(py, pool, "pool holds %" PRIu64 " blocks, its count says %u",
			      alloc, ref);
}

static int walk_arenas(struct hs_py *py)
{
	enum { BATCH = 1024 };
	unsigned char *ao = hs_xmalloc(BATCH * PY_AO_SIZE);
	unsigned char *buf = hs_xmalloc((size_t)py->arena_size);
	uint64_t *freemap = hs_xmalloc((size_t)(py->pool_size / PY_ALIGN / 64 + 1) * 8);
	int ret = 0;

	for (uint64_t i = 0; i < py->maxarenas && !ret; i += BATCH) {
		uint64_t k = py->maxarenas - i < BATCH ? py->maxarenas - i : BATCH;
		size_t got = 0;

		ret = hs_target_read(py->t, py->arenas_vec + i * PY_AO_SIZE, ao,
				     (size_t)(k * PY_AO_SIZE), &got);
		if (ret < 0)
			break;
		for (uint64_t j = 0; j < k && (j + 1) * PY_AO_SIZE <= got; j++) {
			const unsigned char *e = ao + j * PY_AO_SIZE;
			hs_addr_t a = py_u64(e + PY_AO_ADDRESS), pa = py_u64(e + PY_AO_POOL_ADDRESS);
			hs_addr_t first = (a + py->pool_size - 1) & ~(py->pool_size - 1);
			size_t n = 0;

			if (!a || pa <= first || pa > a + py->arena_size)
				continue;
			/* Pools below pool_address have been carved: used or
			 * empty.  Those above were never touched. */
			ret = hs_target_read(py->t, first, buf, (size_t)(pa - first), &n);
			if (ret == -ESRCH)
				break;
			ret = 0;
			for (uint64_t off = 0; off + py->pool_size <= n; off += py->pool_size)
				walk_pool(py, buf + off, first + off, (uint32_t)(i + j), freemap);
			if (hs_interrupted) {
				ret = -HS_E_INTERRUPTED;
				break;
			}
		}
		if (got < k * PY_AO_SIZE)
			break;
	}
	free(freemap);
	free(buf);
	free(ao);
	return ret;
}

/* ---- glibc chunks ------------------------------------------------------ */

struct ht_cand {
	hs_addr_t obj, meta;
};

struct glibc_ctx {
	struct hs_py *py;
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
		count(g->py, idx, dead, c->size, c->addr + 16, &g->py->glibc_objects);
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
		ret = hs_glibc_for_each_chunk(h, objects_cb, &g);
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
