/*
 * heapscan heap: name the allocator and walk its heap: jemalloc's (extents,
 * regions per size class, thread caches), or glibc's (every arena and its
 * heaps, chunks in use and free by kind: tcache, fastbin, unsorted, small,
 * large, top; fragmentation, mmapped chunks, in-use chunks by size), with
 * the problems found.
 */
#include "cli.h"
#include "report.h"
#include "report-heap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum {
	OPT_TOP = HS_OPT_FIRST_PRIVATE,
	OPT_MAIN_ARENA,
	OPT_MAIN_ARENA_FROM,
	OPT_NO_MMAPPED,
};

static const char usage_text[] =
	"usage: heapscan heap (-p PID | -c CORE) [options]\n\n"
	"Names the allocator (glibc, jemalloc, tcmalloc, mimalloc, musl) and walks its\n"
	"heap when heapscan can: jemalloc 5.3 (extents, slabs, thread caches, regions\n"
	"in use, cached and free per size class), or the glibc malloc heap (glibc\n"
	"2.12-2.40, x86_64): each arena's heaps, system memory, chunks in use and free\n"
	"by kind (tcache, fastbin, unsorted, small, large, top), fragmentation\n"
	"(free-but-held bytes, top excluded, as a share of the arena's system memory),\n"
	"mmapped chunks, and in-use chunks by size ranked by total bytes.  Corrupt\n"
	"metadata is reported with its address.  An allocator heapscan does not walk\n"
	"is named, and the command fails (exit 2; --json still prints the document,\n"
	"with heap.error).\n\n"
	"options:\n"
	"%s"
	"      --top N            size classes to list (default 20)\n"
	"      --main-arena ADDR  main_arena's address (hex), instead of finding it\n"
	"      --main-arena-from WAY\n"
	"                         find main_arena only from WAY: symbol (libc's debug\n"
	"                         info), disasm (libc's malloc functions), scan\n"
	"                         (libc's data); default auto: each in that order\n"
	"      --no-mmapped       skip the search for mmapped chunks\n";

static const struct option options[] = {
	{ "top", required_argument, NULL, OPT_TOP },
	{ "main-arena", required_argument, NULL, OPT_MAIN_ARENA },
	{ "main-arena-from", required_argument, NULL, OPT_MAIN_ARENA_FROM },
	{ "no-mmapped", no_argument, NULL, OPT_NO_MMAPPED },
	{ NULL, 0, NULL, 0 },
};

struct heap {
	struct hs_glibc_opts go;
	uint64_t top;
	int way;
	struct hs_glibc_heap *h;
	struct hs_report_alloc ra;
};

static void init(void *state)
{
	struct heap *s = state;

	s->top = 20;
	s->way = HS_ARENA_AUTO;
}

static int option(void *state, int c, const char *arg)
{
	struct heap *s = state;

	switch (c) {
	case OPT_TOP:
		if (hs_cli_parse_u64(arg, &s->top) || s->top > 1000000)
			return hs_cli_usage_err("heap", "invalid --top '%s'", arg);
		break;
	case OPT_MAIN_ARENA:
		if (hs_cli_parse_addr(arg, &s->go.main_arena) || !s->go.main_arena ||
		    (s->go.main_arena & 7))
			return hs_cli_usage_err("heap", "invalid --main-arena '%s'", arg);
		break;
	case OPT_MAIN_ARENA_FROM:
		s->way = hs_arena_way_parse(arg);
		if (s->way < 0)
			return hs_cli_usage_err("heap", "invalid --main-arena-from '%s' "
						"(auto, symbol, disasm, scan)", arg);
		break;
	case OPT_NO_MMAPPED:
		s->go.flags |= HS_GLIBC_NO_MMAPPED;
		break;
	}
	return 0;
}

static int collect(struct hs_run *run)
{
	struct heap *s = run->state;
	int err;

	/* The allocator first: glibc's walker runs only on a glibc heap (or
	 * when nothing else is recognised). */
	err = hs_report_alloc_collect(run->t, &s->ra);
	if (err == 0 && hs_report_alloc_glibc(&s->ra))
		err = hs_report_heap_collect_way(run->t, &s->go, (enum hs_arena_way)s->way,
						 &s->h);
	else if (err == 0 && !s->ra.je)
		err = s->ra.je_err < 0 ? s->ra.je_err : -HS_E_UNSUPPORTED;
	return err;
}

static int explain(struct hs_run *run)
{
	struct heap *s = run->state;
	struct hs_buf sb = HS_BUF_INIT;

	if (hs_report_alloc_glibc(&s->ra)) {
		hs_report_heap_error(&sb, s->h, run->err);
	} else {
		hs_buf_addf(&sb, "the allocator is %s (%s): ", hs_alloc_name(s->ra.ai.kind),
			    s->ra.ai.module);
		if (s->ra.ai.kind == HS_ALLOC_JEMALLOC)
			hs_buf_addf(&sb, "its heap could not be walked: %s",
				    hs_strerror(run->err));
		else
			hs_buf_adds(&sb, "heapscan does not walk its heap");
	}
	hs_cli_err("%s", sb.buf);
	hs_buf_release(&sb);
	return HS_EXIT_FATAL;
}

/* --json: also on error, heap.error saying why. */
static void render(struct hs_run *run, FILE *out, struct hs_json *j)
{
	struct heap *s = run->state;
	int err = run->err < 0 ? run->err : 0;

	if (j)
		hs_report_heap_json_any(j, &s->ra, s->h, err, (unsigned)s->top,
					HS_REPORT_HEAP_DETAIL);
	else
		hs_report_heap_text_any(out, &s->ra, s->h, 0, (unsigned)s->top,
					HS_REPORT_HEAP_DETAIL);
}

static void release(void *state)
{
	struct heap *s = state;

	hs_glibc_close(s->h);
	hs_report_alloc_release(&s->ra);
}

const struct hs_command hs_cmd_heap = {
	.name = "heap",
	.help = "name the allocator, walk its heap (glibc, jemalloc)",
	.usage = usage_text,
	.options = options,
	.flags = HS_CMD_HEADER_JSON | HS_CMD_HEADER_TEXT | HS_CMD_ERROR_JSON,
	.state_size = sizeof(struct heap),
	.init = init,
	.option = option,
	.collect = collect,
	.explain = explain,
	.render = render,
	.release = release,
};
