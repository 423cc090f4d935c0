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

int cmd_scan(int argc, char **argv)
{
	static const struct option longopts[] = {
		HS_CLI_COMMON_LONGOPTS,
		{ "top-regions", required_argument, NULL, OPT_TOP_REGIONS },
		{ "top", required_argument, NULL, OPT_TOP },
		{ "no-heap", no_argument, NULL, OPT_NO_HEAP },
		{ "no-strings", no_argument, NULL, OPT_NO_STRINGS },
		{ "no-python", no_argument, NULL, OPT_NO_PYTHON },
		{ NULL, 0, NULL, 0 },
	};
	struct hs_cli_opts o = { 0 };
	struct hs_cli_parser ps = {
		.cmd = "scan", .usage = usage_text, .shortopts = NULL,
		.longopts = longopts, .o = &o, .argc = argc, .argv = argv,
	};
	struct hs_target *t = NULL;
	uint64_t top_regions = 10, top = 10;
	bool want_heap = true, want_strings = true, want_python = true;
	struct hs_report_py rp;
	struct hs_glibc_heap *heap = NULL;
	struct hs_str_result strs;
	int heap_err = 0, str_err = 0, alloc_err = 0;
	struct hs_report_alloc ra = { 0 };
	int c, ret;

	while ((c = hs_cli_next_opt(&ps)) > 0) {
		switch (c) {
		case OPT_TOP_REGIONS:
			if (hs_cli_parse_u64(optarg, &top_regions) || top_regions > 100000)
				return hs_cli_usage_err("scan", "invalid --top-regions '%s'", optarg);
			break;
		case OPT_TOP:
			if (hs_cli_parse_u64(optarg, &top) || top == 0 || top > 100000)
				return hs_cli_usage_err("scan", "invalid --top '%s'", optarg);
			break;
		case OPT_NO_HEAP:
			want_heap = false;
			break;
		case OPT_NO_STRINGS:
			want_strings = false;
			break;
		case OPT_NO_PYTHON:
			want_python = false;
			break;
		}
	}
	if (c < 0)
		return ps.exit;
	if (hs_cli_finish_options("scan", argc, argv, &o))
		return HS_EXIT_USAGE;
	ret = hs_cli_open_target(&o, &t);
	if (ret)
		return ret;
	hs_cli_test_hold();

	/* Everything that reads memory runs while the target is stopped; the
	 * report is formatted after it is released. */
	memset(&strs, 0, sizeof(strs));
	/* The allocator decides which heap is walked; glibc's walker runs
	 * on glibc (or an unknown allocator) only. */
	memset(&rp, 0, sizeof(rp));
	if ((want_heap || want_strings) && !hs_interrupted)
		alloc_err = hs_report_alloc_collect(t, &ra);
	if (want_heap && !hs_interrupted && alloc_err == 0 && hs_report_alloc_glibc(&ra))
		heap_err = hs_report_heap_collect(t, NULL, &heap);
	/* Not Python, an unsupported one: said in the section (or nothing). */
	if (want_python && !hs_interrupted &&
	    hs_report_py_collect(t, heap_err == 0 ? heap : NULL, &rp) == 0)
		hs_report_py_classify(t, &rp);
	if (want_strings && !hs_interrupted && alloc_err == 0)
		/* The heap opened above gives the strings' locations; the
		 * target runs again once they are read, while they are
		 * ranked. */
		str_err = hs_report_strings_collect_heap(t, &ra, heap_err == 0 ? heap : NULL,
							 (unsigned)top, true, &strs);
	if (alloc_err < 0 && !hs_interrupted) {
		heap_err = alloc_err;
		str_err = alloc_err;
	}
	if (hs_interrupted) {
		hs_report_py_release(&rp);
		hs_glibc_close(heap);
		hs_report_alloc_release(&ra);
		hs_str_result_release(&strs);
		hs_target_close(t);
		hs_cli_err("interrupted; target released");
		return HS_EXIT_FATAL;
	}
	ret = hs_target_resume(t);
	(void)ret;
	if (o.json) {
		struct hs_json j;
		hs_cli_json_begin(&j, "scan");
		hs_report_header_json(&j, t);
		hs_report_regions_json(&j, t);
		if (want_heap)
			hs_report_heap_json_any(&j, &ra, heap, heap_err, (unsigned)top, 0);
		if (want_python)
			hs_report_py_section_json(&j, &rp, (unsigned)top);
		if (want_strings) {
			hs_json_obj_begin(&j, "strings");
			if (str_err < 0)
				hs_json_str(&j, "error", hs_strerror(str_err));
			else
				hs_report_strings_json(&j, &strs, t);
			hs_json_obj_end(&j);
		}
		hs_cli_json_end(&j);
	} else {
		hs_report_header_text(stdout, t);
		hs_report_regions_text(stdout, t, (unsigned)top_regions);
		if (want_heap)
			hs_report_heap_text_any(stdout, &ra, heap, heap_err, (unsigned)top, 0);
		if (want_python)
			hs_report_py_section_text(stdout, &rp, heap_err == 0 ? heap : NULL,
						  (unsigned)top);
		if (want_strings) {
			if (str_err < 0)
				printf("\nTop strings: not available: %s\n", hs_strerror(str_err));
			else
				hs_report_strings_text(stdout, &strs, t);
		}
	}
	hs_report_py_release(&rp);
	hs_glibc_close(heap);
	hs_report_alloc_release(&ra);
	hs_str_result_release(&strs);
	ret = hs_cli_exit_for(t);
	hs_target_close(t);
	return ret; /* main() checks that stdout was written */
}
