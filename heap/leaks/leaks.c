/*
 * hs_leaks_run: reachability over the glibc heap (doc/leaks.md).
 *
 * 1. Index every chunk (index.c).
 * 2. Roots: every thread's general registers, each thread's stack from its
 *    stack pointer to the end of its mapping (static TLS and the thread
 *    descriptor sit at the top of a thread's stack mapping), and every
 *    other readable, writable mapping that is not malloc's: modules' .data
 *    and .bss, the anonymous mappings after them, ld.so's own allocations
 *    (the main thread's TLS and DTV), mappings the program made itself.
 *    The heap segments, the mmapped chunks and glibc's main_arena and mp_
 *    are never roots.
 * 3. Mark (LK_PH_MARK), as memcheck: a start pointer from a root or from a
 *    chunk reached that way marks "definite" (MDEF); any other pointer
 *    into a chunk's user bytes marks it reached (MANY).  A chunk first
 *    reached "possibly" and later definitely is scanned again.
 * 4. Leaked = in use, not reached.  One sweep over them (ref_pass, two
 *    threads) sets REF on every leaked chunk another leaked chunk points
 *    into, OUT on every leaked chunk that points into another, and keeps
 *    those pointers as edges while they fit the budget.
 * 5. memcheck's "definitely lost": the unreferenced chunks, closed over
 *    (close_edges, or LK_PH_CLOSE reading the chunks again when the edges
 *    did not fit) to mark what they reach IND; then, in address order,
 *    each leaked chunk still not visited heads a cycle: its closure marks
 *    everything it reaches IND (an earlier head included).  Definite =
 *    leaked and not IND: one per source component of the leaked graph,
 *    which does not depend on the order.
 * 6. Groups: one linear pass over the bitmaps; only C++-typed chunks have
 *    their first word read again.
 */
#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- memcheck's heuristics ---- */

/* Reads n bytes of the target at a: from the current window when it holds
 * them. */
static bool peek(struct lk *L, hs_addr_t a, void *out, size_t n)
{
	if (L->wlen && a >= L->wlo && a + n <= L->wlo + L->wlen) {
		memcpy(out, L->wbuf + (a - L->wlo), n);
		return true;
	}
	return hs_target_read_full(L->t, a, out, n) == 0;
}

bool lk_heuristic(struct lk *L, uint64_t r, uint64_t v)
{
	hs_addr_t user = lk_addr(L, r) + 16;
	uint64_t size, usable, lo, off = v - user, w[3];
	bool mi = !(v & 7) && L->vt && L->vt->n;

	if (off != 8 && off != 24 && !mi)
		return false; /* most interior pointers: nothing to read */
	size = lk_size(L, r);
	/* The requests that give this chunk: glibc rounds request + 8 up
	 * to 16 (32 at least); an mmapped chunk's request + 16 up to a page. */
	if (r & LK_MM) {
		usable = size - 16;
		lo = usable > 4095 ? usable - 4095 : 0;
	} else {
		usable = size - 8;
		lo = size <= 32 ? 0 : usable - 15;
	}
	if (off == 8 || off == 24) {
		if (!peek(L, user, w, sizeof(w)))
			return false;
		if (off == 24 && w[0] <= w[1] && w[1] < usable &&
		    24 + w[1] + 1 >= lo && 24 + w[1] + 1 <= usable)
			return true; /* stdstring: length, capacity, refcount, chars */
		if (off == 8 && w[0] > 0 && w[0] < usable) {
			if (w[0] + 8 >= lo && w[0] + 8 <= usable)
				return true; /* length64 */
			for (uint64_t req = lo > 9 ? lo : 9; req <= usable; req++)
				if ((req - 8) % w[0] == 0)
					return true; /* newarray */
		}
	}
	if (mi) {
		uint64_t first, inner;

		if (peek(L, user, &first, 8) && peek(L, v, &inner, 8) &&
		    hs_vtables_find(L->vt, first) >= 0 && hs_vtables_find(L->vt, inner) >= 0)
			return true; /* multiple inheritance */
	}
	return false;
}

/* ---- roots ---- */

static int stream_cb(void *ud, hs_addr_t addr, const void *data, size_t len)
{
	struct lk *L = ud;
	const unsigned char *p = data;
	size_t skip = (size_t)((8 - (addr & 7)) & 7);

	if (skip >= len)
		return 0;
	for (size_t i = skip; i + 8 <= len; i += 8) {
		uint64_t v, r;
		bool st = false;

		memcpy(&v, p + i, 8);
		if (!lk_maybe_chunk(L, v))
			continue;
		r = lk_lookup(L, v, &st);
		if (r == LK_NONE)
			continue;
		if (!st)
			st = lk_heuristic(L, r, v);
		lk_mark(L, r, st);
	}
	return hs_interrupted ? -HS_E_INTERRUPTED : 0;
}

/* [lo, hi) minus the heap's own memory, streamed as roots. */
static int scan_root(struct lk *L, hs_addr_t lo, hs_addr_t hi, struct hs_leaks_result *out)
{
	struct hs_glibc_heap *h = L->h;

	while (lo < hi) {
		hs_addr_t cut_lo = hi, cut_hi = hi;
		uint64_t unread = 0;
		int ret;

		/* The first piece of heap memory in [lo, hi). */
		for (size_t i = 0; i < h->narenas; i++)
			for (size_t j = 0; j < h->arenas[i].nsegs; j++) {
				const struct hs_glibc_seg *s = &h->arenas[i].segs[j];
				hs_addr_t a = s->heap, b = s->map_end > s->end ? s->map_end : s->end;

				if (b > lo && a < cut_lo) {
					cut_lo = a > lo ? a : lo;
					cut_hi = b;
				}
			}
		for (size_t i = 0; i < L->nmm; i++) {
			hs_addr_t a = L->mm[i].addr, b = a + L->mm[i].size;

			if (b > lo && a < cut_lo) {
				cut_lo = a > lo ? a : lo;
				cut_hi = b;
			}
		}
		/* malloc's own state in libc's data: main_arena's top, bins
		 * and fastbins point at chunk headers, i.e. into the last word
		 * of the chunk before each free chunk; mp_ at the heap start. */
		for (size_t i = 0; i < 2; i++) {
			hs_addr_t a = i ? h->mp : h->main_arena;
			hs_addr_t b = a + (i ? h->layout->mp_size : h->layout->ms_size);

			if (a && b > lo && a < cut_lo) {
				cut_lo = a > lo ? a : lo;
				cut_hi = b;
			}
		}
		if (cut_lo > lo) {
			ret = hs_target_stream(L->t, lo, cut_lo, L->wbuf, LK_WIN_BYTES,
					       stream_cb, L, &unread);
			L->unreadable += unread;
			out->root_bytes += cut_lo - lo - unread;
			out->root_ranges++;
			if (ret)
				return ret;
		}
		lo = cut_hi > cut_lo ? cut_hi : hi;
	}
	return 0;
}

static int scan_roots(struct lk *L, unsigned flags, struct hs_leaks_result *out)
{
	struct hs_target *t = L->t;
	int ret;

	for (size_t i = 0; i < t->nthreads; i++) {
		const struct hs_thread *th = &t->threads[i];

		if (!th->has_regs)
			continue;
		out->root_threads++;
		for (unsigned k = 0; k < HS_REG_N; k++) {
			uint64_t v = th->regs.r[k], r;
			bool st = false;

			if (!lk_maybe_chunk(L, v))
				continue;
			r = lk_lookup(L, v, &st);
			if (r == LK_NONE)
				continue;
			if (!st)
				st = lk_heuristic(L, r, v);
			lk_mark(L, r, st);
		}
	}
	for (size_t i = 0; i < t->maps.n; i++) {
		const struct hs_map *m = &t->maps.v[i];
		hs_addr_t lo = m->start;

		if ((m->perms & (HS_PERM_R | HS_PERM_W)) != (HS_PERM_R | HS_PERM_W))
			continue;
		if (m->cls == HS_CLASS_HEAP || m->cls == HS_CLASS_ARENA ||
		    (m->flags & HS_MAP_SPECIAL))
			continue;
		if (m->cls == HS_CLASS_STACK && m->stack_tid && !(flags & HS_LEAKS_WHOLE_STACKS)) {
			for (size_t j = 0; j < t->nthreads; j++)
				if (t->threads[j].tid == m->stack_tid && t->threads[j].sp &&
				    t->threads[j].sp >= m->start && t->threads[j].sp < m->end)
					lo = t->threads[j].sp & ~7ull;
		}
		ret = scan_root(L, lo, m->end, out);
		if (ret)
			return ret;
	}
	return 0;
}

/* ---- leaked chunks ---- */

/*
 * The sweep over leaked chunks (REF and OUT bits, edges), on up to two
 * threads: each takes half of the windows, with its own buffers and its
 * own edge list (concatenated after, so the edges stay in source order).
 * REF bits land anywhere and are set atomically; OUT and TYPED bits are
 * in the thread's own windows (windows are whole bitmap words).
 */
struct refw {
	struct lk *L;
	uint64_t win_lo, win_hi;
	bool mm;                  /* also the mmapped chunks (the last worker) */
	unsigned char *buf, *scratch;
	uint32_t (*edges)[2];
	size_t n, a, max;
	bool over;
	uint64_t scanned, unreadable;
	int ret;
	pthread_t th;
};

static void refw_edge(struct refw *w, uint64_t from, uint64_t to)
{
	if (w->over)
		return;
	if (w->n == w->a) {
		size_t n = w->a ? w->a * 2 : 4096;

		if (n > w->max)
			n = w->max;
		if (n <= w->n) {
			w->over = true;
			return;
		}
		w->edges = hs_xrealloc(w->edges, n * sizeof(*w->edges));
		w->a = n;
	}
	w->edges[w->n][0] = lk_ref32(w->L, from);
	w->edges[w->n][1] = lk_ref32(w->L, to);
	w->n++;
}

/* A bit of the chunk being swept: its own bitmap words are this
 * thread's, but an mmapped chunk's flags take the other thread's REF too. */
static void refw_put(struct lk *L, uint64_t ref, unsigned bit)
{
	if (ref & LK_MM)
		__atomic_fetch_or(&L->mm[ref & ~LK_MM].f, bit, __ATOMIC_RELAXED);
	else
		lk_put(L, ref, bit);
}

/* Scans one leaked chunk's bytes (a piece of them: first = its start). */
static bool refw_scan(struct refw *w, uint64_t ref, const unsigned char *p, size_t len,
		      bool first)
{
	struct lk *L = w->L;
	bool out = false;

	if (first && L->want_types && len >= 8) {
		uint64_t v0;

		memcpy(&v0, p, 8);
		if (hs_vtables_find(L->vt, v0) >= 0)
			refw_put(L, ref, LK_TYPED);
	}
	for (size_t i = 0; i + 8 <= len; i += 8) {
		uint64_t v, r;
		bool st = false;

		memcpy(&v, p + i, 8);
		if (!lk_maybe_chunk(L, v))
			continue;
		r = lk_lookup(L, v, &st);
		if (r == LK_NONE || r == ref)
			continue;
		if (r & LK_MM ? __atomic_load_n(&L->mm[r & ~LK_MM].f, __ATOMIC_RELAXED) & LK_MANY :
				lk_bit(L->many, r))
			continue;
		if (r & LK_MM)
			__atomic_fetch_or(&L->mm[r & ~LK_MM].f, (unsigned)LK_SDEF, __ATOMIC_RELAXED);
		else
			__atomic_fetch_or(&L->sdef[r >> 6], 1ull << (r & 63), __ATOMIC_RELAXED);
		out = true;
		refw_edge(w, ref, r);
	}
	return out;
}

/* Chunk ref's user bytes [a, a + len), from the window buffer or read. */
static int refw_chunk(struct refw *w, uint64_t ref, hs_addr_t a, uint64_t len,
		      hs_addr_t blo, size_t blen)
{
	bool out = false, first = true;

	if (blen && a >= blo && a + len <= blo + blen) {
		out = refw_scan(w, ref, w->buf + (a - blo), (size_t)len, true);
		w->scanned += len;
	} else {
		while (len) {
			size_t want = len < LK_SCRATCH ? (size_t)len : LK_SCRATCH, got = 0;
			int ret = hs_target_read(w->L->t, a, w->scratch, want, &got);

			if (ret == -ESRCH)
				return ret;
			if (ret < 0 || got < 8) {
				uint64_t skip = 4096 - (a & 4095);

				if (skip > len)
					skip = len;
				w->unreadable += skip;
				a += skip;
				len -= skip;
				first = false;
				continue;
			}
			got &= ~(size_t)7;
			out |= refw_scan(w, ref, w->scratch, got, first);
			w->scanned += got;
			first = false;
			a += got;
			len -= got;
		}
	}
	if (out)
		refw_put(w->L, ref, LK_SANY); /* OUT */
	return 0;
}

static void *refw_main(void *arg)
{
	struct refw *w = arg;
	struct lk *L = w->L;

	for (uint64_t win = w->win_lo; win < w->win_hi && !w->ret; win++) {
		const struct lk_seg *s = lk_seg_of_gran(L, win * LK_WIN_GRANS);
		uint64_t g0 = win * LK_WIN_GRANS, g_end = s->base + s->ngran;
		uint64_t g1 = g0 + LK_WIN_GRANS < g_end ? g0 + LK_WIN_GRANS : g_end;
		hs_addr_t blo = s->lo + ((g0 - s->base) << LK_GRAN_SHIFT);
		size_t blen = 0;
		unsigned n = 0;
		uint64_t nw, nbits;

		if (g0 >= g_end)
			continue;
		for (uint64_t k = g0 / 64; k < (g1 + 63) / 64 && n < 8; k++)
			n += (unsigned)__builtin_popcountll(L->inuse[k] & ~L->many[k]);
		if (!n)
			continue;
		if (n >= 8) {
			hs_addr_t bhi = blo + LK_WIN_BYTES;

			if (bhi > s->hi + 8)
				bhi = s->hi + 8;
			if (hs_target_read(L->t, blo, w->buf, (size_t)(bhi - blo), &blen) == -ESRCH) {
				w->ret = -ESRCH;
				break;
			}
		}
		nw = g0 / 64;
		nbits = L->start[nw];
		for (uint64_t k = g0 / 64; k < (g1 + 63) / 64; k++) {
			uint64_t m = L->inuse[k] & ~L->many[k];

			while (m) {
				uint64_t b = (unsigned)__builtin_ctzll(m), g = k * 64 + b, next;
				hs_addr_t a = s->lo + ((g - s->base) << LK_GRAN_SHIFT);
				int ret;

				m &= m - 1;
				next = lk_next_start(L, k, (unsigned)b, g_end, &nw, &nbits);
				/* user bytes: to the next chunk's size field */
				ret = refw_chunk(w, g, a + 16, ((next - g) << LK_GRAN_SHIFT) - 8, blo, blen);
				if (ret) {
					w->ret = ret;
					break;
				}
			}
		}
		if (hs_interrupted)
			w->ret = -HS_E_INTERRUPTED;
	}
	for (size_t i = 0; w->mm && !w->ret && i < L->nmm; i++)
		if (!(__atomic_load_n(&L->mm[i].f, __ATOMIC_RELAXED) & LK_MANY))
			w->ret = refw_chunk(w, LK_MM | i, L->mm[i].addr + 16, L->mm[i].size - 16, 0, 0);
	return NULL;
}

static int ref_pass(struct lk *L)
{
	struct refw w[2];
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned nw = ncpu > 1 && L->nwin >= 2 ? 2 : 1;
	int ret = 0;

	memset(w, 0, sizeof(w));
	for (unsigned i = 0; i < nw; i++) {
		w[i].L = L;
		w[i].win_lo = L->nwin * i / nw;
		w[i].win_hi = L->nwin * (i + 1) / nw;
		w[i].mm = i == nw - 1;
		w[i].buf = i ? hs_xmalloc(LK_WIN_BYTES + 16) : L->wbuf;
		w[i].scratch = i ? hs_xmalloc(LK_SCRATCH) : L->scratch;
		w[i].max = L->max_edges / nw;
	}
	if (nw > 1 && pthread_create(&w[1].th, NULL, refw_main, &w[1]) != 0) {
		/* No thread: one worker does it all. */
		w[0].win_hi = L->nwin;
		w[0].mm = true;
		w[0].max = L->max_edges;
		free(w[1].buf);
		free(w[1].scratch);
		nw = 1;
	}
	refw_main(&w[0]);
	if (nw > 1)
		pthread_join(w[1].th, NULL);
	for (unsigned i = 0; i < nw; i++) {
		if (w[i].ret && !ret)
			ret = w[i].ret;
		L->scanned_bytes += w[i].scanned;
		L->unreadable += w[i].unreadable;
		if (w[i].over)
			L->edges_over = true;
	}
	if (!L->edges_over) {
		L->nedges = w[0].n + (nw > 1 ? w[1].n : 0);
		L->edges = hs_xrealloc(w[0].edges, (L->nedges ? L->nedges : 1) * sizeof(*L->edges));
		w[0].edges = NULL;
		if (nw > 1 && w[1].n)
			memcpy(L->edges + w[0].n, w[1].edges, w[1].n * sizeof(*L->edges));
	}
	free(w[0].edges);
	if (nw > 1) {
		free(w[1].edges);
		free(w[1].buf);
		free(w[1].scratch);
	}
	return ret;
}

static bool leaked_ref(const struct lk *L, uint64_t r)
{
	return lk_get(L, r, LK_SANY) && !lk_get(L, r, LK_MANY);
}

/* ---- closures over the recorded edges ---- */

struct walk {
	uint32_t *stack;
	size_t sp, cap;
	size_t *ewin;             /* nwin + 2 slice starts, see edge_range */
};

/* The edges of src: a binary search within its window's slice (ewin[k]
 * is the first edge whose source is in window k or later; mmapped chunks
 * come after every window). */
static void edge_range(const struct lk *L, const size_t *ewin, uint32_t src,
		       size_t *lo, size_t *hi)
{
	uint64_t k = src < L->nwords * 64 ? src / LK_WIN_GRANS : L->nwin;
	size_t a = ewin[k], b = ewin[k + 1];

	while (a < b) {
		size_t mid = (a + b) / 2;

		if (L->edges[mid][0] < src)
			a = mid + 1;
		else
			b = mid;
	}
	*lo = a;
	while (a < L->nedges && L->edges[a][0] == src)
		a++;
	*hi = a;
}

static void visit_push(struct lk *L, struct walk *w, uint64_t r)
{
	if (lk_get(L, r, LK_SANY) && w->sp < w->cap)
		w->stack[w->sp++] = lk_ref32(L, r);
}

/* Everything the stack reaches: IND (but the leader), VIS. */
static int edge_closure(struct lk *L, struct walk *w)
{
	uint64_t steps = 0;

	while (w->sp) {
		uint32_t src = w->stack[--w->sp];
		size_t lo, hi;

		edge_range(L, w->ewin, src, &lo, &hi);
		for (size_t e = lo; e < hi; e++) {
			uint64_t d = lk_ref64(L, L->edges[e][1]);

			if (L->edges[e][1] == src || d == L->leader)
				continue;
			lk_put(L, d, LK_IND);
			if (!lk_get(L, d, LK_MDEF)) {
				lk_put(L, d, LK_MDEF); /* VIS */
				visit_push(L, w, d);
			}
		}
		if (!(++steps & 0xfffff) && hs_interrupted)
			return -HS_E_INTERRUPTED;
	}
	return 0;
}

static int close_edges(struct lk *L)
{
	struct walk w = { NULL, 0, 0, NULL };
	size_t e = 0;
	int ret;

	w.ewin = hs_xmalloc((L->nwin + 2) * sizeof(*w.ewin));
	for (uint64_t k = 0; k <= L->nwin; k++) {
		while (e < L->nedges && L->edges[e][0] < k * LK_WIN_GRANS &&
		       L->edges[e][0] < L->nwords * 64)
			e++;
		w.ewin[k] = e;
	}
	w.ewin[L->nwin + 1] = L->nedges;

	/* Each chunk with OUT is pushed at most once (when it turns VIS). */
	for (uint64_t i = 0; i < L->nwords; i++)
		w.cap += (size_t)__builtin_popcountll(L->sany[i] & ~L->many[i] & L->inuse[i]);
	for (size_t i = 0; i < L->nmm; i++)
		w.cap += (L->mm[i].f & (LK_SANY | LK_MANY)) == LK_SANY;
	w.stack = hs_xmalloc((w.cap ? w.cap : 1) * sizeof(*w.stack));
	L->leader = LK_NONE;
	for (uint64_t i = 0; i < L->nwords; i++) {
		uint64_t m = L->inuse[i] & ~L->many[i] & ~L->sdef[i] & L->sany[i];

		L->mdef[i] |= m;
		while (m) {
			w.stack[w.sp++] = (uint32_t)(i * 64 + (unsigned)__builtin_ctzll(m));
			m &= m - 1;
		}
	}
	for (size_t i = 0; i < L->nmm; i++)
		if ((L->mm[i].f & (LK_MANY | LK_SDEF | LK_SANY)) == LK_SANY) {
			L->mm[i].f |= LK_MDEF;
			w.stack[w.sp++] = lk_ref32(L, LK_MM | i);
		}
	ret = edge_closure(L, &w);
	/* Cycles no unreferenced chunk reaches: address order. */
	for (uint64_t i = 0; !ret && i < L->nwords; i++) {
		uint64_t m;

		while (!ret && (m = L->inuse[i] & ~L->many[i] & L->sdef[i] & ~L->mdef[i])) {
			uint64_t g = i * 64 + (unsigned)__builtin_ctzll(m);

			lk_set(L->mdef, g);
			L->leader = g;
			visit_push(L, &w, g);
			ret = edge_closure(L, &w);
		}
	}
	for (size_t i = 0; !ret && i < L->nmm; i++) {
		if ((L->mm[i].f & (LK_MANY | LK_SDEF | LK_MDEF)) != LK_SDEF)
			continue;
		L->mm[i].f |= LK_MDEF;
		L->leader = LK_MM | i;
		visit_push(L, &w, LK_MM | i);
		ret = edge_closure(L, &w);
	}
	L->leader = LK_NONE;
	free(w.stack);
	free(w.ewin);
	return ret;
}

static int close_pass(struct lk *L)
{
	bool any = false;
	int ret;

	for (uint64_t w = 0; w < L->nwords && !any; w++)
		any = (L->sany[w] & ~L->many[w] & L->inuse[w]) != 0;
	for (size_t i = 0; i < L->nmm && !any; i++)
		any = leaked_ref(L, LK_MM | i);
	if (!any)
		return 0; /* no leaked chunk points to another: all are heads */
	L->ind = hs_xcalloc(L->nwords ? L->nwords : 1, sizeof(uint64_t));
	if (!L->edges_over)
		return close_edges(L);
	/* Too many edges to keep: read the chunks again. */
	L->phase = LK_PH_CLOSE;
	L->leader = LK_NONE;
	/* Heads: unreferenced leaked chunks that point to other leaks. */
	for (uint64_t w = 0; w < L->nwords; w++) {
		uint64_t m = L->inuse[w] & ~L->many[w] & ~L->sdef[w] & L->sany[w];

		if (!m)
			continue;
		L->mdef[w] |= m;
		L->dirty[(w / LK_WIN_WORDS) >> 6] |= 1ull << ((w / LK_WIN_WORDS) & 63);
	}
	for (size_t i = 0; i < L->nmm; i++)
		if (!(L->mm[i].f & (LK_MANY | LK_SDEF)) && (L->mm[i].f & LK_SANY)) {
			L->mm[i].f |= LK_MDEF;
			L->mm_dirty = true;
		}
	ret = lk_run(L);
	if (ret)
		return ret;
	/* Cycles: leaked, referenced, not visited; address order. */
	for (uint64_t w = 0; w < L->nwords; w++) {
		uint64_t m;

		while ((m = L->inuse[w] & ~L->many[w] & L->sdef[w] & ~L->mdef[w])) {
			uint64_t g = w * 64 + (unsigned)__builtin_ctzll(m);

			lk_set(L->mdef, g);
			L->leader = g;
			if (lk_bit(L->sany, g)) {
				lk_schedule(L, g);
				ret = lk_run(L);
				if (ret)
					return ret;
			}
			L->leader = LK_NONE;
		}
	}
	for (size_t i = 0; i < L->nmm; i++) {
		uint64_t r = LK_MM | i;

		if ((L->mm[i].f & (LK_MANY | LK_SDEF | LK_MDEF)) != LK_SDEF)
			continue;
		L->mm[i].f |= LK_MDEF;
		L->leader = r;
		if (L->mm[i].f & LK_SANY) {
			lk_schedule(L, r);
			ret = lk_run(L);
			if (ret)
				return ret;
		}
		L->leader = LK_NONE;
	}
	return 0;
}

/* ---- groups ---- */

#define SMALL_SIZES 4096          /* untyped groups of sizes < 64 KiB */

struct gtab {
	int32_t small[SMALL_SIZES]; /* size >> 4 -> group + 1, untyped */
	struct hs_leaks_group *v;
	size_t n, cap;            /* cap: power of two, slots of idx */
	int32_t *idx;             /* -1 empty */
	size_t max;
	bool capped;
	/* per group: samples by category, before merging */
	hs_addr_t (*smp)[3][HS_LEAKS_SAMPLES];
	unsigned (*nsmp)[3];
};

static size_t ghash(uint64_t size, int type, size_t cap)
{
	uint64_t k = (size >> 4) * 0x9e3779b97f4a7c15ull ^ ((uint64_t)(uint32_t)type * 0xff51afd7ed558ccdull);

	return (size_t)(k >> 17) & (cap - 1);
}

static size_t gfind_slow(struct gtab *g, uint64_t size, int type);

static inline size_t gfind(struct gtab *g, uint64_t size, int type)
{
	size_t k;

	if (type >= 0 || (size >> 4) >= SMALL_SIZES)
		return gfind_slow(g, size, type);
	if (g->small[size >> 4])
		return (size_t)g->small[size >> 4] - 1;
	k = gfind_slow(g, size, type);
	if (g->v[k].size == size && g->v[k].type == type)
		g->small[size >> 4] = (int32_t)k + 1;
	return k;
}

static size_t gfind_slow(struct gtab *g, uint64_t size, int type)
{
	size_t i;

	if (!g->cap) {
		g->cap = 1024;
		g->idx = hs_xmalloc(g->cap * sizeof(*g->idx));
		memset(g->idx, 0xff, g->cap * sizeof(*g->idx));
	}
	for (i = ghash(size, type, g->cap);; i = (i + 1) & (g->cap - 1)) {
		int32_t k = g->idx[i];

		if (k < 0)
			break;
		if (g->v[k].size == size && g->v[k].type == type)
			return (size_t)k;
	}
	if (g->n >= g->max) {
		/* The catch-all group: size 0, no type. */
		g->capped = true;
		if (size != 0 || type != -1)
			return gfind_slow(g, 0, -1);
	}
	g->v = hs_xrealloc(g->v, (g->n + 1) * sizeof(*g->v));
	g->smp = hs_xrealloc(g->smp, (g->n + 1) * sizeof(*g->smp));
	g->nsmp = hs_xrealloc(g->nsmp, (g->n + 1) * sizeof(*g->nsmp));
	memset(&g->v[g->n], 0, sizeof(g->v[g->n]));
	memset(g->nsmp[g->n], 0, sizeof(g->nsmp[g->n]));
	g->v[g->n].size = size;
	g->v[g->n].type = type;
	g->idx[i] = (int32_t)g->n;
	g->n++;
	if (g->n * 2 > g->cap) {
		size_t ncap = g->cap * 2;

		free(g->idx);
		g->idx = hs_xmalloc(ncap * sizeof(*g->idx));
		memset(g->idx, 0xff, ncap * sizeof(*g->idx));
		g->cap = ncap;
		for (size_t k = 0; k < g->n; k++) {
			size_t j = ghash(g->v[k].size, g->v[k].type, ncap);

			while (g->idx[j] >= 0)
				j = (j + 1) & (ncap - 1);
			g->idx[j] = (int32_t)k;
		}
	}
	return g->n - 1;
}

static void add(struct hs_leaks_count *c, uint64_t size)
{
	c->count++;
	c->bytes += size;
}

struct acct {
	struct lk *L;
	struct gtab g;
	struct hs_leaks_result *out;
	bool ind;                 /* L->ind was computed */
};

static void account(struct acct *A, uint64_t r, hs_addr_t addr, uint64_t size, int type)
{
	struct lk *L = A->L;
	struct hs_leaks_result *o = A->out;
	size_t gi = gfind(&A->g, size, type);
	struct hs_leaks_group *g = &A->g.v[gi];
	unsigned cat;

	add(&o->inuse, size);
	add(&g->inuse, size);
	if (lk_get(L, r, LK_MANY)) {
		add(&o->anchored, size);
		add(&g->anchored, size);
		if (!lk_get(L, r, LK_MDEF)) {
			add(&o->possible, size);
			add(&g->possible, size);
		}
		cat = 2;
	} else {
		add(&o->leaked, size);
		add(&g->leaked, size);
		if (!lk_get(L, r, LK_SDEF)) {
			add(&o->unreferenced, size);
			add(&g->unreferenced, size);
		}
		if (!A->ind || !lk_get(L, r, LK_IND)) {
			add(&o->definite, size);
			add(&g->definite, size);
			if (lk_get(L, r, LK_SDEF))
				o->leak_cycles++; /* a cycle's head */
			cat = 0;
		} else {
			add(&o->indirect, size);
			cat = 1;
		}
	}
	if (A->g.nsmp[gi][cat] < HS_LEAKS_SAMPLES)
		A->g.smp[gi][cat][A->g.nsmp[gi][cat]++] = addr;
}

/*
 * Every in-use chunk once, in address order, with its first word read
 * when need(L, ref) says so (window reads where many are needed).
 */
static bool need_typed(const struct lk *L, uint64_t ref)
{
	return lk_get(L, ref, LK_TYPED);
}

static void acct_cb(void *ud, uint64_t ref, hs_addr_t addr, uint64_t size,
		    bool have, uint64_t word)
{
	struct acct *A = ud;

	account(A, ref, addr, size, have ? hs_vtables_find(A->L->vt, word) : -1);
}

static int cmp_group(const void *x, const void *y)
{
	const struct hs_leaks_group *a = x, *b = y;

	if (a->leaked.bytes != b->leaked.bytes)
		return a->leaked.bytes < b->leaked.bytes ? 1 : -1;
	if (a->anchored.bytes != b->anchored.bytes)
		return a->anchored.bytes < b->anchored.bytes ? 1 : -1;
	if (a->size != b->size)
		return a->size < b->size ? -1 : 1;
	return a->type < b->type ? -1 : a->type > b->type;
}

/* The most frequent printable run (6+ characters: shorter ones are mostly
 * pieces of pointers and numbers) in the sample chunks, counted once per
 * chunk. */
static void group_string(struct lk *L, struct hs_leaks_group *g)
{
	char cand[HS_LEAKS_SAMPLES * 8][sizeof(g->string)];
	unsigned hits[HS_LEAKS_SAMPLES * 8], last[HS_LEAKS_SAMPLES * 8];
	size_t nc = 0;
	unsigned looked = 0;

	for (unsigned k = 0; k < g->nsamples; k++) {
		unsigned char buf[256];
		uint64_t len = g->size > 16 ? g->size - 8 : 0;
		size_t got = 0, run = 0;

		if (len > sizeof(buf))
			len = sizeof(buf);
		if (hs_target_read(L->t, g->samples[k] + 16, buf, (size_t)len, &got) < 0)
			continue;
		looked++;
		for (size_t i = 0; i <= got; i++) {
			bool pr = i < got && buf[i] >= 0x20 && buf[i] < 0x7f;

			if (pr) {
				run++;
				continue;
			}
			if (run >= 6) {
				char s[sizeof(g->string)];
				size_t n = run < sizeof(s) - 1 ? run : sizeof(s) - 1;
				size_t j;

				memcpy(s, buf + i - run, n);
				s[n] = '\0';
				for (j = 0; j < nc; j++)
					if (!strcmp(cand[j], s))
						break;
				if (j < nc) {
					if (last[j] != k + 1) {
						hits[j]++;
						last[j] = k + 1;
					}
				} else if (nc < HS_ARRAY_SIZE(cand)) {
					memcpy(cand[nc], s, n + 1);
					hits[nc] = 1;
					last[nc++] = k + 1;
				}
			}
			run = 0;
		}
	}
	g->string_of = looked;
	for (size_t j = 0; j < nc; j++)
		if (hits[j] > g->string_hits ||
		    (hits[j] == g->string_hits && strlen(cand[j]) > strlen(g->string))) {
			g->string_hits = hits[j];
			memcpy(g->string, cand[j], sizeof(g->string));
		}
}

int hs_leaks_run(struct hs_glibc_heap *h, const struct hs_leaks_opts *opts,
		 struct hs_leaks_result *out)
{
	struct hs_leaks_opts o = { 0 };
	struct lk L;
	struct acct A;
	uint64_t t0;
	int ret;

	memset(out, 0, sizeof(*out));
	memset(&L, 0, sizeof(L));
	memset(&A, 0, sizeof(A));
	if (opts)
		o = *opts;
	if (!o.max_mem)
		o.max_mem = 256ull << 20;
	if (!o.max_groups)
		o.max_groups = 65536;
	if (!o.string_groups)
		o.string_groups = 20;
	if (!h->layout || !h->narenas)
		return -HS_E_UNSUPPORTED;
	L.h = h;
	L.vt = o.vtables;
	t0 = hs_now_ns();
	ret = lk_build(&L, o.max_mem, o.vtables && o.vtables->n);
	if (ret)
		goto out;
	out->index_bytes = L.nwords * 8 * (L.typed ? 8 : 7) + L.nwords * 4 + L.nwin * 4;
	for (size_t i = 0; i < L.nsegs; i++)
		out->heap_bytes += L.segs[i].hi - L.segs[i].lo;
	out->index_ns = hs_now_ns() - t0;

	t0 = hs_now_ns();
	L.phase = LK_PH_MARK;
	ret = scan_roots(&L, o.flags, out);
	if (!ret)
		ret = lk_run(&L);
	out->mark_ns = hs_now_ns() - t0;
	if (ret)
		goto out;

	t0 = hs_now_ns();
	{
		/* Edges get what the index leaves of the budget (and half of it:
		 * growing them copies). */
		uint64_t used = out->index_bytes + LK_WIN_BYTES + LK_SCRATCH + LK_STACK * 8;

		L.max_edges = used < o.max_mem ? (size_t)((o.max_mem - used) / 2 / 8) : 0;
		if (o.flags & HS_LEAKS_NO_EDGES)
			L.max_edges = 0;
	}
	ret = ref_pass(&L);
	if (!ret)
		ret = close_pass(&L);
	out->leaked_ns = hs_now_ns() - t0;
	if (ret)
		goto out;

	t0 = hs_now_ns();
	A.L = &L;
	A.out = out;
	A.ind = L.ind != NULL;
	A.g.max = o.max_groups;
	ret = lk_for_each_inuse(&L, L.typed ? need_typed : NULL, acct_cb, &A);
	if (ret)
		goto out;
	/* Samples: definite leaks first, then the other leaked, then anchored. */
	for (size_t i = 0; i < A.g.n; i++) {
		struct hs_leaks_group *g = &A.g.v[i];

		for (unsigned c = 0; c < 3; c++)
			for (unsigned k = 0; k < A.g.nsmp[i][c] && g->nsamples < HS_LEAKS_SAMPLES; k++)
				g->samples[g->nsamples++] = A.g.smp[i][c][k];
	}
	if (A.g.n)
		qsort(A.g.v, A.g.n, sizeof(*A.g.v), cmp_group);
	for (size_t i = 0; i < A.g.n && i < o.string_groups; i++)
		group_string(&L, &A.g.v[i]);
	out->groups = A.g.v;
	out->ngroups = A.g.n;
	out->groups_capped = A.g.capped;
	A.g.v = NULL;
	out->groups_ns = hs_now_ns() - t0;
out:
	out->scanned_bytes = L.scanned_bytes;
	out->unreadable += L.unreadable;
	out->passes = L.passes;
	free(A.g.v);
	free(A.g.idx);
	free(A.g.smp);
	free(A.g.nsmp);
	lk_free(&L);
	if (ret)
		hs_leaks_result_release(out);
	return ret;
}

void hs_leaks_result_release(struct hs_leaks_result *r)
{
	free(r->groups);
	r->groups = NULL;
	r->ngroups = 0;
}
