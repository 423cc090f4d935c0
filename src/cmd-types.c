/*
 * heapscan types: a histogram of live objects by type, as `jmap -histo`
 * prints it (count, bytes, type), read from outside the process.  Python
 * objects today (heap/hs_python.h); other kinds add rows to the same
 * census.
 */
#include "cli.h"
#include "report.h"
#include "report-heap.h"
#include "report-python.h"

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
	"Dead objects kept on type freelists are shown apart, not counted.\n\n"
	"options:\n"
	"%s"
	"      --top N      list the N largest types only (default 0: all)\n"
	"      --jobs N     threads reading pymalloc's arenas, 1 to 4 (default 2,\n"
	"                   or 1 on one CPU)\n";

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
	if (!rp.py || (rp.err && !rp.census.n)) {
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
		hs_report_py_status_json(&j, &rp);
		hs_report_types_json(&j, &rp.census, (size_t)top);
		hs_cli_json_end(&j);
	} else {
		hs_report_header_text(stdout, t);
		fputc('\n', stdout);
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
