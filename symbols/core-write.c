/*
 * The core writer: any target (a suspended live process, a core, a test
 * buffer) as an ELF core that gdb and eu-stack open.  Layout and note order
 * follow the kernel's (doc/elf-cores.md); heapscan adds its own note with
 * what gdb cannot know (smaps figures, region classes, full cmdline).
 *
 * Uses only the target interface: never /proc, never ptrace.
 */
#include "internal.h"
#include "hs_outfile.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * The copy chunk per worker.  Small on purpose: each chunk is read
 * (process_vm_readv) and then written (pwrite copies it into the page
 * cache), so a chunk that stays in the core's L2 cache is read from cache
 * by the second copy.  With 8 MiB chunks the page-cache copy
 * (copy_folio_from_iter_atomic) was 77% of the dump's CPU and a 1.2 GB
 * dump took 1.4-2.1 s; with 512 KiB-2 MiB it took 0.29-0.36 s
 * (bench/bench_dump.sh, this machine: 2 MiB L2 per core).
 */
#define DEFAULT_BUFSZ (1u << 20)
#define MIN_BUFSZ (64u << 10)

/* ---- region policy ---- */

static bool file_backed(const struct hs_map *m)
{
	return m->path[0] == '/';
}

/* Shared mapping of an ordinary file (the kernel's "mapped shared"), as
 * opposed to shared memory that lives only in RAM. */
static bool mapped_shared_file(const struct hs_map *m)
{
	return (m->perms & HS_PERM_SHARED) && file_backed(m) &&
	       strncmp(m->path, "/dev/shm/", 9) && strncmp(m->path, "/SYSV", 5) &&
	       strncmp(m->path, "/memfd:", 7) && !(m->flags & HS_MAP_DELETED);
}

/* A private file mapping the process wrote to: smaps counts its copied
 * pages as Anonymous (the kernel dumps it because it has an anon_vma). */
static bool modified_private_file(const struct hs_map *m)
{
	return file_backed(m) && !(m->perms & HS_PERM_SHARED) &&
	       (m->flags & HS_MAP_HAS_SMAPS) && m->smaps[HS_SMAPS_ANONYMOUS] > 0;
}

enum hs_dump_policy hs_dump_policy_for(const struct hs_map *m,
				       const struct hs_dump_opts *o)
{
	/* Unreadable memory has nothing to copy (PROT_NONE reservations);
	 * [vvar] is kernel data the kernel itself never dumps. */
	if (!(m->perms & HS_PERM_R))
		return HS_DUMP_SKIP;
	if (m->cls == HS_CLASS_SPECIAL && strcmp(m->path, "[vdso]"))
		return HS_DUMP_SKIP;
	if (o && o->all)
		return HS_DUMP_FULL;
	if (o && o->classes) {
		if (o->classes & (1u << m->cls))
			return HS_DUMP_FULL;
	} else {
		switch (m->cls) {
		case HS_CLASS_HEAP: case HS_CLASS_ARENA: case HS_CLASS_ANON:
		case HS_CLASS_STACK: case HS_CLASS_ANON_RO: case HS_CLASS_DATA:
		case HS_CLASS_SPECIAL: case HS_CLASS_PYTHON:
			return HS_DUMP_FULL;
		case HS_CLASS_SHM:
			if (!mapped_shared_file(m))
				return HS_DUMP_FULL;
			break;
		default:
			if (modified_private_file(m))
				return HS_DUMP_FULL;
			break;
		}
	}
	return file_backed(m) && m->offset == 0 ? HS_DUMP_HEADER : HS_DUMP_SKIP;
}

/* ---- notes ---- */

static void put_u16(unsigned char *p, uint16_t v) { memcpy(p, &v, 2); }
static void put_u32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }
static void put_u64(unsigned char *p, uint64_t v) { memcpy(p, &v, 8); }

static void pad(struct hs_buf *b, size_t align)
{
	static const char zeros[8];

	if (b->len % align)
		hs_buf_add(b, zeros, align - b->len % align);
}

static void note_add(struct hs_buf *b, const char *name, uint32_t type,
		     const void *desc, size_t len)
{
	Elf64_Nhdr nh;

	nh.n_namesz = (Elf64_Word)strlen(name) + 1;
	nh.n_descsz = (Elf64_Word)len;
	nh.n_type = type;
	hs_buf_add(b, &nh, sizeof(nh));
	hs_buf_add(b, name, nh.n_namesz);
	pad(b, 4);
	hs_buf_add(b, desc, len);
	pad(b, 4);
}

static void note_prstatus(struct hs_buf *b, const struct hs_target *t,
			  const struct hs_thread *th)
{
	unsigned char d[PRS_SIZE] = { 0 };

	put_u32(d + PRS_SIGNO, (uint32_t)th->cursig);
	put_u16(d + PRS_CURSIG, (uint16_t)th->cursig);
	put_u32(d + PRS_PID, (uint32_t)th->tid);
	put_u32(d + PRS_PPID, (uint32_t)t->info.ppid);
	put_u32(d + PRS_PGRP, (uint32_t)t->info.pid);
	put_u32(d + PRS_SID, (uint32_t)t->info.pid);
	if (th->has_regs)
		memcpy(d + PRS_REG, th->regs.r, 8 * HS_REG_N);
	put_u32(d + PRS_FPVALID, th->has_fpregs ? 1 : 0);
	note_add(b, "CORE", NT_PRSTATUS, d, sizeof(d));
}

static void note_fp(struct hs_buf *b, const struct hs_thread *th)
{
	if (th->has_fpregs)
		note_add(b, "CORE", NT_FPREGSET, th->fpregs, FPREGSET_SIZE);
	/* gdb pairs NT_X86_XSTATE with the NT_PRSTATUS before it.  gdb 13
	 * warns "Unexpected size of section .reg-xstate" on this machine's
	 * 11008-byte XSAVE image: it does so on the kernel's own core of the
	 * same victim too (same size, same bytes layout), so it is gdb's
	 * limit, not our note. */
	if (th->xstate && th->xstate_len)
		note_add(b, "LINUX", NT_X86_XSTATE, th->xstate, th->xstate_len);
}

static void note_prpsinfo(struct hs_buf *b, const struct hs_target *t)
{
	static const char states[] = "RSDTZW";
	unsigned char d[PRPS_SIZE] = { 0 };
	const struct hs_proc_info *in = &t->info;
	const char *st = in->state ? strchr(states, in->state) : NULL;
	size_t n;

	d[PRPS_STATE] = st ? (unsigned char)(st - states) : 0;
	d[PRPS_SNAME] = (unsigned char)(in->state ? in->state : 'R');
	d[PRPS_ZOMB] = in->state == 'Z';
	put_u32(d + PRPS_UID, (uint32_t)in->uid);
	put_u32(d + PRPS_GID, (uint32_t)in->gid);
	put_u32(d + PRPS_PID, (uint32_t)in->pid);
	put_u32(d + PRPS_PPID, (uint32_t)in->ppid);
	put_u32(d + PRPS_PGRP, (uint32_t)in->pid);
	put_u32(d + PRPS_SID, (uint32_t)in->pid);
	n = strnlen(in->comm, PRPS_FNAME_LEN - 1);
	memcpy(d + PRPS_FNAME, in->comm, n);
	n = strnlen(in->cmdline, PRPS_PSARGS_LEN - 1);
	memcpy(d + PRPS_PSARGS, in->cmdline, n);
	note_add(b, "CORE", NT_PRPSINFO, d, sizeof(d));
}

static void note_siginfo(struct hs_buf *b, const struct hs_thread *th)
{
	unsigned char d[SIGINFO_SIZE] = { 0 };

	put_u32(d, th ? (uint32_t)th->cursig : 0);
	note_add(b, "CORE", NT_SIGINFO, d, sizeof(d));
}

/* NT_FILE: count, page size, {start, end, offset in pages}[count], paths. */
static void note_file(struct hs_buf *b, const struct hs_target *t)
{
	struct hs_buf d = HS_BUF_INIT, names = HS_BUF_INIT;
	unsigned char w[24];
	uint64_t count = 0;

	put_u64(w, 0);
	put_u64(w + 8, HS_PAGE);
	hs_buf_add(&d, w, 16);
	for (size_t i = 0; i < t->maps.n; i++) {
		const struct hs_map *m = &t->maps.v[i];

		if (!file_backed(m) || (m->flags & HS_MAP_SPECIAL))
			continue;
		put_u64(w, m->start);
		put_u64(w + 8, m->end);
		put_u64(w + 16, m->offset / HS_PAGE);
		hs_buf_add(&d, w, 24);
		hs_buf_adds(&names, m->path);
		if (m->flags & HS_MAP_DELETED)
			hs_buf_adds(&names, " (deleted)");
		hs_buf_addch(&names, '\0');
		count++;
	}
	put_u64(w, count);
	memcpy(d.buf, w, 8);
	hs_buf_add(&d, names.buf, names.len);
	note_add(b, "CORE", NT_FILE, d.buf, d.len);
	hs_buf_release(&names);
	hs_buf_release(&d);
}

static void rec_add(struct hs_buf *b, uint32_t tag, const void *data, size_t len)
{
	unsigned char h[8];

	put_u32(h, tag);
	put_u32(h + 4, (uint32_t)len);
	hs_buf_add(b, h, 8);
	hs_buf_add(b, data, len);
	pad(b, 8);
}

static void rec_str(struct hs_buf *b, uint32_t tag, const char *s)
{
	rec_add(b, tag, s, strlen(s));
}

static void note_heapscan(struct hs_buf *b, const struct hs_target *t)
{
	const struct hs_proc_info *in = &t->info;
	struct hs_buf d = HS_BUF_INIT, r = HS_BUF_INIT;
	unsigned char w[64];
	uint64_t status[7] = { in->vm_size, in->vm_rss, in->rss_anon, in->rss_file,
			       in->rss_shmem, in->vm_swap, in->vm_hwm };

	put_u32(w, HS_NOTE_VERSION);
	rec_add(&d, HS_TAG_VERSION, w, 4);
	rec_str(&d, HS_TAG_TOOL, HS_VERSION);
	put_u64(w, in->time_ns);
	rec_add(&d, HS_TAG_TIME, w, 8);
	put_u32(w, (uint32_t)in->pid);
	put_u32(w + 4, (uint32_t)in->ppid);
	put_u32(w + 8, (uint32_t)in->uid);
	put_u32(w + 12, (uint32_t)in->euid);
	put_u32(w + 16, (uint32_t)in->gid);
	put_u32(w + 20, (uint32_t)in->egid);
	put_u32(w + 24, (uint32_t)in->nthreads);
	put_u32(w + 28, (uint32_t)(unsigned char)in->state);
	rec_add(&d, HS_TAG_PID, w, 32);
	rec_add(&d, HS_TAG_COMM, in->comm, strnlen(in->comm, sizeof(in->comm)));
	rec_str(&d, HS_TAG_EXE, in->exe);
	rec_str(&d, HS_TAG_CMDLINE, in->cmdline);
	rec_add(&d, HS_TAG_STATUS, status, sizeof(status));
	for (size_t i = 0; i < t->maps.n; i++) {
		const struct hs_map *m = &t->maps.v[i];
		uint32_t vl = (uint32_t)strnlen(m->vmflags, sizeof(m->vmflags));
		uint32_t pl = (uint32_t)strlen(m->path);

		hs_buf_reset(&r);
		put_u64(w, m->start);
		put_u64(w + 8, m->end);
		put_u64(w + 16, m->offset);
		put_u64(w + 24, m->inode);
		put_u32(w + 32, m->dev_major);
		put_u32(w + 36, m->dev_minor);
		put_u32(w + 40, m->perms);
		put_u32(w + 44, m->flags);
		put_u32(w + 48, (uint32_t)m->cls);
		put_u32(w + 52, (uint32_t)m->stack_tid);
		put_u32(w + 56, HS_SMAPS_N);
		put_u32(w + 60, 0);
		hs_buf_add(&r, w, HS_NOTE_MAP_FIXED);
		hs_buf_add(&r, m->smaps, sizeof(m->smaps));
		put_u32(w, vl);
		hs_buf_add(&r, w, 4);
		hs_buf_add(&r, m->vmflags, vl);
		put_u32(w, pl);
		hs_buf_add(&r, w, 4);
		hs_buf_add(&r, m->path, pl);
		rec_add(&d, HS_TAG_MAP, r.buf, r.len);
	}
	note_add(b, HS_NOTE_NAME, HS_NT_INFO, d.buf, d.len);
	hs_buf_release(&r);
	hs_buf_release(&d);
}

static void build_notes(struct hs_buf *b, const struct hs_target *t)
{
	const struct hs_thread *first = t->nthreads ? &t->threads[0] : NULL;

	/* Kernel order: the first thread's PRSTATUS, then the process-wide
	 * notes, then its FP state; other threads follow with theirs. */
	if (first)
		note_prstatus(b, t, first);
	note_prpsinfo(b, t);
	note_siginfo(b, first);
	if (t->info.auxv && t->info.auxv_len)
		note_add(b, "CORE", NT_AUXV, t->info.auxv, t->info.auxv_len);
	note_file(b, t);
	if (first)
		note_fp(b, first);
	for (size_t i = 1; i < t->nthreads; i++) {
		note_prstatus(b, t, &t->threads[i]);
		note_fp(b, &t->threads[i]);
	}
	note_heapscan(b, t);
}

/* ---- file output ---- */

struct seg {
	uint64_t off, filesz;
	enum hs_dump_policy pol;
};

/* State shared by the copy workers (under lock). */
struct shared {
	pthread_mutex_t lock;
	struct hs_target *t;
	const struct hs_dump_opts *o;
	struct hs_dump_stats *st;
	const struct seg *segs;
	int fd;
	size_t next;          /* segment being handed out */
	hs_addr_t next_addr;  /* and the next address in it */
	int err;              /* first error, stops every worker */
	int no_falloc;        /* atomic: fallocate is not supported */
};

/* One copy worker: its own buffer and figures, merged after each chunk. */
struct wctx {
	struct shared *sh;
	struct hs_target *t;
	const struct hs_dump_opts *o;
	struct hs_dump_stats st;
	int fd;
	unsigned char *buf;
	unsigned char *pstate; /* per page of buf: PAGE_* */
	size_t bufsz;
};

enum { PAGE_ABSENT, PAGE_DATA, PAGE_UNREADABLE };

static int pwrite_all(int fd, const void *p, size_t len, uint64_t off)
{
	while (len) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p = (const char *)p + n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static bool page_is_zero(const unsigned char *p, size_t len)
{
	uint64_t acc = 0;

	/* Word-wise with an early exit every 256 bytes: data pages are
	 * rejected at once, zero pages cost one pass. */
	for (size_t i = 0; i + 256 <= len; i += 256) {
		uint64_t w[32];

		memcpy(w, p + i, sizeof(w));
		for (int k = 0; k < 32; k++)
			acc |= w[k];
		if (acc)
			return false;
	}
	for (size_t i = len - len % 256; i < len; i++)
		acc |= p[i];
	return acc == 0;
}

/* Reads [a, a+len) into buf, marking pages the target would not give. */
static int read_run(struct wctx *w, hs_addr_t a, unsigned char *buf,
		    unsigned char *ps, size_t len)
{
	size_t done = 0;

	while (done < len) {
		size_t n = 0;
		int ret = hs_target_read(w->t, a + done, buf + done, len - done, &n);

		if (ret == -ESRCH)
			return ret;
		done += n;
		if (done >= len)
			break;
		if (n == 0 || ret < 0) {
			/* Skip the page that failed (from the failing byte on). */
			size_t pg = done / HS_PAGE;
			size_t next = (pg + 1) * HS_PAGE;

			if (next > len)
				next = len;
			ps[pg] = PAGE_UNREADABLE;
			w->st.bytes_unreadable += next - done;
			done = next;
		}
	}
	return 0;
}

/*
 * Allocates the blocks of [off, off+len) before writing them.  A write into
 * allocated (unwritten) blocks skips ext4's per-block delayed-allocation
 * bookkeeping: the single write stream, which the inode lock serializes,
 * ran about 12% faster (bench/README.md).  A full disk fails here with
 * ENOSPC.  Where fallocate is not supported, writes go on without it.
 */
static int reserve(struct wctx *w, uint64_t off, size_t len)
{
	struct shared *sh = w->sh;

	if (__atomic_load_n(&sh->no_falloc, __ATOMIC_RELAXED))
		return 0;
	if (fallocate(w->fd, FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) == 0)
		return 0;
	if (errno == ENOSPC || errno == EDQUOT || errno == EFBIG || errno == EIO)
		return -errno;
	__atomic_store_n(&sh->no_falloc, 1, __ATOMIC_RELAXED);
	return 0;
}

/* Copies [a, a+n) of mapping m, whose file data starts at off. */
static int copy_chunk(struct wctx *w, const struct hs_map *m, uint64_t off,
		      hs_addr_t a, size_t n)
{
	size_t npages = (n + HS_PAGE - 1) / HS_PAGE;
	bool have_map = false;
	int ret;

	if (w->o->pagemap && !(a & (HS_PAGE - 1)))
		have_map = w->o->pagemap(w->o->pagemap_ud, a, npages, w->pstate) == 0;
	for (size_t i = 0; i < npages; i++)
		w->pstate[i] = !have_map || w->pstate[i] ? PAGE_DATA : PAGE_ABSENT;
	/* Read each run of present pages in one go. */
	for (size_t i = 0; i < npages;) {
		size_t j = i;

		if (w->pstate[i] != PAGE_DATA) {
			i++;
			continue;
		}
		while (j < npages && w->pstate[j] == PAGE_DATA)
			j++;
		size_t lo = i * HS_PAGE, hi = j * HS_PAGE < n ? j * HS_PAGE : n;
		ret = read_run(w, a + lo, w->buf + lo, w->pstate + i, hi - lo);
		if (ret < 0)
			return ret;
		i = j;
	}
	/* Write each run of non-zero pages in one go. */
	for (size_t i = 0; i < npages;) {
		size_t lo = i * HS_PAGE, plen = n - lo < HS_PAGE ? n - lo : HS_PAGE;

		if (w->pstate[i] == PAGE_ABSENT) {
			w->st.bytes_absent += plen;
			i++;
			continue;
		}
		if (w->pstate[i] == PAGE_UNREADABLE) {
			i++;
			continue;
		}
		if (page_is_zero(w->buf + lo, plen)) {
			w->st.bytes_zero += plen;
			i++;
			continue;
		}
		size_t j = i + 1;
		while (j < npages && w->pstate[j] == PAGE_DATA &&
		       !page_is_zero(w->buf + j * HS_PAGE,
				     n - j * HS_PAGE < HS_PAGE ? n - j * HS_PAGE : HS_PAGE))
			j++;
		size_t hi = j * HS_PAGE < n ? j * HS_PAGE : n;
		ret = reserve(w, off + (a - m->start) + lo, hi - lo);
		if (ret < 0)
			return ret;
		ret = pwrite_all(w->fd, w->buf + lo, hi - lo, off + (a - m->start) + lo);
		if (ret < 0)
			return ret;
		/* Durable dumps: start writeback now, so the final fsync has
		 * little left to do (advisory; fsync reports any error). */
		if (!w->o->no_sync)
			sync_file_range(w->fd, (off64_t)(off + (a - m->start) + lo),
					(off64_t)(hi - lo), SYNC_FILE_RANGE_WRITE);
		w->st.bytes_written += hi - lo;
		i = j;
	}
	w->st.bytes_done += n;
	return 0;
}

static void merge_stats(struct hs_dump_stats *to, struct hs_dump_stats *from)
{
	to->bytes_done += from->bytes_done;
	to->bytes_written += from->bytes_written;
	to->bytes_absent += from->bytes_absent;
	to->bytes_zero += from->bytes_zero;
	to->bytes_unreadable += from->bytes_unreadable;
	memset(from, 0, sizeof(*from));
}

/*
 * A copy worker: takes the next chunk of at most bufsz bytes (in address
 * order) under the lock, copies it without, merges its figures.  Chunks go
 * to disjoint file ranges, so workers never write the same bytes.
 */
static void *copy_worker(void *arg)
{
	struct wctx *w = arg;
	struct shared *sh = w->sh;
	const struct hs_maps *maps = &sh->t->maps;

	pthread_mutex_lock(&sh->lock);
	for (;;) {
		const struct hs_map *m;
		hs_addr_t a, end;
		size_t n;
		uint64_t off;
		int ret;

		if (hs_interrupted && !sh->err)
			sh->err = -HS_E_INTERRUPTED;
		while (sh->next < maps->n && !sh->err) {
			end = maps->v[sh->next].start + sh->segs[sh->next].filesz;
			if (sh->next_addr < maps->v[sh->next].start)
				sh->next_addr = maps->v[sh->next].start;
			if (sh->next_addr < end)
				break;
			sh->next++;
		}
		if (sh->next >= maps->n || sh->err)
			break;
		m = &maps->v[sh->next];
		off = sh->segs[sh->next].off;
		a = sh->next_addr;
		end = m->start + sh->segs[sh->next].filesz;
		n = end - a < w->bufsz ? (size_t)(end - a) : w->bufsz;
		sh->next_addr = a + n;
		pthread_mutex_unlock(&sh->lock);

		ret = copy_chunk(w, m, off, a, n);

		pthread_mutex_lock(&sh->lock);
		merge_stats(sh->st, &w->st);
		if (ret < 0 && !sh->err)
			sh->err = ret;
		if (!sh->err && sh->o->progress)
			sh->o->progress(sh->o->progress_ud, sh->st);
	}
	pthread_mutex_unlock(&sh->lock);
	return NULL;
}

static unsigned default_jobs(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n >= 2 ? 2 : 1;
}

/* Copies every selected segment with o->jobs workers; 0 or an error. */
static int copy_all(struct hs_target *t, const struct hs_dump_opts *o,
		    struct hs_dump_stats *st, const struct seg *segs, int fd)
{
	struct shared sh = { .t = t, .o = o, .st = st, .segs = segs, .fd = fd };
	unsigned jobs = o->jobs ? o->jobs : default_jobs();
	size_t bufsz = o->bufsz ? o->bufsz : DEFAULT_BUFSZ;
	struct wctx *w;
	pthread_t *tid;
	unsigned started = 0;

	if (jobs > 16)
		jobs = 16;
	if (bufsz < MIN_BUFSZ)
		bufsz = MIN_BUFSZ;
	bufsz &= ~(size_t)(HS_PAGE - 1);
	pthread_mutex_init(&sh.lock, NULL);
	w = hs_xcalloc(jobs, sizeof(*w));
	tid = hs_xcalloc(jobs, sizeof(*tid));
	for (unsigned i = 0; i < jobs; i++) {
		w[i].sh = &sh;
		w[i].t = t;
		w[i].o = o;
		w[i].fd = fd;
		w[i].bufsz = bufsz;
		w[i].buf = aligned_alloc(HS_PAGE, bufsz);
		w[i].pstate = hs_xmalloc(bufsz / HS_PAGE);
		if (!w[i].buf) {
			sh.err = -ENOMEM;
			break;
		}
	}
	/* Worker 0 is this thread; the others are helpers. */
	for (unsigned i = 1; i < jobs && !sh.err; i++)
		if (pthread_create(&tid[i], NULL, copy_worker, &w[i]) == 0)
			started = i;
		else
			break;
	if (!sh.err)
		copy_worker(&w[0]);
	for (unsigned i = 1; i <= started; i++)
		pthread_join(tid[i], NULL);
	for (unsigned i = 0; i < jobs; i++) {
		free(w[i].buf);
		free(w[i].pstate);
	}
	free(w);
	free(tid);
	pthread_mutex_destroy(&sh.lock);
	return sh.err;
}

static bool starts_elf(struct hs_target *t, const struct hs_map *m)
{
	unsigned char magic[SELFMAG];

	return m->end - m->start >= HS_PAGE &&
	       hs_target_read_full(t, m->start, magic, SELFMAG) == 0 &&
	       !memcmp(magic, ELFMAG, SELFMAG);
}

static uint32_t phdr_flags(unsigned perms)
{
	return ((perms & HS_PERM_R) ? PF_R : 0) | ((perms & HS_PERM_W) ? PF_W : 0) |
	       ((perms & HS_PERM_X) ? PF_X : 0);
}

int hs_dump_write(struct hs_target *t, const char *path,
		  const struct hs_dump_opts *o, struct hs_dump_stats *st)
{
	static const struct hs_dump_opts defaults;
	struct hs_dump_stats local;
	struct hs_buf notes = HS_BUF_INIT;
	struct hs_outfile of;
	struct seg *segs = NULL;
	Elf64_Phdr *ph = NULL;
	Elf64_Ehdr eh;
	uint64_t t0 = hs_now_ns(), off, c0;
	size_t nph;
	bool xnum, created = false;
	struct stat sb;
	int fd = -1, ret;

	if (!o)
		o = &defaults;
	if (!st)
		st = &local;
	memset(st, 0, sizeof(*st));
	ret = hs_outfile_open(&of, path, (o->force ? HS_OUTFILE_FORCE : 0) |
			      (o->no_sync ? 0 : HS_OUTFILE_SYNC));
	if (ret < 0)
		goto out;
	created = true;
	fd = of.fd;

	/* Layout: header, program headers, notes, then page-aligned data. */
	build_notes(&notes, t);
	nph = t->maps.n + 1;
	xnum = nph >= PN_XNUM;
	segs = hs_xcalloc(t->maps.n ? t->maps.n : 1, sizeof(*segs));
	ph = hs_xcalloc(nph, sizeof(*ph));
	off = sizeof(eh) + nph * sizeof(*ph) + notes.len;
	off = (off + HS_PAGE - 1) & ~(HS_PAGE - 1);
	for (size_t i = 0; i < t->maps.n; i++) {
		const struct hs_map *m = &t->maps.v[i];
		uint64_t len = m->end - m->start;

		segs[i].pol = hs_dump_policy_for(m, o);
		if (segs[i].pol == HS_DUMP_FULL)
			segs[i].filesz = len;
		else if (segs[i].pol == HS_DUMP_HEADER && starts_elf(t, m))
			segs[i].filesz = HS_PAGE;
		else
			segs[i].pol = HS_DUMP_SKIP;
		segs[i].off = off;
		off += segs[i].filesz;
		st->bytes_total += segs[i].filesz;
		st->regions_full += segs[i].pol == HS_DUMP_FULL;
		st->regions_header += segs[i].pol == HS_DUMP_HEADER;
		ph[i + 1] = (Elf64_Phdr){
			.p_type = PT_LOAD,
			.p_flags = phdr_flags(m->perms),
			.p_offset = segs[i].off,
			.p_vaddr = m->start,
			.p_memsz = len,
			.p_filesz = segs[i].filesz,
			.p_align = HS_PAGE,
		};
	}
	st->regions = t->maps.n;
	st->threads = t->nthreads;
	st->file_size = off;
	ph[0] = (Elf64_Phdr){
		.p_type = PT_NOTE,
		.p_offset = sizeof(eh) + nph * sizeof(*ph),
		.p_filesz = notes.len,
		.p_align = 4,
	};

	memset(&eh, 0, sizeof(eh));
	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS64;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_ident[EI_VERSION] = EV_CURRENT;
	eh.e_ident[EI_OSABI] = ELFOSABI_NONE;
	eh.e_type = ET_CORE;
	eh.e_machine = EM_X86_64;
	eh.e_version = EV_CURRENT;
	eh.e_phoff = sizeof(eh);
	eh.e_ehsize = sizeof(eh);
	eh.e_phentsize = sizeof(*ph);
	eh.e_phnum = xnum ? PN_XNUM : (Elf64_Half)nph;
	if (xnum) {
		/* More than 65534 segments: the count moves to section 0's
		 * sh_info (ELF extended numbering), placed after the data. */
		eh.e_shoff = off;
		eh.e_shentsize = sizeof(Elf64_Shdr);
		eh.e_shnum = 1;
	}
	ret = pwrite_all(fd, &eh, sizeof(eh), 0);
	if (!ret)
		ret = pwrite_all(fd, ph, nph * sizeof(*ph), sizeof(eh));
	if (!ret)
		ret = pwrite_all(fd, notes.buf, notes.len, ph[0].p_offset);
	if (ret)
		goto out;
	/* The final size now: a size limit (RLIMIT_FSIZE) fails here, before
	 * any memory is copied, and no write below extends the file. */
	if (ftruncate(fd, (off_t)(off + (xnum ? sizeof(Elf64_Shdr) : 0)))) {
		ret = -errno;
		goto out;
	}

	/* Memory. */
	c0 = hs_now_ns();
	ret = copy_all(t, o, st, segs, fd);
	st->copy_ns = hs_now_ns() - c0;
	/* The memory is ours now: let the target go before the slow part. */
	hs_target_resume(t);
	st->stop_ns = t->stop_ns;
	if (ret < 0)
		goto out;

	if (xnum) {
		Elf64_Shdr sh = { .sh_info = (Elf64_Word)nph };

		ret = pwrite_all(fd, &sh, sizeof(sh), off);
		if (ret)
			goto out;
		st->file_size = off + sizeof(sh);
	}
	/* Trailing holes still belong to the file. */
	if (ftruncate(fd, (off_t)st->file_size)) {
		ret = -errno;
		goto out;
	}
	if (fstat(fd, &sb) == 0)
		st->disk_bytes = (uint64_t)sb.st_blocks * 512;
	/* Syncs (unless no_sync), closes and renames; removes it on error. */
	created = false;
	ret = hs_outfile_commit(&of);

out:
	if (created)
		hs_outfile_abort(&of);
	free(ph);
	free(segs);
	hs_buf_release(&notes);
	st->wall_ns = hs_now_ns() - t0;
	return ret;
}
