/*
 * heapscan heap: walk the glibc heap.  Every arena and its heaps, chunks in
 * use and free by kind (tcache, fastbin, unsorted, small, large, top),
 * fragmentation, mmapped chunks, in-use chunks by size, problems found.
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
	"Walks the glibc malloc heap (glibc 2.12-2.40, x86_64): each arena's heaps,\n"
	"system memory, chunks in use and free by kind (tcache, fastbin, unsorted,\n"
	"small, large, top), fragmentation (free-but-held bytes, top excluded, as a\n"
	"share of the arena's system memory), mmapped chunks, and in-use chunks by\n"
	"size ranked by total bytes.  Corrupt metadata is reported with its address.\n\n"
	"options:\n"
	"%s"
	"      --top N            size classes to list (default 20)\n"
	"      --main-arena ADDR  main_arena's address (hex), instead of finding it\n"
	"      --main-arena-from WAY\n"
	"                         find main_arena only from WAY: symbol (libc's debug\n"
	"                         info), disasm (libc's malloc functions), scan\n"
	"                         (libc's data); default auto: each in that order\n"
	"      --no-mmapped       skip the search for mmapped chunks\n";

int cmd_heap(int argc, char **argv)
{
	static const struct option longopts[] = {
		HS_CLI_COMMON_LONGOPTS,
		{ "top", required_argument, NULL, OPT_TOP },
		{ "main-arena", required_argument, NULL, OPT_MAIN_ARENA },
		{ "main-arena-from", required_argument, NULL, OPT_MAIN_ARENA_FROM },
		{ "no-mmapped", no_argument, NULL, OPT_NO_MMAPPED },
		{ NULL, 0, NULL, 0 },
	};
	struct hs_cli_opts o = { 0 };
	struct hs_cli_parser ps = {
		.cmd = "heap", .usage = usage_text, .shortopts = NULL,
		.longopts = longopts, .o = &o, .argc = argc, .argv = argv,
	};
	struct hs_glibc_opts go = { 0 };
	struct hs_glibc_heap *h = NULL;
	struct hs_target *t = NULL;
	uint64_t top = 20;
	int c, ret, err, way = HS_ARENA_AUTO;

	while ((c = hs_cli_next_opt(&ps)) > 0) {
		switch (c) {
		case OPT_TOP:
			if (hs_cli_parse_u64(optarg, &top) || top > 1000000)
				return hs_cli_usage_err("heap", "invalid --top '%s'", optarg);
			break;
		case OPT_MAIN_ARENA:
			if (hs_cli_parse_addr(optarg, &go.main_arena) || !go.main_arena ||
			    (go.main_arena & 7))
				return hs_cli_usage_err("heap", "invalid --main-arena '%s'", optarg);
			break;
		case OPT_MAIN_ARENA_FROM:
			way = hs_arena_way_parse(optarg);
			if (way < 0)
				return hs_cli_usage_err("heap", "invalid --main-arena-from '%s' "
							"(auto, symbol, disasm, scan)", optarg);
			break;
		case OPT_NO_MMAPPED:
			go.flags |= HS_GLIBC_NO_MMAPPED;
			break;
		}
	}
	if (c < 0)
		return ps.exit;
	if (hs_cli_finish_options("heap", argc, argv, &o))
		return HS_EXIT_USAGE;
	ret = hs_cli_open_target(&o, &t);
	if (ret)
		return ret;
	hs_cli_test_hold();

	err = hs_report_heap_collect_way(t, &go, (enum hs_arena_way)way, &h);
	/* Everything is read: let the target run before formatting. */
	(void)hs_target_resume(t);
	if (err == -HS_E_INTERRUPTED || hs_interrupted) {
		hs_glibc_close(h);
		hs_target_close(t);
		hs_cli_err("interrupted; target released");
		return HS_EXIT_FATAL;
	}
	if (err < 0) {
		struct hs_buf sb = HS_BUF_INIT;

		hs_report_heap_error(&sb, h, err);
		hs_cli_err("%s", sb.buf);
		hs_buf_release(&sb);
		hs_glibc_close(h);
		hs_target_close(t);
		return HS_EXIT_FATAL;
	}
	if (o.json) {
		struct hs_json j;

		hs_cli_json_begin(&j, "heap");
		hs_report_header_json(&j, t);
		hs_report_heap_json(&j, h, 0, (unsigned)top, HS_REPORT_HEAP_DETAIL);
		hs_cli_json_end(&j);
	} else {
		hs_report_header_text(stdout, t);
		hs_report_heap_text(stdout, h, 0, (unsigned)top, HS_REPORT_HEAP_DETAIL);
	}
	ret = hs_cli_exit_for(t);
	hs_glibc_close(h);
	hs_target_close(t);
	return ret; /* main() checks that stdout was written */
}
