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

static const struct option options[] = {
	{ "top", required_argument, NULL, OPT_TOP },
	{ "jobs", required_argument, NULL, OPT_JOBS },
	{ NULL, 0, NULL, 0 },
};

struct types {
	uint64_t top, jobs;
	struct hs_glibc_heap *h;
	struct hs_report_py rp;
	size_t ncxx;
	int herr;
};

static int option(void *state, int c, const char *arg)
{
	struct types *s = state;

	switch (c) {
	case OPT_TOP:
		if (hs_cli_parse_u64(arg, &s->top) || s->top > 100000000)
			return hs_cli_usage_err("types", "invalid --top '%s'", arg);
		break;
	case OPT_JOBS:
		if (hs_cli_parse_u64(arg, &s->jobs) || s->jobs < 1 || s->jobs > 4)
			return hs_cli_usage_err("types", "invalid --jobs '%s' (1 to 4)", arg);
		break;
	}
	return 0;
}

static int collect(struct hs_run *run)
{
	struct types *s = run->state;
	struct hs_target *t = run->t;
	int ret;

	/* The glibc heap's free lists (no walk): the census walks its chunks. */
	s->herr = hs_report_heap_open(t, NULL, HS_ARENA_AUTO, &s->h);
	if (s->herr < 0) {
		hs_glibc_close(s->h);
		s->h = NULL;
	}
	ret = hs_interrupted ? -HS_E_INTERRUPTED
			     : hs_report_py_collect_jobs(t, s->h, (unsigned)s->jobs, &s->rp);
	if (ret == 0 && s->h && !hs_interrupted)
		ret = add_cxx(t, s->h, &s->rp.census, &s->ncxx);
	(void)hs_target_resume(t);
	if (ret == -HS_E_INTERRUPTED || ret == -ESRCH)
		return ret;
	if (t->state & HS_TSTATE_GONE)
		return -ESRCH;
	/* Neither a Python census nor C++ rows: explain says why. */
	if (!s->ncxx && (!s->rp.py || (s->rp.err && !s->rp.census.n)))
		return -HS_E_UNSUPPORTED;
	if (s->herr < 0) {
		struct hs_buf sb = HS_BUF_INIT;

		hs_report_heap_error(&sb, NULL, s->herr);
		hs_cli_warn("%s: classes and objects over 512 bytes not counted", sb.buf);
		hs_buf_release(&sb);
	}
	return 0;
}

static int explain(struct hs_run *run)
{
	struct types *s = run->state;
	struct hs_buf sb = HS_BUF_INIT;

	hs_report_py_error(&sb, &s->rp);
	hs_cli_err("%s", sb.buf);
	hs_buf_release(&sb);
	return HS_EXIT_FATAL;
}

static void render(struct hs_run *run, FILE *out, struct hs_json *j)
{
	struct types *s = run->state;
	bool status = s->rp.is_python || !s->ncxx;

	if (j) {
		if (status)
			hs_report_py_status_json(j, &s->rp);
		hs_report_types_json(j, &s->rp.census, (size_t)s->top);
	} else {
		fputc('\n', out);
		if (status)
			hs_report_py_status_text(out, &s->rp);
		hs_report_types_text(out, &s->rp.census, (size_t)s->top);
	}
	run->partial = s->herr < 0 || (s->rp.py && s->rp.py->nproblems);
}

static void release(void *state)
{
	struct types *s = state;

	hs_report_py_release(&s->rp);
	hs_glibc_close(s->h);
}

const struct hs_command hs_cmd_types = {
	.name = "types",
	.help = "live objects by type, like jmap -histo (Python)",
	.usage = usage_text,
	.options = options,
	.flags = HS_CMD_HEADER_JSON | HS_CMD_HEADER_TEXT,
	.state_size = sizeof(struct types),
	.option = option,
	.collect = collect,
	.explain = explain,
	.render = render,
	.release = release,
};
