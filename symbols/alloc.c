/*
 * Which allocator a target uses, and jemalloc's entry points; see
 * hs_alloc.h, and doc/jemalloc.md for the facts about Debian 12's
 * libjemalloc.so.2 (5.3.0) relied on here.
 */
#include "hs_alloc.h"
#include "hs_syms.h"
#include "internal.h"

#include <capstone/capstone.h>
#include <errno.h>
#include <gelf.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_PHDRS 64
#define MAX_DYNSYMS (1u << 20)
#define CODE_BYTES 0x300
#define MAX_INSNS 160
/* The rtree_t: a pointer, a 0x70-byte mutex, 2^18 root pointers. */
#define RTREE_BYTES (0x78ull + (8ull << 18))

static const char *const alloc_names[] = {
#define HS_X_(n, s) s,
	HS_ALLOCATORS(HS_X_)
#undef HS_X_
};

const char *hs_alloc_name(enum hs_alloc_kind k)
{
	return (unsigned)k < HS_ALLOC_N ? alloc_names[k] : "unknown";
}

static const char *base_name(const char *p)
{
	const char *b = strrchr(p, '/');

	return b ? b + 1 : p;
}

static bool prefix(const char *s, const char *p)
{
	return !strncmp(s, p, strlen(p));
}

static enum hs_alloc_kind kind_of_module(const char *path)
{
	const char *b = base_name(path);

	if (prefix(b, "libjemalloc"))
		return HS_ALLOC_JEMALLOC;
	if (prefix(b, "libtcmalloc"))
		return HS_ALLOC_TCMALLOC;
	if (prefix(b, "libmimalloc"))
		return HS_ALLOC_MIMALLOC;
	/* musl's libc is also its dynamic loader: ld-musl-ARCH.so.1 is a
	 * link to it (Debian: /usr/lib/x86_64-linux-musl/libc.so, Alpine:
	 * /lib/ld-musl-x86_64.so.1 or libc.musl-x86_64.so.1). */
	if (prefix(b, "ld-musl") || prefix(b, "libc.musl") ||
	    (prefix(b, "libc.so") && strstr(path, "musl")))
		return HS_ALLOC_MUSL;
	if (!strcmp(b, "libc.so.6") || (prefix(b, "libc-2.") && strstr(b, ".so")))
		return HS_ALLOC_GLIBC;
	return HS_ALLOC_UNKNOWN;
}

/* The executable's first mapping (file offset 0). */
static const struct hs_map *exe_map(const struct hs_target *t)
{
	const char *exe = t->info.exe;

	for (size_t i = 0; i < t->maps.n; i++) {
		const struct hs_map *m = &t->maps.v[i];

		if (m->offset == 0 && m->path[0] == '/' &&
		    ((exe && exe[0] && !strcmp(m->path, exe)) || !exe || !exe[0]))
			return m;
	}
	return NULL;
}

static const struct {
	const char *sym;
	enum hs_alloc_kind kind;
} linked_syms[] = {
	{ "je_malloc", HS_ALLOC_JEMALLOC },
	{ "je_mallctl", HS_ALLOC_JEMALLOC },
	{ "je_malloc_conf", HS_ALLOC_JEMALLOC },
	{ "je_arena_emap_global", HS_ALLOC_JEMALLOC },
	{ "mallctl", HS_ALLOC_JEMALLOC },
	{ "malloc_conf", HS_ALLOC_JEMALLOC },
	{ "tc_malloc", HS_ALLOC_TCMALLOC },
	{ "mi_malloc", HS_ALLOC_MIMALLOC },
	/* Both libcs define __libc_malloc: musl's malloc has these, glibc's
	 * ptmalloc its _int_malloc and main_arena (static binaries). */
	{ "__libc_malloc_impl", HS_ALLOC_MUSL },
	{ "__malloc_donate", HS_ALLOC_MUSL },
	{ "_int_malloc", HS_ALLOC_GLIBC },
	{ "main_arena", HS_ALLOC_GLIBC },
};

struct lib;
static int link_index(struct hs_target *t, const struct hs_map *exe, const char *path);

void hs_alloc_detect(struct hs_target *t, struct hs_alloc_info *out)
{
	enum hs_alloc_kind best = HS_ALLOC_UNKNOWN;
	const struct hs_map *bm = NULL, *em;

	memset(out, 0, sizeof(*out));
	/* A library allocator wins over libc: it interposes malloc. */
	for (size_t i = 0; i < t->maps.n; i++) {
		const struct hs_map *m = &t->maps.v[i];
		enum hs_alloc_kind k;

		if (m->offset != 0 || m->path[0] != '/')
			continue;
		k = kind_of_module(m->path);
		if (k == HS_ALLOC_UNKNOWN)
			continue;
		if (best == HS_ALLOC_UNKNOWN || best == HS_ALLOC_GLIBC ||
		    (best == HS_ALLOC_MUSL && k != HS_ALLOC_GLIBC)) {
			best = k;
			bm = m;
		}
	}
	em = exe_map(t);
	if (best != HS_ALLOC_UNKNOWN && best != HS_ALLOC_GLIBC && best != HS_ALLOC_MUSL) {
		/*
		 * Mapped is not enough: malloc binds to the first object of
		 * the global scope that defines it, ld.so's link map order
		 * (the executable, LD_PRELOAD, then DT_NEEDED breadth-first;
		 * dlopen'd objects after them, RTLD_LOCAL ones outside it).
		 * An allocator library behind libc there serves nobody's
		 * malloc: then the allocator is libc's.
		 */
		const struct hs_map *lc = NULL;
		int ia, ic;

		for (size_t i = 0; i < t->maps.n && !lc; i++) {
			const struct hs_map *m = &t->maps.v[i];
			enum hs_alloc_kind k = m->offset == 0 && m->path[0] == '/'
					       ? kind_of_module(m->path) : HS_ALLOC_UNKNOWN;

			if (k == HS_ALLOC_GLIBC || k == HS_ALLOC_MUSL)
				lc = m;
		}
		ia = em && lc ? link_index(t, em, bm->path) : -1;
		ic = ia >= 0 ? link_index(t, em, lc->path) : -1;
		hs_log(HS_LOG_DEBUG, "alloc: link map: %s at %d, %s at %d", bm->path, ia,
		       lc ? lc->path : "-", ic);
		if (ia >= 0 && ic >= 0 && ic < ia) {
			out->kind = kind_of_module(lc->path);
			snprintf(out->module, sizeof(out->module), "%s", lc->path);
			snprintf(out->how, sizeof(out->how), "link map (%s after libc)",
				 hs_alloc_name(best));
			return;
		}
		goto found_module;
	}
	/* Linked into the executable: its symbols say so. */
	if (em && kind_of_module(em->path) == HS_ALLOC_UNKNOWN) {
		struct hs_syms *s = NULL;

		if (hs_syms_open(t, 0, &s) == 0) {
			for (size_t i = 0; i < HS_ARRAY_SIZE(linked_syms); i++) {
				hs_addr_t a;

				if ((linked_syms[i].kind == HS_ALLOC_GLIBC ||
				     linked_syms[i].kind == HS_ALLOC_MUSL) &&
				    best != HS_ALLOC_UNKNOWN)
					continue;
				if (hs_syms_by_name(s, em->path, linked_syms[i].sym, &a, NULL) == 0) {
					out->kind = linked_syms[i].kind;
					out->linked_in = true;
					snprintf(out->module, sizeof(out->module), "%s", em->path);
					snprintf(out->how, sizeof(out->how), "symbol %s",
						 linked_syms[i].sym);
					break;
				}
			}
			hs_syms_close(s);
		}
		if (out->kind != HS_ALLOC_UNKNOWN)
			return;
	}
found_module:
	out->kind = best;
	if (bm) {
		snprintf(out->module, sizeof(out->module), "%s", bm->path);
		snprintf(out->how, sizeof(out->how), "module name");
	}
}

/* ---- jemalloc's entry points ---- */

struct lib {
	int fd;
	Elf *e;
	GElf_Phdr ph[MAX_PHDRS];
	size_t nph;
	uint64_t bias;
};

static const GElf_Phdr *load_for(const struct lib *L, uint64_t vaddr, uint32_t need)
{
	for (size_t i = 0; i < L->nph; i++) {
		const GElf_Phdr *p = &L->ph[i];

		if (p->p_type == PT_LOAD && (p->p_flags & need) == need &&
		    vaddr >= p->p_vaddr && vaddr - p->p_vaddr < p->p_memsz)
			return p;
	}
	return NULL;
}

static int lib_open(struct lib *L, struct hs_target *t, const struct hs_map *m)
{
	GElf_Ehdr eh;
	bool have_bias = false;

	memset(L, 0, sizeof(*L));
	L->fd = hs_target_open_file(t, m);
	if (L->fd < 0)
		return -HS_E_NOT_FOUND;
	elf_version(EV_CURRENT);
	L->e = elf_begin(L->fd, ELF_C_READ_MMAP, NULL);
	if (!L->e || elf_kind(L->e) != ELF_K_ELF || !gelf_getehdr(L->e, &eh) ||
	    eh.e_machine != EM_X86_64 || gelf_getclass(L->e) != ELFCLASS64 ||
	    elf_getphdrnum(L->e, &L->nph) || L->nph == 0 || L->nph > MAX_PHDRS)
		return -HS_E_NOT_FOUND;
	for (size_t i = 0; i < L->nph; i++) {
		if (!gelf_getphdr(L->e, (int)i, &L->ph[i]))
			return -HS_E_NOT_FOUND;
		if (L->ph[i].p_type == PT_LOAD && L->ph[i].p_offset == 0 && !have_bias) {
			L->bias = m->start - (L->ph[i].p_vaddr & ~(uint64_t)0xfff);
			have_bias = true;
		}
	}
	return have_bias ? 0 : -HS_E_NOT_FOUND;
}

static void lib_close(struct lib *L)
{
	if (L->e)
		elf_end(L->e);
	if (L->fd >= 0)
		close(L->fd);
}

/* A symbol's value (file vaddr; TLS: offset in the TLS image) from the
 * table of type `type` (SHT_DYNSYM, SHT_SYMTAB) into *val; false if absent. */
static bool sym_in(struct lib *L, uint32_t type, const char *want, uint64_t *val)
{
	Elf_Scn *scn = NULL;

	while ((scn = elf_nextscn(L->e, scn))) {
		GElf_Shdr sh;
		Elf_Data *d;
		size_t n;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != type || !sh.sh_entsize)
			continue;
		d = elf_getdata(scn, NULL);
		n = sh.sh_size / sh.sh_entsize;
		for (size_t k = 0; d && k < n && k < MAX_DYNSYMS; k++) {
			GElf_Sym sym;
			const char *name;

			if (!gelf_getsym(d, (int)k, &sym) || sym.st_shndx == SHN_UNDEF)
				continue;
			name = elf_strptr(L->e, sh.sh_link, sym.st_name);
			if (name && !strcmp(name, want)) {
				*val = sym.st_value;
				return true;
			}
		}
	}
	return false;
}

static uint64_t dynsym(struct lib *L, const char *want)
{
	uint64_t v = 0;

	return sym_in(L, SHT_DYNSYM, want, &v) ? v : 0;
}

static void add_cand(struct hs_alloc_jemalloc *out, uint64_t a)
{
	for (size_t i = 0; i < out->nrtree; i++)
		if (out->rtree[i] == a)
			return;
	if (out->nrtree < HS_ARRAY_SIZE(out->rtree))
		out->rtree[out->nrtree++] = a;
}

/* Decodes the first instructions of function fn (file vaddr). */
static void scan_fn(struct lib *L, csh cs, uint64_t fn, struct hs_alloc_jemalloc *out)
{
	const GElf_Phdr *ph = load_for(L, fn, PF_X);
	uint8_t code[CODE_BYTES];
	const uint8_t *p = code;
	uint64_t off, a = fn;
	size_t len;
	ssize_t got;
	cs_insn *insn;

	if (!fn || !ph || (off = fn - ph->p_vaddr) >= ph->p_filesz)
		return;
	len = ph->p_filesz - off < CODE_BYTES ? (size_t)(ph->p_filesz - off) : CODE_BYTES;
	got = pread(L->fd, code, len, (off_t)(ph->p_offset + off));
	if (got <= 0 || !(insn = cs_malloc(cs)))
		return;
	len = (size_t)got;
	for (unsigned k = 0; k < MAX_INSNS && cs_disasm_iter(cs, &p, &len, &a, insn); k++) {
		const cs_x86 *x = &insn->detail->x86;

		if (insn->id == X86_INS_LEA && x->op_count == 2 &&
		    x->operands[1].type == X86_OP_MEM && x->operands[1].mem.base == X86_REG_RIP &&
		    x->operands[1].mem.index == X86_REG_INVALID) {
			uint64_t tg = insn->address + insn->size + (uint64_t)x->operands[1].mem.disp;
			const GElf_Phdr *w = load_for(L, tg, PF_W | PF_R);

			/* Room for the whole tree in the writable segment. */
			if (w && tg + RTREE_BYTES <= w->p_vaddr + w->p_memsz)
				add_cand(out, L->bias + tg);
		} else if (insn->id == X86_INS_CMP && !out->tsd_state_off && x->op_count == 2 &&
			   x->operands[0].type == X86_OP_MEM &&
			   x->operands[0].mem.segment == X86_REG_FS &&
			   x->operands[0].mem.base != X86_REG_INVALID &&
			   x->operands[0].size == 1 && x->operands[1].type == X86_OP_IMM &&
			   x->operands[1].imm == 0 && x->operands[0].mem.disp > 0 &&
			   x->operands[0].mem.disp < 0x10000) {
			/* tsd_fast(): `cmpb $0, %fs:STATE(%reg)`, reg the TLS offset. */
			out->tsd_state_off = (unsigned)x->operands[0].mem.disp;
		}
	}
	cs_free(insn, 1);
}

/* The TLS block's offset from the thread pointer, from the GOT slot of
 * the library's R_X86_64_TPOFF64 relocation (ld.so wrote it there). */
static void find_tpoff(struct lib *L, struct hs_target *t, struct hs_alloc_jemalloc *out)
{
	Elf_Scn *scn = NULL;

	for (size_t i = 0; i < L->nph; i++)
		if (L->ph[i].p_type == PT_TLS)
			out->tsd_size = L->ph[i].p_memsz;
	while ((scn = elf_nextscn(L->e, scn)) && !out->have_tpoff) {
		GElf_Shdr sh;
		Elf_Data *d;
		size_t n;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_RELA || !sh.sh_entsize)
			continue;
		d = elf_getdata(scn, NULL);
		n = sh.sh_size / sh.sh_entsize;
		for (size_t k = 0; d && k < n && k < MAX_DYNSYMS; k++) {
			GElf_Rela r;
			uint64_t v;

			if (!gelf_getrela(d, (int)k, &r) ||
			    GELF_R_TYPE(r.r_info) != R_X86_64_TPOFF64 || GELF_R_SYM(r.r_info) != 0)
				continue;
			if (hs_read_u64(t, L->bias + r.r_offset, &v) < 0)
				continue;
			out->tsd_tpoff = (int64_t)v - r.r_addend;
			/* Variant II: the block lies below the thread pointer. */
			if (out->tsd_tpoff < 0 && out->tsd_tpoff > -(1ll << 32)) {
				out->have_tpoff = true;
				break;
			}
		}
	}
}

/* "5.3.0-0-g<40 hex>" in the library's read-only data. */
static void find_version(struct lib *L, struct hs_alloc_jemalloc *out)
{
	size_t sz = 0;
	const char *img = elf_rawfile(L->e, &sz);

	for (size_t i = 0; img && i + 44 < sz; i++) {
		const char *g = memchr(img + i, '-', sz - i - 44);
		size_t s, e;

		if (!g)
			break;
		i = (size_t)(g - img);
		if (g[1] != '0' && (g[1] < '1' || g[1] > '9'))
			continue;
		/* digits "-g" 40 hex */
		e = i + 1;
		while (e < sz && img[e] >= '0' && img[e] <= '9')
			e++;
		if (e + 42 > sz || img[e] != '-' || img[e + 1] != 'g' ||
		    strspn(img + e + 2, "0123456789abcdef") < 40)
			continue;
		for (s = i; s > 0 && ((img[s - 1] >= '0' && img[s - 1] <= '9') || img[s - 1] == '.');
		     s--)
			;
		if (s == i || i - s > 12)
			continue;
		snprintf(out->version, sizeof(out->version), "%.*s", (int)(e + 42 - s), img + s);
		return;
	}
}

/*
 * jemalloc linked into the executable: its globals by their .symtab names
 * (je_arena_emap_global; je_tsd_tls, a TLS symbol).  The executable's TLS
 * block is the first (x86_64 variant II): it ends at the thread pointer,
 * at offset roundup(memsz - firstbyte, align) + firstbyte below it, with
 * firstbyte = -p_vaddr mod align (glibc's _dl_determine_tlsoffset).
 */
static void linked_in(struct lib *L, struct hs_alloc_jemalloc *out)
{
	uint64_t rt = 0, tsd = 0;
	bool have_tsd = sym_in(L, SHT_SYMTAB, "je_tsd_tls", &tsd);

	if (sym_in(L, SHT_SYMTAB, "je_arena_emap_global", &rt)) {
		out->rtree[out->nrtree++] = L->bias + rt;
		out->rtree_how = "symbol";
	}
	for (size_t i = 0; i < L->nph; i++) {
		const GElf_Phdr *p = &L->ph[i];
		uint64_t align = p->p_align ? p->p_align : 1, first, off;

		if (p->p_type != PT_TLS || (align & (align - 1)) || p->p_memsz > (1u << 24))
			continue;
		first = (0 - (p->p_vaddr & (align - 1))) & (align - 1);
		off = ((p->p_memsz - first + align - 1) & ~(align - 1)) + first;
		if (have_tsd && tsd < p->p_memsz) {
			out->tsd_tpoff = -(int64_t)off + (int64_t)tsd;
			out->tsd_size = p->p_memsz - tsd;
			out->have_tpoff = true;
		}
	}
}

#define MAX_LINK_MAPS 4096

/*
 * The position of the object whose file is `path` (compared by basename:
 * ld.so may name /lib/... for the /usr/lib/... the maps show) in ld.so's
 * link map, reached through the executable's DT_DEBUG (&_r_debug, which
 * ld.so fills in at start: r_map at +8; link_map: l_name +8, l_next +24).
 * All read in the target (the executable's dynamic section and ld.so's
 * data, written at start-up: resident).  -1 when not found or not
 * readable (a static binary has no DT_DEBUG).
 */
static int link_index(struct hs_target *t, const struct hs_map *exe, const char *path)
{
	struct lib L = { .fd = -1 };
	const char *want = base_name(path);
	uint64_t dyn = 0, dynsz = 0, dbg = 0, lm = 0;
	int ret = -1;

	if (lib_open(&L, t, exe) < 0)
		goto out;
	for (size_t i = 0; i < L.nph; i++)
		if (L.ph[i].p_type == PT_DYNAMIC) {
			dyn = L.bias + L.ph[i].p_vaddr;
			dynsz = L.ph[i].p_memsz;
		}
	for (uint64_t off = 0; dyn && off + 16 <= dynsz && off < 16 * 512; off += 16) {
		uint64_t e[2];

		if (hs_target_read_full(t, dyn + off, e, sizeof(e)) < 0 || e[0] == DT_NULL)
			break;
		if (e[0] == DT_DEBUG)
			dbg = e[1];
	}
	if (!dbg || hs_read_u64(t, dbg + 8, &lm) < 0)
		goto out;
	for (int i = 0; lm && i < MAX_LINK_MAPS; i++) {
		uint64_t w[4];
		char name[512];

		if (hs_target_read_full(t, lm, w, sizeof(w)) < 0)
			break;
		if (w[1] && hs_read_cstr(t, w[1], name, sizeof(name)) >= 0 &&
		    !strcmp(base_name(name), want)) {
			ret = i;
			break;
		}
		lm = w[3];
	}
out:
	lib_close(&L);
	return ret;
}

static int cmp_range(const void *a, const void *b)
{
	const hs_addr_t *x = a, *y = b;

	return x[0] < y[0] ? -1 : x[0] > y[0];
}

/* The bss tail of each ELF object mapped in t (its first mapping, file
 * offset 0): page-rounded [vaddr + filesz, vaddr + memsz) of each
 * writable PT_LOAD, plus the load bias. */
static void find_bss(struct hs_target *t, struct hs_alloc_jemalloc *out)
{
	size_t alloc = 0;

	for (size_t i = 0; i < t->maps.n; i++) {
		const struct hs_map *m = &t->maps.v[i];
		struct lib L = { .fd = -1 };

		if (m->offset != 0 || m->path[0] != '/')
			continue;
		/* Once per object: its later mappings have offsets > 0. */
		if (lib_open(&L, t, m) == 0)
			for (size_t k = 0; k < L.nph; k++) {
				const GElf_Phdr *p = &L.ph[k];
				uint64_t lo = (p->p_vaddr + p->p_filesz + 0xfff) & ~0xfffull;
				uint64_t hi = (p->p_vaddr + p->p_memsz + 0xfff) & ~0xfffull;

				if (p->p_type != PT_LOAD || !(p->p_flags & PF_W) || hi <= lo ||
				    p->p_memsz > (1ull << 40))
					continue;
				if (out->nbss == alloc) {
					size_t na = alloc ? alloc * 2 : 64;
					hs_addr_t (*nv)[2] = realloc(out->bss, na * sizeof(*nv));

					if (!nv)
						break;
					out->bss = nv;
					alloc = na;
				}
				out->bss[out->nbss][0] = L.bias + lo;
				out->bss[out->nbss][1] = L.bias + hi;
				out->nbss++;
			}
		lib_close(&L);
	}
	if (out->nbss)
		qsort(out->bss, out->nbss, sizeof(*out->bss), cmp_range);
}

void hs_alloc_jemalloc_release(struct hs_alloc_jemalloc *j)
{
	free(j->bss);
	j->bss = NULL;
	j->nbss = 0;
}

int hs_alloc_jemalloc_find(struct hs_target *t, const struct hs_alloc_info *info,
			   struct hs_alloc_jemalloc *out)
{
	const struct hs_map *m = NULL;
	struct lib L = { .fd = -1 };
	csh cs = 0;

	memset(out, 0, sizeof(*out));
	if (info->kind != HS_ALLOC_JEMALLOC || !info->module[0])
		return -HS_E_NOT_FOUND;
	find_bss(t, out);
	for (size_t i = 0; i < t->maps.n && !m; i++)
		if (t->maps.v[i].offset == 0 && !strcmp(t->maps.v[i].path, info->module))
			m = &t->maps.v[i];
	if (!m || lib_open(&L, t, m) < 0)
		goto out;
	find_version(&L, out);
	if (info->linked_in) {
		linked_in(&L, out);
		goto out;
	}
	if (cs_open(CS_ARCH_X86, CS_MODE_64, &cs) != CS_ERR_OK) {
		cs = 0;
		goto out;
	}
	cs_option(cs, CS_OPT_DETAIL, CS_OPT_ON);
	scan_fn(&L, cs, dynsym(&L, "malloc_usable_size"), out);
	scan_fn(&L, cs, dynsym(&L, "sallocx"), out);
	out->rtree_how = "disasm";
	find_tpoff(&L, t, out);
out:
	if (cs)
		cs_close(&cs);
	lib_close(&L);
	return out->nrtree ? 0 : -HS_E_NOT_FOUND;
}
