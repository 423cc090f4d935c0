/*
 * heapscan strings: which printable strings fill the target's memory, with
 * exact counts while they fit in --max-mem, estimates with a stated error
 * bound beyond.  The analysis is heap/strings.c; this is options and output.
 */
#include "cli.h"
#include "report-strings.h"
#include "report.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum {
	OPT_ENCODING = HS_OPT_FIRST_PRIVATE,
	OPT_MIN_LEN,
	OPT_MAX_LEN,
	OPT_REGIONS,
	OPT_ALL,
	OPT_TOP,
	OPT_BY,
	OPT_MAX_MEM,
	OPT_JOBS,
	OPT_CHUNK,
	OPT_CHUNKS,
};

static const char usage_text[] =
	"usage: heapscan strings (-p PID | -c CORE) [options]\n\n"
	"Counts the printable strings in the target's memory, like\n"
	"'strings core | sort | uniq -c | sort -rn' without the core: for each of\n"
	"the most frequent, its exact count, the bytes it takes, the region\n"
	"classes it occurs in and a few addresses.\n\n"
	"options:\n"
	"%s"
	"      --encoding ENC   ascii (default) or utf16le (ASCII characters\n"
	"                       as 16-bit units at even addresses)\n"
	"      --min-len N      shortest run counted, in characters (default %u)\n"
	"      --max-len N      characters kept per string (default %u, at most %u);\n"
	"                       longer runs are told apart by their first N\n"
	"                       characters and their length\n"
	"      --regions LIST   region classes to scan, comma-separated\n"
	"                       (default heap,arena,anon); classes: %s\n"
	"      --all            scan every readable region\n"
	"      --top N          how many strings to list (default %u)\n"
	"      --by KEY         rank by count (default) or bytes\n"
	"      --max-mem SIZE   memory heapscan may use for counting (default 256M,\n"
	"                       at least 4M); beyond it counts become estimates\n"
	"                       with a stated error bound\n"
	"      --jobs N         worker threads (default: 2, or 1 on one CPU);\n"
	"                       results do not depend on it\n"
	"      --chunk SIZE     read size, a power of two from 4K (default 1M)\n"
	"      --chunks KIND    inuse: only bytes in in-use malloc chunks; free:\n"
	"                       only bytes in free chunks; all (default): every\n"
	"                       byte of the regions (inuse and free need the\n"
	"                       glibc or the jemalloc heap)\n\n"
	"Each string says where it lives: in in-use malloc chunks (jemalloc:\n"
	"regions), in free ones (thread-cached included), or outside them\n"
	"(\"unknown\" when no malloc heap is walked).\n"
	"Printable means ASCII 0x20-0x7e and tab, as strings(1).  The target is\n"
	"stopped only while its memory is read (never with --no-stop); the\n"
	"report says for how long.\n";

static void print_usage(void)
{
	struct hs_buf classes = HS_BUF_INIT;

	for (unsigned c = 0; c < HS_CLASS_N; c++)
		hs_buf_addf(&classes, "%s%s", c ? "," : "", hs_class_name(c));
	printf(usage_text, hs_cli_common_help, HS_STR_MIN_LEN_DEFAULT,
	       HS_STR_MAX_LEN_DEFAULT, HS_STR_MAX_LEN_LIMIT, classes.buf,
	       HS_STR_TOP_DEFAULT);
	hs_buf_release(&classes);
}

static int parse_regions(const char *arg, unsigned *mask)
{
	char *copy = hs_xstrdup(arg), *save = NULL, *tok;
	int ret = 0;

	*mask = 0;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		int c = hs_class_parse(tok);

		if (c < 0) {
			ret = hs_cli_usage_err("strings", "unknown region class '%s'", tok);
			break;
		}
		*mask |= 1u << c;
	}
	if (!ret && !*mask)
		ret = hs_cli_usage_err("strings", "empty --regions");
	free(copy);
	return ret;
}

static void progress(void *ud, uint64_t done, uint64_t total)
{
	(void)ud;
	if (total)
		fprintf(stderr, "\rheapscan: strings: %3u%%", (unsigned)(done * 100 / total));
}

int cmd_strings(int argc, char **argv)
{
	static const struct option longopts[] = {
		HS_CLI_COMMON_LONGOPTS,
		{ "encoding", required_argument, NULL, OPT_ENCODING },
		{ "min-len", required_argument, NULL, OPT_MIN_LEN },
		{ "max-len", required_argument, NULL, OPT_MAX_LEN },
		{ "regions", required_argument, NULL, OPT_REGIONS },
		{ "all", no_argument, NULL, OPT_ALL },
		{ "top", required_argument, NULL, OPT_TOP },
		{ "by", required_argument, NULL, OPT_BY },
		{ "max-mem", required_argument, NULL, OPT_MAX_MEM },
		{ "jobs", required_argument, NULL, OPT_JOBS },
		{ "chunk", required_argument, NULL, OPT_CHUNK },
		{ "chunks", required_argument, NULL, OPT_CHUNKS },
		{ NULL, 0, NULL, 0 },
	};
	struct hs_cli_opts o = { 0 };
	struct hs_cli_parser ps = {
		.cmd = "strings", .usage_fn = print_usage,
		.longopts = longopts, .o = &o, .argc = argc, .argv = argv,
	};
	struct hs_str_opts so;
	struct hs_str_ranges ranges = HS_STR_RANGES_INIT;
	struct hs_str_result res;
	struct hs_str_where where = HS_STR_WHERE_INIT;
	struct hs_buf why = HS_BUF_INIT;
	const char *chunks = "all";
	unsigned loc_mask = 0;
	struct hs_target *t = NULL;
	unsigned mask = HS_STR_CLASSES_DEFAULT;
	bool all = false, show_progress;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	uint64_t v;
	int c, ret;

	hs_str_opts_init(&so);
	so.jobs = ncpu == 1 ? 1 : 2;
	while ((c = hs_cli_next_opt(&ps)) > 0) {
		int r;

		switch (c) {
		case OPT_ENCODING:
			r = hs_str_encoding_parse(optarg);
			if (r < 0)
				return hs_cli_usage_err("strings", "unknown encoding '%s'", optarg);
			so.enc = (enum hs_str_encoding)r;
			break;
		case OPT_MIN_LEN:
			if (hs_cli_parse_u64(optarg, &v) || v < 1 || v > HS_STR_MAX_LEN_LIMIT)
				return hs_cli_usage_err("strings", "invalid --min-len '%s'", optarg);
			so.min_len = (unsigned)v;
			break;
		case OPT_MAX_LEN:
			if (hs_cli_parse_u64(optarg, &v) || v < 1 || v > HS_STR_MAX_LEN_LIMIT)
				return hs_cli_usage_err("strings", "invalid --max-len '%s'", optarg);
			so.max_len = (unsigned)v;
			break;
		case OPT_REGIONS:
			if (parse_regions(optarg, &mask))
				return HS_EXIT_USAGE;
			break;
		case OPT_ALL:
			all = true;
			break;
		case OPT_TOP:
			if (hs_cli_parse_u64(optarg, &v) || v > 1000000)
				return hs_cli_usage_err("strings", "invalid --top '%s'", optarg);
			so.top = (unsigned)v;
			break;
		case OPT_BY:
			if (!strcmp(optarg, "count"))
				so.by = HS_STR_BY_COUNT;
			else if (!strcmp(optarg, "bytes"))
				so.by = HS_STR_BY_BYTES;
			else
				return hs_cli_usage_err("strings", "invalid --by '%s' (count or bytes)", optarg);
			break;
		case OPT_MAX_MEM:
			if (hs_cli_parse_size(optarg, &v) || v < HS_STR_MAX_MEM_MIN)
				return hs_cli_usage_err("strings", "invalid --max-mem '%s' (at least 4M)", optarg);
			so.max_mem = v;
			break;
		case OPT_JOBS:
			if (hs_cli_parse_u64(optarg, &v) || v < 1 || v > HS_STR_JOBS_MAX)
				return hs_cli_usage_err("strings", "invalid --jobs '%s' (1 to %d)",
							optarg, HS_STR_JOBS_MAX);
			so.jobs = (unsigned)v;
			break;
		case OPT_CHUNK:
			if (hs_cli_parse_size(optarg, &v) || v < 4096 || v > (1u << 30) ||
			    (v & (v - 1)))
				return hs_cli_usage_err("strings", "invalid --chunk '%s' (a power of two from 4K to 1G)", optarg);
			so.chunk = (size_t)v;
			break;
		case OPT_CHUNKS:
			if (!strcmp(optarg, "inuse"))
				loc_mask = 1u << HS_STR_LOC_INUSE;
			else if (!strcmp(optarg, "free"))
				loc_mask = 1u << HS_STR_LOC_FREE;
			else if (!strcmp(optarg, "all"))
				loc_mask = 0;
			else
				return hs_cli_usage_err("strings", "invalid --chunks '%s' (inuse, free or all)", optarg);
			chunks = optarg;
			break;
		}
	}
	if (c < 0)
		return ps.exit;
	if (hs_cli_finish_options("strings", argc, argv, &o))
		return HS_EXIT_USAGE;
	if (so.max_len < so.min_len)
		return hs_cli_usage_err("strings", "--max-len is below --min-len");
	if (so.max_mem / 2 / (so.jobs < 2 ? 2 : so.jobs) < so.chunk + so.max_len + (256u << 10))
		return hs_cli_usage_err("strings", "--max-mem is too small for --chunk and --jobs");
	if (all)
		mask = ~0u;

	ret = hs_cli_open_target(&o, &t);
	if (ret)
		return ret;
	hs_cli_test_hold();
	show_progress = hs_cli_progress_enabled() && !getenv("HEAPSCAN_NO_PROGRESS");
	if (show_progress)
		so.progress = progress;
	/* Chunk space first: it decides the ranges with --chunks. */
	ret = hs_report_strings_where_any(t, NULL, NULL, &where, &why);
	if (ret == -HS_E_INTERRUPTED || ret == -ESRCH || (ret < 0 && loc_mask)) {
		if (ret == -HS_E_INTERRUPTED)
			hs_cli_err("interrupted; target released");
		else if (ret == -ESRCH)
			hs_cli_err("%s exited during the scan", t->source);
		else
			hs_cli_err("--chunks %s needs the glibc heap or jemalloc's: %s", chunks, why.buf);
		hs_buf_release(&why);
		hs_target_close(t);
		return HS_EXIT_FATAL;
	}
	if (ret == 0)
		so.where = &where;
	hs_str_ranges_from_maps(&ranges, &t->maps, mask);
	if (loc_mask) {
		struct hs_str_ranges whole = ranges;

		memset(&ranges, 0, sizeof(ranges));
		hs_str_ranges_restrict(&ranges, &whole, &where, loc_mask);
		hs_str_ranges_release(&whole);
	}
	/* Let the target go as soon as everything is read: the tables are
	 * joined and ranked while it runs. */
	so.read_done = hs_cli_read_done;
	so.read_done_ud = t;
	ret = hs_strings_scan(t, &ranges, &so, &res);
	hs_str_ranges_release(&ranges);
	hs_str_where_release(&where);
	if (show_progress)
		fputs("\r\033[K", stderr);
	/* Memory is read: let the target go before formatting anything. */
	(void)hs_target_resume(t);
	if (ret < 0) {
		if (ret == -HS_E_INTERRUPTED)
			hs_cli_err("interrupted; target released");
		else if (ret == -ESRCH)
			hs_cli_err("%s exited during the scan", t->source);
		else
			hs_cli_err("cannot count strings in %s: %s", t->source, hs_strerror(ret));
		hs_buf_release(&why);
		hs_target_close(t);
		return HS_EXIT_FATAL;
	}
	if (o.json) {
		struct hs_json j;

		hs_cli_json_begin(&j, "strings");
		hs_json_str(&j, "source", t->source);
		hs_json_i64(&j, "pid", t->info.pid);
		hs_json_bool(&j, "partial", (t->state & HS_TSTATE_PARTIAL) != 0);
		hs_json_arr_begin(&j, "regions_scanned");
		for (unsigned k = 0; k < HS_CLASS_N; k++)
			if (mask & (1u << k))
				hs_json_str(&j, NULL, hs_class_name(k));
		hs_json_arr_end(&j);
		hs_json_str(&j, "chunks", chunks);
		if (!so.where)
			hs_json_str(&j, "where_unknown_reason", why.buf);
		hs_report_strings_json(&j, &res, t);
		hs_cli_json_end(&j);
	} else {
		printf("heapscan %s: strings in %s (%s)\n", HS_VERSION, t->source,
		       t->info.comm[0] ? t->info.comm : "?");
		if (loc_mask)
			printf("only bytes in %s malloc chunks (--chunks %s)\n",
			       loc_mask == (1u << HS_STR_LOC_FREE) ? "free" : "in-use", chunks);
		hs_report_strings_text(stdout, &res, t);
		hs_report_pages_text(stdout, t);
		if (!so.where)
			printf("  (%s)\n", why.buf);
	}
	hs_buf_release(&why);
	hs_str_result_release(&res);
	ret = hs_cli_exit_for(t);
	hs_target_close(t);
	return ret; /* main() checks that stdout was written */
}
