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
#include <sys/mman.h>

/* ---- big arrays ---- */

#define HUGE_PAGE (2u << 20)

/*
 * A whole mapping of n bytes offered to huge pages (only its 2 MiB-aligned
 * parts can have them).  The whole of it: advising a part would split the
 * mapping, and mremap cannot move a range that spans two.
 */
static void hint_huge(void *p, size_t n)
{
#ifdef MADV_HUGEPAGE
	if (n >= HUGE_PAGE)
		(void)madvise(p, n, MADV_HUGEPAGE);
#else
	(void)p;
	(void)n;
#endif
}

/*
 * The table's two big arrays (entries, index) are mappings of their own.
 * Growing the entries is an mremap: no copy, and the old pages are not
 * touched again (realloc copies whatever malloc's dynamic mmap threshold
 * kept in the heap: most of the page faults, before).  A fresh index
 * comes zeroed from the kernel, so it is not cleared again.  Arrays read
 * at random miss the TLB on nearly every cold lookup with 4 KiB pages:
 * their 2 MiB-aligned parts are offered to transparent huge pages (a hint;
 * refused or absent, nothing changes).  Sizes are rounded to pages.
 */
static size_t map_size(size_t n)
{
	return (n + 4095) & ~(size_t)4095;
}

static void *map_fail(size_t n)
{
	hs_log(HS_LOG_ERROR, "strings: out of memory mapping %zu bytes", n);
	abort();
}

static void *map_new(size_t n)
{
	void *p = mmap(NULL, map_size(n), PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return map_fail(n);
	hint_huge(p, map_size(n));
	return p;
}

/* p (old bytes, NULL: none) resized to n bytes; contents kept. */
static void *map_resize(void *p, size_t old, size_t n)
{
	void *q;

	if (!p)
		return map_new(n);
	if (map_size(old) == map_size(n))
		return p;
	q = mremap(p, map_size(old), map_size(n), MREMAP_MAYMOVE);
	if (q == MAP_FAILED)
		return map_fail(n);
	hint_huge(q, map_size(n));
	return q;
}

static void map_free(void *p, size_t n)
{
	if (p)
		(void)munmap(p, map_size(n));
}

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

/*
 * Hash of (key bytes, real length): the identity of a string.  One
 * multiply per 8-byte word (its high bits depend on every input bit below
 * them), then a finalizer that brings them down: the index uses the high
 * 32 bits, HyperLogLog all 64.
 */
static inline uint64_t str_hash(const char *s, size_t n, uint64_t len)
{
	uint64_t h = 0x9e3779b97f4a7c15ull ^ (len * 0xff51afd7ed558ccdull);
	bool words = n >= 8;
	uint64_t w;
	uint32_t lo, hi;

	while (n >= 8) {
		memcpy(&w, s, 8);
		h = rotl64((h ^ w) * 0x87c37b91114253d5ull, 29);
		s += 8;
		n -= 8;
	}
	if (!n)
		return fmix(h);
	/* The last n < 8 bytes as a zero-extended word, without a byte-wise
	 * copy (its store-to-load stall cost more than the rest). */
	if (words) {
		memcpy(&w, s + n - 8, 8);	/* overlaps the last whole word */
		w >>= 8 * (8 - n);
	} else if (n >= 4) {
		memcpy(&lo, s, 4);
		memcpy(&hi, s + n - 4, 4);
		w = (uint64_t)lo | (uint64_t)hi << (8 * (n - 4));
	} else {
		w = (uint64_t)(unsigned char)s[0] |
		    (uint64_t)(unsigned char)s[n / 2] << (8 * (n / 2)) |
		    (uint64_t)(unsigned char)s[n - 1] << (8 * (n - 1));
	}
	h = rotl64((h ^ w) * 0x87c37b91114253d5ull, 29);
	return fmix(h);
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

/*
 * A place is (region class, location); each entry counts its sightings
 * per place, in one field while they all share a place.
 */
#define PLACES (HS_CLASS_N * HS_STR_LOC_N)
#define KEY_INLINE 8 /* keys of at most 8 bytes live in the entry */

/*
 * 40 bytes: the table's memory is mostly these and two index slots.  Most
 * strings are seen once; what only repeated ones need lives in a row of
 * xs (the further samples, and the per-place counts when the sightings
 * are in more than one place), and the error of an estimate in the
 * parallel array errv, which only a pruned table has.
 */
struct ent {
	uint32_t hash;    /* the hash's high 32 bits: all the index uses */
	uint32_t ext;     /* 1 + row in xs, or 0 */
	uint64_t count;   /* upper bound; count - err is a lower bound */
	uint64_t len : 48;   /* real length in characters (< 2^47: user space) */
	uint64_t place : 8;  /* every sighting's place unless a place row */
	uint64_t nsamp : 2;
	uint64_t touched : 1; /* merge bookkeeping */
	union {
		char in[KEY_INLINE]; /* zero-padded */
		const char *p;       /* in the arena */
	} key;
	hs_addr_t samp0;  /* lowest address seen */
};

_Static_assert(sizeof(struct ent) == 40, "struct ent grew");

typedef uint64_t place_row[PLACES];

struct ext {
	hs_addr_t samp[HS_STR_SAMPLES - 1]; /* samples 2.., lowest first */
	uint32_t xc;      /* 1 + row in xc (count per place), or 0 */
};

/*
 * The hot cache: a direct-mapped map from (first key word, length) to an
 * entry, consulted before hashing.  A leak repeats a few strings millions
 * of times; for them a sighting costs a compare of the key against the
 * slot's copy of the key pointer and one increment in the slot, instead
 * of a hash, an index probe and the entry's fields.  The slot keeps the
 * sightings it took (pend) until hot_flush() adds them to its entry: all
 * in one place, none of them a new sample (above smax, the highest sample
 * kept once all are taken; smax may be stale-high, which only sends more
 * sightings the slow way).  Flushed before anything reads the counts:
 * when the slot changes hands, at a prune and at the end of each segment.
 * Filled with entries seen at least twice (so distinct strings do not
 * evict the repeated ones), emptied when a prune moves entries.
 */
#define HOT 256

struct hot {
	uint64_t w0;      /* key_word() of the key */
	uint64_t len;
	const char *key;  /* the entry's key bytes */
	hs_addr_t smax;   /* a sighting above it is not a sample */
	uint64_t pend;    /* sightings not yet in the entry */
	uint32_t ent;     /* 1 + entry number, 0: empty */
	uint32_t place;   /* where the pending sightings are */
};

struct arena {
	char **blocks;
	size_t nblocks, alloc;
	char *cur;
	size_t left;
	uint64_t total;
};

#define ARENA_BLOCK (64u << 10)

/* Memory shared by the exact pass's tables: none may take more than the
 * others leave, however the segments fell to the workers. */
struct pool {
	uint64_t limit;
	uint64_t used;    /* atomic: the tables' tab_mem as last reported */
};

struct tab {
	struct pool *pool; /* NULL: budget is fixed */
	uint64_t pooled;  /* tab_mem last added to pool->used */
	unsigned since_sync; /* inserts since */
	struct ent *e;
	size_t n, cap;
	uint32_t *slots;  /* entry number + 1, 0: empty */
	size_t nslots;
	struct arena ar;
	place_row *xc;
	size_t nxc, xcap;
	struct ext *xs;
	size_t nxs, xscap;
	uint64_t *errv;   /* err per entry (cap of them), or NULL: all 0 */
	uint64_t budget;
	uint64_t U;
	unsigned unit;    /* bytes per character */
	unsigned max_len; /* key bytes kept */
	bool no_prune;    /* exact pass: overflow instead of pruning */
	bool overflow;    /* set instead of pruning; the table is then stale */
	uint64_t occurrences, string_bytes;
	uint64_t mem_peak;
	uint8_t hll[HLL_M];
	struct hot hot[HOT];
};

/* Per entry: the entry and two index slots, and in a table that may
 * prune its err and one word of prune scratch. */
#define ENT_COST (sizeof(struct ent) + 2 * sizeof(uint32_t))
#define ent_cost(t) (ENT_COST + ((t)->no_prune ? 0 : 2 * sizeof(uint64_t)))

static inline uint32_t klen_of(const struct tab *t, uint64_t len)
{
	return (uint32_t)(len < t->max_len ? len : t->max_len);
}

static inline const char *ent_key(const struct ent *e, uint32_t klen)
{
	return klen <= KEY_INLINE ? e->key.in : e->key.p;
}

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

static void key_set(struct arena *a, struct ent *e, const char *s, uint32_t klen)
{
	if (klen <= KEY_INLINE) {
		memset(e->key.in, 0, KEY_INLINE);
		memcpy(e->key.in, s, klen);
	} else {
		e->key.p = arena_put(a, s, klen);
	}
}

/*
 * Bytes the table holds.  A pooled table (the exact pass) counts the
 * entries it has, not its capacity: entry pages past n are never touched,
 * so they take no memory (huge pages: at most one partly used).
 */
static uint64_t tab_mem(const struct tab *t)
{
	uint64_t ents = t->pool ? t->n : t->cap;

	return ents * sizeof(struct ent) + t->nslots * sizeof(uint32_t) +
	       (t->no_prune && !t->errv ? 0 : 2 * t->cap * sizeof(uint64_t)) + t->ar.total +
	       t->xcap * sizeof(place_row) + t->xscap * sizeof(struct ext) +
	       (uint64_t)t->ar.alloc * sizeof(char *);
}

static void tab_note_mem(struct tab *t)
{
	uint64_t m = tab_mem(t);

	if (m > t->mem_peak)
		t->mem_peak = m;
}

/* Reports this table's memory to its pool and takes what the others
 * leave as its budget. */
static void tab_pool_sync(struct tab *t)
{
	uint64_t m, used;

	if (!t->pool)
		return;
	m = tab_mem(t);
	used = __atomic_add_fetch(&t->pool->used, m - t->pooled, __ATOMIC_RELAXED);
	t->pooled = m;
	used -= m;
	t->budget = t->pool->limit > used ? t->pool->limit - used : 0;
}

static void tab_init(struct tab *t, uint64_t budget, unsigned unit,
		     unsigned max_len)
{
	memset(t, 0, sizeof(*t));
	t->budget = budget;
	t->unit = unit;
	t->max_len = max_len;
}

static void tab_release(struct tab *t)
{
	map_free(t->e, t->cap * sizeof(*t->e));
	map_free(t->errv, t->cap * sizeof(*t->errv));
	map_free(t->slots, t->nslots * sizeof(*t->slots));
	free(t->xc);
	free(t->xs);
	arena_release(&t->ar);
	memset(t, 0, sizeof(*t));
}

/* The part of a string's hash that entries keep. */
static inline uint32_t hash_hi(uint64_t h)
{
	return (uint32_t)(h >> 32);
}

static inline size_t slot_of(const struct tab *t, uint32_t h)
{
	/* Multiply-shift range reduction: any table size works. */
	return (size_t)(((uint64_t)h * t->nslots) >> 32);
}

static inline uint64_t ent_err(const struct tab *t, const struct ent *e)
{
	return t->errv ? t->errv[e - t->e] : 0;
}

/* The array comes at the first nonzero err (zeroed by the kernel). */
static void ent_set_err(struct tab *t, const struct ent *e, uint64_t err)
{
	if (!t->errv) {
		if (!err)
			return;
		t->errv = map_new(t->cap * sizeof(*t->errv));
	}
	t->errv[e - t->e] = err;
}

/*
 * The entry numbers of e[0..n) ordered by their hash's top 16 bits (a
 * counting sort), hence by index slot in any table: walking an index in
 * that order touches it nearly sequentially instead of missing the cache
 * at each entry.  Owned by the caller; scratch besides it: the counts.
 */
#define HASH_ORDER_SCRATCH ((1u << 16) * sizeof(uint32_t))

static uint32_t *hash_order(const struct ent *e, size_t n)
{
	uint32_t *cnt = hs_xcalloc(1u << 16, sizeof(*cnt));
	uint32_t *ord = hs_xmalloc(n * sizeof(*ord));
	uint32_t sum = 0;

	for (size_t i = 0; i < n; i++)
		cnt[e[i].hash >> 16]++;
	for (size_t b = 0; b < (1u << 16); b++) {
		uint32_t c = cnt[b];

		cnt[b] = sum;
		sum += c;
	}
	for (size_t i = 0; i < n; i++)
		ord[cnt[e[i].hash >> 16]++] = (uint32_t)i;
	free(cnt);
	return ord;
}

#define ORDER_MIN 65536 /* below, the index fits in the caches anyway */
/* Indexes every entry; zeroed: the slots are known to be all empty.  (In
 * entry order: stores to random slots do not wait on each other, and
 * ordering them by hash_order() measured no faster.) */
static void index_rebuild(struct tab *t, bool zeroed)
{
	if (!zeroed)
		memset(t->slots, 0, t->nslots * sizeof(*t->slots));
	for (size_t i = 0; i < t->n; i++) {
		size_t s = slot_of(t, t->e[i].hash);

		while (t->slots[s])
			if (++s == t->nslots)
				s = 0;
		t->slots[s] = (uint32_t)(i + 1);
	}
}

static inline bool key_eq(const struct ent *e, const char *s, uint32_t klen)
{
	if (klen <= KEY_INLINE) {
		/* The entry's key is zero-padded; compare the bytes there are. */
		for (uint32_t i = 0; i < klen; i++)
			if (e->key.in[i] != s[i])
				return false;
		return true;
	}
	return !memcmp(e->key.p, s, klen);
}

/* The entry for the key, or NULL; *slot is where it would go. */
static inline struct ent *tab_find(const struct tab *t, uint32_t h, const char *s,
				   uint64_t len, size_t *slot)
{
	uint32_t klen = klen_of(t, len);
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
		if (e->hash == h && e->len == len && key_eq(e, s, klen))
			return e;
		if (++i == t->nslots)
			i = 0;
	}
}

static void tab_grow(struct tab *t, size_t cap)
{
	t->e = map_resize(t->e, t->cap * sizeof(*t->e), cap * sizeof(*t->e));
	if (t->errv)
		t->errv = map_resize(t->errv, t->cap * sizeof(*t->errv), cap * sizeof(*t->errv));
	t->cap = cap;
	map_free(t->slots, t->nslots * sizeof(*t->slots));
	t->nslots = 2 * cap;
	t->slots = map_new(t->nslots * sizeof(*t->slots));
	index_rebuild(t, true);
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
 * entries (in order), keys, place and sample rows.  U becomes at least
 * that count.
 */
static void hot_flush_all(struct tab *t);

static void tab_prune(struct tab *t)
{
	uint64_t *scratch, thr;
	struct arena na = { 0 };
	place_row *nxc = NULL;
	struct ext *nxs = NULL;
	size_t nnxc = 0, xcap = 0, nnxs = 0, xscap = 0, j = 0;

	if (!t->n)
		return;
	hot_flush_all(t);
	scratch = hs_xmalloc(t->n * sizeof(*scratch));
	for (size_t i = 0; i < t->n; i++)
		scratch[i] = t->e[i].count;
	thr = select_kth(scratch, t->n, (t->n - 1) / 2);
	free(scratch);

	for (size_t i = 0; i < t->n; i++) {
		struct ent e = t->e[i];
		uint32_t klen = klen_of(t, e.len);

		if (e.count <= thr)
			continue;
		if (klen > KEY_INLINE)
			e.key.p = arena_put(&na, e.key.p, klen);
		if (e.ext) {
			struct ext x = t->xs[e.ext - 1];

			if (x.xc) {
				HS_ALLOC_GROW(nxc, nnxc + 1, xcap);
				memcpy(nxc[nnxc++], t->xc[x.xc - 1], sizeof(place_row));
				x.xc = (uint32_t)nnxc;
			}
			HS_ALLOC_GROW(nxs, nnxs + 1, xscap);
			nxs[nnxs++] = x;
			e.ext = (uint32_t)nnxs;
		}
		if (t->errv)
			t->errv[j] = t->errv[i];
		t->e[j++] = e;
	}
	arena_release(&t->ar);
	t->ar = na;
	free(t->xc);
	t->xc = nxc;
	t->nxc = nnxc;
	t->xcap = xcap;
	free(t->xs);
	t->xs = nxs;
	t->nxs = nnxs;
	t->xscap = xscap;
	t->n = j;
	if (thr > t->U)
		t->U = thr;
	index_rebuild(t, false);
	memset(t->hot, 0, sizeof(t->hot));
	hs_log(HS_LOG_DEBUG, "strings: table pruned to %zu entries, bound %llu",
	       t->n, (unsigned long long)t->U);
}

/*
 * Makes room for one more entry with a key of klen bytes.  Returns false
 * if that needs a prune and the table may not prune (t->overflow is set).
 */
static bool tab_make_room(struct tab *t, size_t klen)
{
	bool big = klen > KEY_INLINE && klen > t->ar.left;
	size_t cap0 = t->cap;

	/* A pooled table reports to the pool only when it grows (and every
	 * 4096 inserts, tab_insert): the shared counter is one cache line
	 * that both workers would otherwise write per insert. */
	if (t->pool && (t->n == t->cap || big))
		tab_pool_sync(t);
	if (t->n == t->cap) {
		uint64_t avg_key = t->n ? t->ar.total / t->n + 1 : 8;
		uint64_t fixed = t->xcap * sizeof(place_row) + t->xscap * sizeof(struct ext);
		uint64_t per = ent_cost(t) + avg_key;
		uint64_t fit = t->budget > fixed ? (t->budget - fixed) / per : 0;
		size_t want = t->cap ? t->cap * 2 : 1024;

		if (want > fit)
			want = (size_t)fit;
		if (want >= t->cap + t->cap / 8 + 64) {
			tab_grow(t, want);
		} else if (t->no_prune && t->n) {
			t->overflow = true;
			return false;
		} else {
			tab_prune(t);
		}
	}
	if (t->n == t->cap)	/* nothing to prune: budget below one block */
		tab_grow(t, t->cap + 64);
	if (big && klen > t->ar.left && tab_mem(t) + ARENA_BLOCK > t->budget &&
	    t->n) {
		if (t->no_prune) {
			t->overflow = true;
			return false;
		}
		tab_prune(t);
	}
	if (t->pool && t->cap != cap0)
		tab_pool_sync(t);
	return true;
}

/* e's row in xs, made (zeroed) if it has none. */
static struct ext *ent_ext(struct tab *t, struct ent *e)
{
	if (!e->ext) {
		HS_ALLOC_GROW(t->xs, t->nxs + 1, t->xscap);
		memset(&t->xs[t->nxs], 0, sizeof(t->xs[0]));
		e->ext = (uint32_t)++t->nxs;
		tab_note_mem(t);
	}
	return &t->xs[e->ext - 1];
}

/* e's per-place counts, or NULL: all its sightings are in e->place. */
static inline uint64_t *ent_places(const struct tab *t, const struct ent *e)
{
	uint32_t xc = e->ext ? t->xs[e->ext - 1].xc : 0;

	return xc ? t->xc[xc - 1] : NULL;
}

/* The same, made if e has none (before e's count is updated). */
static uint64_t *ent_places_make(struct tab *t, struct ent *e)
{
	uint64_t *row = ent_places(t, e);
	struct ext *x;

	if (row)
		return row;
	HS_ALLOC_GROW(t->xc, t->nxc + 1, t->xcap);
	memset(t->xc[t->nxc], 0, sizeof(place_row));
	t->xc[t->nxc][e->place] = e->count - ent_err(t, e);
	x = ent_ext(t, e);	/* may move xs: taken after the row is made */
	x->xc = (uint32_t)++t->nxc;
	tab_note_mem(t);
	return t->xc[x->xc - 1];
}

/* The samples of e, lowest first. */
static unsigned ent_samples(const struct tab *t, const struct ent *e,
			    hs_addr_t out[HS_STR_SAMPLES])
{
	unsigned n = e->nsamp;

	if (n)
		out[0] = e->samp0;
	if (n > 1)
		memcpy(out + 1, t->xs[e->ext - 1].samp, (n - 1) * sizeof(out[0]));
	return n;
}

static void ent_set_samples(struct tab *t, struct ent *e,
			    const hs_addr_t v[HS_STR_SAMPLES], unsigned n)
{
	e->nsamp = n & 3;
	if (n)
		e->samp0 = v[0];
	if (n > 1)
		memcpy(ent_ext(t, e)->samp, v + 1, (n - 1) * sizeof(v[0]));
}

/* Keeps the HS_STR_SAMPLES lowest addresses (each seen once). */
static inline void ent_sample(struct tab *t, struct ent *e, hs_addr_t a)
{
	hs_addr_t v[HS_STR_SAMPLES];
	unsigned n;

	if (e->nsamp == HS_STR_SAMPLES &&
	    a > t->xs[e->ext - 1].samp[HS_STR_SAMPLES - 2])
		return;
	n = ent_samples(t, e, v);
	if (n == HS_STR_SAMPLES)
		n--;		/* a replaces the highest */
	while (n && v[n - 1] > a) {
		v[n] = v[n - 1];
		n--;
	}
	v[n] = a;
	ent_set_samples(t, e, v, e->nsamp < HS_STR_SAMPLES ? e->nsamp + 1u : HS_STR_SAMPLES);
}

static void samples_merge(struct tab *dt, struct ent *dst, const struct tab *st,
			  const struct ent *src)
{
	hs_addr_t a[HS_STR_SAMPLES], b[HS_STR_SAMPLES], out[HS_STR_SAMPLES];
	unsigned na = ent_samples(dt, dst, a), nb = ent_samples(st, src, b);
	unsigned i = 0, j = 0, k = 0;

	while (k < HS_STR_SAMPLES && (i < na || j < nb)) {
		if (j >= nb || (i < na && a[i] <= b[j]))
			out[k++] = a[i++];
		else
			out[k++] = b[j++];
	}
	ent_set_samples(dt, dst, out, k);
}

/* Occurrences seen per place, as a full row. */
static void ent_row(const struct tab *t, const struct ent *e, place_row row)
{
	const uint64_t *r = ent_places(t, e);

	if (r) {
		memcpy(row, r, sizeof(place_row));
	} else {
		memset(row, 0, sizeof(place_row));
		row[e->place] = e->count - ent_err(t, e);
	}
}

/* Adds per-place sightings (add[]) to e, before e's count is updated. */
static void ent_add_places(struct tab *t, struct ent *e, const place_row add)
{
	uint64_t *row = ent_places(t, e);

	if (!row) {
		bool other = false;

		for (unsigned c = 0; c < PLACES; c++)
			other |= add[c] && c != e->place;
		if (!other)
			return;
		row = ent_places_make(t, e);
	}
	for (unsigned c = 0; c < PLACES; c++)
		row[c] += add[c];
}

/* ent_add_places for n sightings in one place: no row unless needed. */
static inline void ent_add_place(struct tab *t, struct ent *e, unsigned place,
				 uint64_t n)
{
	uint64_t *row = ent_places(t, e);

	if (!row) {
		if (e->place == place || !n)
			return;
		row = ent_places_make(t, e);
	}
	row[place] += n;
}

/* A new entry, count and err 0; NULL if the table may not grow (overflow). */
static struct ent *tab_insert(struct tab *t, uint32_t h, const char *s,
			      uint64_t len, unsigned place)
{
	uint32_t klen = klen_of(t, len);
	size_t slot;
	struct ent *e;

	if (!tab_make_room(t, klen))
		return NULL;
	/* The index may have been rebuilt: look for the free slot again. */
	e = tab_find(t, h, s, len, &slot);
	if (e)
		return e;
	if (t->pool && ++t->since_sync == 4096) {
		/* The others grow too: check the shared limit now and then
		 * (a pooled table overshoots it by at most 4096 entries). */
		t->since_sync = 0;
		tab_pool_sync(t);
		tab_note_mem(t);
		if (tab_mem(t) > t->budget) {
			t->overflow = true;
			return NULL;
		}
	}
	e = &t->e[t->n++];
	memset(e, 0, sizeof(*e));
	if (t->errv)
		t->errv[t->n - 1] = 0;
	e->hash = h;
	key_set(&t->ar, e, s, klen);
	e->len = len;
	e->place = place & 0xff;
	t->slots[slot] = (uint32_t)t->n;
	if (klen > KEY_INLINE)
		tab_note_mem(t);
	return e;
}

/*
 * The first min(n, 8) bytes of s, zero-extended (an inline key's padded
 * form), read without touching s[n] or beyond.
 */
static inline uint64_t key_word(const char *s, size_t n)
{
	uint64_t w = 0;
	uint32_t lo, hi;

	if (n >= 8) {
		memcpy(&w, s, 8);
	} else if (n >= 4) {
		memcpy(&lo, s, 4);
		memcpy(&hi, s + n - 4, 4);
		w = (uint64_t)lo | (uint64_t)hi << (8 * (n - 4));
	} else if (n) {
		w = (uint64_t)(unsigned char)s[0] |
		    (uint64_t)(unsigned char)s[n / 2] << (8 * (n / 2)) |
		    (uint64_t)(unsigned char)s[n - 1] << (8 * (n - 1));
	}
	return w;
}

static inline struct hot *hot_slot(struct tab *t, uint64_t w0, uint64_t len)
{
	return &t->hot[((w0 ^ len) * 0x9e3779b97f4a7c15ull) >> (64 - 8)];
}

/* Bytes [8, n) of a and b equal (n > 8), by 8-byte words. */
static inline bool key_tail_eq(const char *a, const char *b, size_t n)
{
	uint64_t x, y;
	size_t i;

	for (i = 8; i + 8 <= n; i += 8) {
		memcpy(&x, a + i, 8);
		memcpy(&y, b + i, 8);
		if (x != y)
			return false;
	}
	if (i < n) {
		memcpy(&x, a + n - 8, 8);
		memcpy(&y, b + n - 8, 8);
		return x == y;
	}
	return true;
}

/* One more sighting of e's string at addr in place. */
static inline void ent_hit(struct tab *t, struct ent *e, uint64_t len,
			   hs_addr_t addr, unsigned place)
{
	ent_add_place(t, e, place, 1);
	t->occurrences++;
	t->string_bytes += len * t->unit;
	e->count++;
	ent_sample(t, e, addr);
}

/* Adds c's pending sightings to its entry. */
static void hot_flush(struct tab *t, struct hot *c)
{
	struct ent *e;

	if (!c->pend)
		return;
	e = &t->e[c->ent - 1];
	ent_add_place(t, e, c->place, c->pend);
	e->count += c->pend;
	t->occurrences += c->pend;
	t->string_bytes += c->pend * c->len * t->unit;
	c->pend = 0;
}

static void hot_flush_all(struct tab *t)
{
	for (unsigned i = 0; i < HOT; i++)
		hot_flush(t, &t->hot[i]);
}

/* Points c (flushed) at e, whose sightings are in place. */
static inline void hot_set(struct tab *t, struct hot *c, const struct ent *e,
			   uint64_t w0, unsigned place)
{
	c->w0 = w0;
	c->len = e->len;
	c->key = klen_of(t, e->len) > KEY_INLINE ? e->key.p : NULL;
	c->ent = (uint32_t)(e - t->e) + 1;
	c->place = place;
	c->smax = e->nsamp == HS_STR_SAMPLES ? t->xs[e->ext - 1].samp[HS_STR_SAMPLES - 2]
					     : ~(hs_addr_t)0;
}

/*
 * One sighting of (s, stored, len) at addr in place, if the hot cache has
 * the string: true, counted.
 */
static inline bool hot_hit(struct tab *t, const char *s, size_t stored,
			   uint64_t len, hs_addr_t addr, unsigned place)
{
	uint64_t w0 = key_word(s, stored);
	struct hot *c = hot_slot(t, w0, len);
	struct ent *e;

	if (!c->ent || c->len != len || c->w0 != w0)
		return false;
	/* Same length, so the same key length (stored) as the entry's. */
	if (stored > KEY_INLINE && !key_tail_eq(c->key, s, stored))
		return false;
	if (c->place == place && addr > c->smax) {
		c->pend++;
		return true;
	}
	hot_flush(t, c);
	e = &t->e[c->ent - 1];
	ent_hit(t, e, len, addr, place);
	hot_set(t, c, e, w0, place);
	return true;
}

/*
 * One sighting of a string at addr in place.  The HyperLogLog sees each
 * string when it enters a table, which is every string at least once.
 */
static inline void tab_add(struct tab *t, uint64_t h, const char *s,
			   uint64_t len, hs_addr_t addr, unsigned place)
{
	size_t slot;
	struct ent *e;
	bool seen;

	e = tab_find(t, hash_hi(h), s, len, &slot);
	seen = e != NULL;
	if (!seen) {
		e = tab_insert(t, hash_hi(h), s, len, place);
		if (!e)
			return;
		hll_add(t->hll, h);
		e->count = t->U;
		ent_set_err(t, e, t->U);
	}
	ent_hit(t, e, len, addr, place);
	if (seen && e->count - ent_err(t, e) > 1) {
		/* Seen before in this table: a candidate for the hot cache.
		 * The slot's pending sightings go to the entry that held it
		 * first. */
		uint64_t w0 = key_word(s, klen_of(t, len));
		struct hot *c = hot_slot(t, w0, len);

		hot_flush(t, c);
		hot_set(t, c, e, w0, place);
	}
}

/*
 * Merges src into dst; see the top of the file.  Returns false if dst may
 * not prune and overflowed.
 */
static bool tab_merge(struct tab *dst, const struct tab *src)
{
	uint32_t *ord = NULL;

	/* Room for every entry at once (within the budget): one index
	 * rebuild instead of one per doubling on the way. */
	if (dst->n + src->n > dst->cap && !dst->pool) {
		uint64_t avg_key = (dst->ar.total + src->ar.total) / (dst->n + src->n + 1) + 1;
		uint64_t fixed = dst->xcap * sizeof(place_row) + dst->xscap * sizeof(struct ext) +
				 src->xcap * sizeof(place_row);
		uint64_t fit = dst->budget > fixed ? (dst->budget - fixed) / (ent_cost(dst) + avg_key) : 0;
		size_t want = dst->n + src->n + (dst->n + src->n) / 16;

		if (want > fit)
			want = (size_t)fit;
		if (want > dst->cap)
			tab_grow(dst, want);
	}
	/*
	 * A big exact merge takes src's entries in the order of their hash's
	 * top 16 bits (a counting sort of entry numbers), hence of their
	 * index slots in dst: dst's index is then walked nearly in order
	 * rather than missing the cache at every lookup.  Sums do not depend
	 * on the order.  Scratch: 4 bytes per entry and the 256 KiB counts,
	 * counted in dst's peak.
	 */
	if (dst->no_prune && src->n >= ORDER_MIN) {
		uint64_t scratch = src->n * sizeof(*ord) + HASH_ORDER_SCRATCH;

		ord = hash_order(src->e, src->n);
		if (tab_mem(dst) + scratch > dst->mem_peak)
			dst->mem_peak = tab_mem(dst) + scratch;
	}
	for (size_t i = 0; i < src->n; i++) {
		const struct ent *x = &src->e[ord ? ord[i] : i];
		uint32_t klen = klen_of(src, x->len);
		const char *key = ent_key(x, klen);
		size_t slot;
		struct ent *e;

		if (ord) {
			/* src's entries are now read out of order. */
			if (i + 8 < src->n)
				__builtin_prefetch(&src->e[ord[i + 8]]);
		} else if (dst->nslots) {
			/* Two stages ahead of the lookups: the index slot,
			 * then the entry it names. */
			if (i + 16 < src->n)
				__builtin_prefetch(&dst->slots[slot_of(dst, src->e[i + 16].hash)]);
			if (i + 8 < src->n) {
				uint32_t v = dst->slots[slot_of(dst, src->e[i + 8].hash)];

				if (v)
					__builtin_prefetch(&dst->e[v - 1]);
			}
		}
		e = tab_find(dst, x->hash, key, x->len, &slot);
		if (!e) {
			e = tab_insert(dst, x->hash, key, x->len, x->place);
			if (!e) {
				free(ord);
				return false;
			}
			/* after any prune the insert made */
			e->count = dst->U;
			ent_set_err(dst, e, dst->U);
		}
		if (ent_places(src, x)) {
			place_row row;

			ent_row(src, x, row);
			ent_add_places(dst, e, row);
		} else {
			ent_add_place(dst, e, x->place, x->count - ent_err(src, x));
		}
		e->count += x->count;
		ent_set_err(dst, e, ent_err(dst, e) + ent_err(src, x));
		samples_merge(dst, e, src, x);
		e->touched = src->U != 0;
	}
	free(ord);
	/* Strings src may have dropped: up to src->U each (none if exact). */
	for (size_t i = 0; i < dst->n && src->U; i++) {
		struct ent *e = &dst->e[i];

		if (!e->touched) {
			e->count += src->U;
			ent_set_err(dst, e, ent_err(dst, e) + src->U);
		}
		e->touched = 0;
	}
	dst->U += src->U;
	dst->occurrences += src->occurrences;
	dst->string_bytes += src->string_bytes;
	for (unsigned i = 0; i < HLL_M; i++)
		if (dst->hll[i] < src->hll[i])
			dst->hll[i] = src->hll[i];
	return true;
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

/*
 * A segment: the part of the ranges inside one window [k * seg_size,
 * (k + 1) * seg_size), from range `range` on.  Windows are fixed by
 * address, so segments do not depend on --jobs.
 */
struct seg {
	hs_addr_t start, end;     /* start: first byte; end: the window's end */
	size_t range;
	uint64_t bytes;
};

struct run {
	struct hs_target *t;
	const struct hs_str_ranges *r;
	const struct hs_str_opts *o;
	unsigned unit;
	bool exact_pass;
	struct seg *segs;
	size_t nsegs;
	size_t next_seg;          /* atomic */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	size_t turn;              /* next segment to merge */
	int err;
	int abort;                /* atomic */
	int overflow;             /* atomic: the exact pass ran out of budget */
	struct tab global;
	uint64_t seg_budget;
	uint64_t done, total;
	uint64_t worker_peak;     /* under mu */
};

/*
 * Runs wait in a short queue so that their index slots, then entries, are
 * fetched from memory together rather than one miss at a time.  A queued
 * run points into the read buffer: the queue is drained before the buffer
 * is reused (end of each chunk) and before a run from the scanner's carry.
 */
#define PEND 16

struct pend {
	uint64_t h, len;
	const char *s;
	hs_addr_t addr;
	unsigned place;
};

struct worker {
	struct run *run;
	struct tab tab;
	struct pend q[PEND];
	unsigned nq;
	struct hs_str_scanner sc;
	unsigned char *buf;
	unsigned cls;
	size_t wcur;              /* cursor in o->where */
	bool tail;                /* following a run past the segment's end */
	uint64_t scanned, unreadable, class_bytes[HS_CLASS_N];
	pthread_t th;
};

#define STOP_TAIL 1           /* chunk callback: the tail run has ended */
#define STOP_ABORT 2          /* chunk callback: stop (failure, overflow) */

/* Where addr lives; runs come in address order within a segment. */
static inline unsigned loc_of(struct worker *w, hs_addr_t addr)
{
	const struct hs_str_where *wh = w->run->o->where;

	if (!wh)
		return HS_STR_LOC_UNKNOWN;
	while (w->wcur < wh->n && wh->v[w->wcur].end <= addr)
		w->wcur++;
	if (w->wcur < wh->n && wh->v[w->wcur].start <= addr)
		return wh->v[w->wcur].loc;
	return HS_STR_LOC_OUTSIDE;
}

static void drain(struct worker *w)
{
	struct tab *t = &w->tab;

	if (t->nslots)
		for (unsigned i = 0; i < w->nq; i++) {
			uint32_t v = t->slots[slot_of(t, hash_hi(w->q[i].h))];

			if (v)
				__builtin_prefetch(&t->e[v - 1]);
		}
	for (unsigned i = 0; i < w->nq; i++)
		tab_add(t, w->q[i].h, w->q[i].s, w->q[i].len, w->q[i].addr,
			w->q[i].place);
	w->nq = 0;
}

static void on_run(void *ud, hs_addr_t addr, const char *s, size_t stored,
		   uint64_t len)
{
	struct worker *w = ud;
	struct tab *t = &w->tab;
	struct pend *p;
	unsigned place = w->cls * HS_STR_LOC_N + loc_of(w, addr);
	uint64_t h;

	if (hot_hit(t, s, stored, len, addr, place))
		return;
	h = str_hash(s, stored, len);
	if (s >= w->sc.carry && s < w->sc.carry + w->sc.max_len) {
		drain(w);
		tab_add(t, h, s, len, addr, place);
		return;
	}
	if (t->nslots)
		__builtin_prefetch(&t->slots[slot_of(t, hash_hi(h))]);
	p = &w->q[w->nq++];
	p->h = h;
	p->len = len;
	p->s = s;
	p->addr = addr;
	p->place = place;
	if (w->nq == PEND)
		drain(w);
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

	if (__atomic_load_n(&run->abort, __ATOMIC_RELAXED) || w->tab.overflow)
		return STOP_ABORT;
	if (!w->tail) {
		hs_str_scan(&w->sc, addr, data, len);
		drain(w);
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
	drain(w);
	return n < len ? STOP_TAIL : 0;
}

/* Streams [a, end) in pieces that break at multiples of gran. */
static int stream_aligned(struct worker *w, hs_addr_t a, hs_addr_t end,
			  size_t gran)
{
	while (a < end) {
		hs_addr_t b = (a | (gran - 1)) + 1, ds, de;
		int ret;

		if (hs_interrupted)
			return -HS_E_INTERRUPTED;
		/* b > a always: the last piece below 2^64 wraps to 0. */
		if (b > end || b <= a)
			b = end;
		/* A hole (a core's segment its file does not back) is one
		 * piece, whatever its size: the stream counts it in one step. */
		if (hs_target_next_data(w->run->t, a, end, &ds, &de) < 0)
			ds = end;
		if ((ds & ~(hs_addr_t)(gran - 1)) > b)
			b = ds & ~(hs_addr_t)(gran - 1);
		ret = hs_target_stream(w->run->t, a, b, w->buf, gran, on_chunk, w,
				       &w->unreadable);
		if (ret)
			return ret;
		a = b;
	}
	return 0;
}

/*
 * Follows the run in progress from `from` (in range i) to its end, through
 * every range that adjoins the one before it: adjacent readable mappings
 * are one stream, so a string that crosses the boundary between two (a
 * forked child's two [heap] pieces, a split mmapped chunk) is one string,
 * counted once, in the class where it starts.
 */
static int follow_tail(struct worker *w, size_t i, hs_addr_t from)
{
	const struct hs_str_ranges *r = w->run->r;
	int ret = 0;

	w->tail = true;
	for (size_t k = i; k < r->n && !ret && hs_str_scan_in_run(&w->sc); k++) {
		hs_addr_t a = k == i ? from : r->v[k].start;

		if (k > i && r->v[k].start != r->v[k - 1].end)
			break;
		if (a < r->v[k].end)
			ret = stream_aligned(w, a, r->v[k].end, 4096);
	}
	return ret == STOP_TAIL ? 0 : ret;
}

/* Range i's part [a, b) of a segment. */
static int scan_piece(struct worker *w, size_t i, hs_addr_t a, hs_addr_t b)
{
	struct run *run = w->run;
	const struct hs_str_range *rg = &run->r->v[i];
	int ret;

	hs_str_scan_end(&w->sc);
	w->cls = rg->cls;
	w->tail = false;
	if (a > rg->start || (i > 0 && run->r->v[i - 1].end == rg->start)) {
		/* A run that starts before the segment (or in the adjoining
		 * range) belongs to the piece before, which follows it to its
		 * end: skip its characters. */
		unsigned char u[2];

		if (hs_target_read_full(run->t, a - run->unit, u, run->unit) == 0 &&
		    unit_printable(run, u))
			w->sc.skip = true;
	}
	ret = stream_aligned(w, a, b, run->o->chunk);
	if (ret == 0 && hs_str_scan_in_run(&w->sc))
		ret = follow_tail(w, i, b);
	hs_str_scan_end(&w->sc);
	return ret;
}

static int scan_segment(struct worker *w, const struct seg *sg)
{
	const struct hs_str_ranges *r = w->run->r;
	int ret = 0;

	if (w->run->o->where)
		w->wcur = hs_str_where_lower(w->run->o->where, sg->start);
	for (size_t i = sg->range; i < r->n && r->v[i].start < sg->end && !ret; i++) {
		hs_addr_t a = r->v[i].start > sg->start ? r->v[i].start : sg->start;
		hs_addr_t b = r->v[i].end < sg->end ? r->v[i].end : sg->end;

		ret = scan_piece(w, i, a, b);
	}
	hot_flush_all(&w->tab);
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

static void progress_locked(struct run *run, size_t i)
{
	run->done += run->segs[i].bytes;
	if (run->o->progress)
		run->o->progress(run->o->progress_ud, run->done, run->total);
}

/*
 * Claims the next segment and scans it into w->tab, a fresh table when
 * per_segment.  Returns true with *i its index; false when no segment is
 * left, the run was aborted, or the scan failed (recorded by fail()).
 */
static bool scan_next(struct worker *w, bool per_segment, size_t *i)
{
	struct run *run = w->run;
	int ret;

	*i = __atomic_fetch_add(&run->next_seg, 1, __ATOMIC_RELAXED);
	if (*i >= run->nsegs || __atomic_load_n(&run->abort, __ATOMIC_RELAXED))
		return false;
	if (per_segment)
		tab_init(&w->tab, run->seg_budget, run->unit, run->o->max_len);
	ret = scan_segment(w, &run->segs[*i]);
	if (ret == 0 && hs_interrupted)
		ret = -HS_E_INTERRUPTED;
	if (ret) {
		if (per_segment)
			tab_release(&w->tab);
		fail(run, ret);
		return false;
	}
	return true;
}

/* The exact pass: one table per worker for all its segments. */
static void worker_exact(struct worker *w)
{
	struct run *run = w->run;
	size_t i;

	while (scan_next(w, false, &i)) {
		if (w->tab.overflow) {
			__atomic_store_n(&run->overflow, 1, __ATOMIC_RELAXED);
			__atomic_store_n(&run->abort, 1, __ATOMIC_RELAXED);
			break;
		}
		pthread_mutex_lock(&run->mu);
		progress_locked(run, i);
		pthread_mutex_unlock(&run->mu);
	}
}

/* The estimating pass: a table per segment, merged in segment order. */
static void worker_segments(struct worker *w)
{
	struct run *run = w->run;
	size_t i;

	while (scan_next(w, true, &i)) {
		pthread_mutex_lock(&run->mu);
		while (!run->abort && run->turn != i)
			pthread_cond_wait(&run->cv, &run->mu);
		if (run->abort) {
			pthread_mutex_unlock(&run->mu);
			tab_release(&w->tab);
			break;
		}
		(void)tab_merge(&run->global, &w->tab);
		if (w->tab.mem_peak > run->worker_peak)
			run->worker_peak = w->tab.mem_peak;
		run->turn++;
		progress_locked(run, i);
		pthread_cond_broadcast(&run->cv);
		pthread_mutex_unlock(&run->mu);
		tab_release(&w->tab);
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	if (w->run->exact_pass)
		worker_exact(w);
	else
		worker_segments(w);
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
	if (o->where && !o->where->finished)
		return -EINVAL;
	return 0;
}

struct rank_ctx {
	const struct tab *t;
	enum hs_str_rank by;
};

/* Ranking: true if a goes before b.  bytes = count * len * unit. */
static bool ranks_before(const struct rank_ctx *c, const struct ent *a,
			 const struct ent *b)
{
	uint64_t ab = a->count * a->len, bb = b->count * b->len;
	uint64_t a1 = c->by == HS_STR_BY_BYTES ? ab : a->count;
	uint64_t b1 = c->by == HS_STR_BY_BYTES ? bb : b->count;
	uint64_t a2 = c->by == HS_STR_BY_BYTES ? a->count : ab;
	uint64_t b2 = c->by == HS_STR_BY_BYTES ? b->count : bb;
	uint32_t ka = klen_of(c->t, a->len), kb = klen_of(c->t, b->len);
	uint32_t m = ka < kb ? ka : kb;
	int r;

	if (a1 != b1)
		return a1 > b1;
	if (a2 != b2)
		return a2 > b2;
	r = memcmp(ent_key(a, ka), ent_key(b, kb), m);
	if (r)
		return r < 0;
	if (ka != kb)
		return ka < kb;
	return a->len < b->len;
}

/* A heap of the best k entries seen, worst at the root. */
static void top_push(const struct rank_ctx *c, const struct ent **h, size_t *n,
		     size_t k, const struct ent *e)
{
	size_t i;

	if (*n < k) {
		i = (*n)++;
		while (i && ranks_before(c, h[(i - 1) / 2], e)) {
			h[i] = h[(i - 1) / 2];
			i = (i - 1) / 2;
		}
		h[i] = e;
		return;
	}
	if (!ranks_before(c, e, h[0]))
		return;
	i = 0;
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, w = i;
		const struct ent *we = e;

		if (l < *n && ranks_before(c, we, h[l])) {
			w = l;
			we = h[l];
		}
		if (r < *n && ranks_before(c, we, h[r]))
			w = r;
		if (w == i)
			break;
		h[i] = h[w];
		i = w;
	}
	h[i] = e;
}

static int cmp_rank(const void *a, const void *b, void *ctx)
{
	const struct ent *x = *(const struct ent *const *)a;
	const struct ent *y = *(const struct ent *const *)b;

	if (x == y)
		return 0;
	return ranks_before(ctx, x, y) ? -1 : 1;
}

static void build_result(const struct tab *g, const struct hs_str_opts *o,
			 struct hs_str_result *res)
{
	struct rank_ctx ctx = { g, o->by };
	size_t k = o->top, n = 0;
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
		top_push(&ctx, h, &n, k, &g->e[i]);
	qsort_r(h, n, sizeof(*h), cmp_rank, &ctx);
	res->top = hs_xcalloc(n ? n : 1, sizeof(*res->top));
	res->ntop = n;
	for (size_t i = 0; i < n; i++) {
		const struct ent *e = h[i];
		struct hs_str_item *it = &res->top[i];
		uint32_t klen = klen_of(g, e->len);
		place_row row;

		it->s = hs_xstrndup(ent_key(e, klen), klen);
		it->stored = klen;
		it->len = e->len;
		it->truncated = e->len > klen;
		it->count = e->count;
		it->err = ent_err(g, e);
		it->bytes = e->count * e->len * g->unit;
		ent_row(g, e, row);
		for (unsigned p = 0; p < PLACES; p++) {
			it->cls_count[p / HS_STR_LOC_N] += row[p];
			it->loc_count[p % HS_STR_LOC_N] += row[p];
		}
		it->nsamples = ent_samples(g, e, it->samples);
	}
	free(h);
}

/* Runs one pass with o->jobs workers (the caller's thread is one). */
static unsigned run_pass(struct run *run, struct worker *w)
{
	unsigned started = 0;

	for (unsigned i = 1; i < run->o->jobs; i++) {
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
	return started + 1;
}

/*
 * Sums the exact pass's tables into w[0]'s, each merged table freed at
 * once; the merged table may use what the others leave of the budget.
 * Returns false on overflow.
 */
static bool merge_exact(struct run *run, struct worker *w, uint64_t budget)
{
	struct tab *g, tmp;
	uint64_t peak = 0, others = 0;
	unsigned big = 0;

	/* The largest table takes in the others: sums do not depend on the
	 * order, and it moves the fewest entries. */
	for (unsigned i = 0; i < run->o->jobs; i++) {
		peak += w[i].tab.mem_peak;
		w[i].tab.pool = NULL;
		if (w[i].tab.n > w[big].tab.n)
			big = i;
	}
	tmp = w[0].tab;
	w[0].tab = w[big].tab;
	w[big].tab = tmp;
	g = &w[0].tab;
	for (unsigned i = 1; i < run->o->jobs; i++)
		others += tab_mem(&w[i].tab);
	g->no_prune = true;
	for (unsigned i = 1; i < run->o->jobs; i++) {
		uint64_t m = tab_mem(&w[i].tab);
		bool ok;

		g->budget = budget > others ? budget - others : 0;
		g->mem_peak = 0;
		ok = tab_merge(g, &w[i].tab);
		if (g->mem_peak + others > peak)
			peak = g->mem_peak + others;
		others -= m;
		tab_release(&w[i].tab);
		if (!ok)
			return false;
	}
	g->mem_peak = peak;
	return true;
}

/*
 * The exact pass's result without a merge: the workers' tables (at most
 * JOIN_MAX) are joined by key, read-only, on several threads.  Tables
 * go by decreasing size, t[0] the largest; each distinct string is
 * counted by the last table that holds it: a table's entries are looked
 * up in the tables before it, and the entries found there are marked, so
 * that those tables skip them.  The smallest table goes first, so the
 * lookups number the entries of all tables but the largest, as a merge's
 * do, but nothing is inserted, nothing grows, and the threads share the
 * work.  Each thread keeps the best `top` strings it counted; a string is
 * counted by one thread, so the best of those heaps are the result.
 * Memory: a byte of marks per entry of every table but the smallest,
 * and the heaps.
 */
#define JOIN_MAX 4

struct jent {
	struct ent e;      /* a copy, count = the sum over the tables */
	unsigned tab;      /* the table that counted it */
};

struct join {
	const struct tab *t[JOIN_MAX];
	uint8_t *mark[JOIN_MAX]; /* mark[j][x]: t[j]->e[x] counted later */
	unsigned nt;
	struct rank_ctx ctx;
	size_t k;
};

struct join_part {
	struct join *j;
	unsigned i;              /* the table being counted */
	size_t lo, hi;           /* its entries [lo, hi) */
	struct jent *heap;       /* k best, worst at the root */
	size_t n;
	uint64_t distinct;
	pthread_t th;
};

static void jtop_push(const struct rank_ctx *c, struct jent *h, size_t *n, size_t k,
		      const struct jent *x)
{
	size_t i;

	if (*n < k) {
		i = (*n)++;
		while (i && ranks_before(c, &h[(i - 1) / 2].e, &x->e)) {
			h[i] = h[(i - 1) / 2];
			i = (i - 1) / 2;
		}
		h[i] = *x;
		return;
	}
	if (!ranks_before(c, &x->e, &h[0].e))
		return;
	i = 0;
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, w = i;
		const struct ent *we = &x->e;

		if (l < *n && ranks_before(c, we, &h[l].e)) {
			w = l;
			we = &h[l].e;
		}
		if (r < *n && ranks_before(c, we, &h[r].e))
			w = r;
		if (w == i)
			break;
		h[i] = h[w];
		i = w;
	}
	h[i] = *x;
}

static void *join_main(void *arg)
{
	struct join_part *pt = arg;
	const struct join *j = pt->j;
	const struct tab *ti = j->t[pt->i];
	const uint8_t *mine = j->mark[pt->i];

	for (size_t x = pt->lo; x < pt->hi; x++) {
		const struct ent *e = &ti->e[x];
		uint32_t klen = klen_of(ti, e->len);
		struct jent je;
		uint64_t total = e->count;

		/* Two stages ahead of the lookups: the index slot, then the
		 * entry it names. */
		for (unsigned b = 0; b < pt->i; b++) {
			const struct tab *tb = j->t[b];

			if (!tb->nslots)
				continue;
			if (x + 16 < pt->hi)
				__builtin_prefetch(&tb->slots[slot_of(tb, ti->e[x + 16].hash)]);
			if (x + 8 < pt->hi) {
				uint32_t v = tb->slots[slot_of(tb, ti->e[x + 8].hash)];

				if (v)
					__builtin_prefetch(&tb->e[v - 1]);
			}
		}
		if (mine && mine[x])
			continue;
		for (unsigned b = 0; b < pt->i; b++) {
			size_t slot;
			const struct ent *f = tab_find(j->t[b], e->hash, ent_key(e, klen),
						       e->len, &slot);

			if (f) {
				total += f->count;
				j->mark[b][f - j->t[b]->e] = 1;
			}
		}
		pt->distinct++;
		if (!j->k)
			continue;
		je.e = *e;
		je.e.count = total;
		je.tab = pt->i;
		jtop_push(&j->ctx, pt->heap, &pt->n, j->k, &je);
	}
	return NULL;
}

static int cmp_jrank(const void *a, const void *b, void *ctx)
{
	const struct jent *x = a, *y = b;

	if (ranks_before(ctx, &x->e, &y->e))
		return -1;
	return ranks_before(ctx, &y->e, &x->e) ? 1 : 0;
}

static int cmp_addr(const void *a, const void *b)
{
	hs_addr_t x = *(const hs_addr_t *)a, y = *(const hs_addr_t *)b;

	return x < y ? -1 : x > y;
}

/* One item of the result from a joined string. */
static void join_item(const struct join *j, const struct jent *x, unsigned unit,
		      struct hs_str_item *it)
{
	const struct tab *tx = j->t[x->tab];
	uint32_t klen = klen_of(tx, x->e.len);
	const char *key = ent_key(&x->e, klen);
	hs_addr_t samp[JOIN_MAX * HS_STR_SAMPLES];
	unsigned ns = 0;

	it->s = hs_xstrndup(key, klen);
	it->stored = klen;
	it->len = x->e.len;
	it->truncated = x->e.len > klen;
	it->count = x->e.count;
	it->err = 0;
	it->bytes = x->e.count * x->e.len * unit;
	for (unsigned b = 0; b < j->nt; b++) {
		size_t slot;
		const struct ent *f = tab_find(j->t[b], x->e.hash, key, x->e.len, &slot);
		place_row row;

		if (!f)
			continue;
		ent_row(j->t[b], f, row);
		for (unsigned p = 0; p < PLACES; p++) {
			it->cls_count[p / HS_STR_LOC_N] += row[p];
			it->loc_count[p % HS_STR_LOC_N] += row[p];
		}
		ns += ent_samples(j->t[b], f, samp + ns);
	}
	qsort(samp, ns, sizeof(*samp), cmp_addr);
	it->nsamples = ns < HS_STR_SAMPLES ? ns : HS_STR_SAMPLES;
	memcpy(it->samples, samp, it->nsamples * sizeof(*samp));
}

/*
 * The result of the exact pass's tables w[0..ntab) (ntab <= JOIN_MAX)
 * into res, on `threads` threads.  Adds the join's memory to *mem_peak.
 */
static void join_exact(struct worker *w, unsigned ntab, unsigned threads,
		       const struct hs_str_opts *o, unsigned unit, uint64_t *mem_peak,
		       struct hs_str_result *res)
{
	struct join j;
	struct join_part *pt = hs_xcalloc(threads, sizeof(*pt));
	struct jent *all;
	uint64_t extra = 0;
	size_t nall = 0;

	memset(&j, 0, sizeof(j));
	j.nt = ntab;
	j.k = o->top;
	for (unsigned i = 0; i < ntab; i++) {
		unsigned at = i;

		/* Insertion by decreasing size; ties keep worker order. */
		while (at > 0 && j.t[at - 1]->n < w[i].tab.n) {
			j.t[at] = j.t[at - 1];
			at--;
		}
		j.t[at] = &w[i].tab;
	}
	j.ctx.t = j.t[0];
	j.ctx.by = o->by;
	for (unsigned i = 0; i + 1 < ntab; i++) {
		j.mark[i] = hs_xcalloc(j.t[i]->n ? j.t[i]->n : 1, 1);
		extra += j.t[i]->n;
	}
	for (unsigned k = 0; k < threads; k++) {
		pt[k].j = &j;
		pt[k].heap = hs_xmalloc((j.k ? j.k : 1) * sizeof(*pt[k].heap));
		extra += j.k * sizeof(*pt[k].heap);
	}
	for (unsigned i = ntab; i-- > 0;) {
		size_t n = j.t[i]->n;
		unsigned started = 0;

		for (unsigned k = 0; k < threads; k++) {
			pt[k].i = i;
			pt[k].lo = n * k / threads;
			pt[k].hi = n * (k + 1) / threads;
		}
		for (unsigned k = 1; k < threads; k++) {
			if (pthread_create(&pt[k].th, NULL, join_main, &pt[k]))
				break;
			started = k;
		}
		/* Parts no thread took run here, after part 0. */
		join_main(&pt[0]);
		for (unsigned k = started + 1; k < threads; k++)
			join_main(&pt[k]);
		for (unsigned k = 1; k <= started; k++)
			pthread_join(pt[k].th, NULL);
	}
	res->exact = true;
	res->err_bound = 0;
	res->distinct_exact = true;
	for (unsigned i = 0; i < ntab; i++) {
		res->occurrences += j.t[i]->occurrences;
		res->string_bytes += j.t[i]->string_bytes;
	}
	for (unsigned k = 0; k < threads; k++) {
		res->distinct += pt[k].distinct;
		nall += pt[k].n;
	}
	all = hs_xmalloc((nall ? nall : 1) * sizeof(*all));
	nall = 0;
	for (unsigned k = 0; k < threads; k++) {
		memcpy(all + nall, pt[k].heap, pt[k].n * sizeof(*all));
		nall += pt[k].n;
		free(pt[k].heap);
	}
	extra += nall * sizeof(*all);
	qsort_r(all, nall, sizeof(*all), cmp_jrank, &j.ctx);
	if (nall > j.k)
		nall = j.k;
	res->top = hs_xcalloc(nall ? nall : 1, sizeof(*res->top));
	res->ntop = nall;
	for (size_t i = 0; i < nall; i++)
		join_item(&j, &all[i], unit, &res->top[i]);
	free(all);
	for (unsigned i = 0; i < ntab; i++)
		free(j.mark[i]);
	free(pt);
	*mem_peak += extra;
}

/* The caller's read_done, at most once a scan (o is the scan's own copy). */
static void read_done(const struct hs_str_opts *o)
{
	if (o->read_done)
		o->read_done(o->read_done_ud);
}

static void reset_workers(struct worker *w, unsigned jobs)
{
	for (unsigned i = 0; i < jobs; i++) {
		tab_release(&w[i].tab);
		w[i].scanned = w[i].unreadable = 0;
		memset(w[i].class_bytes, 0, sizeof(w[i].class_bytes));
	}
}

int hs_strings_scan(struct hs_target *t, const struct hs_str_ranges *r,
		    const struct hs_str_opts *o, struct hs_str_result *res)
{
	struct hs_str_opts defaults;
	struct pool pool;
	struct run run;
	struct worker *w = NULL;
	uint64_t t0 = hs_now_ns(), t1, seg_size, half, jobs_eff, bufs, budget, mem_peak;
	uint64_t hole_bytes = 0;
	size_t segs_alloc = 0;
	const struct tab *result;
	unsigned jobs_run;
	bool exact_ok, joined;
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
	/* Budgets.  Estimating pass: half for the merged table, the other
	 * half shared by the workers' tables, at least two shares so --jobs
	 * 1 and 2 agree.  Exact pass: the workers' tables get equal shares
	 * of what the buffers leave, one share kept for the final merge. */
	jobs_eff = o->jobs < 2 ? 2 : o->jobs;
	half = o->max_mem / 2;
	if (half / jobs_eff < o->chunk + o->max_len + (256u << 10))
		return -EINVAL;
	bufs = (uint64_t)o->jobs * (o->chunk + o->max_len);
	budget = o->max_mem - bufs;

	memset(&run, 0, sizeof(run));
	run.t = t;
	run.r = r;
	run.o = o;
	run.unit = o->enc == HS_STR_UTF16LE ? 2 : 1;
	run.seg_budget = half / jobs_eff - o->chunk - o->max_len;
	pthread_mutex_init(&run.mu, NULL);
	pthread_cond_init(&run.cv, NULL);

	/* Segments: the ranges' parts in each seg_size window that may hold
	 * data.  A hole (a core segment its file does not back, whatever
	 * size it claims) makes no segment: their number stays bounded by
	 * the data, not by the address space a hostile core describes. */
	seg_size = (uint64_t)o->chunk * HS_STR_SEG_CHUNKS;
	for (size_t i = 0; i < r->n; i++) {
		hs_addr_t a = r->v[i].start, ds, de;

		while (a < r->v[i].end) {
			hs_addr_t wend, b;

			if (hs_interrupted) {
				free(run.segs);
				pthread_mutex_destroy(&run.mu);
				pthread_cond_destroy(&run.cv);
				return -HS_E_INTERRUPTED;
			}
			if (hs_target_next_data(t, a, r->v[i].end, &ds, &de) < 0)
				ds = r->v[i].end;
			if (ds > a) {
				hole_bytes += ds - a;
				a = ds;
				if (a >= r->v[i].end)
					break;
			}
			wend = (a | (seg_size - 1)) + 1;
			b = wend;

			if (wend < a)
				wend = b = UINT64_MAX;
			if (b > r->v[i].end)
				b = r->v[i].end;
			if (run.nsegs && run.segs[run.nsegs - 1].end == wend) {
				run.segs[run.nsegs - 1].bytes += b - a;
			} else {
				HS_ALLOC_GROW(run.segs, run.nsegs + 1, segs_alloc);
				run.segs[run.nsegs++] = (struct seg){ a, wend, i, b - a };
			}
			run.total += b - a;
			a = b;
		}
	}

	/* Exact pass: the tables share two thirds of the budget; the final
	 * merge grows the largest by at most the others, which fit in the
	 * last third while they are merged. */
	pool.limit = budget / 3 * 2;
	pool.used = 0;
	w = hs_xcalloc(o->jobs, sizeof(*w));
	for (unsigned i = 0; i < o->jobs; i++) {
		w[i].run = &run;
		w[i].buf = hs_xmalloc(o->chunk);
		hs_str_scanner_init(&w[i].sc, o->enc, o->min_len, o->max_len, on_run,
				    &w[i]);
		tab_init(&w[i].tab, pool.limit, run.unit, o->max_len);
		w[i].tab.no_prune = true;
		w[i].tab.pool = &pool;
	}

	res->passes = 1;
	run.exact_pass = true;
	jobs_run = run_pass(&run, w);
	ret = run.err;
	mem_peak = 0;
	for (unsigned i = 0; i < o->jobs; i++)
		mem_peak += w[i].tab.mem_peak;
	t1 = hs_now_ns();
	joined = !ret && !run.overflow && o->jobs > 1 && o->jobs <= JOIN_MAX;
	/* The exact pass fitted (or failed): nothing more is read. */
	if (joined || ret)
		read_done(o);
	if (joined)
		join_exact(w, o->jobs, o->jobs, o, run.unit, &mem_peak, res);
	exact_ok = joined || (!ret && !run.overflow && merge_exact(&run, w, budget));
	if (exact_ok && !joined)
		read_done(o); /* merged in place, while still held */
	hs_log(HS_LOG_DEBUG, "strings: exact pass %.3f s, merge %.3f s",
	       (double)(t1 - t0) / 1e9, (double)(hs_now_ns() - t1) / 1e9);
	result = &w[0].tab;
	if (exact_ok && !joined)
		mem_peak = w[0].tab.mem_peak;
	if (!ret && !exact_ok) {
		hs_log(HS_LOG_DEBUG, "strings: distinct strings exceed --max-mem: "
		       "counting again with estimates");
		reset_workers(w, o->jobs);
		run.exact_pass = false;
		run.next_seg = run.turn = 0;
		run.done = 0;
		run.abort = run.overflow = 0;
		tab_init(&run.global, half, run.unit, o->max_len);
		res->passes = 2;
		jobs_run = run_pass(&run, w);
		ret = run.err;
		result = &run.global;
		read_done(o);
		if (run.global.mem_peak + (uint64_t)o->jobs * run.worker_peak > mem_peak)
			mem_peak = run.global.mem_peak + (uint64_t)o->jobs * run.worker_peak;
	}

	res->opts = *o;
	res->opts.progress = NULL;
	res->opts.progress_ud = NULL;
	res->opts.where = NULL;
	res->where_known = o->where != NULL;
	res->where_approximate = o->where && o->where->approximate;
	res->where_python = o->where && o->where->python;
	res->where_heap_problems = o->where ? o->where->heap_problems : 0;
	res->jobs = jobs_run;
	res->nsegments = (unsigned)run.nsegs;
	res->nranges = r->n;
	/* The holes skipped above, counted as the stream counts the ones
	 * it meets. */
	res->unreadable += hole_bytes;
	if (hole_bytes) {
		__atomic_add_fetch(&t->unreadable, hole_bytes, __ATOMIC_RELAXED);
		__atomic_or_fetch(&t->state, HS_TSTATE_PARTIAL, __ATOMIC_RELAXED);
	}
	for (unsigned i = 0; i < o->jobs; i++) {
		res->bytes_scanned += w[i].scanned;
		res->unreadable += w[i].unreadable;
		for (unsigned c = 0; c < HS_CLASS_N; c++)
			res->class_bytes[c] += w[i].class_bytes[c];
		hs_str_scanner_release(&w[i].sc);
		free(w[i].buf);
	}
	res->mem_peak = mem_peak + bufs;
	if (!ret && !joined)
		build_result(result, o, res);
	reset_workers(w, o->jobs);
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
