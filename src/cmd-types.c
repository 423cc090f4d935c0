/*
 * heapscan types: a histogram of live objects by type, as `jmap -histo`
 * prints it (count, bytes, type), read from outside the process.  Python
 * objects (heap/hs_python.h) and C++ objects with virtual methods (the
 * chunks whose first word points into a vtable: heap/hs_leaks.h) are rows
 * of one census.
 */
#include "cli.h"
#include "report.h"
#include "report-heap.h"
#include "report-python.h"
#include "report-cxx.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum {
	OPT_TOP = HS_OPT_FIRST_PRIVATE,
	OPT_JOBS,
};

static const char usage_text[] =
	"usage: heapscan types (-p PID | -c CORE) [options]\n\n"
	"Counts the target's live objects by type, like 'jmap -histo': one row\n"
	"per type with its number of objects, their bytes (the allocator's block\n"
	"sizes) and its name as the language prints it, sorted by bytes, then a\n"
	"total.  Python (CPython 3.8-3.13, x86_64): every object in pymalloc's\n"
	"arenas and in glibc's in-use chunks, GC-tracked or not, found by its\n"
	"type pointer; no code runs in the target and no debug info is needed.\n"
	"Dead objects kept on type freelists are shown apart, not counted.\n"
	"C++ (kind c++): glibc's in-use chunks whose first word points into a\n"
	"vtable of a loaded module, named by the demangled class.\n\n"
	"options:\n"
	"%s"
	"      --top N      list the N largest types only (default 0: all)\n"
	"      --jobs N     threads reading pymalloc's arenas, 1 to 4 (default 2,\n"
	"                   or 1 on one CPU)\n";

/*
 * Adds a row of kind c++ per class whose vtable the in-use chunks of h
 * point at, and re-sorts.  *n: the classes added.  Reads the modules'
 * files for the vtable symbols and each chunk's first word.
 */
static int add_cxx(struct hs_target *t, struct hs_glibc_heap *h, struct hs_census *c,
		   size_t *n)
{
	struct hs_cxx_vtables vs;
	struct hs_cxx_type *types = NULL;
	int ret;

	*n = 0;
	ret = hs_cxx_vtables_load(t, &vs);
	if (ret < 0)
		return ret;
	if (vs.vt.n)
		ret = hs_cxx_census(h, &vs.vt, NULL, &types, n);
	if (ret == 0) {
		for (size_t i = 0; i < *n; i++)
			hs_census_add(c, HS_CENSUS_CXX, types[i].name, types[i].count,
				      types[i].bytes);
		hs_census_sort(c);
	} else if (ret != -ESRCH && ret != -HS_E_INTERRUPTED) {
		/* No C++ rows; the Python census stands. */
		hs_log(HS_LOG_WARN, "no C++ census: %s", hs_strerror(ret));
		*n = 0;
		ret = 0;
	}
	free(types);
	hs_cxx_vtables_release(&vs);
	return ret;
}

int cmd_types(int argc, char **argv)
{
	static const struct option longopts[] = {
		HS_CLI_COMMON_LONGOPTS,
		{ "top", required_argument, NULL, OPT_TOP },
		{ "jobs", required_argument, NULL, OPT_JOBS },
		{ NULL, 0, NULL, 0 },
	};
	struct hs_cli_opts o = { 0 };
	struct hs_cli_parser ps = {
		.cmd = "types", .usage = usage_text, .shortopts = NULL,
		.longopts = longopts, .o = &o, .argc = argc, .argv = argv,
	};
	struct hs_glibc_heap *h = NULL;
	struct hs_report_py rp;
	struct hs_target *t = NULL;
	uint64_t top = 0, jobs = 0;
	size_t ncxx = 0;
	int c, ret, herr;

	while ((c = hs_cli_next_opt(&ps)) > 0) {
		switch (c) {
		case OPT_TOP:
			if (hs_cli_parse_u64(optarg, &top) || top > 100000000)
				return hs_cli_usage_err("types", "invalid --top '%s'", optarg);
			break;
		case OPT_JOBS:
			if (hs_cli_parse_u64(optarg, &jobs) || jobs < 1 || jobs > 4)
				return hs_cli_usage_err("types", "invalid --jobs '%s' (1 to 4)",
							optarg);
			break;
		}
	}
	if (c < 0)
		return ps.exit;
	if (hs_cli_finish_options("types", argc, argv, &o))
		return HS_EXIT_USAGE;
	ret = hs_cli_open_target(&o, &t);
	if (ret)
		return ret;
	hs_cli_test_hold();

	memset(&rp, 0, sizeof(rp));
	/* The glibc heap's free lists (no walk): the census walks its chunks. */
	herr = hs_report_heap_open(t, NULL, HS_ARENA_AUTO, &h);
	if (herr < 0) {
		hs_glibc_close(h);
		h = NULL;
	}
	ret = hs_interrupted ? -HS_E_INTERRUPTED : hs_report_py_collect_jobs(t, h, (unsigned)jobs, &rp);
	if (ret == 0 && h && !hs_interrupted)
		ret = add_cxx(t, h, &rp.census, &ncxx);
	(void)hs_target_resume(t);
	if (ret == -HS_E_INTERRUPTED || hs_interrupted) {
		hs_report_py_release(&rp);
		hs_glibc_close(h);
		hs_target_close(t);
		hs_cli_err("interrupted; target released");
		return HS_EXIT_FATAL;
	}
	if (ret == -ESRCH || (t->state & HS_TSTATE_GONE)) {
		hs_report_py_release(&rp);
		hs_glibc_close(h);
		hs_target_close(t);
		hs_cli_err("the target exited during the census");
		return HS_EXIT_FATAL;
	}
	if (!ncxx && (!rp.py || (rp.err && !rp.census.n))) {
		struct hs_buf sb = HS_BUF_INIT;

		hs_report_py_error(&sb, &rp);
		hs_cli_err("%s", sb.buf);
		hs_buf_release(&sb);
		hs_report_py_release(&rp);
		hs_glibc_close(h);
		hs_target_close(t);
		return HS_EXIT_FATAL;
	}
	if (herr < 0) {
		struct hs_buf sb = HS_BUF_INIT;

		hs_report_heap_error(&sb, NULL, herr);
		hs_cli_warn("%s: classes and objects over 512 bytes not counted", sb.buf);
		hs_buf_release(&sb);
	}
	if (o.json) {
		struct hs_json j;

		hs_cli_json_begin(&j, "types");
		hs_report_header_json(&j, t);
		if (rp.is_python || !ncxx)
			hs_report_py_status_json(&j, &rp);
		hs_report_types_json(&j, &rp.census, (size_t)top);
		hs_cli_json_end(&j);
	} else {
		hs_report_header_text(stdout, t);
		fputc('\n', stdout);
		if (rp.is_python || !ncxx)
			hs_report_py_status_text(stdout, &rp);
		hs_report_types_text(stdout, &rp.census, (size_t)top);
	}
	ret = hs_cli_exit_for(t);
	if (ret == HS_EXIT_OK && (herr < 0 || (rp.py && rp.py->nproblems)))
		ret = HS_EXIT_PARTIAL;
	hs_report_py_release(&rp);
	hs_glibc_close(h);
	hs_target_close(t);
	if (fflush(stdout) != 0) {
		hs_cli_err("cannot write the report: %s", strerror(errno));
		return HS_EXIT_FATAL;
	}
	return ret;
}
