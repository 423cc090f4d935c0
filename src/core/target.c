/*
 * Generic half of the target interface: lifecycle, read helpers, streaming,
 * the maps container, and the "mem" backend used by unit tests.
 */
#include "hs_core.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

/* ---- tables ---- */

static const char *const smaps_keys[] = {
#define HS_X_(n, k, u) k,
	HS_SMAPS_FIELDS(HS_X_)
#undef HS_X_
};
static const bool smaps_kb[] = {
#define HS_X_(n, k, u) (#u[0] == 'K'),
	HS_SMAPS_FIELDS(HS_X_)
#undef HS_X_
};
static const char *const class_names[] = {
#define HS_X_(n, s, l) s,
	HS_CLASSES(HS_X_)
#undef HS_X_
};
static const char *const class_labels[] = {
#define HS_X_(n, s, l) l,
	HS_CLASSES(HS_X_)
#undef HS_X_
};

const char *hs_smaps_key(enum hs_smaps_field f)
{
	return (unsigned)f < HS_SMAPS_N ? smaps_keys[f] : "?";
}

bool hs_smaps_is_kb(enum hs_smaps_field f)
{
	return (unsigned)f < HS_SMAPS_N && smaps_kb[f];
}

const char *hs_class_name(enum hs_class c)
{
	return (unsigned)c < HS_CLASS_N ? class_names[c] : "?";
}

const char *hs_class_label(enum hs_class c)
{
	return (unsigned)c < HS_CLASS_N ? class_labels[c] : "?";
}

int hs_class_parse(const char *name)
{
	for (int c = 0; c < HS_CLASS_N; c++)
		if (!strcmp(name, class_names[c]))
			return c;
	return -1;
}

/* ---- maps ---- */

void hs_maps_release(struct hs_maps *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->v[i].path);
	free(m->v);
	memset(m, 0, sizeof(*m));
}

struct hs_map *hs_maps_add(struct hs_maps *m, hs_addr_t start, hs_addr_t end,
			   const char *path)
{
	struct hs_map *map;

	HS_ALLOC_GROW(m->v, m->n + 1, m->alloc);
	map = &m->v[m->n++];
	memset(map, 0, sizeof(*map));
	map->start = start;
	map->end = end;
	map->path = hs_xstrdup(path ? path : "");
	return map;
}

static int cmp_map(const void *a, const void *b)
{
	const struct hs_map *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

void hs_maps_sort(struct hs_maps *m)
{
	if (m->n > 1)
		qsort(m->v, m->n, sizeof(*m->v), cmp_map);
}

const struct hs_map *hs_maps_find(const struct hs_maps *m, hs_addr_t addr)
{
	size_t lo = 0, hi = m->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct hs_map *map = &m->v[mid];

		if (addr < map->start)
			hi = mid;
		else if (addr >= map->end)
			lo = mid + 1;
		else
			return map;
	}
	return NULL;
}

const struct hs_map *hs_target_find_map(const struct hs_target *t, hs_addr_t addr)
{
	return hs_maps_find(&t->maps, addr);
}

/* ---- lifecycle ---- */

struct hs_target *hs_target_new(const struct hs_target_ops *ops)
{
	struct hs_target *t = hs_xcalloc(1, sizeof(*t));

	t->ops = ops;
	t->open_ns = hs_now_ns();
	t->info.exe = hs_xstrdup("");
	t->info.cmdline = hs_xstrdup("");
	return t;
}

void hs_target_clear_threads(struct hs_target *t)
{
	for (size_t i = 0; i < t->nthreads; i++)
		free(t->threads[i].xstate);
	free(t->threads);
	t->threads = NULL;
	t->nthreads = 0;
}

void hs_proc_info_release(struct hs_proc_info *info)
{
	free(info->exe);
	free(info->cmdline);
	free(info->auxv);
	memset(info, 0, sizeof(*info));
}

void hs_target_close(struct hs_target *t)
{
	if (!t)
		return;
	if (t->state & HS_TSTATE_SUSPENDED)
		hs_target_resume(t);
	if (t->ops->close)
		t->ops->close(t);
	hs_target_clear_threads(t);
	hs_maps_release(&t->maps);
	hs_proc_info_release(&t->info);
	free(t->source);
	free(t);
}

int hs_target_suspend(struct hs_target *t)
{
	if (!t->ops->suspend || (t->state & HS_TSTATE_SUSPENDED))
		return 0;
	return t->ops->suspend(t);
}

int hs_target_resume(struct hs_target *t)
{
	if (!t->ops->resume || !(t->state & HS_TSTATE_SUSPENDED))
		return 0;
	return t->ops->resume(t);
}

int hs_target_open_file(struct hs_target *t, const struct hs_map *m)
{
	struct stat st;
	int fd;

	if (t->ops->open_file)
		return t->ops->open_file(t, m);
	if (!m->path || m->path[0] != '/')
		return -ENOENT;
	fd = open(m->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -ENOENT;
	}
	return fd;
}

bool hs_target_holds(const struct hs_target *t)
{
	return (t->caps & HS_CAP_STOPPABLE) && !(t->flags & HS_TARGET_NO_STOP);
}

void hs_problem_vadd(struct hs_problem *v, size_t cap, size_t *n, hs_addr_t addr,
		     const char *fmt, va_list ap)
{
	if (*n < cap) {
		v[*n].addr = addr;
		vsnprintf(v[*n].msg, sizeof(v[*n].msg), fmt, ap);
	}
	(*n)++;
}

void hs_problem_add(struct hs_problem *v, size_t cap, size_t *n, hs_addr_t addr,
		    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	hs_problem_vadd(v, cap, n, addr, fmt, ap);
	va_end(ap);
}

/* ---- reading ---- */

int hs_target_read(struct hs_target *t, hs_addr_t addr, void *buf, size_t len,
		   size_t *nread)
{
	int ret;

	*nread = 0;
	if (len == 0)
		return 0;
	if (addr + len < addr)
		return -EFAULT;
	ret = t->ops->read(t, addr, buf, len, nread);
	if (ret == -ESRCH)
		__atomic_or_fetch(&t->state, HS_TSTATE_GONE | HS_TSTATE_PARTIAL,
				  __ATOMIC_RELAXED);
	return ret;
}

int hs_target_read_full(struct hs_target *t, hs_addr_t addr, void *buf,
			size_t len)
{
	size_t done = 0;

	while (done < len) {
		size_t n = 0;
		int ret = hs_target_read(t, addr + done, (char *)buf + done,
					 len - done, &n);
		if (ret < 0)
			return ret;
		if (n == 0)
			return -EFAULT;
		done += n;
	}
	return 0;
}

int hs_read_u64(struct hs_target *t, hs_addr_t addr, uint64_t *out)
{
	return hs_target_read_full(t, addr, out, sizeof(*out));
}

int hs_read_cstr(struct hs_target *t, hs_addr_t addr, char *out, size_t max)
{
	size_t got = 0;

	if (max == 0)
		return -EINVAL;
	/* Read in small steps so a string near the end of a mapping works. */
	while (got < max - 1) {
		size_t want = max - 1 - got, n = 0;
		hs_addr_t a = addr + got;
		size_t to_page = 4096 - (a & 4095);
		int ret;

		if (want > to_page)
			want = to_page;
		ret = hs_target_read(t, a, out + got, want, &n);
		if (ret < 0 && got == 0)
			return ret;
		void *nul = memchr(out + got, '\0', n);
		if (nul)
			return (int)((char *)nul - out);
		got += n;
		if (ret < 0 || n < want)
			break;
	}
	out[got] = '\0';
	return got == max - 1 ? -HS_E_CORRUPT : -EFAULT;
}

int hs_target_next_data(struct hs_target *t, hs_addr_t addr, hs_addr_t limit,
			hs_addr_t *start, hs_addr_t *end)
{
	hs_addr_t s = addr, e = limit;

	if (addr >= limit)
		return -ENXIO;
	if (t->ops->next_data) {
		int ret = t->ops->next_data(t, addr, &s, &e);

		if (ret < 0)
			return ret;
		if (s < addr)
			s = addr;
		if (s >= limit || e <= s)
			return -ENXIO;
		if (e > limit)
			e = limit;
	}
	*start = s;
	*end = e;
	return 0;
}

static void count_unreadable(struct hs_target *t, uint64_t n, uint64_t *unreadable)
{
	if (unreadable)
		*unreadable += n;
	__atomic_add_fetch(&t->unreadable, n, __ATOMIC_RELAXED);
	__atomic_or_fetch(&t->state, HS_TSTATE_PARTIAL, __ATOMIC_RELAXED);
}

int hs_target_stream(struct hs_target *t, hs_addr_t start, hs_addr_t end,
		     void *buf, size_t bufsz, hs_chunk_cb cb, void *ud,
		     uint64_t *unreadable)
{
	hs_addr_t a = start, ds, de = start;

	if (bufsz < 4096)
		return -EINVAL;
	while (a < end) {
		size_t want, n = 0;
		int ret;

		if (hs_interrupted)
			return -HS_E_INTERRUPTED;
		if (a >= de) {
			/* Skip a hole in one step. */
			if (hs_target_next_data(t, a, end, &ds, &de) < 0) {
				count_unreadable(t, end - a, unreadable);
				break;
			}
			if (ds > a)
				count_unreadable(t, ds - a, unreadable);
			a = ds;
		}
		want = de - a < bufsz ? (size_t)(de - a) : bufsz;
		ret = hs_target_read(t, a, buf, want, &n);
		if (ret == -ESRCH)
			return ret;
		if (n > 0) {
			ret = cb(ud, a, buf, n);
			if (ret)
				return ret;
			a += n;
			if (n == want)
				continue;
		}
		/* Not readable at a: skip to the next page boundary. */
		hs_addr_t next = (a | 4095) + 1;
		if (next > de || next < a)
			next = de;
		count_unreadable(t, next - a, unreadable);
		a = next;
	}
	return 0;
}

/* ---- mem backend ---- */

struct mem_seg {
	hs_addr_t addr;
	const unsigned char *data;
	size_t len;
};

struct mem_priv {
	struct mem_seg *v;
	size_t n, alloc;
};

static int mem_read(struct hs_target *t, hs_addr_t addr, void *buf, size_t len,
		    size_t *nread)
{
	struct mem_priv *p = t->priv;
	size_t done = 0;

	/* Segments may abut: keep copying while the next byte is covered. */
	while (done < len) {
		hs_addr_t a = addr + done;
		const struct mem_seg *s = NULL;

		for (size_t i = 0; i < p->n; i++)
			if (a >= p->v[i].addr && a - p->v[i].addr < p->v[i].len) {
				s = &p->v[i];
				break;
			}
		if (!s)
			break;
		size_t off = (size_t)(a - s->addr);
		size_t n = s->len - off < len - done ? s->len - off : len - done;
		memcpy((char *)buf + done, s->data + off, n);
		done += n;
	}
	*nread = done;
	return done ? 0 : -EFAULT;
}

static void mem_close(struct hs_target *t)
{
	struct mem_priv *p = t->priv;

	free(p->v);
	free(p);
}

static const struct hs_target_ops mem_ops = {
	.name = "mem",
	.read = mem_read,
	.close = mem_close,
};

int hs_target_open_mem(struct hs_target **out)
{
	struct hs_target *t = hs_target_new(&mem_ops);

	t->caps = HS_CAP_POST_MORTEM;
	t->priv = hs_xcalloc(1, sizeof(struct mem_priv));
	t->source = hs_xstrdup("memory");
	*out = t;
	return 0;
}

void hs_target_mem_add(struct hs_target *t, hs_addr_t addr, const void *data,
		       size_t len, unsigned perms, const char *path)
{
	struct mem_priv *p = t->priv;

	HS_ALLOC_GROW(p->v, p->n + 1, p->alloc);
	p->v[p->n++] = (struct mem_seg){ addr, data, len };
	if (perms) {
		struct hs_map *m = hs_maps_add(&t->maps, addr, addr + len, path);
		m->perms = perms;
		m->smaps[HS_SMAPS_SIZE] = len;
		m->smaps[HS_SMAPS_RSS] = len;
		hs_maps_sort(&t->maps);
	}
}
