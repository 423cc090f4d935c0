/*
 * heapscan strings: which printable strings fill the target's memory, with
 * exact counts while they fit in --max-mem, estimates with a stated error
 * bound beyond.  The analysis is heap/strings/; this is options and output.
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


static void progress(void *ud, uint64_t done, uint64_t total)
{
	(void)ud;
	if (total)
		fprintf(stderr, "\rheapscan: strings: %3u%%", (unsigned)(done * 100 / total));
}

static const struct option options[] = {
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

struct strings {
	struct hs_str_opts so;
	struct hs_str_result res;
	bool have_res;
	struct hs_str_where where;
	bool where_failed;       /* --chunks without a walkable heap */
	struct hs_buf why;       /* why the chunks are unknown */
	const char *chunks;
	unsigned loc_mask;
	unsigned mask;
	bool all;
};

static void init(void *state)
{
	struct strings *s = state;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	hs_str_opts_init(&s->so);
	s->so.jobs = ncpu == 1 ? 1 : 2;
	s->where = (struct hs_str_where)HS_STR_WHERE_INIT;
	hs_buf_init(&s->why);
	s->chunks = "all";
	s->mask = HS_STR_CLASSES_DEFAULT;
}

static int option(void *state, int c, const char *arg)
{
	struct strings *s = state;
	uint64_t v;
	int r;

	switch (c) {
	case OPT_ENCODING:
		r = hs_str_encoding_parse(arg);
		if (r < 0)
			return hs_cli_usage_err("strings", "unknown encoding '%s'", arg);
		s->so.enc = (enum hs_str_encoding)r;
		break;
	case OPT_MIN_LEN:
		if (hs_cli_parse_u64(arg, &v) || v < 1 || v > HS_STR_MAX_LEN_LIMIT)
			return hs_cli_usage_err("strings", "invalid --min-len '%s'", arg);
		s->so.min_len = (unsigned)v;
		break;
	case OPT_MAX_LEN:
		if (hs_cli_parse_u64(arg, &v) || v < 1 || v > HS_STR_MAX_LEN_LIMIT)
			return hs_cli_usage_err("strings", "invalid --max-len '%s'", arg);
		s->so.max_len = (unsigned)v;
		break;
	case OPT_REGIONS:
		return hs_cli_parse_classes("strings", arg, &s->mask);
	case OPT_ALL:
		s->all = true;
		break;
	case OPT_TOP:
		if (hs_cli_parse_u64(arg, &v) || v > 1000000)
			return hs_cli_usage_err("strings", "invalid --top '%s'", arg);
		s->so.top = (unsigned)v;
		break;
	case OPT_BY:
		if (!strcmp(arg, "count"))
			s->so.by = HS_STR_BY_COUNT;
		else if (!strcmp(arg, "bytes"))
			s->so.by = HS_STR_BY_BYTES;
		else
			return hs_cli_usage_err("strings", "invalid --by '%s' (count or bytes)", arg);
		break;
	case OPT_MAX_MEM:
		if (hs_cli_parse_size(arg, &v) || v < HS_STR_MAX_MEM_MIN)
			return hs_cli_usage_err("strings", "invalid --max-mem '%s' (at least 4M)", arg);
		s->so.max_mem = v;
		break;
	case OPT_JOBS:
		if (hs_cli_parse_u64(arg, &v) || v < 1 || v > HS_STR_JOBS_MAX)
			return hs_cli_usage_err("strings", "invalid --jobs '%s' (1 to %d)",
						arg, HS_STR_JOBS_MAX);
		s->so.jobs = (unsigned)v;
		break;
	case OPT_CHUNK:
		if (hs_cli_parse_size(arg, &v) || v < 4096 || v > (1u << 30) || (v & (v - 1)))
			return hs_cli_usage_err("strings", "invalid --chunk '%s' (a power of two from 4K to 1G)", arg);
		s->so.chunk = (size_t)v;
		break;
	case OPT_CHUNKS:
		if (!strcmp(arg, "inuse"))
			s->loc_mask = 1u << HS_STR_LOC_INUSE;
		else if (!strcmp(arg, "free"))
			s->loc_mask = 1u << HS_STR_LOC_FREE;
		else if (!strcmp(arg, "all"))
			s->loc_mask = 0;
		else
			return hs_cli_usage_err("strings", "invalid --chunks '%s' (inuse, free or all)", arg);
		s->chunks = arg;
		break;
	}
	return 0;
}

static int check(void *state, const struct hs_cli_opts *o)
{
	struct strings *s = state;
	const struct hs_str_opts *so = &s->so;

	(void)o;
	if (so->max_len < so->min_len)
		return hs_cli_usage_err("strings", "--max-len is below --min-len");
	if (so->max_mem / 2 / (so->jobs < 2 ? 2 : so->jobs) < so->chunk + so->max_len + (256u << 10))
		return hs_cli_usage_err("strings", "--max-mem is too small for --chunk and --jobs");
	if (s->all)
		s->mask = ~0u;
	return 0;
}

static int collect(struct hs_run *run)
{
	struct strings *s = run->state;
	struct hs_target *t = run->t;
	struct hs_str_ranges ranges = HS_STR_RANGES_INIT;
	bool show_progress = hs_cli_progress_enabled() && !getenv("HEAPSCAN_NO_PROGRESS");
	int ret;

	if (show_progress)
		s->so.progress = progress;
	/* Chunk space first: it decides the ranges with --chunks. */
	ret = hs_report_strings_where_any(t, NULL, NULL, &s->where, &s->why);
	if (ret == -HS_E_INTERRUPTED || ret == -ESRCH)
		return ret;
	if (ret < 0 && s->loc_mask) {
		s->where_failed = true;
		return ret;
	}
	if (ret == 0)
		s->so.where = &s->where;
	hs_str_ranges_from_maps(&ranges, &t->maps, s->mask);
	if (s->loc_mask) {
		struct hs_str_ranges whole = ranges;

		memset(&ranges, 0, sizeof(ranges));
		hs_str_ranges_restrict(&ranges, &whole, &s->where, s->loc_mask);
		hs_str_ranges_release(&whole);
	}
	/* Let the target go as soon as everything is read: the tables are
	 * joined and ranked while it runs. */
	s->so.read_done = hs_cli_read_done;
	s->so.read_done_ud = t;
	ret = hs_strings_scan(t, &ranges, &s->so, &s->res);
	s->have_res = ret == 0;
	hs_str_ranges_release(&ranges);
	if (show_progress)
		fputs("\r\033[K", stderr);
	return ret;
}

static int explain(struct hs_run *run)
{
	struct strings *s = run->state;

	if (s->where_failed)
		hs_cli_err("--chunks %s needs the glibc heap or jemalloc's: %s", s->chunks,
			   s->why.buf);
	else
		hs_cli_err("cannot count strings in %s: %s", run->t->source,
			   hs_strerror(run->err));
	return HS_EXIT_FATAL;
}

static void render(struct hs_run *run, FILE *out, struct hs_json *j)
{
	struct strings *s = run->state;
	struct hs_target *t = run->t;

	if (j) {
		hs_json_str(j, "source", t->source);
		hs_json_i64(j, "pid", t->info.pid);
		hs_json_bool(j, "partial", (t->state & HS_TSTATE_PARTIAL) != 0);
		hs_json_arr_begin(j, "regions_scanned");
		for (unsigned k = 0; k < HS_CLASS_N; k++)
			if (s->mask & (1u << k))
				hs_json_str(j, NULL, hs_class_name(k));
		hs_json_arr_end(j);
		hs_json_str(j, "chunks", s->chunks);
		if (!s->so.where)
			hs_json_str(j, "where_unknown_reason", s->why.buf);
		hs_report_strings_json(j, &s->res, t);
		return;
	}
	fprintf(out, "heapscan %s: strings in %s (%s)\n", HS_VERSION, t->source,
		t->info.comm[0] ? t->info.comm : "?");
	if (s->loc_mask)
		fprintf(out, "only bytes in %s malloc chunks (--chunks %s)\n",
			s->loc_mask == (1u << HS_STR_LOC_FREE) ? "free" : "in-use", s->chunks);
	hs_report_strings_text(out, &s->res, t);
	hs_report_pages_text(out, t);
	if (!s->so.where)
		fprintf(out, "  (%s)\n", s->why.buf);
}

static void release(void *state)
{
	struct strings *s = state;

	if (s->have_res)
		hs_str_result_release(&s->res);
	hs_str_where_release(&s->where);
	hs_buf_release(&s->why);
}

const struct hs_command hs_cmd_strings = {
	.name = "strings",
	.help = "count printable strings in the target's memory",
	.usage_fn = print_usage,
	.options = options,
	.state_size = sizeof(struct strings),
	.init = init,
	.option = option,
	.check = check,
	.collect = collect,
	.explain = explain,
	.render = render,
	.release = release,
};
