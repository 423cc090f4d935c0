/* The `heapscan show` report; see report-show.h. */
#include "report-show.h"
#include "hs_syms.h"

#include <inttypes.h>
#include <string.h>

#define NO_MAP ((size_t)-1)

struct hs_syms *hs_report_show_syms_open(struct hs_target *t)
{
	struct hs_syms *s = NULL;

	if (hs_syms_open(t, HS_SYMS_NO_DEBUGINFO, &s) < 0)
		return NULL;
	return s;
}

void hs_report_show_syms_close(struct hs_syms *s)
{
	if (s)
		hs_syms_close(s);
}

static void perm_str(unsigned perms, char out[5])
{
	out[0] = (perms & HS_PERM_R) ? 'r' : '-';
	out[1] = (perms & HS_PERM_W) ? 'w' : '-';
	out[2] = (perms & HS_PERM_X) ? 'x' : '-';
	out[3] = (perms & HS_PERM_SHARED) ? 's' : 'p';
	out[4] = '\0';
}

static const struct hs_map *map_at(const struct hs_report_show *r, size_t i)
{
	return i < r->t->maps.n ? &r->t->maps.v[i] : NULL;
}

/* A symbol (or module) for addr in a file-backed mapping m. */
static bool sym_of(const struct hs_report_show *r, const struct hs_map *m,
		   hs_addr_t addr, struct hs_sym_info *si)
{
	if (!r->syms || !m || !m->path[0] || m->path[0] == '[')
		return false;
	memset(si, 0, sizeof(*si));
	return hs_syms_lookup(r->syms, addr, si) == 0 && (si->name || si->module_name);
}

static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');

	return s ? s + 1 : p;
}

/* "name+0x10 (module)" or "module+0x1234" into sb. */
static void add_sym(struct hs_buf *sb, const struct hs_sym_info *si)
{
	const char *mod = si->module_name ? si->module_name : "?";

	if (si->name) {
		hs_buf_adds(sb, si->name);
		if (si->offset)
			hs_buf_addf(sb, "+0x%" PRIx64, si->offset);
		hs_buf_addf(sb, " (%s)", mod);
	} else {
		hs_buf_addf(sb, "%s+0x%" PRIx64, mod, si->offset);
	}
}

static void add_quoted(struct hs_buf *sb, const char *s, size_t n, size_t max)
{
	hs_buf_addch(sb, '"');
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '"' || s[i] == '\\')
			hs_buf_addch(sb, '\\');
		if (s[i] == '\t')
			hs_buf_adds(sb, "\\t");
		else
			hs_buf_addch(sb, s[i]);
	}
	hs_buf_addch(sb, '"');
	if (n + 1 >= max)
		hs_buf_adds(sb, "...");
}

/* The arena (malloc_state) holding addr: free-list heads and top point
 * there, and libc's symbols name main_arena only with debug info. */
static const struct hs_glibc_arena *arena_at(const struct hs_report_show *r,
					     hs_addr_t addr)
{
	const struct hs_glibc_heap *h = r->h;

	if (!h || !h->layout)
		return NULL;
	for (size_t i = 0; i < h->narenas; i++)
		if (addr - h->arenas[i].addr < h->layout->ms_size)
			return &h->arenas[i];
	return NULL;
}

static void add_arena(struct hs_buf *sb, const struct hs_glibc_arena *a, hs_addr_t addr)
{
	if (a->is_main)
		hs_buf_adds(sb, "main_arena");
	else
		hs_buf_addf(sb, "arena 0x%" PRIx64, a->addr);
	if (addr != a->addr)
		hs_buf_addf(sb, "+0x%" PRIx64, addr - a->addr);
}

static void add_chunk(struct hs_buf *sb, const struct hs_glibc_chunk *c)
{
	hs_buf_addf(sb, "chunk 0x%" PRIx64 " (%s, size 0x%" PRIx64 ")", c->addr,
		    hs_chunk_state_name(c->state), c->size);
}

/* The annotation of one word (empty when there is nothing to say). */
static void word_note(struct hs_buf *sb, const struct hs_report_show *r,
		      const struct hs_show_word *w)
{
	const struct hs_map *m;
	struct hs_sym_info si;

	if (w->header == 1) {
		hs_buf_adds(sb, "prev_size field (the previous chunk's last bytes "
			    "when it is in use)");
		return;
	}
	if (w->header == 2) {
		hs_buf_addf(sb, "size field: 0x%" PRIx64 "%s%s%s", w->value & ~(uint64_t)7,
			    (w->value & 1) ? " | PREV_INUSE" : "",
			    (w->value & 2) ? " | IS_MMAPPED" : "",
			    (w->value & 4) ? " | NON_MAIN_ARENA" : "");
		return;
	}
	m = w->map == NO_MAP ? NULL : map_at(r, w->map);
	if (!m)
		return;
	hs_buf_adds(sb, "-> ");
	if (w->in_chunk) {
		add_chunk(sb, &w->chunk);
		if (w->value != w->chunk.addr + 16)
			hs_buf_addf(sb, " %s0x%" PRIx64,
				    w->value >= w->chunk.addr + 16 ? "user+" : "header+",
				    w->value >= w->chunk.addr + 16 ?
				    w->value - w->chunk.addr - 16 : w->value - w->chunk.addr);
	} else if (arena_at(r, w->value)) {
		add_arena(sb, arena_at(r, w->value), w->value);
	} else if (sym_of(r, m, w->value, &si)) {
		add_sym(sb, &si);
	} else {
		hs_buf_addf(sb, "%s %s+0x%" PRIx64, hs_class_name(m->cls),
			    m->path[0] ? base_name(m->path) : "anon", w->value - m->start);
	}
	if (w->str_len) {
		hs_buf_addch(sb, ' ');
		add_quoted(sb, w->str, w->str_len, sizeof(w->str));
	}
}

static void text_map(FILE *out, const struct hs_map *m)
{
	char p[5];

	perm_str(m->perms, p);
	fprintf(out, "0x%" PRIx64 "-0x%" PRIx64 " %s %s (%s)%s%s", m->start, m->end, p,
		hs_class_name(m->cls), hs_class_label(m->cls),
		m->path[0] ? " " : "", m->path);
}

/* "+0x10", or "-0x8" for a value in a chunk's header (below obj_base). */
static void add_offset(struct hs_buf *sb, const struct hs_show *s, uint64_t value)
{
	if (value >= s->obj_base)
		hs_buf_addf(sb, "+0x%" PRIx64, value - s->obj_base);
	else
		hs_buf_addf(sb, "-0x%" PRIx64, s->obj_base - value);
}

/* The registers holding a pointer into the object: all of them, after
 * the memory references, whatever cut the memory scan. */
static void text_reg_refs(FILE *out, const struct hs_show *s)
{
	const struct hs_reg_refs *g = &s->regrefs;

	fprintf(out, "registers of %zu thread%s: %zu point%s into it", g->threads,
		g->threads == 1 ? "" : "s", g->n, g->n == 1 ? "s" : "");
	if (g->threads_noregs)
		fprintf(out, "; %zu thread%s without registers (not stopped)",
			g->threads_noregs, g->threads_noregs == 1 ? "" : "s");
	fputc('\n', out);
	for (size_t i = 0; i < g->n; i++) {
		struct hs_buf sb = HS_BUF_INIT;

		add_offset(&sb, s, g->v[i].value);
		fprintf(out, "  thread %d register %s = 0x%" PRIx64 " (%s)\n",
			(int)g->v[i].tid, hs_reg_name(g->v[i].reg), g->v[i].value, sb.buf);
		hs_buf_release(&sb);
	}
}

static void text_refs(FILE *out, const struct hs_report_show *r)
{
	const struct hs_show *s = r->s;
	const struct hs_refs *rf = &s->refs;
	char b1[16];

	fprintf(out, "\nreferences to 0x%" PRIx64 "-0x%" PRIx64 ": %zu found; "
		"scanned %s in %zu mappings in %.0f ms", s->obj_lo, s->obj_hi, rf->n,
		hs_fmt_bytes(b1, sizeof(b1), rf->scanned), rf->maps_scanned,
		(double)rf->ns / 1e6);
	if (rf->cut != HS_REFS_COMPLETE)
		fprintf(out, "; CUT SHORT by the %s limit", hs_refs_cut_name(rf->cut));
	else
		fprintf(out, "; complete");
	if (rf->unreadable)
		fprintf(out, "; %s unreadable", hs_fmt_bytes(b1, sizeof(b1), rf->unreadable));
	fputc('\n', out);
	for (size_t i = 0; i < rf->n; i++) {
		const struct hs_show_ref *x = &s->xrefs[i];
		const struct hs_map *m = map_at(r, x->ref.map);
		struct hs_buf sb = HS_BUF_INIT;
		struct hs_sym_info si;

		if (x->in_chunk) {
			hs_buf_adds(&sb, "in ");
			add_chunk(&sb, &x->chunk);
		} else if (arena_at(r, x->ref.at)) {
			add_arena(&sb, arena_at(r, x->ref.at), x->ref.at);
		} else if (m && sym_of(r, m, x->ref.at, &si)) {
			add_sym(&sb, &si);
		} else if (m) {
			hs_buf_adds(&sb, m->path[0] ? base_name(m->path) : "anon");
			if (m->cls == HS_CLASS_STACK && m->stack_tid)
				hs_buf_addf(&sb, " (thread %d)", (int)m->stack_tid);
		}
		fprintf(out, "  0x%" PRIx64 "  %-6s %s -> 0x%" PRIx64 "\n", x->ref.at,
			m ? hs_class_name(m->cls) : "?", sb.buf, x->ref.value);
		hs_buf_release(&sb);
	}
	text_reg_refs(out, s);
}

void hs_report_show_text(FILE *out, const struct hs_report_show *r)
{
	const struct hs_show *s = r->s;
	const struct hs_map *m = map_at(r, s->map);
	struct hs_sym_info si;
	char b1[16];

	fprintf(out, "address 0x%" PRIx64 "\n  mapping ", s->addr);
	if (m)
		text_map(out, m);
	fputc('\n', out);
	if (m && sym_of(r, m, s->addr, &si)) {
		struct hs_buf sb = HS_BUF_INIT;

		add_sym(&sb, &si);
		fprintf(out, "  symbol  %s\n", sb.buf);
		hs_buf_release(&sb);
	}
	if (s->in_chunk) {
		const struct hs_glibc_chunk *c = &s->chunk;

		fprintf(out, "  chunk   0x%" PRIx64 ", user pointer 0x%" PRIx64
			", size 0x%" PRIx64 " (%s), %s", c->addr, c->addr + 16, c->size,
			hs_fmt_bytes(b1, sizeof(b1), c->size), hs_chunk_state_label(c->state));
		if (c->arena >= 0)
			fprintf(out, ", arena 0x%" PRIx64 " (%s)", s->arena,
				c->arena == 0 ? "main" : "thread");
		fputc('\n', out);
		if (s->addr >= c->addr + 16)
			fprintf(out, "  address is user+0x%" PRIx64 "\n", s->addr - c->addr - 16);
		else
			fprintf(out, "  address is in the chunk header (+0x%" PRIx64 ")\n",
				s->addr - c->addr);
	} else if (s->in_block) {
		const struct hs_block *b = &s->block;

		fprintf(out, "  block   0x%" PRIx64 ", size %" PRIu64 " (%s), %s region",
			b->addr, b->size, hs_fmt_bytes(b1, sizeof(b1), b->size),
			r->allocator ? r->allocator : "malloc");
		if (b->cls)
			fprintf(out, " of class %" PRIu64, b->cls);
		fprintf(out, ", %s, arena %d, metadata 0x%" PRIx64 "\n",
			b->state == HS_BLOCK_INUSE ? "in use"
			: b->state == HS_BLOCK_CACHED ? "free in a thread cache" : "free",
			b->arena, b->meta);
		fprintf(out, "  address is +0x%" PRIx64 "\n", s->addr - b->addr);
	} else if (r->heap_err) {
		fprintf(out, "  chunk   unknown: the %s heap could not be walked (%s)\n",
			r->allocator ? r->allocator : "glibc", hs_strerror(r->heap_err));
	} else {
		fprintf(out, "  chunk   none: not in a malloc heap\n");
	}

	fprintf(out, "\ndump 0x%" PRIx64 "-0x%" PRIx64 " (%zu bytes", s->dump_addr,
		s->dump_addr + s->dump_len, s->dump_len);
	if (s->dump_len < s->dump_want)
		fprintf(out, " of %zu; --max-bytes/--len or the mapping's end cut it",
			s->dump_want);
	fprintf(out, ")\n");
	for (size_t off = 0; off < s->dump_len; off += 16) {
		size_t n = s->dump_len - off < 16 ? s->dump_len - off : 16;

		fprintf(out, "  0x%016" PRIx64 " ", s->dump_addr + off);
		for (size_t k = 0; k < 16; k++) {
			if (k == 8)
				fputc(' ', out);
			if (k < n)
				fprintf(out, " %02x", s->dump[off + k]);
			else
				fputs("   ", out);
		}
		fputs("  |", out);
		for (size_t k = 0; k < n; k++) {
			unsigned char ch = s->dump[off + k];
			fputc(ch >= 0x20 && ch < 0x7f ? ch : '.', out);
		}
		fputs("|\n", out);
		for (size_t k = off / 8; k < (off + n) / 8 && k < s->nwords; k++) {
			struct hs_buf sb = HS_BUF_INIT;

			word_note(&sb, r, &s->words[k]);
			if (sb.len)
				fprintf(out, "      +0x%03zx %s\n", 8 * k, sb.buf);
			hs_buf_release(&sb);
		}
	}
	if (s->has_refs)
		text_refs(out, r);
}

/* ---- JSON ---- */

static void json_map(struct hs_json *j, const char *key, const struct hs_map *m)
{
	char p[5];

	perm_str(m->perms, p);
	hs_json_obj_begin(j, key);
	hs_json_addr(j, "start", m->start);
	hs_json_addr(j, "end", m->end);
	hs_json_str(j, "perms", p);
	hs_json_str(j, "class", hs_class_name(m->cls));
	hs_json_str(j, "path", m->path);
	if (m->stack_tid)
		hs_json_i64(j, "stack_tid", m->stack_tid);
	hs_json_obj_end(j);
}

static void json_chunk(struct hs_json *j, const char *key, const struct hs_glibc_chunk *c,
		       const struct hs_glibc_heap *h)
{
	hs_json_obj_begin(j, key);
	hs_json_addr(j, "addr", c->addr);
	hs_json_addr(j, "user", c->addr + 16);
	hs_json_u64(j, "size", c->size);
	hs_json_str(j, "state", hs_chunk_state_name(c->state));
	hs_json_bool(j, "free", hs_chunk_state_is_free(c->state));
	if (c->arena >= 0 && h && (size_t)c->arena < h->narenas) {
		hs_json_addr(j, "arena", h->arenas[c->arena].addr);
		hs_json_bool(j, "arena_main", h->arenas[c->arena].is_main);
	} else {
		hs_json_null(j, "arena");
	}
	hs_json_obj_end(j);
}

static void json_sym(struct hs_json *j, const char *key, const struct hs_sym_info *si)
{
	hs_json_obj_begin(j, key);
	if (si->name)
		hs_json_str(j, "name", si->name);
	else
		hs_json_null(j, "name");
	hs_json_u64(j, "offset", si->offset);
	hs_json_str(j, "module", si->module ? si->module : "");
	hs_json_obj_end(j);
}

static void json_arena(struct hs_json *j, const struct hs_report_show *r,
		       hs_addr_t addr)
{
	const struct hs_glibc_arena *a = arena_at(r, addr);

	if (!a)
		return;
	hs_json_obj_begin(j, "arena");
	hs_json_addr(j, "addr", a->addr);
	hs_json_bool(j, "main", a->is_main);
	hs_json_u64(j, "offset", addr - a->addr);
	hs_json_obj_end(j);
}

static void json_word(struct hs_json *j, const struct hs_report_show *r,
		      const struct hs_show_word *w)
{
	const struct hs_map *m = w->map == NO_MAP ? NULL : map_at(r, w->map);
	struct hs_sym_info si;

	hs_json_obj_begin(j, NULL);
	hs_json_addr(j, "at", w->at);
	hs_json_addr(j, "value", w->value);
	if (w->header)
		hs_json_str(j, "field", w->header == 1 ? "prev_size" : "size");
	if (m) {
		hs_json_obj_begin(j, "points_to");
		hs_json_str(j, "class", hs_class_name(m->cls));
		hs_json_str(j, "path", m->path);
		if (w->in_chunk)
			json_chunk(j, "chunk", &w->chunk, r->h);
		json_arena(j, r, w->value);
		if (sym_of(r, m, w->value, &si))
			json_sym(j, "symbol", &si);
		if (w->str_len)
			hs_json_strn(j, "string", w->str, w->str_len);
		hs_json_obj_end(j);
	}
	hs_json_obj_end(j);
}

void hs_report_show_json(struct hs_json *j, const struct hs_report_show *r)
{
	static const char hex[] = "0123456789abcdef";
	const struct hs_show *s = r->s;
	const struct hs_map *m = map_at(r, s->map);
	struct hs_buf sb = HS_BUF_INIT;
	struct hs_sym_info si;

	hs_json_addr(j, "address", s->addr);
	if (m)
		json_map(j, "mapping", m);
	if (m && sym_of(r, m, s->addr, &si))
		json_sym(j, "symbol", &si);
	hs_json_obj_begin(j, "heap");
	hs_json_str(j, "allocator", r->allocator ? r->allocator : "glibc");
	hs_json_bool(j, "walked", (r->h || r->allocator) && !r->heap_err);
	if (r->heap_err)
		hs_json_str(j, "error", hs_strerror(r->heap_err));
	hs_json_obj_end(j);
	if (s->in_chunk)
		json_chunk(j, "chunk", &s->chunk, r->h);
	else
		hs_json_null(j, "chunk");
	if (s->in_block) {
		hs_json_obj_begin(j, "block");
		hs_json_str(j, "allocator", r->allocator ? r->allocator : "glibc");
		hs_json_addr(j, "addr", s->block.addr);
		hs_json_u64(j, "size", s->block.size);
		hs_json_u64(j, "class", s->block.cls);
		hs_json_str(j, "state", hs_block_state_name(s->block.state));
		hs_json_i64(j, "arena", s->block.arena);
		hs_json_addr(j, "meta", s->block.meta);
		hs_json_u64(j, "offset", s->addr - s->block.addr);
		hs_json_obj_end(j);
	} else {
		hs_json_null(j, "block");
	}

	hs_json_obj_begin(j, "dump");
	hs_json_addr(j, "addr", s->dump_addr);
	hs_json_u64(j, "length", s->dump_len);
	hs_json_u64(j, "wanted", s->dump_want);
	hs_json_bool(j, "truncated", s->dump_len < s->dump_want);
	for (size_t i = 0; i < s->dump_len; i++) {
		hs_buf_addch(&sb, hex[s->dump[i] >> 4]);
		hs_buf_addch(&sb, hex[s->dump[i] & 15]);
	}
	hs_json_str(j, "hex", sb.buf);
	hs_buf_release(&sb);
	/* Only the words there is something to say about. */
	hs_json_arr_begin(j, "words");
	for (size_t i = 0; i < s->nwords; i++)
		if (s->words[i].header || s->words[i].map != NO_MAP)
			json_word(j, r, &s->words[i]);
	hs_json_arr_end(j);
	hs_json_obj_end(j);

	if (!s->has_refs)
		return;
	hs_json_obj_begin(j, "refs");
	hs_json_addr(j, "target_lo", s->obj_lo);
	hs_json_addr(j, "target_hi", s->obj_hi);
	hs_json_bool(j, "complete", s->refs.cut == HS_REFS_COMPLETE);
	hs_json_str(j, "cut", hs_refs_cut_name(s->refs.cut));
	hs_json_u64(j, "scanned_bytes", s->refs.scanned);
	hs_json_u64(j, "unreadable_bytes", s->refs.unreadable);
	hs_json_u64(j, "mappings", s->refs.maps_scanned);
	hs_json_double(j, "ms", (double)s->refs.ns / 1e6);
	hs_json_arr_begin(j, "refs");
	for (size_t i = 0; i < s->refs.n; i++) {
		const struct hs_show_ref *x = &s->xrefs[i];
		const struct hs_map *rm = map_at(r, x->ref.map);

		hs_json_obj_begin(j, NULL);
		hs_json_str(j, "kind", "memory");
		hs_json_addr(j, "at", x->ref.at);
		hs_json_addr(j, "value", x->ref.value);
		if (rm) {
			hs_json_str(j, "class", hs_class_name(rm->cls));
			hs_json_str(j, "path", rm->path);
			if (rm->stack_tid)
				hs_json_i64(j, "stack_tid", rm->stack_tid);
			if (sym_of(r, rm, x->ref.at, &si))
				json_sym(j, "symbol", &si);
		}
		json_arena(j, r, x->ref.at);
		if (x->in_chunk)
			json_chunk(j, "chunk", &x->chunk, r->h);
		else
			hs_json_null(j, "chunk");
		hs_json_obj_end(j);
	}
	/* Register hits follow the memory ones; "offset" counts from the
	 * user pointer (negative inside a chunk's header). */
	for (size_t i = 0; i < s->regrefs.n; i++) {
		const struct hs_reg_ref *g = &s->regrefs.v[i];

		hs_json_obj_begin(j, NULL);
		hs_json_str(j, "kind", "register");
		hs_json_i64(j, "tid", g->tid);
		hs_json_str(j, "register", hs_reg_name(g->reg));
		hs_json_addr(j, "value", g->value);
		hs_json_i64(j, "offset", (int64_t)(g->value - s->obj_base));
		hs_json_obj_end(j);
	}
	hs_json_arr_end(j);
	hs_json_obj_begin(j, "registers");
	hs_json_u64(j, "threads", s->regrefs.threads);
	hs_json_u64(j, "threads_without_registers", s->regrefs.threads_noregs);
	hs_json_u64(j, "found", s->regrefs.n);
	hs_json_obj_end(j);
	hs_json_obj_end(j);
}
