/*
 * heapscan scan (the default command): where a process's memory is.
 * Regions by class, the largest regions, modules; later sections (heap,
 * strings) come from their own report-*.c.
 */
#include "cli.h"
#include "report.h"
#include "report-heap.h"
#include "report-python.h"
#include "report-strings.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum {
	OPT_TOP_REGIONS = HS_OPT_FIRST_PRIVATE,
	OPT_TOP,
	OPT_NO_HEAP,
	OPT_NO_STRINGS,
	OPT_NO_PYTHON,
};

static const char usage_text[] =
	"usage: heapscan [scan] (-p PID | -c CORE) [options]\n\n"
	"Reports where the target's memory is: regions by class (from smaps),\n"
	"the largest regions, the file-backed modules, the malloc heap (which\n"
	"allocator; glibc: arenas, chunks in use and free, sizes by bytes;\n"
	"jemalloc: extents, regions in use, cached and free, size classes), Python\n"
	"objects (a Python process: objects and bytes, the largest types; pymalloc\n"
	"arenas are the region class 'python') and the top strings.  'heapscan\n"
	"heap', 'heapscan types' and 'heapscan strings' give each analysis in full.\n\n"
	"options:\n"
	"%s"
	"      --top-regions N  how many of the largest regions to list (default 10)\n"
	"      --top N          how many strings and chunk sizes to list (default 10)\n"
	"      --no-heap        skip the malloc heap section\n"
	"      --no-strings     skip the strings section\n"
	"      --no-python      skip the Python objects section\n";

static const struct option options[] = {
	{ "top-regions", required_argument, NULL, OPT_TOP_REGIONS },
	{ "top", required_argument, NULL, OPT_TOP },
	{ "no-heap", no_argument, NULL, OPT_NO_HEAP },
	{ "no-strings", no_argument, NULL, OPT_NO_STRINGS },
	{ "no-python", no_argument, NULL, OPT_NO_PYTHON },
	{ NULL, 0, NULL, 0 },
};

struct scan {
	uint64_t top_regions, top;
	bool no_heap, no_strings, no_python;
	struct hs_report_py rp;
	struct hs_glibc_heap *heap;
	struct hs_str_result strs;
	int heap_err, str_err;
	struct hs_report_alloc ra;
};

static void init(void *state)
{
	struct scan *s = state;

	s->top_regions = 10;
	s->top = 10;
}

static int option(void *state, int c, const char *arg)
{
	struct scan *s = state;

	switch (c) {
	case OPT_TOP_REGIONS:
		if (hs_cli_parse_u64(arg, &s->top_regions) || s->top_regions > 100000)
			return hs_cli_usage_err("scan", "invalid --top-regions '%s'", arg);
		break;
	case OPT_TOP:
		if (hs_cli_parse_u64(arg, &s->top) || s->top == 0 || s->top > 100000)
			return hs_cli_usage_err("scan", "invalid --top '%s'", arg);
		break;
	case OPT_NO_HEAP:
		s->no_heap = true;
		break;
	case OPT_NO_STRINGS:
		s->no_strings = true;
		break;
	case OPT_NO_PYTHON:
		s->no_python = true;
		break;
	}
	return 0;
}

/* A section that fails says so in the report: only an interrupt fails. */
static int collect(struct hs_run *run)
{
	struct scan *s = run->state;
	struct hs_target *t = run->t;
	int alloc_err = 0;

	/* The allocator decides which heap is walked; glibc's walker runs
	 * on glibc (or an unknown allocator) only. */
	if ((!s->no_heap || !s->no_strings) && !hs_interrupted)
		alloc_err = hs_report_alloc_collect(t, &s->ra);
	if (!s->no_heap && !hs_interrupted && alloc_err == 0 && hs_report_alloc_glibc(&s->ra))
		s->heap_err = hs_report_heap_collect(t, NULL, &s->heap);
	/* Not Python, an unsupported one: said in the section (or nothing). */
	if (!s->no_python && !hs_interrupted &&
	    hs_report_py_collect(t, s->heap_err == 0 ? s->heap : NULL, &s->rp) == 0)
		hs_report_py_classify(t, &s->rp);
	if (!s->no_strings && !hs_interrupted && alloc_err == 0)
		/* The heap opened above gives the strings' locations; the
		 * target runs again once they are read, while they are
		 * ranked. */
		s->str_err = hs_report_strings_collect_heap(t, &s->ra,
							    s->heap_err == 0 ? s->heap : NULL,
							    (unsigned)s->top, true, &s->strs);
	if (alloc_err < 0 && !hs_interrupted) {
		s->heap_err = alloc_err;
		s->str_err = alloc_err;
	}
	return hs_interrupted ? -HS_E_INTERRUPTED : 0;
}

static void render(struct hs_run *run, FILE *out, struct hs_json *j)
{
	struct scan *s = run->state;
	struct hs_target *t = run->t;
	unsigned top = (unsigned)s->top;

	if (j) {
		hs_report_regions_json(j, t);
		if (!s->no_heap)
			hs_report_heap_json_any(j, &s->ra, s->heap, s->heap_err, top, 0);
		if (!s->no_python)
			hs_report_py_section_json(j, &s->rp, top);
		if (!s->no_strings) {
			hs_json_obj_begin(j, "strings");
			if (s->str_err < 0)
				hs_json_str(j, "error", hs_strerror(s->str_err));
			else
				hs_report_strings_json(j, &s->strs, t);
			hs_json_obj_end(j);
		}
		return;
	}
	hs_report_regions_text(out, t, (unsigned)s->top_regions);
	if (!s->no_heap)
		hs_report_heap_text_any(out, &s->ra, s->heap, s->heap_err, top, 0);
	if (!s->no_python)
		hs_report_py_section_text(out, &s->rp, s->heap_err == 0 ? s->heap : NULL, top);
	if (!s->no_strings) {
		if (s->str_err < 0)
			fprintf(out, "\nTop strings: not available: %s\n", hs_strerror(s->str_err));
		else
			hs_report_strings_text(out, &s->strs, t);
	}
}

static void release(void *state)
{
	struct scan *s = state;

	hs_report_py_release(&s->rp);
	hs_glibc_close(s->heap);
	hs_report_alloc_release(&s->ra);
	hs_str_result_release(&s->strs);
}

const struct hs_command hs_cmd_scan = {
	.name = "scan",
	.help = "where the memory is: regions, heap, top strings (default)",
	.usage = usage_text,
	.options = options,
	.flags = HS_CMD_HEADER_JSON | HS_CMD_HEADER_TEXT,
	.state_size = sizeof(struct scan),
	.init = init,
	.option = option,
	.collect = collect,
	.render = render,
	.release = release,
};
