/*
 * heapscan snapshot: write a growth profile (regions, per-arena chunk
 * sizes, the most frequent strings) for a later 'heapscan diff'.
 */
#include "cli.h"
#include "report-growth.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum {
	OPT_KEEP = HS_OPT_FIRST_PRIVATE,
	OPT_NO_HEAP,
	OPT_NO_STRINGS,
};

static const char usage_text[] =
	"usage: heapscan snapshot (-p PID | -c CORE) -o FILE [options]\n\n"
	"Writes a growth profile of the target: the region table with its smaps\n"
	"figures, the in-use chunks by size per glibc arena, the most frequent\n"
	"strings, on a Python process its objects by type (as 'heapscan types'\n"
	"counts them), totals, time, pid and exe.  'heapscan diff A B' compares two.\n"
	"The file is small line-oriented text (see PROFILE FILES in heapscan(1)).\n\n"
	"options:\n"
	"%s"
	"  -o, --output FILE  the profile to write ('-' for stdout; required)\n"
	"      --keep K       strings kept: the K most frequent (default 10000);\n"
	"                     a string below the cut diffs as '<=N', not 0\n"
	"      --no-heap      skip the glibc heap walk\n"
	"      --no-strings   skip the string count\n";

int cmd_snapshot(int argc, char **argv)
{
	static const struct option longopts[] = {
		HS_CLI_COMMON_LONGOPTS,
		{ "output", required_argument, NULL, 'o' },
		{ "keep", required_argument, NULL, OPT_KEEP },
		{ "no-heap", no_argument, NULL, OPT_NO_HEAP },
		{ "no-strings", no_argument, NULL, OPT_NO_STRINGS },
		{ NULL, 0, NULL, 0 },
	};
	struct hs_cli_opts o = { 0 };
	struct hs_cli_parser ps = {
		.cmd = "snapshot", .usage = usage_text, .shortopts = "o:",
		.longopts = longopts, .o = &o, .argc = argc, .argv = argv,
	};
	struct hs_profile_opts po = { 0 };
	struct hs_profile p;
	struct hs_target *t = NULL;
	const char *output = NULL;
	uint64_t v;
	FILE *f;
	int c, ret;

	while ((c = hs_cli_next_opt(&ps)) > 0) {
		switch (c) {
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
	ret = hs_cli_open_target(&o, &t);
	if (ret)
		return ret;
	ret = hs_growth_profile_target(t, &po, &p);
	if (ret) {
		hs_profile_release(&p);
		hs_target_close(t);
		return ret;
	}
	f = strcmp(output, "-") ? fopen(output, "w") : stdout;
	if (!f) {
		hs_cli_err("cannot write '%s': %s", output, strerror(errno));
		ret = HS_EXIT_FATAL;
		goto out;
	}
	ret = hs_profile_write(&p, f);
	if (f != stdout && fclose(f) != 0 && !ret)
		ret = -errno;
	if (ret < 0) {
		hs_cli_err("cannot write '%s': %s", output, hs_strerror(ret));
		ret = HS_EXIT_FATAL;
		goto out;
	}
	if (o.json) {
		struct hs_json j;

		hs_cli_json_begin(&j, "snapshot");
		hs_json_str(&j, "output", output);
		hs_report_profile_json(&j, "profile", &p);
		hs_json_u64(&j, "regions", p.nregions);
		hs_json_u64(&j, "arenas", p.narenas);
		hs_json_u64(&j, "chunk_sizes", p.nchunks);
		hs_json_u64(&j, "strings", p.nstrings);
		hs_cli_json_end(&j);
	} else if (f != stdout) {
		printf("wrote %s: %zu regions, %zu arenas, %zu chunk sizes, %zu strings",
		       output, p.nregions, p.narenas, p.nchunks, p.nstrings);
		if (p.heap_error[0])
			printf(" (heap: %s)", p.heap_error);
		if (!strcmp(p.kind, "live"))
			printf("; stopped %.3f ms", (double)p.stop_ns / 1e6);
		printf("\n");
	}
	ret = p.partial ? HS_EXIT_PARTIAL : HS_EXIT_OK;
out:
	hs_profile_release(&p);
	hs_target_close(t);
	if (fflush(stdout) != 0) {
		hs_cli_err("cannot write the report: %s", strerror(errno));
		return HS_EXIT_FATAL;
	}
	return ret;
}
