/* The glibc heap report; see report-heap.h. */
#include "report-heap.h"
#include "hs_libc.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

int hs_arena_way_parse(const char *s)
{
	static const char *const names[] = { "auto", "symbol", "disasm", "scan" };

	for (size_t i = 0; i < HS_ARRAY_SIZE(names); i++)
		if (!strcmp(s, names[i]))
			return (int)i;
	return -1;
}

void hs_report_heap_find_arena(struct hs_target *t, struct hs_glibc_opts *go,
			       enum hs_arena_way way)
{
	/* Symbol and disassembly only propose: the walker keeps the first
	 * candidate that passes its arena checks (a core read next to a
	 * different libc on disk gives a wrong symbol, not a wrong walk). */
	if (!go->main_arena && go->ncandidates == 0) {
		hs_addr_t a;
		size_t n = 0;

		if ((way == HS_ARENA_AUTO || way == HS_ARENA_SYMBOL) &&
		    hs_libc_main_arena_symbol(t, &a) == 0) {
			go->candidates[0] = a;
			go->candidate_how[0] = "symbol";
			go->ncandidates = 1;
		}
		/* Both read libc's file on disk: when its symbol is there, the
		 * decoding could only repeat it. */
		if ((way == HS_ARENA_DISASM ||
		     (way == HS_ARENA_AUTO && go->ncandidates == 0)) &&
		    hs_libc_main_arena_disasm(t, go->candidates + go->ncandidates,
					      HS_GLIBC_MAX_CANDIDATES - go->ncandidates,
					      &n) == 0)
			for (size_t i = 0; i < n; i++)
				go->candidate_how[go->ncandidates++] = "disasm";
	}
	if (way == HS_ARENA_SYMBOL || way == HS_ARENA_DISASM)
		go->flags |= HS_GLIBC_NO_SCAN;
}

int hs_report_heap_open(struct hs_target *t, const struct hs_glibc_opts *opts,
			enum hs_arena_way way, struct hs_glibc_heap **out)
{
	struct hs_glibc_opts go;

	if (opts)
		go = *opts;
	else
		memset(&go, 0, sizeof(go));
	hs_report_heap_find_arena(t, &go, way);
	if (hs_interrupted)
		return -HS_E_INTERRUPTED;
	return hs_glibc_open(t, &go, out);
}

int hs_report_heap_collect_way(struct hs_target *t, const struct hs_glibc_opts *opts,
			       enum hs_arena_way way, struct hs_glibc_heap **out)
{
	int ret = hs_report_heap_open(t, opts, way, out);

	if (ret < 0)
		return ret;
	return hs_glibc_analyze(*out);
}

int hs_report_heap_collect(struct hs_target *t, const struct hs_glibc_opts *opts,
			   struct hs_glibc_heap **out)
{
	return hs_report_heap_collect_way(t, opts, HS_ARENA_AUTO, out);
}

void hs_report_heap_error(struct hs_buf *sb, const struct hs_glibc_heap *h, int err)
{
	if (err == -HS_E_UNSUPPORTED && h && h->version_minor)
		hs_buf_addf(sb, "glibc 2.%u is not supported by the heap walker "
			    "(2.17-2.40 are)", h->version_minor);
	else if (err == -HS_E_UNSUPPORTED)
		hs_buf_adds(sb, "no supported glibc found in the target (statically "
			    "linked, another libc, or a core without libc's version and "
			    "a recognisable main_arena)");
	else if (err == -HS_E_NOT_FOUND && h && (h->opts.flags & HS_GLIBC_NO_SCAN))
		hs_buf_addf(sb, "glibc 2.%u found but no main_arena from the chosen "
			    "source (no debug info, or libc's file unreadable)",
			    h->version_minor);
	else if (err == -HS_E_NOT_FOUND && h && h->nproblems)
		hs_buf_addf(sb, "glibc 2.%u found, but its main_arena is corrupt: 0x%llx: %s",
			    h->version_minor, (unsigned long long)h->problems[0].addr,
			    h->problems[0].msg);
	else if (err == -HS_E_NOT_FOUND)
		hs_buf_addf(sb, "glibc 2.%u found but not its main_arena (malloc never "
			    "used, or libc's data unreadable)", h ? h->version_minor : 0);
	else
		hs_buf_addf(sb, "heap walk failed: %s", hs_strerror(err));
}

/* ---- text ---- */

static const char *build_id_hex(char *buf, const struct hs_glibc_ident *id)
{
	size_t n = id->build_id_len < sizeof(id->build_id) ? id->build_id_len
							    : sizeof(id->build_id);

	for (size_t i = 0; i < n; i++)
		sprintf(buf + 2 * i, "%02x", id->build_id[i]);
	buf[2 * n] = '\0';
	return buf;
}

static const char *fb(char *buf, uint64_t n)
{
	return hs_fmt_bytes(buf, 16, n);
}

static void sum_free(const struct hs_glibc_count st[HS_CHUNK_STATE_N],
		     struct hs_glibc_count *fr)
{
	memset(fr, 0, sizeof(*fr));
	for (int k = HS_CHUNK_TCACHE; k <= HS_CHUNK_TOP; k++) {
		fr->count += st[k].count;
		fr->bytes += st[k].bytes;
	}
}

static void text_arena(FILE *out, const struct hs_glibc_arena *a, size_t idx,
		       unsigned flags)
{
	char b1[16], b2[16];
	struct hs_glibc_count fr;

	sum_free(a->st, &fr);
	fprintf(out, "  arena %zu at 0x%" PRIx64 " (%s): %zu heap%s, system %s, "
		"fragmentation %.1f%%\n", idx, a->addr, a->is_main ? "main" : "thread",
		a->nsegs, a->nsegs == 1 ? "" : "s", fb(b1, a->system_mem),
		100.0 * hs_glibc_arena_fragmentation(a));
	if (flags & HS_REPORT_HEAP_DETAIL)
		for (size_t i = 0; i < a->nsegs; i++) {
			const struct hs_glibc_seg *s = &a->segs[i];
			fprintf(out, "    heap 0x%" PRIx64 "-0x%" PRIx64 " (%s)%s%s\n",
				s->start, s->map_end, fb(b1, s->map_end - s->start),
				s->has_top ? ", holds top" : "",
				s->complete ? "" : ", walk incomplete");
		}
	fprintf(out, "    %-10s %10s %10s\n", "", "chunks", "bytes");
	fprintf(out, "    %-10s %10" PRIu64 " %10s\n", "in use",
		a->st[HS_CHUNK_INUSE].count, fb(b1, a->st[HS_CHUNK_INUSE].bytes));
	fprintf(out, "    %-10s %10" PRIu64 " %10s\n", "free", fr.count, fb(b2, fr.bytes));
	for (int k = HS_CHUNK_TCACHE; k <= HS_CHUNK_TOP; k++) {
		if (!a->st[k].count && k == HS_CHUNK_UNBINNED)
			continue;
		fprintf(out, "    %-10s %10" PRIu64 " %10s\n",
			hs_chunk_state_name((enum hs_chunk_state)k), a->st[k].count,
			fb(b1, a->st[k].bytes));
	}
	if (a->st[HS_CHUNK_UNPARSED].count)
		fprintf(out, "    %-10s %10" PRIu64 " %10s\n", "unparsed",
			a->st[HS_CHUNK_UNPARSED].count, fb(b1, a->st[HS_CHUNK_UNPARSED].bytes));
}

void hs_report_heap_text(FILE *out, const struct hs_glibc_heap *h, int err,
			 unsigned top, unsigned flags)
{
	char b1[16], b2[16];
	size_t nshow;

	fprintf(out, "\nglibc heap\n");
	if (err < 0 || !h || !h->analyzed) {
		struct hs_buf sb = HS_BUF_INIT;
		hs_report_heap_error(&sb, h, err < 0 ? err : -HS_E_NOT_FOUND);
		fprintf(out, "  %s; regions and strings only\n", sb.buf);
		hs_buf_release(&sb);
		return;
	}
	if (h->version_minor && h->version_minor_max > h->version_minor)
		fprintf(out, "  glibc 2.%u-2.%u (%s), main_arena 0x%" PRIx64 " (%s)\n",
			h->version_minor, h->version_minor_max, h->version, h->main_arena,
			h->main_arena_how);
	else if (h->version_minor)
		fprintf(out, "  glibc 2.%u (%s), main_arena 0x%" PRIx64 " (%s)\n",
			h->version_minor, h->version, h->main_arena, h->main_arena_how);
	else
		fprintf(out, "  glibc %s (%s), main_arena 0x%" PRIx64 " (%s)\n",
			h->layout->name, h->version, h->main_arena, h->main_arena_how);
	if ((flags & HS_REPORT_HEAP_DETAIL) && h->ident.build_id_len) {
		char id[2 * sizeof(h->ident.build_id) + 1];

		fprintf(out, "  libc build-id %s\n", build_id_hex(id, &h->ident));
	}
	fprintf(out, "  walked %s in %.3f s\n", fb(b1, h->walked_bytes),
		(double)h->walk_ns / 1e9);
	for (size_t i = 0; i < h->narenas; i++)
		text_arena(out, &h->arenas[i], i, flags);
	fprintf(out, "  mmapped chunks: %" PRIu64 ", %s\n", h->mmapped.count,
		fb(b1, h->mmapped.bytes));
	if (flags & HS_REPORT_HEAP_DETAIL)
		for (size_t i = 0; i < h->ntcaches; i++) {
			const struct hs_glibc_tcache *tc = &h->tcaches[i];
			fprintf(out, "  tcache 0x%" PRIx64 " (thread %d): %" PRIu64
				" chunks, %s\n", tc->addr, (int)tc->tid,
				tc->entries.count, fb(b1, tc->entries.bytes));
		}
	nshow = h->nhist < top ? h->nhist : top;
	if (nshow) {
		fprintf(out, "  in-use chunks by size (top %zu of %zu sizes, by bytes):\n",
			nshow, h->nhist);
		fprintf(out, "    %12s %12s %10s  %s\n", "chunk size", "count", "bytes",
			"sample chunk (heapscan show ADDR)");
		for (size_t i = 0; i < nshow; i++) {
			const struct hs_glibc_size_bucket *b = &h->hist[i];
			if (b->size)
				fprintf(out, "    %#12" PRIx64 " %12" PRIu64 " %10s  0x%" PRIx64 "\n",
					b->size, b->count, fb(b2, b->bytes), b->sample);
			else
				fprintf(out, "    %12s %12" PRIu64 " %10s\n", "other",
					b->count, fb(b2, b->bytes));
		}
	}
	if (h->free_set_full)
		fprintf(out, "  note: too many free-list chunks; some free chunks "
			"counted as in use\n");
	if (h->nproblems) {
		size_t n = h->nproblems < HS_GLIBC_MAX_PROBLEMS ? h->nproblems
							       : HS_GLIBC_MAX_PROBLEMS;
		if (!(flags & HS_REPORT_HEAP_DETAIL) && n > 5)
			n = 5;
		fprintf(out, "  problems: %zu (corruption, or a picture torn by --no-stop)\n",
			h->nproblems);
		for (size_t i = 0; i < n; i++)
			fprintf(out, "    0x%" PRIx64 ": %s\n", h->problems[i].addr,
				h->problems[i].msg);
		if (n < h->nproblems)
			fprintf(out, "    ...\n");
	}
}

/* ---- JSON ---- */

static void json_count(struct hs_json *j, const char *key, const struct hs_glibc_count *c)
{
	hs_json_obj_begin(j, key);
	hs_json_u64(j, "count", c->count);
	hs_json_u64(j, "bytes", c->bytes);
	hs_json_obj_end(j);
}

static void json_states(struct hs_json *j, const char *key,
			const struct hs_glibc_count st[HS_CHUNK_STATE_N])
{
	hs_json_obj_begin(j, key);
	for (int k = 0; k < HS_CHUNK_STATE_N; k++)
		json_count(j, hs_chunk_state_name((enum hs_chunk_state)k), &st[k]);
	hs_json_obj_end(j);
}

void hs_report_heap_json(struct hs_json *j, const struct hs_glibc_heap *h, int err,
			 unsigned top, unsigned flags)
{
	struct hs_glibc_count fr;
	char ver[32];

	(void)flags;
	hs_json_obj_begin(j, "heap");
	if (h && h->version_minor) {
		unsigned hi = h->version_minor_max > h->version_minor ? h->version_minor_max
								       : h->version_minor;

		/* "2.36", or "2.36-2.37" when the evidence allows both */
		if (hi > h->version_minor)
			snprintf(ver, sizeof(ver), "2.%u-2.%u", h->version_minor, hi);
		else
			snprintf(ver, sizeof(ver), "2.%u", h->version_minor);
		hs_json_str(j, "glibc_version", ver);
		snprintf(ver, sizeof(ver), "2.%u", h->version_minor);
		hs_json_str(j, "glibc_version_min", ver);
		snprintf(ver, sizeof(ver), "2.%u", hi);
		hs_json_str(j, "glibc_version_max", ver);
		hs_json_str(j, "glibc_version_source", h->version_source);
		hs_json_str(j, "glibc_banner", h->version);
	} else {
		hs_json_null(j, "glibc_version");
		if (h && h->layout)
			hs_json_str(j, "glibc_banner", h->version);
	}
	if (h && h->ident.build_id_len) {
		char id[2 * sizeof(h->ident.build_id) + 1];

		hs_json_str(j, "libc_build_id", build_id_hex(id, &h->ident));
	}
	if (err < 0 || !h || !h->analyzed) {
		struct hs_buf sb = HS_BUF_INIT;
		hs_report_heap_error(&sb, h, err < 0 ? err : -HS_E_NOT_FOUND);
		hs_json_bool(j, "supported", err != -HS_E_UNSUPPORTED);
		hs_json_str(j, "error", sb.buf);
		hs_buf_release(&sb);
		hs_json_obj_end(j);
		return;
	}
	hs_json_bool(j, "supported", true);
	hs_json_str(j, "layout", h->layout->name);
	hs_json_addr(j, "main_arena", h->main_arena);
	hs_json_str(j, "main_arena_source", h->main_arena_how);
	if (h->mp)
		hs_json_addr(j, "mp", h->mp);
	else
		hs_json_null(j, "mp");
	hs_json_u64(j, "walked_bytes", h->walked_bytes);
	hs_json_double(j, "walk_seconds", (double)h->walk_ns / 1e9);
	hs_json_bool(j, "free_set_full", h->free_set_full);
	hs_json_arr_begin(j, "arenas");
	for (size_t i = 0; i < h->narenas; i++) {
		const struct hs_glibc_arena *a = &h->arenas[i];

		hs_json_obj_begin(j, NULL);
		hs_json_addr(j, "addr", a->addr);
		hs_json_bool(j, "main", a->is_main);
		hs_json_u64(j, "system_mem", a->system_mem);
		hs_json_addr(j, "top", a->top);
		hs_json_u64(j, "top_size", a->top_size);
		hs_json_arr_begin(j, "heaps");
		for (size_t k = 0; k < a->nsegs; k++) {
			const struct hs_glibc_seg *s = &a->segs[k];
			hs_json_obj_begin(j, NULL);
			hs_json_addr(j, "heap", s->heap);
			hs_json_addr(j, "first_chunk", s->start);
			hs_json_addr(j, "end", s->map_end);
			hs_json_bool(j, "holds_top", s->has_top);
			hs_json_bool(j, "complete", s->complete);
			hs_json_obj_end(j);
		}
		hs_json_arr_end(j);
		json_count(j, "in_use", &a->st[HS_CHUNK_INUSE]);
		sum_free(a->st, &fr);
		json_count(j, "free", &fr);
		json_states(j, "chunks", a->st);
		hs_json_double(j, "fragmentation", hs_glibc_arena_fragmentation(a));
		hs_json_obj_end(j);
	}
	hs_json_arr_end(j);
	json_count(j, "mmapped", &h->mmapped);
	json_states(j, "totals", h->totals);
	hs_json_arr_begin(j, "tcaches");
	for (size_t i = 0; i < h->ntcaches; i++) {
		hs_json_obj_begin(j, NULL);
		hs_json_addr(j, "addr", h->tcaches[i].addr);
		hs_json_i64(j, "tid", h->tcaches[i].tid);
		hs_json_u64(j, "count", h->tcaches[i].entries.count);
		hs_json_u64(j, "bytes", h->tcaches[i].entries.bytes);
		hs_json_obj_end(j);
	}
	hs_json_arr_end(j);
	hs_json_u64(j, "sizes", h->nhist);
	hs_json_arr_begin(j, "histogram");
	for (size_t i = 0; i < h->nhist && i < top; i++) {
		hs_json_obj_begin(j, NULL);
		if (h->hist[i].size)
			hs_json_u64(j, "size", h->hist[i].size);
		else
			hs_json_null(j, "size");
		hs_json_u64(j, "count", h->hist[i].count);
		hs_json_u64(j, "bytes", h->hist[i].bytes);
		if (h->hist[i].size)
			hs_json_addr(j, "sample", h->hist[i].sample);
		hs_json_obj_end(j);
	}
	hs_json_arr_end(j);
	hs_json_u64(j, "problems_total", h->nproblems);
	hs_json_arr_begin(j, "problems");
	for (size_t i = 0; i < h->nproblems && i < HS_GLIBC_MAX_PROBLEMS; i++) {
		hs_json_obj_begin(j, NULL);
		hs_json_addr(j, "addr", h->problems[i].addr);
		hs_json_str(j, "message", h->problems[i].msg);
		hs_json_obj_end(j);
	}
	hs_json_arr_end(j);
	hs_json_obj_end(j);
}

int hs_report_heap_section(struct hs_target *t, FILE *out, struct hs_json *j,
			   unsigned top)
{
	struct hs_glibc_heap *h = NULL;
	int ret = hs_report_heap_collect(t, NULL, &h);

	if (j)
		hs_report_heap_json(j, h, ret, top, 0);
	else
		hs_report_heap_text(out, h, ret, top, 0);
	hs_glibc_close(h);
	if (ret == -ESRCH || ret == -HS_E_INTERRUPTED)
		return ret;
	return 0;
}
