/*
 * heapscan heap: name the allocator and walk its heap: jemalloc's (extents,
 * regions per size class, thread caches), or glibc's (every arena and its
 * heaps, chunks in use and free by kind: tcache, fastbin, unsorted, small,
 * large, top; fragmentation, mmapped chunks, in-use chunks by size), with
 * the problems found.
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
	"Names the allocator (glibc, jemalloc, tcmalloc, mimalloc, musl) and walks its\n"
	"heap when heapscan can: jemalloc 5.3 (extents, slabs, thread caches, regions\n"
	"in use, cached and free per size class), or the glibc malloc heap (glibc\n"
	"2.12-2.40, x86_64): each arena's heaps, system memory, chunks in use and free\n"
	"by kind (tcache, fastbin, unsorted, small, large, top), fragmentation\n"
	"(free-but-held bytes, top excluded, as a share of the arena's system memory),\n"
	"mmapped chunks, and in-use chunks by size ranked by total bytes.  Corrupt\n"
	"metadata is reported with its address.  An allocator heapscan does not walk\n"
	"is named, and the command fails (exit 2; --json still prints the document,\n"
	"with heap.error).\n\n"
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
	struct hs_report_alloc ra = { 0 };
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

	/* The allocator first: glibc's walker runs only on a glibc heap (or
	 * when nothing else is recognised). */
	err = hs_report_alloc_collect(t, &ra);
	if (err == 0 && hs_report_alloc_glibc(&ra))
		err = hs_report_heap_collect_way(t, &go, (enum hs_arena_way)way, &h);
	else if (err == 0 && !ra.je)
		err = ra.je_err < 0 ? ra.je_err : -HS_E_UNSUPPORTED;
	/* Everything is read: let the target run before formatting. */
	(void)hs_target_resume(t);
	if (err == -HS_E_INTERRUPTED || hs_interrupted) {
		hs_glibc_close(h);
		hs_report_alloc_release(&ra);
		hs_target_close(t);
		hs_cli_err("interrupted; target released");
		return HS_EXIT_FATAL;
	}
	if (err < 0) {
		struct hs_buf sb = HS_BUF_INIT;

		/* --json: still one complete document, heap.error saying why. */
		if (o.json) {
			struct hs_json j;

			hs_cli_json_begin(&j, "heap");
			hs_report_header_json(&j, t);
			hs_report_heap_json_any(&j, &ra, h, err, (unsigned)top,
						HS_REPORT_HEAP_DETAIL);
			hs_cli_json_end(&j);
		}
		if (hs_report_alloc_glibc(&ra)) {
			hs_report_heap_error(&sb, h, err);
		} else {
			hs_buf_addf(&sb, "the allocator is %s (%s): ", hs_alloc_name(ra.ai.kind),
				    ra.ai.module);
			if (ra.ai.kind == HS_ALLOC_JEMALLOC)
				hs_buf_addf(&sb, "its heap could not be walked: %s",
					    hs_strerror(err));
			else
				hs_buf_adds(&sb, "heapscan does not walk its heap");
		}
		hs_cli_err("%s", sb.buf);
		hs_buf_release(&sb);
		hs_glibc_close(h);
		hs_report_alloc_release(&ra);
		hs_target_close(t);
		return HS_EXIT_FATAL;
	}
	if (o.json) {
		struct hs_json j;

		hs_cli_json_begin(&j, "heap");
		hs_report_header_json(&j, t);
		hs_report_heap_json_any(&j, &ra, h, 0, (unsigned)top, HS_REPORT_HEAP_DETAIL);
		hs_cli_json_end(&j);
	} else {
		hs_report_header_text(stdout, t);
		hs_report_heap_text_any(stdout, &ra, h, 0, (unsigned)top, HS_REPORT_HEAP_DETAIL);
	}
	ret = hs_cli_exit_for(t);
	hs_glibc_close(h);
	hs_report_alloc_release(&ra);
	hs_target_close(t);
	return ret; /* main() checks that stdout was written */
}
