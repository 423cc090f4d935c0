/* Text and JSON forms of a growth diff; see report-growth.h. */
#include "report-growth.h"
#include "report-python.h"
#include "report-heap.h"
#include "cli.h"
#include "hs_symbols.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SHOW_MAX 60

static void quote(struct hs_buf *sb, const char *s, size_t n, uint64_t len)
{
	size_t m = n < SHOW_MAX ? n : SHOW_MAX;

	hs_buf_addch(sb, '"');
	for (size_t i = 0; i < m; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\')
			hs_buf_addf(sb, "\\%c", c);
		else if (c < 0x20 || c > 0x7e)
			hs_buf_addf(sb, "\\x%02x", c);
		else
			hs_buf_addch(sb, (char)c);
	}
	hs_buf_addch(sb, '"');
	if (m < len)
		hs_buf_addf(sb, "... (%" PRIu64 " chars)", len);
}

static const char *arena_kind(const struct hs_growth_item *it)
{
	return it->arena < 0 ? "mmapped" : it->arena_main ? "main" : "thread";
}

void hs_report_growth_name(struct hs_buf *sb, const struct hs_growth_item *it)
{
	switch (it->kind) {
	case HS_GROWTH_CLASS:
		hs_buf_adds(sb, hs_class_name(it->cls));
		break;
	case HS_GROWTH_REGION:
		hs_buf_addf(sb, "%s 0x%" PRIx64 "-0x%" PRIx64 " (%s)%s",
			    it->path && it->path[0] ? it->path : "[anon]", it->start,
			    it->end, hs_class_name(it->cls),
			    (it->flags & HS_GI_NEW) ? " new" :
			    (it->flags & HS_GI_GONE) ? " gone" : "");
		break;
	case HS_GROWTH_CHUNK:
		if (it->arena < 0)
			hs_buf_adds(sb, "mmapped chunks");
		else
			hs_buf_addf(sb, "%s arena 0x%" PRIx64, arena_kind(it), it->arena_addr);
		if (it->size)
			hs_buf_addf(sb, " size 0x%" PRIx64, it->size);
		else
			hs_buf_adds(sb, " other sizes");
		break;
	case HS_GROWTH_STRING:
		quote(sb, it->s, it->stored, it->len);
		break;
	case HS_GROWTH_TYPE:
		hs_buf_adds(sb, it->s);
		if (it->path && strcmp(it->path, "python"))
			hs_buf_addf(sb, " (%s)", it->path);
		if (it->flags & (HS_GI_NEW | HS_GI_GONE))
			hs_buf_adds(sb, (it->flags & HS_GI_NEW) ? " new" : " gone");
		break;
	default:
		hs_buf_adds(sb, "?");
	}
}

static const char *sbytes(char *b, int64_t v)
{
	char t[16];

	hs_fmt_bytes(t, sizeof(t), (uint64_t)(v < 0 ? -v : v));
	snprintf(b, 24, "%s%s", v < 0 ? "-" : "+", t);
	return b;
}

static bool counted(const struct hs_growth_item *it)
{
	return it->kind == HS_GROWTH_CHUNK || it->kind == HS_GROWTH_STRING ||
	       it->kind == HS_GROWTH_TYPE;
}

static void count_str(char *b, size_t n, uint64_t v, bool cut)
{
	snprintf(b, n, "%s%" PRIu64, cut ? "<=" : "", v);
}

static void ratio_str(char *b, size_t n, const struct hs_growth_item *it)
{
	if (it->ratio > 0)
		snprintf(b, n, "x%.2f", it->ratio);
	else if (it->dbytes > 0)
		snprintf(b, n, "new");
	else
		snprintf(b, n, "-");
}

static double per_hour(const struct hs_diff *d, int64_t v)
{
	return d->elapsed_s > 0 ? (double)v * 3600.0 / d->elapsed_s : 0;
}

static void text_item(FILE *out, const struct hs_diff *d, const struct hs_growth_item *it,
		      unsigned flags)
{
	struct hs_buf name = HS_BUF_INIT;
	char b1[24], b2[24], b3[24], c1[32], c2[32], r[24];

	hs_report_growth_name(&name, it);
	ratio_str(r, sizeof(r), it);
	if (counted(it)) {
		count_str(c1, sizeof(c1), it->count_a, it->flags & HS_GI_BEFORE_CUT);
		count_str(c2, sizeof(c2), it->count_b, it->flags & HS_GI_AFTER_CUT);
		fprintf(out, "  %12s %12s %+12" PRId64 " %9s %7s",
			c1, c2, it->dcount, sbytes(b3, it->dbytes), r);
	} else {
		fprintf(out, "  %12s %12s %12s %9s %7s",
			hs_fmt_bytes(b1, sizeof(b1), it->bytes_a),
			hs_fmt_bytes(b2, sizeof(b2), it->bytes_b), "",
			sbytes(b3, it->dbytes), r);
	}
	if (flags & HS_REPORT_GROWTH_RATE)
		fprintf(out, " %9s/h", sbytes(b1, (int64_t)per_hour(d, it->dbytes)));
	if (it->group >= 0)
		fprintf(out, "  [g%d]", it->group + 1);
	fprintf(out, "  %s\n", name.buf);
	hs_buf_release(&name);
}

static const char *const kind_titles[HS_GROWTH_KIND_N] = {
	"region classes", "regions", "in-use chunk sizes per arena", "strings",
	"objects by type",
};

static void text_section(FILE *out, const struct hs_diff *d, size_t from, size_t to,
			 unsigned top, unsigned flags, const char *what)
{
	for (int k = 0; k < HS_GROWTH_KIND_N; k++) {
		unsigned shown = 0, total = 0;

		for (size_t i = from; i < to; i++)
			total += d->items[i].kind == (enum hs_growth_kind)k;
		if (!total)
			continue;
		fprintf(out, "\n%s %s (%u):\n", kind_titles[k], what, total);
		fprintf(out, "  %12s %12s %12s %9s %7s%s  %s\n",
			k == HS_GROWTH_CHUNK || k == HS_GROWTH_STRING ||
			k == HS_GROWTH_TYPE ? "count before" :
			d->by_rss ? "rss before" : "size before",
			"after", k == HS_GROWTH_CHUNK || k == HS_GROWTH_STRING ||
			k == HS_GROWTH_TYPE ? "delta" : "",
			"bytes", "ratio", (flags & HS_REPORT_GROWTH_RATE) ? "      rate" : "",
			"what");
		for (size_t i = from; i < to; i++) {
			if (d->items[i].kind != (enum hs_growth_kind)k)
				continue;
			if (top && shown >= top)
				break;
			text_item(out, d, &d->items[i], flags);
			shown++;
		}
		if (shown < total)
			fprintf(out, "  ... %u more\n", total - shown);
	}
}

void hs_report_growth_text(FILE *out, const struct hs_diff *d, unsigned top,
			   unsigned flags)
{
	const char *w = d->warnings.buf;

	while (*w) {
		const char *nl = strchr(w, '\n');
		size_t n = nl ? (size_t)(nl - w) : strlen(w);

		fprintf(out, "  warning: %.*s\n", (int)n, w);
		w += n + (nl ? 1 : 0);
	}
	fprintf(out, "  compared by %s; elapsed %.1f s; correlation tolerance %.0f%%\n",
		d->by_rss ? "Rss" : "Size (no smaps)", d->elapsed_s,
		d->opts.tolerance * 100);
	if (!d->ngrowth)
		fprintf(out, "\nno growth\n");
	else
		text_section(out, d, 0, d->ngrowth, top, flags, "that grew");
	if (d->ngroups) {
		fprintf(out, "\ncorrelated growth (grew by the same count or at the same "
			"rate, within %.0f%%: likely one leaking record type):\n",
			d->opts.tolerance * 100);
		for (size_t g = 0; g < d->ngroups; g++) {
			const struct hs_growth_group *gr = &d->groups[g];
			char b[24], how[64];

			if (gr->dcount_min == gr->dcount_max)
				snprintf(how, sizeof(how), "%+" PRId64 " each", gr->dcount_min);
			else if (!gr->by_factor)
				snprintf(how, sizeof(how), "%+" PRId64 "..%+" PRId64 ", the same count",
					 gr->dcount_min, gr->dcount_max);
			else
				snprintf(how, sizeof(how), "x%.2f..x%.2f, the same rate",
					 gr->ratio_min, gr->ratio_max);
			/* Strings live inside chunks: bytes are the chunks', or
			 * the strings' when no chunk size is in the group. */
			fprintf(out, "  g%zu: %zu items, %s; %s in %s\n", g + 1, gr->n, how,
				sbytes(b, gr->dbytes),
				gr->bytes_of == HS_GROWTH_CHUNK ? "chunks" : "strings");
			for (size_t m = 0; m < gr->n; m++) {
				const struct hs_growth_item *it = &d->items[gr->items[m]];
				struct hs_buf name = HS_BUF_INIT;
				char r[24];

				hs_report_growth_name(&name, it);
				ratio_str(r, sizeof(r), it);
				fprintf(out, "      %-6s %+12" PRId64 " %9s %7s  %s\n",
					hs_growth_kind_name(it->kind), it->dcount,
					sbytes(b, it->dbytes), r, name.buf);
				hs_buf_release(&name);
			}
		}
	}
	if (!(flags & HS_REPORT_GROWTH_NO_SHRINK) && d->ngrowth < d->nitems)
		text_section(out, d, d->ngrowth, d->nitems, top, flags, "that shrank");
}

/* ---- JSON ---- */

static void json_item(struct hs_json *j, const struct hs_diff *d,
		      const struct hs_growth_item *it, unsigned flags)
{
	hs_json_obj_begin(j, NULL);
	hs_json_str(j, "kind", hs_growth_kind_name(it->kind));
	switch (it->kind) {
	case HS_GROWTH_CLASS:
		hs_json_str(j, "class", hs_class_name(it->cls));
		break;
	case HS_GROWTH_REGION:
		hs_json_addr(j, "start", it->start);
		hs_json_addr(j, "end", it->end);
		hs_json_str(j, "path", it->path ? it->path : "");
		hs_json_str(j, "class", hs_class_name(it->cls));
		hs_json_bool(j, "new", it->flags & HS_GI_NEW);
		hs_json_bool(j, "gone", it->flags & HS_GI_GONE);
		break;
	case HS_GROWTH_CHUNK:
		hs_json_str(j, "arena", arena_kind(it));
		if (it->arena >= 0) {
			hs_json_u64(j, "arena_index", (uint64_t)it->arena);
			hs_json_addr(j, "arena_addr", it->arena_addr);
		}
		hs_json_u64(j, "size", it->size);
		break;
	case HS_GROWTH_STRING:
		hs_json_strn(j, "string", it->s, it->stored);
		hs_json_u64(j, "length", it->len);
		break;
	case HS_GROWTH_TYPE:
		hs_json_str(j, "type", it->s);
		hs_json_str(j, "type_kind", it->path ? it->path : "");
		hs_json_bool(j, "new", it->flags & HS_GI_NEW);
		hs_json_bool(j, "gone", it->flags & HS_GI_GONE);
		break;
	default:
		break;
	}
	if (counted(it)) {
		hs_json_u64(j, "count_before", it->count_a);
		hs_json_u64(j, "count_after", it->count_b);
		hs_json_i64(j, "delta_count", it->dcount);
		hs_json_bool(j, "before_below_cut", it->flags & HS_GI_BEFORE_CUT);
		hs_json_bool(j, "after_below_cut", it->flags & HS_GI_AFTER_CUT);
	}
	hs_json_u64(j, "bytes_before", it->bytes_a);
	hs_json_u64(j, "bytes_after", it->bytes_b);
	hs_json_i64(j, "delta_bytes", it->dbytes);
	if (it->ratio > 0)
		hs_json_double(j, "ratio", it->ratio);
	else
		hs_json_null(j, "ratio");
	if (flags & HS_REPORT_GROWTH_RATE)
		hs_json_double(j, "bytes_per_hour", per_hour(d, it->dbytes));
	if (it->group >= 0)
		hs_json_u64(j, "group", (uint64_t)it->group);
	else
		hs_json_null(j, "group");
	hs_json_obj_end(j);
}

static void json_items(struct hs_json *j, const char *key, const struct hs_diff *d,
		       size_t from, size_t to, unsigned top, unsigned flags)
{
	unsigned shown[HS_GROWTH_KIND_N] = { 0 };

	hs_json_arr_begin(j, key);
	for (size_t i = from; i < to; i++) {
		const struct hs_growth_item *it = &d->items[i];

		if (top && shown[it->kind] >= top)
			continue;
		shown[it->kind]++;
		json_item(j, d, it, flags);
	}
	hs_json_arr_end(j);
}

void hs_report_growth_json(struct hs_json *j, const struct hs_diff *d, unsigned top,
			   unsigned flags)
{
	const char *w = d->warnings.buf;

	hs_json_str(j, "compared_by", d->by_rss ? "rss" : "size");
	hs_json_double(j, "elapsed_s", d->elapsed_s);
	hs_json_double(j, "tolerance", d->opts.tolerance);
	hs_json_arr_begin(j, "warnings");
	while (*w) {
		const char *nl = strchr(w, '\n');
		size_t n = nl ? (size_t)(nl - w) : strlen(w);

		hs_json_strn(j, NULL, w, n);
		w += n + (nl ? 1 : 0);
	}
	hs_json_arr_end(j);
	json_items(j, "growth", d, 0, d->ngrowth, top, flags);
	if (!(flags & HS_REPORT_GROWTH_NO_SHRINK))
		json_items(j, "shrinkage", d, d->ngrowth, d->nitems, top, flags);
	hs_json_arr_begin(j, "groups");
	for (size_t g = 0; g < d->ngroups; g++) {
		const struct hs_growth_group *gr = &d->groups[g];

		hs_json_obj_begin(j, NULL);
		hs_json_str(j, "by", gr->by_factor ? "factor" : "count");
		hs_json_i64(j, "delta_count", gr->dcount);
		hs_json_i64(j, "delta_count_min", gr->dcount_min);
		hs_json_i64(j, "delta_count_max", gr->dcount_max);
		hs_json_i64(j, "delta_bytes", gr->dbytes);
		hs_json_str(j, "bytes_of", gr->bytes_of == HS_GROWTH_CHUNK ? "chunks" : "strings");
		hs_json_arr_begin(j, "items");
		for (size_t m = 0; m < gr->n; m++)
			json_item(j, d, &d->items[gr->items[m]], flags);
		hs_json_arr_end(j);
		hs_json_obj_end(j);
	}
	hs_json_arr_end(j);
}

void hs_report_profile_json(struct hs_json *j, const char *key,
			    const struct hs_profile *p)
{
	hs_json_obj_begin(j, key);
	hs_json_str(j, "source", p->source);
	hs_json_str(j, "kind", p->kind);
	hs_json_u64(j, "pid", (uint64_t)p->pid);
	hs_json_str(j, "exe", p->exe);
	hs_json_str(j, "heapscan_version", p->heapscan_version);
	hs_json_u64(j, "time_ns", p->time_ns);
	hs_json_double(j, "stop_ms", (double)p->stop_ns / 1e6);
	hs_json_double(j, "build_ms", (double)p->build_ns / 1e6);
	hs_json_bool(j, "partial", p->partial);
	if (p->heap_error[0])
		hs_json_str(j, "heap_error", p->heap_error);
	else
		hs_json_null(j, "heap_error");
	hs_json_u64(j, "strings_kept", p->nstrings);
	hs_json_u64(j, "strings_cut", p->strings_cut);
	hs_json_obj_end(j);
}

void hs_report_profile_text(FILE *out, const char *label, const struct hs_profile *p)
{
	char when[64] = "?";
	time_t s = (time_t)(p->time_ns / 1000000000ull);
	struct tm tm;

	if (p->time_ns && localtime_r(&s, &tm))
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
	fprintf(out, "  %s %s (%s, pid %d) at %s, exe %s", label, p->source,
		p->kind, (int)p->pid, when, p->exe[0] ? p->exe : "?");
	if (!strcmp(p->kind, "live"))
		fprintf(out, ", stopped %.3f ms", (double)p->stop_ns / 1e6);
	if (p->strings_cut)
		fprintf(out, ", strings cut at %" PRIu64, p->strings_cut);
	fputc('\n', out);
}

/* ---- loading ---- */

/* A Python process: its objects by type into rp (nothing for another
 * process), and the arenas' mappings classed "python". */
static int py_census(struct hs_target *t, const struct hs_glibc_opts *go,
		     struct hs_report_py *rp)
{
	struct hs_glibc_heap *h = NULL;
	int ret;

	/* go NULL: not a glibc heap, objects over 512 bytes are not counted. */
	if (go && hs_glibc_open(t, go, &h) < 0) {
		hs_glibc_close(h);
		h = NULL;
	}
	ret = hs_report_py_collect(t, h, rp);
	hs_glibc_close(h);
	if (ret == 0)
		hs_report_py_classify(t, rp);
	return ret;
}

int hs_growth_profile_collect(struct hs_target *t, const struct hs_profile_opts *po,
			      struct hs_profile *p)
{
	struct hs_profile_opts o;
	struct hs_glibc_opts go;
	struct hs_report_alloc ra;
	struct hs_blocks blocks;
	char unwalked[96] = "";
	struct hs_report_py rp;
	int ret;

	if (po)
		o = *po;
	else
		memset(&o, 0, sizeof(o));
	memset(&go, 0, sizeof(go));
	/* The allocator's heap: jemalloc's blocks, or glibc's. */
	memset(&rp, 0, sizeof(rp));
	ret = hs_report_alloc_collect(t, &ra);
	if (ret == 0 && !hs_report_alloc_glibc(&ra)) {
		if (hs_report_alloc_blocks(&ra, NULL, &blocks)) {
			o.blocks = &blocks;
		} else if (!(o.flags & HS_PROFILE_NO_HEAP)) {
			o.flags |= HS_PROFILE_NO_HEAP;
			snprintf(unwalked, sizeof(unwalked), "the allocator is %s; heapscan "
				 "does not walk its heap", hs_alloc_name(ra.ai.kind));
		}
	} else if (ret == 0) {
		hs_report_heap_find_arena(t, &go, HS_ARENA_AUTO);
		o.glibc = &go;
	}
	/* A Python process's objects, with the glibc heap for the large ones. */
	if (ret == 0 && !(o.flags & HS_PROFILE_NO_HEAP))
		ret = py_census(t, o.glibc, &rp);
	if (ret == 0)
		ret = hs_profile_build(t, &o, p);
	if (ret == 0 && unwalked[0]) {
		free(p->heap_error);
		p->heap_error = hs_xstrdup(unwalked);
	}
	if (ret == 0 && rp.py && !rp.err)
		hs_profile_add_census(p, &rp.census);
	hs_report_py_release(&rp);
	hs_report_alloc_release(&ra);
	return ret;
}

int hs_growth_profile_target(struct hs_target *t, const struct hs_profile_opts *po,
			     struct hs_profile *p)
{
	uint64_t stop0 = t->stop_ns;
	int ret;

	hs_profile_init(p);
	if (!(t->state & HS_TSTATE_SUSPENDED)) {
		ret = hs_target_suspend(t);
		if (ret < 0) {
			hs_cli_err("cannot stop %s: %s", t->source, hs_strerror(ret));
			return HS_EXIT_FATAL;
		}
	}
	hs_cli_test_hold();
	hs_profile_release(p);
	ret = hs_growth_profile_collect(t, po, p);
	(void)hs_target_resume(t);
	p->stop_ns = t->stop_ns - stop0;
	if (ret < 0) {
		if (ret == -HS_E_INTERRUPTED || hs_interrupted)
			hs_cli_err_interrupted(NULL);
		else if (hs_cli_gone(t, ret))
			hs_cli_err_gone(t);
		else
			hs_cli_err("cannot profile %s: %s", t->source, hs_strerror(ret));
		return HS_EXIT_FATAL;
	}
	return 0;
}

/* fopen(path, "rb") for a regular file only: O_NONBLOCK so that a FIFO
 * cannot block the open; anything else fails with EINVAL. */
static FILE *open_regular(const char *path)
{
	struct stat sb;
	FILE *f;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);

	if (fd < 0)
		return NULL;
	if (fstat(fd, &sb)) {
		int e = errno;

		close(fd);
		errno = e;
		return NULL;
	}
	if (!S_ISREG(sb.st_mode)) {
		close(fd);
		errno = S_ISDIR(sb.st_mode) ? EISDIR : EINVAL;
		return NULL;
	}
	f = fdopen(fd, "rb");
	if (!f)
		close(fd);
	return f;
}

int hs_growth_load(const char *path, const char *exe, const struct hs_profile_opts *po,
		   struct hs_profile *p)
{
	char head[64];
	size_t n;
	FILE *f;
	int ret;

	hs_profile_init(p);
	f = open_regular(path);
	if (!f) {
		hs_cli_err("cannot open '%s': %s", path,
			   errno == EINVAL ? "not a regular file" : strerror(errno));
		return HS_EXIT_FATAL;
	}
	n = fread(head, 1, sizeof(head), f);
	if (hs_profile_sniff(head, n)) {
		unsigned line = 0;

		rewind(f);
		hs_profile_release(p);
		ret = hs_profile_read(p, f, &line);
		fclose(f);
		if (ret == -HS_E_VERSION) {
			hs_cli_err("'%s' is a heapscan profile of version %u; this heapscan "
				   "reads version %d", path, p->version, HS_PROFILE_VERSION);
			return HS_EXIT_FATAL;
		}
		if (ret == -HS_E_TRUNCATED) {
			hs_cli_err("profile '%s' is truncated (line %u)", path, line);
			return HS_EXIT_FATAL;
		}
		if (ret < 0) {
			hs_cli_err("cannot read profile '%s' (line %u): %s", path, line,
				   hs_strerror(ret));
			return HS_EXIT_FATAL;
		}
		return 0;
	}
	fclose(f);
	if (n >= 4 && !memcmp(head, "\177ELF", 4)) {
		struct hs_target *t = NULL;

		ret = hs_target_open_core(path, exe, &t);
		if (ret < 0) {
			hs_cli_err("cannot read core '%s': %s", path, hs_strerror(ret));
			return HS_EXIT_FATAL;
		}
		hs_profile_release(p); /* profile_target initialises it */
		ret = hs_growth_profile_target(t, po, p);
		hs_target_close(t);
		return ret;
	}
	hs_cli_err("'%s' is neither a heapscan profile nor a core file", path);
	return HS_EXIT_FATAL;
}
