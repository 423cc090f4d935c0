/*
 * heapscan leaks: which in-use malloc chunks nothing points to any more.
 * The analysis is heap/leaks/ (doc/leaks.md); this is options and output.
 */
#include "cli.h"
#include "report.h"
#include "report-cxx.h"
#include "report-heap.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

enum {
	OPT_TOP = HS_OPT_FIRST_PRIVATE,
	OPT_MAX_MEM,
	OPT_NO_TYPES,
};

static const char usage_text[] =
	"usage: heapscan leaks (-p PID | -c CORE) [options]\n\n"
	"Finds the glibc malloc chunks in use that the program can no longer reach,\n"
	"as valgrind's memcheck does, on a process that was never prepared for it\n"
	"or on a core:\n"
	"  anchored      reachable from a root: registers, each thread's stack from\n"
	"                its stack pointer up, TLS, modules' .data and .bss, other\n"
	"                writable mappings that are not malloc's; \"possibly\" when\n"
	"                reached only through a pointer into a chunk's middle\n"
	"  leaked        in use and not anchored (memcheck's definitely + indirectly\n"
	"                lost)\n"
	"  unreferenced  leaked, and no other leaked chunk points into it\n"
	"  definite      unreferenced, plus one head per leaked cycle (memcheck's\n"
	"                definitely lost); the rest of the leaked are indirect\n"
	"Chunks are grouped by chunk size and C++ class (a first word pointing into\n"
	"a vtable of a loaded module), each group with its most frequent string and\n"
	"sample chunk addresses for 'heapscan show'.  Free chunks (tcache, fastbins,\n"
	"bins, top) are never roots.\n\n"
	"options:\n"
	"%s"
	"      --top N          groups to list (default 20; 0: all)\n"
	"      --max-mem SIZE   memory for the chunk index (default 256M; about 8\n"
	"                       bits per 16 bytes of heap)\n"
	"      --no-types       do not read the modules' symbols for C++ vtables\n";

static void count_text(const char *label, const struct hs_leaks_count *c, const char *note)
{
	printf("  %-13s %12" PRIu64 " chunks %16" PRIu64 " bytes%s%s\n", label, c->count,
	       c->bytes, note ? "  " : "", note ? note : "");
}

static void count_json(struct hs_json *j, const char *key, const struct hs_leaks_count *c)
{
	hs_json_obj_begin(j, key);
	hs_json_u64(j, "count", c->count);
	hs_json_u64(j, "bytes", c->bytes);
	hs_json_obj_end(j);
}

static const char *group_type(const struct hs_leaks_group *g, const struct hs_cxx_vtables *vs)
{
	return g->type >= 0 && (size_t)g->type < vs->n ? vs->v[g->type].name : NULL;
}

static void report_text(const struct hs_leaks_result *r,
			const struct hs_cxx_vtables *vs, size_t top, bool whole_stacks)
{
	size_t shown = 0;

	printf("\nleaks: in-use malloc chunks by reachability\n");
	count_text("in use", &r->inuse, NULL);
	count_text("anchored", &r->anchored, NULL);
	count_text("  possibly", &r->possible, "(reached only through interior pointers)");
	count_text("leaked", &r->leaked, NULL);
	count_text("  unreferenced", &r->unreferenced, "(no leaked chunk points into them)");
	count_text("  definite", &r->definite, "(memcheck's definitely lost)");
	count_text("  indirect", &r->indirect, "(memcheck's indirectly lost)");
	if (r->leak_cycles)
		printf("  %" PRIu64 " leaked cycle(s) with no unreferenced chunk above: one"
		       " head each counts as definite\n", r->leak_cycles);
	printf("  roots: %" PRIu64 " bytes in %zu ranges, registers of %zu thread(s)%s\n",
	       r->root_bytes, r->root_ranges, r->root_threads,
	       whole_stacks ? "; whole stacks (no stack pointers known)" : "");
	if (r->unreadable)
		printf("  unreadable: %" PRIu64 " bytes\n", r->unreadable);
	printf("  C++ vtables known: %zu\n", vs->n);
	printf("\n  %10s %10s %14s %10s %10s %10s  %s\n", "chunk", "leaked", "leaked bytes",
	       "unref", "definite", "anchored", "type / string, samples");
	for (size_t i = 0; i < r->ngroups && (!top || shown < top); i++) {
		const struct hs_leaks_group *g = &r->groups[i];
		const char *ty = group_type(g, vs);

		shown++;
		printf("  %#10" PRIx64 " %10" PRIu64 " %14" PRIu64 " %10" PRIu64 " %10" PRIu64
		       " %10" PRIu64 "  ", g->size, g->leaked.count, g->leaked.bytes,
		       g->unreferenced.count, g->definite.count, g->anchored.count);
		if (ty)
			printf("%s", ty);
		else if (g->string[0])
			printf("\"%s\" (%u of %u)", g->string, g->string_hits, g->string_of);
		else
			printf("-");
		for (unsigned k = 0; k < g->nsamples && k < 3; k++)
			printf(" %#" PRIx64, g->samples[k]);
		printf("\n");
	}
	if (r->ngroups > shown)
		printf("  ... %zu more group(s) (--top 0 lists all)\n", r->ngroups - shown);
}

static void report_json(struct hs_json *j, const struct hs_leaks_result *r,
			const struct hs_cxx_vtables *vs, size_t top, bool whole_stacks)
{
	count_json(j, "inuse", &r->inuse);
	count_json(j, "anchored", &r->anchored);
	count_json(j, "possible", &r->possible);
	count_json(j, "leaked", &r->leaked);
	count_json(j, "unreferenced", &r->unreferenced);
	count_json(j, "definite", &r->definite);
	count_json(j, "indirect", &r->indirect);
	hs_json_u64(j, "leak_cycles", r->leak_cycles);
	hs_json_obj_begin(j, "roots");
	hs_json_u64(j, "bytes", r->root_bytes);
	hs_json_u64(j, "ranges", r->root_ranges);
	hs_json_u64(j, "threads_with_registers", r->root_threads);
	hs_json_bool(j, "whole_stacks", whole_stacks);
	hs_json_obj_end(j);
	hs_json_u64(j, "unreadable_bytes", r->unreadable);
	hs_json_u64(j, "vtables", vs->n);
	hs_json_obj_begin(j, "work");
	hs_json_u64(j, "heap_bytes", r->heap_bytes);
	hs_json_u64(j, "index_bytes", r->index_bytes);
	hs_json_u64(j, "scanned_bytes", r->scanned_bytes);
	hs_json_u64(j, "passes", r->passes);
	hs_json_double(j, "index_ms", (double)r->index_ns / 1e6);
	hs_json_double(j, "mark_ms", (double)r->mark_ns / 1e6);
	hs_json_double(j, "leaked_ms", (double)r->leaked_ns / 1e6);
	hs_json_double(j, "groups_ms", (double)r->groups_ns / 1e6);
	hs_json_obj_end(j);
	hs_json_u64(j, "groups_total", r->ngroups);
	hs_json_bool(j, "groups_capped", r->groups_capped);
	hs_json_arr_begin(j, "groups");
	for (size_t i = 0; i < r->ngroups && (!top || i < top); i++) {
		const struct hs_leaks_group *g = &r->groups[i];
		const char *ty = group_type(g, vs);

		hs_json_obj_begin(j, NULL);
		hs_json_u64(j, "size", g->size);
		if (ty)
			hs_json_str(j, "type", ty);
		else
			hs_json_null(j, "type");
		hs_json_str(j, "kind", ty ? "c++" : "size");
		count_json(j, "inuse", &g->inuse);
		count_json(j, "anchored", &g->anchored);
		count_json(j, "possible", &g->possible);
		count_json(j, "leaked", &g->leaked);
		count_json(j, "unreferenced", &g->unreferenced);
		count_json(j, "definite", &g->definite);
		if (g->string[0]) {
			hs_json_str(j, "string", g->string);
			hs_json_u64(j, "string_hits", g->string_hits);
			hs_json_u64(j, "string_of", g->string_of);
		} else {
			hs_json_null(j, "string");
		}
		hs_json_arr_begin(j, "samples");
		for (unsigned k = 0; k < g->nsamples; k++)
			hs_json_addr(j, NULL, g->samples[k]);
		hs_json_arr_end(j);
		hs_json_obj_end(j);
	}
	hs_json_arr_end(j);
}

static const struct option options[] = {
	{ "top", required_argument, NULL, OPT_TOP },
	{ "max-mem", required_argument, NULL, OPT_MAX_MEM },
	{ "no-types", no_argument, NULL, OPT_NO_TYPES },
	{ NULL, 0, NULL, 0 },
};

struct leaks {
	struct hs_leaks_opts lo;
	uint64_t top;
	bool no_types, whole_stacks, have_res;
	struct hs_leaks_result res;
	struct hs_cxx_vtables vs;
	struct hs_glibc_heap *h;
	struct hs_alloc_info ai;
};

static void init(void *state)
{
	struct leaks *s = state;

	s->top = 20;
}

static int option(void *state, int c, const char *arg)
{
	struct leaks *s = state;
	uint64_t v;

	switch (c) {
	case OPT_TOP:
		if (hs_cli_parse_u64(arg, &s->top) || s->top > 1000000)
			return hs_cli_usage_err("leaks", "invalid --top '%s'", arg);
		break;
	case OPT_MAX_MEM:
		if (hs_cli_parse_size(arg, &v) || v < (1u << 20))
			return hs_cli_usage_err("leaks", "invalid --max-mem '%s' (at least 1M)", arg);
		s->lo.max_mem = v;
		break;
	case OPT_NO_TYPES:
		s->no_types = true;
		break;
	}
	return 0;
}

static int collect(struct hs_run *run)
{
	struct leaks *s = run->state;
	struct hs_target *t = run->t;
	int err;

	/* The modules' files, not the target's memory: a vtable missing from
	 * them only leaves its objects unnamed. */
	if (!s->no_types && hs_cxx_vtables_load(t, &s->vs) < 0)
		memset(&s->vs, 0, sizeof(s->vs));
	s->lo.vtables = &s->vs.vt;
	s->lo.string_groups = s->top ? (unsigned)s->top : 1000000;
	s->whole_stacks = true;
	for (size_t i = 0; i < t->nthreads; i++)
		if (t->threads[i].has_regs && t->threads[i].sp)
			s->whole_stacks = false;
	if (s->whole_stacks)
		s->lo.flags |= HS_LEAKS_WHOLE_STACKS;
	/* Test hook: the closures without the edge list (as when it does not
	 * fit --max-mem); the results must not change. */
	if (getenv("HEAPSCAN_TEST_NO_EDGES"))
		s->lo.flags |= HS_LEAKS_NO_EDGES;

	/* Leaks index glibc's chunks: on another allocator, say which
	 * rather than that glibc's main_arena is missing (explain). */
	hs_alloc_detect(t, &s->ai);
	if (s->ai.kind != HS_ALLOC_GLIBC && s->ai.kind != HS_ALLOC_UNKNOWN)
		return -HS_E_UNSUPPORTED;
	err = hs_report_heap_open(t, NULL, HS_ARENA_AUTO, &s->h);
	if (!err)
		err = hs_leaks_run(s->h, &s->lo, &s->res);
	s->have_res = err == 0;
	/* Memory that could not be read (a core missing pages, a mapping
	 * gone): the answer may anchor too little, so say it is partial. */
	if (!err && s->res.unreadable)
		t->state |= HS_TSTATE_PARTIAL;
	return err;
}

static int explain(struct hs_run *run)
{
	struct leaks *s = run->state;
	struct hs_buf sb = HS_BUF_INIT;

	if (s->ai.kind != HS_ALLOC_GLIBC && s->ai.kind != HS_ALLOC_UNKNOWN)
		hs_cli_err("the allocator is %s (%s): leaks walks glibc heaps only",
			   hs_alloc_name(s->ai.kind), s->ai.module[0] ? s->ai.module : s->ai.how);
	else if (run->err == -HS_E_BUDGET)
		hs_cli_err("the chunk index of %s needs more than --max-mem %" PRIu64 "M",
			   run->t->source,
			   (uint64_t)((s->lo.max_mem ? s->lo.max_mem : 256ull << 20) >> 20));
	else {
		hs_report_heap_error(&sb, s->h, run->err);
		hs_cli_err("%s", sb.buf);
		hs_buf_release(&sb);
	}
	return HS_EXIT_FATAL;
}

static void render(struct hs_run *run, FILE *out, struct hs_json *j)
{
	struct leaks *s = run->state;

	(void)out;
	if (j)
		report_json(j, &s->res, &s->vs, s->top, s->whole_stacks);
	else
		report_text(&s->res, &s->vs, s->top, s->whole_stacks);
}

static void release(void *state)
{
	struct leaks *s = state;

	if (s->have_res)
		hs_leaks_result_release(&s->res);
	hs_glibc_close(s->h);
	hs_cxx_vtables_release(&s->vs);
}

const struct hs_command hs_cmd_leaks = {
	.name = "leaks",
	.help = "in-use chunks nothing points to any more (like memcheck)",
	.usage = usage_text,
	.options = options,
	.flags = HS_CMD_HEADER_JSON | HS_CMD_HEADER_TEXT,
	.state_size = sizeof(struct leaks),
	.init = init,
	.option = option,
	.collect = collect,
	.explain = explain,
	.render = render,
	.release = release,
};
