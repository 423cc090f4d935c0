/* The profile file: writing and (hostile-input) reading; see hs_growth.h. */
#include "hs_growth.h"
#include "hs_strings.h"
#include "profile-internal.h"

#include <errno.h>
#include <stddef.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* ---- writing ------------------------------------------------------------ */

/* Writes n bytes of s escaped: '\\', bytes outside 0x20..0x7e and a
 * trailing space as \\ or \xHH, so the rest of the line reads back
 * exactly even after an editor strips trailing blanks. */
static void put_esc(FILE *out, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\\')
			fputs("\\\\", out);
		else if (c < 0x20 || c > 0x7e || (c == ' ' && i + 1 == n))
			fprintf(out, "\\x%02x", c);
		else
			fputc(c, out);
	}
}

static void perms_str(char out[5], unsigned perms)
{
	out[0] = (perms & HS_PERM_R) ? 'r' : '-';
	out[1] = (perms & HS_PERM_W) ? 'w' : '-';
	out[2] = (perms & HS_PERM_X) ? 'x' : '-';
	out[3] = (perms & HS_PERM_SHARED) ? 's' : 'p';
	out[4] = '\0';
}

static void meta_str(FILE *out, const char *key, const char *v, size_t *nrec)
{
	fprintf(out, "meta %s ", key);
	put_esc(out, v, strlen(v));
	fputc('\n', out);
	(*nrec)++;
}

static void meta_u64(FILE *out, const char *key, uint64_t v, size_t *nrec)
{
	fprintf(out, "meta %s %" PRIu64 "\n", key, v);
	(*nrec)++;
}

static void put_mem(FILE *out, const struct hs_profile_mem *m)
{
	fprintf(out, "%" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64,
		m->size, m->rss, m->pss, m->private_dirty, m->swap);
}

int hs_profile_write(const struct hs_profile *p, FILE *out)
{
	size_t nrec = 0;

	fprintf(out, "%s %u\n", HS_PROFILE_MAGIC, HS_PROFILE_VERSION);
	fputs("# heapscan growth profile; format: man heapscan, PROFILE FILES\n", out);
	meta_str(out, "heapscan_version", p->heapscan_version, &nrec);
	meta_str(out, "source", p->source, &nrec);
	meta_str(out, "kind", p->kind, &nrec);
	meta_str(out, "exe", p->exe, &nrec);
	meta_str(out, "cmdline", p->cmdline, &nrec);
	meta_u64(out, "pid", (uint64_t)p->pid, &nrec);
	meta_u64(out, "time_ns", p->time_ns, &nrec);
	meta_u64(out, "stop_ns", p->stop_ns, &nrec);
	meta_u64(out, "build_ns", p->build_ns, &nrec);
	meta_u64(out, "smaps", p->has_smaps, &nrec);
	meta_u64(out, "partial", p->partial, &nrec);
	meta_str(out, "heap_error", p->heap_error, &nrec);
	meta_u64(out, "glibc_minor", p->glibc_minor, &nrec);
	/* Only when not glibc's: glibc profiles stay as they were. */
	if (p->heap_allocator)
		meta_u64(out, "heap_allocator", p->heap_allocator, &nrec);
	meta_u64(out, "heap_problems", p->heap_problems, &nrec);
	meta_u64(out, "strings", p->strings_done, &nrec);
	meta_u64(out, "strings_exact", p->strings_exact, &nrec);
	meta_u64(out, "strings_err", p->strings_err, &nrec);
	meta_u64(out, "strings_distinct", p->strings_distinct, &nrec);
	meta_u64(out, "strings_occurrences", p->strings_occurrences, &nrec);
	meta_u64(out, "strings_min_len", p->strings_min_len, &nrec);
	meta_u64(out, "strings_keep", p->strings_keep, &nrec);
	meta_u64(out, "strings_cut", p->strings_cut, &nrec);
	meta_u64(out, "types", p->types_done, &nrec);
	for (int c = 0; c < HS_CLASS_N; c++) {
		fprintf(out, "class %s %" PRIu64 " ", hs_class_name(c), p->classes[c].count);
		put_mem(out, &p->classes[c]);
		fputc('\n', out);
		nrec++;
	}
	for (size_t i = 0; i < p->nregions; i++) {
		const struct hs_profile_region *r = &p->regions[i];
		char perms[5];

		perms_str(perms, r->perms);
		fprintf(out, "region 0x%" PRIx64 " 0x%" PRIx64 " %s %s ", r->start, r->end,
			perms, hs_class_name(r->cls));
		put_mem(out, &r->mem);
		fputc(' ', out);
		put_esc(out, r->path, strlen(r->path));
		fputc('\n', out);
		nrec++;
	}
	for (size_t i = 0; i < p->narenas; i++) {
		const struct hs_profile_arena *a = &p->arenas[i];

		fprintf(out, "arena %d 0x%" PRIx64 " %s %" PRIu64 " %" PRIu64 " %" PRIu64
			" %" PRIu64 " %" PRIu64 "\n", a->idx, a->addr,
			a->is_main ? "main" : "thread", a->system_mem, a->inuse_count,
			a->inuse_bytes, a->free_count, a->free_bytes);
		nrec++;
	}
	for (size_t i = 0; i < p->nchunks; i++) {
		const struct hs_profile_chunk *c = &p->chunks[i];

		fprintf(out, "chunk %d %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", c->arena,
			c->size, c->count, c->bytes);
		nrec++;
	}
	for (size_t i = 0; i < p->nstrings; i++) {
		const struct hs_profile_string *s = &p->strings[i];

		fprintf(out, "string %" PRIu64 " %" PRIu64 " %" PRIu64 " ", s->count,
			s->len, s->bytes);
		put_esc(out, s->s, s->stored);
		fputc('\n', out);
		nrec++;
	}
	for (size_t i = 0; i < p->ntypes; i++) {
		const struct hs_profile_type *ty = &p->types[i];

		fputs("type ", out);
		put_esc(out, ty->kind, strlen(ty->kind));
		fprintf(out, " %" PRIu64 " %" PRIu64 " ", ty->count, ty->bytes);
		put_esc(out, ty->name, strlen(ty->name));
		fputc('\n', out);
		nrec++;
	}
	fprintf(out, "end %zu\n", nrec);
	if (fflush(out) != 0 || ferror(out))
		return errno ? -errno : -EIO;
	return 0;
}

/* ---- reading ------------------------------------------------------------ */

/*
 * One line into buf (at most max bytes, NUL-terminated, newline removed).
 * Returns 1, 0 at a clean EOF, -HS_E_TRUNCATED for a last line without a
 * newline, -HS_E_CORRUPT for a line that is too long or holds a NUL,
 * -errno on a read error.
 */
static int get_line(FILE *in, char *buf, size_t max, size_t *len)
{
	size_t n = 0;
	int c;

	for (;;) {
		c = getc(in);
		if (c == EOF) {
			if (ferror(in))
				return errno ? -errno : -EIO;
			if (n)
				return -HS_E_TRUNCATED;
			return 0;
		}
		if (c == '\n')
			break;
		if (c == '\0' || n + 1 >= max)
			return -HS_E_CORRUPT;
		buf[n++] = (char)c;
	}
	buf[n] = '\0';
	*len = n;
	return 1;
}

/* The next space-separated field (NUL-terminated in place), or NULL. */
static char *field(char **cur)
{
	char *s = *cur, *sp;

	if (!s || !*s)
		return NULL;
	sp = strchr(s, ' ');
	if (sp) {
		*sp = '\0';
		*cur = sp + 1;
	} else {
		*cur = NULL;
	}
	return s;
}

/* The rest of the line, unescaped into out (owned by the caller); -1 on a
 * bad escape or an embedded NUL. */
static int rest_unesc(char **cur, char **out, size_t *outlen)
{
	const char *s = *cur ? *cur : "";
	size_t n = strlen(s), o = 0;
	char *d = hs_xmalloc(n + 1);

	for (size_t i = 0; i < n; i++) {
		if (s[i] != '\\') {
			d[o++] = s[i];
			continue;
		}
		if (s[i + 1] == '\\') {
			d[o++] = '\\';
			i++;
			continue;
		}
		if (s[i + 1] == 'x' && i + 3 < n + 1) {
			char hex[3] = { s[i + 2], s[i + 3], 0 };
			char *end;
			unsigned long v;

			if (!hex[0] || !hex[1])
				goto bad;
			v = strtoul(hex, &end, 16);
			if (*end || v == 0)
				goto bad;
			d[o++] = (char)v;
			i += 3;
			continue;
		}
		goto bad;
	}
	d[o] = '\0';
	*out = d;
	if (outlen)
		*outlen = o;
	*cur = NULL;
	return 0;
bad:
	free(d);
	return -1;
}

static int num(char **cur, uint64_t *v)
{
	char *f = field(cur), *end;
	unsigned long long x;

	if (!f || !*f || *f == '-' || *f == '+' || *f == ' ')
		return -1;
	errno = 0;
	if (f[0] == '0' && f[1] == 'x')
		x = strtoull(f + 2, &end, 16);
	else
		x = strtoull(f, &end, 10);
	if (errno || *end || (f[0] == '0' && f[1] == 'x' && !f[2]))
		return -1;
	*v = x;
	return 0;
}

static int snum(char **cur, int64_t *v)
{
	char *f = field(cur), *end;
	long long x;

	if (!f || !*f)
		return -1;
	errno = 0;
	x = strtoll(f, &end, 10);
	if (errno || *end)
		return -1;
	*v = x;
	return 0;
}

static int mem_fields(char **cur, struct hs_profile_mem *m)
{
	return num(cur, &m->size) || num(cur, &m->rss) || num(cur, &m->pss) ||
	       num(cur, &m->private_dirty) || num(cur, &m->swap) ? -1 : 0;
}

static int parse_perms(const char *f, unsigned *perms)
{
	if (!f || strlen(f) != 4 || (f[0] != 'r' && f[0] != '-') ||
	    (f[1] != 'w' && f[1] != '-') || (f[2] != 'x' && f[2] != '-') ||
	    (f[3] != 'p' && f[3] != 's'))
		return -1;
	*perms = (f[0] == 'r' ? HS_PERM_R : 0) | (f[1] == 'w' ? HS_PERM_W : 0) |
		 (f[2] == 'x' ? HS_PERM_X : 0) | (f[3] == 's' ? HS_PERM_SHARED : 0);
	return 0;
}

static int meta(struct hs_profile *p, char **cur)
{
	const char *key = field(cur);
	static const struct {
		const char *key;
		size_t off;
	} strs[] = {
		{ "heapscan_version", offsetof(struct hs_profile, heapscan_version) },
		{ "source", offsetof(struct hs_profile, source) },
		{ "kind", offsetof(struct hs_profile, kind) },
		{ "exe", offsetof(struct hs_profile, exe) },
		{ "cmdline", offsetof(struct hs_profile, cmdline) },
		{ "heap_error", offsetof(struct hs_profile, heap_error) },
	};
	uint64_t v;
	char *s;

	if (!key)
		return -1;
	for (size_t i = 0; i < HS_ARRAY_SIZE(strs); i++) {
		if (strcmp(key, strs[i].key))
			continue;
		if (rest_unesc(cur, &s, NULL))
			return -1;
		char **fp = (char **)((char *)p + strs[i].off);
		free(*fp);
		*fp = s;
		return 0;
	}
	if (num(cur, &v) || *cur)
		return -1;
	if (!strcmp(key, "pid"))
		p->pid = v > 0x7fffffff ? 0 : (pid_t)v;
	else if (!strcmp(key, "time_ns"))
		p->time_ns = v;
	else if (!strcmp(key, "stop_ns"))
		p->stop_ns = v;
	else if (!strcmp(key, "build_ns"))
		p->build_ns = v;
	else if (!strcmp(key, "smaps"))
		p->has_smaps = v != 0;
	else if (!strcmp(key, "partial"))
		p->partial = v != 0;
	else if (!strcmp(key, "glibc_minor"))
		p->glibc_minor = v > 1000 ? 0 : (unsigned)v;
	else if (!strcmp(key, "heap_allocator"))
		p->heap_allocator = v == HS_PROFILE_JEMALLOC ? HS_PROFILE_JEMALLOC : HS_PROFILE_GLIBC;
	else if (!strcmp(key, "heap_problems"))
		p->heap_problems = v;
	else if (!strcmp(key, "strings"))
		p->strings_done = v != 0;
	else if (!strcmp(key, "strings_exact"))
		p->strings_exact = v != 0;
	else if (!strcmp(key, "strings_err"))
		p->strings_err = v;
	else if (!strcmp(key, "strings_distinct"))
		p->strings_distinct = v;
	else if (!strcmp(key, "strings_occurrences"))
		p->strings_occurrences = v;
	else if (!strcmp(key, "strings_min_len"))
		p->strings_min_len = v > HS_STR_MAX_LEN_LIMIT ? 0 : (unsigned)v;
	else if (!strcmp(key, "strings_keep"))
		p->strings_keep = v > HS_PROFILE_KEEP_MAX ? HS_PROFILE_KEEP_MAX : (unsigned)v;
	else if (!strcmp(key, "strings_cut"))
		p->strings_cut = v;
	else if (!strcmp(key, "types"))
		p->types_done = v != 0;
	/* else: a key from a later heapscan; skipped */
	return 0;
}

static int record(struct hs_profile *p, char *line)
{
	char *cur = line;
	const char *type = field(&cur);
	int64_t sv;

	if (!type)
		return -1;
	if (!strcmp(type, "meta"))
		return meta(p, &cur);
	if (!strcmp(type, "class")) {
		const char *name = field(&cur);
		int c = name ? hs_class_parse(name) : -1;
		struct hs_profile_mem m = { 0 };

		if (c < 0 || num(&cur, &m.count) || mem_fields(&cur, &m) || cur)
			return -1;
		p->classes[c] = m;
		return 0;
	}
	if (!strcmp(type, "region")) {
		struct hs_profile_region r = { 0 };
		const char *f;
		int c;

		if (num(&cur, &r.start) || num(&cur, &r.end) || r.end < r.start)
			return -1;
		if (parse_perms(field(&cur), &r.perms))
			return -1;
		f = field(&cur);
		c = f ? hs_class_parse(f) : -1;
		if (c < 0 || mem_fields(&cur, &r.mem))
			return -1;
		r.cls = (enum hs_class)c;
		if (rest_unesc(&cur, &r.path, NULL))
			return -1;
		*hs_profile_add_region(p) = r;
		return 0;
	}
	if (!strcmp(type, "arena")) {
		struct hs_profile_arena a = { 0 };
		const char *kind;

		if (snum(&cur, &sv) || sv < 0 || sv > 1000000 || num(&cur, &a.addr))
			return -1;
		a.idx = (int)sv;
		kind = field(&cur);
		if (!kind || (strcmp(kind, "main") && strcmp(kind, "thread")))
			return -1;
		a.is_main = !strcmp(kind, "main");
		if (num(&cur, &a.system_mem) || num(&cur, &a.inuse_count) ||
		    num(&cur, &a.inuse_bytes) || num(&cur, &a.free_count) ||
		    num(&cur, &a.free_bytes) || cur)
			return -1;
		*hs_profile_add_arena(p) = a;
		return 0;
	}
	if (!strcmp(type, "chunk")) {
		struct hs_profile_chunk c = { 0 };

		if (snum(&cur, &sv) || sv < -1 || sv > 1000000 || num(&cur, &c.size) ||
		    num(&cur, &c.count) || num(&cur, &c.bytes) || cur)
			return -1;
		c.arena = (int)sv;
		*hs_profile_add_chunk(p) = c;
		return 0;
	}
	if (!strcmp(type, "string")) {
		struct hs_profile_string s = { 0 };

		if (num(&cur, &s.count) || num(&cur, &s.len) || num(&cur, &s.bytes))
			return -1;
		if (rest_unesc(&cur, &s.s, &s.stored))
			return -1;
		if (!s.stored || s.stored > s.len) {
			free(s.s);
			return -1;
		}
		*hs_profile_add_string(p) = s;
		return 0;
	}
	if (!strcmp(type, "type")) {
		struct hs_profile_type ty = { 0 };
		const char *kind = field(&cur);

		if (!kind || !kind[0] || num(&cur, &ty.count) || num(&cur, &ty.bytes))
			return -1;
		if (rest_unesc(&cur, &ty.name, NULL))
			return -1;
		if (!ty.name[0]) {
			free(ty.name);
			return -1;
		}
		ty.kind = hs_xstrdup(kind);
		*hs_profile_add_type(p) = ty;
		return 0;
	}
	/* An unknown record type, from a later heapscan: skipped. */
	return 0;
}

bool hs_profile_sniff(const void *head, size_t n)
{
	size_t m = strlen(HS_PROFILE_MAGIC);

	return n > m && !memcmp(head, HS_PROFILE_MAGIC, m) &&
	       ((const char *)head)[m] == ' ';
}

static int cmp_chunk(const void *x, const void *y)
{
	const struct hs_profile_chunk *a = x, *b = y;

	if (a->arena != b->arena)
		return a->arena < b->arena ? -1 : 1;
	return a->size < b->size ? -1 : a->size > b->size;
}

int hs_profile_read(struct hs_profile *p, FILE *in, unsigned *linep)
{
	char *buf = hs_xmalloc(HS_PROFILE_LINE_MAX);
	size_t len, nrec = 0;
	unsigned line = 0;
	bool ended = false;
	char *cur;
	int ret;

	hs_profile_init(p);
	ret = get_line(in, buf, HS_PROFILE_LINE_MAX, &len);
	line = 1;
	if (ret <= 0 && ret != -HS_E_TRUNCATED) {
		ret = ret == 0 || ret == -HS_E_CORRUPT ? -HS_E_FORMAT : ret;
		goto out;
	}
	if (!hs_profile_sniff(buf, strlen(buf))) {
		ret = -HS_E_FORMAT;
		goto out;
	}
	if (ret == -HS_E_TRUNCATED)
		goto out;
	cur = buf + strlen(HS_PROFILE_MAGIC) + 1;
	{
		uint64_t v;

		if (num(&cur, &v) || cur) {
			ret = -HS_E_FORMAT;
			goto out;
		}
		p->version = v > 1000000 ? 1000000 : (unsigned)v;
		if (v != HS_PROFILE_VERSION) {
			ret = -HS_E_VERSION;
			goto out;
		}
	}
	for (;;) {
		ret = get_line(in, buf, HS_PROFILE_LINE_MAX, &len);
		line++;
		if (ret < 0)
			goto out;
		if (ret == 0)
			break;
		if (ended) {
			/* Anything after "end" is not ours. */
			if (len) {
				ret = -HS_E_CORRUPT;
				goto out;
			}
			continue;
		}
		if (!len || buf[0] == '#')
			continue;
		if (!strncmp(buf, "end ", 4)) {
			uint64_t v;

			cur = buf + 4;
			if (num(&cur, &v) || cur || v != nrec) {
				ret = -HS_E_CORRUPT;
				goto out;
			}
			ended = true;
			continue;
		}
		if (++nrec > HS_PROFILE_RECORDS_MAX || record(p, buf) < 0) {
			ret = -HS_E_CORRUPT;
			goto out;
		}
	}
	if (!ended) {
		ret = -HS_E_TRUNCATED;
		goto out;
	}
	ret = 0;
	/* Lookups in the diff expect chunks sorted; a hand-edited file need
	 * not be. */
	if (p->nchunks)
		qsort(p->chunks, p->nchunks, sizeof(*p->chunks), cmp_chunk);
	hs_profile_types_finish(p);
out:
	if (linep)
		*linep = line;
	free(buf);
	return ret;
}
