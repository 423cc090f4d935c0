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

static const struct option options[] = {
	{ "max-bytes", required_argument, NULL, OPT_MAX_BYTES },
	{ "len", required_argument, NULL, OPT_LEN },
	{ "refs", no_argument, NULL, OPT_REFS },
	{ "refs-max", required_argument, NULL, OPT_REFS_MAX },
	{ "refs-bytes", required_argument, NULL, OPT_REFS_BYTES },
	{ "refs-time", required_argument, NULL, OPT_REFS_TIME },
	{ "main-arena", required_argument, NULL, OPT_MAIN_ARENA },
	{ NULL, 0, NULL, 0 },
};

struct show {
	struct hs_glibc_opts go;
	struct hs_show_opts so;
	uint64_t refs_secs;
	hs_addr_t addr;
	struct hs_show s;
	struct hs_report_show rep;
	struct hs_report_alloc ra;
	struct hs_blocks blocks;
	struct hs_glibc_heap *h;
};

static void init(void *state)
{
	struct show *s = state;

	s->so.refs_opts.max_results = 64;
	s->so.refs_opts.max_bytes = 64ull << 30;
	s->refs_secs = 60;
}

static int option(void *state, int c, const char *arg)
{
	struct show *s = state;
	uint64_t v;

	switch (c) {
	case OPT_MAX_BYTES:
		if (hs_cli_parse_size(arg, &v) || !v || v > (256u << 20))
			return hs_cli_usage_err("show", "invalid --max-bytes '%s' (1 to 256M)", arg);
		s->so.max_bytes = (size_t)v;
		break;
	case OPT_LEN:
		if (hs_cli_parse_size(arg, &v) || !v || v > (256u << 20))
			return hs_cli_usage_err("show", "invalid --len '%s' (1 to 256M)", arg);
		s->so.len = (size_t)v;
		break;
	case OPT_REFS:
		s->so.refs = true;
		break;
	case OPT_REFS_MAX:
		if (hs_cli_parse_u64(arg, &v) || !v || v > 10000000)
			return hs_cli_usage_err("show", "invalid --refs-max '%s'", arg);
		s->so.refs_opts.max_results = (size_t)v;
		break;
	case OPT_REFS_BYTES:
		if (hs_cli_parse_size(arg, &v) || !v)
			return hs_cli_usage_err("show", "invalid --refs-bytes '%s'", arg);
		s->so.refs_opts.max_bytes = v;
		break;
	case OPT_REFS_TIME:
		if (hs_cli_parse_u64(arg, &v) || !v || v > 86400)
			return hs_cli_usage_err("show", "invalid --refs-time '%s'", arg);
		s->refs_secs = v;
		break;
	case OPT_MAIN_ARENA:
		if (hs_cli_parse_addr(arg, &s->go.main_arena) || !s->go.main_arena ||
		    (s->go.main_arena & 7))
			return hs_cli_usage_err("show", "invalid --main-arena '%s'", arg);
		break;
	}
	return 0;
}

static int operands(void *state, int argc, char **argv)
{
	struct show *s = state;
	const char *addr_arg = optind < argc ? argv[optind++] : NULL;

	if (!addr_arg)
		return hs_cli_usage_err("show", "no address: give ADDR in hex");
	if (hs_cli_parse_addr(addr_arg, &s->addr))
		return hs_cli_usage_err("show", "invalid address '%s' (hex expected)", addr_arg);
	s->so.refs_opts.max_ns = s->refs_secs * 1000000000ull;
	return 0;
}

static int collect(struct hs_run *run)
{
	struct show *s = run->state;
	int herr;

	/* The free lists only: the walk happens in the lookups, and stops
	 * at the chunk it is after. */
	herr = hs_report_alloc_collect(run->t, &s->ra);
	if (herr == 0 && hs_report_alloc_glibc(&s->ra)) {
		herr = hs_report_heap_open(run->t, &s->go, HS_ARENA_AUTO, &s->h);
	} else if (herr == 0) {
		/* Another allocator: its blocks, when heapscan walks it. */
		s->rep.allocator = hs_alloc_name(s->ra.ai.kind);
		if (hs_report_alloc_blocks(&s->ra, NULL, &s->blocks))
			s->so.blocks = &s->blocks;
		else
			herr = s->ra.je_err < 0 ? s->ra.je_err : -HS_E_UNSUPPORTED;
	}
	if (herr == -ESRCH || herr == -HS_E_INTERRUPTED)
		return herr;
	if (herr < 0) {
		hs_glibc_close(s->h);
		s->h = NULL;
	}
	s->rep.heap_err = herr;
	return hs_show_collect(run->t, s->h, s->addr, &s->so, &s->s);
}

static int explain(struct hs_run *run)
{
	struct show *s = run->state;

	if (run->err == -HS_E_NOT_FOUND)
		hs_cli_err("address 0x%" PRIx64 " is not mapped in the target", s->addr);
	else if (run->err == -EFAULT)
		hs_cli_err("address 0x%" PRIx64 " is mapped but not readable", s->addr);
	else
		hs_cli_err("cannot show 0x%" PRIx64 ": %s", s->addr, hs_strerror(run->err));
	return HS_EXIT_FATAL;
}

static void render(struct hs_run *run, FILE *out, struct hs_json *j)
{
	struct show *s = run->state;

	s->rep.t = run->t;
	s->rep.s = &s->s;
	s->rep.h = s->h;
	s->rep.syms = hs_report_show_syms_open(run->t);
	if (j)
		hs_report_show_json(j, &s->rep);
	else
		hs_report_show_text(out, &s->rep);
	hs_report_show_syms_close(s->rep.syms);
	/* The reference scan cut by a limit: partial. */
	run->partial = s->s.has_refs && s->s.refs.cut != HS_REFS_COMPLETE;
}

static void release(void *state)
{
	struct show *s = state;

	hs_show_release(&s->s);
	hs_glibc_close(s->h);
	hs_report_alloc_release(&s->ra);
}

const struct hs_command hs_cmd_show = {
	.name = "show",
	.help = "what is at an address: mapping, chunk, dump, references",
	.usage = usage_text,
	.options = options,
	.flags = HS_CMD_HEADER_JSON,
	.state_size = sizeof(struct show),
	.init = init,
	.option = option,
	.operands = operands,
	.collect = collect,
	.explain = explain,
	.render = render,
	.release = release,
};
