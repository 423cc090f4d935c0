/*
 * heapscan show ADDR: what is at one address.  The mapping and region
 * class, the malloc chunk holding it (size, state, arena), an annotated
 * hex+ASCII dump of the chunk, and with --refs the words elsewhere in
 * writable memory and the thread registers that point into it.
 */
#include "cli.h"
#include "report.h"
#include "report-heap.h"
#include "report-show.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

enum {
	OPT_MAX_BYTES = HS_OPT_FIRST_PRIVATE,
	OPT_LEN,
	OPT_REFS,
	OPT_REFS_MAX,
	OPT_REFS_BYTES,
	OPT_REFS_TIME,
	OPT_MAIN_ARENA,
};

static const char usage_text[] =
	"usage: heapscan show ADDR (-p PID | -c CORE) [options]\n\n"
	"Shows what is at ADDR (hex, with or without 0x): its mapping and region\n"
	"class, the glibc malloc chunk that holds it (ADDR may be the chunk, the\n"
	"user pointer or any byte inside: chunk address, user pointer, size, in use\n"
	"or which free list, arena), and a hex+ASCII dump of the chunk in which each\n"
	"8-byte word that points somewhere is annotated: a symbol, another chunk\n"
	"(address and state), a printable string.  Outside malloc heaps it says so\n"
	"and dumps --len bytes from ADDR.  Addresses printed by 'heapscan strings'\n"
	"are accepted as they are.  On jemalloc the object is the region (or large\n"
	"allocation, or free extent) holding ADDR: its size class, in use, free in a\n"
	"thread cache or free, arena and edata.\n\n"
	"options:\n"
	"%s"
	"      --max-bytes N      bytes of a chunk to dump (default 4K)\n"
	"      --len N            bytes to dump outside a chunk (default 256)\n"
	"      --refs             also list the words in writable memory (heap,\n"
	"                         arenas, anonymous, stacks, data, shared) that\n"
	"                         point into the chunk (or the dumped bytes), every\n"
	"                         aligned word, the previous chunk's last word\n"
	"                         (this chunk's prev_size) included, with their\n"
	"                         mapping and chunk, and the thread registers\n"
	"                         that hold such a pointer (all of them; the\n"
	"                         limits below are for memory)\n"
	"      --refs-max N       stop after N references (default 64)\n"
	"      --refs-bytes N     scan at most N bytes (default 64G)\n"
	"      --refs-time SEC    scan for at most SEC seconds (default 60)\n"
	"      --main-arena ADDR  main_arena's address (hex), instead of the scan\n\n"
	"exit status: 0 complete, 1 partial (some memory unreadable, or the\n"
	"reference scan was cut by a limit), 2 fatal (ADDR not mapped or not\n"
	"readable, no such process, ...), 64 usage (ADDR missing or not hex).\n";

int cmd_show(int argc, char **argv)
{
	static const struct option longopts[] = {
		HS_CLI_COMMON_LONGOPTS,
		{ "max-bytes", required_argument, NULL, OPT_MAX_BYTES },
		{ "len", required_argument, NULL, OPT_LEN },
		{ "refs", no_argument, NULL, OPT_REFS },
		{ "refs-max", required_argument, NULL, OPT_REFS_MAX },
		{ "refs-bytes", required_argument, NULL, OPT_REFS_BYTES },
		{ "refs-time", required_argument, NULL, OPT_REFS_TIME },
		{ "main-arena", required_argument, NULL, OPT_MAIN_ARENA },
		{ NULL, 0, NULL, 0 },
	};
	struct hs_cli_opts o = { 0 };
	struct hs_cli_parser ps = {
		.cmd = "show", .usage = usage_text, .shortopts = NULL,
		.longopts = longopts, .o = &o, .argc = argc, .argv = argv,
	};
	struct hs_glibc_opts go = { 0 };
	struct hs_show_opts so = { 0 };
	struct hs_show s;
	struct hs_report_show rep = { 0 };
	struct hs_report_alloc ra = { 0 };
	struct hs_blocks blocks;
	struct hs_glibc_heap *h = NULL;
	struct hs_target *t = NULL;
	uint64_t v, refs_secs = 60;
	const char *addr_arg = NULL;
	hs_addr_t addr = 0;
	int c, ret, err, herr;

	memset(&s, 0, sizeof(s));
	so.refs_opts.max_results = 64;
	so.refs_opts.max_bytes = 64ull << 30;
	while ((c = hs_cli_next_opt(&ps)) > 0) {
		switch (c) {
		case OPT_MAX_BYTES:
			if (hs_cli_parse_size(optarg, &v) || !v || v > (256u << 20))
				return hs_cli_usage_err("show", "invalid --max-bytes '%s' "
							"(1 to 256M)", optarg);
			so.max_bytes = (size_t)v;
			break;
		case OPT_LEN:
			if (hs_cli_parse_size(optarg, &v) || !v || v > (256u << 20))
				return hs_cli_usage_err("show", "invalid --len '%s' (1 to 256M)",
							optarg);
			so.len = (size_t)v;
			break;
		case OPT_REFS:
			so.refs = true;
			break;
		case OPT_REFS_MAX:
			if (hs_cli_parse_u64(optarg, &v) || !v || v > 10000000)
				return hs_cli_usage_err("show", "invalid --refs-max '%s'", optarg);
			so.refs_opts.max_results = (size_t)v;
			break;
		case OPT_REFS_BYTES:
			if (hs_cli_parse_size(optarg, &v) || !v)
				return hs_cli_usage_err("show", "invalid --refs-bytes '%s'", optarg);
			so.refs_opts.max_bytes = v;
			break;
		case OPT_REFS_TIME:
			if (hs_cli_parse_u64(optarg, &v) || !v || v > 86400)
				return hs_cli_usage_err("show", "invalid --refs-time '%s'", optarg);
			refs_secs = v;
			break;
		case OPT_MAIN_ARENA:
			if (hs_cli_parse_addr(optarg, &go.main_arena) || !go.main_arena ||
			    (go.main_arena & 7))
				return hs_cli_usage_err("show", "invalid --main-arena '%s'", optarg);
			break;
		}
	}
	if (c < 0)
		return ps.exit;
	if (optind < argc)
		addr_arg = argv[optind++];
	if (!addr_arg)
		return hs_cli_usage_err("show", "no address: give ADDR in hex");
	if (hs_cli_parse_addr(addr_arg, &addr))
		return hs_cli_usage_err("show", "invalid address '%s' (hex expected)", addr_arg);
	if (hs_cli_finish_options("show", argc, argv, &o))
		return HS_EXIT_USAGE;
	so.refs_opts.max_ns = refs_secs * 1000000000ull;

	ret = hs_cli_open_target(&o, &t);
	if (ret)
		return ret;
	hs_cli_test_hold();

	/* The free lists only: the walk happens in the lookups, and stops
	 * at the chunk it is after. */
	herr = hs_report_alloc_collect(t, &ra);
	if (herr == 0 && hs_report_alloc_glibc(&ra)) {
		herr = hs_report_heap_open(t, &go, HS_ARENA_AUTO, &h);
	} else if (herr == 0) {
		/* Another allocator: its blocks, when heapscan walks it. */
		rep.allocator = hs_alloc_name(ra.ai.kind);
		if (hs_report_alloc_blocks(&ra, NULL, &blocks))
			so.blocks = &blocks;
		else
			herr = ra.je_err < 0 ? ra.je_err : -HS_E_UNSUPPORTED;
	}
	if (herr == -ESRCH || herr == -HS_E_INTERRUPTED) {
		err = herr;
		goto failed;
	}
	if (herr < 0) {
		hs_glibc_close(h);
		h = NULL;
	}
	err = hs_show_collect(t, h, addr, &so, &s);
	/* Everything is read: let the target run before formatting. */
	(void)hs_target_resume(t);
	if (err < 0)
		goto failed;

	rep.t = t;
	rep.s = &s;
	rep.h = h;
	rep.heap_err = herr;
	rep.syms = hs_report_show_syms_open(t);
	if (o.json) {
		struct hs_json j;

		hs_cli_json_begin(&j, "show");
		hs_report_header_json(&j, t);
		hs_report_show_json(&j, &rep);
		hs_cli_json_end(&j);
	} else {
		hs_report_show_text(stdout, &rep);
	}
	hs_report_show_syms_close(rep.syms);
	ret = hs_cli_exit_for(t);
	if (ret == HS_EXIT_OK && s.has_refs && s.refs.cut != HS_REFS_COMPLETE)
		ret = HS_EXIT_PARTIAL;
	hs_show_release(&s);
	hs_glibc_close(h);
	hs_report_alloc_release(&ra);
	hs_target_close(t);
	return ret; /* main() checks that stdout was written */

failed:
	if (err == -HS_E_INTERRUPTED || hs_interrupted)
		hs_cli_err("interrupted; target released");
	else if (err == -HS_E_NOT_FOUND)
		hs_cli_err("address 0x%" PRIx64 " is not mapped in the target", addr);
	else if (err == -EFAULT)
		hs_cli_err("address 0x%" PRIx64 " is mapped but not readable", addr);
	else if (err == -ESRCH)
		hs_cli_err("the target exited during the run");
	else
		hs_cli_err("cannot show 0x%" PRIx64 ": %s", addr, hs_strerror(err));
	hs_show_release(&s);
	hs_glibc_close(h);
	hs_report_alloc_release(&ra);
	hs_target_close(t);
	return HS_EXIT_FATAL;
}
