/*
 * heapscan snapshot: write a growth profile (regions, per-arena chunk
 * sizes, the most frequent strings) for a later 'heapscan diff'.
 */
#include "cli.h"
#include "report-growth.h"
#include "hs_outfile.h"
#include "report-pprof.h"
#include "report.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum {
	OPT_KEEP = HS_OPT_FIRST_PRIVATE,
	OPT_NO_HEAP,
	OPT_NO_STRINGS,
	OPT_FORMAT,
};

static const char usage_text[] =
	"usage: heapscan snapshot (-p PID | -c CORE) -o FILE [options]\n\n"
	"Writes a growth profile of the target: the region table with its smaps\n"
	"figures, the in-use chunks by size per glibc arena (jemalloc: regions\n"
	"by size class per arena), the most frequent strings, on a Python process\n"
	"its objects by type (as 'heapscan types' counts them), totals, time, pid\n"
	"and exe.  'heapscan diff A B' compares two.\n"
	"The file is small line-oriented text (see PROFILE FILES in heapscan(1)), or\n"
	"with --format pprof a gzip-compressed pprof memory profile for go tool pprof,\n"
	"Pyroscope or Parca (see PPROF PROFILES in heapscan(1)).\n\n"
	"options:\n"
	"%s"
	"  -o, --output FILE  the profile to write ('-' for stdout; required): mode\n"
	"                     0600, written under a temporary name then renamed;\n"
	"                     an existing FILE is refused\n"
	"  -f, --force        replace FILE if it exists\n"
	"      --format F     profile (default: heapscan's text profile) or pprof\n"
	"                     (samples inuse_objects and inuse_space)\n"
	"      --keep K       strings kept: the K most frequent (default 10000);\n"
	"                     a string below the cut diffs as '<=N', not 0\n"
	"      --no-heap      skip the malloc heap walk\n"
	"      --no-strings   skip the string count\n";

static const struct option options[] = {
	{ "output", required_argument, NULL, 'o' },
	{ "keep", required_argument, NULL, OPT_KEEP },
	{ "no-heap", no_argument, NULL, OPT_NO_HEAP },
	{ "no-strings", no_argument, NULL, OPT_NO_STRINGS },
	{ "force", no_argument, NULL, 'f' },
	{ "format", required_argument, NULL, OPT_FORMAT },
	{ NULL, 0, NULL, 0 },
};

struct snapshot {
	struct hs_profile_opts po;
	struct hs_profile p;
	uint64_t stop0;
	const char *output;
	struct hs_outfile of;
	bool force, to_file, pprof;
	bool writing;            /* collect succeeded: finish's error */
	size_t pprof_size;
};

static void init(void *state)
{
	struct snapshot *s = state;

	s->of.fd = -1;
}

static int option(void *state, int c, const char *arg)
{
	struct snapshot *s = state;
	uint64_t v;

	switch (c) {
	case 'f':
		s->force = true;
		break;
	case 'o':
		s->output = arg;
		break;
	case OPT_KEEP:
		if (hs_cli_parse_u64(arg, &v) || v == 0 || v > HS_PROFILE_KEEP_MAX)
			return hs_cli_usage_err("snapshot", "invalid --keep '%s'", arg);
		s->po.keep = (unsigned)v;
		break;
	case OPT_NO_HEAP:
		s->po.flags |= HS_PROFILE_NO_HEAP;
		break;
	case OPT_NO_STRINGS:
		s->po.flags |= HS_PROFILE_NO_STRINGS;
		break;
	case OPT_FORMAT:
		if (strcmp(arg, "pprof") && strcmp(arg, "profile"))
			return hs_cli_usage_err("snapshot", "unknown --format '%s' "
						"(profile or pprof)", arg);
		s->pprof = !strcmp(arg, "pprof");
		break;
	}
	return 0;
}

static int check(void *state, const struct hs_cli_opts *o)
{
	struct snapshot *s = state;
	int ret;

	if (!s->output)
		return hs_cli_usage_err("snapshot", "no output: give -o FILE");
	if (o->json && !strcmp(s->output, "-"))
		return hs_cli_usage_err("snapshot", "--json and -o - both want stdout");
	if (s->pprof && !strcmp(s->output, "-") && isatty(1))
		return hs_cli_usage_err("snapshot", "a pprof profile is binary: redirect "
					"-o - to a file or a pipe");
	/* The file first: a refusal must not stop the target. */
	s->to_file = strcmp(s->output, "-") != 0;
	if (!s->to_file)
		return 0;
	ret = hs_outfile_open(&s->of, s->output, s->force ? HS_OUTFILE_FORCE : 0);
	if (ret == -EEXIST) {
		hs_cli_err("'%s' exists; use --force to replace it", s->output);
		return HS_EXIT_FATAL;
	}
	if (ret < 0) {
		hs_cli_err("cannot write '%s': %s", s->output, hs_strerror(ret));
		return HS_EXIT_FATAL;
	}
	return 0;
}

static int collect(struct hs_run *run)
{
	struct snapshot *s = run->state;

	s->stop0 = run->t->stop_ns;
	return hs_growth_profile_collect(run->t, &s->po, &s->p);
}

/* The profile, written once the target runs again. */
static int finish(struct hs_run *run)
{
	struct snapshot *s = run->state;
	FILE *f;
	int ret;

	s->writing = true;
	s->p.stop_ns = run->t->stop_ns - s->stop0;
	f = s->to_file ? hs_outfile_stream(&s->of) : stdout;
	if (!f)
		return -errno;
	ret = s->pprof ? hs_report_pprof_write(f, &s->p, run->t->info.comm, &s->pprof_size)
		       : hs_profile_write(&s->p, f);
	if (s->to_file) {
		if (ret < 0)
			hs_outfile_abort(&s->of);
		else
			ret = hs_outfile_commit(&s->of);
	}
	return ret;
}

static int explain(struct hs_run *run)
{
	struct snapshot *s = run->state;

	if (!s->writing)
		hs_cli_err("cannot profile %s: %s", run->t->source, hs_strerror(run->err));
	else if (!s->to_file && ferror(stdout))
		; /* main() says it, once. */
	else if (run->err == -EEXIST)
		hs_cli_err("'%s' exists; use --force to replace it", s->output);
	else
		hs_cli_err("cannot write '%s': %s; nothing written", s->output,
			   hs_strerror(run->err));
	return HS_EXIT_FATAL;
}

static void render(struct hs_run *run, FILE *out, struct hs_json *j)
{
	struct snapshot *s = run->state;
	const struct hs_profile *p = &s->p;
	struct hs_target *t = run->t;

	run->partial = p->partial;
	if (j) {
		hs_json_str(j, "output", s->output);
		hs_json_str(j, "format", s->pprof ? "pprof" : "profile");
		hs_report_profile_json(j, "profile", p);
		hs_json_u64(j, "regions", p->nregions);
		hs_json_u64(j, "arenas", p->narenas);
		hs_json_u64(j, "chunk_sizes", p->nchunks);
		hs_json_u64(j, "strings", p->nstrings);
		hs_report_pages_json(j, t);
		return;
	}
	if (!s->to_file)
		return;
	if (s->pprof)
		fprintf(out, "wrote %s (pprof, %zu bytes): %zu arenas, %zu chunk sizes, "
			"%zu strings", s->output, s->pprof_size, p->narenas, p->nchunks,
			p->nstrings);
	else
		fprintf(out, "wrote %s: %zu regions, %zu arenas, %zu chunk sizes, %zu strings",
			s->output, p->nregions, p->narenas, p->nchunks, p->nstrings);
	if (p->heap_error[0])
		fprintf(out, " (heap: %s)", p->heap_error);
	if (hs_target_holds(t))
		fprintf(out, "; stopped %.3f ms", (double)p->stop_ns / 1e6);
	if (t->swapped_in || t->swap_skipped) {
		char a[16], b[16];

		fprintf(out, "; swapped in %s, left in swap %s",
			hs_fmt_bytes(a, sizeof(a), t->swapped_in),
			hs_fmt_bytes(b, sizeof(b), t->swap_skipped));
	}
	fprintf(out, "\n");
}

static void release(void *state)
{
	struct snapshot *s = state;

	hs_outfile_abort(&s->of);
	hs_profile_release(&s->p);
}

const struct hs_command hs_cmd_snapshot = {
	.name = "snapshot",
	.help = "write a growth profile for a later diff",
	.usage = usage_text,
	.shortopts = "o:f",
	.options = options,
	.flags = HS_CMD_OUTPUT_FILE,
	.state_size = sizeof(struct snapshot),
	.init = init,
	.option = option,
	.check = check,
	.collect = collect,
	.finish = finish,
	.explain = explain,
	.render = render,
	.release = release,
};
