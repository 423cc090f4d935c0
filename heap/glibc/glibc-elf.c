/*
 * What libc's own ELF image in the target says about the glibc release,
 * read from pages every process that runs libc already has resident: the
 * ELF header, program headers and notes at the start of libc's first
 * mapping, the dynamic section (in the relro segment, written by ld.so),
 * and .dynstr / .gnu.version_d, which ld.so itself reads when it binds
 * symbols and checks versions.  Nothing here touches .rodata (the
 * "GNU C Library ... version" banner), so a live target's file Rss does
 * not grow.
 *
 * The highest GLIBC_2.N version definition is the release's symbol
 * version, which is the release itself only when that release added a
 * symbol.  From the x86_64 libc.abilist at each glibc tag (2.17-2.42):
 * releases 2.19, 2.20, 2.21 define nothing after GLIBC_2.18, 2.31 nothing
 * after GLIBC_2.30, 2.37 nothing after GLIBC_2.36, 2.40 nothing after
 * GLIBC_2.39; every other release defines its own GLIBC_2.N (2.12-2.16,
 * which predate the abilists, too: each tag's Versions files give libc a
 * GLIBC_2.N of its own).  Each such
 * group falls inside one row of the offset tables, so the verdef always
 * selects the layout exactly; only the release number may be a range.
 * One range is split by a private symbol: 2.37 dropped
 * __libc_scratch_buffer_dupfree@GLIBC_PRIVATE (malloc/Versions), so its
 * presence in .dynsym (looked up through .gnu.hash, also resident: ld.so
 * resolves through it) means 2.36, its absence 2.37.  2.18-2.21 and
 * 2.30/2.31 name their file libc-2.NN.so, which the caller uses; 2.39 and
 * 2.40 stay a range.
 *
 * Target memory is hostile: every count and offset is bounded and every
 * address must fall inside libc's first mapping (strings, verdefs) or a
 * libc mapping (the dynamic section).
 */
#include "hs_glibc.h"

#include <elf.h>
#include <string.h>

#define MAX_PHDRS 64
#define MAX_DYN 512
#define MAX_VERDEF 1024
#define MAX_NOTE 4096
#define MAX_VERNAME 64

/*
 * Highest release sharing GLIBC_2.<verdef> as its newest version, for
 * verdef 12..42 (x86_64 abilists, Versions files before 2.17); a verdef
 * beyond the table is taken as exact.
 */
static unsigned release_hi(unsigned verdef)
{
	switch (verdef) {
	case 18:
		return 21;
	case 30:
	case 36:
	case 39:
		return verdef + 1;
	default:
		return verdef;
	}
}

static bool in_map(const struct hs_map *m, hs_addr_t a, uint64_t len)
{
	return a >= m->start && len <= m->end - m->start && a - m->start <= m->end - m->start - len;
}

static bool is_libc_map(const struct hs_map *m)
{
	const char *b = strrchr(m->path, '/');

	b = b ? b + 1 : m->path;
	return !strncmp(b, "libc.so", 7) || (!strncmp(b, "libc-2.", 7) && strstr(b, ".so"));
}

/* "GLIBC_2.N" or "GLIBC_2.N.M" -> N; anything else 0. */
static unsigned glibc_minor(const char *s)
{
	unsigned v = 0;
	int digits = 0;

	if (strncmp(s, "GLIBC_2.", 8))
		return 0;
	for (s += 8; *s >= '0' && *s <= '9' && digits < 4; s++, digits++)
		v = v * 10 + (unsigned)(*s - '0');
	if (!digits || (*s && *s != '.'))
		return 0;
	return v;
}

/* A d_ptr from the dynamic section: ld.so relocates some tags in place
 * (DT_STRTAB), not others (DT_VERDEF); a core shows whichever. */
static hs_addr_t dyn_addr(uint64_t v, hs_addr_t bias, const struct hs_map *first)
{
	if (v >= first->start && v < first->end)
		return v;
	return bias + v;
}

static void read_build_id(struct hs_target *t, const struct hs_map *first,
			  hs_addr_t a, uint64_t len, struct hs_glibc_ident *out)
{
	unsigned char note[MAX_NOTE];
	size_t off = 0;

	if (len > sizeof(note))
		len = sizeof(note);
	if (len < sizeof(Elf64_Nhdr) || !in_map(first, a, len) ||
	    hs_target_read_full(t, a, note, (size_t)len) < 0)
		return;
	while (off + sizeof(Elf64_Nhdr) <= len) {
		Elf64_Nhdr nh;
		size_t name_sz, desc_sz;

		memcpy(&nh, note + off, sizeof(nh));
		off += sizeof(nh);
		name_sz = ((size_t)nh.n_namesz + 3) & ~(size_t)3;
		desc_sz = ((size_t)nh.n_descsz + 3) & ~(size_t)3;
		if (nh.n_namesz > MAX_NOTE || nh.n_descsz > MAX_NOTE ||
		    name_sz + desc_sz > len - off)
			return;
		if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
		    !memcmp(note + off, "GNU", 4) && nh.n_descsz > 0 &&
		    nh.n_descsz <= sizeof(out->build_id)) {
			memcpy(out->build_id, note + off + name_sz, nh.n_descsz);
			out->build_id_len = nh.n_descsz;
			return;
		}
		off += name_sz + desc_sz;
	}
}

#define MAX_HASH_STEPS 65536

struct dynsyms {
	const struct hs_map *first;
	hs_addr_t gnu_hash, symtab, strtab;
	uint64_t strsz;
};

static uint32_t gnu_hash(const char *s)
{
	uint32_t h = 5381;

	for (; *s; s++)
		h = h * 33 + (unsigned char)*s;
	return h;
}

/* 1: .dynsym defines name, 0: it does not, -1: cannot tell. */
static int dynsym_has(struct hs_target *t, const struct dynsyms *d, const char *name)
{
	uint32_t hdr[4], h = gnu_hash(name), idx;
	size_t nlen = strlen(name);
	hs_addr_t buckets, chain;

	if (!d->gnu_hash || !d->symtab || !d->strtab ||
	    !in_map(d->first, d->gnu_hash, sizeof(hdr)) ||
	    hs_target_read_full(t, d->gnu_hash, hdr, sizeof(hdr)) < 0 || !hdr[0] ||
	    hdr[2] > (1u << 20))
		return -1;
	buckets = d->gnu_hash + sizeof(hdr) + 8ull * hdr[2];
	chain = buckets + 4ull * hdr[0];
	if (!in_map(d->first, buckets + 4ull * (h % hdr[0]), 4) ||
	    hs_target_read_full(t, buckets + 4ull * (h % hdr[0]), &idx, 4) < 0)
		return -1;
	if (idx < hdr[1])
		return 0; /* empty bucket */
	for (unsigned k = 0; k < MAX_HASH_STEPS; k++, idx++) {
		uint32_t cv;
		Elf64_Sym sym;
		char buf[64];

		if (!in_map(d->first, chain + 4ull * (idx - hdr[1]), 4) ||
		    hs_target_read_full(t, chain + 4ull * (idx - hdr[1]), &cv, 4) < 0)
			return -1;
		if ((cv | 1) == (h | 1)) {
			if (!in_map(d->first, d->symtab + 24ull * idx, sizeof(sym)) ||
			    hs_target_read_full(t, d->symtab + 24ull * idx, &sym, sizeof(sym)) < 0)
				return -1;
			if (nlen < sizeof(buf) && sym.st_name < d->strsz &&
			    d->strsz - sym.st_name > nlen &&
			    hs_target_read_full(t, d->strtab + sym.st_name, buf, nlen + 1) == 0 &&
			    !memcmp(buf, name, nlen + 1))
				return sym.st_shndx != SHN_UNDEF;
		}
		if (cv & 1)
			return 0;
	}
	return -1;
}

int hs_glibc_ident_read(struct hs_target *t, hs_addr_t base, struct hs_glibc_ident *out)
{
	const struct hs_map *first = hs_target_find_map(t, base), *dm;
	Elf64_Ehdr eh;
	Elf64_Phdr ph[MAX_PHDRS];
	Elf64_Dyn dyn[MAX_DYN];
	hs_addr_t bias = 0, dyn_a = 0, strtab = 0, verdef = 0, ghash = 0, symtab = 0;
	uint64_t dyn_len = 0, strsz = 0, verdefnum = 0;
	bool have_load = false;
	size_t ndyn;

	memset(out, 0, sizeof(*out));
	if (!first || first->start != base || first->offset != 0)
		return -HS_E_NOT_FOUND;
	if (hs_target_read_full(t, base, &eh, sizeof(eh)) < 0)
		return -HS_E_NOT_FOUND;
	if (memcmp(eh.e_ident, ELFMAG, SELFMAG) || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh.e_ident[EI_DATA] != ELFDATA2LSB || eh.e_type != ET_DYN ||
	    eh.e_machine != EM_X86_64 || eh.e_phentsize != sizeof(Elf64_Phdr) ||
	    eh.e_phnum == 0 || eh.e_phnum > MAX_PHDRS ||
	    !in_map(first, base + eh.e_phoff, (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr)) ||
	    hs_target_read_full(t, base + eh.e_phoff, ph, eh.e_phnum * sizeof(Elf64_Phdr)) < 0)
		return -HS_E_CORRUPT;
	/* The first PT_LOAD (file offset 0) is what `base` maps. */
	for (unsigned i = 0; i < eh.e_phnum; i++)
		if (ph[i].p_type == PT_LOAD && !have_load) {
			if (ph[i].p_offset != 0 || ph[i].p_vaddr > base)
				return -HS_E_CORRUPT;
			bias = base - (ph[i].p_vaddr & ~(uint64_t)0xfff);
			have_load = true;
		}
	if (!have_load)
		return -HS_E_CORRUPT;
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		if (ph[i].p_type == PT_NOTE && !out->build_id_len)
			read_build_id(t, first, bias + ph[i].p_vaddr, ph[i].p_filesz, out);
		else if (ph[i].p_type == PT_DYNAMIC) {
			dyn_a = bias + ph[i].p_vaddr;
			dyn_len = ph[i].p_filesz;
		}
	}
	if (dyn_len > sizeof(dyn))
		dyn_len = sizeof(dyn);
	dyn_len -= dyn_len % sizeof(Elf64_Dyn);
	dm = hs_target_find_map(t, dyn_a);
	if (!dyn_len || !dm || !is_libc_map(dm) || !in_map(dm, dyn_a, dyn_len) ||
	    hs_target_read_full(t, dyn_a, dyn, (size_t)dyn_len) < 0)
		return out->build_id_len ? -HS_E_NOT_FOUND : -HS_E_CORRUPT;
	ndyn = (size_t)(dyn_len / sizeof(Elf64_Dyn));
	for (size_t i = 0; i < ndyn && dyn[i].d_tag != DT_NULL; i++) {
		uint64_t v = dyn[i].d_un.d_val;

		switch (dyn[i].d_tag) {
		case DT_STRTAB:
			strtab = dyn_addr(v, bias, first);
			break;
		case DT_STRSZ:
			strsz = v;
			break;
		case DT_VERDEF:
			verdef = dyn_addr(v, bias, first);
			break;
		case DT_VERDEFNUM:
			verdefnum = v;
			break;
		case DT_GNU_HASH:
			ghash = dyn_addr(v, bias, first);
			break;
		case DT_SYMTAB:
			symtab = dyn_addr(v, bias, first);
			break;
		}
	}
	if (!strtab || !strsz || !verdef || !verdefnum || !in_map(first, strtab, strsz))
		return -HS_E_NOT_FOUND;
	if (verdefnum > MAX_VERDEF)
		verdefnum = MAX_VERDEF;
	/* Each Elf64_Verdef's first Elf64_Verdaux names the version; vd_next
	 * chains them (0 ends).  At most verdefnum steps, forward only. */
	for (uint64_t k = 0, a = verdef; k < verdefnum; k++) {
		Elf64_Verdef vd;
		Elf64_Verdaux va;
		char name[MAX_VERNAME];
		unsigned minor;

		if (!in_map(first, a, sizeof(vd)) ||
		    hs_target_read_full(t, a, &vd, sizeof(vd)) < 0 || vd.vd_version != 1)
			break;
		if (!(vd.vd_flags & VER_FLG_BASE) && vd.vd_cnt >= 1 &&
		    in_map(first, a + vd.vd_aux, sizeof(va)) &&
		    hs_target_read_full(t, a + vd.vd_aux, &va, sizeof(va)) == 0 &&
		    va.vda_name < strsz) {
			size_t len = strsz - va.vda_name < sizeof(name) - 1 ?
				     (size_t)(strsz - va.vda_name) : sizeof(name) - 1;

			memset(name, 0, sizeof(name));
			/* Within .dynstr only: a name cut short fails to parse. */
			if (hs_target_read_full(t, strtab + va.vda_name, name, len) == 0 &&
			    (minor = glibc_minor(name)) > out->verdef_minor)
				out->verdef_minor = minor;
		}
		if (!vd.vd_next || vd.vd_next < sizeof(vd))
			break;
		a += vd.vd_next;
	}
	if (!out->verdef_minor)
		return -HS_E_NOT_FOUND;
	out->minor_lo = out->verdef_minor;
	out->minor_hi = release_hi(out->verdef_minor);
	if (out->verdef_minor == 36) {
		static const char marker[] = "__libc_scratch_buffer_dupfree";
		struct dynsyms d = { first, ghash, symtab, strtab, strsz };
		int has = dynsym_has(t, &d, marker);

		if (has >= 0) {
			out->marker = marker;
			out->marker_present = has;
			if (has)
				out->minor_hi = 36;
			else
				out->minor_lo = 37;
		}
	}
	return 0;
}
