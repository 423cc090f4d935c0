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

static int cmd_snapshot(int argc, char **argv)
{
	static const struct option longopts[] = {
		HS_CLI_COMMON_LONGOPTS,
		{ "output", required_argument, NULL, 'o' },
		{ "keep", required_argument, NULL, OPT_KEEP },
		{ "no-heap", no_argument, NULL, OPT_NO_HEAP },
		{ "no-strings", no_argument, NULL, OPT_NO_STRINGS },
		{ "force", no_argument, NULL, 'f' },
		{ "format", required_argument, NULL, OPT_FORMAT },
		{ NULL, 0, NULL, 0 },
	};
	struct hs_cli_opts o = { 0 };
	struct hs_cli_parser ps = {
		.cmd = "snapshot", .usage = usage_text, .shortopts = "o:f",
		.longopts = longopts, .o = &o, .argc = argc, .argv = argv,
	};
	struct hs_profile_opts po = { 0 };
	struct hs_profile p;
	struct hs_target *t = NULL;
	const char *output = NULL;
	struct hs_outfile of = { .fd = -1 };
	bool force = false, to_file, pprof = false;
	size_t pprof_size = 0;
	uint64_t v;
	FILE *f;
	int c, ret;

	while ((c = hs_cli_next_opt(&ps)) > 0) {
		switch (c) {
		case 'f':
			force = true;
			break;
		case 'o':
			output = optarg;
			break;
		case OPT_KEEP:
			if (hs_cli_parse_u64(optarg, &v) || v == 0 || v > HS_PROFILE_KEEP_MAX)
				return hs_cli_usage_err("snapshot", "invalid --keep '%s'", optarg);
			po.keep = (unsigned)v;
			break;
		case OPT_NO_HEAP:
			po.flags |= HS_PROFILE_NO_HEAP;
			break;
		case OPT_NO_STRINGS:
			po.flags |= HS_PROFILE_NO_STRINGS;
			break;
		case OPT_FORMAT:
			if (strcmp(optarg, "pprof") && strcmp(optarg, "profile"))
				return hs_cli_usage_err("snapshot", "unknown --format '%s' "
							"(profile or pprof)", optarg);
			pprof = !strcmp(optarg, "pprof");
			break;
		}
	}
	if (c < 0)
		return ps.exit;
	if (hs_cli_finish_options("snapshot", argc, argv, &o))
		return HS_EXIT_USAGE;
	if (!output)
		return hs_cli_usage_err("snapshot", "no output: give -o FILE");
	if (o.json && !strcmp(output, "-"))
		return hs_cli_usage_err("snapshot", "--json and -o - both want stdout");
	if (pprof && !strcmp(output, "-") && isatty(1))
		return hs_cli_usage_err("snapshot", "a pprof profile is binary: redirect "
					"-o - to a file or a pipe");
	/* The file first: a refusal must not stop the target. */
	to_file = strcmp(output, "-") != 0;
	if (to_file) {
		ret = hs_outfile_open(&of, output, force ? HS_OUTFILE_FORCE : 0);
		if (ret == -EEXIST) {
			hs_cli_err("'%s' exists; use --force to replace it", output);
			return HS_EXIT_FATAL;
		}
		if (ret < 0) {
			hs_cli_err("cannot write '%s': %s", output, hs_strerror(ret));
			return HS_EXIT_FATAL;
		}
	}
	ret = hs_cli_open_target(&o, &t);
	if (ret) {
		hs_outfile_abort(&of);
		return ret;
	}
	ret = hs_growth_profile_target(t, &po, &p);
	if (ret) {
		hs_outfile_abort(&of);
		hs_profile_release(&p);
		hs_target_close(t);
		return ret;
	}
	f = to_file ? hs_outfile_stream(&of) : stdout;
	if (!f) {
		hs_outfile_abort(&of);
		hs_cli_err("cannot write '%s': %s", output, strerror(errno));
		ret = HS_EXIT_FATAL;
		goto out;
	}
	ret = pprof ? hs_report_pprof_write(f, &p, t->info.comm, &pprof_size)
		    : hs_profile_write(&p, f);
	if (to_file) {
		if (ret < 0)
			hs_outfile_abort(&of);
		else
			ret = hs_outfile_commit(&of);
	}
	if (ret < 0 && !to_file && ferror(stdout)) {
		/* main() says it, once. */
		ret = HS_EXIT_FATAL;
		goto out;
	}
	if (ret < 0) {
		if (ret == -EEXIST)
			hs_cli_err("'%s' exists; use --force to replace it", output);
		else
			hs_cli_err("cannot write '%s': %s; nothing written", output,
				   hs_strerror(ret));
		ret = HS_EXIT_FATAL;
		goto out;
	}
	if (o.json) {
		struct hs_json j;

		hs_cli_json_begin(&j, "snapshot");
		hs_json_str(&j, "output", output);
		hs_json_str(&j, "format", pprof ? "pprof" : "profile");
		hs_report_profile_json(&j, "profile", &p);
		hs_json_u64(&j, "regions", p.nregions);
		hs_json_u64(&j, "arenas", p.narenas);
		hs_json_u64(&j, "chunk_sizes", p.nchunks);
		hs_json_u64(&j, "strings", p.nstrings);
		hs_report_pages_json(&j, t);
		hs_cli_json_end(&j);
	} else if (to_file) {
		if (pprof)
			printf("wrote %s (pprof, %zu bytes): %zu arenas, %zu chunk sizes, "
			       "%zu strings", output, pprof_size, p.narenas, p.nchunks,
			       p.nstrings);
		else
			printf("wrote %s: %zu regions, %zu arenas, %zu chunk sizes, %zu strings",
			       output, p.nregions, p.narenas, p.nchunks, p.nstrings);
		if (p.heap_error[0])
			printf(" (heap: %s)", p.heap_error);
		if (!strcmp(p.kind, "live"))
			printf("; stopped %.3f ms", (double)p.stop_ns / 1e6);
		if (t->swapped_in || t->swap_skipped) {
			char a[16], b[16];

			printf("; swapped in %s, left in swap %s",
			       hs_fmt_bytes(a, sizeof(a), t->swapped_in),
			       hs_fmt_bytes(b, sizeof(b), t->swap_skipped));
		}
		printf("\n");
	}
	ret = p.partial ? HS_EXIT_PARTIAL : HS_EXIT_OK;
out:
	hs_profile_release(&p);
	hs_target_close(t);
	return ret; /* main() checks that stdout was written */
}

const struct hs_command hs_cmd_snapshot = {
	.name = "snapshot",
	.help = "write a growth profile for a later diff",
	.main = cmd_snapshot,
};
