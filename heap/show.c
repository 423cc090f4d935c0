/*
 * `heapscan show`'s target-only half: chunk lookup, word classification and
 * the reference scan.  See hs_show.h for the contract.
 */
#include "hs_show.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define NO_MAP ((size_t)-1)

static size_t map_index(const struct hs_target *t, hs_addr_t a)
{
	const struct hs_map *m = hs_target_find_map(t, a);

	return m ? (size_t)(m - t->maps.v) : NO_MAP;
}

/* ---- locating chunks ---- */

static bool anon_rw(const struct hs_map *m)
{
	return m->cls == HS_CLASS_ANON &&
	       (m->perms & (HS_PERM_R | HS_PERM_W)) == (HS_PERM_R | HS_PERM_W);
}

bool hs_show_maybe_chunk(const struct hs_glibc_heap *h, hs_addr_t a)
{
	const struct hs_map *m;

	if (!h || !h->layout)
		return false;
	for (size_t i = 0; i < h->narenas; i++) {
		const struct hs_glibc_arena *ar = &h->arenas[i];

		if (ar->top_size && a >= ar->top && a - ar->top < ar->top_size)
			return true;
		for (size_t j = 0; j < ar->nsegs; j++)
			if (a >= ar->segs[j].start && a < ar->segs[j].end)
				return true;
	}
	if (h->opts.flags & HS_GLIBC_NO_MMAPPED)
		return false;
	m = hs_target_find_map(h->t, a);
	return m && anon_rw(m);
}

struct locate {
	struct hs_show_loc *v;
	size_t *idx;             /* indices into v of the candidates, by addr */
	size_t n;
	size_t left;             /* candidates not yet found */
	struct hs_glibc_chunk last; /* the chunk the walk gave before */
};

static int cmp_idx_ud(const void *x, const void *y, void *ud)
{
	const struct hs_show_loc *v = ud;
	hs_addr_t a = v[*(const size_t *)x].addr, b = v[*(const size_t *)y].addr;

	return a < b ? -1 : a > b;
}

static int locate_cb(void *ud, const struct hs_glibc_chunk *c)
{
	struct locate *L = ud;
	size_t lo = 0, hi = L->n;

	/* First candidate at or above the chunk's start. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (L->v[L->idx[mid]].addr < c->addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t k = lo; k < L->n; k++) {
		struct hs_show_loc *q = &L->v[L->idx[k]];

		if (q->addr - c->addr >= c->size)
			break;
		if (!q->found) {
			q->found = true;
			q->chunk = *c;
			q->owner = *c;
			/* The prev_size word belongs to the chunk before when
			 * that one is in use (its user bytes run into it). */
			if (q->addr - c->addr < 8 && L->last.state == HS_CHUNK_INUSE &&
			    L->last.addr + L->last.size == c->addr)
				q->owner = L->last;
			L->left--;
		}
	}
	L->last = *c;
	/* Every candidate found: stop the walk (1 is not an error code). */
	return L->left ? 0 : 1;
}

int hs_show_locate(struct hs_glibc_heap *h, struct hs_show_loc *v, size_t n)
{
	struct locate L = { v, NULL, 0, 0, { 0, 0, HS_CHUNK_UNPARSED, -1 } };
	int ret;

	for (size_t i = 0; i < n; i++)
		v[i].found = false;
	if (!h || !h->layout || !n)
		return 0;
	L.idx = hs_xmalloc(n * sizeof(*L.idx));
	for (size_t i = 0; i < n; i++)
		if (hs_show_maybe_chunk(h, v[i].addr))
			L.idx[L.n++] = i;
	L.left = L.n;
	if (!L.n) {
		free(L.idx);
		return 0;
	}
	qsort_r(L.idx, L.n, sizeof(*L.idx), cmp_idx_ud, v);
	ret = hs_glibc_for_each_chunk(h, locate_cb, &L);
	free(L.idx);
	return ret == 1 ? 0 : ret;
}

/* ---- reference scan ---- */

static const char *const cut_names[] = { "complete", "results", "bytes", "time" };

const char *hs_refs_cut_name(enum hs_refs_cut c)
{
	return (unsigned)c < HS_ARRAY_SIZE(cut_names) ? cut_names[c] : "?";
}

#define REFS_DEFAULT_CLASSES                                                \
	((1u << HS_CLASS_HEAP) | (1u << HS_CLASS_ARENA) | (1u << HS_CLASS_ANON) | \
	 (1u << HS_CLASS_STACK) | (1u << HS_CLASS_DATA) | (1u << HS_CLASS_SHM))

/* Smallest, most root-like classes first, so a cut scan has seen them. */
static const enum hs_class scan_order[] = {
	HS_CLASS_DATA, HS_CLASS_STACK, HS_CLASS_HEAP, HS_CLASS_ARENA,
	HS_CLASS_ANON, HS_CLASS_SHM, HS_CLASS_CODE, HS_CLASS_RODATA,
	HS_CLASS_RESERVED, HS_CLASS_ANON_RO, HS_CLASS_SPECIAL,
};

struct scan {
	struct hs_refs *r;
	hs_addr_t lo;
	uint64_t span;           /* hi - lo */
	hs_addr_t skip_lo;
	uint64_t skip_span;
	size_t max_results;
	size_t map;
	uint64_t budget_left;    /* bytes */
	uint64_t deadline;       /* ns, 0: none */
	/* A word split between two pieces that follow each other. */
	hs_addr_t next;          /* address that would continue the last piece */
	unsigned char carry[8];
	size_t ncarry;
};

/* Callback results that stop the stream; positive, so never errors. */
enum { STOP_RESULTS = 1, STOP_BYTES, STOP_TIME };

static int add_ref(struct scan *s, hs_addr_t at, uint64_t value)
{
	struct hs_refs *r = s->r;

	if (at - s->skip_lo < s->skip_span)
		return 0;
	if (r->n >= s->max_results)
		return STOP_RESULTS;
	HS_ALLOC_GROW(r->v, r->n + 1, r->alloc);
	r->v[r->n].at = at;
	r->v[r->n].value = value;
	r->v[r->n].map = s->map;
	r->n++;
	return 0;
}

static int scan_cb(void *ud, hs_addr_t addr, const void *data, size_t len)
{
	struct scan *s = ud;
	const unsigned char *p = data;
	const hs_addr_t lo = s->lo;
	const uint64_t span = s->span;
	size_t off = 0, nw;
	int ret;

	if (len > s->budget_left)
		len = (size_t)s->budget_left;
	if (addr != s->next)
		s->ncarry = 0;
	/* Finish a word begun at the end of the previous piece. */
	if (s->ncarry) {
		size_t take = 8 - s->ncarry < len ? 8 - s->ncarry : len;
		uint64_t w;

		memcpy(s->carry + s->ncarry, p, take);
		s->ncarry += take;
		off = take;
		if (s->ncarry == 8) {
			memcpy(&w, s->carry, 8);
			s->ncarry = 0;
			if (w - lo < span && (ret = add_ref(s, addr - 8 + take, w)))
				return ret;
		}
	}
	/* Pieces start on 8-byte boundaries in practice (mappings and
	 * hs_target_stream's skips are page-aligned); align anyway. */
	while (off < len && ((addr + off) & 7))
		off++;
	nw = (len - off) / 8;
	{
		const unsigned char *q = p + off;

		/* The hot loop: a subtract and one unsigned compare per word. */
		for (size_t i = 0; i < nw; i++) {
			uint64_t w;

			memcpy(&w, q + 8 * i, 8);
			if (__builtin_expect(w - lo < span, 0)) {
				ret = add_ref(s, addr + off + 8 * i, w);
				if (ret)
					return ret;
			}
		}
	}
	off += 8 * nw;
	if (off < len && !((addr + off) & 7)) {
		s->ncarry = len - off;
		memcpy(s->carry, p + off, s->ncarry);
	}
	s->next = addr + len;
	s->r->scanned += len;
	s->budget_left -= len;
	if (!s->budget_left)
		return STOP_BYTES;
	if (s->deadline && hs_now_ns() >= s->deadline)
		return STOP_TIME;
	return 0;
}

/*
 * Where to start scanning m: a thread's stack from its stack pointer less
 * the 128-byte red zone (x86_64 SysV ABI 3.2.2: a leaf may keep data
 * there), since below that lie dead frames whose stale pointers are not
 * references.  Other mappings, and stacks whose sp is unknown, from the
 * start.
 */
static hs_addr_t scan_start(const struct hs_target *t, const struct hs_map *m)
{
	if (m->cls != HS_CLASS_STACK || !m->stack_tid)
		return m->start;
	for (size_t i = 0; i < t->nthreads; i++) {
		hs_addr_t sp = t->threads[i].sp;

		if (t->threads[i].tid != m->stack_tid || sp < m->start || sp >= m->end)
			continue;
		sp = (sp - 128) & ~(hs_addr_t)7;
		return sp > m->start ? sp : m->start;
	}
	return m->start;
}

static int cmp_ref(const void *x, const void *y)
{
	const struct hs_ref *a = x, *b = y;

	return a->at < b->at ? -1 : a->at > b->at;
}

int hs_refs_scan(struct hs_target *t, hs_addr_t lo, hs_addr_t hi,
		 const struct hs_refs_opts *opts, struct hs_refs *r)
{
	struct hs_refs_opts o = { 0 };
	struct scan s;
	uint64_t t0 = hs_now_ns();
	unsigned char *buf;
	int ret = 0;

	if (opts)
		o = *opts;
	if (!o.max_results)
		o.max_results = 64;
	if (!o.bufsz)
		o.bufsz = 1 << 20;
	if (o.bufsz < 4096)
		o.bufsz = 4096;
	o.bufsz &= ~(size_t)7;
	if (!o.classes)
		o.classes = REFS_DEFAULT_CLASSES;
	r->cut = HS_REFS_COMPLETE;
	if (lo >= hi)
		return -EINVAL;

	memset(&s, 0, sizeof(s));
	s.r = r;
	s.lo = lo;
	s.span = hi - lo;
	s.skip_lo = o.skip_lo;
	s.skip_span = o.skip_hi > o.skip_lo ? o.skip_hi - o.skip_lo : 0;
	s.max_results = o.max_results;
	s.budget_left = o.max_bytes ? o.max_bytes : UINT64_MAX;
	s.deadline = o.max_ns ? t0 + o.max_ns : 0;
	buf = hs_xmalloc(o.bufsz);

	for (size_t c = 0; c < HS_ARRAY_SIZE(scan_order) && !ret; c++) {
		if (!(o.classes & (1u << scan_order[c])))
			continue;
		for (size_t i = 0; i < t->maps.n && !ret; i++) {
			const struct hs_map *m = &t->maps.v[i];

			if (m->cls != scan_order[c] ||
			    (m->perms & (HS_PERM_R | HS_PERM_W)) != (HS_PERM_R | HS_PERM_W))
				continue;
			s.map = i;
			s.next = 0;
			s.ncarry = 0;
			r->maps_scanned++;
			ret = hs_target_stream(t, scan_start(t, m), m->end, buf, o.bufsz,
					       scan_cb, &s, &r->unreadable);
		}
	}
	free(buf);
	switch (ret) {
	case STOP_RESULTS:
		r->cut = HS_REFS_CUT_RESULTS;
		ret = 0;
		break;
	case STOP_BYTES:
		/* The budget ran out exactly at the end: nothing was cut
		 * unless more mappings were left; say "bytes" either way. */
		r->cut = HS_REFS_CUT_BYTES;
		ret = 0;
		break;
	case STOP_TIME:
		r->cut = HS_REFS_CUT_TIME;
		ret = 0;
		break;
	default:
		break;
	}
	if (r->n > 1)
		qsort(r->v, r->n, sizeof(*r->v), cmp_ref);
	r->ns = hs_now_ns() - t0;
	return ret;
}

void hs_refs_release(struct hs_refs *r)
{
	free(r->v);
	memset(r, 0, sizeof(*r));
}

/* ---- register references ---- */

/* user_regs_struct member names, in enum hs_reg order. */
static const char *const reg_names[HS_REG_N] = {
	"r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8",
	"rax", "rcx", "rdx", "rsi", "rdi", "orig_rax", "rip", "cs", "eflags",
	"rsp", "ss", "fs_base", "gs_base", "ds", "es", "fs", "gs",
};

const char *hs_reg_name(enum hs_reg r)
{
	return (unsigned)r < HS_REG_N ? reg_names[r] : "?";
}

int hs_refs_scan_regs(const struct hs_target *t, hs_addr_t lo, hs_addr_t hi,
		      struct hs_reg_refs *r)
{
	if (lo >= hi)
		return -EINVAL;
	for (size_t i = 0; i < t->nthreads; i++) {
		const struct hs_thread *th = &t->threads[i];

		if (!th->has_regs) {
			r->threads_noregs++;
			continue;
		}
		r->threads++;
		for (unsigned k = 0; k < HS_REG_N; k++) {
			uint64_t v = th->regs.r[k];

			if (v - lo >= hi - lo)
				continue;
			HS_ALLOC_GROW(r->v, r->n + 1, r->alloc);
			r->v[r->n].tid = th->tid;
			r->v[r->n].reg = (enum hs_reg)k;
			r->v[r->n].value = v;
			r->n++;
		}
	}
	return 0;
}

void hs_reg_refs_release(struct hs_reg_refs *r)
{
	free(r->v);
	memset(r, 0, sizeof(*r));
}

/* ---- show ---- */

static bool printable(unsigned char c)
{
	return (c >= 0x20 && c < 0x7f) || c == '\t';
}

size_t hs_show_peek_string(struct hs_target *t, hs_addr_t addr, size_t min_len,
			   char *out, size_t max)
{
	size_t n = 0, k = 0;

	if (!max)
		return 0;
	out[0] = '\0';
	if (max < 2 || hs_target_read(t, addr, out, max - 1, &n) < 0)
		return 0;
	while (k < n && printable((unsigned char)out[k]))
		k++;
	if (k < (min_len ? min_len : 1)) {
		out[0] = '\0';
		return 0;
	}
	out[k] = '\0';
	return k;
}

/* The bytes of the object that `show` dumps, from its header. */
static uint64_t chunk_dump_len(const struct hs_glibc_chunk *c)
{
	/* An in-use heap chunk's user bytes run through the next chunk's
	 * prev_size field (usable = size - 8, doc/glibc-malloc.md). */
	if (c->state == HS_CHUNK_INUSE)
		return c->size + 8;
	return c->size;
}

int hs_show_collect(struct hs_target *t, struct hs_glibc_heap *h, hs_addr_t addr,
		    const struct hs_show_opts *opts, struct hs_show *s)
{
	struct hs_show_opts o = { 0 };
	const struct hs_map *m;
	struct hs_show_loc *q = NULL;
	size_t nq = 0, got = 0;
	uint64_t want;
	int ret;

	if (opts)
		o = *opts;
	if (!o.max_bytes)
		o.max_bytes = 4096;
	if (!o.len)
		o.len = 256;
	s->addr = addr;
	s->map = map_index(t, addr);
	if (s->map == NO_MAP)
		return -HS_E_NOT_FOUND;
	m = &t->maps.v[s->map];

	/* The chunk holding addr: a walk that stops when it is found. */
	if (h && h->layout) {
		struct hs_show_loc one = { .addr = addr };

		ret = hs_show_locate(h, &one, 1);
		if (ret < 0)
			return ret;
		s->locate_done = true;
		if (one.found) {
			s->in_chunk = true;
			s->chunk = one.chunk;
			if (one.chunk.arena >= 0 && (size_t)one.chunk.arena < h->narenas)
				s->arena = h->arenas[one.chunk.arena].addr;
		}
	}
	if (!s->locate_done && o.blocks) {
		ret = hs_blocks_find(o.blocks, addr, &s->block);
		if (ret == -ESRCH || ret == -HS_E_INTERRUPTED)
			return ret;
		s->in_block = ret == 0;
	}
	if (s->in_block) {
		s->obj_lo = s->block.addr;
		s->obj_hi = s->block.addr + s->block.size;
		s->dump_addr = s->block.addr;
		want = s->block.size;
		s->dump_want = want > SIZE_MAX ? SIZE_MAX : (size_t)want;
		if (want > o.max_bytes)
			want = o.max_bytes;
	} else if (s->in_chunk) {
		s->obj_lo = s->chunk.addr;
		s->obj_hi = s->chunk.addr + s->chunk.size;
		s->dump_addr = s->chunk.addr;
		want = chunk_dump_len(&s->chunk);
		s->dump_want = want > SIZE_MAX ? SIZE_MAX : (size_t)want;
		if (want > o.max_bytes)
			want = o.max_bytes;
	} else {
		s->dump_addr = addr & ~(hs_addr_t)15;
		want = o.len + (addr - s->dump_addr);
		s->dump_want = (size_t)want;
		if (want > m->end - s->dump_addr)
			want = m->end - s->dump_addr;
		s->obj_lo = addr;
		s->obj_hi = s->dump_addr + want;
	}
	s->obj_base = s->in_chunk ? s->chunk.addr + 16 : s->in_block ? s->block.addr : addr;

	/* The bytes themselves; a short read keeps what was read. */
	s->dump = hs_xmalloc(want ? (size_t)want : 1);
	ret = hs_target_read(t, s->dump_addr, s->dump, (size_t)want, &got);
	if (ret == -ESRCH)
		return ret;
	if (!got || (!s->in_chunk && !s->in_block && s->dump_addr + got <= addr)) {
		s->dump_len = 0;
		return -EFAULT;
	}
	s->dump_len = got;

	/* Words: header fields, and values that land in a mapping. */
	s->nwords = s->dump_len / 8;
	s->words = hs_xcalloc(s->nwords ? s->nwords : 1, sizeof(*s->words));
	for (size_t i = 0; i < s->nwords; i++) {
		struct hs_show_word *w = &s->words[i];

		w->at = s->dump_addr + 8 * i;
		memcpy(&w->value, s->dump + 8 * i, 8);
		if (s->in_chunk && w->at < s->chunk.addr + 16)
			w->header = w->at == s->chunk.addr ? 1 : 2;
		w->map = w->header ? NO_MAP : map_index(t, w->value);
	}

	if (o.refs) {
		struct hs_refs_opts ro = o.refs_opts;

		/* The object's own words are not references to it.  A chunk's
		 * first word (prev_size) is the previous chunk's last word
		 * when that one is in use, so it is scanned; an in-use
		 * chunk's last word is the next chunk's prev_size. */
		ro.skip_lo = s->obj_lo;
		ro.skip_hi = s->obj_hi;
		if (s->in_chunk) {
			ro.skip_lo = s->chunk.addr + 8;
			ro.skip_hi = s->chunk.addr + chunk_dump_len(&s->chunk);
		}
		s->has_refs = true;
		ret = hs_refs_scan(t, s->obj_lo, s->obj_hi, &ro, &s->refs);
		if (ret < 0)
			return ret;
		s->xrefs = hs_xcalloc(s->refs.n ? s->refs.n : 1, sizeof(*s->xrefs));
		for (size_t i = 0; i < s->refs.n; i++)
			s->xrefs[i].ref = s->refs.v[i];
		/* After the memory scan, so registers never cost it results;
		 * lo < hi holds, as hs_refs_scan just accepted the range. */
		ret = hs_refs_scan_regs(t, s->obj_lo, s->obj_hi, &s->regrefs);
		if (ret < 0)
			return ret;
	}

	/* One more walk for every word that points into memory and every
	 * reference's location. */
	q = hs_xcalloc(s->nwords + s->refs.n + 1, sizeof(*q));
	for (size_t i = 0; i < s->nwords; i++)
		if (s->words[i].map != NO_MAP)
			q[nq++].addr = s->words[i].value;
	for (size_t i = 0; i < s->refs.n; i++)
		q[nq++].addr = s->refs.v[i].at;
	if (s->locate_done) {
		ret = hs_show_locate(h, q, nq);
		if (ret < 0)
			goto out;
	}
	nq = 0;
	for (size_t i = 0; i < s->nwords; i++) {
		struct hs_show_word *w = &s->words[i];
		const struct hs_map *wm;

		if (w->map == NO_MAP)
			continue;
		w->in_chunk = q[nq].found;
		w->chunk = q[nq].chunk;
		nq++;
		wm = &t->maps.v[w->map];
		if (wm->perms & HS_PERM_R)
			w->str_len = hs_show_peek_string(t, w->value, 4, w->str,
							 sizeof(w->str));
	}
	for (size_t i = 0; i < s->refs.n; i++, nq++) {
		/* A reference is the bytes of the chunk that owns the word. */
		s->xrefs[i].in_chunk = q[nq].found;
		s->xrefs[i].chunk = q[nq].owner;
	}
	ret = 0;
out:
	free(q);
	return ret;
}

void hs_show_release(struct hs_show *s)
{
	free(s->dump);
	free(s->words);
	free(s->xrefs);
	hs_refs_release(&s->refs);
	hs_reg_refs_release(&s->regrefs);
	memset(s, 0, sizeof(*s));
}
