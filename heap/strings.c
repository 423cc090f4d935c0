/*
 * String-frequency analysis: the counting table and the threaded driver.
 * See hs_strings.h for the contract.
 *
 * The table: entries in an array, an open-addressing index of entry
 * numbers (linear probing), key bytes in a block arena.  Its memory is
 * accounted against a budget.  When the next entry does not fit, the table
 * prunes: it drops every entry whose count is at most the median count and
 * remembers that value as U.  A string not in the table then occurred at
 * most U times, so a new entry starts at count U + 1 with err U (Space-
 * Saving's rule, applied to a batch of evictions at once).
 *
 * Merging table T into S (S holds earlier segments):
 *   x in both:   count = cS + cT,  err = eS + eT
 *   only in S:   count = cS + U_T, err = eS + U_T
 *   only in T:   count = cT + U_S, err = eT + U_S
 *   in neither:  at most U_S + U_T, the new U.
 * With U_S = U_T = 0 this is an exact sum.
 */
#include "hs_heap.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* ---- hashing ---- */

static inline uint64_t rotl64(uint64_t x, int r)
{
	return (x << r) | (x >> (64 - r));
}

static inline uint64_t fmix(uint64_t x)
{
	x ^= x >> 32;
	x *= 0xd6e8feb86659fd93ull;
	x ^= x >> 32;
	x *= 0xd6e8feb86659fd93ull;
	x ^= x >> 32;
	return x;
}

/* Hash of (key bytes, real length): the identity of a string. */
static uint64_t str_hash(const char *s, size_t n, uint64_t len)
{
	uint64_t h = 0x9e3779b97f4a7c15ull ^ (len * 0xff51afd7ed558ccdull);
	uint64_t w;

	while (n >= 8) {
		memcpy(&w, s, 8);
		h = rotl64(h ^ (w * 0x87c37b91114253d5ull), 31) * 0x4cf5ad432745937full;
		s += 8;
		n -= 8;
	}
	w = 0;
	memcpy(&w, s, n);
	h = rotl64(h ^ (w * 0x87c37b91114253d5ull), 31) * 0x4cf5ad432745937full;
	return fmix(h ^ n);
}

/* ---- HyperLogLog for the number of distinct strings once estimated ---- */

#define HLL_P 12
#define HLL_M (1u << HLL_P)

static void hll_add(uint8_t *reg, uint64_t h)
{
	uint32_t idx = (uint32_t)(h >> (64 - HLL_P));
	uint64_t rest = (h << HLL_P) | (1ull << (HLL_P - 1));
	uint8_t rank = (uint8_t)(__builtin_clzll(rest) + 1);

	if (reg[idx] < rank)
		reg[idx] = rank;
}

static uint64_t hll_estimate(const uint8_t *reg)
{
	double sum = 0, m = HLL_M, e;
	unsigned zeros = 0;

	for (unsigned i = 0; i < HLL_M; i++) {
		sum += ldexp(1.0, -reg[i]);
		zeros += reg[i] == 0;
	}
	e = 0.7213 / (1 + 1.079 / m) * m * m / sum;
	if (e <= 2.5 * m && zeros)
		e = m * log(m / zeros);
	return (uint64_t)(e + 0.5);
}

/* ---- the table ---- */

struct ent {
	uint64_t hash;
	uint64_t count;   /* upper bound */
	uint64_t err;     /* count - err is a lower bound */
	uint64_t bytes;
	uint64_t len;     /* real length in characters */
	const char *key;  /* in the arena */
	uint32_t klen;
	uint32_t xcls;    /* 1 + row in xc, or 0: every sighting in cls */
	uint8_t cls;
	uint8_t touched;  /* merge bookkeeping */
	uint8_t nsamp;
	hs_addr_t samp[HS_STR_SAMPLES];
};

typedef uint64_t cls_row[HS_CLASS_N];

struct arena {
	char **blocks;
	size_t nblocks, alloc;
	char *cur;
	size_t left;
	uint64_t total;
};

#define ARENA_BLOCK (64u << 10)

struct tab {
	struct ent *e;
	size_t n, cap;
	uint32_t *slots;  /* entry number + 1, 0: empty */
	size_t nslots;
	struct arena ar;
	cls_row *xc;
	size_t nxc, xcap;
	uint64_t budget;
	uint64_t U;
	unsigned unit;    /* bytes per character */
	uint64_t occurrences, string_bytes;
	uint64_t mem_peak;
	uint8_t hll[HLL_M];
};

/* Per entry: the entry, two index slots, one word of prune scratch. */
#define ENT_COST (sizeof(struct ent) + 2 * sizeof(uint32_t) + sizeof(uint64_t))

static void arena_release(struct arena *a)
{
	for (size_t i = 0; i < a->nblocks; i++)
		free(a->blocks[i]);
	free(a->blocks);
	memset(a, 0, sizeof(*a));
}

static const char *arena_put(struct arena *a, const char *s, size_t n)
{
	char *p;

	if (n > a->left) {
		size_t sz = n > ARENA_BLOCK ? n : ARENA_BLOCK;

		HS_ALLOC_GROW(a->blocks, a->nblocks + 1, a->alloc);
		a->cur = a->blocks[a->nblocks++] = hs_xmalloc(sz);
		a->left = sz;
		a->total += sz;
	}
	p = a->cur;
	memcpy(p, s, n);
	a->cur += n;
	a->left -= n;
	return p;
}

static uint64_t tab_mem(const struct tab *t)
{
	return t->cap * ENT_COST + t->ar.total + t->xcap * sizeof(cls_row) +
	       (uint64_t)t->ar.alloc * sizeof(char *);
}

static void tab_note_mem(struct tab *t)
{
	uint64_t m = tab_mem(t);

	if (m > t->mem_peak)
		t->mem_peak = m;
}

static void tab_init(struct tab *t, uint64_t budget, unsigned unit)
{
	memset(t, 0, sizeof(*t));
	t->budget = budget;
	t->unit = unit;
}

static void tab_release(struct tab *t)
{
	free(t->e);
	free(t->slots);
	free(t->xc);
	arena_release(&t->ar);
	memset(t, 0, sizeof(*t));
}

static inline size_t slot_of(const struct tab *t, uint64_t h)
{
	/* Multiply-shift range reduction: any table size works. */
	return (size_t)(((h >> 32) * (uint64_t)t->nslots) >> 32);
}

static void index_rebuild(struct tab *t)
{
	memset(t->slots, 0, t->nslots * sizeof(*t->slots));
	for (size_t i = 0; i < t->n; i++) {
		size_t s = slot_of(t, t->e[i].hash);

		while (t->slots[s])
			if (++s == t->nslots)
				s = 0;
		t->slots[s] = (uint32_t)(i + 1);
	}
}

/* The entry for the key, or NULL; *slot is where it would go. */
static struct ent *tab_find(const struct tab *t, uint64_t h, const char *s,
			    uint32_t klen, uint64_t len, size_t *slot)
{
	size_t i;

	if (!t->nslots) {
		*slot = 0;
		return NULL;
	}
	i = slot_of(t, h);
	for (;;) {
		uint32_t v = t->slots[i];
		struct ent *e;

		if (!v) {
			*slot = i;
			return NULL;
		}
		e = &t->e[v - 1];
		if (e->hash == h && e->klen == klen && e->len == len &&
		    !memcmp(e->key, s, klen))
			return e;
		if (++i == t->nslots)
			i = 0;
	}
}

static void tab_grow(struct tab *t, size_t cap)
{
	t->e = hs_xrealloc(t->e, cap * sizeof(*t->e));
	t->cap = cap;
	free(t->slots);
	t->nslots = 2 * cap;
	t->slots = hs_xmalloc(t->nslots * sizeof(*t->slots));
	index_rebuild(t);
	tab_note_mem(t);
}

/* Quickselect: the k-th smallest of v[0..n) (k < n); reorders v. */
static uint64_t select_kth(uint64_t *v, size_t n, size_t k)
{
	size_t lo = 0, hi = n - 1;

	while (hi > lo) {
		uint64_t a = v[lo], b = v[lo + (hi - lo) / 2], c = v[hi], tmp;
		uint64_t p = a < b ? (b < c ? b : (a < c ? c : a))
				   : (a < c ? a : (b < c ? c : b));
		/* Three-way partition: [lo,lt) < p, [lt,gt] == p, (gt,hi] > p. */
		size_t lt = lo, i = lo, gt = hi;

		while (i <= gt) {
			if (v[i] < p) {
				tmp = v[lt]; v[lt] = v[i]; v[i] = tmp;
				lt++;
				i++;
			} else if (v[i] > p) {
				tmp = v[gt]; v[gt] = v[i]; v[i] = tmp;
				gt--; /* gt >= i > lt - 1 >= 0 here: no wrap */
			} else {
				i++;
			}
		}
		if (k < lt)
			hi = lt - 1;
		else if (k > gt)
			lo = gt + 1;
		else
			return p;
	}
	return v[k];
}

/*
 * Drops every entry whose count is at most the median count, compacting
 * entries (in order), keys and class rows.  U becomes at least that count.
 */
static void tab_prune(struct tab *t)
{
	uint64_t *scratch, thr;
	struct arena na = { 0 };
	cls_row *nxc = NULL;
	size_t nnxc = 0, xcap = 0, j = 0;

	if (!t->n)
		return;
	scratch = hs_xmalloc(t->n * sizeof(*scratch));
	for (size_t i = 0; i < t->n; i++)
		scratch[i] = t->e[i].count;
	thr = select_kth(scratch, t->n, (t->n - 1) / 2);
	free(scratch);

	for (size_t i = 0; i < t->n; i++) {
		struct ent e = t->e[i];

		if (e.count <= thr)
			continue;
		e.key = arena_put(&na, e.key, e.klen);
		if (e.xcls) {
			HS_ALLOC_GROW(nxc, nnxc + 1, xcap);
			memcpy(nxc[nnxc++], t->xc[e.xcls - 1], sizeof(cls_row));
			e.xcls = (uint32_t)nnxc;
		}
		t->e[j++] = e;
	}
	arena_release(&t->ar);
	t->ar = na;
	free(t->xc);
	t->xc = nxc;
	t->nxc = nnxc;
	t->xcap = xcap;
	t->n = j;
	if (thr > t->U)
		t->U = thr;
	index_rebuild(t);
	hs_log(HS_LOG_DEBUG, "strings: table pruned to %zu entries, bound %llu",
	       t->n, (unsigned long long)t->U);
}

/* Makes room for one more entry with a key of klen bytes. */
static void tab_make_room(struct tab *t, size_t klen)
{
	if (t->n == t->cap) {
		uint64_t avg_key = t->n ? t->ar.total / t->n + 1 : 32;
		uint64_t fixed = t->xcap * sizeof(cls_row);
		uint64_t per = ENT_COST + avg_key;
		uint64_t fit = t->budget > fixed ? (t->budget - fixed) / per : 0;
		size_t want = t->cap ? t->cap * 2 : 1024;

		if (want > fit)
			want = (size_t)fit;
		if (want >= t->cap + t->cap / 8 + 64)
			tab_grow(t, want);
		else
			tab_prune(t);
	}
	if (t->n == t->cap)	/* nothing to prune: budget below one block */
		tab_grow(t, t->cap + 64);
	if (klen > t->ar.left && tab_mem(t) + ARENA_BLOCK > t->budget && t->n)
		tab_prune(t);
}

static void samples_merge(struct ent *dst, const struct ent *src)
{
	hs_addr_t out[HS_STR_SAMPLES];
	unsigned i = 0, j = 0, k = 0;

	while (k < HS_STR_SAMPLES && (i < dst->nsamp || j < src->nsamp)) {
		if (j >= src->nsamp || (i < dst->nsamp && dst->samp[i] <= src->samp[j]))
			out[k++] = dst->samp[i++];
		else
			out[k++] = src->samp[j++];
	}
	memcpy(dst->samp, out, k * sizeof(out[0]));
	dst->nsamp = (uint8_t)k;
}

/* Occurrences seen per class, as a full row. */
static void ent_row(const struct tab *t, const struct ent *e, cls_row row)
{
	if (e->xcls) {
		memcpy(row, t->xc[e->xcls - 1], sizeof(cls_row));
	} else {
		memset(row, 0, sizeof(cls_row));
		row[e->cls] = e->count - e->err;
	}
}

/* Adds per-class sightings (add[]) to e, before e's count is updated. */
static void ent_add_classes(struct tab *t, struct ent *e, const cls_row add)
{
	bool other = false;

	for (unsigned c = 0; c < HS_CLASS_N; c++)
		if (add[c] && c != e->cls)
			other = true;
	if (!e->xcls && !other)
		return;
	if (!e->xcls) {
		HS_ALLOC_GROW(t->xc, t->nxc + 1, t->xcap);
		memset(t->xc[t->nxc], 0, sizeof(cls_row));
		t->xc[t->nxc][e->cls] = e->count - e->err;
		e->xcls = (uint32_t)++t->nxc;
		tab_note_mem(t);
	}
	for (unsigned c = 0; c < HS_CLASS_N; c++)
		t->xc[e->xcls - 1][c] += add[c];
}

static struct ent *tab_insert(struct tab *t, uint64_t h, const char *s,
			      uint32_t klen, uint64_t len, unsigned cls)
{
	size_t slot;
	struct ent *e;

	tab_make_room(t, klen);
	/* The index may have been rebuilt: look for the free slot again. */
	e = tab_find(t, h, s, klen, len, &slot);
	if (e)
		return e;
	e = &t->e[t->n++];
	memset(e, 0, sizeof(*e));
	e->hash = h;
	e->key = arena_put(&t->ar, s, klen);
	e->klen = klen;
	e->len = len;
	e->cls = (uint8_t)cls;
	t->slots[slot] = (uint32_t)t->n;
	tab_note_mem(t);
	return e;
}

/* One sighting of a string at addr in class cls. */
static void tab_add(struct tab *t, const char *s, size_t stored, uint64_t len,
		    hs_addr_t addr, unsigned cls)
{
	uint64_t h = str_hash(s, stored, len);
	uint32_t klen = (uint32_t)stored;
	size_t slot;
	struct ent *e;

	t->occurrences++;
	t->string_bytes += len * t->unit;
	hll_add(t->hll, h);
	e = tab_find(t, h, s, klen, len, &slot);
	if (!e) {
		e = tab_insert(t, h, s, klen, len, cls);
		e->count = e->err = t->U;
		e->bytes = t->U * len * t->unit;
	} else if (e->cls != cls || e->xcls) {
		cls_row add = { 0 };

		add[cls] = 1;
		ent_add_classes(t, e, add);
	}
	e->count++;
	e->bytes += len * t->unit;
	if (e->nsamp < HS_STR_SAMPLES)
		e->samp[e->nsamp++] = addr;
}

/* Merges src (a later segment) into dst; see the top of the file. */
static void tab_merge(struct tab *dst, const struct tab *src)
{
	for (size_t i = 0; i < src->n; i++) {
		const struct ent *x = &src->e[i];
		cls_row row;
		uint64_t us;
		size_t slot;
		struct ent *e = tab_find(dst, x->hash, x->key, x->klen, x->len, &slot);

		ent_row(src, x, row);
		if (!e) {
			e = tab_insert(dst, x->hash, x->key, x->klen, x->len, x->cls);
			us = dst->U; /* after any prune the insert made */
			e->count = e->err = us;
			e->bytes = us * x->len * dst->unit;
		}
		ent_add_classes(dst, e, row);
		e->count += x->count;
		e->err += x->err;
		e->bytes += x->bytes;
		samples_merge(e, x);
		e->touched = 1;
	}
	for (size_t i = 0; i < dst->n; i++) {
		struct ent *e = &dst->e[i];

		if (!e->touched && src->U) {
			e->count += src->U;
			e->err += src->U;
			e->bytes += src->U * e->len * dst->unit;
		}
		e->touched = 0;
	}
	dst->U += src->U;
	dst->occurrences += src->occurrences;
	dst->string_bytes += src->string_bytes;
	for (unsigned i = 0; i < HLL_M; i++)
		if (dst->hll[i] < src->hll[i])
			dst->hll[i] = src->hll[i];
}

/* ---- options ---- */

void hs_str_opts_init(struct hs_str_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->enc = HS_STR_ASCII;
	o->min_len = HS_STR_MIN_LEN_DEFAULT;
	o->max_len = HS_STR_MAX_LEN_DEFAULT;
	o->max_mem = HS_STR_MAX_MEM_DEFAULT;
	o->chunk = HS_STR_CHUNK_DEFAULT;
	o->jobs = 2;
	o->top = HS_STR_TOP_DEFAULT;
	o->by = HS_STR_BY_COUNT;
}

/* ---- the driver ---- */

struct seg {
	hs_addr_t start, end;
	size_t range;
};

struct run {
	struct hs_target *t;
	const struct hs_str_ranges *r;
	const struct hs_str_opts *o;
	unsigned unit;
	struct seg *segs;
	size_t nsegs;
	size_t next_seg;          /* atomic */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	size_t turn;              /* next segment to merge */
	int err;
	int abort;                /* atomic */
	struct tab global;
	uint64_t seg_budget;
	uint64_t done, total;
	/* sums over workers, under mu */
	uint64_t scanned, unreadable, class_bytes[HS_CLASS_N], worker_peak;
};

struct worker {
	struct run *run;
	struct tab tab;
	struct hs_str_scanner sc;
	unsigned char *buf;
	unsigned cls;
	bool tail;                /* following a run past the segment's end */
	uint64_t scanned, unreadable, class_bytes[HS_CLASS_N];
	pthread_t th;
	int ret;
};

#define STOP_TAIL 1           /* chunk callback: the tail run has ended */
#define STOP_ABORT 2          /* chunk callback: another worker failed */

static void on_run(void *ud, hs_addr_t addr, const char *s, size_t stored,
		   uint64_t len)
{
	struct worker *w = ud;

	tab_add(&w->tab, s, stored, len, addr, w->cls);
}

static bool unit_printable(const struct run *run, const unsigned char *b)
{
	bool p = (b[0] >= 0x20 && b[0] < 0x7f) || b[0] == '\t';

	return run->unit == 2 ? p && b[1] == 0 : p;
}

static int on_chunk(void *ud, hs_addr_t addr, const void *data, size_t len)
{
	struct worker *w = ud;
	const struct run *run = w->run;
	const unsigned char *p = data;
	size_t n = 0;

	if (__atomic_load_n(&run->abort, __ATOMIC_RELAXED))
		return STOP_ABORT;
	if (!w->tail) {
		hs_str_scan(&w->sc, addr, data, len);
		w->scanned += len;
		w->class_bytes[w->cls] += len;
		return 0;
	}
	/* Past the segment's end, feed only the run's remaining characters:
	 * whatever follows belongs to the next segment. */
	if (!w->sc.have_next || addr != w->sc.next)
		return STOP_TAIL;
	while (n + run->unit <= len && unit_printable(run, p + n))
		n += run->unit;
	hs_str_scan(&w->sc, addr, data, n);
	return n < len ? STOP_TAIL : 0;
}

/* Streams [a, end) in pieces that break at multiples of gran. */
static int stream_aligned(struct worker *w, hs_addr_t a, hs_addr_t end,
			  size_t gran)
{
	while (a < end) {
		hs_addr_t b = (a | (gran - 1)) + 1;
		int ret;

		if (b > end || b < a)
			b = end;
		ret = hs_target_stream(w->run->t, a, b, w->buf, gran, on_chunk, w,
				       &w->unreadable);
		if (ret)
			return ret;
		a = b;
	}
	return 0;
}

static int scan_segment(struct worker *w, const struct seg *sg)
{
	struct run *run = w->run;
	const struct hs_str_range *rg = &run->r->v[sg->range];
	int ret;

	hs_str_scan_end(&w->sc);
	w->cls = rg->cls;
	w->tail = false;
	if (sg->start > rg->start) {
		/* A run that starts before the segment belongs to the previous
		 * one, which follows it to its end: skip its characters. */
		unsigned char b[2];

		if (hs_target_read_full(run->t, sg->start - run->unit, b, run->unit) == 0 &&
		    unit_printable(run, b))
			w->sc.skip = true;
	}
	ret = stream_aligned(w, sg->start, sg->end, run->o->chunk);
	if (ret == 0 && hs_str_scan_in_run(&w->sc) && sg->end < rg->end) {
		w->tail = true;
		ret = stream_aligned(w, sg->end, rg->end, 4096);
		if (ret == STOP_TAIL)
			ret = 0;
	}
	hs_str_scan_end(&w->sc);
	if (ret == STOP_ABORT || ret == STOP_TAIL)
		ret = 0;
	return ret;
}

static void fail(struct run *run, int err)
{
	pthread_mutex_lock(&run->mu);
	if (!run->err)
		run->err = err;
	__atomic_store_n(&run->abort, 1, __ATOMIC_RELAXED);
	pthread_cond_broadcast(&run->cv);
	pthread_mutex_unlock(&run->mu);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct run *run = w->run;

	for (;;) {
		size_t i = __atomic_fetch_add(&run->next_seg, 1, __ATOMIC_RELAXED);
		int ret;

		if (i >= run->nsegs || __atomic_load_n(&run->abort, __ATOMIC_RELAXED))
			break;
		tab_init(&w->tab, run->seg_budget, run->unit);
		ret = scan_segment(w, &run->segs[i]);
		if (ret == 0 && hs_interrupted)
			ret = -HS_E_INTERRUPTED;
		if (ret) {
			tab_release(&w->tab);
			w->ret = ret;
			fail(run, ret);
			break;
		}
		pthread_mutex_lock(&run->mu);
		while (!run->abort && run->turn != i)
			pthread_cond_wait(&run->cv, &run->mu);
		if (run->abort) {
			pthread_mutex_unlock(&run->mu);
			tab_release(&w->tab);
			break;
		}
		tab_merge(&run->global, &w->tab);
		if (w->tab.mem_peak > run->worker_peak)
			run->worker_peak = w->tab.mem_peak;
		run->turn++;
		run->done += run->segs[i].end - run->segs[i].start;
		if (run->o->progress)
			run->o->progress(run->o->progress_ud, run->done, run->total);
		pthread_cond_broadcast(&run->cv);
		pthread_mutex_unlock(&run->mu);
		tab_release(&w->tab);
	}
	return NULL;
}

static int check_opts(const struct hs_str_opts *o)
{
	if (o->min_len < 1 || o->max_len < o->min_len ||
	    o->max_len > HS_STR_MAX_LEN_LIMIT)
		return -EINVAL;
	if (o->chunk < 4096 || (o->chunk & (o->chunk - 1)) ||
	    o->chunk > (1u << 30))
		return -EINVAL;
	if (o->jobs < 1 || o->jobs > HS_STR_JOBS_MAX)
		return -EINVAL;
	if (o->enc != HS_STR_ASCII && o->enc != HS_STR_UTF16LE)
		return -EINVAL;
	if (o->by != HS_STR_BY_COUNT && o->by != HS_STR_BY_BYTES)
		return -EINVAL;
	return 0;
}

/* Ranking: true if a goes before b. */
static bool ranks_before(const struct ent *a, const struct ent *b,
			 enum hs_str_rank by)
{
	uint64_t a1 = by == HS_STR_BY_BYTES ? a->bytes : a->count;
	uint64_t b1 = by == HS_STR_BY_BYTES ? b->bytes : b->count;
	uint64_t a2 = by == HS_STR_BY_BYTES ? a->count : a->bytes;
	uint64_t b2 = by == HS_STR_BY_BYTES ? b->count : b->bytes;
	uint32_t m = a->klen < b->klen ? a->klen : b->klen;
	int c;

	if (a1 != b1)
		return a1 > b1;
	if (a2 != b2)
		return a2 > b2;
	c = memcmp(a->key, b->key, m);
	if (c)
		return c < 0;
	if (a->klen != b->klen)
		return a->klen < b->klen;
	return a->len < b->len;
}

/* A heap of the best k entries seen, worst at the root. */
static void top_push(const struct ent **h, size_t *n, size_t k,
		     const struct ent *e, enum hs_str_rank by)
{
	size_t i;

	if (*n < k) {
		i = (*n)++;
		while (i && ranks_before(h[(i - 1) / 2], e, by)) {
			h[i] = h[(i - 1) / 2];
			i = (i - 1) / 2;
		}
		h[i] = e;
		return;
	}
	if (!ranks_before(e, h[0], by))
		return;
	i = 0;
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, w = i;
		const struct ent *we = e;

		if (l < *n && ranks_before(we, h[l], by)) {
			w = l;
			we = h[l];
		}
		if (r < *n && ranks_before(we, h[r], by))
			w = r;
		if (w == i)
			break;
		h[i] = h[w];
		i = w;
	}
	h[i] = e;
}

static int cmp_rank(const void *a, const void *b, void *by)
{
	const struct ent *x = *(const struct ent *const *)a;
	const struct ent *y = *(const struct ent *const *)b;

	if (x == y)
		return 0;
	return ranks_before(x, y, *(enum hs_str_rank *)by) ? -1 : 1;
}

static void build_result(struct run *run, struct hs_str_result *res)
{
	const struct tab *g = &run->global;
	size_t k = run->o->top, n = 0;
	const struct ent **h;

	res->exact = g->U == 0;
	res->err_bound = g->U;
	res->distinct_exact = res->exact;
	res->distinct = res->exact ? g->n : hll_estimate(g->hll);
	res->occurrences = g->occurrences;
	res->string_bytes = g->string_bytes;
	if (!k)
		return;
	h = hs_xmalloc(k * sizeof(*h));
	for (size_t i = 0; i < g->n; i++)
		top_push(h, &n, k, &g->e[i], run->o->by);
	qsort_r(h, n, sizeof(*h), cmp_rank, (void *)&run->o->by);
	res->top = hs_xcalloc(n ? n : 1, sizeof(*res->top));
	res->ntop = n;
	for (size_t i = 0; i < n; i++) {
		const struct ent *e = h[i];
		struct hs_str_item *it = &res->top[i];

		it->s = hs_xstrndup(e->key, e->klen);
		it->stored = e->klen;
		it->len = e->len;
		it->truncated = e->len > e->klen;
		it->count = e->count;
		it->err = e->err;
		it->bytes = e->bytes;
		ent_row(g, e, it->cls_count);
		memcpy(it->samples, e->samp, e->nsamp * sizeof(e->samp[0]));
		it->nsamples = e->nsamp;
	}
	free(h);
}

int hs_strings_scan(struct hs_target *t, const struct hs_str_ranges *r,
		    const struct hs_str_opts *o, struct hs_str_result *res)
{
	struct hs_str_opts defaults;
	struct run run;
	struct worker *w = NULL;
	uint64_t t0 = hs_now_ns(), seg_size, half, jobs_eff;
	size_t segs_alloc = 0;
	unsigned started = 0;
	int ret;

	memset(res, 0, sizeof(*res));
	if (!o) {
		hs_str_opts_init(&defaults);
		o = &defaults;
	}
	ret = check_opts(o);
	if (ret)
		return ret;
	for (size_t i = 0; i < r->n; i++) {
		if (r->v[i].start >= r->v[i].end || (unsigned)r->v[i].cls >= HS_CLASS_N)
			return -EINVAL;
		if (i && r->v[i].start < r->v[i - 1].end)
			return -EINVAL;
	}
	/* Budget: half for the merged table, the other half shared by the
	 * workers' tables, at least two shares so --jobs 1 and 2 agree. */
	jobs_eff = o->jobs < 2 ? 2 : o->jobs;
	half = o->max_mem / 2;
	if (half / jobs_eff < o->chunk + o->max_len + (256u << 10))
		return -EINVAL;

	memset(&run, 0, sizeof(run));
	run.t = t;
	run.r = r;
	run.o = o;
	run.unit = o->enc == HS_STR_UTF16LE ? 2 : 1;
	run.seg_budget = half / jobs_eff - o->chunk - o->max_len;
	tab_init(&run.global, half, run.unit);
	pthread_mutex_init(&run.mu, NULL);
	pthread_cond_init(&run.cv, NULL);

	/* Segments break at multiples of seg_size, whatever the jobs. */
	seg_size = (uint64_t)o->chunk * HS_STR_SEG_CHUNKS;
	for (size_t i = 0; i < r->n; i++) {
		hs_addr_t a = r->v[i].start;

		while (a < r->v[i].end) {
			hs_addr_t b = (a | (seg_size - 1)) + 1;

			if (b > r->v[i].end || b < a)
				b = r->v[i].end;
			HS_ALLOC_GROW(run.segs, run.nsegs + 1, segs_alloc);
			run.segs[run.nsegs++] = (struct seg){ a, b, i };
			run.total += b - a;
			a = b;
		}
	}

	w = hs_xcalloc(o->jobs, sizeof(*w));
	for (unsigned i = 0; i < o->jobs; i++) {
		w[i].run = &run;
		w[i].buf = hs_xmalloc(o->chunk);
		hs_str_scanner_init(&w[i].sc, o->enc, o->min_len, o->max_len, on_run,
				    &w[i]);
	}
	for (unsigned i = 1; i < o->jobs; i++) {
		int e = pthread_create(&w[i].th, NULL, worker_main, &w[i]);

		if (e) {
			hs_log(HS_LOG_WARN, "strings: cannot start a thread: %s",
			       strerror(e));
			break;
		}
		started++;
	}
	worker_main(&w[0]);
	for (unsigned i = 1; i <= started; i++)
		pthread_join(w[i].th, NULL);

	ret = run.err;
	res->opts = *o;
	res->opts.progress = NULL;
	res->opts.progress_ud = NULL;
	res->jobs = started + 1;
	res->nsegments = (unsigned)run.nsegs;
	res->nranges = r->n;
	for (unsigned i = 0; i < o->jobs; i++) {
		res->bytes_scanned += w[i].scanned;
		res->unreadable += w[i].unreadable;
		for (unsigned c = 0; c < HS_CLASS_N; c++)
			res->class_bytes[c] += w[i].class_bytes[c];
		hs_str_scanner_release(&w[i].sc);
		free(w[i].buf);
	}
	res->mem_peak = run.global.mem_peak + (uint64_t)o->jobs *
			(run.worker_peak + o->chunk + o->max_len);
	if (!ret)
		build_result(&run, res);
	free(w);
	free(run.segs);
	tab_release(&run.global);
	pthread_mutex_destroy(&run.mu);
	pthread_cond_destroy(&run.cv);
	res->scan_ns = hs_now_ns() - t0;
	if (ret) {
		hs_str_result_release(res);
		return ret;
	}
	return 0;
}

void hs_str_result_release(struct hs_str_result *res)
{
	for (size_t i = 0; i < res->ntop; i++)
		free(res->top[i].s);
	free(res->top);
	res->top = NULL;
	res->ntop = 0;
}
