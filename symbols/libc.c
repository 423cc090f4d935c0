/*
 * main_arena from libc's symbols or code; see hs_libc.h.
 *
 * Facts (doc/glibc-malloc.md, "Finding main_arena"; checked with objdump
 * on Debian 12's 2.36):
 * malloc_trim, mallinfo2, malloc_stats and __libc_mallopt load
 * &main_arena with `lea disp(%rip), reg` within their first 0x30-0x45
 * bytes; mallinfo calls mallinfo2 on 2.33+ and loads it itself before.
 * The only other RIP-relative lea targets there are in .rodata (format
 * strings), which the writable-segment filter drops.  The code bytes come
 * from libc's file: identical to the mapped text (x86_64 libc has no text
 * relocations), and reading them does not fault the target's pages in.
 */
#include "hs_libc.h"
#include "hs_syms.h"

#include <capstone/capstone.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <libelf.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_PHDRS 64
#define MAX_DYNSYMS (1u << 20)
#define CODE_BYTES 0x200 /* at most this much of each function */
#define MAX_TARGETS 32

const char *const hs_libc_arena_users[] = {
	"malloc_trim", "mallinfo2", "malloc_stats", "__libc_mallopt", "mallopt",
	"mallinfo", NULL,
};

static bool is_libc_path(const char *path)
{
	const char *b = strrchr(path, '/');

	b = b ? b + 1 : path;
	return !strncmp(b, "libc.so", 7) || (!strncmp(b, "libc-2.", 7) && strstr(b, ".so"));
}

int hs_libc_main_arena_symbol(struct hs_target *t, hs_addr_t *addr)
{
	struct hs_syms *s = NULL;
	uint64_t size = 0;
	int ret;

	ret = hs_syms_open(t, 0, &s);
	if (ret < 0)
		return ret;
	ret = hs_syms_by_name(s, "libc", "main_arena", addr, &size);
	hs_syms_close(s);
	if (ret < 0)
		return -HS_E_NOT_FOUND;
	/* An object of malloc_state's size (0x888-0x898 on 2.17-2.40). */
	if (size && size < 0x800)
		return -HS_E_NOT_FOUND;
	return 0;
}

/* libc's first mapping (file offset 0). */
static const struct hs_map *libc_base(const struct hs_target *t)
{
	for (size_t i = 0; i < t->maps.n; i++)
		if (is_libc_path(t->maps.v[i].path) && t->maps.v[i].offset == 0)
			return &t->maps.v[i];
	return NULL;
}

struct target_vote {
	uint64_t vaddr;
	unsigned votes, order;
};

struct scan {
	GElf_Phdr ph[MAX_PHDRS];
	size_t nph;
	struct target_vote v[MAX_TARGETS];
	size_t nv;
	uint64_t done[16]; /* functions decoded (aliases share an address) */
	size_t ndone;
};

static const GElf_Phdr *load_for(const struct scan *sc, uint64_t vaddr, uint32_t need)
{
	for (size_t i = 0; i < sc->nph; i++) {
		const GElf_Phdr *p = &sc->ph[i];

		if (p->p_type == PT_LOAD && (p->p_flags & need) == need &&
		    vaddr >= p->p_vaddr && vaddr - p->p_vaddr < p->p_memsz)
			return p;
	}
	return NULL;
}

static void vote(struct scan *sc, uint64_t vaddr, bool *seen_here)
{
	for (size_t i = 0; i < sc->nv; i++)
		if (sc->v[i].vaddr == vaddr) {
			/* One vote per function, however often it loads it. */
			if (!seen_here[i])
				sc->v[i].votes++;
			seen_here[i] = true;
			return;
		}
	if (sc->nv < MAX_TARGETS) {
		seen_here[sc->nv] = true;
		sc->v[sc->nv] = (struct target_vote){ vaddr, 1, (unsigned)sc->nv };
		sc->nv++;
	}
}

/* Decodes one function's first instructions (code at file vaddr fn). */
static void scan_function(struct scan *sc, csh cs, const uint8_t *code, size_t len,
			  uint64_t fn)
{
	cs_insn *insn = cs_malloc(cs);
	const uint8_t *p = code;
	uint64_t a = fn;
	bool seen_here[MAX_TARGETS] = { false };

	if (!insn)
		return;
	for (unsigned k = 0; k < HS_LIBC_DISASM_INSNS && cs_disasm_iter(cs, &p, &len, &a, insn);
	     k++) {
		const cs_x86 *x;

		if (insn->id == X86_INS_RET)
			break;
		if (insn->id != X86_INS_LEA || !insn->detail)
			continue;
		x = &insn->detail->x86;
		if (x->op_count == 2 && x->operands[1].type == X86_OP_MEM &&
		    x->operands[1].mem.base == X86_REG_RIP &&
		    x->operands[1].mem.index == X86_REG_INVALID) {
			uint64_t target = insn->address + insn->size +
					  (uint64_t)x->operands[1].mem.disp;

			if (load_for(sc, target, PF_W | PF_R))
				vote(sc, target, seen_here);
		}
	}
	cs_free(insn, 1);
}

static int cmp_vote(const void *x, const void *y)
{
	const struct target_vote *a = x, *b = y;

	if (a->votes != b->votes)
		return a->votes > b->votes ? -1 : 1;
	return a->order < b->order ? -1 : a->order > b->order;
}

int hs_libc_main_arena_disasm(struct hs_target *t, hs_addr_t *out, size_t max, size_t *n)
{
	const struct hs_map *base = libc_base(t);
	struct scan sc;
	Elf *e = NULL;
	Elf_Scn *scn = NULL;
	GElf_Ehdr eh;
	csh cs = 0;
	uint64_t bias = 0;
	bool have_bias = false;
	int fd, ret = -HS_E_NOT_FOUND;

	*n = 0;
	if (!base)
		return -HS_E_NOT_FOUND;
	fd = hs_target_open_file(t, base);
	if (fd < 0)
		return -HS_E_NOT_FOUND;
	memset(&sc, 0, sizeof(sc));
	elf_version(EV_CURRENT);
	e = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!e || elf_kind(e) != ELF_K_ELF || !gelf_getehdr(e, &eh) ||
	    eh.e_machine != EM_X86_64 || gelf_getclass(e) != ELFCLASS64 ||
	    elf_getphdrnum(e, &sc.nph) || sc.nph == 0 || sc.nph > MAX_PHDRS)
		goto out;
	for (size_t i = 0; i < sc.nph; i++) {
		if (!gelf_getphdr(e, (int)i, &sc.ph[i]))
			goto out;
		if (sc.ph[i].p_type == PT_LOAD && sc.ph[i].p_offset == 0 && !have_bias) {
			bias = base->start - (sc.ph[i].p_vaddr & ~(uint64_t)0xfff);
			have_bias = true;
		}
	}
	if (!have_bias)
		goto out;
	if (cs_open(CS_ARCH_X86, CS_MODE_64, &cs) != CS_ERR_OK) {
		cs = 0;
		goto out;
	}
	cs_option(cs, CS_OPT_DETAIL, CS_OPT_ON);
	while ((scn = elf_nextscn(e, scn))) {
		GElf_Shdr sh;
		Elf_Data *d;
		size_t nsyms;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_DYNSYM || !sh.sh_entsize)
			continue;
		d = elf_getdata(scn, NULL);
		if (!d)
			continue;
		nsyms = sh.sh_size / sh.sh_entsize;
		if (nsyms > MAX_DYNSYMS)
			nsyms = MAX_DYNSYMS;
		for (size_t k = 0; k < nsyms; k++) {
			GElf_Sym sym;
			const char *name;
			const GElf_Phdr *ph;
			uint8_t code[CODE_BYTES];
			uint64_t off;
			size_t len;
			ssize_t got;
			bool wanted = false;

			if (!gelf_getsym(d, (int)k, &sym) || GELF_ST_TYPE(sym.st_info) != STT_FUNC ||
			    sym.st_shndx == SHN_UNDEF)
				continue;
			name = elf_strptr(e, sh.sh_link, sym.st_name);
			for (size_t u = 0; name && hs_libc_arena_users[u] && !wanted; u++)
				wanted = !strcmp(name, hs_libc_arena_users[u]);
			for (size_t u = 0; wanted && u < sc.ndone; u++)
				wanted = sc.done[u] != sym.st_value;
			if (!wanted || sc.ndone >= HS_ARRAY_SIZE(sc.done) ||
			    !(ph = load_for(&sc, sym.st_value, PF_X)))
				continue;
			sc.done[sc.ndone++] = sym.st_value;
			/* Within the segment's file image. */
			off = sym.st_value - ph->p_vaddr;
			if (off >= ph->p_filesz)
				continue;
			len = ph->p_filesz - off < CODE_BYTES ? (size_t)(ph->p_filesz - off) : CODE_BYTES;
			if (sym.st_size && sym.st_size < len)
				len = (size_t)sym.st_size;
			got = pread(fd, code, len, (off_t)(ph->p_offset + off));
			if (got <= 0)
				continue;
			scan_function(&sc, cs, code, (size_t)got, sym.st_value);
		}
	}
	if (!sc.nv)
		goto out;
	qsort(sc.v, sc.nv, sizeof(sc.v[0]), cmp_vote);
	for (size_t i = 0; i < sc.nv && *n < max; i++)
		out[(*n)++] = bias + sc.v[i].vaddr;
	ret = 0;
out:
	if (cs)
		cs_close(&cs);
	if (e)
		elf_end(e);
	close(fd);
	return ret;
}
