/* Text and JSON forms of the string-frequency result; see report-strings.h. */
#include "report-strings.h"
#include "report-heap.h"
#include "cli.h"
#include "report.h"
#include "report-python.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define SHOW_MAX 48 /* characters of a string shown in the text table */

int hs_report_strings_where(struct hs_target *t, struct hs_glibc_heap *h,
			    struct hs_str_where *w, struct hs_buf *why)
{
	struct hs_glibc_heap *own = NULL;
	int ret = 0;

	hs_buf_reset(why);
	if (!h) {
		ret = hs_report_heap_open(t, NULL, HS_ARENA_AUTO, &own);
		h = own;
	} else if (!h->layout) {
		ret = -HS_E_UNSUPPORTED;
	} else if (!h->narenas) {
		ret = -HS_E_NOT_FOUND;
	}
	/* HEAPSCAN_WHERE=walk: locations from a walk of every chunk (the
	 * reference the tests compare the default with). */
	if (ret == 0 && getenv("HEAPSCAN_WHERE") && !strcmp(getenv("HEAPSCAN_WHERE"), "walk"))
		ret = hs_str_where_from_glibc_walk(w, h);
	else if (ret == 0)
		ret = hs_str_where_from_glibc(w, h);
	/* A Python process: strings in Python objects are "python". */
	if (ret == 0)
		ret = hs_report_py_where(t, h, w);
	if (ret < 0) {
		if (ret == -HS_E_UNSUPPORTED && h && h->version_minor)
			hs_buf_addf(why, "glibc 2.%u is not supported by the heap walker",
				    h->version_minor);
		else if (ret == -HS_E_UNSUPPORTED)
			hs_buf_adds(why, "no glibc heap found (static binary or another "
				    "allocator)");
		else if (ret == -HS_E_NOT_FOUND)
			hs_buf_adds(why, "glibc's main_arena not found");
		else
			hs_buf_addf(why, "heap walk failed: %s", hs_strerror(ret));
		hs_str_where_release(w);
	}
	hs_glibc_close(own);
	return ret;
}

int hs_report_strings_where_any(struct hs_target *t, const struct hs_report_alloc *ra,
				struct hs_glibc_heap *h, struct hs_str_where *w,
				struct hs_buf *why)
{
	struct hs_report_alloc own;
	struct hs_blocks b;
	int ret = 0;

	hs_buf_reset(why);
	if (!ra) {
		ret = hs_report_alloc_collect(t, &own);
		if (ret < 0)
			return ret;
		ra = &own;
	}
	if (hs_report_alloc_glibc(ra)) {
		ret = hs_report_strings_where(t, h, w, why);
	} else if (hs_report_alloc_blocks(ra, NULL, &b)) {
		ret = hs_str_where_from_blocks(w, &b);
		if (ret == 0 && ra->je && ra->je->truncated)
			w->approximate = true;
		if (ret < 0)
			hs_buf_addf(why, "heap walk failed: %s", hs_strerror(ret));
	} else {
		ret = ra->je_err < 0 ? ra->je_err : -HS_E_UNSUPPORTED;
		hs_buf_addf(why, "the allocator is %s, whose heap heapscan does not walk",
			    hs_alloc_name(ra->ai.kind));
	}
	if (ra == &own)
		hs_report_alloc_release(&own);
	return ret;
}

int hs_report_strings_collect_heap(struct hs_target *t, const struct hs_report_alloc *ra,
				   struct hs_glibc_heap *h, unsigned top, bool release,
				   struct hs_str_result *res)
{
	struct hs_str_ranges r = HS_STR_RANGES_INIT;
	struct hs_str_where w = HS_STR_WHERE_INIT;
	struct hs_buf why = HS_BUF_INIT;
	struct hs_str_opts o;
	int ret;

	memset(res, 0, sizeof(*res));
	hs_str_opts_init(&o);
	o.top = top;
	if (release) {
		o.read_done = hs_cli_read_done;
		o.read_done_ud = t;
	}
	ret = hs_report_strings_where_any(t, ra, h, &w, &why);
	if (ret == -HS_E_INTERRUPTED || ret == -ESRCH)
		goto out;
	if (ret == 0)
		o.where = &w;
	else
		hs_log(HS_LOG_DEBUG, "strings: locations unknown: %s", why.buf);
	hs_str_ranges_from_maps(&r, &t->maps, HS_STR_CLASSES_DEFAULT);
	ret = hs_strings_scan(t, &r, &o, res);
out:
	hs_str_ranges_release(&r);
	hs_str_where_release(&w);
	hs_buf_release(&why);
	return ret;
}

/* The string as a quoted C-like literal, cut at SHOW_MAX characters. */
static void quote(struct hs_buf *sb, const struct hs_str_item *it)
{
	size_t n = it->stored < SHOW_MAX ? it->stored : SHOW_MAX;

	hs_buf_addch(sb, '"');
	for (size_t i = 0; i < n; i++) {
		char c = it->s[i];

		if (c == '"' || c == '\\')
			hs_buf_addch(sb, '\\');
		if (c == '\t')
			hs_buf_adds(sb, "\\t");
		else
			hs_buf_addch(sb, c);
	}
	hs_buf_addch(sb, '"');
	if (n < it->len)
		hs_buf_addf(sb, "... (%" PRIu64 " chars)", it->len);
}

static const char *class_list(struct hs_buf *sb, const struct hs_str_result *res)
{
	bool first = true;

	hs_buf_reset(sb);
	for (unsigned c = 0; c < HS_CLASS_N; c++) {
		if (!res->class_bytes[c])
			continue;
		char b[16];

		hs_buf_addf(sb, "%s%s %s", first ? "" : ", ", hs_class_name(c),
			    hs_fmt_bytes(b, sizeof(b), res->class_bytes[c]));
		first = false;
	}
	if (first)
		hs_buf_adds(sb, "nothing");
	return sb->buf;
}

void hs_report_strings_text(FILE *out, const struct hs_str_result *res,
			    const struct hs_target *t)
{
	struct hs_buf sb = HS_BUF_INIT;
	char b1[16], b2[16], b3[16];

	fprintf(out, "\ntop strings (%s, min-len %u, by %s)%s\n",
		hs_str_encoding_name(res->opts.enc), res->opts.min_len,
		res->opts.by == HS_STR_BY_BYTES ? "bytes" : "count",
		res->exact ? "" : "  [counts are estimates]");
	if (!res->ntop) {
		fprintf(out, "  no strings found\n");
	} else {
		fprintf(out, "  %3s %12s %9s  %-50s  %-20s %s\n", "#",
			res->exact ? "count" : "count<=", "bytes", "string", "classes",
			"where");
	}
	for (size_t i = 0; i < res->ntop; i++) {
		const struct hs_str_item *it = &res->top[i];

		hs_buf_reset(&sb);
		quote(&sb, it);
		fprintf(out, "  %3zu %12" PRIu64 " %9s  %-50s ", i + 1, it->count,
			hs_fmt_bytes(b1, sizeof(b1), it->bytes), sb.buf);
		hs_buf_reset(&sb);
		for (unsigned c = 0; c < HS_CLASS_N; c++)
			if (it->cls_count[c])
				hs_buf_addf(&sb, " %s:%" PRIu64, hs_class_name(c), it->cls_count[c]);
		fprintf(out, "%-21s", sb.buf);
		if (!res->where_known)
			fprintf(out, " unknown");
		for (unsigned l = 0; res->where_known && l < HS_STR_LOC_UNKNOWN; l++)
			if (it->loc_count[l] && (l != HS_STR_LOC_PYTHON || res->where_python))
				fprintf(out, " %s:%" PRIu64, hs_str_loc_name(l), it->loc_count[l]);
		fputc('\n', out);
		fprintf(out, "  %3s %12s", "", "");
		if (it->err)
			fprintf(out, " (at least %" PRIu64 ")", it->count - it->err);
		fprintf(out, " at");
		for (unsigned k = 0; k < it->nsamples; k++)
			fprintf(out, " 0x%" PRIx64, it->samples[k]);
		fputc('\n', out);
	}
	fprintf(out, "  scanned %s in %" PRIu64 " regions (%s)",
		hs_fmt_bytes(b1, sizeof(b1), res->bytes_scanned), res->nranges,
		class_list(&sb, res));
	if (res->unreadable)
		fprintf(out, ", %s unreadable", hs_fmt_bytes(b2, sizeof(b2), res->unreadable));
	fputc('\n', out);
	fprintf(out, "  %" PRIu64 " strings (%s), %s%" PRIu64 " distinct%s; %.3f s, %u jobs, "
		"%.0f MB/s, heapscan memory %s\n",
		res->occurrences, hs_fmt_bytes(b2, sizeof(b2), res->string_bytes),
		res->distinct_exact ? "" : "about ", res->distinct,
		res->distinct_exact ? "" : " (HyperLogLog, +-2%)",
		(double)res->scan_ns / 1e9, res->jobs,
		res->scan_ns ? (double)res->bytes_scanned / ((double)res->scan_ns / 1e9) / 1e6 : 0.0,
		hs_fmt_bytes(b3, sizeof(b3), res->mem_peak));
	if (!res->where_known)
		fprintf(out, "  where: unknown (no malloc heap walked)\n");
	else
		fprintf(out, "  where: in in-use malloc chunks, in free chunks, %sor outside "
			"malloc's chunks%s\n", res->where_python ?
			"in Python objects (pymalloc arenas, str and bytes objects), " : "",
			res->where_approximate ?
			" (approximate: too many free chunks, some counted as in use)" : "");
	if (res->where_heap_problems)
		fprintf(out, "  the glibc heap is corrupt (%" PRIu64 " problem%s in its metadata): "
			"locations may be wrong; 'heapscan heap' names them\n",
			res->where_heap_problems, res->where_heap_problems == 1 ? "" : "s");
	if (res->passes > 1)
		fprintf(out, "  distinct strings exceeded --max-mem: memory was read twice\n");
	if (res->exact)
		fprintf(out, "  counts are exact\n");
	else
		fprintf(out, "  counts are estimated (--max-mem %s reached): each count is over "
			"by at most %" PRIu64 ", and a string not listed occurred at most %"
			PRIu64 " times\n",
			hs_fmt_bytes(b1, sizeof(b1), res->opts.max_mem), res->err_bound,
			res->err_bound);
	if (t && (t->caps & HS_CAP_STOPPABLE)) {
		if (t->flags & HS_TARGET_NO_STOP)
			fprintf(out, "  target not stopped (--no-stop)\n");
		else
			fprintf(out, "  target stopped for %.3f ms\n", (double)t->stop_ns / 1e6);
	}
	hs_buf_release(&sb);
}

void hs_report_strings_json(struct hs_json *j, const struct hs_str_result *res,
			    const struct hs_target *t)
{
	hs_json_obj_begin(j, "summary");
	hs_json_str(j, "encoding", hs_str_encoding_name(res->opts.enc));
	hs_json_u64(j, "min_len", res->opts.min_len);
	hs_json_u64(j, "max_len", res->opts.max_len);
	hs_json_str(j, "by", res->opts.by == HS_STR_BY_BYTES ? "bytes" : "count");
	hs_json_u64(j, "top", res->opts.top);
	hs_json_u64(j, "max_mem", res->opts.max_mem);
	hs_json_u64(j, "chunk", res->opts.chunk);
	hs_json_u64(j, "jobs", res->jobs);
	hs_json_u64(j, "segments", res->nsegments);
	hs_json_u64(j, "regions", res->nranges);
	hs_json_u64(j, "bytes_scanned", res->bytes_scanned);
	hs_json_u64(j, "unreadable_bytes", res->unreadable);
	hs_json_obj_begin(j, "class_bytes");
	for (unsigned c = 0; c < HS_CLASS_N; c++)
		if (res->class_bytes[c])
			hs_json_u64(j, hs_class_name(c), res->class_bytes[c]);
	hs_json_obj_end(j);
	hs_json_u64(j, "occurrences", res->occurrences);
	hs_json_u64(j, "string_bytes", res->string_bytes);
	hs_json_u64(j, "distinct", res->distinct);
	hs_json_bool(j, "distinct_exact", res->distinct_exact);
	hs_json_bool(j, "exact", res->exact);
	hs_json_u64(j, "error_bound", res->err_bound);
	hs_json_double(j, "scan_ms", (double)res->scan_ns / 1e6);
	hs_json_u64(j, "mem_peak", res->mem_peak);
	hs_json_u64(j, "passes", res->passes);
	hs_json_bool(j, "where_known", res->where_known);
	hs_json_bool(j, "where_approximate", res->where_approximate);
	hs_json_u64(j, "heap_problems", res->where_heap_problems);
	if (t) {
		hs_json_bool(j, "stopped", hs_target_holds(t));
		hs_json_double(j, "stop_ms", (double)t->stop_ns / 1e6);
		hs_report_pages_json(j, t);
	}
	hs_json_obj_end(j);

	hs_json_arr_begin(j, "strings");
	for (size_t i = 0; i < res->ntop; i++) {
		const struct hs_str_item *it = &res->top[i];

		hs_json_obj_begin(j, NULL);
		hs_json_strn(j, "string", it->s, it->stored);
		hs_json_u64(j, "length", it->len);
		hs_json_bool(j, "truncated", it->truncated);
		hs_json_u64(j, "count", it->count);
		hs_json_u64(j, "count_min", it->count - it->err);
		hs_json_u64(j, "bytes", it->bytes);
		hs_json_obj_begin(j, "classes");
		for (unsigned c = 0; c < HS_CLASS_N; c++)
			if (it->cls_count[c])
				hs_json_u64(j, hs_class_name(c), it->cls_count[c]);
		hs_json_obj_end(j);
		hs_json_obj_begin(j, "where");
		if (!res->where_known)
			hs_json_u64(j, "unknown", it->count - it->err);
		for (unsigned l = 0; res->where_known && l < HS_STR_LOC_UNKNOWN; l++)
			if (l != HS_STR_LOC_PYTHON || res->where_python)
				hs_json_u64(j, hs_str_loc_name(l), it->loc_count[l]);
		hs_json_obj_end(j);
		hs_json_arr_begin(j, "samples");
		for (unsigned k = 0; k < it->nsamples; k++)
			hs_json_addr(j, NULL, it->samples[k]);
		hs_json_arr_end(j);
		hs_json_obj_end(j);
	}
	hs_json_arr_end(j);
}
