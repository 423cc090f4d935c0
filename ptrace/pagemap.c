/*
 * The live backend's reading policy: read through the process only the
 * pages it has (doc/reading-policy.md holds the kernel facts and the
 * measurements).
 *
 * Reading another process's page with process_vm_readv or /proc/PID/mem
 * faults it in when it is not there: a file page gets mapped into its
 * page tables, a shared-memory hole gets allocated, an untouched
 * anonymous page gets at least a page-table entry (and a real page where
 * the kernel does not map the zero page).  So before a range is read we
 * ask which of its pages are present or swapped out (PAGEMAP_SCAN on
 * /proc/PID/pagemap, else its words; readable with the ptrace access we
 * already need), and per page (hs_page_decide):
 *  - present: read through the process (changes nothing);
 *  - swapped out: read through the process, which swaps it in (counted in
 *    t->swapped_in), unless HS_TARGET_NO_SWAPIN (a short read, counted in
 *    t->swap_skipped, the target marked partial);
 *  - neither, private anonymous: never written, so zeros: memset;
 *  - neither, private file mapping: never written (a written page is a
 *    private copy, present or swapped), so the file's bytes at the
 *    mapping's offset: pread on the file (/proc/PID/map_files/START-END,
 *    else /proc/PID/root/PATH with the inode checked); zeros past the end
 *    of the file up to its last page, unreadable beyond (the process would
 *    get SIGBUS there);
 *  - neither, shared mapping (file, shmem, memfd, SysV, shared anonymous):
 *    the object holds the bytes, read from it the same way: a read of the
 *    object maps nothing into the process, and a shmem hole reads as
 *    zeros without being allocated;
 *  - neither, [vdso]: copied from heapscan's own vDSO (one kernel image).
 * Where the file cannot be opened (map_files needs CAP_SYS_ADMIN: shared
 * anonymous memory, SysV, deleted files) the page is read through the
 * process as before and counted in t->faulted_in.  Other special and
 * device mappings, and mappings without read permission, are read as
 * before.
 *
 * A fork snapshot (fork.c) is read through the child's own pagemap: the
 * child shares its parent's pages copy-on-write, and fork copies no page
 * table entries for mappings that have never had an anonymous page (the
 * kernel refills them on fault), so a page the child lacks is either
 * untouched in the parent too (zeros) or a file/shared page read from the
 * file.  Mappings served from the parent (MADV_DONTFORK/WIPEONFORK) use
 * the parent's pagemap.
 *
 * Where pagemap cannot be read, smaps decides per mapping: a mapping with
 * Rss 0 and Swap 0 is untouched as a whole; other mappings are read as
 * before (their untouched pages still fault in; the report says so).
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define PG 4096u
#define PG_SHIFT 12
/* Pages decided at a time (a stack array of words): 1 MiB of memory. */
#define PM_BATCH 256

/* ---- the decision ---- */

static bool has_prefix(const char *s, const char *p)
{
	return !strncmp(s, p, strlen(p));
}

bool hs_live_has_vmflag(const char *list, const char *tok)
{
	size_t n = strlen(tok);

	for (const char *s = list; (s = strstr(s, tok)); s += n)
		if ((s == list || s[-1] == ' ') && (s[n] == ' ' || s[n] == '\0'))
			return true;
	return false;
}

enum hs_page_kind hs_page_kind_of(const struct hs_map *m)
{
	bool shared = (m->perms & HS_PERM_SHARED) != 0;
	const char *path = m->path ? m->path : "";

	/* Not readable: the process itself could not read it; keep the
	 * backend's answer (process_vm_readv refuses it). */
	if (!(m->perms & HS_PERM_R))
		return HS_PK_DIRECT;
	if (!strcmp(path, "[vdso]"))
		return HS_PK_VDSO;
	if ((m->flags & HS_MAP_SPECIAL) || m->cls == HS_CLASS_SPECIAL)
		return HS_PK_DIRECT;
	/* hugetlbfs: private MAP_HUGETLB|MAP_ANONYMOUS is "/anon_hugepage". */
	if (hs_live_has_vmflag(m->vmflags, "ht")) {
		if (!shared && has_prefix(path, "/anon_hugepage"))
			return HS_PK_ANON;
		return path[0] == '/' ? (shared ? HS_PK_SHARED : HS_PK_FILE) : HS_PK_DIRECT;
	}
	if (path[0] == '\0' || !strcmp(path, "[heap]") || has_prefix(path, "[stack") ||
	    has_prefix(path, "[anon"))  /* [anon:NAME], [anon_shmem:NAME] */
		return shared ? HS_PK_SHARED : HS_PK_ANON;
	if (path[0] == '[')
		return HS_PK_DIRECT; /* [vvar], [vsyscall], [uprobes]... */
	if (path[0] != '/')
		return HS_PK_DIRECT; /* anon_inode:..., a driver's memory */
	/* A private mapping of /dev/zero is anonymous memory; a shared one
	 * (also MAP_SHARED|MAP_ANONYMOUS, "/dev/zero (deleted)") is shmem. */
	if (!strcmp(path, "/dev/zero"))
		return shared ? HS_PK_SHARED : HS_PK_ANON;
	if (has_prefix(path, "/dev/") && !has_prefix(path, "/dev/shm/"))
		return HS_PK_DIRECT; /* device memory: its driver decides */
	return shared ? HS_PK_SHARED : HS_PK_FILE;
}

enum hs_page_src hs_page_decide(uint64_t word, enum hs_page_kind kind)
{
	if (kind == HS_PK_DIRECT || (word & HS_PM_PRESENT))
		return HS_PS_TARGET;
	if (word & HS_PM_SWAP)
		/* A guard region (MADV_GUARD_INSTALL) is a swap-type marker,
		 * not data: reading it fails as it always did. */
		return (word & HS_PM_GUARD) ? HS_PS_TARGET : HS_PS_SWAP;
	switch (kind) {
	case HS_PK_ANON:
		return HS_PS_ZERO;
	case HS_PK_VDSO:
		return HS_PS_VDSO;
	default:
		return HS_PS_FILE;
	}
}

/* heapscan's own vDSO (the same kernel's same image), for pages of the
 * target's [vdso] it does not have in its page tables. */
static const unsigned char *self_vdso;
static size_t self_vdso_len;
static pthread_once_t self_vdso_once = PTHREAD_ONCE_INIT;

static void find_self_vdso(void)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[512];

	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long lo, hi;

		if (strstr(line, "[vdso]") && sscanf(line, "%llx-%llx", &lo, &hi) == 2) {
			self_vdso = (const unsigned char *)(uintptr_t)lo;
			self_vdso_len = (size_t)(hi - lo);
			break;
		}
	}
	fclose(f);
}

/* ---- set-up ---- */

/* Generations of pictures, over every live target of this process (see
 * words_for). */
static uint64_t pm_generation;

static int open_pagemap(pid_t pid, int *fdp)
{
	char path[64];
	uint64_t w;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* The access check is made at open, but probe one word anyway (a
	 * pagemap of page 0 always exists). */
	errno = 0;
	if (pread(fd, &w, sizeof(w), 0) != (ssize_t)sizeof(w)) {
		int ret = errno ? -errno : -EIO;
		close(fd);
		return ret;
	}
	*fdp = fd;
	return 0;
}

void hs_live_policy_init(struct hs_target *t, struct live_priv *p)
{
	const char *env = getenv("HEAPSCAN_READ_POLICY");
	int ret;

	p->pm_fd = -1;
	p->pm_snap_fd = -1;
	p->policy = HS_READ_PAGEMAP;
	t->page_policy = "pagemap";
	/* The bench's knob (bench/README.md) and the fallback's test. */
	if (env && !strcmp(env, "off")) {
		p->policy = HS_READ_OFF;
		t->page_policy = "off";
		return;
	}
	if (env && !strcmp(env, "smaps")) {
		p->policy = HS_READ_SMAPS;
		t->page_policy = "smaps";
		return;
	}
	/* The words, as on kernels without PAGEMAP_SCAN (for the tests). */
	if (env && !strcmp(env, "words"))
		p->pm_scan = -1;
	ret = open_pagemap(p->pid, &p->pm_fd);
	if (ret < 0) {
		hs_log(HS_LOG_WARN, "cannot read /proc/%d/pagemap (%s): untouched "
		       "pages are found from smaps, per mapping only", (int)p->pid,
		       hs_strerror(ret));
		p->policy = HS_READ_SMAPS;
		t->page_policy = "smaps (pagemap unreadable)";
	}
}

void hs_live_policy_maps_changed(struct live_priv *p)
{
	/* A new picture: every thread's cached pagemap words are stale. */
	__atomic_store_n(&p->pm_gen, __atomic_add_fetch(&pm_generation, 1, __ATOMIC_RELAXED),
			 __ATOMIC_RELAXED);
	for (size_t i = 0; i < p->nfile_fd; i++)
		if (p->file_fd[i] >= 0)
			close(p->file_fd[i]);
	free(p->file_fd);
	p->file_fd = NULL;
	p->nfile_fd = 0;
}

static void close_snap(struct live_priv *p)
{
	if (p->pm_snap_fd >= 0)
		close(p->pm_snap_fd);
	p->pm_snap_fd = -1;
	p->pm_snap_pid = 0;
}

void hs_live_policy_release(struct live_priv *p)
{
	free(p->skipped);
	p->skipped = NULL;
	p->nskipped = p->askipped = 0;
	hs_live_policy_maps_changed(p);
	close_snap(p);
	if (p->pm_fd >= 0)
		close(p->pm_fd);
	p->pm_fd = -1;
}

/* ---- pagemap words ---- */

/*
 * PAGEMAP_SCAN (Linux 6.7, linux/fs.h; defined here for older headers):
 * an ioctl on the pagemap file that returns the ranges of pages in given
 * categories.  It gives the same present/swapped answer as the words, 3
 * to 6 times faster (12-16 ns a page against 36-92 here: it need not
 * look at each page's struct page, as the words' exclusive/file bits
 * do).  Where the kernel lacks it, the words are read.
 */
struct hs_page_region {
	uint64_t start, end, categories;
};

struct hs_pm_scan_arg {
	uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
	uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};

#define HS_PAGEMAP_SCAN _IOWR('f', 16, struct hs_pm_scan_arg)
#define HS_PAGE_IS_PRESENT (1u << 3)
#define HS_PAGE_IS_SWAPPED (1u << 4)
#define HS_PAGE_IS_GUARD (1u << 8) /* Linux 6.14 */
#define SCAN_REGIONS 128

/* Words for pages first..first+n-1 from PAGEMAP_SCAN; 0, or -ENOTTY when
 * the kernel does not have it (the caller reads the words). */
static int pm_scan(struct live_priv *p, int fd, uint64_t first, size_t n, uint64_t *w)
{
	struct hs_page_region v[SCAN_REGIONS];
	uint64_t a = first << PG_SHIFT, end = (first + n) << PG_SHIFT;
	int mask = __atomic_load_n(&p->pm_scan, __ATOMIC_RELAXED);

	if (mask < 0)
		return -ENOTTY;
	if (mask == 0)
		mask = HS_PAGE_IS_PRESENT | HS_PAGE_IS_SWAPPED | HS_PAGE_IS_GUARD;
	memset(w, 0, n * sizeof(*w));
	/* Each call covers at least one more region or ends the walk. */
	for (size_t guard = 0; a < end && guard <= n; guard++) {
		struct hs_pm_scan_arg s = {
			.size = sizeof(s), .start = a, .end = end,
			.vec = (uint64_t)(uintptr_t)v, .vec_len = SCAN_REGIONS,
			.category_anyof_mask = (uint64_t)mask, .return_mask = (uint64_t)mask,
		};
		long r = ioctl(fd, HS_PAGEMAP_SCAN, &s);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EINVAL && (mask & HS_PAGE_IS_GUARD)) {
			/* A kernel before guard regions: without them. */
			mask &= ~HS_PAGE_IS_GUARD;
			guard--;
			continue;
		}
		if (r < 0) {
			if (errno == ENOTTY || errno == EINVAL || errno == EOPNOTSUPP) {
				__atomic_store_n(&p->pm_scan, -1, __ATOMIC_RELAXED);
				return -ENOTTY;
			}
			return -errno;
		}
		__atomic_store_n(&p->pm_scan, mask, __ATOMIC_RELAXED);
		for (long i = 0; i < r && i < SCAN_REGIONS; i++) {
			uint64_t lo = v[i].start < a ? a : v[i].start;
			uint64_t hi = v[i].end > end ? end : v[i].end;
			uint64_t bits = 0;

			if (v[i].categories & HS_PAGE_IS_PRESENT)
				bits |= HS_PM_PRESENT;
			if (v[i].categories & HS_PAGE_IS_SWAPPED)
				bits |= HS_PM_SWAP;
			if (v[i].categories & HS_PAGE_IS_GUARD)
				bits |= HS_PM_SWAP | HS_PM_GUARD;
			for (uint64_t pg = lo >> PG_SHIFT; pg < hi >> PG_SHIFT; pg++)
				w[pg - first] = bits;
		}
		if (s.walk_end <= a)
			return -EIO;
		a = s.walk_end;
	}
	return a >= end ? 0 : -EIO;
}

/*
 * n words for pages first..first+n-1 of the process (snap: the snapshot
 * child).  Returns 0, or a negative code (the caller falls back to smaps
 * for these pages).
 */
static int pm_words(struct live_priv *p, bool snap, uint64_t first, size_t n,
		    uint64_t *w)
{
	size_t done = 0;
	int fd;

	if (snap) {
		pthread_mutex_lock(&p->lock);
		if (p->pm_snap_pid != p->snap_pid) {
			close_snap(p);
			if (open_pagemap(p->snap_pid, &p->pm_snap_fd) == 0)
				p->pm_snap_pid = p->snap_pid;
			__atomic_store_n(&p->pm_gen, __atomic_add_fetch(&pm_generation, 1,
					 __ATOMIC_RELAXED), __ATOMIC_RELAXED);
		}
		fd = p->pm_snap_fd;
		pthread_mutex_unlock(&p->lock);
	} else {
		fd = p->pm_fd;
	}
	if (fd < 0)
		return -EBADF;
	{
		int r = pm_scan(p, fd, first, n, w);

		if (r != -ENOTTY)
			return r;
	}
	while (done < n) {
		ssize_t r = pread(fd, w + done, (n - done) * sizeof(*w),
				  (off_t)((first + done) * sizeof(*w)));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0 || r % (ssize_t)sizeof(*w))
			return r < 0 ? -errno : -EIO;
		done += (size_t)r / sizeof(*w);
	}
	return 0;
}

/* Words for pages of m from the picture smaps gives (policy smaps, or
 * pagemap failing): untouched only when the whole mapping is. */
static void smaps_words(const struct hs_map *m, size_t n, uint64_t *w)
{
	bool untouched = (m->flags & HS_MAP_HAS_SMAPS) && m->smaps[HS_SMAPS_RSS] == 0 &&
			 m->smaps[HS_SMAPS_SWAP] == 0;

	for (size_t i = 0; i < n; i++)
		w[i] = untouched ? 0 : HS_PM_PRESENT;
}

/* Whether pages of m are read from the snapshot child. */
static bool from_snap(const struct hs_target *t, const struct live_priv *p,
		      const struct hs_map *m)
{
	return p->snap_pid && !(p->from_parent && p->from_parent[m - t->maps.v]);
}

/*
 * A frozen address space (the process stopped by us, or the snapshot
 * child) keeps its pagemap until we let it go, but for our own swap-ins:
 * each thread keeps the words of the last PM_CACHE pages it asked for
 * (read ahead to the end of the mapping), so sequential and small reads
 * cost one pread per 16 MiB instead of one per read (pagemap costs
 * 40-100 ns a page, a tenth of it the call; bench/README.md).  A word
 * that says swapped is always read again: the page may be ours by now.
 * The key is a generation bumped whenever the maps are re-read or the
 * snapshot changes, so a stale picture is never used.
 */
#define PM_CACHE 4096

struct pm_cache {
	uint64_t gen;       /* 0: empty */
	bool snap;
	uint64_t first;
	size_t n;
	uint64_t w[PM_CACHE];
};

static __thread struct pm_cache pm_cache;

static bool frozen(const struct hs_target *t, const struct live_priv *p, bool snap)
{
	if (snap)
		return true;
	return !p->snap_pid && (t->state & HS_TSTATE_SUSPENDED) &&
	       !(t->flags & HS_TARGET_NO_STOP);
}

/* Words for n pages of mapping m from page first. */
static void words_for(const struct hs_target *t, struct live_priv *p,
		      const struct hs_map *m, uint64_t first, size_t n, uint64_t *w)
{
	bool snap = from_snap(t, p, m);
	struct pm_cache *c = &pm_cache;
	uint64_t gen = __atomic_load_n(&p->pm_gen, __ATOMIC_RELAXED);

	if (p->policy != HS_READ_PAGEMAP)
		goto smaps;
	if (!frozen(t, p, snap) || n > PM_CACHE) {
		if (pm_words(p, snap, first, n, w) == 0)
			return;
		goto smaps;
	}
	if (c->gen != gen || c->snap != snap || first < c->first ||
	    first + n > c->first + c->n) {
		uint64_t last = (m->end - 1) >> PG_SHIFT;
		size_t ahead = last - first + 1 < PM_CACHE ? (size_t)(last - first + 1) : PM_CACHE;

		if (ahead < n)
			ahead = n;
		c->gen = 0;
		if (pm_words(p, snap, first, ahead, c->w) < 0)
			goto smaps;
		c->gen = gen;
		c->snap = snap;
		c->first = first;
		c->n = ahead;
	}
	memcpy(w, c->w + (first - c->first), n * sizeof(*w));
	for (size_t i = 0; i < n; i++)
		if ((w[i] & HS_PM_SWAP) && pm_words(p, snap, first + i, 1, &w[i]) == 0)
			c->w[first + i - c->first] = w[i];
	return;
smaps:
	smaps_words(m, n, w);
}

/* ---- files behind mappings ---- */

static int open_checked(const char *path, uint64_t inode)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    (inode && (uint64_t)st.st_ino != inode)) {
		close(fd);
		return -ESTALE;
	}
	return fd;
}

/* The file behind m: map_files names the very file mapped (deleted, or
 * in another mount namespace, alike) but needs CAP_SYS_ADMIN or
 * CAP_CHECKPOINT_RESTORE; else the path through the process's root, then
 * the path as heapscan sees it, each only if it is still the same inode.
 * The live backend's open_file operation too. */
int hs_live_open_map_file(pid_t pid, const struct hs_map *m)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64,
		 (int)pid, m->start, m->end);
	fd = open_checked(path, 0);
	if (fd >= 0 || (m->flags & HS_MAP_DELETED) || m->path[0] != '/')
		return fd;
	if ((size_t)snprintf(path, sizeof(path), "/proc/%d/root%s", (int)pid,
			     m->path) >= sizeof(path))
		return -ENAMETOOLONG;
	fd = open_checked(path, m->inode);
	if (fd >= 0)
		return fd;
	return open_checked(m->path, m->inode);
}

/* fd of m's file, or a negative code; opened once per mapping. */
static int map_file_fd(struct hs_target *t, struct live_priv *p, const struct hs_map *m)
{
	size_t i = (size_t)(m - t->maps.v);
	int fd;

	pthread_mutex_lock(&p->lock);
	if (!p->file_fd && t->maps.n) {
		p->file_fd = hs_xmalloc(t->maps.n * sizeof(*p->file_fd));
		for (size_t k = 0; k < t->maps.n; k++)
			p->file_fd[k] = -1;
		p->nfile_fd = t->maps.n;
	}
	if (i >= p->nfile_fd) {
		fd = -ENOENT;
	} else {
		if (p->file_fd[i] == -1) {
			/* The parent's file serves the snapshot too: fork
			 * shares the same files. */
			int r = hs_live_open_map_file(p->pid, m);

			p->file_fd[i] = r >= 0 ? r : -2;
			if (r < 0 && !p->file_warned) {
				p->file_warned = true;
				hs_log(HS_LOG_DEBUG, "cannot open the file of %#" PRIx64 "-%#" PRIx64
				       " '%s' (%s): its pages that are not present are read "
				       "through the process", m->start, m->end, m->path,
				       hs_strerror(r));
			}
		}
		fd = p->file_fd[i] >= 0 ? p->file_fd[i] : -ENOENT;
	}
	pthread_mutex_unlock(&p->lock);
	return fd;
}

/*
 * [a, a+n) of m from its file: the bytes below the file's size, zeros
 * from there to the end of that page (as the kernel fills a mapping's
 * last page), nothing beyond (SIGBUS for the process, a short read for
 * us).  Returns 0 with *got, or -ENOENT when the file cannot be opened.
 */
static int read_file(struct hs_target *t, struct live_priv *p, const struct hs_map *m,
		     hs_addr_t a, char *dst, size_t n, size_t *got)
{
	int fd = map_file_fd(t, p, m);
	uint64_t off = m->offset + (a - m->start), size, lim, want, k = 0;
	struct stat st;

	*got = 0;
	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0)
		return -errno;
	size = (uint64_t)st.st_size;
	lim = (size + PG - 1) & ~(uint64_t)(PG - 1);
	if (off >= lim)
		return 0;
	want = off + n < lim ? n : lim - off;
	while (k < want && off + k < size) {
		uint64_t ask = want - k;
		ssize_t r;

		if (off + k + ask > size)
			ask = size - off - k;
		r = pread(fd, dst + k, (size_t)ask, (off_t)(off + k));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			*got = (size_t)k;
			return 0; /* an I/O error: unreadable from here */
		}
		if (r == 0)
			break; /* truncated meanwhile */
		k += (uint64_t)r;
	}
	memset(dst + k, 0, (size_t)(want - k));
	*got = (size_t)want;
	return 0;
}

/* ---- reading ---- */

/* Pages left in swap are counted once each, however often readers come
 * back to them: a set of page numbers, at most SKIP_SLOTS (8 MiB); past
 * that, repeated visits count again. */
#define SKIP_SLOTS (1u << 20)

static bool skip_insert(uint64_t *v, size_t a, uint64_t key)
{
	size_t i = (size_t)((key * 0x9e3779b97f4a7c15ull) >> 20) & (a - 1);

	while (v[i]) {
		if (v[i] == key)
			return false;
		i = (i + 1) & (a - 1);
	}
	v[i] = key;
	return true;
}

/* Whether page pg is counted for the first time. */
static bool skip_first_time(struct live_priv *p, uint64_t pg)
{
	bool first = true;

	pthread_mutex_lock(&p->lock);
	if (p->nskipped * 2 >= p->askipped && p->askipped < SKIP_SLOTS) {
		size_t na = p->askipped ? p->askipped * 2 : 1024;
		uint64_t *nv = hs_xcalloc(na, sizeof(*nv));

		for (size_t i = 0; i < p->askipped; i++)
			if (p->skipped[i])
				skip_insert(nv, na, p->skipped[i]);
		free(p->skipped);
		p->skipped = nv;
		p->askipped = na;
	}
	if (p->nskipped * 2 < p->askipped) {
		first = skip_insert(p->skipped, p->askipped, pg + 1);
		if (first)
			p->nskipped++;
	}
	pthread_mutex_unlock(&p->lock);
	return first;
}

/* Bytes of the whole pages [a, a+got) touches. */
static uint64_t page_bytes(hs_addr_t a, size_t got)
{
	return got ? (((a + got - 1) >> PG_SHIFT) - (a >> PG_SHIFT) + 1) * PG : 0;
}

/*
 * [a, a+n) of m through the process, adding to t->faulted_in the pages it
 * did not have.  The pagemap is asked again right before each batch, not
 * from the cache: an earlier read of this picture (a neighbour's piece, a
 * run followed across a seam) may have faulted a page in already, and a
 * page counts once.  Without pagemap, every page read counts.
 */
static int read_faulting(struct hs_target *t, struct live_priv *p, const struct hs_map *m,
			 hs_addr_t a, char *dst, size_t n, size_t *got)
{
	bool snap = from_snap(t, p, m);
	uint64_t w[PM_BATCH];
	int ret = 0;

	*got = 0;
	while (*got < n) {
		hs_addr_t b = a + *got;
		uint64_t first = b >> PG_SHIFT;
		hs_addr_t bend = (first + PM_BATCH) << PG_SHIFT;
		size_t want, k = 0, npg;
		bool known;

		if (bend > a + n || bend < b)
			bend = a + n;
		want = (size_t)(bend - b);
		npg = (size_t)(((bend - 1) >> PG_SHIFT) - first + 1);
		known = p->policy == HS_READ_PAGEMAP && pm_words(p, snap, first, npg, w) == 0;
		ret = hs_live_read_raw(t, b, dst + *got, want, &k);
		if (k) {
			size_t read_pg = (size_t)(((b + k - 1) >> PG_SHIFT) - first + 1);
			uint64_t absent = 0;

			for (size_t i = 0; i < read_pg; i++)
				absent += !known || !(w[i] & HS_PM_PRESENT);
			__atomic_add_fetch(&t->faulted_in, absent * PG, __ATOMIC_RELAXED);
		}
		*got += k;
		if (ret < 0 || k < want)
			break;
	}
	return ret;
}

/* One run of pages with the same source, [a, a+n) inside m. */
static int read_run(struct hs_target *t, struct live_priv *p, const struct hs_map *m,
		    enum hs_page_src src, hs_addr_t a, char *dst, size_t n, size_t *got)
{
	int ret;

	*got = 0;
	switch (src) {
	case HS_PS_ZERO:
		memset(dst, 0, n);
		*got = n;
		return 0;
	case HS_PS_FILE:
		ret = read_file(t, p, m, a, dst, n, got);
		if (ret != -ENOENT)
			return ret;
		/* No file: through the process, as before, which maps the
		 * pages into it (and allocates shmem holes); counted. */
		return read_faulting(t, p, m, a, dst, n, got);
	case HS_PS_SWAP:
		if (t->flags & HS_TARGET_NO_SWAPIN) {
			/* Left in swap: a short read at the first such page
			 * (readers skip on page by page). */
			if (skip_first_time(p, a >> PG_SHIFT))
				__atomic_add_fetch(&t->swap_skipped, PG, __ATOMIC_RELAXED);
			__atomic_or_fetch(&t->state, HS_TSTATE_PARTIAL, __ATOMIC_RELAXED);
			return 0;
		}
		ret = hs_live_read_raw(t, a, dst, n, got);
		/* What the process gained: whole pages, however few of
		 * their bytes were asked for (the mmapped-chunk search
		 * reads 16 bytes a page). */
		__atomic_add_fetch(&t->swapped_in, page_bytes(a, *got), __ATOMIC_RELAXED);
		return ret;
	case HS_PS_VDSO:
		/* Only when the sizes agree, i.e. the same (64-bit) image. */
		pthread_once(&self_vdso_once, find_self_vdso);
		if (self_vdso && self_vdso_len == m->end - m->start) {
			memcpy(dst, self_vdso + (a - m->start), n);
			*got = n;
			return 0;
		}
		break;
	case HS_PS_TARGET:
		break;
	}
	return hs_live_read_raw(t, a, dst, n, got);
}

/* [a, a+len) inside mapping m. */
static int read_in_map(struct hs_target *t, struct live_priv *p, const struct hs_map *m,
		       hs_addr_t a, char *buf, size_t len, size_t *got)
{
	enum hs_page_kind kind = hs_page_kind_of(m);
	uint64_t w[PM_BATCH];

	*got = 0;
	if (kind == HS_PK_DIRECT)
		return hs_live_read_raw(t, a, buf, len, got);
	while (*got < len) {
		hs_addr_t b = a + *got, bend;
		uint64_t first = b >> PG_SHIFT;
		size_t npg;

		bend = (first + PM_BATCH) << PG_SHIFT;
		if (bend > a + len || bend < b)
			bend = a + len;
		npg = (size_t)(((bend - 1) >> PG_SHIFT) - first + 1);
		words_for(t, p, m, first, npg, w);
		for (size_t i = 0; i < npg;) {
			enum hs_page_src src = hs_page_decide(w[i], kind);
			size_t j = i + 1, k = 0;
			hs_addr_t lo, hi;
			int ret;

			while (j < npg && hs_page_decide(w[j], kind) == src)
				j++;
			lo = (first + i) << PG_SHIFT;
			hi = (first + j) << PG_SHIFT;
			if (lo < b)
				lo = b;
			if (hi > bend)
				hi = bend;
			ret = read_run(t, p, m, src, lo, buf + (lo - a), (size_t)(hi - lo), &k);
			*got += k;
			if (ret < 0 || k < hi - lo)
				return ret;
			i = j;
		}
	}
	return 0;
}

int hs_live_policy_read(struct hs_target *t, hs_addr_t addr, void *buf, size_t len,
			size_t *nread)
{
	struct live_priv *p = t->priv;
	const struct hs_map *m, *end = t->maps.v + t->maps.n;
	int ret = 0;

	*nread = 0;
	m = p->policy == HS_READ_OFF ? NULL : hs_maps_find(&t->maps, addr);
	/* Policy off, or not in our maps (stale with --no-stop): let the
	 * kernel say. */
	if (!m)
		return hs_live_read_raw(t, addr, buf, len, nread);
	/* Mapping by mapping while they are contiguous, as the raw read. */
	while (*nread < len && m) {
		hs_addr_t a = addr + *nread;
		size_t want = len - *nread, got = 0;

		if (m->end - a < want)
			want = (size_t)(m->end - a);
		ret = read_in_map(t, p, m, a, (char *)buf + *nread, want, &got);
		*nread += got;
		if (ret < 0 || got < want)
			break;
		m = (m + 1 < end && m[1].start == m->end) ? m + 1 : NULL;
	}
	if (*nread)
		return 0;
	return ret < 0 ? ret : -EFAULT;
}

int hs_live_pages_touched(void *ud, hs_addr_t addr, size_t npages, unsigned char *present)
{
	struct hs_target *t = ud;
	struct live_priv *p;
	uint64_t w[PM_BATCH];
	size_t i = 0;

	if (!t || strcmp(t->ops->name, "live"))
		return -ENOTSUP;
	p = t->priv;
	if (p->policy == HS_READ_OFF)
		return -ENOTSUP;
	while (i < npages) {
		hs_addr_t a = addr + ((hs_addr_t)i << PG_SHIFT);
		const struct hs_map *m = hs_maps_find(&t->maps, a);
		size_t n = npages - i;

		if (!m) {
			present[i++] = 1; /* let the reader find out */
			continue;
		}
		if (n > PM_BATCH)
			n = PM_BATCH;
		if ((m->end - a) >> PG_SHIFT < n)
			n = (size_t)((m->end - a) >> PG_SHIFT);
		if (n == 0) {
			present[i++] = 1;
			continue;
		}
		words_for(t, p, m, a >> PG_SHIFT, n, w);
		enum hs_page_kind kind = hs_page_kind_of(m);
		for (size_t k = 0; k < n; k++)
			present[i + k] = hs_page_decide(w[k], kind) != HS_PS_ZERO;
		i += n;
	}
	return 0;
}
