/*
 * heapscan diff: what grew between two pictures of a process.  Each side
 * is a profile ('heapscan snapshot'), a heapscan dump or any core file;
 * the second may be a live process (-p PID, "now").
 */
#include "cli.h"
#include "report-growth.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum {
	OPT_TOP = HS_OPT_FIRST_PRIVATE,
	OPT_KEEP,
	OPT_TOLERANCE,
	OPT_MIN_COUNT,
	OPT_FORCE,
};

static const char usage_text[] =
	"usage: heapscan diff A (B | -p PID) [options]\n\n"
	"Compares two pictures of a process and ranks what grew by bytes:\n"
	"region classes, regions (matched by start address and path, so [heap]\n"
	"and each thread arena's heap are told apart), in-use chunk sizes per\n"
	"arena, strings, objects by type of a Python process (count before,\n"
	"after, delta, ratio), then what shrank.\n"
	"Items that grew by the same count or at the same rate (within the\n"
	"tolerance) are grouped: such a group is usually one leaking record type;\n"
	"each item shows its own delta, and a group's bytes are its chunks'\n"
	"(strings live inside them), never chunks and strings added up.\n"
	"A and B are each a profile (heapscan snapshot), a heapscan dump or any\n"
	"core file; -p PID profiles a live process as B.  Regions are compared by\n"
	"Rss when both sides have smaps figures (live), else by Size.\n"
	"Different executables are refused (--force compares anyway); different\n"
	"pids or heapscan versions are warnings.\n\n"
	"options:\n"
	"%s"
	"      --top N          items listed per kind (default 10, 0: all)\n"
	"      --tolerance PCT  deltas, or rates (growth / count before), within\n"
	"                       PCT%% of each other correlate (default 5)\n"
	"      --min-count N    count growth an item needs to be grouped (default 16)\n"
	"      --keep K         strings kept when profiling a core or -p (default 10000)\n"
	"      --force          compare profiles of different executables\n";

static int cmd_diff(int argc, char **argv)
{
	static const struct option longopts[] = {
		HS_CLI_COMMON_LONGOPTS,
		{ "top", required_argument, NULL, OPT_TOP },
		{ "keep", required_argument, NULL, OPT_KEEP },
		{ "tolerance", required_argument, NULL, OPT_TOLERANCE },
		{ "min-count", required_argument, NULL, OPT_MIN_COUNT },
		{ "force", no_argument, NULL, OPT_FORCE },
		{ NULL, 0, NULL, 0 },
	};
	struct hs_cli_opts o = { 0 };
	struct hs_cli_parser ps = {
		.cmd = "diff", .usage = usage_text, .shortopts = NULL,
		.longopts = longopts, .o = &o, .argc = argc, .argv = argv,
	};
	struct hs_profile_opts po = { 0 };
	struct hs_diff_opts dopt = { 0 };
	struct hs_profile a, b;
	struct hs_diff d;
	uint64_t top = 10, v;
	bool force = false;
	const char *pa, *pb = NULL;
	int c, ret;

	while ((c = hs_cli_next_opt(&ps)) > 0) {
		switch (c) {
		case OPT_TOP:
			if (hs_cli_parse_u64(optarg, &top) || top > 1000000)
				return hs_cli_usage_err("diff", "invalid --top '%s'", optarg);
			break;
		case OPT_KEEP:
			if (hs_cli_parse_u64(optarg, &v) || v == 0 || v > HS_PROFILE_KEEP_MAX)
				return hs_cli_usage_err("diff", "invalid --keep '%s'", optarg);
			po.keep = (unsigned)v;
			break;
		case OPT_TOLERANCE: {
			char *end;
			double x;

			errno = 0;
			x = strtod(optarg, &end);
			if (errno || *end || end == optarg || !(x > 0 && x < 100))
				return hs_cli_usage_err("diff", "invalid --tolerance '%s' "
							"(a percentage above 0, below 100)", optarg);
			dopt.tolerance = x / 100;
			break;
		}
		case OPT_MIN_COUNT:
			if (hs_cli_parse_u64(optarg, &v) || v == 0)
				return hs_cli_usage_err("diff", "invalid --min-count '%s'", optarg);
			dopt.min_count = v;
			break;
		case OPT_FORCE:
			force = true;
			break;
		}
	}
	if (c < 0)
		return ps.exit;
	if (o.core)
		return hs_cli_usage_err("diff", "name cores as arguments: heapscan diff A B");
	if (optind >= argc)
		return hs_cli_usage_err("diff", "nothing to compare: give A and B (or -p PID)");
	pa = argv[optind++];
	if (optind < argc)
		pb = argv[optind++];
	if (optind < argc)
		return hs_cli_usage_err("diff", "unexpected argument '%s'", argv[optind]);
	if (!pb && !o.pid)
		return hs_cli_usage_err("diff", "nothing to compare A with: give B or -p PID");
	if (pb && o.pid)
		return hs_cli_usage_err("diff", "B and -p PID exclude each other");

	ret = hs_growth_load(pa, o.exe, &po, &a);
	if (ret) {
		hs_profile_release(&a);
		return ret;
	}
	if (pb) {
		ret = hs_growth_load(pb, o.exe, &po, &b);
	} else {
		struct hs_target *t = NULL;

		hs_profile_init(&b);
		ret = hs_cli_open_target(&o, &t);
		if (!ret) {
			hs_profile_release(&b);
			ret = hs_growth_profile_target(t, &po, &b);
			hs_target_close(t);
		}
	}
	if (ret)
		goto out_b;
	if (hs_profile_exe_differs(&a, &b) && !force) {
		hs_cli_err("'%s' and '%s' are of different executables ('%s' and '%s'); "
			   "--force compares them anyway", pa, pb ? pb : "the live process",
			   a.exe, b.exe);
		ret = HS_EXIT_FATAL;
		goto out_b;
	}
	ret = hs_diff_compute(&d, &a, &b, &dopt);
	if (ret < 0) {
		hs_cli_err("cannot compare: %s", hs_strerror(ret));
		hs_diff_release(&d);
		ret = HS_EXIT_FATAL;
		goto out_b;
	}
	if (o.json) {
		struct hs_json j;

		hs_cli_json_begin(&j, "diff");
		hs_report_profile_json(&j, "a", &a);
		hs_report_profile_json(&j, "b", &b);
		hs_report_growth_json(&j, &d, (unsigned)top, 0);
		hs_cli_json_end(&j);
	} else {
		/* Warnings go to stderr as well, where scripts look for them. */
		printf("heapscan %s diff\n", HS_VERSION);
		hs_report_profile_text(stdout, "A:", &a);
		hs_report_profile_text(stdout, "B:", &b);
		hs_report_growth_text(stdout, &d, (unsigned)top, 0);
	}
	{
		const char *w = d.warnings.buf;

		while (*w) {
			const char *nl = strchr(w, '\n');
			int n = nl ? (int)(nl - w) : (int)strlen(w);

			hs_cli_warn("%.*s", n, w);
			w += n + (nl ? 1 : 0);
		}
	}
	ret = a.partial || b.partial ? HS_EXIT_PARTIAL : HS_EXIT_OK;
	hs_diff_release(&d);
out_b:
	hs_profile_release(&b);
	hs_profile_release(&a);
	return ret; /* main() checks that stdout was written */
}

const struct hs_command hs_cmd_diff = {
	.name = "diff",
	.help = "what grew between two profiles, dumps or cores",
	.main = cmd_diff,
};
