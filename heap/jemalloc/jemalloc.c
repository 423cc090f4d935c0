/*
 * The jemalloc 5.3 walker; see hs_jemalloc.h, and doc/jemalloc.md for
 * every layout fact used here (rtree leaf encoding, edata_t, tsd_t's
 * tcache, cache_bin_t, the size-class table).
 */
#include "hs_jemalloc.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PAGE 4096ull
#define LG_PAGE 12
#define LG_VADDR 48
/* Two levels of 18 bits: root index = bits 47..30, leaf index 29..12. */
#define RT_BITS 18
#define RT_LEAF_SPAN (1ull << (LG_PAGE + RT_BITS)) /* 1 GiB per leaf */
/* rtree_t: base_t * (8), malloc_mutex_t (0x70 in Debian's build), root[].
 * Other builds' mutex may differ in size (debug witnesses): the walk tries
 * 0x78 first, then the other 8-aligned offsets up to RT_ROOT_OFF_MAX. */
#define RT_ROOT_OFF 0x78
#define RT_ROOT_OFF_MIN 0x30
#define RT_ROOT_OFF_MAX 0x100
#define RT_NROOT (1u << RT_BITS)

#define EDATA_SIZE 128     /* EDATA_ALIGNMENT; sizeof(edata_t) */
#define ED_ADDR 8
#define ED_SIZE 16
#define ED_BITMAP 64

#define TSD_SIZE_DEFAULT 0xa48
#define TC_SLOW_TCACHE 168 /* offsetof(tcache_slow_t, tcache) */
#define CB_SIZE 24         /* sizeof(cache_bin_t) */
#define TC_NBINS_MAX 73    /* TCACHE_NBINS_MAX */
#define CB_NCACHED_MAX 8192

#define MAX_EXTENTS_DEFAULT (1u << 20)
#define MAX_CACHED_DEFAULT (4u << 20)

static const char *const state_names[] = { "active", "dirty", "muzzy", "retained" };

const char *hs_je_state_name(enum hs_je_extent_state s)
{
	return (unsigned)s < HS_JE_STATE_N ? state_names[s] : "?";
}

/* e_bits fields (5.3: MALLOCX_ARENA_BITS 12, SC_NSIZES 232, 512 regs). */
static unsigned eb_arena(uint64_t b) { return (unsigned)(b & 0xfff); }
static bool eb_slab(uint64_t b) { return (b >> 12) & 1; }
static unsigned eb_state(uint64_t b) { return (unsigned)((b >> 17) & 7); }
static unsigned eb_szind(uint64_t b) { return (unsigned)((b >> 20) & 0xff); }
static unsigned eb_nfree(uint64_t b) { return (unsigned)((b >> 28) & 0x3ff); }

/*
 * sz_index2size: 8, then 16 32 48 64, then four classes per doubling
 * (base + k * base / 4, k = 1..4), 232 classes in all (LG_QUANTUM 4,
 * SC_LG_NGROUP 2, LG_TINY_MIN 3).
 */
uint64_t hs_je_index2size(unsigned ind)
{
	static const uint64_t first[] = { 8, 16, 32, 48, 64 };
	unsigned g, k;

	if (ind >= HS_JE_NSIZES)
		return 0;
	if (ind < 5)
		return first[ind];
	g = (ind - 5) / 4; /* group: base 64 << g */
	k = (ind - 5) % 4 + 1;
	return (64ull << g) + (uint64_t)k * ((64ull << g) / 4);
}

static void problem(struct hs_jemalloc_heap *h, hs_addr_t a, const char *fmt, ...)
	HS_PRINTF(3, 4);
static void problem(struct hs_jemalloc_heap *h, hs_addr_t a, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	hs_problem_vadd(h->problems, HS_JE_MAX_PROBLEMS, &h->nproblems, a, fmt, ap);
	va_end(ap);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Anonymous private read-write memory jemalloc may have mapped (its
 * mmaps, or [heap] for dss): not file-backed, not a thread stack.  The
 * bss tails of the mapped objects are cut out by the caller's skip
 * ranges (an anonymous mapping that follows a library's data may be its
 * bss, jemalloc's, or both merged). */
static bool extent_map(const struct hs_maps *ms, size_t i)
{
	const struct hs_map *m = &ms->v[i];

	if ((m->perms & (HS_PERM_R | HS_PERM_W | HS_PERM_SHARED)) != (HS_PERM_R | HS_PERM_W))
		return false;
	if (m->cls == HS_CLASS_STACK || (m->flags & HS_MAP_SPECIAL))
		return false;
	if (m->path[0] && strcmp(m->path, "[heap]"))
		return false;
	return true;
}


struct walk {
	struct hs_jemalloc_heap *h;
	/* The page of edata_t last read: jemalloc's base allocator packs
	 * them, so neighbouring extents' edata share pages (which it wrote:
	 * reading them faults nothing in). */
	hs_addr_t epage;
	size_t egot;
	uint64_t ebuf[PAGE / 8];
	/* The page of leaf entries last read (the part of it read). */
	hs_addr_t lpage;
	size_t llo, lhi;         /* bytes [llo, lhi) of it are in lbuf */
	uint64_t lbuf[PAGE / 8];
	hs_addr_t root;
	uint64_t cur_slot;
	hs_addr_t leaf;          /* leaf of cur_slot, 0 if none */
	bool have_slot;
	size_t alloc;
	uint64_t bad;            /* edata that failed the checks */
};

static int add_extent(struct walk *w, const struct hs_je_extent *e)
{
	struct hs_jemalloc_heap *h = w->h;
	size_t cap = h->opts.max_extents ? h->opts.max_extents : MAX_EXTENTS_DEFAULT;

	if (h->next >= cap) {
		h->truncated = true;
		return 0;
	}
	if (h->next == w->alloc) {
		size_t na = w->alloc ? w->alloc * 2 : 1024;
		struct hs_je_extent *nv = realloc(h->ext, na * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		h->ext = nv;
		w->alloc = na;
	}
	h->ext[h->next++] = *e;
	return 0;
}

/*
 * Checks the edata the leaf entry for page q named: it must cover q, be
 * page-aligned and of a plausible size, and a slab must be of a small
 * class with a region count that fits its bitmap.
 */
static bool edata_ok(const uint64_t *ed, hs_addr_t q, uint64_t leaf_bits)
{
	uint64_t bits = ed[0], size = ed[ED_SIZE / 8] & ~(PAGE - 1);
	/* A large allocation's e_addr is its base plus a random multiple of
	 * the cache line (cache-oblivious placement): the base is its page. */
	hs_addr_t addr = ed[ED_ADDR / 8] & ~(PAGE - 1);
	unsigned st = eb_state(bits);

	if (!size || (eb_slab(bits) && (ed[ED_ADDR / 8] & (PAGE - 1))) || addr > q || q - addr >= size ||
	    size > (1ull << 46) || st > HS_JE_RETAINED)
		return false;
	/* The leaf mirrors the edata's state; while active, its slab flag
	 * too.  A freed slab keeps its slab flag, and its leaf the old
	 * class and flag: both mean nothing once the extent is not active. */
	if (((leaf_bits >> 2) & 7) != st)
		return false;
	if (st != HS_JE_ACTIVE)
		return true;
	if ((leaf_bits & 1) != (uint64_t)eb_slab(bits))
		return false;
	if (eb_slab(bits)) {
		uint64_t reg = hs_je_index2size(eb_szind(bits));

		if (st != HS_JE_ACTIVE || eb_szind(bits) >= HS_JE_NBINS || size % reg ||
		    size / reg > 512 || eb_nfree(bits) > size / reg)
			return false;
	}
	return true;
}

static int read_edata(struct walk *w, hs_addr_t ea, uint64_t *ed)
{
	hs_addr_t pg = ea & ~(PAGE - 1);

	if (pg != w->epage || !w->egot) {
		w->epage = pg;
		w->egot = 0;
		if (hs_target_read(w->h->t, pg, w->ebuf, PAGE, &w->egot) < 0)
			w->egot = 0;
	}
	/* edata_t is 128-byte aligned: one never straddles a page. */
	if (ea - pg + EDATA_SIZE > w->egot)
		return hs_target_read_full(w->h->t, ea, ed, EDATA_SIZE);
	memcpy(ed, (const uint8_t *)w->ebuf + (ea - pg), EDATA_SIZE);
	return 0;
}

/*
 * n leaf entries at a (all in one page of the leaf) into ent, through a
 * one-page cache: consecutive small extents read the same leaf page.
 * Only [a, end of the range asked) is ever read from the target, as
 * without the cache.
 */
static int read_leaf(struct walk *w, hs_addr_t a, uint64_t *ent, uint64_t n, size_t *got)
{
	hs_addr_t pg = a & ~(PAGE - 1);
	size_t lo = (size_t)(a - pg), hi = lo + (size_t)n * 8;
	int ret;

	if (hi > PAGE) /* the caller keeps to one page */
		return -EINVAL;

	if (pg != w->lpage || lo < w->llo || hi > w->lhi) {
		size_t g = 0;

		w->lpage = pg;
		w->llo = w->lhi = 0;
		ret = hs_target_read(w->h->t, a, (uint8_t *)w->lbuf + lo, hi - lo, &g);
		if (ret < 0)
			return ret;
		w->llo = lo;
		w->lhi = lo + (g & ~(size_t)7);
	}
	*got = (w->lhi > lo ? w->lhi - lo : 0);
	if (*got > hi - lo)
		*got = hi - lo;
	memcpy(ent, (const uint8_t *)w->lbuf + lo, *got);
	return 0;
}

static int read_root(struct walk *w, uint64_t slot)
{
	uint64_t v = 0;
	int ret;

	w->cur_slot = slot;
	w->have_slot = true;
	w->leaf = 0;
	ret = hs_read_u64(w->h->t, w->root + slot * 8, &v);
	if (ret == -ESRCH)
		return ret;
	if (ret == 0 && v && !(v & 7) && v < (1ull << LG_VADDR))
		w->leaf = v;
	return 0;
}

/* Walks [start, end) of one mapping, extent by extent. */
static int walk_range(struct walk *w, hs_addr_t start, hs_addr_t end)
{
	struct hs_jemalloc_heap *h = w->h;
	uint64_t ent[PAGE / 8];
	hs_addr_t p = start;
	int ret;

	while (p < end) {
		uint64_t slot = p >> (LG_PAGE + RT_BITS), idx, n, k;
		hs_addr_t q, ea;
		uint64_t ed[EDATA_SIZE / 8];
		struct hs_je_extent e;
		size_t got = 0;

		if (hs_interrupted)
			return -HS_E_INTERRUPTED;
		if (slot >= RT_NROOT)
			return 0;
		if (!w->have_slot || slot != w->cur_slot) {
			ret = read_root(w, slot);
			if (ret)
				return ret;
		}
		if (!w->leaf) {
			p = (slot + 1) * RT_LEAF_SPAN;
			continue;
		}
		idx = (p >> LG_PAGE) & (RT_NROOT - 1);
		/* To the end of the target page holding this entry (a leaf
		 * is 8-byte aligned, not page-aligned), and of the leaf. */
		n = (PAGE - ((w->leaf + idx * 8) & (PAGE - 1))) / 8;
		if (n > RT_NROOT - idx)
			n = RT_NROOT - idx;
		if (n > (end - p) >> LG_PAGE)
			n = (end - p) >> LG_PAGE;
		if (!n)
			return 0;
		ret = read_leaf(w, w->leaf + idx * 8, ent, n, &got);
		if (ret == -ESRCH)
			return ret;
		if (ret < 0 || got < 8) {
			p += n * PAGE;
			continue;
		}
		n = got / 8;
		/* An entry without an edata (jemalloc writes {NULL, SC_NSIZES}
		 * when it clears one) is empty. */
		for (k = 0; k < n && !(ent[k] & ((1ull << LG_VADDR) - EDATA_SIZE)); k++)
			;
		if (k == n) {
			p += n * PAGE;
			continue;
		}
		q = p + k * PAGE;
		/* Compact leaf: edata in bits 47..7 (sign-extended), szind in
		 * 63..48, state 4..2, is_head 1, slab 0. */
		ea = (hs_addr_t)((int64_t)(ent[k] << 16) >> 16) & ~(hs_addr_t)(EDATA_SIZE - 1);
		if (!ea || read_edata(w, ea, ed) < 0 || !edata_ok(ed, q, ent[k])) {
			if (w->bad++ < 4)
				problem(h, q, "rtree leaf entry %#llx names no valid extent",
					(unsigned long long)ent[k]);
			p = q + PAGE;
			continue;
		}
		memset(&e, 0, sizeof(e));
		e.addr = ed[ED_ADDR / 8] & ~(PAGE - 1);
		e.uptr = ed[ED_ADDR / 8];
		e.size = ed[ED_SIZE / 8] & ~(PAGE - 1);
		e.edata = ea;
		e.bits = ed[0];
		memcpy(e.bitmap, ed + ED_BITMAP / 8, sizeof(e.bitmap));
		/* An extent that began before this range was seen already. */
		if (e.addr >= start || !h->next || h->ext[h->next - 1].addr != e.addr) {
			ret = add_extent(w, &e);
			if (ret)
				return ret;
		}
		p = e.addr + e.size > q ? e.addr + e.size : q + PAGE;
	}
	return 0;
}

/* Walks [start, end) less the skip ranges (sorted by start). */
static int walk_map(struct walk *w, hs_addr_t start, hs_addr_t end)
{
	const struct hs_jemalloc_opts *o = &w->h->opts;
	hs_addr_t a = start;
	int ret;

	for (size_t k = 0; o->skip && k < o->nskip && a < end; k++) {
		hs_addr_t s = o->skip[k][0], e = o->skip[k][1];

		if (e <= a || s >= end)
			continue;
		if (s > a) {
			ret = walk_range(w, a, s);
			if (ret)
				return ret;
		}
		a = e;
	}
	return a < end ? walk_range(w, a, end) : 0;
}

static int cmp_extent(const void *a, const void *b)
{
	const struct hs_je_extent *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

static int cmp_addr(const void *a, const void *b)
{
	hs_addr_t x = *(const hs_addr_t *)a, y = *(const hs_addr_t *)b;

	return x < y ? -1 : x > y;
}

/* Walks the tree at rtree over every candidate mapping. */
static int walk_tree(struct hs_jemalloc_heap *h, hs_addr_t root, uint64_t *bad)
{
	struct walk w = { .h = h, .root = root };
	const struct hs_maps *ms = &h->t->maps;
	int ret = 0;

	h->next = 0;
	h->truncated = false;
	for (size_t i = 0; i < ms->n && !ret; i++) {
		size_t before = h->next;

		if (!extent_map(ms, i))
			continue;
		ret = walk_map(&w, ms->v[i].start, ms->v[i].end);
		hs_log(HS_LOG_DEBUG, "jemalloc: %#llx-%#llx: %zu extents",
		       (unsigned long long)ms->v[i].start, (unsigned long long)ms->v[i].end,
		       h->next - before);
	}
	*bad = w.bad;
	if (ret)
		return ret;
	/* Sorted, with duplicates (an extent met from two mappings) dropped. */
	if (h->next)
		qsort(h->ext, h->next, sizeof(*h->ext), cmp_extent);
	{
		size_t j = 0;

		for (size_t i = 0; i < h->next; i++)
			if (!j || h->ext[j - 1].addr != h->ext[i].addr)
				h->ext[j++] = h->ext[i];
		h->next = j;
	}
	return 0;
}

/* ---- thread caches ---- */

static bool in_tsd(hs_addr_t v, hs_addr_t tsd, uint64_t size)
{
	return v >= tsd && v - tsd < size;
}

/*
 * tcache_t's offset in tsd_t: tcache->tcache_slow points into the tsd,
 * and that tcache_slow_t's `tcache` points back.  The state byte's
 * offset, when known, gives it directly (state, four u64 counters, the
 * tcache); else the pair is searched for.
 */
static uint64_t find_tcache(const uint64_t *w, hs_addr_t tsd, uint64_t size,
			    unsigned state_off)
{
	uint64_t n = size / 8;

	if (state_off) {
		uint64_t off = ((state_off + 8) & ~7ull) + 32;

		if (off / 8 < n && in_tsd(w[off / 8], tsd, size) &&
		    w[off / 8] - tsd + TC_SLOW_TCACHE + 8 <= size &&
		    w[(w[off / 8] - tsd + TC_SLOW_TCACHE) / 8] == tsd + off)
			return off;
	}
	for (uint64_t i = 1; i < n; i++) {
		uint64_t y;

		if (!in_tsd(w[i], tsd, size) || (w[i] & 7))
			continue;
		y = w[i] - tsd;
		if (y >= i * 8 || y + TC_SLOW_TCACHE + 8 > size)
			continue;
		if (w[(y + TC_SLOW_TCACHE) / 8] == tsd + i * 8)
			return i * 8;
	}
	return 0;
}

static int add_cached(struct hs_jemalloc_heap *h, size_t *alloc, const uint64_t *v, size_t n)
{
	size_t cap = h->opts.max_cached ? h->opts.max_cached : MAX_CACHED_DEFAULT;

	if (h->ncached + n > cap) {
		h->truncated = true;
		n = cap > h->ncached ? cap - h->ncached : 0;
	}
	if (!n)
		return 0;
	if (h->ncached + n > *alloc) {
		size_t na = *alloc ? *alloc : 1024;
		hs_addr_t *nv;

		while (na < h->ncached + n)
			na *= 2;
		nv = realloc(h->cached, na * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		h->cached = nv;
		*alloc = na;
	}
	memcpy(h->cached + h->ncached, v, n * sizeof(*v));
	h->ncached += n;
	return 0;
}

static int read_tcaches(struct hs_jemalloc_heap *h)
{
	uint64_t size = h->opts.tsd_size ? h->opts.tsd_size : TSD_SIZE_DEFAULT;
	uint64_t *w = NULL, *ptrs = NULL;
	size_t alloc = 0;
	int ret = 0;

	if (size > 65536 || size < 64)
		size = TSD_SIZE_DEFAULT;
	h->tcache_known = h->opts.have_tpoff && h->t->nthreads > 0;
	if (!h->opts.have_tpoff)
		return 0;
	w = malloc(size);
	ptrs = malloc(CB_NCACHED_MAX * sizeof(*ptrs));
	h->tcaches = calloc(h->t->nthreads ? h->t->nthreads : 1, sizeof(*h->tcaches));
	if (!w || !ptrs || !h->tcaches) {
		ret = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < h->t->nthreads; i++) {
		const struct hs_thread *th = &h->t->threads[i];
		hs_addr_t tsd;
		uint64_t tc;
		struct hs_je_tcache *rec;

		if (!th->has_regs) {
			h->tcache_known = false;
			continue;
		}
		tsd = th->regs.r[HS_REG_FS_BASE] + (uint64_t)h->opts.tsd_tpoff;
		ret = hs_target_read_full(h->t, tsd, w, size);
		if (ret == -ESRCH)
			goto out;
		if (ret < 0) {
			problem(h, tsd, "thread %d: tsd unreadable", (int)th->tid);
			h->tcache_known = false;
			ret = 0;
			continue;
		}
		tc = find_tcache(w, tsd, size, h->opts.tsd_state_off);
		if (!tc)
			continue; /* this thread never set up its tcache */
		if (!h->tsd_off_tcache)
			h->tsd_off_tcache = tc;
		rec = &h->tcaches[h->ntcaches++];
		rec->tsd = tsd;
		rec->tid = th->tid;
		for (unsigned b = 0; b < TC_NBINS_MAX && tc + 8 + (b + 1) * CB_SIZE <= size; b++) {
			const uint8_t *cb = (const uint8_t *)w + tc + 8 + b * CB_SIZE;
			uint64_t head;
			uint16_t empty;
			unsigned n;
			size_t got = 0;

			memcpy(&head, cb, 8);
			memcpy(&empty, cb + 20, 2);
			if (!head)
				continue;
			n = (uint16_t)(empty - (uint16_t)head) / 8u;
			if (!n)
				continue;
			if (n > CB_NCACHED_MAX || b >= HS_JE_NSIZES) {
				problem(h, tsd + tc + 8 + b * CB_SIZE,
					"thread %d: cache bin %u holds %u pointers", (int)th->tid, b, n);
				continue;
			}
			ret = hs_target_read(h->t, head, ptrs, n * 8ull, &got);
			if (ret == -ESRCH)
				goto out;
			if (ret < 0 || got < n * 8ull) {
				problem(h, head, "thread %d: cache bin %u unreadable", (int)th->tid, b);
				ret = 0;
				continue;
			}
			rec->cached.count += n;
			rec->cached.bytes += n * hs_je_index2size(b);
			ret = add_cached(h, &alloc, ptrs, n);
			if (ret)
				goto out;
		}
	}
	if (h->ncached)
		qsort(h->cached, h->ncached, sizeof(*h->cached), cmp_addr);
out:
	free(w);
	free(ptrs);
	return ret;
}

/* Index of the first cached pointer >= p. */
static size_t cached_lower(const struct hs_jemalloc_heap *h, hs_addr_t p)
{
	size_t lo = 0, hi = h->ncached;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (h->cached[mid] < p)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

bool hs_jemalloc_is_cached(const struct hs_jemalloc_heap *h, hs_addr_t p)
{
	size_t lo = cached_lower(h, p);

	return lo < h->ncached && h->cached[lo] == p;
}

/* ---- regions ---- */

static bool reg_free(const struct hs_je_extent *e, unsigned i)
{
	return (e->bitmap[i / 64] >> (i % 64)) & 1;
}

int hs_jemalloc_for_each_region(struct hs_jemalloc_heap *h, unsigned flags,
				hs_je_region_fn cb, void *ud)
{
	for (size_t x = 0; x < h->next; x++) {
		const struct hs_je_extent *e = &h->ext[x];
		unsigned st = eb_state(e->bits), ind = eb_szind(e->bits);
		struct hs_je_region r = { .arena = eb_arena(e->bits), .edata = e->edata };
		int ret;

		if (hs_interrupted)
			return -HS_E_INTERRUPTED;
		if (st != HS_JE_ACTIVE) {
			if (!(flags & HS_JE_REGIONS_FREE_EXTENTS) || st == HS_JE_RETAINED)
				continue;
			r.addr = e->addr;
			r.size = e->size;
			r.szind = HS_JE_NSIZES;
			r.state = HS_JE_REG_FREE;
			ret = cb(ud, &r);
			if (ret)
				return ret;
			continue;
		}
		if (!eb_slab(e->bits)) {
			/* From the pointer the program holds to the extent's end. */
			r.addr = e->uptr >= e->addr && e->uptr - e->addr < PAGE ? e->uptr : e->addr;
			r.size = e->addr + e->size - r.addr;
			r.szind = ind;
			r.large = true;
			r.state = hs_jemalloc_is_cached(h, r.addr) ? HS_JE_REG_TCACHE
								   : HS_JE_REG_INUSE;
			ret = cb(ud, &r);
			if (ret)
				return ret;
			continue;
		}
		{
			uint64_t reg = hs_je_index2size(ind);
			unsigned nregs = (unsigned)(e->size / reg);
			/* Regions come in address order: one cursor into the
			 * sorted cached pointers serves the whole slab. */
			size_t ci = cached_lower(h, e->addr);

			r.size = reg;
			r.szind = ind;
			for (unsigned i = 0; i < nregs; i++) {
				r.addr = e->addr + i * reg;
				while (ci < h->ncached && h->cached[ci] < r.addr)
					ci++;
				if (reg_free(e, i))
					r.state = HS_JE_REG_FREE;
				else if (ci < h->ncached && h->cached[ci] == r.addr)
					r.state = HS_JE_REG_TCACHE;
				else
					r.state = HS_JE_REG_INUSE;
				ret = cb(ud, &r);
				if (ret)
					return ret;
			}
		}
	}
	return 0;
}

static int count_region(void *ud, const struct hs_je_region *r)
{
	struct hs_jemalloc_heap *h = ud;
	struct hs_je_class *c = &h->cls[r->szind < HS_JE_NSIZES ? r->szind : 0];
	uint64_t usable = hs_je_index2size(r->szind);

	if (r->szind >= HS_JE_NSIZES)
		return 0;
	switch (r->state) {
	case HS_JE_REG_INUSE:
		c->in_use++;
		h->in_use.count++;
		h->in_use.bytes += usable;
		if (!c->sample)
			c->sample = r->addr;
		break;
	case HS_JE_REG_TCACHE:
		c->tcache++;
		h->tcache.count++;
		h->tcache.bytes += usable;
		break;
	case HS_JE_REG_FREE:
		c->free++;
		h->free.count++;
		h->free.bytes += usable;
		break;
	}
	return 0;
}

static void count_extents(struct hs_jemalloc_heap *h)
{
	for (size_t x = 0; x < h->next; x++) {
		const struct hs_je_extent *e = &h->ext[x];
		unsigned st = eb_state(e->bits), ind = eb_szind(e->bits);

		h->extents[st].count++;
		h->extents[st].bytes += e->size;
		if (eb_arena(e->bits) + 1 > h->narenas && eb_arena(e->bits) != 0xfff)
			h->narenas = eb_arena(e->bits) + 1;
		if (st != HS_JE_ACTIVE)
			continue;
		if (eb_slab(e->bits) && st == HS_JE_ACTIVE) {
			uint64_t reg = hs_je_index2size(ind);
			unsigned nregs = (unsigned)(e->size / reg), nfree = 0;

			h->slabs.count++;
			h->slabs.bytes += e->size;
			h->cls[ind].slabs++;
			h->cls[ind].nregs = nregs;
			for (unsigned i = 0; i < nregs; i++)
				nfree += reg_free(e, i);
			if (nfree != eb_nfree(e->bits))
				problem(h, e->addr, "slab of %llu-byte regions: bitmap has %u free, "
					"nfree says %u", (unsigned long long)reg, nfree,
					eb_nfree(e->bits));
		} else {
			h->large.count++;
			h->large.bytes += e->size;
		}
	}
}

int hs_jemalloc_open(struct hs_target *t, const struct hs_jemalloc_opts *opts,
		     struct hs_jemalloc_heap **out)
{
	struct hs_jemalloc_heap *h = calloc(1, sizeof(*h));
	uint64_t t0 = now_ns(), t1, t2, bad = 0;
	int ret = -HS_E_NOT_FOUND;

	*out = NULL;
	if (!h)
		return -ENOMEM;
	h->t = t;
	if (opts)
		h->opts = *opts;
	for (unsigned i = 0; i < HS_JE_NSIZES; i++)
		h->cls[i].size = hs_je_index2size(i);
	/* The first candidate (and root offset) whose tree gives extents,
	 * at most one in eight of the entries met bad. */
	for (size_t c = 0; ret && c < h->opts.nrtree && c < HS_JE_MAX_CANDIDATES; c++) {
		for (unsigned off = RT_ROOT_OFF_MIN - 8; off <= RT_ROOT_OFF_MAX; off += 8) {
			unsigned ro = off < RT_ROOT_OFF_MIN ? RT_ROOT_OFF : off;
			int r;

			if (off >= RT_ROOT_OFF_MIN && off == RT_ROOT_OFF)
				continue; /* tried first */
			h->nproblems = 0;
			r = walk_tree(h, h->opts.rtree[c] + ro, &bad);
			if (r == -ESRCH || r == -HS_E_INTERRUPTED || r == -ENOMEM) {
				ret = r;
				goto err;
			}
			if (r == 0 && h->next > 0 && bad * 8 <= h->next) {
				h->rtree = h->opts.rtree[c];
				h->root_off = ro;
				h->rtree_how = h->opts.rtree_how[c] ? h->opts.rtree_how[c]
								    : "candidate";
				ret = 0;
				break;
			}
			hs_log(HS_LOG_DEBUG, "jemalloc: rtree %#llx root +%#x: %zu extents, "
			       "%llu bad", (unsigned long long)h->opts.rtree[c], ro, h->next,
			       (unsigned long long)bad);
		}
	}
	if (ret)
		goto err;
	t1 = now_ns();
	ret = read_tcaches(h);
	if (ret)
		goto err;
	t2 = now_ns();
	count_extents(h);
	ret = hs_jemalloc_for_each_region(h, 0, count_region, h);
	if (ret)
		goto err;
	hs_log(HS_LOG_DEBUG, "jemalloc: tree %.3f s, tcaches %.3f s, count %.3f s",
	       (double)(t1 - t0) / 1e9, (double)(t2 - t1) / 1e9, (double)(now_ns() - t2) / 1e9);
	/* A cached pointer that is in no region of its bin's class. */
	{
		uint64_t tc = 0;

		for (size_t i = 0; i < h->ntcaches; i++)
			tc += h->tcaches[i].cached.count;
		if (tc != h->tcache.count)
			problem(h, 0, "%llu pointers in thread caches, %llu found in slabs "
				"and large extents", (unsigned long long)tc,
				(unsigned long long)h->tcache.count);
	}
	h->walk_ns = now_ns() - t0;
	h->opts.skip = NULL; /* borrowed for the walk only */
	h->opts.nskip = 0;
	*out = h;
	return 0;
err:
	hs_jemalloc_close(h);
	return ret;
}

void hs_jemalloc_close(struct hs_jemalloc_heap *h)
{
	if (!h)
		return;
	free(h->ext);
	free(h->cached);
	free(h->tcaches);
	free(h);
}
