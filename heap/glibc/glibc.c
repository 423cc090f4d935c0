/*
 * glibc heap walker; see hs_glibc.h for the contract.
 *
 * Facts used here (doc/glibc-malloc.md): chunk header prev_size +0,
 * size +8, flags PREV_INUSE 1, IS_MMAPPED 2, NON_MAIN_ARENA 4; free chunks
 * fd +0x10, bk +0x18; tcache lists link user pointers (chunk + 0x10),
 * fastbins link chunk headers; safe-linking (2.32+) stores
 * (field address >> 12) ^ target; an empty bin has fd == bk == the bin's
 * own address - 0x10; thread heaps are 64 MiB-aligned and start with
 * heap_info; the last chunk of a heap that no longer holds top is followed
 * by fenceposts (a 0x10 chunk, then a size-0 header).
 */
#include "hs_glibc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define PREV_INUSE 1ull
#define IS_MMAPPED 2ull
#define NON_MAIN_ARENA 4ull
#define SIZE_BITS 7ull
#define MINSIZE 0x20ull
#define NFASTBINS 10
#define NBINS 128
#define NSMALLBINS 64
#define TCACHE_BINS 64
#define HEAP_MAX (64ull << 20)
#define PAGE 4096ull

#define WALK_BUF (1u << 20)      /* chunk headers are parsed from this */
#define RESYNC_SPAN (64u << 10)  /* how far a resync looks for a header */
#define TLS_SPAN 0x2000u         /* bytes below fs_base searched for tcache */
#define MAX_ARENAS 4096
#define MAX_HEAPS_PER_ARENA 65536
#define HIST_MAX 65536
#define PC_SLOTS 256             /* page cache for free-list walks */

/* ---- names ---- */

static const char *const state_names[] = {
#define HS_X_(n, s, l) s,
	HS_CHUNK_STATES(HS_X_)
#undef HS_X_
};
static const char *const state_labels[] = {
#define HS_X_(n, s, l) l,
	HS_CHUNK_STATES(HS_X_)
#undef HS_X_
};

const char *hs_chunk_state_name(enum hs_chunk_state s)
{
	return (unsigned)s < HS_CHUNK_STATE_N ? state_names[s] : "?";
}

const char *hs_chunk_state_label(enum hs_chunk_state s)
{
	return (unsigned)s < HS_CHUNK_STATE_N ? state_labels[s] : "?";
}

bool hs_chunk_state_is_free(enum hs_chunk_state s)
{
	return s >= HS_CHUNK_TCACHE && s <= HS_CHUNK_TOP;
}

/* ---- private state ---- */

/*
 * The free set: chunk addresses (16-aligned, so the low 4 bits carry the
 * kind) in an open-addressed table.  0 marks an empty slot.
 */
struct fset {
	uint64_t *slots;
	size_t cap;   /* power of two, 0 before the first insert */
	size_t n;
	size_t max;   /* entries allowed */
};

struct seg_ref {
	hs_addr_t start, end; /* chunks: [start, end) */
	int arena;
};

struct priv {
	struct fset set;
	unsigned char *buf;      /* WALK_BUF bytes */
	unsigned char *rbuf;     /* RESYNC_SPAN bytes */
	/* direct-mapped page cache (free-list walks jump around) */
	hs_addr_t pc_tag[PC_SLOTS];
	bool pc_valid[PC_SLOTS];
	unsigned char *pc_data;  /* PC_SLOTS pages */
	struct seg_ref *segs;    /* every heap segment, sorted by start */
	size_t nsegs;
	unsigned walks;          /* hs_glibc_for_each_chunk calls so far */
	bool quiet;              /* a repeated walk: its problems are known */
};

static struct priv *P(struct hs_glibc_heap *h)
{
	return h->priv;
}

void hs_glibc_problem(struct hs_glibc_heap *h, hs_addr_t addr, const char *fmt, ...)
{
	va_list ap;
	char msg[sizeof(h->problems[0].msg)];

	if (h->priv && P(h)->quiet)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	hs_log(HS_LOG_DEBUG, "heap: 0x%llx: %s", (unsigned long long)addr, msg);
	hs_problem_add(h->problems, HS_GLIBC_MAX_PROBLEMS, &h->nproblems, addr,
		       "%s", msg);
}

/* ---- reading ---- */

/* n bytes at a, through the page cache when they sit in one page. */
static int rd(struct hs_glibc_heap *h, hs_addr_t a, void *out, size_t n)
{
	struct priv *p = P(h);
	hs_addr_t pg = a & ~(PAGE - 1);
	size_t slot;
	int ret;

	if (n > PAGE || (a & (PAGE - 1)) + n > PAGE)
		return hs_target_read_full(h->t, a, out, n);
	slot = (size_t)((pg >> 12) % PC_SLOTS);
	if (!p->pc_valid[slot] || p->pc_tag[slot] != pg) {
		ret = hs_target_read_full(h->t, pg, p->pc_data + slot * PAGE, PAGE);
		if (ret < 0) {
			/* Part of the page may still be readable (core holes). */
			p->pc_valid[slot] = false;
			return hs_target_read_full(h->t, a, out, n);
		}
		p->pc_tag[slot] = pg;
		p->pc_valid[slot] = true;
	}
	memcpy(out, p->pc_data + slot * PAGE + (a & (PAGE - 1)), n);
	return 0;
}

static int rd64(struct hs_glibc_heap *h, hs_addr_t a, uint64_t *v)
{
	return rd(h, a, v, sizeof(*v));
}

static uint64_t get64(const unsigned char *b, size_t off)
{
	uint64_t v;

	memcpy(&v, b + off, sizeof(v));
	return v;
}

static uint32_t get32(const unsigned char *b, size_t off)
{
	uint32_t v;

	memcpy(&v, b + off, sizeof(v));
	return v;
}

/* ---- the free set ---- */

static size_t fset_hash(hs_addr_t a, size_t cap)
{
	return (size_t)(((a >> 4) * 0x9e3779b97f4a7c15ull) >> 20) & (cap - 1);
}

static void fset_grow(struct fset *s)
{
	size_t ncap = s->cap ? s->cap * 2 : 4096;
	uint64_t *nv = hs_xcalloc(ncap, sizeof(*nv));

	for (size_t i = 0; i < s->cap; i++) {
		uint64_t e = s->slots[i];
		size_t j;

		if (!e)
			continue;
		for (j = fset_hash(e & ~15ull, ncap); nv[j]; j = (j + 1) & (ncap - 1))
			;
		nv[j] = e;
	}
	free(s->slots);
	s->slots = nv;
	s->cap = ncap;
}

/* 0 added, 1 already there (*old = its kind), -1 full. */
static int fset_add(struct fset *s, hs_addr_t a, enum hs_chunk_state kind,
		    enum hs_chunk_state *old)
{
	size_t j;

	if (s->n >= s->max)
		return -1;
	if ((s->n + 1) * 2 > s->cap)
		fset_grow(s);
	for (j = fset_hash(a, s->cap); s->slots[j]; j = (j + 1) & (s->cap - 1))
		if ((s->slots[j] & ~15ull) == a) {
			*old = (enum hs_chunk_state)(s->slots[j] & 15);
			return 1;
		}
	s->slots[j] = a | (uint64_t)kind;
	s->n++;
	return 0;
}

/* The kind of chunk a, or -1. */
static int fset_get(const struct fset *s, hs_addr_t a)
{
	if (!s->n)
		return -1;
	for (size_t j = fset_hash(a, s->cap); s->slots[j]; j = (j + 1) & (s->cap - 1))
		if ((s->slots[j] & ~15ull) == a)
			return (int)(s->slots[j] & 15);
	return -1;
}

/* ---- version ---- */

static bool is_libc_path(const char *path)
{
	const char *b = strrchr(path, '/');

	b = b ? b + 1 : path;
	if (!strncmp(b, "libc.so", 7))
		return true;
	return !strncmp(b, "libc-2.", 7) && strstr(b, ".so") != NULL;
}

static unsigned parse_minor(const char *s)
{
	unsigned v = 0;
	int digits = 0;

	if (strncmp(s, "2.", 2))
		return 0;
	for (s += 2; *s >= '0' && *s <= '9' && digits < 4; s++, digits++)
		v = v * 10 + (unsigned)(*s - '0');
	return digits ? v : 0;
}

/* Looks for the banner in [start, end); fills h->version on success. */
static int find_banner(struct hs_glibc_heap *h, hs_addr_t start, hs_addr_t end)
{
	static const char key[] = "GNU C Library";
	const size_t win = 256u << 10, overlap = 256;
	unsigned char *buf = P(h)->buf;
	hs_addr_t a = start;

	while (a < end) {
		size_t want = end - a < win ? (size_t)(end - a) : win, n = 0;
		int ret = hs_target_read(h->t, a, buf, want, &n);

		if (ret == -ESRCH)
			return ret;
		if (hs_interrupted)
			return -HS_E_INTERRUPTED;
		if (n == 0) {
			/* Skip the hole: in one step where the target knows it. */
			hs_addr_t ds, de, next = (a | (PAGE - 1)) + 1;

			if (next <= a || hs_target_next_data(h->t, next, end, &ds, &de) < 0)
				break;
			a = ds;
			continue;
		}
		for (unsigned char *q = buf; n >= sizeof(key) &&
		     (q = memmem(q, n - (size_t)(q - buf), key, sizeof(key) - 1)); q++) {
			size_t rest = n - (size_t)(q - buf), len = 0;
			char line[sizeof(h->version)];
			const char *v;
			unsigned minor;

			while (len < rest && len + 1 < sizeof(line) && q[len] &&
			       q[len] != '\n')
				len++;
			if (len == rest && a + n < end)
				break; /* cut by the window: seen again next time */
			memcpy(line, q, len);
			line[len] = '\0';
			v = strstr(line, "version ");
			if (!v || !(minor = parse_minor(v + 8)))
				continue;
			while (len && (line[len - 1] == '.' || line[len - 1] == ' '))
				line[--len] = '\0';
			memcpy(h->version, line, len + 1);
			h->version_minor = minor;
			return 0;
		}
		if (a + n >= end)
			break;
		a += n > overlap ? n - overlap : n;
	}
	return -HS_E_NOT_FOUND;
}

/* libc's first mapping (file offset 0), or NULL. */
static const struct hs_map *libc_base_map(const struct hs_maps *maps)
{
	for (size_t i = 0; i < maps->n; i++)
		if (is_libc_path(maps->v[i].path) && maps->v[i].offset == 0 &&
		    (maps->v[i].perms & HS_PERM_R))
			return &maps->v[i];
	return NULL;
}

#define BANNER_SCAN_MAX (256ull << 20) /* unnamed mappings searched at most */

/*
 * The banner, from libc's read-only segments (r-- first, then r-x).  A
 * core that names no libc (no NT_FILE note) may still hold libc's
 * .rodata: then every read-only mapping, then the other readable ones,
 * up to BANNER_SCAN_MAX bytes.  Only for post-mortem targets (the caller
 * checks): reading a live libc's .rodata would fault its pages in.
 */
static int search_banner(struct hs_glibc_heap *h)
{
	const struct hs_maps *maps = &h->t->maps;
	bool named = false;
	uint64_t budget = BANNER_SCAN_MAX;
	int ret;

	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < maps->n; i++) {
			const struct hs_map *m = &maps->v[i];

			named = named || is_libc_path(m->path);
			if (!is_libc_path(m->path) || !(m->perms & HS_PERM_R) ||
			    (m->perms & HS_PERM_W) || !!(m->perms & HS_PERM_X) != (pass == 1))
				continue;
			ret = find_banner(h, m->start, m->end);
			if (ret != -HS_E_NOT_FOUND)
				return ret;
		}
	if (named)
		return -HS_E_NOT_FOUND;
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < maps->n && budget; i++) {
			const struct hs_map *m = &maps->v[i];
			hs_addr_t end = m->end;

			if (!(m->perms & HS_PERM_R) || !!(m->perms & HS_PERM_W) != (pass == 1) ||
			    (m->flags & HS_MAP_SPECIAL))
				continue;
			if (end - m->start > budget)
				end = m->start + budget;
			budget -= end - m->start;
			ret = find_banner(h, m->start, end);
			if (ret != -HS_E_NOT_FOUND)
				return ret;
		}
	return -HS_E_NOT_FOUND;
}

static void verdef_text(struct hs_glibc_heap *h)
{
	const struct hs_glibc_ident *id = &h->ident;

	if (id->marker)
		snprintf(h->version, sizeof(h->version),
			 "GLIBC_2.%u is libc's newest symbol version, %s %s",
			 id->verdef_minor, id->marker_present ? "with" : "without", id->marker);
	else if (id->minor_lo == id->minor_hi)
		snprintf(h->version, sizeof(h->version),
			 "GLIBC_2.%u is libc's newest symbol version", id->verdef_minor);
	else
		snprintf(h->version, sizeof(h->version),
			 "GLIBC_2.%u is libc's newest symbol version; releases up to "
			 "2.%u added none", id->verdef_minor, id->minor_hi);
}

/*
 * In order: libc's ELF verdef (resident pages only), narrowed by a
 * libc-2.NN.so name; on post-mortem targets the banner when the verdef is
 * missing or leaves a range; the file name.  A live target's .rodata is
 * never searched (see hs_glibc.h).
 */
static int detect_version(struct hs_glibc_heap *h)
{
	const struct hs_maps *maps = &h->t->maps;
	const struct hs_map *base = libc_base_map(maps);
	bool post_mortem = !(h->t->caps & HS_CAP_READ_FAULTS);
	unsigned from_name = 0;
	const char *name = NULL;
	int ret;

	for (size_t i = 0; i < maps->n && !from_name; i++) {
		const char *b;

		if (is_libc_path(maps->v[i].path) && (b = strstr(maps->v[i].path, "libc-2."))) {
			from_name = parse_minor(b + 5);
			name = strrchr(maps->v[i].path, '/');
			name = name ? name + 1 : maps->v[i].path;
		}
	}
	if (base && hs_glibc_ident_read(h->t, base->start, &h->ident) == 0) {
		const struct hs_glibc_ident *id = &h->ident;

		h->version_minor = id->minor_lo;
		h->version_minor_max = id->minor_hi;
		h->version_source = "verdef";
		if (from_name >= id->minor_lo && from_name <= id->minor_hi) {
			h->version_minor = h->version_minor_max = from_name;
			h->version_source = "verdef+name";
		}
		verdef_text(h);
		if (h->version_minor == h->version_minor_max || !post_mortem)
			return 0;
		/* A core: the banner costs nothing and may be exact. */
		if (search_banner(h) == 0 && h->version_minor >= id->minor_lo &&
		    h->version_minor <= id->minor_hi) {
			h->version_minor_max = h->version_minor;
			h->version_source = "banner";
		} else {
			h->version_minor = id->minor_lo;
			verdef_text(h);
		}
		return 0;
	}
	if (post_mortem) {
		ret = search_banner(h);
		if (ret != -HS_E_NOT_FOUND) {
			if (ret == 0) {
				h->version_minor_max = h->version_minor;
				h->version_source = "banner";
			}
			return ret;
		}
	}
	if (from_name) {
		snprintf(h->version, sizeof(h->version), "%s", name);
		h->version_minor = h->version_minor_max = from_name;
		h->version_source = "file name";
		return 0;
	}
	return -HS_E_NOT_FOUND;
}

/* ---- mappings ---- */

static bool anon_piece(const struct hs_map *m)
{
	return m->inode == 0 && (m->perms & HS_PERM_R) && !(m->perms & HS_PERM_SHARED) &&
	       (!m->path[0] || !strcmp(m->path, "[heap]") || !strncmp(m->path, "[anon:", 6));
}

/*
 * The run of adjacent private anonymous mappings around a: [*lo, *hi).
 * A heap is what glibc says it is, however many mappings the kernel
 * splits it into: a forked child whose brk heap (or arena heap) grows
 * past what it inherited shows the new part as a second mapping (another
 * anon_vma, so it cannot merge), and mprotect or madvise on part of a
 * heap splits it too (doc/heap-segments.md).  false if a is unmapped.
 */
static bool anon_run(const struct hs_target *t, hs_addr_t a, hs_addr_t *lo, hs_addr_t *hi)
{
	const struct hs_maps *maps = &t->maps;
	const struct hs_map *m = hs_target_find_map(t, a);
	size_t i, j;

	if (!m)
		return false;
	i = j = (size_t)(m - maps->v);
	*lo = m->start;
	*hi = m->end;
	if (!anon_piece(m))
		return true;
	while (i > 0 && maps->v[i - 1].end == maps->v[i].start && anon_piece(&maps->v[i - 1]))
		i--;
	while (j + 1 < maps->n && maps->v[j + 1].start == maps->v[j].end &&
	       anon_piece(&maps->v[j + 1]))
		j++;
	*lo = maps->v[i].start;
	*hi = maps->v[j].end;
	return true;
}

static hs_addr_t align16(hs_addr_t a)
{
	return (a + 15) & ~15ull;
}

static void add_seg(struct hs_glibc_arena *a, const struct hs_glibc_seg *s)
{
	a->segs = hs_xrealloc(a->segs, (a->nsegs + 1) * sizeof(*a->segs));
	a->segs[a->nsegs++] = *s;
}

/* ---- main_arena ---- */

static hs_addr_t bin_head(const struct hs_glibc_layout *L, hs_addr_t arena, int i)
{
	/* bin_at(i) = &bins[(i - 1) * 2] - offsetof(fd) */
	return arena + (hs_addr_t)L->ms_bins + (hs_addr_t)(i - 1) * 16 - 16;
}

/*
 * Plausible malloc_state at a, whose first ms_size bytes are img?
 * ARENA_OK; ARENA_NOT: not an arena at all (flags, or fewer than 32
 * self-referencing empty bins); ARENA_CORRUPT: an arena by its shape
 * with a bad field, which why (whylen bytes) names, so that a report can
 * say what is corrupt rather than "not found".
 */
enum { ARENA_NOT, ARENA_OK, ARENA_CORRUPT };
static int check_arena_n(struct hs_glibc_heap *h, hs_addr_t a, const unsigned char *img,
			 char *why, size_t whylen, unsigned *nempty)
{
	const struct hs_glibc_layout *L = h->layout;
	unsigned empty = 0;
	hs_addr_t top, n;
	uint64_t tsz;
	int bad = 0;

	if (get32(img, 0) > 2 || get32(img, 4) > 7)
		return ARENA_NOT;
	for (int i = 1; i < NBINS; i++) {
		size_t off = (size_t)L->ms_bins + (size_t)(i - 1) * 16;
		hs_addr_t self = bin_head(L, a, i);
		uint64_t fd = get64(img, off), bk = get64(img, off + 8);

		if (fd == self && bk == self) {
			empty++;
		} else if (!bad && (!fd || !bk || (fd & 15) || (bk & 15))) {
			bad = i;
			snprintf(why, whylen, "bin %d at 0x%llx has fd 0x%llx, bk 0x%llx", i,
				 (unsigned long long)(self + 16), (unsigned long long)fd,
				 (unsigned long long)bk);
		}
	}
	*nempty = empty;
	if (empty < 32)
		return ARENA_NOT;
	if (bad)
		return ARENA_CORRUPT;
	top = get64(img, (size_t)L->ms_top);
	if (top == bin_head(L, a, 1)) {
		if (empty != NBINS - 1) { /* never used: every bin empty */
			snprintf(why, whylen, "no top chunk, yet %u bins hold chunks",
				 NBINS - 1 - empty);
			return ARENA_CORRUPT;
		}
	} else {
		uint64_t raw;
		const struct hs_map *m = hs_target_find_map(h->t, top);
		hs_addr_t lo, hi;

		if ((top & 15) || !m || !(m->perms & HS_PERM_W) ||
		    !anon_run(h->t, top, &lo, &hi) || rd64(h, top + 8, &raw) < 0) {
			snprintf(why, whylen, "top 0x%llx is %s", (unsigned long long)top,
				 (top & 15) ? "misaligned" : !m || !(m->perms & HS_PERM_W) ?
				 "not in writable memory" : !anon_run(h->t, top, &lo, &hi) ?
				 "not in anonymous memory" : "unreadable");
			return ARENA_CORRUPT;
		}
		tsz = raw & ~SIZE_BITS;
		/* The heap may span several mappings (fork, mprotect): its
		 * run of adjacent anonymous mappings bounds top. */
		if (((top + tsz) & (PAGE - 1)) || top + tsz > hi || top + tsz < top) {
			snprintf(why, whylen, "top chunk 0x%llx: size 0x%llx %s",
				 (unsigned long long)top, (unsigned long long)tsz,
				 top + tsz > hi || top + tsz < top ?
				 "runs past its mapping" : "ends off a page");
			return ARENA_CORRUPT;
		}
	}
	/* The next ring comes back to a. */
	n = get64(img, (size_t)L->ms_next);
	for (int k = 0; n != a; k++) {
		if (k >= MAX_ARENAS || !n || (n & 7) || rd64(h, n + (hs_addr_t)L->ms_next, &n) < 0) {
			snprintf(why, whylen, "its next ring does not come back to it");
			return ARENA_CORRUPT;
		}
	}
	return ARENA_OK;
}

static int check_arena(struct hs_glibc_heap *h, hs_addr_t a, const unsigned char *img,
		       char *why, size_t whylen)
{
	unsigned nempty;

	return check_arena_n(h, a, img, why, whylen, &nempty);
}

static int find_main_arena(struct hs_glibc_heap *h)
{
	const struct hs_glibc_layout *L = h->layout;
	const struct hs_maps *maps = &h->t->maps;
	unsigned char *buf = P(h)->buf;
	hs_addr_t found = 0, failed = 0, near = 0;
	unsigned near_empty = 0;
	const char *failed_how = NULL;
	char why[sizeof(h->problems[0].msg)], failed_why[sizeof(why)], near_why[sizeof(why)];
	unsigned nfound = 0;

	if (h->opts.main_arena) {
		size_t n = L->ms_size;
		h->main_arena = h->opts.main_arena;
		h->main_arena_how = h->opts.main_arena_how ? h->opts.main_arena_how : "caller";
		if (hs_target_read_full(h->t, h->main_arena, buf, n) < 0)
			return -HS_E_NOT_FOUND;
		switch (check_arena(h, h->main_arena, buf, why, sizeof(why))) {
		case ARENA_CORRUPT:
			hs_glibc_problem(h, h->main_arena, "main_arena (%s) fails a check: %s",
					 h->main_arena_how, why);
			break;
		case ARENA_NOT:
			hs_glibc_problem(h, h->main_arena, "main_arena (%s) does not look like "
					 "an arena (mutex, flags or empty bins)", h->main_arena_how);
			break;
		}
		return 0;
	}
	/* Guesses: only one that passes every check. */
	for (size_t i = 0; i < h->opts.ncandidates && i < HS_GLIBC_MAX_CANDIDATES; i++) {
		hs_addr_t c = h->opts.candidates[i];
		const char *how = h->opts.candidate_how[i] ? h->opts.candidate_how[i]
							   : "candidate";

		if (!c || (c & 7) || hs_target_read_full(h->t, c, buf, L->ms_size) < 0)
			continue;
		int ok = check_arena(h, c, buf, why, sizeof(why));

		if (ok == ARENA_NOT)
			continue;
		if (ok == ARENA_CORRUPT) {
			if (!failed) {
				failed = c;
				failed_how = how;
				memcpy(failed_why, why, sizeof(why));
			}
			continue;
		}
		h->main_arena = c;
		h->main_arena_how = how;
		return 0;
	}
	if (h->opts.flags & HS_GLIBC_NO_SCAN)
		goto none;
	for (size_t i = 0; i < maps->n; i++) {
		const struct hs_map *m = &maps->v[i];
		size_t len = 0;

		if (!is_libc_path(m->path) || (m->perms & (HS_PERM_R | HS_PERM_W)) !=
		    (HS_PERM_R | HS_PERM_W))
			continue;
		if (m->end - m->start > WALK_BUF)
			continue;
		if (hs_target_read(h->t, m->start, buf, (size_t)(m->end - m->start), &len) < 0)
			continue;
		for (size_t off = 0; off + L->ms_size <= len; off += 8) {
			hs_addr_t a = m->start + off;
			unsigned quick = 0;

			/* The last large bins are almost always empty. */
			for (int b = NBINS - 20; b < NBINS; b++) {
				size_t bo = off + (size_t)L->ms_bins + (size_t)(b - 1) * 16;
				if (get64(buf, bo) == bin_head(L, a, b))
					quick++;
			}
			if (quick < 12)
				continue;
			/* check_arena may read through the page cache, not buf. */
			unsigned nempty = 0;
			int ok = check_arena_n(h, a, buf + off, why, sizeof(why), &nempty);

			if (ok == ARENA_OK) {
				if (!nfound)
					found = a;
				nfound++;
			} else if (ok == ARENA_CORRUPT && nempty > near_empty) {
				/* The most empty bins: a shifted view of the
				 * real arena shares only some of them. */
				near = a;
				near_empty = nempty;
				memcpy(near_why, why, sizeof(why));
			}
		}
	}
	if (!nfound)
		goto none;
	if (nfound > 1)
		hs_glibc_problem(h, found, "%u main_arena candidates; using the first",
				 nfound);
	h->main_arena = found;
	h->main_arena_how = "scan";
	return 0;

none:
	/*
	 * A guess (debug symbol, disassembly) that failed the checks, when
	 * nothing passes them, is main_arena with a corrupt field: walk it
	 * (the walk trusts nothing it reads) and say which check failed.
	 * Without one, name the likeliest candidate's failure.
	 */
	if (failed) {
		h->main_arena = failed;
		h->main_arena_how = failed_how;
		hs_glibc_problem(h, failed, "main_arena (%s) fails a check: %s",
				 failed_how, failed_why);
		return 0;
	}
	if (near)
		hs_glibc_problem(h, near, "likeliest main_arena fails a check: %s",
				 near_why);
	return -HS_E_NOT_FOUND;
}

/*
 * A row without attached_threads may meet a libc that has it backported
 * (RHEL 7's 2.17): there the word the row calls system_mem holds
 * attached_threads, a thread count, and system_mem follows it.  The
 * upstream word is a whole number of pages (sbrk and heap growth are in
 * pages) or 0 before the first allocation, never a small count: so a
 * non-zero word below a page, or not page-aligned, followed by a
 * page-aligned one means the backport (doc/glibc-layouts.md).
 */
static void pick_backport(struct hs_glibc_heap *h)
{
	const struct hs_glibc_layout *V = hs_glibc_layout_backport(h->layout);
	uint64_t x, y;

	if (!V || rd64(h, h->main_arena + (hs_addr_t)h->layout->ms_system_mem, &x) < 0 ||
	    rd64(h, h->main_arena + (hs_addr_t)V->ms_system_mem, &y) < 0)
		return;
	if (x && (x < PAGE || (x & (PAGE - 1))) && x < (1u << 20) && !(y & (PAGE - 1)))
		h->layout = V;
}

/* mp_: optional.  Unique match of a signature anchored on sbrk_base. */
static void find_mp(struct hs_glibc_heap *h, hs_addr_t heap_lo, hs_addr_t heap_hi)
{
	const struct hs_glibc_layout *L = h->layout;
	const struct hs_maps *maps = &h->t->maps;
	unsigned char *buf = P(h)->buf;
	unsigned nfound = 0;
	const struct hs_map *home = NULL;
	bool named = false;

	/* mp_ lives in libc's data next to main_arena: in a core that names
	 * no libc, the mapping that holds main_arena. */
	for (size_t i = 0; i < maps->n && !named; i++)
		named = is_libc_path(maps->v[i].path);
	if (!named)
		home = hs_target_find_map(h->t, h->main_arena);
	for (size_t i = 0; i < maps->n; i++) {
		const struct hs_map *m = &maps->v[i];
		size_t len = 0;

		if ((named ? !is_libc_path(m->path) : m != home) ||
		    (m->perms & (HS_PERM_R | HS_PERM_W)) !=
		    (HS_PERM_R | HS_PERM_W) || m->end - m->start > WALK_BUF)
			continue;
		if (hs_target_read(h->t, m->start, buf, (size_t)(m->end - m->start), &len) < 0)
			continue;
		for (size_t off = 0; off + L->mp_size <= len; off += 8) {
			uint64_t sbrk = get64(buf, off + (size_t)L->mp_sbrk_base);
			int32_t nm, nmax;
			uint64_t mem, at, thr;

			if (sbrk < heap_lo || sbrk >= heap_hi)
				continue;
			nm = (int32_t)get32(buf, off + (size_t)L->mp_n_mmaps);
			nmax = (int32_t)get32(buf, off + (size_t)L->mp_n_mmaps_max);
			mem = get64(buf, off + (size_t)L->mp_mmapped_mem);
			at = get64(buf, off + (size_t)L->mp_arena_test);
			thr = get64(buf, off + (size_t)L->mp_mmap_threshold);
			if (nm < 0 || nmax < 0 || (mem & (PAGE - 1)) || (!nm != !mem) ||
			    at == 0 || at > (1u << 20) || thr > HEAP_MAX)
				continue;
			if (L->mp_tcache_bins >= 0 &&
			    (get64(buf, off + (size_t)L->mp_tcache_bins) > TCACHE_BINS ||
			     get64(buf, off + (size_t)L->mp_tcache_count) > 0xffff))
				continue;
			if (!nfound++) {
				h->mp = m->start + off;
				h->mp_n_mmaps = (uint64_t)nm;
				h->mp_mmapped_mem = mem;
			}
		}
	}
	if (nfound != 1)
		h->mp = 0;
}

/* ---- arenas and heaps ---- */

static void main_heap(struct hs_glibc_heap *h, struct hs_glibc_arena *a)
{
	struct hs_glibc_seg s;
	hs_addr_t base, lo, hi;

	if (a->top == bin_head(h->layout, a->addr, 1) || !anon_run(h->t, a->top, &lo, &hi))
		return; /* no heap yet */
	/* glibc's heap is [mp_.sbrk_base, end of top), in however many
	 * mappings; lo is where the run of them starts. */
	find_mp(h, lo, a->top + 1);
	if (h->mp && rd64(h, h->mp + (hs_addr_t)h->layout->mp_sbrk_base, &base) == 0 &&
	    base >= lo && base <= a->top) {
		/* sbrk_base; the run may start earlier in a core that merged
		 * neighbouring anonymous mappings. */
	} else if (a->system_mem && a->top + a->top_size - a->system_mem >= lo &&
		   a->top + a->top_size - a->system_mem <= a->top) {
		/* Contiguous main arena: system_mem is all that sbrk gave. */
		base = a->top + a->top_size - a->system_mem;
	} else {
		base = lo;
	}
	memset(&s, 0, sizeof(s));
	s.heap = base;
	s.start = align16(base);
	s.end = a->top;
	s.map_end = a->top + a->top_size;
	s.has_top = true;
	add_seg(a, &s);
}

static void thread_heaps(struct hs_glibc_heap *h, struct hs_glibc_arena *a)
{
	const struct hs_glibc_layout *L = h->layout;
	hs_addr_t hh = a->top & ~(HEAP_MAX - 1);
	size_t first = a->nsegs;

	for (int k = 0; hh && k < MAX_HEAPS_PER_ARENA; k++) {
		uint64_t hi[4];
		hs_addr_t rlo, rhi;
		struct hs_glibc_seg s;

		if (!anon_run(h->t, hh, &rlo, &rhi) ||
		    hs_target_read_full(h->t, hh, hi, sizeof(hi)) < 0) {
			hs_glibc_problem(h, hh, "heap_info of arena 0x%llx unreadable",
					 (unsigned long long)a->addr);
			break;
		}
		if (hi[0] != a->addr || hi[2] < L->hi_size || hi[2] > HEAP_MAX) {
			hs_glibc_problem(h, hh, "bad heap_info (ar_ptr 0x%llx, size 0x%llx)",
					 (unsigned long long)hi[0], (unsigned long long)hi[2]);
			break;
		}
		memset(&s, 0, sizeof(s));
		s.heap = hh;
		s.map_end = hh + hi[2];
		if (s.map_end > rhi)
			s.map_end = rhi;
		s.start = hh + L->hi_size == a->addr ? align16(a->addr + L->ms_size)
						      : align16(hh + L->hi_size);
		if (a->top >= hh && a->top < s.map_end) {
			s.end = a->top;
			s.has_top = true;
		} else {
			s.end = s.map_end;
		}
		if (s.start > s.end) {
			hs_glibc_problem(h, hh, "heap smaller than its header");
			break;
		}
		add_seg(a, &s);
		if (hi[1] & (HEAP_MAX - 1)) {
			hs_glibc_problem(h, hh, "heap_info.prev 0x%llx is not 64 MiB-aligned",
					 (unsigned long long)hi[1]);
			break;
		}
		hh = hi[1];
		for (size_t j = first; j < a->nsegs; j++)
			if (a->segs[j].heap == hh) {
				hs_glibc_problem(h, hh, "heap_info.prev chain loops");
				hh = 0;
				break;
			}
	}
	/* Oldest heap first, so the walk goes up in address order mostly. */
	for (size_t i = first, j = a->nsegs; i + 1 < j; i++, j--) {
		struct hs_glibc_seg tmp = a->segs[i];
		a->segs[i] = a->segs[j - 1];
		a->segs[j - 1] = tmp;
	}
}

static int cmp_segref(const void *x, const void *y)
{
	const struct seg_ref *a = x, *b = y;

	return a->start < b->start ? -1 : a->start > b->start;
}

/* A top chunk must end inside its heap's memory (the run of adjacent
 * anonymous mappings holding it: fork and mprotect split one heap into
 * several): else say so and clamp it there, so the walk can go on. */
static void check_top(struct hs_glibc_heap *h, struct hs_glibc_arena *ar)
{
	hs_addr_t lo, hi;

	if (ar->top == bin_head(h->layout, ar->addr, 1) || !anon_run(h->t, ar->top, &lo, &hi))
		return;
	if (ar->top + ar->top_size < ar->top || ar->top + ar->top_size > hi) {
		hs_glibc_problem(h, ar->top, "top chunk size 0x%llx runs past the end "
				 "of its mapping 0x%llx", (unsigned long long)ar->top_size,
				 (unsigned long long)hi);
		ar->top_size = hi - ar->top;
	}
}

/* system_mem is what the arena got from the system: at least its heaps,
 * in whole pages. */
static void check_system_mem(struct hs_glibc_heap *h, const struct hs_glibc_arena *ar)
{
	uint64_t span = 0;

	for (size_t i = 0; i < ar->nsegs; i++)
		span += ar->segs[i].map_end - ar->segs[i].heap;
	if (span && (ar->system_mem < span || (ar->system_mem & (PAGE - 1))))
		hs_glibc_problem(h, ar->addr, "arena's system_mem 0x%llx, but its heaps "
				 "hold 0x%llx", (unsigned long long)ar->system_mem,
				 (unsigned long long)span);
}

static int find_arenas(struct hs_glibc_heap *h)
{
	const struct hs_glibc_layout *L = h->layout;
	unsigned char *img = hs_xmalloc(L->ms_size);
	hs_addr_t a = h->main_arena;
	struct priv *p = P(h);
	int ret = 0;

	for (int k = 0; k < MAX_ARENAS; k++) {
		struct hs_glibc_arena *ar;
		uint64_t raw = 0;

		if (hs_target_read_full(h->t, a, img, L->ms_size) < 0) {
			hs_glibc_problem(h, a, "arena unreadable");
			break;
		}
		h->arenas = hs_xrealloc(h->arenas, (h->narenas + 1) * sizeof(*h->arenas));
		ar = &h->arenas[h->narenas++];
		memset(ar, 0, sizeof(*ar));
		ar->addr = a;
		ar->is_main = (k == 0);
		ar->top = get64(img, (size_t)L->ms_top);
		ar->system_mem = get64(img, (size_t)L->ms_system_mem);
		/* The mutex is malloc_state's first int (0 when free). */
		ar->locked = get32(img, 0) != 0;
		if (ar->top != bin_head(L, a, 1) && rd64(h, ar->top + 8, &raw) == 0)
			ar->top_size = raw & ~SIZE_BITS;
		check_top(h, ar);
		if (ar->is_main)
			main_heap(h, ar);
		else
			thread_heaps(h, ar);
		check_system_mem(h, ar);
		a = get64(img, (size_t)L->ms_next);
		if (a == h->main_arena)
			break;
		for (size_t j = 0; j < h->narenas; j++)
			if (h->arenas[j].addr == a) {
				hs_glibc_problem(h, a, "arena ring loops without main_arena");
				a = 0;
				break;
			}
		if (!a || (a & 7))
			break;
		if (hs_interrupted) {
			ret = -HS_E_INTERRUPTED;
			break;
		}
	}
	free(img);
	for (size_t i = 0; i < h->narenas; i++)
		for (size_t j = 0; j < h->arenas[i].nsegs; j++) {
			const struct hs_glibc_seg *s = &h->arenas[i].segs[j];
			p->segs = hs_xrealloc(p->segs, (p->nsegs + 1) * sizeof(*p->segs));
			p->segs[p->nsegs++] = (struct seg_ref){ s->start, s->end, (int)i };
		}
	if (p->nsegs > 1)
		qsort(p->segs, p->nsegs, sizeof(*p->segs), cmp_segref);
	return ret;
}

/* The heap segment holding chunk c, or NULL. */
static const struct seg_ref *seg_of(const struct priv *p, hs_addr_t c)
{
	size_t lo = 0, hi = p->nsegs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (c < p->segs[mid].start)
			hi = mid;
		else if (c >= p->segs[mid].end)
			lo = mid + 1;
		else
			return &p->segs[mid];
	}
	return NULL;
}

/* Index of the arena whose heap holds chunk c (not top), or -1. */
static int seg_arena(struct hs_glibc_heap *h, hs_addr_t c)
{
	const struct seg_ref *s = seg_of(P(h), c);

	return s ? s->arena : -1;
}

/* ---- free lists ---- */

static void count_list(struct hs_glibc_heap *h, int arena, enum hs_chunk_state k,
		       uint64_t size)
{
	if (arena >= 0) {
		h->arenas[arena].lists[k].count++;
		h->arenas[arena].lists[k].bytes += size;
	}
}

/*
 * Adds chunk c of a free list to the set.  Returns 0 to go on, 1 to stop
 * the list (problem recorded), -1 when the set is full.
 */
static int take(struct hs_glibc_heap *h, hs_addr_t c, enum hs_chunk_state kind,
		int want_arena, uint64_t want_size, int *arena_out, uint64_t *size_out,
		const char *list)
{
	enum hs_chunk_state old = HS_CHUNK_INUSE;
	uint64_t raw;
	int ar;

	if (c & 15) {
		hs_glibc_problem(h, c, "misaligned chunk in %s", list);
		return 1;
	}
	ar = seg_arena(h, c);
	if (ar < 0 || (want_arena >= 0 && ar != want_arena)) {
		hs_glibc_problem(h, c, "%s points outside its arena's heaps", list);
		return 1;
	}
	if (rd64(h, c + 8, &raw) < 0) {
		hs_glibc_problem(h, c, "%s entry unreadable", list);
		return 1;
	}
	if (want_size && (raw & ~SIZE_BITS) != want_size) {
		hs_glibc_problem(h, c, "%s chunk has size 0x%llx, expected 0x%llx", list,
				 (unsigned long long)(raw & ~SIZE_BITS),
				 (unsigned long long)want_size);
		return 1;
	}
	switch (fset_add(&P(h)->set, c, kind, &old)) {
	case -1:
		if (!h->free_set_full)
			hs_glibc_problem(h, c, "free-chunk set full (%zu); later free chunks "
					 "count as in use", P(h)->set.max);
		h->free_set_full = true;
		return -1;
	case 1:
		hs_glibc_problem(h, c, "chunk in %s already seen in %s: cycle or double free",
				 list, hs_chunk_state_name(old));
		return 1;
	}
	*arena_out = ar;
	*size_out = raw & ~SIZE_BITS;
	return 0;
}

static bool plausible_tcache(struct hs_glibc_heap *h, hs_addr_t user, unsigned char *img)
{
	const struct hs_glibc_layout *L = h->layout;
	size_t len = L->tc_entries + TCACHE_BINS * 8;
	unsigned bad = 0;
	uint64_t raw;

	if ((user & 15) || seg_arena(h, user - 16) < 0 || rd64(h, user - 8, &raw) < 0 ||
	    (raw & ~SIZE_BITS) != L->tc_chunk_size || (raw & IS_MMAPPED) ||
	    hs_target_read_full(h->t, user, img, len) < 0)
		return false;
	for (unsigned i = 0; i < TCACHE_BINS; i++) {
		unsigned cnt = L->tc_count_size == 1 ? img[i] :
			       (unsigned)(img[2 * i] | (img[2 * i + 1] << 8));
		uint64_t e = get64(img, L->tc_entries + 8 * i);

		if (e && ((e & 15) || seg_arena(h, e - 16) < 0))
			return false;
		if (!cnt != !e)
			bad++;
	}
	return bad <= 1;
}

static void add_tcache(struct hs_glibc_heap *h, hs_addr_t user, pid_t tid)
{
	for (size_t i = 0; i < h->ntcaches; i++)
		if (h->tcaches[i].addr == user) {
			if (!h->tcaches[i].tid)
				h->tcaches[i].tid = tid;
			return;
		}
	h->tcaches = hs_xrealloc(h->tcaches, (h->ntcaches + 1) * sizeof(*h->tcaches));
	memset(&h->tcaches[h->ntcaches], 0, sizeof(*h->tcaches));
	h->tcaches[h->ntcaches].addr = user;
	h->tcaches[h->ntcaches].tid = tid;
	h->ntcaches++;
}

static void find_tcaches(struct hs_glibc_heap *h)
{
	unsigned char img[0x80 + TCACHE_BINS * 8];

	/* A thread's `tcache` pointer lives in libc's static TLS block, below
	 * the TCB at fs_base (x86_64 TLS variant II; 2.36: fs_base - 0x48).
	 * The offset is build-specific, so search, as pwndbg does, and keep
	 * pointers whose target passes plausible_tcache(). */
	for (size_t k = 0; !(h->opts.flags & HS_GLIBC_NO_TLS) && k < h->t->nthreads; k++) {
		const struct hs_thread *th = &h->t->threads[k];
		hs_addr_t fs = th->has_regs ? th->regs.r[HS_REG_FS_BASE] : 0;
		unsigned char *tls = P(h)->rbuf;

		if (!fs || fs < TLS_SPAN || (fs & 7) ||
		    hs_target_read_full(h->t, fs - TLS_SPAN, tls, TLS_SPAN) < 0)
			continue;
		for (size_t off = TLS_SPAN; off >= 8; off -= 8) {
			uint64_t v = get64(tls, off - 8);

			if (v && !(v & 15) && seg_arena(h, v - 16) >= 0 &&
			    plausible_tcache(h, v, img)) {
				add_tcache(h, v, th->tid);
				break;
			}
		}
	}
	/* The thread that creates an arena (and the main thread in [heap])
	 * allocates its tcache first: the first chunk of the first heap. */
	for (size_t i = 0; i < h->narenas; i++) {
		const struct hs_glibc_arena *a = &h->arenas[i];

		if (a->nsegs && plausible_tcache(h, a->segs[0].start + 16, img))
			add_tcache(h, a->segs[0].start + 16, 0);
	}
}

static int walk_tcache(struct hs_glibc_heap *h, struct hs_glibc_tcache *tc)
{
	const struct hs_glibc_layout *L = h->layout;
	unsigned char img[0x80 + TCACHE_BINS * 8];

	if (hs_target_read_full(h->t, tc->addr, img, L->tc_entries + TCACHE_BINS * 8) < 0)
		return 0;
	for (unsigned i = 0; i < TCACHE_BINS; i++) {
		unsigned cnt = L->tc_count_size == 1 ? img[i] :
			       (unsigned)(img[2 * i] | (img[2 * i + 1] << 8));
		hs_addr_t e = get64(img, L->tc_entries + 8 * i);
		unsigned n = 0;
		char list[48];

		snprintf(list, sizeof(list), "tcache bin %u", i);
		while (e && n <= cnt) {
			int ar, r;
			uint64_t sz, next;

			r = take(h, e - 16, HS_CHUNK_TCACHE, -1, MINSIZE + 16ull * i, &ar, &sz, list);
			if (r < 0)
				return -1;
			if (r > 0)
				break;
			count_list(h, ar, HS_CHUNK_TCACHE, sz);
			tc->entries.count++;
			tc->entries.bytes += sz;
			n++;
			if (rd64(h, e, &next) < 0) {
				hs_glibc_problem(h, e, "tcache entry unreadable");
				break;
			}
			e = L->safe_linking ? next ^ (e >> 12) : next;
		}
		if (n != cnt && !e)
			hs_glibc_problem(h, tc->addr, "tcache bin %u: count %u but %u entries",
					 i, cnt, n);
		else if (e && n > cnt)
			hs_glibc_problem(h, tc->addr, "tcache bin %u: longer than its count %u",
					 i, cnt);
		if (hs_interrupted)
			return -HS_E_INTERRUPTED;
	}
	return 0;
}

/*
 * Follows a bin from c through the fd (link 16) or bk (link 24) fields
 * until the head comes back.  Going backwards it stops quietly at a chunk
 * the forward walk already took.  Returns 0 (the head came back), 1 (the
 * list is broken: problem recorded), -1 (set full), -HS_E_INTERRUPTED.
 */
static int walk_bin(struct hs_glibc_heap *h, int ai, hs_addr_t head, hs_addr_t c,
		    unsigned link, enum hs_chunk_state kind, const char *list)
{
	hs_addr_t field = head + link;

	while (c != head) {
		int ar, r;
		uint64_t sz;

		if (!c) {
			hs_glibc_problem(h, field, "%s: %s at 0x%llx is NULL", list,
					 link == 16 ? "fd" : "bk", (unsigned long long)field);
			return 1;
		}
		if (link == 24 && fset_get(&P(h)->set, c) == (int)kind)
			return 0;
		r = take(h, c, kind, ai, 0, &ar, &sz, list);
		if (r)
			return r;
		count_list(h, ar, kind, sz);
		field = c + link;
		if (rd64(h, field, &c) < 0)
			return 1;
		if (hs_interrupted)
			return -HS_E_INTERRUPTED;
	}
	return 0;
}

static int walk_arena_lists(struct hs_glibc_heap *h, int ai)
{
	const struct hs_glibc_layout *L = h->layout;
	hs_addr_t a = h->arenas[ai].addr;
	char list[48];

	for (int i = 0; i < NFASTBINS; i++) {
		hs_addr_t c;

		if (rd64(h, a + (hs_addr_t)L->ms_fastbins + 8u * (unsigned)i, &c) < 0)
			return 0;
		snprintf(list, sizeof(list), "fastbin %d", i);
		while (c) {
			int ar, r;
			uint64_t sz, next;

			r = take(h, c, HS_CHUNK_FASTBIN, ai, MINSIZE + 16ull * (unsigned)i, &ar,
				 &sz, list);
			if (r < 0)
				return -1;
			if (r > 0)
				break;
			count_list(h, ar, HS_CHUNK_FASTBIN, sz);
			if (rd64(h, c + 16, &next) < 0)
				break;
			c = L->safe_linking ? next ^ ((c + 16) >> 12) : next;
			if (hs_interrupted)
				return -HS_E_INTERRUPTED;
		}
	}
	for (int i = 1; i < NBINS; i++) {
		hs_addr_t head = bin_head(L, a, i), c;
		enum hs_chunk_state kind = i == 1 ? HS_CHUNK_UNSORTED :
					   i < NSMALLBINS ? HS_CHUNK_SMALLBIN : HS_CHUNK_LARGEBIN;

		if (rd64(h, head + 16, &c) < 0)
			return 0;
		if (i == 1)
			snprintf(list, sizeof(list), "unsorted bin");
		else
			snprintf(list, sizeof(list), "%s bin %d",
				 i < NSMALLBINS ? "small" : "large", i);
		int r = walk_bin(h, ai, head, c, 16, kind, list);
		if (r < 0)
			return r;
		/* Broken forwards: the chunks still reachable backwards from
		 * the head are free too. */
		if (r > 0 && rd64(h, head + 24, &c) == 0)
			r = walk_bin(h, ai, head, c, 24, kind, list);
		if (r < 0)
			return r;
	}
	return 0;
}

static int collect_free(struct hs_glibc_heap *h)
{
	int ret;

	if (h->layout->tc_count_size) {
		find_tcaches(h);
		for (size_t i = 0; i < h->ntcaches; i++) {
			ret = walk_tcache(h, &h->tcaches[i]);
			if (ret == -HS_E_INTERRUPTED)
				return ret;
			if (ret < 0)
				return 0;
		}
	}
	for (size_t i = 0; i < h->narenas; i++) {
		ret = walk_arena_lists(h, (int)i);
		if (ret == -HS_E_INTERRUPTED)
			return ret;
		if (ret < 0)
			return 0;
	}
	return 0;
}

static bool heap_ptr(struct hs_glibc_heap *h, uint64_t v)
{
	const struct hs_map *m = hs_target_find_map(h->t, v);

	return !(v & 15) && m && (m->perms & HS_PERM_W);
}

/*
 * Safe-linking or not, from the main thread's tcache (the first chunk at
 * sbrk_base): a list's link is plain if it is 0 or a heap pointer, mangled
 * if it decodes to one.  No entries: either fits.
 */
static bool links_match(struct hs_glibc_heap *h, const struct hs_glibc_layout *L)
{
	hs_addr_t base, tc;

	if (rd64(h, h->mp + (hs_addr_t)L->mp_sbrk_base, &base) < 0)
		return false;
	tc = align16(base) + 16;
	for (unsigned i = 0; i < TCACHE_BINS; i++) {
		uint64_t e, raw, dec;

		if (rd64(h, tc + L->tc_entries + 8 * i, &e) < 0)
			return false;
		if (!e)
			continue;
		if (rd64(h, e, &raw) < 0)
			return false;
		dec = raw ^ (e >> 12);
		if (L->safe_linking)
			return dec == 0 || heap_ptr(h, dec);
		return raw == 0 || heap_ptr(h, raw);
	}
	return true;
}

/*
 * No version string: cores (kernel or gdb's gcore) usually leave out
 * libc's read-only segments, where the banner is.  The writable data
 * still holds main_arena and mp_, so try each layout, newest first, and
 * keep the first whose main_arena, mp_ and main tcache chunk all check
 * out.  The version is then unknown; only the layout row is.
 */
static int infer_layout(struct hs_glibc_heap *h)
{
	const struct hs_maps *maps = &h->t->maps;
	const struct hs_glibc_layout *prev = NULL;
	bool libc = h->opts.main_arena != 0; /* the caller knows where it is */
	char why[128];

	for (size_t i = 0; i < maps->n && !libc; i++)
		libc = is_libc_path(maps->v[i].path);
	if (!libc)
		return -HS_E_UNSUPPORTED;
	for (unsigned minor = 40; minor >= 12; minor--) {
		const struct hs_glibc_layout *L = hs_glibc_layout_for(2, minor);
		hs_addr_t top, lo, hi;
		uint64_t raw;

		if (!L || L == prev)
			continue;
		prev = L;
		h->layout = L;
		h->nproblems = 0;
		h->mp = 0;
		if (find_main_arena(h) < 0 ||
		    rd64(h, h->main_arena + (hs_addr_t)L->ms_top, &top) < 0 ||
		    !anon_run(h->t, top, &lo, &hi))
			continue;
		/* A caller's address is trusted as an address, not as a
		 * layout: the row must fit the arena there. */
		if (h->opts.main_arena &&
		    (hs_target_read_full(h->t, h->main_arena, P(h)->buf, L->ms_size) < 0 ||
		     check_arena(h, h->main_arena, P(h)->buf, why, sizeof(why)) == ARENA_NOT))
			continue;
		pick_backport(h);
		L = h->layout;
		find_mp(h, lo, top + 1);
		if (!h->mp)
			continue;
		if (L->tc_count_size) {
			hs_addr_t base;
			if (rd64(h, h->mp + (hs_addr_t)L->mp_sbrk_base, &base) < 0 ||
			    rd64(h, align16(base) + 8, &raw) < 0 ||
			    (raw & ~SIZE_BITS) != L->tc_chunk_size)
				continue;
		}
		if (L->tc_count_size && !links_match(h, L))
			continue;
		if (h->version_minor)
			snprintf(h->version, sizeof(h->version),
				 "glibc 2.%u has no layout row; layout %s inferred at the "
				 "given main_arena", h->version_minor, L->name);
		else
			snprintf(h->version, sizeof(h->version),
				 "no version string; layout %s inferred", L->name);
		h->version_source = "inferred";
		h->nproblems = 0;
		h->mp = 0;
		return 0;
	}
	h->layout = NULL;
	h->nproblems = 0;
	h->main_arena = 0;
	return -HS_E_UNSUPPORTED;
}

/* ---- open / close ---- */

void hs_glibc_close(struct hs_glibc_heap *h)
{
	struct priv *p;

	if (!h)
		return;
	p = h->priv;
	if (p) {
		free(p->set.slots);
		free(p->buf);
		free(p->rbuf);
		free(p->pc_data);
		free(p->segs);
		free(p);
	}
	for (size_t i = 0; i < h->narenas; i++)
		free(h->arenas[i].segs);
	free(h->arenas);
	free(h->tcaches);
	free(h->hist);
	free(h);
}

int hs_glibc_open(struct hs_target *t, const struct hs_glibc_opts *opts,
		  struct hs_glibc_heap **out)
{
	struct hs_glibc_heap *h = hs_xcalloc(1, sizeof(*h));
	struct priv *p = hs_xcalloc(1, sizeof(*p));
	int ret;

	*out = NULL;
	h->t = t;
	h->priv = p;
	if (opts)
		h->opts = *opts;
	if (!h->opts.max_free_chunks)
		h->opts.max_free_chunks = 4u << 20;
	p->set.max = h->opts.max_free_chunks;
	p->buf = hs_xmalloc(WALK_BUF);
	p->rbuf = hs_xmalloc(RESYNC_SPAN);
	p->pc_data = hs_xmalloc(PC_SLOTS * PAGE);
	h->main_arena_how = "";
	h->version_source = "";

	if (h->opts.version_minor) {
		h->version_minor = h->version_minor_max = h->opts.version_minor;
		h->version_source = "given";
		snprintf(h->version, sizeof(h->version), "2.%u (given)", h->version_minor);
	} else {
		ret = detect_version(h);
		if (ret == -HS_E_NOT_FOUND) {
			ret = infer_layout(h);
			if (ret < 0) {
				*out = h;
				return ret;
			}
			goto found;
		}
		if (ret < 0)
			goto err;
	}
	h->layout = hs_glibc_layout_for(2, h->version_minor);
	if (!h->layout && h->opts.main_arena) {
		/* A version without a row, but the caller gave main_arena:
		 * the structures there may still match one. */
		ret = infer_layout(h);
		if (ret < 0) {
			*out = h;
			return -HS_E_UNSUPPORTED;
		}
		goto found;
	}
	if (!h->layout) {
		*out = h;
		return -HS_E_UNSUPPORTED;
	}
	ret = find_main_arena(h);
	if (ret == 0)
		pick_backport(h);
found:
	if (ret == -HS_E_NOT_FOUND) {
		*out = h;
		return ret;
	}
	if (ret < 0)
		goto err;
	ret = find_arenas(h);
	if (ret < 0)
		goto err;
	ret = collect_free(h);
	if (ret < 0)
		goto err;
	if (h->t->state & HS_TSTATE_GONE) {
		ret = -ESRCH;
		goto err;
	}
	*out = h;
	return 0;
err:
	hs_glibc_close(h);
	return ret;
}

/* ---- the walk ---- */

struct walker {
	struct hs_glibc_heap *h;
	hs_glibc_chunk_fn cb;
	void *ud;
};

static int emit(struct walker *w, hs_addr_t addr, uint64_t size,
		enum hs_chunk_state st, int arena)
{
	struct hs_glibc_chunk c = { addr, size, st, arena };

	return w->cb(w->ud, &c);
}

/* State of chunk c given its successor's PREV_INUSE bit. */
static enum hs_chunk_state classify(struct walker *w, hs_addr_t c, bool next_pi)
{
	int k = fset_get(&P(w->h)->set, c);

	if (k < 0)
		return next_pi ? HS_CHUNK_INUSE : HS_CHUNK_UNBINNED;
	/* tcache and fastbin chunks keep the successor's PREV_INUSE set;
	 * whatever it says, the list is what makes them free. */
	if (!next_pi && (k == HS_CHUNK_TCACHE || k == HS_CHUNK_FASTBIN))
		hs_glibc_problem(w->h, c, "%s chunk but next PREV_INUSE clear",
				 hs_chunk_state_name((enum hs_chunk_state)k));
	else if (next_pi && k >= HS_CHUNK_UNSORTED && k <= HS_CHUNK_LARGEBIN)
		hs_glibc_problem(w->h, c, "binned chunk but next PREV_INUSE set");
	return (enum hs_chunk_state)k;
}

static bool header_ok(uint64_t raw, hs_addr_t at, hs_addr_t end)
{
	uint64_t size = raw & ~SIZE_BITS;

	return size >= MINSIZE && !(size & 15) && size <= end - at && !(raw & IS_MMAPPED);
}

/*
 * After a bad header at p: the first 16-aligned q in (p, p + RESYNC_SPAN)
 * from which four headers in a row are sane (or the chain reaches end).
 * Returns 0 if there is none.
 */
static hs_addr_t resync(struct hs_glibc_heap *h, hs_addr_t p, hs_addr_t end)
{
	unsigned char *b = P(h)->rbuf;
	size_t n = 0;
	hs_addr_t lim = end - p < RESYNC_SPAN ? end : p + RESYNC_SPAN;

	if (hs_target_read(h->t, p, b, (size_t)(lim - p), &n) < 0 || n < 32)
		return 0;
	for (hs_addr_t q = p + 16; q + 16 <= p + n; q += 16) {
		hs_addr_t x = q;
		int hops;

		for (hops = 0; hops < 4 && x < end; hops++) {
			uint64_t raw;

			if (x + 16 <= p + n)
				raw = get64(b, (size_t)(x - p) + 8);
			else if (rd64(h, x + 8, &raw) < 0)
				break;
			if (!header_ok(raw, x, end))
				break;
			x += raw & ~SIZE_BITS;
		}
		if (hops == 4 || x == end)
			return q;
	}
	return 0;
}

static int walk_segment(struct walker *w, int ai, struct hs_glibc_seg *s)
{
	struct hs_glibc_heap *h = w->h;
	unsigned char *buf = P(h)->buf;
	hs_addr_t p = s->start, end = s->end, win = 0, prev = 0;
	size_t wlen = 0;
	uint64_t prev_size = 0, steps = 0;
	bool have_prev = false, fencepost = false;
	int ret;

	s->complete = false;
	s->walked_to = p;
	while (p < end) {
		uint64_t raw, size;
		const char *bad = NULL;

		if (p < win || p + 16 > win + wlen ||
		    (p + 32 > win + wlen && wlen == WALK_BUF)) {
			/* +32: the header after this one too, for the fencepost
			 * test, unless the memory itself ends there. */
			size_t want = end + 32 - p < WALK_BUF ? (size_t)(end + 32 - p) : WALK_BUF;
			size_t n = 0;

			ret = hs_target_read(h->t, p, buf, want, &n);
			if (ret == -ESRCH)
				return ret;
			if (n < 16) {
				hs_glibc_problem(h, p, "heap memory unreadable; segment abandoned");
				break;
			}
			win = p;
			wlen = n;
		}
		raw = get64(buf, (size_t)(p - win) + 8);
		size = raw & ~SIZE_BITS;
		if (have_prev) {
			ret = emit(w, prev, prev_size, classify(w, prev, raw & PREV_INUSE), ai);
			if (ret)
				return ret;
			have_prev = false;
		}
		if (size == 16 && !s->has_top && p + 32 <= win + wlen &&
		    (get64(buf, (size_t)(p - win) + 24) & ~SIZE_BITS) <= 16) {
			/* Fenceposts close a heap that no longer holds top. */
			fencepost = true;
			break;
		}
		if (size < MINSIZE)
			bad = "chunk size below MINSIZE";
		else if (size & 15)
			bad = "chunk size not a multiple of 16";
		else if (size > end - p)
			bad = "chunk runs past the end of its heap";
		else if (raw & IS_MMAPPED)
			bad = "IS_MMAPPED set on a heap chunk";
		if (bad) {
			hs_addr_t q;

			hs_glibc_problem(h, p, "%s (size field 0x%llx)", bad,
					 (unsigned long long)raw);
			q = resync(h, p, end);
			if (!q) {
				ret = emit(w, p, end - p, HS_CHUNK_UNPARSED, ai);
				s->walked_to = p;
				return ret;
			}
			ret = emit(w, p, q - p, HS_CHUNK_UNPARSED, ai);
			if (ret)
				return ret;
			p = q;
			continue;
		}
		prev = p;
		prev_size = size;
		have_prev = true;
		p += size;
		if (!(++steps & 0xffff) && hs_interrupted)
			return -HS_E_INTERRUPTED;
	}
	s->walked_to = p;
	if (have_prev) {
		/* The successor is top (its PREV_INUSE is valid), or the end of
		 * a heap with no fencepost: then only the lists can say. */
		uint64_t raw = PREV_INUSE;

		if (p == end && s->has_top) {
			if (p + 16 <= win + wlen)
				raw = get64(buf, (size_t)(p - win) + 8);
			else if (rd64(h, p + 8, &raw) < 0)
				raw = PREV_INUSE;
		}
		ret = emit(w, prev, prev_size, classify(w, prev, raw & PREV_INUSE), ai);
		if (ret)
			return ret;
	}
	s->complete = (p == end) || fencepost;
	return 0;
}

static int walk_mmapped(struct walker *w)
{
	struct hs_glibc_heap *h = w->h;
	const struct hs_maps *maps = &h->t->maps;

	hs_addr_t done = 0;      /* end of the last chunk found */

	for (size_t i = 0; i < maps->n; i++) {
		const struct hs_map *m = &maps->v[i];
		hs_addr_t p = m->start > done ? m->start : done;
		hs_addr_t ext_end = m->end;
		bool overlaps = false;

		if (m->end <= done)
			continue;
		/* mprotect() on part of a chunk (a guard page, say) splits its
		 * mapping: the chunk may run on through adjacent anonymous
		 * mappings of any protection. */
		for (size_t k = i + 1; k < maps->n && maps->v[k].start == ext_end &&
		     !maps->v[k].path[0]; k++)
			ext_end = maps->v[k].end;
		if (m->cls != HS_CLASS_ANON ||
		    (m->perms & (HS_PERM_R | HS_PERM_W)) != (HS_PERM_R | HS_PERM_W))
			continue;
		/* A core may merge [heap] or an arena heap into an "anon" map. */
		for (size_t j = 0; j < P(h)->nsegs; j++)
			if (P(h)->segs[j].start < m->end && P(h)->segs[j].end >= m->start)
				overlaps = true;
		if (overlaps)
			continue;
		/* Written so that p cannot wrap: a hostile core may place a
		 * mapping at the very top of the address space. */
		while (p < m->end && m->end - p >= 16) {
			uint64_t hdr[2], size;
			hs_addr_t ds, de;
			int ret;

			if (hs_interrupted)
				return -HS_E_INTERRUPTED;
			ret = hs_target_read_full(h->t, p, hdr, sizeof(hdr));
			if (ret == -ESRCH)
				return ret;
			if (ret < 0) {
				/* A hole (a core's unbacked pages): to the next
				 * page that may hold data, in one step. */
				if (hs_target_next_data(h->t, p + 1, m->end, &ds, &de) < 0 ||
				    ((ds + PAGE - 1) & ~(hs_addr_t)(PAGE - 1)) < ds)
					break;
				p = (ds + PAGE - 1) & ~(hs_addr_t)(PAGE - 1);
				continue;
			}
			size = hdr[1] & ~SIZE_BITS;
			/* An mmapped chunk starts its pages: prev_size 0, flags
			 * exactly IS_MMAPPED, a page-multiple size that fits. */
			if (ret == 0 && hdr[0] == 0 && (hdr[1] & SIZE_BITS) == IS_MMAPPED &&
			    size >= PAGE && !(size & (PAGE - 1)) && size <= ext_end - p) {
				ret = emit(w, p, size, HS_CHUNK_MMAPPED, -1);
				if (ret)
					return ret;
				p += size;
				done = p;
			} else {
				if (m->end - p <= PAGE)
					break;
				p += PAGE;
			}
		}
	}
	return 0;
}

static int walk_all(struct walker *wp);

int hs_glibc_for_each_chunk(struct hs_glibc_heap *h, hs_glibc_chunk_fn cb, void *ud)
{
	struct walker w = { h, cb, ud };
	int ret;

	if (!h->layout || !h->narenas)
		return 0;
	P(h)->quiet = P(h)->walks++ > 0;
	ret = walk_all(&w);
	P(h)->quiet = false;
	return ret;
}

static int walk_all(struct walker *wp)
{
	struct walker w = *wp;
	struct hs_glibc_heap *h = w.h;
	int ret;

	for (size_t i = 0; i < h->narenas; i++) {
		struct hs_glibc_arena *a = &h->arenas[i];

		for (size_t j = 0; j < a->nsegs; j++) {
			ret = walk_segment(&w, (int)i, &a->segs[j]);
			if (ret)
				return ret;
			if (a->segs[j].has_top && a->top_size) {
				ret = emit(&w, a->top, a->top_size, HS_CHUNK_TOP, (int)i);
				if (ret)
					return ret;
			}
		}
	}
	if (!(h->opts.flags & HS_GLIBC_NO_MMAPPED))
		return walk_mmapped(&w);
	return 0;
}

/* ---- free chunks without the walk ---- */

static int cmp_u64(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;

	return a < b ? -1 : a > b;
}

#define FREE_WIN (64u << 10) /* headers read together at most this far apart */
#define FREE_BATCH 64        /* and at most this many */

int hs_glibc_for_each_free_chunk(struct hs_glibc_heap *h, unsigned flags,
				 hs_glibc_chunk_fn cb, void *ud)
{
	struct priv *p;
	struct walker w = { h, cb, ud };
	uint64_t *v = NULL;
	hs_addr_t win = 0;
	size_t n = 0, wlen = 0;
	int ret = 0;

	if (!h->layout || !h->narenas)
		return 0;
	p = P(h);
	/* The free set in address order, so that nearby headers are read
	 * in one call and each page at most once. */
	if (p->set.n) {
		v = hs_xmalloc(p->set.n * sizeof(*v));
		for (size_t i = 0; i < p->set.cap && n < p->set.n; i++)
			if (p->set.slots[i])
				v[n++] = p->set.slots[i];
		qsort(v, n, sizeof(*v), cmp_u64);
	}
	for (size_t i = 0; i < n; i++) {
		hs_addr_t c = v[i] & ~15ull;
		enum hs_chunk_state kind = (enum hs_chunk_state)(v[i] & 15);
		const struct seg_ref *sg = seg_of(p, c);
		uint64_t raw, size;

		if (!sg)
			continue; /* take() admitted only chunks in a segment */
		if (c < win || c + 16 > win + wlen) {
			size_t j = i, got = 0;

			while (j + 1 < n && j + 1 < i + FREE_BATCH &&
			       (v[j + 1] & ~15ull) + 16 - c <= FREE_WIN)
				j++;
			ret = hs_target_read(h->t, c, p->buf, (size_t)((v[j] & ~15ull) + 16 - c),
					     &got);
			if (ret == -ESRCH)
				goto out;
			ret = 0;
			win = c;
			wlen = got;
			if (got < 16)
				continue; /* unreadable: counts as in use */
		}
		raw = get64(p->buf, (size_t)(c - win) + 8);
		size = raw & ~SIZE_BITS;
		if (size < MINSIZE || (size & 15) || size > sg->end - c)
			continue;
		ret = emit(&w, c, size, kind, sg->arena);
		if (ret)
			goto out;
		if (!(i & 0xffff) && hs_interrupted) {
			ret = -HS_E_INTERRUPTED;
			goto out;
		}
	}
	for (size_t i = 0; i < h->narenas; i++) {
		const struct hs_glibc_arena *a = &h->arenas[i];

		for (size_t j = 0; j < a->nsegs; j++)
			if (a->segs[j].has_top && a->top_size) {
				ret = emit(&w, a->top, a->top_size, HS_CHUNK_TOP, (int)i);
				if (ret)
					goto out;
			}
	}
	if ((flags & HS_GLIBC_FREE_MMAPPED) && !(h->opts.flags & HS_GLIBC_NO_MMAPPED))
		ret = walk_mmapped(&w);
out:
	free(v);
	return ret;
}

/* ---- analysis ---- */

struct hist {
	uint64_t *keys;          /* size + 1 (0 = empty) */
	size_t *idx;
	size_t cap;
	struct hs_glibc_size_bucket *v;
	size_t n;
};

static void hist_add(struct hist *hi, uint64_t chunk_size, hs_addr_t addr)
{
	uint64_t size = chunk_size;
	size_t j;

	if (hi->n >= HIST_MAX)
		size = 0; /* the "other sizes" bucket */
	if ((hi->n + 1) * 2 > hi->cap) {
		size_t ncap = hi->cap ? hi->cap * 2 : 1024;
		uint64_t *nk = hs_xcalloc(ncap, sizeof(*nk));
		size_t *ni = hs_xcalloc(ncap, sizeof(*ni));

		for (size_t i = 0; i < hi->cap; i++) {
			if (!hi->keys[i])
				continue;
			for (j = fset_hash(hi->keys[i] << 4, ncap); nk[j]; j = (j + 1) & (ncap - 1))
				;
			nk[j] = hi->keys[i];
			ni[j] = hi->idx[i];
		}
		free(hi->keys);
		free(hi->idx);
		hi->keys = nk;
		hi->idx = ni;
		hi->cap = ncap;
	}
	for (j = fset_hash((size + 1) << 4, hi->cap); hi->keys[j]; j = (j + 1) & (hi->cap - 1))
		if (hi->keys[j] == size + 1)
			break;
	if (!hi->keys[j]) {
		hi->keys[j] = size + 1;
		hi->idx[j] = hi->n;
		hi->v = hs_xrealloc(hi->v, (hi->n + 1) * sizeof(*hi->v));
		hi->v[hi->n++] = (struct hs_glibc_size_bucket){ size, 0, 0, addr };
	}
	hi->v[hi->idx[j]].count++;
	hi->v[hi->idx[j]].bytes += chunk_size;
}

struct analysis {
	struct hs_glibc_heap *h;
	struct hist hist;
};

static int analyze_cb(void *ud, const struct hs_glibc_chunk *c)
{
	struct analysis *an = ud;
	struct hs_glibc_heap *h = an->h;

	h->walked_bytes += c->size;
	h->totals[c->state].count++;
	h->totals[c->state].bytes += c->size;
	if (c->arena >= 0) {
		h->arenas[c->arena].st[c->state].count++;
		h->arenas[c->arena].st[c->state].bytes += c->size;
	} else {
		h->mmapped.count++;
		h->mmapped.bytes += c->size;
	}
	if (c->state == HS_CHUNK_INUSE || c->state == HS_CHUNK_MMAPPED)
		hist_add(&an->hist, c->size, c->addr);
	return 0;
}

static int cmp_bucket(const void *x, const void *y)
{
	const struct hs_glibc_size_bucket *a = x, *b = y;

	if (a->bytes != b->bytes)
		return a->bytes > b->bytes ? -1 : 1;
	return a->size < b->size ? -1 : a->size > b->size;
}

int hs_glibc_analyze(struct hs_glibc_heap *h)
{
	struct analysis an;
	uint64_t t0 = hs_now_ns();
	int ret;

	memset(&an, 0, sizeof(an));
	an.h = h;
	h->walked_bytes = 0;
	memset(h->totals, 0, sizeof(h->totals));
	memset(&h->mmapped, 0, sizeof(h->mmapped));
	for (size_t i = 0; i < h->narenas; i++)
		memset(h->arenas[i].st, 0, sizeof(h->arenas[i].st));
	ret = hs_glibc_for_each_chunk(h, analyze_cb, &an);
	h->walk_ns = hs_now_ns() - t0;
	free(an.hist.keys);
	free(an.hist.idx);
	if (an.hist.n)
		qsort(an.hist.v, an.hist.n, sizeof(*an.hist.v), cmp_bucket);
	free(h->hist);
	h->hist = an.hist.v;
	h->nhist = an.hist.n;
	if (ret)
		return ret;
	h->analyzed = true;
	/* Cross-check: every chunk the lists named must be met by the walk. */
	for (size_t i = 0; i < h->narenas && !h->free_set_full; i++) {
		const struct hs_glibc_arena *a = &h->arenas[i];
		bool whole = true;

		for (size_t j = 0; j < a->nsegs; j++)
			whole = whole && a->segs[j].complete;
		for (int k = HS_CHUNK_TCACHE; k <= HS_CHUNK_LARGEBIN && whole; k++)
			if (a->lists[k].count != a->st[k].count)
				hs_glibc_problem(h, a->addr,
						 "arena: %llu %s chunks in the lists, %llu met by "
						 "the walk",
						 (unsigned long long)a->lists[k].count,
						 hs_chunk_state_name((enum hs_chunk_state)k),
						 (unsigned long long)a->st[k].count);
	}
	if (h->mp && !(h->opts.flags & HS_GLIBC_NO_MMAPPED) &&
	    (h->mp_n_mmaps != h->mmapped.count || h->mp_mmapped_mem != h->mmapped.bytes))
		hs_glibc_problem(h, h->mp,
				 "mp_ counts %llu mmapped chunks (%llu bytes), the scan "
				 "found %llu (%llu bytes)",
				 (unsigned long long)h->mp_n_mmaps,
				 (unsigned long long)h->mp_mmapped_mem,
				 (unsigned long long)h->mmapped.count,
				 (unsigned long long)h->mmapped.bytes);
	return 0;
}

double hs_glibc_arena_fragmentation(const struct hs_glibc_arena *a)
{
	uint64_t held = 0;

	if (!a->system_mem)
		return 0.0;
	for (int k = HS_CHUNK_TCACHE; k <= HS_CHUNK_UNBINNED; k++)
		held += a->st[k].bytes;
	return (double)held / (double)a->system_mem;
}
