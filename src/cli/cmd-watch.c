/*
 * heapscan watch: sample a live process repeatedly (no dumps) and show
 * what grew since the first sample, with rates per hour.  On a terminal
 * a refreshing table; otherwise (or with --json) one JSON line per sample
 * (NDJSON) for log shippers.
 */
#include "cli.h"
#include "report-growth.h"
#include "hs_outfile.h"
#include "report-pprof.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum {
	OPT_INTERVAL = HS_OPT_FIRST_PRIVATE,
	OPT_COUNT,
	OPT_SAVE_DIR,
	OPT_TOP,
	OPT_KEEP,
	OPT_FORCE,
	OPT_FORMAT,
};

static const char usage_text[] =
	"usage: heapscan watch -p PID [--interval S] [--count N] [options]\n\n"
	"Profiles the process every S seconds (as 'heapscan snapshot' does, without\n"
	"writing dumps) and reports what grew since the first sample and at what\n"
	"rate per hour: on a terminal a refreshing table, otherwise (or with\n"
	"--json) one JSON object per line and sample (NDJSON).  Each sample says\n"
	"how long the process was stopped.  Ends after N samples, when the\n"
	"process exits, or on SIGINT/SIGTERM (the target is always released).\n\n"
	"options:\n"
	"%s"
	"      --interval S     seconds between samples (default 60, fractions ok)\n"
	"      --count N        stop after N samples (default 0: until interrupted)\n"
	"      --save-dir D     also write each sample's profile to D/PID-N.profile\n"
	"                       (mode 0600, temporary name then rename; an existing\n"
	"                       file, a symlink included, ends the watch)\n"
	"      --force          replace existing D/PID-N.profile (.pb.gz) files\n"
	"      --format F       with --save-dir: profile (default) or pprof, which\n"
	"                       writes D/PID-N.pb.gz (gzip-compressed pprof)\n"
	"      --top N          items listed per kind (default 10, 0: all)\n"
	"      --keep K         strings kept per sample (default 10000)\n";

/* Waits s seconds or until a signal sets hs_interrupted.  The test hook
 * HEAPSCAN_TEST_WATCH_STEP=1 waits for a line on stdin instead (EOF ends
 * the watch), so tests act between samples without sleeping.  Returns
 * false when the watch should end. */
static bool wait_next(double s)
{
	struct timespec ts;

	if (getenv("HEAPSCAN_TEST_WATCH_STEP")) {
		char c;
		ssize_t r;

		for (;;) {
			r = read(0, &c, 1);
			if (r < 0 && errno == EINTR && !hs_interrupted)
				continue;
			if (r <= 0 || hs_interrupted)
				return false;
			if (c == '\n')
				return true;
		}
	}
	ts.tv_sec = (time_t)s;
	ts.tv_nsec = (long)((s - floor(s)) * 1e9);
	while (!hs_interrupted && nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
	return !hs_interrupted;
}

static void totals_json(struct hs_json *j, const struct hs_profile *p)
{
	uint64_t rss = 0, size = 0, inuse = 0, inuse_n = 0;

	for (int c = 0; c < HS_CLASS_N; c++) {
		rss += p->classes[c].rss;
		size += p->classes[c].size;
	}
	for (size_t i = 0; i < p->narenas; i++) {
		inuse += p->arenas[i].inuse_bytes;
		inuse_n += p->arenas[i].inuse_count;
	}
	hs_json_obj_begin(j, "totals");
	hs_json_u64(j, "rss", rss);
	hs_json_u64(j, "size", size);
	hs_json_u64(j, "heap_inuse_chunks", inuse_n);
	hs_json_u64(j, "heap_inuse_bytes", inuse);
	hs_json_u64(j, "string_occurrences", p->strings_occurrences);
	hs_json_obj_end(j);
}

static void sample_json(unsigned n, const struct hs_profile *p, const struct hs_diff *d,
			unsigned top)
{
	struct hs_json j;

	hs_json_init(&j, stdout, false);
	hs_json_obj_begin(&j, NULL);
	hs_json_u64(&j, "schema_version", 1);
	hs_json_str(&j, "heapscan_version", HS_VERSION);
	hs_json_str(&j, "command", "watch");
	hs_json_u64(&j, "sample", n);
	hs_json_u64(&j, "pid", (uint64_t)p->pid);
	hs_json_u64(&j, "time_ns", p->time_ns);
	hs_json_double(&j, "stop_ms", (double)p->stop_ns / 1e6);
	hs_json_double(&j, "build_ms", (double)p->build_ns / 1e6);
	hs_json_bool(&j, "partial", p->partial);
	if (p->heap_error[0])
		hs_json_str(&j, "heap_error", p->heap_error);
	totals_json(&j, p);
	hs_report_growth_json(&j, d, top, HS_REPORT_GROWTH_RATE);
	hs_json_obj_end(&j);
	hs_json_finish(&j);
	fflush(stdout);
}

static void sample_text(unsigned n, const struct hs_profile *first,
			const struct hs_profile *p, const struct hs_diff *d,
			unsigned top, double interval)
{
	/* Home and clear: the table refreshes in place. */
	fputs("\033[H\033[2J", stdout);
	printf("heapscan watch: pid %d (%s)  sample %u, every %.3g s, %.1f s since "
	       "the first; stopped %.3f ms (built in %.1f ms)\n", (int)p->pid,
	       p->exe[0] ? p->exe : "?", n, interval, d->elapsed_s,
	       (double)p->stop_ns / 1e6, (double)p->build_ns / 1e6);
	hs_report_profile_text(stdout, "first:", first);
	hs_report_growth_text(stdout, d, top, HS_REPORT_GROWTH_RATE);
	fflush(stdout);
}

static int save_profile(const char *dir, const struct hs_profile *p, unsigned n,
			bool force, bool pprof, const char *comm)
{
	struct hs_buf path = HS_BUF_INIT;
	struct hs_outfile of;
	FILE *f;
	int ret;

	hs_buf_addf(&path, "%s/%d-%u.%s", dir, (int)p->pid, n, pprof ? "pb.gz" : "profile");
	ret = hs_outfile_open(&of, path.buf, force ? HS_OUTFILE_FORCE : 0);
	if (ret == 0) {
		f = hs_outfile_stream(&of);
		if (!f)
			ret = -errno;
		else
			ret = pprof ? hs_report_pprof_write(f, p, comm, NULL)
				    : hs_profile_write(p, f);
		if (ret < 0)
			hs_outfile_abort(&of);
		else
			ret = hs_outfile_commit(&of);
	}
	if (ret == -EEXIST)
		hs_cli_err("'%s' exists; use --force to replace it", path.buf);
	else if (ret < 0)
		hs_cli_err("cannot write '%s': %s", path.buf, hs_strerror(ret));
	hs_buf_release(&path);
	return ret < 0 ? -1 : 0;
}

static int cmd_watch(int argc, char **argv)
{
	static const struct option longopts[] = {
		HS_CLI_COMMON_LONGOPTS,
		{ "interval", required_argument, NULL, OPT_INTERVAL },
		{ "count", required_argument, NULL, OPT_COUNT },
		{ "save-dir", required_argument, NULL, OPT_SAVE_DIR },
		{ "top", required_argument, NULL, OPT_TOP },
		{ "keep", required_argument, NULL, OPT_KEEP },
		{ "force", no_argument, NULL, OPT_FORCE },
		{ "format", required_argument, NULL, OPT_FORMAT },
		{ NULL, 0, NULL, 0 },
	};
	struct hs_cli_opts o = { 0 };
	struct hs_cli_parser ps = {
		.cmd = "watch", .usage = usage_text, .shortopts = NULL,
		.longopts = longopts, .o = &o, .argc = argc, .argv = argv,
	};
	struct hs_profile_opts po = { 0 };
	struct hs_profile first, cur;
	struct hs_target *t = NULL;
	const char *save_dir = NULL;
	double interval = 60;
	uint64_t count = 0, top = 10, v;
	bool ndjson, have_first = false, force = false, pprof = false, format_given = false;
	unsigned n = 0;
	int c, ret = HS_EXIT_OK;

	while ((c = hs_cli_next_opt(&ps)) > 0) {
		switch (c) {
		case OPT_INTERVAL: {
			char *end;

			errno = 0;
			interval = strtod(optarg, &end);
			if (errno || *end || end == optarg || !(interval >= 0 && interval <= 1e7))
				return hs_cli_usage_err("watch", "invalid --interval '%s'", optarg);
			break;
		}
		case OPT_COUNT:
			if (hs_cli_parse_u64(optarg, &count) || count > 100000000)
				return hs_cli_usage_err("watch", "invalid --count '%s'", optarg);
			break;
		case OPT_SAVE_DIR:
			save_dir = optarg;
			break;
		case OPT_FORCE:
			force = true;
			break;
		case OPT_FORMAT:
			if (strcmp(optarg, "pprof") && strcmp(optarg, "profile"))
				return hs_cli_usage_err("watch", "unknown --format '%s' "
							"(profile or pprof)", optarg);
			pprof = !strcmp(optarg, "pprof");
			format_given = true;
			break;
		case OPT_TOP:
			if (hs_cli_parse_u64(optarg, &top) || top > 1000000)
				return hs_cli_usage_err("watch", "invalid --top '%s'", optarg);
			break;
		case OPT_KEEP:
			if (hs_cli_parse_u64(optarg, &v) || v == 0 || v > HS_PROFILE_KEEP_MAX)
				return hs_cli_usage_err("watch", "invalid --keep '%s'", optarg);
			po.keep = (unsigned)v;
			break;
		}
	}
	if (c < 0)
		return ps.exit;
	if (hs_cli_finish_options("watch", argc, argv, &o))
		return HS_EXIT_USAGE;
	if (o.core)
		return hs_cli_usage_err("watch", "watch needs a live process (-p PID)");
	if (format_given && !save_dir)
		return hs_cli_usage_err("watch", "--format is the format of --save-dir's files: "
					"give --save-dir D");
	if (save_dir) {
		struct stat st;

		if (stat(save_dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
			hs_cli_err("--save-dir '%s' is not a directory", save_dir);
			return HS_EXIT_FATAL;
		}
	}
	ndjson = o.json || !isatty(1);
	ret = hs_cli_open_target(&o, &t);
	if (ret)
		return ret;
	for (;;) {
		struct hs_diff d;
		int r;

		r = hs_growth_profile_target(t, &po, &cur);
		if (r) {
			hs_profile_release(&cur);
			/* Gone or interrupted after some samples: the watch did
			 * its job until then. */
			ret = hs_interrupted && n ? HS_EXIT_OK : r;
			if (!hs_interrupted && n && (t->state & HS_TSTATE_GONE))
				ret = HS_EXIT_PARTIAL;
			break;
		}
		n++;
		if (save_dir && save_profile(save_dir, &cur, n, force, pprof, t->info.comm) < 0) {
			hs_profile_release(&cur);
			ret = HS_EXIT_FATAL;
			break;
		}
		if (!have_first) {
			first = cur;
			have_first = true;
			memset(&cur, 0, sizeof(cur));
			hs_profile_init(&cur);
		}
		r = hs_diff_compute(&d, &first, n == 1 ? &first : &cur, NULL);
		(void)r;
		if (ndjson)
			sample_json(n, n == 1 ? &first : &cur, &d, (unsigned)top);
		else
			sample_text(n, &first, n == 1 ? &first : &cur, &d, (unsigned)top,
				    interval);
		hs_diff_release(&d);
		hs_profile_release(&cur);
		/* Nobody reads us any more: main() says so and exits 2. */
		if (ferror(stdout))
			break;
		if (count && n >= count)
			break;
		if (!wait_next(interval))
			break;
	}
	if (have_first)
		hs_profile_release(&first);
	hs_target_close(t);
	return ret; /* main() checks that stdout was written */
}

const struct hs_command hs_cmd_watch = {
	.name = "watch",
	.help = "sample a process repeatedly: what grows, how fast",
	.main = cmd_watch,
};
