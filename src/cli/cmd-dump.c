/*
 * heapscan dump: write the target as an ELF core (a gcore that does not
 * need gdb), and heapscan core: the default report on a core file.
 *
 * The writer (symbols/core-write.c) sees only the target interface; this
 * file adds what only a live pid has: the live backend's reading policy
 * tells it which pages the process never touched (hs_live_pages_touched,
 * the same pagemap decision every read makes), so they become holes
 * without being produced at all.
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hs_ptrace.h"
#include "hs_symbols.h"
#include "report.h"

enum {
	OPT_REGIONS = HS_OPT_FIRST_PRIVATE,
	OPT_ALL,
	OPT_HEAP_ONLY,
	OPT_NO_SYNC,
	OPT_SYNC,
	OPT_JOBS,
};

static const char usage_text[] =
	"usage: heapscan dump (-p PID | -c CORE) -o FILE [options]\n\n"
	"Writes the target as an ELF core file (ET_CORE) that gdb, eu-stack and\n"
	"'heapscan -c' open.  A live target is stopped only while its memory is\n"
	"copied.  Pages never touched and all-zero pages become holes (sparse file).\n"
	"The file appears only when complete (written under a temporary name, mode\n"
	"0600); on any error nothing is left behind.\n\n"
	"options:\n"
	"%s"
	"  -o, --output FILE  the core file to write (required)\n"
	"  -f, --force        replace FILE if it exists\n"
	"      --regions LIST dump these region classes in full, comma-separated:\n"
	"                     heap,arena,anon,stack,code,rodata,data,shm,reserved,\n"
	"                     anon-ro,special; other file mappings keep their ELF\n"
	"                     header page, the rest only a program header\n"
	"      --all          dump every readable region in full\n"
	"      --heap-only    same as --regions heap,arena,anon,data (malloc's heaps,\n"
	"                     mmapped chunks, and libc's data where main_arena lives)\n"
	"      --sync         fsync the file before renaming it into place (durable\n"
	"                     against a crash; writeback starts while copying)\n"
	"      --no-sync      do not fsync (the default, as gcore and cp do)\n"
	"      --jobs N       threads copying memory (default 2, or 1 on one CPU)\n\n"
	"default regions, as the kernel's coredump_filter 0x33 does: in full the heap,\n"
	"thread arenas, other anonymous memory, stacks, file-backed writable data,\n"
	"private file mappings the process modified, shared memory (not shared\n"
	"mappings of regular files) and [vdso]; the first page of each unmodified\n"
	"ELF file mapping; no contents for PROT_NONE reservations and [vvar].\n";

/* ---- progress ---- */

struct progress {
	uint64_t start, last;
	bool shown;
};

static void progress_cb(void *ud, const struct hs_dump_stats *st)
{
	struct progress *pr = ud;
	uint64_t now = hs_now_ns();
	char a[16], b[16], r[16];
	double secs, rate, eta;

	if (now - pr->last < 100000000ull && st->bytes_done < st->bytes_total)
		return;
	pr->last = now;
	secs = (double)(now - pr->start) / 1e9;
	rate = secs > 0 ? (double)st->bytes_done / secs : 0;
	eta = rate > 0 ? (double)(st->bytes_total - st->bytes_done) / rate : 0;
	fprintf(stderr, "\rheapscan: dump %s of %s (%3.0f%%)  %s/s  eta %.1f s   ",
		hs_fmt_bytes(a, sizeof(a), st->bytes_done),
		hs_fmt_bytes(b, sizeof(b), st->bytes_total),
		st->bytes_total ? 100.0 * (double)st->bytes_done / (double)st->bytes_total : 100.0,
		hs_fmt_bytes(r, sizeof(r), (uint64_t)rate), eta);
	pr->shown = true;
}

/*
 * Test hook HEAPSCAN_TEST_HOLD_AT=dump-copy: hold once, after the first
 * chunk is in the temporary file and before the last, so that a test can
 * SIGKILL heapscan mid-copy whatever the machine's speed.  It holds in a
 * copying thread, so SIGKILL is the only way on.
 */
static void hold_cb(void *ud, const struct hs_dump_stats *st)
{
	static bool held;

	(void)ud;
	if (!held && st->bytes_done < st->bytes_total) {
		held = true;
		hs_cli_test_hold_at("dump-copy");
	}
}

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

/* How the memory was held still: "fork", "stop" or "none". */
static const char *snapshot_kind(const struct hs_target *t)
{
	if (hs_live_forked(t))
		return "fork";
	return hs_target_holds(t) ? "stop" : "none";
}

static void report_text(FILE *out, const char *path, const struct hs_target *t,
			const struct hs_dump_stats *st)
{
	char a[16], b[16], c[16], d[16], e[16], f[16];
	double copy_s = (double)st->copy_ns / 1e9;

	fprintf(out, "heapscan %s: wrote '%s' from %s (%s)\n", HS_VERSION, path, t->source,
	       t->info.comm[0] ? t->info.comm : "?");
	fprintf(out, "  regions:  %zu (%zu in full, %zu header page only, %zu empty)\n",
	       st->regions, st->regions_full, st->regions_header,
	       st->regions - st->regions_full - st->regions_header);
	fprintf(out, "  threads:  %zu\n", st->threads);
	fprintf(out, "  memory:   %s selected: %s written, %s zero pages and %s never touched "
	       "left as holes",
	       hs_fmt_bytes(a, sizeof(a), st->bytes_total),
	       hs_fmt_bytes(b, sizeof(b), st->bytes_written),
	       hs_fmt_bytes(c, sizeof(c), st->bytes_zero),
	       hs_fmt_bytes(d, sizeof(d), st->bytes_absent));
	if (st->bytes_unreadable)
		fprintf(out, ", %" PRIu64 " bytes unreadable", st->bytes_unreadable);
	fprintf(out, "\n  file:     %s, %s on disk\n", hs_fmt_bytes(e, sizeof(e), st->file_size),
	       hs_fmt_bytes(f, sizeof(f), st->disk_bytes));
	fprintf(out, "  copy:     %.1f ms (%s/s)\n", ms(st->copy_ns),
	       hs_fmt_bytes(a, sizeof(a), copy_s > 0 ? (uint64_t)((double)st->bytes_total / copy_s) : 0));
	if (!strcmp(snapshot_kind(t), "fork"))
		fprintf(out, "  stopped:  %.1f ms (to fork a snapshot and to reap it; the copy "
		       "read the snapshot)\n", ms(st->stop_ns));
	else if (!strcmp(snapshot_kind(t), "stop"))
		fprintf(out, "  stopped:  %.1f ms\n", ms(st->stop_ns));
	fprintf(out, "  total:    %.1f ms\n", ms(st->wall_ns));
	hs_report_pages_text(out, t);
}

static void report_json(struct hs_json *j, const char *path, const struct hs_target *t,
			const struct hs_dump_stats *st)
{
	hs_json_str(j, "path", path);
	hs_json_str(j, "source", t->source);
	hs_json_i64(j, "pid", t->info.pid);
	hs_json_u64(j, "regions", st->regions);
	hs_json_u64(j, "regions_full", st->regions_full);
	hs_json_u64(j, "regions_header", st->regions_header);
	hs_json_u64(j, "threads", st->threads);
	hs_json_u64(j, "bytes_selected", st->bytes_total);
	hs_json_u64(j, "bytes_written", st->bytes_written);
	hs_json_u64(j, "bytes_zero", st->bytes_zero);
	hs_json_u64(j, "bytes_absent", st->bytes_absent);
	hs_json_u64(j, "bytes_unreadable", st->bytes_unreadable);
	hs_json_u64(j, "file_size", st->file_size);
	hs_json_u64(j, "disk_bytes", st->disk_bytes);
	hs_json_double(j, "copy_ms", ms(st->copy_ns));
	hs_json_double(j, "stop_ms", ms(st->stop_ns));
	hs_json_str(j, "snapshot", snapshot_kind(t));
	hs_json_double(j, "wall_ms", ms(st->wall_ns));
	hs_report_pages_json(j, t);
	hs_json_bool(j, "partial", (t->state & HS_TSTATE_PARTIAL) || st->bytes_unreadable);
}

static const struct option options[] = {
	{ "output", required_argument, NULL, 'o' },
	{ "force", no_argument, NULL, 'f' },
	{ "regions", required_argument, NULL, OPT_REGIONS },
	{ "all", no_argument, NULL, OPT_ALL },
	{ "heap-only", no_argument, NULL, OPT_HEAP_ONLY },
	{ "no-sync", no_argument, NULL, OPT_NO_SYNC },
	{ "sync", no_argument, NULL, OPT_SYNC },
	{ "jobs", required_argument, NULL, OPT_JOBS },
	{ NULL, 0, NULL, 0 },
};

struct dump {
	struct hs_dump_opts dopts;
	struct hs_dump_stats st;
	struct progress pr;
	const char *out;
	int nsel;
};

static void init(void *state)
{
	struct dump *s = state;

	/*
	 * No fsync by default: gcore and cp do not sync either, and it made a
	 * 1.5 GB dump 4x slower (bench/bench_dump.sh).  Write errors still
	 * surface: every pwrite, the ftruncate and close are checked before
	 * the rename, and local filesystems (ext4, xfs, tmpfs) reserve blocks
	 * at write time, so ENOSPC fails the dump and leaves nothing.  What
	 * --sync adds is durability against a crash of the machine (and
	 * errors that a network filesystem reports only at writeback).
	 */
	s->dopts.no_sync = true;
}

static int option(void *state, int c, const char *arg)
{
	struct dump *s = state;
	uint64_t v;

	switch (c) {
	case 'o':
		s->out = arg;
		break;
	case 'f':
		s->dopts.force = true;
		break;
	case OPT_REGIONS:
		s->nsel++;
		return hs_cli_parse_classes("dump", arg, &s->dopts.classes);
	case OPT_ALL:
		s->dopts.all = true;
		s->nsel++;
		break;
	case OPT_HEAP_ONLY:
		s->dopts.classes = 1u << HS_CLASS_HEAP | 1u << HS_CLASS_ARENA |
				   1u << HS_CLASS_ANON | 1u << HS_CLASS_DATA;
		s->nsel++;
		break;
	case OPT_NO_SYNC:
		s->dopts.no_sync = true;
		break;
	case OPT_SYNC:
		s->dopts.no_sync = false;
		break;
	case OPT_JOBS:
		if (hs_cli_parse_u64(arg, &v) || v < 1 || v > 16)
			return hs_cli_usage_err("dump", "invalid --jobs '%s' (1 to 16)", arg);
		s->dopts.jobs = (unsigned)v;
		break;
	}
	return 0;
}

static int check(void *state, const struct hs_cli_opts *o)
{
	struct dump *s = state;
	struct stat sb;

	(void)o;
	if (!s->out || !*s->out)
		return hs_cli_usage_err("dump", "no output file: give -o FILE");
	if (s->nsel > 1)
		return hs_cli_usage_err("dump", "--regions, --all and --heap-only exclude each other");
	/* Fail before stopping anything (the writer checks again, atomically). */
	if (!s->dopts.force && lstat(s->out, &sb) == 0) {
		hs_cli_err("'%s' exists; use --force to replace it", s->out);
		return HS_EXIT_FATAL;
	}
	return 0;
}

static int collect(struct hs_run *run)
{
	struct dump *s = run->state;
	int ret;

	if (run->t->caps & HS_CAP_READ_FAULTS) {
		s->dopts.pagemap = hs_live_pages_touched;
		s->dopts.pagemap_ud = run->t;
	}
	if (hs_cli_progress_enabled()) {
		s->pr.start = hs_now_ns();
		s->dopts.progress = progress_cb;
		s->dopts.progress_ud = &s->pr;
	} else if (getenv("HEAPSCAN_TEST_HOLD_AT")) {
		s->dopts.progress = hold_cb;
	}
	ret = hs_dump_write(run->t, s->out, &s->dopts, &s->st);
	if (s->pr.shown)
		fputs("\r\033[K", stderr);
	return ret;
}

static int explain(struct hs_run *run)
{
	struct dump *s = run->state;

	if (run->err == -EEXIST)
		hs_cli_err("'%s' exists; use --force to replace it", s->out);
	else
		hs_cli_err("cannot write '%s': %s; nothing written", s->out,
			   hs_strerror(run->err));
	return HS_EXIT_FATAL;
}

static void render(struct hs_run *run, FILE *out, struct hs_json *j)
{
	struct dump *s = run->state;

	if (j)
		report_json(j, s->out, run->t, &s->st);
	else
		report_text(out, s->out, run->t, &s->st);
	if (s->st.bytes_unreadable) {
		hs_cli_warn("%" PRIu64 " bytes could not be read and are zero in '%s'",
			    s->st.bytes_unreadable, s->out);
		run->partial = true;
	}
}

const struct hs_command hs_cmd_dump = {
	.name = "dump",
	.help = "write an ELF core file that gdb opens",
	.usage = usage_text,
	.shortopts = "o:f",
	.options = options,
	.flags = HS_CMD_OUTPUT_FILE,
	.state_size = sizeof(struct dump),
	.init = init,
	.option = option,
	.check = check,
	.collect = collect,
	.explain = explain,
	.render = render,
};

/* ---- heapscan core FILE: 'scan' on a core file ---- */

static int cmd_core(int argc, char **argv)
{
	char **av;
	int ret;

	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		printf("usage: heapscan core FILE [--exe EXE] [scan options]\n\n"
		       "Same as 'heapscan scan -c FILE': the default report on a core file\n"
		       "(kernel core, gdb gcore or heapscan dump).  See 'heapscan scan --help'.\n");
		return argc < 2 ? HS_EXIT_USAGE : HS_EXIT_OK;
	}
	if (argv[1][0] == '-')
		return hs_cli_usage_err("core", "the core file comes first: heapscan core FILE");
	/* argv = core FILE rest...  ->  scan -c FILE rest... */
	av = hs_xcalloc((size_t)argc + 2, sizeof(*av));
	av[0] = (char *)"scan";
	av[1] = (char *)"-c";
	av[2] = argv[1];
	for (int i = 2; i < argc; i++)
		av[i + 1] = argv[i];
	ret = hs_run_command(&hs_cmd_scan, argc + 1, av);
	free(av);
	return ret;
}

const struct hs_command hs_cmd_core = {
	.name = "core",
	.help = "the default report on a core file (same as scan -c FILE)",
	.main = cmd_core,
};
