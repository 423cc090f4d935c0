/* The malloc heap report (glibc's, jemalloc's, or the allocator named);
 * see report-heap.h. */
#include "report-heap.h"
#include "report.h"
#include "hs_libc.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
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
			    "(2.12-2.40 are)", h->version_minor);
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
	if (a->locked)
		fprintf(out, "    mutex held: a thread was inside malloc's code (malloc, free, "
			"...) when this was taken; its free lists may be mid-update\n");
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
	hs_report_problems_text(out, h->problems, HS_GLIBC_MAX_PROBLEMS, h->nproblems,
				(flags & HS_REPORT_HEAP_DETAIL) ? HS_GLIBC_MAX_PROBLEMS : 5);
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

static void json_glibc(struct hs_json *j, const struct hs_report_alloc *ra,
		       const struct hs_glibc_heap *h, int err, unsigned top);

void hs_report_heap_json(struct hs_json *j, const struct hs_glibc_heap *h, int err,
			 unsigned top, unsigned flags)
{
	(void)flags;
	json_glibc(j, NULL, h, err, top);
}

static void json_glibc(struct hs_json *j, const struct hs_report_alloc *ra,
		       const struct hs_glibc_heap *h, int err, unsigned top)
{
	struct hs_glibc_count fr;
	char ver[32];

	hs_json_obj_begin(j, "heap");
	/* A glibc heap found says glibc, whatever detection guessed. */
	hs_json_str(j, "allocator", (h && h->layout && h->narenas) || !ra
				    ? "glibc" : hs_alloc_name(ra->ai.kind));
	if (ra && ra->ai.module[0])
		hs_json_str(j, "allocator_module", ra->ai.module);
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
		hs_json_bool(j, "mutex_held", a->locked);
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
	hs_report_problems_json(j, h->problems, HS_GLIBC_MAX_PROBLEMS, h->nproblems);
	hs_json_obj_end(j);
}

int hs_report_heap_section(struct hs_target *t, FILE *out, struct hs_json *j,
			   unsigned top)
{
	struct hs_glibc_heap *h = NULL;
	struct hs_report_alloc ra;
	int ret = hs_report_alloc_collect(t, &ra);

	if (ret == 0 && hs_report_alloc_glibc(&ra))
		ret = hs_report_heap_collect(t, NULL, &h);
	if (j)
		hs_report_heap_json_any(j, &ra, h, ret, top, 0);
	else
		hs_report_heap_text_any(out, &ra, h, ret, top, 0);
	hs_glibc_close(h);
	hs_report_alloc_release(&ra);
	if (ret == -ESRCH || ret == -HS_E_INTERRUPTED)
		return ret;
	return 0;
}

/* ---- any allocator ---- */

int hs_report_alloc_collect(struct hs_target *t, struct hs_report_alloc *ra)
{
	struct hs_jemalloc_opts jo;

	memset(ra, 0, sizeof(*ra));
	hs_alloc_detect(t, &ra->ai);
	if (ra->ai.kind != HS_ALLOC_JEMALLOC)
		return 0;
	if (hs_interrupted)
		return -HS_E_INTERRUPTED;
	ra->je_err = hs_alloc_jemalloc_find(t, &ra->ai, &ra->jf);
	if (ra->je_err < 0)
		return 0;
	memset(&jo, 0, sizeof(jo));
	for (size_t i = 0; i < ra->jf.nrtree && i < HS_JE_MAX_CANDIDATES; i++) {
		jo.rtree[i] = ra->jf.rtree[i];
		jo.rtree_how[i] = ra->jf.rtree_how;
		jo.nrtree++;
	}
	jo.have_tpoff = ra->jf.have_tpoff;
	jo.tsd_tpoff = ra->jf.tsd_tpoff;
	jo.tsd_size = ra->jf.tsd_size;
	jo.tsd_state_off = ra->jf.tsd_state_off;
	jo.skip = (const hs_addr_t(*)[2])ra->jf.bss;
	jo.nskip = ra->jf.nbss;
	ra->je_err = hs_jemalloc_open(t, &jo, &ra->je);
	if (ra->je_err == -ESRCH || ra->je_err == -HS_E_INTERRUPTED)
		return ra->je_err;
	return 0;
}

void hs_report_alloc_release(struct hs_report_alloc *ra)
{
	if (!ra)
		return;
	hs_jemalloc_close(ra->je);
	ra->je = NULL;
	hs_alloc_jemalloc_release(&ra->jf);
}

bool hs_report_alloc_glibc(const struct hs_report_alloc *ra)
{
	return !ra || ra->ai.kind == HS_ALLOC_GLIBC || ra->ai.kind == HS_ALLOC_UNKNOWN;
}

bool hs_report_alloc_blocks(const struct hs_report_alloc *ra, struct hs_glibc_heap *h,
			    struct hs_blocks *b)
{
	if (ra && ra->je) {
		hs_blocks_jemalloc(b, ra->je);
		return true;
	}
	if (h && h->layout && h->narenas) {
		hs_blocks_glibc(b, h);
		return true;
	}
	return false;
}

/* Why the heap of ra is not walked (ra not glibc). */
static void alloc_error(struct hs_buf *sb, const struct hs_report_alloc *ra)
{
	const char *name = hs_alloc_name(ra->ai.kind);

	if (ra->ai.kind == HS_ALLOC_JEMALLOC && ra->je_err == -HS_E_NOT_FOUND)
		hs_buf_addf(sb, "jemalloc found (%s) but not its extent tree: not a "
			    "jemalloc 5.3 layout heapscan knows, or its file unreadable; its "
			    "heap is not walked", ra->ai.module);
	else if (ra->ai.kind == HS_ALLOC_JEMALLOC)
		hs_buf_addf(sb, "jemalloc found (%s) but its heap walk failed: %s",
			    ra->ai.module, hs_strerror(ra->je_err));
	else
		hs_buf_addf(sb, "the allocator is %s (%s); heapscan does not walk its heap",
			    name, ra->ai.module[0] ? ra->ai.module : ra->ai.how);
}

struct cls_rank {
	unsigned ind;
	uint64_t bytes;
};

static int cmp_rank(const void *a, const void *b)
{
	const struct cls_rank *x = a, *y = b;

	if (x->bytes != y->bytes)
		return x->bytes > y->bytes ? -1 : 1;
	return x->ind < y->ind ? -1 : x->ind > y->ind;
}

static void text_je(FILE *out, const struct hs_report_alloc *ra, unsigned top,
		    unsigned flags)
{
	const struct hs_jemalloc_heap *h = ra->je;
	struct cls_rank rk[HS_JE_NSIZES];
	size_t nrk = 0;
	char b1[16], b2[16], b3[16];

	fprintf(out, "  jemalloc %s (%s), extent tree 0x%" PRIx64 " (%s)\n",
		ra->jf.version[0] ? ra->jf.version : "5.x", ra->ai.module, h->rtree, h->rtree_how);
	fprintf(out, "  walked %zu extents in %.3f s; %u arena%s; %zu thread cache%s%s\n",
		h->next, (double)h->walk_ns / 1e9, h->narenas, h->narenas == 1 ? "" : "s",
		h->ntcaches, h->ntcaches == 1 ? "" : "s",
		h->tcache_known ? "" : " (some threads unread: cached regions count as in use)");
	fprintf(out, "    %-10s %10s %10s\n", "extents", "count", "bytes");
	for (int s = 0; s < HS_JE_STATE_N; s++)
		fprintf(out, "    %-10s %10" PRIu64 " %10s\n",
			hs_je_state_name((enum hs_je_extent_state)s), h->extents[s].count,
			fb(b1, h->extents[s].bytes));
	fprintf(out, "    %-10s %10" PRIu64 " %10s\n", "slabs", h->slabs.count,
		fb(b1, h->slabs.bytes));
	fprintf(out, "    %-10s %10" PRIu64 " %10s\n", "large", h->large.count,
		fb(b1, h->large.bytes));
	fprintf(out, "    %-10s %10s %10s\n", "regions", "count", "bytes");
	fprintf(out, "    %-10s %10" PRIu64 " %10s\n", "in use", h->in_use.count,
		fb(b1, h->in_use.bytes));
	fprintf(out, "    %-10s %10" PRIu64 " %10s\n", "tcache", h->tcache.count,
		fb(b1, h->tcache.bytes));
	fprintf(out, "    %-10s %10" PRIu64 " %10s\n", "free", h->free.count,
		fb(b1, h->free.bytes));
	if (flags & HS_REPORT_HEAP_DETAIL)
		for (size_t i = 0; i < h->ntcaches; i++)
			fprintf(out, "  tcache of thread %d (tsd 0x%" PRIx64 "): %" PRIu64
				" regions, %s\n", (int)h->tcaches[i].tid, h->tcaches[i].tsd,
				h->tcaches[i].cached.count, fb(b1, h->tcaches[i].cached.bytes));
	for (unsigned i = 0; i < HS_JE_NSIZES; i++)
		if (h->cls[i].in_use || h->cls[i].tcache || h->cls[i].free)
			rk[nrk++] = (struct cls_rank){ i, h->cls[i].in_use * h->cls[i].size };
	qsort(rk, nrk, sizeof(rk[0]), cmp_rank);
	if (nrk) {
		size_t nshow = nrk < top ? nrk : top;

		fprintf(out, "  size classes (top %zu of %zu, by in-use bytes):\n", nshow, nrk);
		fprintf(out, "    %10s %10s %10s %10s %10s %10s  %s\n", "size", "in use", "tcache",
			"free", "in-use B", "free B", "sample (heapscan show ADDR)");
		for (size_t i = 0; i < nshow; i++) {
			const struct hs_je_class *c = &h->cls[rk[i].ind];

			fprintf(out, "    %10" PRIu64 " %10" PRIu64 " %10" PRIu64 " %10" PRIu64
				" %10s %10s", c->size, c->in_use, c->tcache, c->free,
				fb(b2, c->in_use * c->size),
				fb(b3, (c->free + c->tcache) * c->size));
			if (c->sample)
				fprintf(out, "  0x%" PRIx64, c->sample);
			fputc('\n', out);
		}
	}
	if (h->truncated)
		fprintf(out, "  note: too many extents or cached pointers; counts are partial\n");
	hs_report_problems_text(out, h->problems, HS_JE_MAX_PROBLEMS, h->nproblems,
				HS_JE_MAX_PROBLEMS);
}

void hs_report_heap_text_any(FILE *out, const struct hs_report_alloc *ra,
			     const struct hs_glibc_heap *h, int err, unsigned top,
			     unsigned flags)
{
	struct hs_buf sb = HS_BUF_INIT;

	if (hs_report_alloc_glibc(ra)) {
		hs_report_heap_text(out, h, err, top, flags);
		return;
	}
	fprintf(out, "\n%s heap\n", hs_alloc_name(ra->ai.kind));
	if (ra->je) {
		text_je(out, ra, top, flags);
		return;
	}
	alloc_error(&sb, ra);
	fprintf(out, "  %s; regions and strings only\n", sb.buf);
	hs_buf_release(&sb);
}

static void json_je(struct hs_json *j, const struct hs_report_alloc *ra, unsigned top)
{
	const struct hs_jemalloc_heap *h = ra->je;

	hs_json_bool(j, "supported", true);
	if (ra->jf.version[0])
		hs_json_str(j, "jemalloc_version", ra->jf.version);
	else
		hs_json_null(j, "jemalloc_version");
	hs_json_addr(j, "rtree", h->rtree);
	hs_json_u64(j, "rtree_root_offset", h->root_off);
	hs_json_str(j, "rtree_source", h->rtree_how);
	hs_json_u64(j, "extents_walked", h->next);
	hs_json_double(j, "walk_seconds", (double)h->walk_ns / 1e9);
	hs_json_u64(j, "arenas", h->narenas);
	hs_json_bool(j, "tcache_known", h->tcache_known);
	hs_json_bool(j, "truncated", h->truncated);
	hs_json_obj_begin(j, "extents");
	for (int s = 0; s < HS_JE_STATE_N; s++)
		json_count(j, hs_je_state_name((enum hs_je_extent_state)s),
			   &(struct hs_glibc_count){ h->extents[s].count, h->extents[s].bytes });
	json_count(j, "slabs", &(struct hs_glibc_count){ h->slabs.count, h->slabs.bytes });
	json_count(j, "large", &(struct hs_glibc_count){ h->large.count, h->large.bytes });
	hs_json_obj_end(j);
	json_count(j, "in_use", &(struct hs_glibc_count){ h->in_use.count, h->in_use.bytes });
	json_count(j, "tcache", &(struct hs_glibc_count){ h->tcache.count, h->tcache.bytes });
	json_count(j, "free", &(struct hs_glibc_count){ h->free.count, h->free.bytes });
	hs_json_arr_begin(j, "size_classes");
	for (unsigned i = 0; i < HS_JE_NSIZES; i++) {
		const struct hs_je_class *c = &h->cls[i];

		if (!c->in_use && !c->tcache && !c->free && !c->slabs)
			continue;
		hs_json_obj_begin(j, NULL);
		hs_json_u64(j, "size", c->size);
		hs_json_u64(j, "index", i);
		hs_json_bool(j, "small", i < HS_JE_NBINS);
		hs_json_u64(j, "in_use", c->in_use);
		hs_json_u64(j, "tcache", c->tcache);
		hs_json_u64(j, "free", c->free);
		/* usable bytes: count times the class's size */
		hs_json_u64(j, "in_use_bytes", c->in_use * c->size);
		hs_json_u64(j, "tcache_bytes", c->tcache * c->size);
		hs_json_u64(j, "free_bytes", c->free * c->size);
		if (i < HS_JE_NBINS) {
			hs_json_u64(j, "slabs", c->slabs);
			hs_json_u64(j, "regs_per_slab", c->nregs);
		}
		if (c->sample)
			hs_json_addr(j, "sample", c->sample);
		hs_json_obj_end(j);
	}
	hs_json_arr_end(j);
	(void)top;
	hs_json_arr_begin(j, "tcaches");
	for (size_t i = 0; i < h->ntcaches; i++) {
		hs_json_obj_begin(j, NULL);
		hs_json_addr(j, "tsd", h->tcaches[i].tsd);
		hs_json_i64(j, "tid", h->tcaches[i].tid);
		hs_json_u64(j, "count", h->tcaches[i].cached.count);
		hs_json_u64(j, "bytes", h->tcaches[i].cached.bytes);
		hs_json_obj_end(j);
	}
	hs_json_arr_end(j);
	hs_report_problems_json(j, h->problems, HS_JE_MAX_PROBLEMS, h->nproblems);
}

void hs_report_heap_json_any(struct hs_json *j, const struct hs_report_alloc *ra,
			     const struct hs_glibc_heap *h, int err, unsigned top,
			     unsigned flags)
{
	(void)flags;
	if (hs_report_alloc_glibc(ra)) {
		json_glibc(j, ra, h, err, top);
		return;
	}
	hs_json_obj_begin(j, "heap");
	hs_json_str(j, "allocator", hs_alloc_name(ra->ai.kind));
	if (ra->ai.module[0])
		hs_json_str(j, "allocator_module", ra->ai.module);
	hs_json_str(j, "allocator_source", ra->ai.how);
	hs_json_bool(j, "linked_in", ra->ai.linked_in);
	if (ra->je) {
		json_je(j, ra, top);
	} else {
		struct hs_buf sb = HS_BUF_INIT;

		alloc_error(&sb, ra);
		hs_json_bool(j, "supported", false);
		hs_json_str(j, "error", sb.buf);
		hs_buf_release(&sb);
	}
	hs_json_obj_end(j);
}
