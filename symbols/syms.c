/*
 * The symbol resolver behind hs_syms.h.
 *
 * Modules are built from the target's file-backed maps (one per path) and
 * loaded on first use: the file is opened by the target's backend
 * (hs_target_open_file: a live process's own view of it, a core's path),
 * its program headers give the
 * load bias, and the ELF is reported to a libdwfl session, which finds
 * separate debug info (build-id, .gnu_debuglink, /usr/lib/debug) and the
 * best symbol table (.symtab of the file or its debug file, else .dynsym).
 * Symbols are copied once into a table sorted by address, so a lookup is a
 * binary search rather than libdwfl's scan of the whole table.  [vdso] is
 * read from the target's memory into a memfd and reported the same way.
 *
 * Bounds: files over HS_SYMS_MAX_FILE or with more than HS_SYMS_MAX_PHDR
 * program headers are not loaded (the module then resolves to
 * module+offset), and at most HS_SYMS_MAX_SYMS symbols are kept per module.
 * libdwfl and libelf map files rather than copying them.
 *
 * C++ names (Itanium ABI, "_Z...") are demangled by the C++ runtime's
 * __cxa_demangle, looked up at run time in libstdc++.so.6: heapscan is a C
 * program and does not link libstdc++ (no new build or package
 * dependency).  Without that library names stay mangled.  Each symbol is
 * demangled at its first lookup and the result kept until hs_syms_close().
 */
#include "hs_syms.h"

#include <dlfcn.h>
#include <elfutils/libdwfl.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define HS_SYMS_MAX_FILE (4ull << 30)
#define HS_SYMS_MAX_PHDR 4096
#define HS_SYMS_MAX_SYMS (2u << 20)
#define HS_SYMS_MAX_VDSO (1u << 20)
/* How many address groups a lookup walks back to find an enclosing sym. */
#define HS_SYMS_WALK_BACK 64
/* Longer names (a hostile ELF's, or pathological templates) stay mangled:
 * the demangler's time and memory grow with the name. */
#define HS_SYMS_MAX_DEMANGLE 4096
#define PAGE_MASK_ (~(uint64_t)0xfff)

struct sym {
	hs_addr_t addr;
	uint64_t size;
	const char *name;  /* owned by the Dwfl session */
	unsigned char kind; /* enum hs_sym_kind */
	unsigned char rank; /* higher is a better name for its address */
	uint32_t dem;       /* DEM_UNTRIED, DEM_RAW, or DEM_FIRST + index
			       into hs_syms.dem (fits the padding) */
};

enum { DEM_UNTRIED = 0, DEM_RAW = 1, DEM_FIRST = 2 };

enum mod_state { MOD_NEW = 0, MOD_LOADED, MOD_FAILED };

struct mod {
	char *path;            /* owned; "[vdso]" for the vDSO */
	const char *name;      /* basename, points into path */
	hs_addr_t start, end;  /* extent of the maps (extended to the ELF's) */
	hs_addr_t map_start;   /* the map with the lowest file offset... */
	uint64_t map_off;      /* ...and that offset */
	hs_addr_t map_end;
	uint64_t inode;
	bool deleted, vdso;
	enum mod_state state;
	Dwfl_Module *dm;
	hs_addr_t bias;
	struct sym *syms;      /* sorted by addr, then best rank first */
	size_t nsyms;
};

struct hs_syms {
	struct hs_target *t;
	unsigned flags;
	Dwfl *dwfl;
	struct mod *mods;      /* sorted by start */
	size_t n, alloc;
	char **dem;            /* demangled names, owned (malloc'd) */
	size_t ndem, dem_alloc;
};

static char *no_debuginfo_path;

static int find_elf_none(Dwfl_Module *mod, void **userdata, const char *modname,
			 Dwarf_Addr base, char **file_name, Elf **elfp)
{
	(void)mod; (void)userdata; (void)modname; (void)base;
	*file_name = NULL;
	*elfp = NULL;
	return -1;
}

static int find_debuginfo_none(Dwfl_Module *mod, void **userdata,
			       const char *modname, Dwarf_Addr base,
			       const char *file_name, const char *debuglink_file,
			       GElf_Word debuglink_crc, char **debuginfo_file_name)
{
	(void)mod; (void)userdata; (void)modname; (void)base; (void)file_name;
	(void)debuglink_file; (void)debuglink_crc;
	*debuginfo_file_name = NULL;
	return -1;
}

static const Dwfl_Callbacks cb_debug = {
	.find_elf = find_elf_none,
	.find_debuginfo = dwfl_standard_find_debuginfo,
	.debuginfo_path = NULL, /* default ":.debug:/usr/lib/debug" */
};

static const Dwfl_Callbacks cb_nodebug = {
	.find_elf = find_elf_none,
	.find_debuginfo = find_debuginfo_none,
	.debuginfo_path = &no_debuginfo_path,
};

static bool is_file_map(const struct hs_map *m)
{
	return m->path && m->path[0] == '/';
}

static bool is_vdso_map(const struct hs_map *m)
{
	return m->path && !strcmp(m->path, "[vdso]");
}

static struct mod *find_mod_by_path(struct hs_syms *s, const char *path)
{
	for (size_t i = s->n; i-- > 0;)
		if (!strcmp(s->mods[i].path, path))
			return &s->mods[i];
	return NULL;
}

static int mod_cmp(const void *a, const void *b)
{
	const struct mod *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

int hs_syms_open(struct hs_target *t, unsigned flags, struct hs_syms **out)
{
	struct hs_syms *s;

	*out = NULL;
	s = hs_xcalloc(1, sizeof(*s));
	s->t = t;
	s->flags = flags;
	for (size_t i = 0; i < t->maps.n; i++) {
		const struct hs_map *m = &t->maps.v[i];
		struct mod *md;

		if (!is_file_map(m) && !is_vdso_map(m))
			continue;
		md = find_mod_by_path(s, m->path);
		if (md) {
			/* Another piece of the same file (maps are sorted). */
			if (m->end > md->end)
				md->end = m->end;
			if (m->offset < md->map_off) {
				md->map_start = m->start;
				md->map_end = m->end;
				md->map_off = m->offset;
			}
			continue;
		}
		HS_ALLOC_GROW(s->mods, s->n + 1, s->alloc);
		md = &s->mods[s->n++];
		memset(md, 0, sizeof(*md));
		md->path = hs_xstrdup(m->path);
		md->name = strrchr(md->path, '/') ? strrchr(md->path, '/') + 1 : md->path;
		md->start = m->start;
		md->end = m->end;
		md->map_start = m->start;
		md->map_end = m->end;
		md->map_off = m->offset;
		md->inode = m->inode;
		md->deleted = (m->flags & HS_MAP_DELETED) != 0;
		md->vdso = is_vdso_map(m);
	}
	if (s->n)
		qsort(s->mods, s->n, sizeof(*s->mods), mod_cmp);
	*out = s;
	return 0;
}

void hs_syms_close(struct hs_syms *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++) {
		free(s->mods[i].path);
		free(s->mods[i].syms);
	}
	free(s->mods);
	for (size_t i = 0; i < s->ndem; i++)
		free(s->dem[i]);
	free(s->dem);
	if (s->dwfl)
		dwfl_end(s->dwfl);
	free(s);
}

/* ---- opening a module's file ------------------------------------------- */

/* Not larger than heapscan will hand to libelf. */
static bool size_ok(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && (uint64_t)st.st_size <= HS_SYMS_MAX_FILE;
}

/* A copy of the target's [vdso] image in a memfd (libdwfl wants an fd). */
static int open_vdso(struct hs_syms *s, struct mod *md)
{
	size_t len = md->map_end - md->map_start, got = 0;
	unsigned char *buf;
	int fd, err;

	if (!len || len > HS_SYMS_MAX_VDSO)
		return -E2BIG;
	buf = hs_xmalloc(len);
	err = hs_target_read(s->t, md->map_start, buf, len, &got);
	if (err < 0 || got < sizeof(Elf64_Ehdr) || memcmp(buf, ELFMAG, SELFMAG)) {
		free(buf);
		return err < 0 ? err : -ENOEXEC;
	}
	fd = memfd_create("hs-vdso", MFD_CLOEXEC);
	if (fd < 0) {
		free(buf);
		return -errno;
	}
	if (write(fd, buf, got) != (ssize_t)got) {
		close(fd);
		free(buf);
		return -EIO;
	}
	free(buf);
	return fd;
}

/* The file behind md (hs_target_open_file), or the vdso's image. */
static int open_mod_file(struct hs_syms *s, struct mod *md)
{
	const struct hs_map *m;
	int fd;

	if (md->vdso)
		return open_vdso(s, md);
	m = hs_target_find_map(s->t, md->map_start);
	if (!m)
		return -ENOENT;
	fd = hs_target_open_file(s->t, m);
	if (fd < 0)
		return fd;
	if (!size_ok(fd)) {
		close(fd);
		return -ENOENT;
	}
	return fd;
}

/*
 * Load bias from the map with the lowest file offset and the PT_LOAD that
 * holds that offset: bias = map start - (segment's page-aligned vaddr +
 * (map offset - segment's page-aligned offset)).  Also the ELF's extent.
 */
static int elf_layout(Elf *e, const struct mod *md, hs_addr_t *bias,
		      hs_addr_t *lo, hs_addr_t *hi, bool *is_exec)
{
	GElf_Ehdr eh;
	size_t phnum;
	bool have_bias = false;
	uint64_t vlo = UINT64_MAX, vhi = 0;

	if (!gelf_getehdr(e, &eh) || (eh.e_type != ET_DYN && eh.e_type != ET_EXEC))
		return -ENOEXEC;
	if (elf_getphdrnum(e, &phnum) || phnum == 0 || phnum > HS_SYMS_MAX_PHDR)
		return -ENOEXEC;
	*is_exec = eh.e_type == ET_EXEC;
	*bias = 0;
	for (size_t i = 0; i < phnum; i++) {
		GElf_Phdr ph;
		uint64_t off0;

		if (!gelf_getphdr(e, (int)i, &ph) || ph.p_type != PT_LOAD)
			continue;
		if (ph.p_vaddr + ph.p_memsz < ph.p_vaddr ||
		    ph.p_offset + ph.p_filesz < ph.p_offset)
			return -ENOEXEC;
		if (ph.p_vaddr < vlo)
			vlo = ph.p_vaddr;
		if (ph.p_vaddr + ph.p_memsz > vhi)
			vhi = ph.p_vaddr + ph.p_memsz;
		off0 = ph.p_offset & PAGE_MASK_;
		if (!have_bias && md->map_off >= off0 &&
		    (md->map_off < ph.p_offset + ph.p_filesz || md->map_off == off0)) {
			*bias = md->map_start -
				((ph.p_vaddr & PAGE_MASK_) + (md->map_off - off0));
			have_bias = true;
		}
	}
	if (vlo >= vhi)
		return -ENOEXEC;
	if (*is_exec)
		*bias = 0;
	else if (!have_bias)
		*bias = md->map_start - md->map_off;
	*lo = vlo + *bias;
	*hi = vhi + *bias;
	return 0;
}

/* ---- the symbol table -------------------------------------------------- */

static unsigned sym_rank(const GElf_Sym *sym, const char *name)
{
	unsigned r = 0;
	int bind = GELF_ST_BIND(sym->st_info), type = GELF_ST_TYPE(sym->st_info);

	if (bind == STB_GLOBAL)
		r += 8;
	else if (bind == STB_WEAK)
		r += 4;
	if (type == STT_FUNC || type == STT_GNU_IFUNC || type == STT_OBJECT)
		r += 16;
	if (sym->st_size)
		r += 32;
	/* Among aliases prefer the public spelling: malloc over __libc_malloc. */
	if (name[0] != '_')
		r += 2;
	if (name[0] != '_' || name[1] != '_')
		r += 1;
	return r;
}

static int sym_cmp(const void *a, const void *b)
{
	const struct sym *x = a, *y = b;

	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	if (x->rank != y->rank)
		return x->rank > y->rank ? -1 : 1;
	return strcmp(x->name, y->name);
}

static void load_symbols(struct mod *md)
{
	int n = dwfl_module_getsymtab(md->dm);
	size_t alloc = 0;

	if (n <= 0)
		return;
	for (int i = 0; i < n && md->nsyms < HS_SYMS_MAX_SYMS; i++) {
		GElf_Sym sym;
		GElf_Addr addr;
		GElf_Word shndx;
		const char *name;
		int type;
		struct sym *y;

		name = dwfl_module_getsym_info(md->dm, i, &sym, &addr, &shndx,
					       NULL, NULL);
		if (!name || !name[0] || sym.st_shndx == SHN_UNDEF)
			continue;
		type = GELF_ST_TYPE(sym.st_info);
		if (type != STT_FUNC && type != STT_GNU_IFUNC &&
		    type != STT_OBJECT && type != STT_NOTYPE)
			continue;
		/* Absolute symbols and mapping markers name no code or data. */
		if (sym.st_shndx == SHN_ABS || name[0] == '$')
			continue;
		HS_ALLOC_GROW(md->syms, md->nsyms + 1, alloc);
		y = &md->syms[md->nsyms++];
		y->addr = addr;
		y->size = sym.st_size;
		y->name = name;
		y->kind = type == STT_OBJECT ? HS_SYM_OBJECT :
			  type == STT_NOTYPE ? HS_SYM_OTHER : HS_SYM_FUNC;
		y->rank = (unsigned char)sym_rank(&sym, name);
		y->dem = DEM_UNTRIED;
	}
	if (md->nsyms)
		qsort(md->syms, md->nsyms, sizeof(*md->syms), sym_cmp);
}

static void load_mod(struct hs_syms *s, struct mod *md, hs_addr_t next_start)
{
	hs_addr_t bias, lo, hi;
	bool is_exec;
	Elf *e;
	int fd, err;

	if (md->state != MOD_NEW)
		return;
	md->state = MOD_FAILED;
	md->bias = md->map_start - md->map_off;
	fd = open_mod_file(s, md);
	if (fd < 0) {
		hs_log(HS_LOG_DEBUG, "symbols: cannot open '%s': %s", md->path,
		       hs_strerror(fd));
		return;
	}
	elf_version(EV_CURRENT);
	e = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!e || elf_kind(e) != ELF_K_ELF) {
		if (e)
			elf_end(e);
		close(fd);
		hs_log(HS_LOG_DEBUG, "symbols: '%s' is not ELF", md->path);
		return;
	}
	err = elf_layout(e, md, &bias, &lo, &hi, &is_exec);
	elf_end(e);
	if (err) {
		close(fd);
		hs_log(HS_LOG_DEBUG, "symbols: '%s': bad program headers", md->path);
		return;
	}
	md->bias = bias;
	if (!s->dwfl) {
		s->dwfl = dwfl_begin((s->flags & HS_SYMS_NO_DEBUGINFO) ?
				     &cb_nodebug : &cb_debug);
		if (!s->dwfl) {
			close(fd);
			return;
		}
	}
	dwfl_report_begin_add(s->dwfl);
	/* ET_DYN: base is added to p_vaddr, i.e. it is the bias; ET_EXEC
	 * ignores it.  On success fd belongs to libdwfl. */
	md->dm = dwfl_report_elf(s->dwfl, md->name, md->path, fd, bias, true);
	dwfl_report_end(s->dwfl, NULL, NULL);
	if (!md->dm) {
		close(fd);
		hs_log(HS_LOG_DEBUG, "symbols: '%s': %s", md->path, dwfl_errmsg(-1));
		return;
	}
	/* .bss and other memsz-only parts belong to the module too, up to the
	 * next module. */
	(void)lo;
	if (hi > md->end)
		md->end = next_start && hi > next_start ? next_start : hi;
	md->state = MOD_LOADED;
	load_symbols(md);
}

static struct mod *mod_for_addr(struct hs_syms *s, hs_addr_t addr)
{
	size_t lo = 0, hi = s->n;
	struct mod *md;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->mods[mid].start <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return NULL;
	md = &s->mods[lo - 1];
	if (addr < md->end)
		return md;
	/* Maybe in the module's .bss, mapped anonymously after its file. */
	load_mod(s, md, lo < s->n ? s->mods[lo].start : 0);
	return addr < md->end ? md : NULL;
}

/* The best symbol for addr in md, or NULL. */
static struct sym *sym_for_addr(struct mod *md, hs_addr_t addr)
{
	size_t lo = 0, hi = md->nsyms, i, groups = 0;
	struct sym *nearest = NULL;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (md->syms[mid].addr <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	i = lo;
	/* Walk back group by group (the first of a group is its best). */
	while (i > 0 && groups < HS_SYMS_WALK_BACK) {
		struct sym *y;
		hs_addr_t a = md->syms[i - 1].addr;

		while (i > 0 && md->syms[i - 1].addr == a)
			i--;
		y = &md->syms[i];
		groups++;
		if (!nearest)
			nearest = y;
		if (y->size && addr < y->addr + y->size)
			return y;
	}
	/* An unsized label (assembly) covers up to the next symbol. */
	if (nearest && !nearest->size)
		return nearest;
	return NULL;
}

/* Lines exist only for code: spare data lookups the line-table search. */
static bool is_code(struct hs_syms *s, hs_addr_t addr)
{
	const struct hs_map *m = hs_target_find_map(s->t, addr);

	return !m || (m->perms & HS_PERM_X);
}

/* ---- C++ names ---------------------------------------------------------- */

/* char *__cxa_demangle(const char *mangled, char *buf, size_t *len,
 * int *status) from the Itanium C++ ABI: a malloc'd string, or NULL with
 * status < 0 when the name does not demangle. */
typedef char *(*cxa_demangle_fn)(const char *, char *, size_t *, int *);

static cxa_demangle_fn cxa_demangle;
static pthread_once_t cxa_once = PTHREAD_ONCE_INIT;

/* Once per process; the library stays loaded (its handle is never closed,
 * so cxa_demangle stays valid). */
static void cxa_load(void)
{
	void *h = dlopen("libstdc++.so.6", RTLD_LAZY | RTLD_LOCAL);
	void *f;

	if (!h) {
		hs_log(HS_LOG_DEBUG, "symbols: no C++ demangler: %s", dlerror());
		return;
	}
	f = dlsym(h, "__cxa_demangle");
	if (!f) {
		hs_log(HS_LOG_DEBUG, "symbols: no __cxa_demangle in libstdc++.so.6");
		return;
	}
	memcpy(&cxa_demangle, &f, sizeof(f));
}

/*
 * raw demangled into a new malloc'd string, or NULL.  A debug .symtab's
 * version suffix ("_ZNSo3putEc@@GLIBCXX_3.4") is kept after the demangled
 * name, which __cxa_demangle would refuse.
 */
static char *demangle_new(const char *raw)
{
	char buf[HS_SYMS_MAX_DEMANGLE + 1], *d, *full;
	const char *at;
	size_t n = strnlen(raw, HS_SYMS_MAX_DEMANGLE + 1), dn;
	int status = -1;

	if (raw[0] != '_' || raw[1] != 'Z' || n > HS_SYMS_MAX_DEMANGLE)
		return NULL;
	pthread_once(&cxa_once, cxa_load);
	if (!cxa_demangle)
		return NULL;
	at = memchr(raw, '@', n);
	if (!at)
		at = raw + n;
	memcpy(buf, raw, (size_t)(at - raw));
	buf[at - raw] = 0;
	d = cxa_demangle(buf, NULL, NULL, &status);
	if (!d || status != 0) {
		free(d);
		return NULL;
	}
	if (!*at)
		return d;
	dn = strlen(d);
	full = hs_xmalloc(dn + (size_t)(raw + n - at) + 1);
	memcpy(full, d, dn);
	memcpy(full + dn, at, (size_t)(raw + n - at) + 1);
	free(d);
	return full;
}

/* Keeps d (owned from now on); its DEM_FIRST-based index, or DEM_RAW when
 * the table is full. */
static uint32_t dem_keep(struct hs_syms *s, char *d)
{
	if (s->ndem >= UINT32_MAX - DEM_FIRST) {
		free(d);
		return DEM_RAW;
	}
	HS_ALLOC_GROW(s->dem, s->ndem + 1, s->dem_alloc);
	s->dem[s->ndem++] = d;
	return (uint32_t)(s->ndem - 1 + DEM_FIRST);
}

const char *hs_syms_demangle(struct hs_syms *s, const char *raw)
{
	char *d = raw ? demangle_new(raw) : NULL;
	uint32_t k;

	if (!d)
		return raw;
	k = dem_keep(s, d);
	return k == DEM_RAW ? raw : s->dem[k - DEM_FIRST];
}

/* y's name for the user: demangled once, then from the cache. */
static const char *sym_name(struct hs_syms *s, struct sym *y)
{
	if (y->dem == DEM_UNTRIED) {
		char *d = demangle_new(y->name);

		y->dem = d ? dem_keep(s, d) : DEM_RAW;
	}
	return y->dem == DEM_RAW ? y->name : s->dem[y->dem - DEM_FIRST];
}

int hs_syms_lookup(struct hs_syms *s, hs_addr_t addr, struct hs_sym_info *out)
{
	struct mod *md;
	struct sym *y;

	memset(out, 0, sizeof(*out));
	md = mod_for_addr(s, addr);
	if (!md)
		return -HS_E_NOT_FOUND;
	load_mod(s, md, md + 1 < s->mods + s->n ? md[1].start : 0);
	out->module = md->path;
	out->module_name = md->name;
	out->module_bias = md->bias;
	out->offset = addr - md->bias;
	if (md->state != MOD_LOADED)
		return 0;
	y = sym_for_addr(md, addr);
	if (y) {
		out->name = sym_name(s, y);
		out->kind = y->kind;
		out->sym_addr = y->addr;
		out->sym_size = y->size;
		out->offset = addr - y->addr;
	}
	if (!(s->flags & HS_SYMS_NO_DEBUGINFO) && out->kind != HS_SYM_OBJECT &&
	    is_code(s, addr)) {
		Dwfl_Line *line = dwfl_module_getsrc(md->dm, addr);
		int lineno = 0;
		const char *src = line ?
			dwfl_lineinfo(line, NULL, &lineno, NULL, NULL, NULL) : NULL;

		if (src && lineno > 0) {
			out->src_file = src;
			out->src_line = lineno;
		}
	}
	return 0;
}

static bool mod_matches(const struct mod *md, const char *module)
{
	size_t n;

	if (!module)
		return true;
	if (!strcmp(md->path, module) || !strcmp(md->name, module))
		return true;
	/* "libc" matches "libc.so.6" and "libc-2.31.so", not "libcrypt.so". */
	n = strlen(module);
	return !strncmp(md->name, module, n) &&
	       (md->name[n] == '.' || md->name[n] == '-');
}

/* "pthread_cond_wait" names "pthread_cond_wait@@GLIBC_2.3.2" too (a
 * debug file's .symtab spells the version into the name). */
static int name_match(const char *symname, const char *name, size_t nlen)
{
	if (strncmp(symname, name, nlen))
		return 0;
	if (symname[nlen] == 0)
		return 3;
	if (symname[nlen] != '@' || strchr(name, '@'))
		return 0;
	/* "@@" is the default version (what dlsym and the linker pick),
	 * "@" an older compatibility one. */
	return symname[nlen + 1] == '@' ? 2 : 1;
}

int hs_syms_by_name(struct hs_syms *s, const char *module, const char *name,
		    hs_addr_t *addr, uint64_t *size)
{
	const struct sym *best = NULL;
	size_t nlen = strlen(name);
	int best_match = 0;

	for (size_t i = 0; i < s->n; i++) {
		struct mod *md = &s->mods[i];

		if (!mod_matches(md, module))
			continue;
		load_mod(s, md, i + 1 < s->n ? s->mods[i + 1].start : 0);
		for (size_t k = 0; k < md->nsyms; k++) {
			const struct sym *y = &md->syms[k];
			int m = name_match(y->name, name, nlen);

			if (!m)
				continue;
			if (!best || m > best_match ||
			    (m == best_match && y->rank > best->rank)) {
				best = y;
				best_match = m;
			}
		}
		if (best)
			break; /* the first module (in address order) that has it */
	}
	if (!best)
		return -HS_E_NOT_FOUND;
	if (addr)
		*addr = best->addr;
	if (size)
		*size = best->size;
	return 0;
}

int hs_syms_for_each(struct hs_syms *s, const char *prefix, hs_syms_each_fn cb,
		     void *ud)
{
	size_t plen = prefix ? strlen(prefix) : 0;

	for (size_t i = 0; i < s->n; i++) {
		struct mod *md = &s->mods[i];

		/* The vDSO is read from the target's memory, which faults its
		 * page into the target (Rss grows): only files are enumerated. */
		if (md->vdso)
			continue;
		load_mod(s, md, i + 1 < s->n ? s->mods[i + 1].start : 0);
		for (size_t k = 0; k < md->nsyms; k++) {
			const struct sym *y = &md->syms[k];
			int ret;

			if (plen && strncmp(y->name, prefix, plen))
				continue;
			ret = cb(ud, y->name, y->addr, y->size);
			if (ret)
				return ret;
		}
	}
	return 0;
}

int hs_syms_file_section(struct hs_syms *s, hs_addr_t addr, const char *name,
			 const void **data, size_t *len)
{
	struct mod *md = mod_for_addr(s, addr);
	GElf_Addr bias;
	size_t shstrndx;
	Elf_Scn *scn = NULL;
	Elf *e;

	if (!md)
		return -HS_E_NOT_FOUND;
	load_mod(s, md, md + 1 < s->mods + s->n ? md[1].start : 0);
	if (md->state != MOD_LOADED || md->vdso)
		return -HS_E_NOT_FOUND;
	e = dwfl_module_getelf(md->dm, &bias);
	if (!e || elf_getshdrstrndx(e, &shstrndx))
		return -HS_E_NOT_FOUND;
	while ((scn = elf_nextscn(e, scn))) {
		GElf_Shdr sh;
		const char *n;
		Elf_Data *d;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_PROGBITS)
			continue;
		n = elf_strptr(e, shstrndx, sh.sh_name);
		if (!n || strcmp(n, name))
			continue;
		d = elf_rawdata(scn, NULL);
		if (!d || !d->d_buf)
			return -HS_E_NOT_FOUND;
		*data = d->d_buf;
		*len = d->d_size;
		return 0;
	}
	return -HS_E_NOT_FOUND;
}

int hs_syms_read_file(struct hs_syms *s, hs_addr_t addr, void *buf, size_t len)
{
	struct mod *md = mod_for_addr(s, addr);
	GElf_Addr bias;
	size_t phnum;
	Elf *e;

	if (!md)
		return -HS_E_NOT_FOUND;
	load_mod(s, md, md + 1 < s->mods + s->n ? md[1].start : 0);
	if (md->state != MOD_LOADED || md->vdso)
		return -HS_E_NOT_FOUND;
	e = dwfl_module_getelf(md->dm, &bias);
	if (!e || elf_getphdrnum(e, &phnum) || phnum > HS_SYMS_MAX_PHDR)
		return -HS_E_NOT_FOUND;
	for (size_t i = 0; i < phnum; i++) {
		GElf_Phdr ph;
		uint64_t va = addr - md->bias, off;
		Elf_Data *d;

		if (!gelf_getphdr(e, (int)i, &ph) || ph.p_type != PT_LOAD ||
		    va < ph.p_vaddr || va - ph.p_vaddr >= ph.p_filesz ||
		    len > ph.p_filesz - (va - ph.p_vaddr))
			continue;
		off = ph.p_offset + (va - ph.p_vaddr);
		/* The whole file's bytes (libelf maps it: nothing is copied). */
		d = elf_getdata_rawchunk(e, (int64_t)off, len, ELF_T_BYTE);
		if (!d || !d->d_buf || d->d_size < len)
			return -HS_E_NOT_FOUND;
		memcpy(buf, d->d_buf, len);
		return 0;
	}
	return -HS_E_NOT_FOUND;
}

const char *hs_syms_format(struct hs_syms *s, hs_addr_t addr, char *buf,
			   size_t len)
{
	struct hs_sym_info si;

	if (!len)
		return buf;
	if (!s || hs_syms_lookup(s, addr, &si) < 0)
		snprintf(buf, len, "0x%" PRIx64, addr);
	else if (si.name && si.offset)
		snprintf(buf, len, "%s+0x%" PRIx64 " (%s)", si.name, si.offset,
			 si.module_name);
	else if (si.name)
		snprintf(buf, len, "%s (%s)", si.name, si.module_name);
	else
		snprintf(buf, len, "%s+0x%" PRIx64, si.module_name, si.offset);
	return buf;
}
