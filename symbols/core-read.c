/*
 * The core backend: an ELF core file (kernel core, gdb gcore, heapscan
 * dump) behind the target interface.  See hs_target_open_core() for the
 * contract; doc/elf-cores.md for the layout.
 *
 * The file is hostile input: every size and offset read from it is checked
 * against the file before use, and anything damaged is reported and
 * skipped rather than trusted.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <libelf.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * Budgets: whatever the core claims, heapscan's memory for it stays
 * bounded (doc/hostile-input.md).  The file itself is mapped, not read,
 * so only what is copied out of it counts.
 */
#define MAX_XSTATE (1u << 20)
#define MAX_AUXV (1u << 20)
#define MAX_SEGS (1u << 18)       /* 4x Linux's default vm.max_map_count */
#define MAX_THREADS (1u << 17)    /* ~100 MiB of struct hs_thread */
#define MAX_NOTE_COPY (64u << 20) /* xstate images and the like, in all */
#define MAX_BFILES 1024           /* backing files opened for file mappings */
#define MAX_DETAIL 8          /* per-segment warnings before summarising */
/* x86_64 brk randomisation range (arch_randomize_brk): [heap] starts at
 * most this far after the executable's end (32 MiB before Linux 6.x made
 * it 1 GiB for 64-bit processes; seen up to 992 MiB here). */
#define BRK_RANGE (1ull << 30)

#define AT_PHDR_ 3
#define AT_ENTRY_ 9
#define AT_SYSINFO_EHDR_ 33

struct cseg {
	hs_addr_t vaddr;
	uint64_t memsz;
	uint64_t offset;   /* in the core */
	uint64_t filesz;   /* as the program header says */
	uint64_t avail;    /* of filesz, bytes actually present in the file */
	unsigned perms;
	int bfile;         /* backing file for [filesz, memsz), or -1 */
	uint64_t boff;     /* file offset of vaddr in the backing file */
};

struct bfile {
	char *path;
	int fd;
	uint64_t size;
};

struct fentry {            /* one NT_FILE entry */
	hs_addr_t start, end;
	uint64_t off;      /* bytes */
	const char *path;  /* into the note data */
};

struct core_priv {
	int fd;
	Elf *elf;
	const unsigned char *raw;
	size_t rawsz;
	struct cseg *segs;
	size_t nsegs;
	size_t *next_with_data; /* [i]: first segment >= i that holds data
				   (nsegs if none); nsegs + 1 entries */
	struct bfile *files;
	size_t nfiles;
};

/* What note parsing found, before it becomes t->info/maps/threads. */
struct notes {
	struct fentry *fe;
	size_t nfe, afe;
	size_t athreads;
	uint64_t copied;       /* bytes copied out of notes (MAX_NOTE_COPY) */
	bool threads_capped;
	bool have_prpsinfo;
	bool have_hs;          /* heapscan note with a usable map table */
	struct hs_maps hs_maps;
	struct hs_proc_info hs_info;
	bool hs_info_set;
};

/* ---- reading ---- */

static const struct cseg *find_seg(const struct core_priv *p, hs_addr_t a)
{
	size_t lo = 0, hi = p->nsegs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct cseg *s = &p->segs[mid];

		if (a < s->vaddr)
			hi = mid;
		else if (a - s->vaddr >= s->memsz)
			lo = mid + 1;
		else
			return s;
	}
	return NULL;
}

/* Copies what the segment holds at a: from the core, else from the
 * backing file.  Returns bytes copied (0: missing). */
static size_t seg_read(const struct core_priv *p, const struct cseg *s,
		       hs_addr_t a, unsigned char *buf, size_t len)
{
	uint64_t in = a - s->vaddr;
	size_t n;

	if (len > s->memsz - in)
		len = (size_t)(s->memsz - in);
	if (in < s->avail) {
		n = s->avail - in < len ? (size_t)(s->avail - in) : len;
		memcpy(buf, p->raw + s->offset + in, n);
		return n;
	}
	if (in < s->filesz || s->bfile < 0)
		return 0;
	/* Beyond p_filesz: an unmodified file mapping, the file has it. */
	const struct bfile *f = &p->files[s->bfile];
	uint64_t fo = s->boff + in;

	if (fo < s->boff || fo >= f->size)
		return 0;
	if (len > f->size - fo)
		len = (size_t)(f->size - fo);
	ssize_t r = pread(f->fd, buf, len, (off_t)fo);
	return r > 0 ? (size_t)r : 0;
}

static int core_read(struct hs_target *t, hs_addr_t addr, void *buf, size_t len,
		     size_t *nread)
{
	const struct core_priv *p = t->priv;
	size_t done = 0;

	while (done < len) {
		const struct cseg *s = find_seg(p, addr + done);
		size_t n;

		if (!s)
			break;
		n = seg_read(p, s, addr + done, (unsigned char *)buf + done, len - done);
		if (!n)
			break;
		done += n;
	}
	*nread = done;
	return done || !len ? 0 : -EFAULT;
}

/* The extents of s that read can return, in the segment's offsets: the
 * bytes present in the core, then those a backing file holds. */
static int seg_extents(const struct core_priv *p, const struct cseg *s,
		       uint64_t ext[2][2])
{
	int n = 0;

	if (s->avail) {
		ext[n][0] = 0;
		ext[n++][1] = s->avail;
	}
	if (s->bfile >= 0 && s->filesz < s->memsz) {
		const struct bfile *f = &p->files[s->bfile];
		uint64_t lo = s->filesz, hi = s->memsz;

		/* seg_read reads file offset boff + in, unwrapped, below the
		 * file's size. */
		if (s->boff < f->size && hi > f->size - s->boff)
			hi = f->size - s->boff;
		if (s->boff >= f->size)
			hi = lo;
		if (lo < hi) {
			ext[n][0] = lo;
			ext[n++][1] = hi;
		}
	}
	return n;
}

static int core_next_data(struct hs_target *t, hs_addr_t addr, hs_addr_t *start,
			  hs_addr_t *end)
{
	const struct core_priv *p = t->priv;
	size_t lo = 0, hi = p->nsegs;

	/* The first segment ending after addr. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct cseg *s = &p->segs[mid];

		if (s->vaddr + s->memsz <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* Only segments holding data are visited: a core may have many
	 * holes, and readers ask once per piece. */
	if (!p->next_with_data)   /* still opening */
		return -ENXIO;
	for (size_t i = p->next_with_data[lo]; i < p->nsegs;
	     i = p->next_with_data[i + 1]) {
		const struct cseg *s = &p->segs[i];
		uint64_t ext[2][2];
		int n = seg_extents(p, s, ext);

		for (int k = 0; k < n; k++) {
			hs_addr_t a = s->vaddr + ext[k][0], b = s->vaddr + ext[k][1];

			if (b <= addr)
				continue;
			*start = a > addr ? a : addr;
			*end = b;
			return 0;
		}
	}
	return -ENXIO;
}

static void core_close(struct hs_target *t)
{
	struct core_priv *p = t->priv;

	if (!p)
		return;
	for (size_t i = 0; i < p->nfiles; i++) {
		if (p->files[i].fd >= 0)
			close(p->files[i].fd);
		free(p->files[i].path);
	}
	free(p->files);
	free(p->segs);
	free(p->next_with_data);
	if (p->elf)
		elf_end(p->elf);
	if (p->fd >= 0)
		close(p->fd);
	free(p);
	t->priv = NULL;
}

static const struct hs_target_ops core_ops = {
	.name = "core",
	.read = core_read,
	.close = core_close,
	.next_data = core_next_data,
};

static const struct hs_target_ops dump_ops = {
	.name = "dump",
	.read = core_read,
	.close = core_close,
	.next_data = core_next_data,
};

/* ---- notes ---- */

static void partial(struct hs_target *t)
{
	t->state |= HS_TSTATE_PARTIAL;
}

static bool name_is(const GElf_Nhdr *nh, const char *name, const char *want)
{
	size_t n = strlen(want);

	return nh->n_namesz == n + 1 && !memcmp(name, want, n) && name[n] == '\0';
}

static struct hs_thread *new_thread(struct hs_target *t, struct notes *nt)
{
	struct hs_thread *th;

	if (t->nthreads >= MAX_THREADS) {
		if (!nt->threads_capped)
			hs_log(HS_LOG_WARN, "core has more than %u threads; the rest ignored",
			       MAX_THREADS);
		nt->threads_capped = true;
		partial(t);
		return NULL;
	}
	HS_ALLOC_GROW(t->threads, t->nthreads + 1, nt->athreads);
	th = &t->threads[t->nthreads++];
	memset(th, 0, sizeof(*th));
	return th;
}

static void parse_prstatus(struct hs_target *t, struct notes *nt,
			   const unsigned char *d, size_t len)
{
	struct hs_thread *th;
	int16_t cursig;

	if (len < PRS_REG + 8 * HS_REG_N) {
		hs_log(HS_LOG_WARN, "NT_PRSTATUS of %zu bytes is too short; thread ignored", len);
		partial(t);
		return;
	}
	th = new_thread(t, nt);
	if (!th)
		return;
	th->tid = (pid_t)hs_get_u32(d + PRS_PID);
	if (th->tid <= 0) {
		hs_log(HS_LOG_WARN, "NT_PRSTATUS of thread %zu has pid %d: corrupt",
		       t->nthreads - 1, (int)th->tid);
		partial(t);
	}
	memcpy(&cursig, d + PRS_CURSIG, 2);
	th->cursig = cursig;
	th->state = 'S';
	memcpy(th->regs.r, d + PRS_REG, 8 * HS_REG_N);
	th->has_regs = true;
	th->sp = th->regs.r[HS_REG_RSP];
}

static void parse_prpsinfo(struct hs_target *t, struct notes *nt,
			   const unsigned char *d, size_t len)
{
	struct hs_proc_info *in = &t->info;

	if (len < PRPS_SIZE) {
		hs_log(HS_LOG_WARN, "NT_PRPSINFO of %zu bytes is too short; ignored", len);
		partial(t);
		return;
	}
	nt->have_prpsinfo = true;
	in->state = (char)d[PRPS_SNAME];
	in->uid = in->euid = hs_get_u32(d + PRPS_UID);
	in->gid = in->egid = hs_get_u32(d + PRPS_GID);
	in->pid = (pid_t)hs_get_u32(d + PRPS_PID);
	in->ppid = (pid_t)hs_get_u32(d + PRPS_PPID);
	memcpy(in->comm, d + PRPS_FNAME, PRPS_FNAME_LEN);
	in->comm[PRPS_FNAME_LEN] = '\0';
	free(in->cmdline);
	in->cmdline = hs_xstrndup((const char *)d + PRPS_PSARGS, PRPS_PSARGS_LEN);
	/* The kernel keeps the trailing space of the joined argv. */
	size_t n = strlen(in->cmdline);
	while (n && in->cmdline[n - 1] == ' ')
		in->cmdline[--n] = '\0';
}

static void parse_file(struct hs_target *t, struct notes *nt,
		       const unsigned char *d, size_t len)
{
	uint64_t count, pagesz;
	const char *names, *end = (const char *)d + len;

	if (len < 16)
		goto bad;
	count = hs_get_u64(d);
	pagesz = hs_get_u64(d + 8);
	if (count > (len - 16) / 24 || pagesz == 0 || (pagesz & (pagesz - 1)) ||
	    pagesz > (1u << 30))
		goto bad;
	names = (const char *)d + 16 + count * 24;
	for (uint64_t i = 0; i < count; i++) {
		const unsigned char *e = d + 16 + i * 24;
		const char *nul = memchr(names, '\0', (size_t)(end - names));
		struct fentry *f;

		if (!nul) {
			hs_log(HS_LOG_WARN, "NT_FILE names %" PRIu64 " of %" PRIu64
			       " files; the rest have no path", i, count);
			partial(t);
			return;
		}
		uint64_t pg = hs_get_u64(e + 16);
		if (nt->nfe >= MAX_SEGS) {
			hs_log(HS_LOG_WARN, "NT_FILE names more than %u files; the rest "
			       "are ignored", MAX_SEGS);
			partial(t);
			return;
		}
		HS_ALLOC_GROW(nt->fe, nt->nfe + 1, nt->afe);
		f = &nt->fe[nt->nfe++];
		f->start = hs_get_u64(e);
		f->end = hs_get_u64(e + 8);
		f->off = pg > UINT64_MAX / pagesz ? 0 : pg * pagesz;
		f->path = names;
		names = nul + 1;
		if (f->end <= f->start)
			nt->nfe--;
	}
	return;
bad:
	hs_log(HS_LOG_WARN, "NT_FILE of %zu bytes is malformed; mapped files unnamed", len);
	partial(t);
}

/* heapscan's note: see internal.h for the record layout. */
static bool parse_hs_map(struct notes *nt, const unsigned char *r, size_t len)
{
	uint32_t nsmaps, vl, pl;
	const unsigned char *q;
	size_t left;
	struct hs_map *m;
	char *path;

	if (len < HS_NOTE_MAP_FIXED)
		return false;
	nsmaps = hs_get_u32(r + 56);
	if (nsmaps > 1024 || len - HS_NOTE_MAP_FIXED < (size_t)nsmaps * 8 + 4)
		return false;
	q = r + HS_NOTE_MAP_FIXED + (size_t)nsmaps * 8;
	left = len - HS_NOTE_MAP_FIXED - (size_t)nsmaps * 8;
	vl = hs_get_u32(q);
	if (left - 4 < vl || left - 4 - vl < 4)
		return false;
	pl = hs_get_u32(q + 4 + vl);
	if (left - 8 - vl < pl)
		return false;
	hs_addr_t start = hs_get_u64(r), end = hs_get_u64(r + 8);
	if (end <= start)
		return false;
	if (nt->hs_maps.n && start < nt->hs_maps.v[nt->hs_maps.n - 1].end)
		return false;   /* unsorted or overlapping */
	path = hs_xstrndup((const char *)q + 8 + vl, pl);
	m = hs_maps_add(&nt->hs_maps, start, end, path);
	free(path);
	m->offset = hs_get_u64(r + 16);
	m->inode = hs_get_u64(r + 24);
	m->dev_major = hs_get_u32(r + 32);
	m->dev_minor = hs_get_u32(r + 36);
	m->perms = hs_get_u32(r + 40) & (HS_PERM_R | HS_PERM_W | HS_PERM_X | HS_PERM_SHARED);
	m->flags = hs_get_u32(r + 44) & (HS_MAP_DELETED | HS_MAP_HAS_SMAPS | HS_MAP_SPECIAL);
	uint32_t cls = hs_get_u32(r + 48);
	m->cls = cls < HS_CLASS_N ? (enum hs_class)cls : HS_CLASS_ANON;
	m->stack_tid = (pid_t)hs_get_u32(r + 52);
	for (uint32_t i = 0; i < nsmaps && i < HS_SMAPS_N; i++)
		m->smaps[i] = hs_get_u64(r + HS_NOTE_MAP_FIXED + 8 * i);
	if (vl >= sizeof(m->vmflags))
		vl = sizeof(m->vmflags) - 1;
	memcpy(m->vmflags, q + 4, vl);
	m->vmflags[vl] = '\0';
	return true;
}

static void parse_heapscan(struct hs_target *t, struct notes *nt,
			   const unsigned char *d, size_t len)
{
	struct hs_proc_info *in = &nt->hs_info;
	size_t pos = 0;
	bool maps_ok = true, versioned = false;

	hs_proc_info_release(in);
	hs_maps_release(&nt->hs_maps);
	in->exe = hs_xstrdup("");
	in->cmdline = hs_xstrdup("");
	while (len - pos >= 8) {
		uint32_t tag = hs_get_u32(d + pos), rl = hs_get_u32(d + pos + 4);
		const unsigned char *r = d + pos + 8;

		if (rl > len - pos - 8) {
			hs_log(HS_LOG_WARN, "heapscan note damaged at byte %zu; rest ignored", pos);
			partial(t);
			maps_ok = false;
			break;
		}
		switch (tag) {
		case HS_TAG_VERSION:
			if (rl < 4 || hs_get_u32(r) != HS_NOTE_VERSION) {
				hs_log(HS_LOG_WARN, "heapscan note of another version; ignored");
				goto drop;
			}
			versioned = true;
			break;
		case HS_TAG_TIME:
			if (rl >= 8)
				in->time_ns = hs_get_u64(r);
			break;
		case HS_TAG_PID:
			if (rl >= 32) {
				in->pid = (pid_t)hs_get_u32(r);
				in->ppid = (pid_t)hs_get_u32(r + 4);
				in->uid = hs_get_u32(r + 8);
				in->euid = hs_get_u32(r + 12);
				in->gid = hs_get_u32(r + 16);
				in->egid = hs_get_u32(r + 20);
				in->nthreads = (int)hs_get_u32(r + 24);
				in->state = (char)hs_get_u32(r + 28);
			}
			break;
		case HS_TAG_COMM: {
			size_t n = rl < sizeof(in->comm) - 1 ? rl : sizeof(in->comm) - 1;
			memcpy(in->comm, r, n);
			in->comm[n] = '\0';
			break;
		}
		case HS_TAG_EXE:
			free(in->exe);
			in->exe = hs_xstrndup((const char *)r, rl);
			break;
		case HS_TAG_CMDLINE:
			free(in->cmdline);
			in->cmdline = hs_xstrndup((const char *)r, rl);
			break;
		case HS_TAG_STATUS:
			if (rl >= 56) {
				in->vm_size = hs_get_u64(r);
				in->vm_rss = hs_get_u64(r + 8);
				in->rss_anon = hs_get_u64(r + 16);
				in->rss_file = hs_get_u64(r + 24);
				in->rss_shmem = hs_get_u64(r + 32);
				in->vm_swap = hs_get_u64(r + 40);
				in->vm_hwm = hs_get_u64(r + 48);
			}
			break;
		case HS_TAG_MAP:
			if (maps_ok && nt->hs_maps.n >= MAX_SEGS) {
				hs_log(HS_LOG_WARN, "heapscan note: more than %u regions; "
				       "regions taken from the program headers", MAX_SEGS);
				partial(t);
				maps_ok = false;
			}
			if (maps_ok && !parse_hs_map(nt, r, rl)) {
				hs_log(HS_LOG_WARN, "heapscan note: bad region record at byte %zu; "
				       "regions taken from the program headers", pos);
				partial(t);
				maps_ok = false;
			}
			break;
		default:
			break;
		}
		pos += 8 + ((rl + 7) & ~7ull);
		if (pos > len)
			break;
	}
	if (!versioned)
		goto drop;
	nt->hs_info_set = true;
	nt->have_hs = maps_ok && nt->hs_maps.n > 0;
	if (!nt->have_hs)
		hs_maps_release(&nt->hs_maps);
	return;
drop:
	partial(t);
	hs_maps_release(&nt->hs_maps);
	nt->have_hs = false;
}

static void parse_note(struct hs_target *t, struct notes *nt, const GElf_Nhdr *nh,
		       const char *name, const unsigned char *d)
{
	size_t len = nh->n_descsz;
	struct hs_thread *last = t->nthreads ? &t->threads[t->nthreads - 1] : NULL;

	if (name_is(nh, name, "CORE")) {
		switch (nh->n_type) {
		case NT_PRSTATUS:
			parse_prstatus(t, nt, d, len);
			break;
		case NT_FPREGSET:
			if (last && len >= FPREGSET_SIZE) {
				memcpy(last->fpregs, d, FPREGSET_SIZE);
				last->has_fpregs = true;
			}
			break;
		case NT_PRPSINFO:
			parse_prpsinfo(t, nt, d, len);
			break;
		case NT_AUXV:
			if (len <= MAX_AUXV && !t->info.auxv) {
				nt->copied += len;
				t->info.auxv = hs_xmalloc(len ? len : 1);
				memcpy(t->info.auxv, d, len);
				t->info.auxv_len = len;
			}
			break;
		case NT_FILE:
			if (!nt->nfe)
				parse_file(t, nt, d, len);
			break;
		default:
			break;
		}
	} else if (name_is(nh, name, "LINUX")) {
		if (nh->n_type == NT_X86_XSTATE && last && !last->xstate &&
		    len && len <= MAX_XSTATE) {
			if (nt->copied + len > MAX_NOTE_COPY) {
				partial(t);
				return;
			}
			nt->copied += len;
			last->xstate = hs_xmalloc(len);
			memcpy(last->xstate, d, len);
			last->xstate_len = len;
		}
	} else if (name_is(nh, name, HS_NOTE_NAME) && nh->n_type == HS_NT_INFO) {
		parse_heapscan(t, nt, d, len);
	}
}

static void read_notes(struct hs_target *t, struct core_priv *p, struct notes *nt,
		       const GElf_Phdr *ph)
{
	uint64_t size = ph->p_filesz;
	Elf_Data *data;
	GElf_Nhdr nh;
	size_t pos = 0, next, name_off, desc_off;

	if (ph->p_offset >= p->rawsz) {
		hs_log(HS_LOG_WARN, "note segment at offset %" PRIu64 " is past the end of "
		       "the file: no threads, no process information", (uint64_t)ph->p_offset);
		partial(t);
		return;
	}
	if (size > p->rawsz - ph->p_offset) {
		hs_log(HS_LOG_WARN, "note segment truncated: %" PRIu64 " of %" PRIu64
		       " bytes present", (uint64_t)(p->rawsz - ph->p_offset), size);
		partial(t);
		size = p->rawsz - ph->p_offset;
	}
	data = elf_getdata_rawchunk(p->elf, (int64_t)ph->p_offset, size, ELF_T_NHDR);
	if (!data) {
		hs_log(HS_LOG_WARN, "cannot read note segment: %s", elf_errmsg(-1));
		partial(t);
		return;
	}
	while (pos < data->d_size && !hs_interrupted &&
	       (next = gelf_getnote(data, pos, &nh, &name_off, &desc_off)) > 0) {
		const char *name = (const char *)data->d_buf + name_off;

		/* gelf_getnote checked that name and desc lie inside data. */
		parse_note(t, nt, &nh, name, (const unsigned char *)data->d_buf + desc_off);
		pos = next;
	}
	if (pos < data->d_size && data->d_size - pos >= sizeof(Elf64_Nhdr)) {
		hs_log(HS_LOG_WARN, "damaged note at byte %zu of the note segment: the "
		       "last %zu bytes of notes ignored", pos, (size_t)(data->d_size - pos));
		partial(t);
	}
}

/* ---- maps ---- */

/* NT_FILE entries are sorted by start once parsed (sort_fentries): a
 * hostile note may hold millions, each looked up per segment. */
static const struct fentry *find_fentry(const struct notes *nt, hs_addr_t a)
{
	size_t lo = 0, hi = nt->nfe;

	while (lo < hi) {   /* the last entry starting at or before a */
		size_t mid = lo + (hi - lo) / 2;

		if (nt->fe[mid].start <= a)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo && a < nt->fe[lo - 1].end ? &nt->fe[lo - 1] : NULL;
}

static int cmp_fentry(const void *a, const void *b)
{
	const struct fentry *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

static void sort_fentries(struct notes *nt)
{
	if (nt->nfe > 1)
		qsort(nt->fe, nt->nfe, sizeof(*nt->fe), cmp_fentry);
}

static bool auxv_get(const struct hs_proc_info *in, uint64_t type, uint64_t *val)
{
	for (size_t i = 0; in->auxv && i + 16 <= in->auxv_len; i += 16) {
		uint64_t k = hs_get_u64(in->auxv + i);

		if (k == 0)
			break;
		if (k == type) {
			*val = hs_get_u64(in->auxv + i + 8);
			return true;
		}
	}
	return false;
}

static void set_path(struct hs_map *m, const char *path, unsigned flag)
{
	free(m->path);
	m->path = hs_xstrdup(path);
	m->flags |= flag;
}

static bool anon_rw(const struct hs_map *m)
{
	return !m->path[0] && (m->perms & (HS_PERM_R | HS_PERM_W)) == (HS_PERM_R | HS_PERM_W);
}

/*
 * A kernel core or gcore names only file mappings: put back the names the
 * classifier needs.  [vdso] from AT_SYSINFO_EHDR (with the [vvar] pages
 * just below it), [stack] from the main thread's sp, [heap] as the
 * anonymous rw mapping within the brk randomisation range after the
 * executable (skipping its bss when a second candidate follows).
 */
static void name_special_maps(struct hs_target *t, const char *exe_path)
{
	struct hs_maps *ms = &t->maps;
	uint64_t v;

	if (auxv_get(&t->info, AT_SYSINFO_EHDR_, &v)) {
		struct hs_map *m = (struct hs_map *)hs_maps_find(ms, v);

		if (m && !m->path[0]) {
			size_t i = (size_t)(m - ms->v);

			set_path(m, "[vdso]", HS_MAP_SPECIAL);
			for (size_t k = i; k > 0 && i - k < 4; k--) {
				struct hs_map *b = &ms->v[k - 1];

				if (b->end != ms->v[k].start || b->path[0] || (b->perms & HS_PERM_W))
					break;
				set_path(b, "[vvar]", HS_MAP_SPECIAL);
			}
		}
	}
	for (size_t i = 0; i < ms->n; i++)
		if (ms->v[i].start == 0xffffffffff600000ull && !ms->v[i].path[0])
			set_path(&ms->v[i], "[vsyscall]", HS_MAP_SPECIAL);
	for (size_t k = 0; k < t->nthreads; k++) {
		struct hs_map *m;

		if (t->threads[k].tid != t->info.pid)
			continue;
		m = (struct hs_map *)hs_maps_find(ms, t->threads[k].sp);
		if (m && !m->path[0])
			set_path(m, "[stack]", 0);
	}
	if (!exe_path || !exe_path[0])
		return;
	hs_addr_t exe_end = 0;
	for (size_t i = 0; i < ms->n; i++)
		if (!strcmp(ms->v[i].path, exe_path) && ms->v[i].end > exe_end)
			exe_end = ms->v[i].end;
	if (!exe_end)
		return;
	struct hs_map *first = NULL, *second = NULL;
	for (size_t i = 0; i < ms->n; i++) {
		struct hs_map *m = &ms->v[i];

		if (m->start < exe_end || m->start - exe_end > BRK_RANGE + HS_PAGE)
			continue;
		if (!anon_rw(m))
			continue;
		if (!first)
			first = m;
		else if (!second)
			second = m;
	}
	if (first && first->start == exe_end && second)
		first = second;
	if (!first)
		return;
	set_path(first, "[heap]", 0);
	/* A forked child's heap grown past what it inherited (or split by
	 * mprotect/madvise) is several adjacent mappings: all of it is the
	 * heap (doc/heap-segments.md). */
	for (size_t i = (size_t)(first - ms->v) + 1;
	     i < ms->n && ms->v[i].start == ms->v[i - 1].end && anon_rw(&ms->v[i]); i++)
		set_path(&ms->v[i], "[heap]", 0);
}

/*
 * gdb's gcore writes PROT_NONE mappings as readable (p_flags PF_R, their
 * contents zero), so a glibc thread heap loses the no-access reservation
 * hs_classify() recognises it by.  In such a core (no segment without
 * permissions at all), an anonymous rw mapping that starts on a
 * HEAP_MAX_SIZE (64 MiB) boundary is a thread heap when the rest of that
 * 64 MiB is either unmapped or one anonymous read-only mapping, which is
 * then its reservation.
 */
#define ARENA_HEAP_MAX (64ull << 20)
static void find_gcore_arenas(struct hs_target *t)
{
	struct hs_maps *ms = &t->maps;

	for (size_t i = 0; i < ms->n; i++)
		if (!(ms->v[i].perms & (HS_PERM_R | HS_PERM_W | HS_PERM_X)))
			return;
	for (size_t i = 0; i < ms->n; i++) {
		struct hs_map *m = &ms->v[i], *r;
		hs_addr_t limit = m->start + ARENA_HEAP_MAX;
		size_t last = i;

		if (m->cls != HS_CLASS_ANON || (m->start & (ARENA_HEAP_MAX - 1)) ||
		    m->end > limit)
			continue;
		/* The rw part may be several adjacent pieces (a forked child
		 * grew it past what it inherited: doc/heap-segments.md). */
		while (last + 1 < ms->n && ms->v[last].end < limit &&
		       ms->v[last + 1].start == ms->v[last].end &&
		       ms->v[last + 1].cls == HS_CLASS_ANON && ms->v[last + 1].end <= limit)
			last++;
		r = last + 1 < ms->n ? &ms->v[last + 1] : NULL;
		if (r && r->start < limit) {
			if (r->start != ms->v[last].end || r->end != limit || r->path[0] ||
			    r->perms != HS_PERM_R)
				continue;
			r->cls = HS_CLASS_RESERVED;
		}
		for (size_t k = i; k <= last; k++)
			ms->v[k].cls = HS_CLASS_ARENA;
		i = last;
	}
}

static void strip_deleted(struct hs_map *m)
{
	static const char suffix[] = " (deleted)";
	size_t n = strlen(m->path), k = sizeof(suffix) - 1;

	if (n > k && !strcmp(m->path + n - k, suffix)) {
		m->path[n - k] = '\0';
		m->flags |= HS_MAP_DELETED;
	}
}

/* ---- opening ---- */

static int add_bfile(struct core_priv *p, const char *path)
{
	struct stat sb;
	int fd;

	for (size_t i = p->nfiles; i-- > 0;)   /* the latest is the likeliest */
		if (!strcmp(p->files[i].path, path))
			return p->files[i].fd >= 0 ? (int)i : -1;
	if (p->nfiles >= MAX_BFILES)
		return -1;
	p->files = hs_xrealloc(p->files, (p->nfiles + 1) * sizeof(*p->files));
	/* The path comes from the core: O_NONBLOCK so a FIFO planted there
	 * cannot hang the open; anything but a regular file is refused. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd >= 0 && (fstat(fd, &sb) || !S_ISREG(sb.st_mode))) {
		close(fd);
		fd = -1;
	}
	p->files[p->nfiles].path = hs_xstrdup(path);
	p->files[p->nfiles].fd = fd;
	p->files[p->nfiles].size = fd >= 0 ? (uint64_t)sb.st_size : 0;
	if (fd < 0)
		hs_log(HS_LOG_DEBUG, "core: mapped file '%s' not available", path);
	p->nfiles++;
	return fd >= 0 ? (int)(p->nfiles - 1) : -1;
}

static int cmp_seg(const void *a, const void *b)
{
	const struct cseg *x = a, *y = b;

	return x->vaddr < y->vaddr ? -1 : x->vaddr > y->vaddr;
}

/* Reads the PT_LOADs into p->segs (sorted, no overlap) and the notes. */
static int read_segments(struct hs_target *t, struct core_priv *p, struct notes *nt,
			 const GElf_Ehdr *eh)
{
	size_t phnum, truncated = 0;
	uint64_t missing = 0, cut_at = 0;

	/* libelf quietly shortens a program header table that runs past
	 * the end of the file: check against what the header claims. */
	if (elf_getphdrnum(p->elf, &phnum))
		return -HS_E_TRUNCATED;
	if (eh->e_phnum != PN_XNUM && phnum < eh->e_phnum)
		return -HS_E_TRUNCATED;
	if (eh->e_phoff > p->rawsz ||
	    phnum > (p->rawsz - eh->e_phoff) / sizeof(Elf64_Phdr))
		return -HS_E_TRUNCATED;
	if (phnum && eh->e_phentsize != sizeof(Elf64_Phdr))
		return -HS_E_CORRUPT;
	p->segs = hs_xcalloc(phnum ? (phnum < MAX_SEGS ? phnum : MAX_SEGS) : 1,
			     sizeof(*p->segs));
	for (size_t i = 0; i < phnum; i++) {
		GElf_Phdr ph;

		if (hs_interrupted)
			return -HS_E_INTERRUPTED;

		if (!gelf_getphdr(p->elf, (int)i, &ph))
			return -HS_E_TRUNCATED;
		if (ph.p_type == PT_NOTE) {
			read_notes(t, p, nt, &ph);
			continue;
		}
		if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
			continue;
		if (ph.p_vaddr + ph.p_memsz < ph.p_vaddr ||
		    ph.p_offset + ph.p_filesz < ph.p_offset) {
			hs_log(HS_LOG_WARN, "program header %zu overflows; segment ignored", i);
			partial(t);
			continue;
		}
		if (p->nsegs >= MAX_SEGS) {
			hs_log(HS_LOG_WARN, "core has more than %u segments; the rest ignored",
			       MAX_SEGS);
			partial(t);
			break;
		}
		struct cseg *s = &p->segs[p->nsegs++];
		s->vaddr = ph.p_vaddr;
		s->memsz = ph.p_memsz;
		s->offset = ph.p_offset;
		/* p_filesz beyond p_memsz is meaningless: clamp. */
		s->filesz = ph.p_filesz < ph.p_memsz ? ph.p_filesz : ph.p_memsz;
		s->perms = ((ph.p_flags & PF_R) ? HS_PERM_R : 0) |
			   ((ph.p_flags & PF_W) ? HS_PERM_W : 0) |
			   ((ph.p_flags & PF_X) ? HS_PERM_X : 0);
		s->bfile = -1;
		s->avail = s->offset >= p->rawsz ? 0 :
			   s->filesz < p->rawsz - s->offset ? s->filesz : p->rawsz - s->offset;
		if (s->avail < s->filesz) {
			if (truncated < MAX_DETAIL)
				hs_log(HS_LOG_WARN, "segment 0x%" PRIx64 "-0x%" PRIx64 ": %" PRIu64
				       " of %" PRIu64 " bytes missing (file truncated)",
				       s->vaddr, s->vaddr + s->memsz, s->filesz - s->avail,
				       s->filesz);
			if (!truncated || s->offset + s->avail < cut_at)
				cut_at = s->offset + s->avail;
			truncated++;
			missing += s->filesz - s->avail;
		}
	}
	if (truncated) {
		hs_log(HS_LOG_WARN, "core is truncated at byte %zu: %zu segments lose %" PRIu64
		       " bytes in all; analysing the rest", p->rawsz, truncated, missing);
		partial(t);
	}
	qsort(p->segs, p->nsegs, sizeof(*p->segs), cmp_seg);
	/* Overlapping segments would make reads ambiguous: keep the first. */
	size_t k = 0, overlaps = 0;
	for (size_t i = 0; i < p->nsegs; i++) {
		if (k && p->segs[i].vaddr < p->segs[k - 1].vaddr + p->segs[k - 1].memsz) {
			if (overlaps++ < MAX_DETAIL)
				hs_log(HS_LOG_WARN, "segment 0x%" PRIx64 " overlaps the one "
				       "before; ignored", p->segs[i].vaddr);
			partial(t);
			continue;
		}
		p->segs[k++] = p->segs[i];
	}
	if (overlaps > MAX_DETAIL)
		hs_log(HS_LOG_WARN, "%zu overlapping segments ignored in all", overlaps);
	p->nsegs = k;
	return 0;
}

/* The executable's path: the mapping holding AT_ENTRY (or AT_PHDR). */
static const char *find_exe_path(const struct hs_target *t, const struct notes *nt)
{
	uint64_t v;
	const struct fentry *f = NULL;

	if (auxv_get(&t->info, AT_ENTRY_, &v))
		f = find_fentry(nt, v);
	if (!f && auxv_get(&t->info, AT_PHDR_, &v))
		f = find_fentry(nt, v);
	return f ? f->path : NULL;
}

static void build_maps(struct hs_target *t, struct core_priv *p, struct notes *nt)
{
	for (size_t i = 0; i < p->nsegs; i++) {
		const struct cseg *s = &p->segs[i];
		const struct fentry *f = find_fentry(nt, s->vaddr);
		struct hs_map *m = hs_maps_add(&t->maps, s->vaddr, s->vaddr + s->memsz,
					       f ? f->path : NULL);

		m->perms = s->perms;
		m->smaps[HS_SMAPS_SIZE] = s->memsz;
		if (f) {
			m->offset = f->off + (s->vaddr - f->start);
			strip_deleted(m);
		}
	}
}

/* Backing files for the unmodified file mappings (bytes past p_filesz). */
static int attach_files(struct hs_target *t, struct core_priv *p, const char *exe,
			const char *core_exe)
{
	int exe_idx = -1;

	if (exe) {
		exe_idx = add_bfile(p, exe);
		if (exe_idx < 0)
			return -ENOENT;
	}
	for (size_t i = 0; i < p->nsegs; i++) {
		struct cseg *s = &p->segs[i];
		const struct hs_map *m = hs_maps_find(&t->maps, s->vaddr);

		if (s->filesz >= s->memsz || !m || m->path[0] != '/' ||
		    (m->flags & HS_MAP_DELETED) || (m->perms & HS_PERM_SHARED))
			continue;
		if (exe && core_exe && !strcmp(m->path, core_exe))
			s->bfile = exe_idx;
		else
			s->bfile = add_bfile(p, m->path);
		s->boff = m->offset - (m->start - s->vaddr);
	}
	return 0;
}

int hs_target_open_core(const char *path, const char *exe,
			struct hs_target **out)
{
	struct hs_target *t = NULL;
	struct core_priv *p;
	struct notes nt = { 0 };
	GElf_Ehdr eh;
	struct stat sb;
	const char *core_exe;
	int ret;

	*out = NULL;
	if (exe && access(exe, R_OK))
		return -errno;
	if (elf_version(EV_CURRENT) == EV_NONE)
		return -HS_E_UNSUPPORTED;
	p = hs_xcalloc(1, sizeof(*p));
	/* O_NONBLOCK: opening a FIFO would otherwise wait for a writer. */
	p->fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (p->fd < 0) {
		ret = -errno;
		goto err;
	}
	if (fstat(p->fd, &sb)) {
		ret = -errno;
		goto err;
	}
	if (!S_ISREG(sb.st_mode)) {
		ret = S_ISDIR(sb.st_mode) ? -EISDIR : -HS_E_NOT_REGULAR;
		goto err;
	}
	p->elf = elf_begin(p->fd, ELF_C_READ_MMAP, NULL);
	if (!p->elf || elf_kind(p->elf) != ELF_K_ELF) {
		ret = -HS_E_NOT_CORE;
		goto err;
	}
	p->raw = (const unsigned char *)elf_rawfile(p->elf, &p->rawsz);
	if (!p->raw || !gelf_getehdr(p->elf, &eh)) {
		ret = p->raw && p->rawsz < sizeof(Elf64_Ehdr) ? -HS_E_TRUNCATED : -HS_E_NOT_CORE;
		goto err;
	}
	if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB ||
	    eh.e_type != ET_CORE || eh.e_machine != EM_X86_64) {
		ret = -HS_E_NOT_CORE;
		goto err;
	}

	t = hs_target_new(&core_ops);
	t->caps = HS_CAP_POST_MORTEM;
	t->priv = p;
	t->source = hs_xstrdup(path);
	ret = read_segments(t, p, &nt, &eh);
	if (ret < 0)
		goto err_t;
	if (!t->nthreads)
		hs_log(HS_LOG_WARN, "core '%s' has no thread (no NT_PRSTATUS)", path);

	sort_fentries(&nt);
	core_exe = find_exe_path(t, &nt);
	if (nt.hs_info_set) {
		/* heapscan's own record of the process beats prpsinfo's 80
		 * bytes of cmdline; keep the auxv from NT_AUXV. */
		nt.hs_info.auxv = t->info.auxv;
		nt.hs_info.auxv_len = t->info.auxv_len;
		t->info.auxv = NULL;
		hs_proc_info_release(&t->info);
		t->info = nt.hs_info;
		memset(&nt.hs_info, 0, sizeof(nt.hs_info));
		t->ops = &dump_ops;
	} else {
		free(t->info.exe);
		t->info.exe = hs_xstrdup(core_exe ? core_exe : "");
		t->info.time_ns = (uint64_t)sb.st_mtim.tv_sec * 1000000000ull +
				  (uint64_t)sb.st_mtim.tv_nsec;
	}
	if (exe && !nt.hs_info_set && !core_exe) {
		free(t->info.exe);
		t->info.exe = hs_xstrdup(exe);
	}
	t->info.nthreads = (int)t->nthreads;

	if (nt.have_hs) {
		t->maps = nt.hs_maps;
		memset(&nt.hs_maps, 0, sizeof(nt.hs_maps));
	} else {
		build_maps(t, p, &nt);
		name_special_maps(t, core_exe);
		hs_classify(t);
		find_gcore_arenas(t);
	}
	ret = attach_files(t, p, exe, core_exe ? core_exe : t->info.exe);
	if (ret < 0)
		goto err_t;
	p->next_with_data = hs_xcalloc(p->nsegs + 1, sizeof(*p->next_with_data));
	p->next_with_data[p->nsegs] = p->nsegs;
	for (size_t i = p->nsegs; i-- > 0;) {
		uint64_t ext[2][2];

		p->next_with_data[i] = seg_extents(p, &p->segs[i], ext) ? i :
				       p->next_with_data[i + 1];
	}
	free(nt.fe);
	hs_proc_info_release(&nt.hs_info); /* a rejected note's leftovers */
	*out = t;
	return 0;

err_t:
	free(nt.fe);
	hs_maps_release(&nt.hs_maps);
	hs_proc_info_release(&nt.hs_info);
	hs_target_close(t);
	return ret;
err:
	free(nt.fe);
	core_close(&(struct hs_target){ .priv = p });
	return ret;
}
