/*
 * Finding a CPython interpreter's pymalloc arenas and type objects by
 * shape; see hs_python.h and doc/python.md.
 */
#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define KIB 1024ull
#define MIB (1024ull * 1024)

/* Per-version facts (doc/python.md): arena and pool sizes, the flags that
 * add a pre-header, sizeof(PyHeapTypeObject) and where ht_qualname is,
 * the compact-ASCII data offset and the dict keys layout. */
static const struct py_layout layouts[] = {
	{ 8, 256 * KIB, 4 * KIB, 0, 880, 864, 48, false },
	{ 9, 256 * KIB, 4 * KIB, 0, 880, 856, 48, false },
	{ 10, 1 * MIB, 16 * KIB, 0, 888, 864, 48, false },
	{ 11, 1 * MIB, 16 * KIB, PY_TPF_MANAGED_DICT, 904, 864, 48, true },
	{ 12, 1 * MIB, 16 * KIB, PY_TPF_MANAGED_DICT | PY_TPF_MANAGED_WEAKREF,
	  920, 872, 40, true },
	{ 13, 1 * MIB, 16 * KIB, PY_TPF_MANAGED_DICT | PY_TPF_MANAGED_WEAKREF,
	  928, 872, 40, true },
};

const struct py_layout *hs_py_layout_for(unsigned minor)
{
	for (size_t i = 0; i < HS_ARRAY_SIZE(layouts); i++)
		if (layouts[i].minor == minor)
			return &layouts[i];
	return NULL;
}

void hs_py_problem(struct hs_py *py, hs_addr_t addr, const char *fmt, ...)
{
	struct py_priv *pv = py->priv;
	va_list ap;

	/* The census's threads report too. */
	pthread_mutex_lock(&pv->mu);
	va_start(ap, fmt);
	hs_problem_vadd(py->problems, HS_PY_MAX_PROBLEMS, &py->nproblems, addr, fmt, ap);
	va_end(ap);
	pthread_mutex_unlock(&pv->mu);
}

/* ---- the type table ---------------------------------------------------- */

static size_t hslot(hs_addr_t addr, size_t mask)
{
	return (size_t)((addr >> 3) * 0x9E3779B97F4A7C15ull >> 20) & mask;
}

static void hash_insert(struct py_priv *pv, const struct hs_py_type *types,
			uint32_t idx)
{
	size_t mask = pv->hcap - 1, i = hslot(types[idx].addr, mask);

	while (pv->hash[i])
		i = (i + 1) & mask;
	pv->hash[i] = idx + 1;
}

static void hash_grow(struct hs_py *py)
{
	struct py_priv *pv = py->priv;

	if ((py->ntypes + 1) * 2 <= pv->hcap)
		return;
	free(pv->hash);
	pv->hcap *= 2;
	pv->hash = hs_xcalloc(pv->hcap, sizeof(*pv->hash));
	for (size_t i = 0; i < py->ntypes; i++)
		hash_insert(pv, py->types, (uint32_t)i);
}

static bool printable(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f)
			return false;
	return n > 0;
}

/* A str object's text when it is compact ASCII (every identifier a module
 * or class name is made of); -1 otherwise. */
static int read_ascii_str(struct hs_py *py, hs_addr_t s, char *out, size_t max)
{
	const struct py_layout *lay = ((struct py_priv *)py->priv)->lay;
	unsigned char hdr[48];
	uint64_t len;
	unsigned state;

	if (!s || (s & 7) || hs_target_read_full(py->t, s, hdr, sizeof(hdr)) < 0)
		return -1;
	len = py_u64(hdr + PY_STR_LENGTH);
	state = hdr[PY_STR_STATE];
	/* kind 1 (1 byte), compact, ascii */
	if (((state >> 2) & 7) != 1 || !(state & 0x20) || !(state & 0x40) ||
	    len == 0 || len >= max)
		return -1;
	if (hs_target_read_full(py->t, s + lay->str_data, out, (size_t)len) < 0 ||
	    !printable(out, (size_t)len))
		return -1;
	out[len] = '\0';
	return (int)len;
}

/* The value of '__module__' in a class's dict (a combined table), or -1.
 * Dict layouts: doc/python.md. */
#define MAX_DICT_ENTRIES 256
static int dict_module(struct hs_py *py, hs_addr_t dict, char *out, size_t max)
{
	const struct py_layout *lay = ((struct py_priv *)py->priv)->lay;
	unsigned char d[48], k[48], ents[MAX_DICT_ENTRIES * 24];
	uint64_t nent, esize, eoff, kaddr;
	/* The interned "__module__" str every class dict shares. */
	hs_addr_t *modkey = &((struct py_priv *)py->priv)->modkey;

	if (!dict || (dict & 7) || hs_target_read_full(py->t, dict, d, sizeof(d)) < 0)
		return -1;
	kaddr = py_u64(d + 32);
	if (py_u64(d + 40) != 0 || !kaddr || (kaddr & 7) ||
	    hs_target_read_full(py->t, kaddr, k, sizeof(k)) < 0)
		return -1;
	if (lay->dict_log2) {
		unsigned log2_idx = k[9], kind = k[10];

		if (log2_idx > 40)
			return -1;
		nent = py_u64(k + 24);
		eoff = 32 + (1ull << log2_idx);
		esize = kind == 0 ? 24 : 16;
	} else {
		uint64_t size = py_u64(k + 8), ib;

		if (!size || size > (1ull << 40) || (size & (size - 1)))
			return -1;
		ib = size <= 0xff ? 1 : size <= 0xffff ? 2 : size <= 0xffffffffull ? 4 : 8;
		nent = py_u64(k + 32);
		eoff = 40 + size * ib;
		esize = 24;
	}
	if (nent > MAX_DICT_ENTRIES)
		nent = MAX_DICT_ENTRIES;
	if (!nent || hs_target_read_full(py->t, kaddr + eoff, ents,
					 (size_t)(nent * esize)) < 0)
		return -1;
	/* First by the address of the interned "__module__" most class dicts
	 * share (no read), then by reading the keys: an extension may have
	 * made its own "__module__" string. */
	for (int pass = *modkey ? 0 : 1; pass < 2; pass++)
		for (uint64_t i = 0; i < nent; i++) {
			const unsigned char *e = ents + i * esize + (esize == 24 ? 8 : 0);
			hs_addr_t key = py_u64(e), val = py_u64(e + 8);
			char kb[16];

			if (!key || (pass == 0 && key != *modkey))
				continue;
			if (pass == 1 && (key == *modkey ||
					  read_ascii_str(py, key, kb, sizeof(kb)) != 10 ||
					  strcmp(kb, "__module__")))
				continue;
			if (!*modkey)
				*modkey = key;
			return read_ascii_str(py, val, out, max);
		}
	return -1;
}

/* A static type's tp_name: a C string in the module's .rodata, from the
 * target or else from the module's file. */
static int read_static_name(struct hs_py *py, hs_addr_t a, char *out, size_t max)
{
	int n = hs_read_cstr(py->t, a, out, max);

	if (n < 0 && n != -ESRCH && py->opts.read_file) {
		/* Page by page: the string may end before a page we cannot have. */
		size_t got = 0;

		while (got + 1 < max) {
			size_t want = 64 - ((a + got) & 63);
			char *nul;

			if (want > max - 1 - got)
				want = max - 1 - got;
			if (py->opts.read_file(py->opts.read_file_ud, a + got, out + got, want) < 0)
				return -1;
			nul = memchr(out + got, '\0', want);
			if (nul) {
				n = (int)(nul - out);
				break;
			}
			got += want;
		}
	}
	if (n <= 0 || !printable(out, (size_t)n))
		return -1;
	return n;
}

long hs_py_type_add(struct hs_py *py, hs_addr_t addr, bool heap)
{
	struct py_priv *pv = py->priv;
	const struct py_layout *lay = pv->lay;
	unsigned char b[PY_TP_READ];
	uint64_t refcnt, flags;
	int64_t basic, item;
	char name[256], mod[128];
	struct hs_py_type *ty;
	long idx;

	if (!addr || (addr & 7))
		return -1;
	idx = py_type_lookup(py, addr);
	if (idx >= 0)
		return idx;
	if (py->ntypes >= HS_PY_MAX_TYPES ||
	    hs_target_read_full(py->t, addr, b, sizeof(b)) < 0)
		return -1;
	refcnt = py_u64(b + PY_OB_REFCNT);
	flags = py_u64(b + PY_TP_FLAGS);
	basic = (int64_t)py_u64(b + PY_TP_BASICSIZE);
	item = (int64_t)py_u64(b + PY_TP_ITEMSIZE);
	if (!refcnt || refcnt > PY_MAX_REFCNT || basic < 16 || basic > (1 << 24) ||
	    item < 0 || item > (1 << 16) || !(flags & PY_TPF_READY) ||
	    !!(flags & PY_TPF_HEAPTYPE) != heap || (flags >> 32))
		return -1;
	name[0] = '\0';
	if (heap) {
		unsigned char q[8];
		int n = -1;

		if (hs_target_read_full(py->t, addr + lay->ht_qualname, q, 8) == 0)
			n = read_ascii_str(py, py_u64(q), name, sizeof(name) - sizeof(mod));
		if (n < 0 && (hs_read_cstr(py->t, py_u64(b + PY_TP_NAME), name, 128) <= 0 ||
			      !printable(name, strlen(name))))
			return -1;
		if (dict_module(py, py_u64(b + PY_TP_DICT), mod, sizeof(mod)) < 0) {
			/* No str __module__ in the dict (an extension's type
			 * may hold a descriptor there): a type made from a
			 * spec has the module in tp_name, "pkg.mod.Name". */
			char tn[128];
			char *dot;

			mod[0] = '\0';
			if (hs_read_cstr(py->t, py_u64(b + PY_TP_NAME), tn, sizeof(tn)) > 0 &&
			    printable(tn, strlen(tn)) && (dot = strrchr(tn, '.')) &&
			    (size_t)(dot - tn) < sizeof(mod)) {
				memcpy(mod, tn, (size_t)(dot - tn));
				mod[dot - tn] = '\0';
			}
		}
		if (mod[0] && strcmp(mod, "builtins")) {
			size_t ml = strlen(mod), nl = strlen(name);

			memmove(name + ml + 1, name, nl + 1);
			memcpy(name, mod, ml);
			name[ml] = '.';
		}
	} else if (read_static_name(py, py_u64(b + PY_TP_NAME), name, sizeof(name)) < 0) {
		return -1;
	}
	hash_grow(py);
	HS_ALLOC_GROW(py->types, py->ntypes + 1, pv->types_alloc);
	ty = &py->types[py->ntypes];
	memset(ty, 0, sizeof(*ty));
	ty->addr = addr;
	ty->name = hs_xstrdup(name);
	ty->flags = flags;
	ty->basicsize = basic;
	ty->itemsize = item;
	ty->heap = heap;
	ty->obj_off = ((flags & PY_TPF_HAVE_GC) ? PY_GC_HEAD : 0) +
		      ((flags & lay->preheader_flags) ? PY_PREHEADER : 0);
	hash_insert(pv, py->types, (uint32_t)py->ntypes);
	if (heap)
		py->nheap_types++;
	else
		py->nstatic_types++;
	return (long)py->ntypes++;
}

/* ---- scanning the modules' writable data ------------------------------- */

#define SCAN_BUF (1u << 20)
#define MAX_VEC_CANDS 65536
#define MAX_TYPE_CANDS (1u << 20)
/* bss mapped anonymously right after a module's data: scanned up to this. */
#define MAX_BSS (64ull << 20)
#define VEC_CHECK 16             /* INITIAL_ARENA_OBJECTS */
#define MAX_AO (1ull << 24)

struct scan_ctx {
	struct hs_py *py;
	bool interp;             /* in the interpreter module: vector search */
	const hs_addr_t *metas;  /* ob_type values looked for */
	size_t nmetas;
	hs_addr_t *tcand;        /* type candidates */
	size_t ntcand, tcand_alloc;
	struct vcand {
		hs_addr_t vec;   /* arena vector candidate: the word's value */
		hs_addr_t where; /* the word's address */
	} *vcand;
	size_t nvcand, vcand_alloc;
};

static bool is_heapish(const struct hs_map *m)
{
	return m && (m->perms & (HS_PERM_R | HS_PERM_W)) == (HS_PERM_R | HS_PERM_W) &&
	       !(m->perms & HS_PERM_SHARED) &&
	       (!m->path[0] || !strcmp(m->path, "[heap]"));
}

static int scan_cb(void *ud, hs_addr_t addr, const void *data, size_t len)
{
	struct scan_ctx *sc = ud;
	const unsigned char *p = data;
	size_t skip = (size_t)((8 - (addr & 7)) & 7);

	for (size_t off = skip; off + 8 <= len; off += 8) {
		uint64_t w = py_u64(p + off);

		for (size_t m = 0; m < sc->nmetas; m++)
			if (w == sc->metas[m] && addr + off >= 8 &&
			    sc->ntcand < MAX_TYPE_CANDS) {
				HS_ALLOC_GROW(sc->tcand, sc->ntcand + 1, sc->tcand_alloc);
				sc->tcand[sc->ntcand++] = addr + off - 8;
			}
		if (sc->interp && w && !(w & 15) && sc->nvcand < MAX_VEC_CANDS &&
		    is_heapish(hs_target_find_map(sc->py->t, w))) {
			HS_ALLOC_GROW(sc->vcand, sc->nvcand + 1, sc->vcand_alloc);
			sc->vcand[sc->nvcand++] = (struct vcand){ w, addr + off };
		}
	}
	return hs_interrupted ? -HS_E_INTERRUPTED : 0;
}

/* Streams every private rw mapping of a file (and the anonymous rw
 * mapping right after one, its .bss) through scan_cb. */
static int scan_data(struct hs_py *py, struct scan_ctx *sc, void *buf, bool vec)
{
	struct hs_target *t = py->t;
	const char *prev_path = NULL;
	hs_addr_t prev_end = 0;

	for (size_t i = 0; i < t->maps.n; i++) {
		const struct hs_map *m = &t->maps.v[i];
		bool rw = (m->perms & (HS_PERM_R | HS_PERM_W)) == (HS_PERM_R | HS_PERM_W) &&
			  !(m->perms & HS_PERM_SHARED);
		const char *path = NULL;
		int ret;

		if (rw && m->path[0] == '/' && !(m->flags & HS_MAP_SPECIAL))
			path = m->path;
		else if (rw && !m->path[0] && prev_path && m->start == prev_end &&
			 m->end - m->start <= MAX_BSS)
			path = prev_path;
		if (path) {
			sc->interp = vec && py->module && !strcmp(path, py->module);
			ret = hs_target_stream(t, m->start, m->end, buf, SCAN_BUF,
					       scan_cb, sc, NULL);
			if (ret == -ESRCH || ret == -HS_E_INTERRUPTED)
				return ret;
			py->data_scanned += m->end - m->start;
		}
		prev_path = m->path[0] == '/' ? m->path : NULL;
		prev_end = m->end;
	}
	return 0;
}

/*
 * Is vec the arena vector?  Its first VEC_CHECK entries (the vector's
 * initial size) must all be sane: a used entry describes an arena of the
 * version's geometry, an unused one (address 0) links only within the
 * vector.  Returns the number of used entries seen, or -1.
 */
static long check_vector(struct hs_py *py, hs_addr_t vec, uint64_t *nentries)
{
	unsigned char b[8 + VEC_CHECK * PY_AO_SIZE];
	uint64_t csize, n, npools = py->arena_size / py->pool_size;
	long used = 0;

	if (hs_target_read_full(py->t, vec - 8, b, sizeof(b)) < 0)
		return -1;
	/* glibc's chunk size word before the vector (in use, maybe mmapped) */
	csize = py_u64(b) & ~7ull;
	if (csize < 8 + VEC_CHECK * PY_AO_SIZE || csize > MAX_AO * PY_AO_SIZE)
		return -1;
	n = (csize - 8) / PY_AO_SIZE;
	for (unsigned i = 0; i < VEC_CHECK; i++) {
		const unsigned char *e = b + 8 + i * PY_AO_SIZE;
		hs_addr_t a = py_u64(e + PY_AO_ADDRESS), pa = py_u64(e + PY_AO_POOL_ADDRESS);
		uint32_t nfree = py_u32(e + PY_AO_NFREEPOOLS), ntot = py_u32(e + PY_AO_NTOTALPOOLS);
		hs_addr_t next = py_u64(e + PY_AO_NEXTARENA);

		if (!a) {
			if (next && (next < vec || next >= vec + n * PY_AO_SIZE ||
				     (next - vec) % PY_AO_SIZE))
				return -1;
			continue;
		}
		hs_addr_t first = (a + py->pool_size - 1) & ~(py->pool_size - 1);

		if (pa < first || pa > a + py->arena_size || (pa - first) % py->pool_size ||
		    ntot > npools || ntot + 1 < npools || nfree > ntot ||
		    !hs_target_find_map(py->t, a))
			return -1;
		used++;
	}
	*nentries = n;
	return used ? used : -1;
}

static int arena_cmp(const void *a, const void *b)
{
	const struct hs_py_arena *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

/* Appends the used arenas of the vector at vec (n entries, bounded) to
 * py->arenas; the caller sorts. */
static int load_arenas(struct hs_py *py, hs_addr_t vec, uint64_t n, size_t *alloc)
{
	enum { BATCH = 4096 };
	unsigned char *b = hs_xmalloc(BATCH * PY_AO_SIZE);
	int ret = 0;

	for (uint64_t i = 0; i < n; i += BATCH) {
		uint64_t k = n - i < BATCH ? n - i : BATCH;
		size_t got = 0;

		ret = hs_target_read(py->t, vec + i * PY_AO_SIZE, b,
				     (size_t)(k * PY_AO_SIZE), &got);
		if (ret == -ESRCH)
			break;
		ret = 0;
		for (uint64_t j = 0; j < k && (j + 1) * PY_AO_SIZE <= got; j++) {
			const unsigned char *e = b + j * PY_AO_SIZE;
			hs_addr_t a = py_u64(e + PY_AO_ADDRESS), pa = py_u64(e + PY_AO_POOL_ADDRESS);

			if (!a)
				continue;
			if (pa < a || pa > a + py->arena_size) {
				hs_py_problem(py, vec + (i + j) * PY_AO_SIZE,
					      "arena_object %" PRIu64 ": pool_address outside its arena",
					      i + j);
				continue;
			}
			HS_ALLOC_GROW(py->arenas, py->narenas + 1, *alloc);
			py->arenas[py->narenas].addr = a;
			py->arenas[py->narenas].size = py->arena_size;
			py->arenas[py->narenas].pool_address = pa;
			py->arenas[py->narenas].index = (uint32_t)(i + j);
			py->narenas++;
		}
		if (got < k * PY_AO_SIZE)
			break;
	}
	free(b);
	return ret;
}

#define MAX_INTERPS 256

/*
 * The arena vectors of sub-interpreters with their own obmalloc state
 * (3.12+, isolated ones), found from the main interpreter's: its vector
 * pointer lies at a fixed offset from the interpreter (3.12: the state is
 * inside it), or from the state the interpreter points to (3.13: the
 * pointer to the state is at a fixed offset, found as the word of the
 * main interpreter that points closest below the vector pointer).  The
 * interpreters are a list from _PyRuntime.interpreters.head (offset 40
 * in 3.12), linked by `next` (offset 0); 3.13 gives both offsets and the
 * interpreter's size in its _Py_DebugOffsets.  Appends to *vecs.
 */
static void find_sub_vectors(struct hs_py *py, hs_addr_t *vecs, uint64_t *ns,
			     size_t *nvec, size_t max)
{
	hs_addr_t rt = py->opts.runtime, head, main_i = 0, interp;
	uint64_t next_off = 0, isize = 0, obm_off = 0, d = 0;
	unsigned char dbg[72];
	uint64_t head_off = 40;

	if (py->minor < 12 || !rt || !py->arenas_ptr)
		return;
	if (py->minor >= 13) {
		if (hs_target_read_full(py->t, rt, dbg, sizeof(dbg)) < 0 ||
		    memcmp(dbg, "xdebugpy", 8))
			return;
		head_off = py_u64(dbg + 40);
		isize = py_u64(dbg + 48);
		next_off = py_u64(dbg + 64);
		if (head_off > (1u << 24) || isize > (1u << 24) || next_off + 8 > isize)
			return;
	}
	if (hs_read_u64(py->t, rt + head_off, &head) < 0 || !head)
		return;
	/* The main interpreter: the one whose memory (3.12) or whose pointed
	 * state (3.13) holds the vector pointer found in the data. */
	interp = head;
	for (unsigned k = 0; interp && k < MAX_INTERPS && !main_i; k++) {
		if (py->minor == 12) {
			if (py->arenas_ptr >= interp && py->arenas_ptr - interp < (1u << 20)) {
				main_i = interp;
				d = py->arenas_ptr - interp;
			}
		} else {
			enum { WIN = 64 << 10 };
			unsigned char *w = hs_xmalloc(WIN);
			size_t got = 0;
			uint64_t len = isize < WIN ? isize : WIN;

			if (hs_target_read(py->t, interp, w, (size_t)len, &got) == 0)
				for (size_t o = 0; o + 8 <= got; o += 8) {
					hs_addr_t x = py_u64(w + o);

					if (x && x <= py->arenas_ptr && py->arenas_ptr - x < 8192 &&
					    (!main_i || py->arenas_ptr - x < d)) {
						main_i = interp;
						obm_off = o;
						d = py->arenas_ptr - x;
					}
				}
			free(w);
		}
		if (!main_i && hs_read_u64(py->t, interp + next_off, &interp) < 0)
			break;
	}
	hs_log(HS_LOG_DEBUG, "python: interpreters from 0x%" PRIx64 ", main 0x%" PRIx64
	       ", its obmalloc state at +%" PRIu64 ", vector pointer at +%" PRIu64,
	       head, main_i, obm_off, d);
	if (!main_i)
		return;
	interp = head;
	for (unsigned k = 0; interp && k < MAX_INTERPS && *nvec < max; k++) {
		hs_addr_t state = interp, vec;
		uint64_t n = 0;

		if (interp != main_i &&
		    (py->minor == 12 || hs_read_u64(py->t, interp + obm_off, &state) == 0) &&
		    hs_read_u64(py->t, state + d, &vec) == 0 && vec) {
			bool seen = false;

			hs_log(HS_LOG_DEBUG, "python: interpreter 0x%" PRIx64 ": obmalloc state "
			       "0x%" PRIx64 ", arena vector 0x%" PRIx64, interp, state, vec);
			for (size_t i = 0; i < *nvec; i++)
				seen |= vecs[i] == vec;
			if (!seen && check_vector(py, vec, &n) > 0) {
				vecs[*nvec] = vec;
				ns[(*nvec)++] = n;
			}
		}
		if (hs_read_u64(py->t, interp + next_off, &interp) < 0)
			break;
	}
}

const struct hs_py_arena *hs_py_arena_find(const struct hs_py *py, hs_addr_t addr)
{
	size_t lo = 0, hi = py->narenas;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (py->arenas[mid].addr <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo && addr < py->arenas[lo - 1].addr + py->arenas[lo - 1].size)
		return &py->arenas[lo - 1];
	return NULL;
}

/* Validates the type candidates of one pass; returns how many metatypes
 * were added. */
static size_t accept_static(struct hs_py *py, struct scan_ctx *sc)
{
	size_t nmeta = 0;

	for (size_t i = 0; i < sc->ntcand; i++) {
		size_t before = py->ntypes;
		long idx = hs_py_type_add(py, sc->tcand[i], false);

		if (idx >= 0 && (size_t)idx >= before &&
		    (py->types[idx].flags & PY_TPF_TYPE_SUBCLASS))
			nmeta++;
		if (hs_interrupted)
			break;
	}
	sc->ntcand = 0;
	return nmeta;
}

static int find_static(struct hs_py *py, void *buf)
{
	struct scan_ctx sc;
	hs_addr_t metas[64];
	int ret;

	memset(&sc, 0, sizeof(sc));
	metas[0] = py->opts.type_type;
	sc.metas = metas;
	sc.nmetas = 1;
	sc.py = py;
	ret = scan_data(py, &sc, buf, true);
	if (ret < 0)
		goto out;
	/* The vector: the candidate with the most used arenas. */
	for (size_t i = 0, best = 0; i < sc.nvcand; i++) {
		uint64_t n = 0;
		long used = check_vector(py, sc.vcand[i].vec, &n);

		if (used > 0 && (size_t)used > best) {
			best = (size_t)used;
			py->arenas_vec = sc.vcand[i].vec;
			py->arenas_ptr = sc.vcand[i].where;
			py->maxarenas = n;
		}
	}
	/* Static metatypes (rare: ctypes) are found in a further pass. */
	for (int pass = 0; pass < 3 && !hs_interrupted; pass++) {
		size_t from = py->ntypes, nm;

		if (accept_static(py, &sc) == 0)
			break;
		nm = 0;
		for (size_t i = from; i < py->ntypes && nm < HS_ARRAY_SIZE(metas); i++)
			if ((py->types[i].flags & PY_TPF_TYPE_SUBCLASS) &&
			    py->types[i].addr != py->opts.type_type)
				metas[nm++] = py->types[i].addr;
		if (!nm)
			break;
		sc.nmetas = nm;
		ret = scan_data(py, &sc, buf, false);
		if (ret < 0)
			goto out;
	}
	if (hs_interrupted)
		ret = -HS_E_INTERRUPTED;
out:
	free(sc.tcand);
	free(sc.vcand);
	return ret;
}

int hs_py_open(struct hs_target *t, const struct hs_py_opts *opts, struct hs_py **out)
{
	struct hs_py *py;
	struct py_priv *pv;
	void *buf = NULL;
	int ret;

	*out = NULL;
	if (!opts || !opts->type_type)
		return -HS_E_NOT_FOUND;
	py = hs_xcalloc(1, sizeof(*py));
	pv = hs_xcalloc(1, sizeof(*pv));
	pthread_mutex_init(&pv->mu, NULL);
	pv->hcap = 1024;
	pv->hash = hs_xcalloc(pv->hcap, sizeof(*pv->hash));
	py->priv = pv;
	py->t = t;
	py->opts = *opts;
	py->module = opts->module ? hs_xstrdup(opts->module) : NULL;
	py->opts.module = py->module;
	py->minor = opts->major == 3 ? opts->minor : 0;
	if (opts->version_hex)
		snprintf(py->version, sizeof(py->version), "%u.%u.%u",
			 opts->version_hex >> 24, (opts->version_hex >> 16) & 0xff,
			 (opts->version_hex >> 8) & 0xff);
	else if (opts->major)
		snprintf(py->version, sizeof(py->version), "%u.%u", opts->major,
			 opts->minor);
	*out = py;
	pv->lay = py->minor && opts->runtime ? hs_py_layout_for(py->minor) : NULL;
	if (!pv->lay)
		return -HS_E_UNSUPPORTED;
	py->jobs = opts->jobs;
	if (!py->jobs) /* as heapscan strings: 2, or 1 on one CPU */
		py->jobs = sysconf(_SC_NPROCESSORS_ONLN) > 1 ? 2 : 1;
	py->arena_size = pv->lay->arena_size;
	py->pool_size = pv->lay->pool_size;
	if (hs_py_type_add(py, opts->type_type, false) != 0 ||
	    !(py->types[0].flags & PY_TPF_TYPE_SUBCLASS))
		return -HS_E_CORRUPT;
	buf = hs_xmalloc(SCAN_BUF);
	ret = find_static(py, buf);
	free(buf);
	if (ret < 0)
		return ret;
	if (py->arenas_vec) {
		hs_addr_t vecs[16];
		uint64_t ns[16];
		size_t nvec = 1, alloc = 0;

		vecs[0] = py->arenas_vec;
		ns[0] = py->maxarenas;
		find_sub_vectors(py, vecs, ns, &nvec, HS_ARRAY_SIZE(vecs));
		py->nvectors = nvec;
		for (size_t i = 0; i < nvec && ret == 0; i++)
			ret = load_arenas(py, vecs[i], ns[i], &alloc);
		if (py->narenas > 1)
			qsort(py->arenas, py->narenas, sizeof(*py->arenas), arena_cmp);
	}
	return ret;
}

void hs_py_close(struct hs_py *py)
{
	struct py_priv *pv;

	if (!py)
		return;
	pv = py->priv;
	for (size_t i = 0; i < py->ntypes; i++)
		free(py->types[i].name);
	free(py->types);
	free(py->arenas);
	free(py->module);
	if (pv) {
		free(pv->hash);
		pthread_mutex_destroy(&pv->mu);
	}
	free(pv);
	free(py);
}
