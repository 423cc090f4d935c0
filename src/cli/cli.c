/* Shared CLI plumbing; see cli.h.  Part of the heapscan executable. */
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hs_ptrace.h"
#include "hs_symbols.h"

const char hs_cli_common_help[] =
	"  -p, --pid PID      inspect live process PID\n"
	"  -c, --core FILE    inspect a core file (kernel core, gcore, heapscan dump)\n"
	"      --exe FILE     the executable, for a core that does not name it\n"
	"      --no-stop      read a live process without stopping it\n"
	"                     (faster for the target, but the picture may tear)\n"
	"      --fork         stop a live process only to fork a copy-on-write\n"
	"                     snapshot of it inside it (milliseconds), then read\n"
	"                     the snapshot while the process runs on\n"
	"      --no-swapin    leave a live process's swapped-out pages unread (the\n"
	"                     result is then partial); by default they are read,\n"
	"                     which swaps them in, and the report says how much\n"
	"      --json         one JSON document on stdout instead of text\n"
	"  -h, --help         this help\n";

static void vmsg(const char *prefix, const char *fmt, va_list ap)
{
	struct hs_buf sb = HS_BUF_INIT;

	hs_buf_adds(&sb, "heapscan: ");
	hs_buf_adds(&sb, prefix);
	hs_buf_vaddf(&sb, fmt, ap);
	hs_buf_addch(&sb, '\n');
	fputs(sb.buf, stderr);
	hs_buf_release(&sb);
}

void hs_cli_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg("", fmt, ap);
	va_end(ap);
}

void hs_cli_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg("warning: ", fmt, ap);
	va_end(ap);
}

int hs_cli_usage_err(const char *cmd, const char *fmt, ...)
{
	struct hs_buf sb = HS_BUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	hs_buf_vaddf(&sb, fmt, ap);
	va_end(ap);
	hs_cli_err("%s; see 'heapscan %s --help'", sb.buf, cmd);
	hs_buf_release(&sb);
	return HS_EXIT_USAGE;
}

void hs_cli_err_interrupted(const char *note)
{
	hs_cli_err("interrupted; target released%s", note ? note : "");
}

void hs_cli_err_gone(const struct hs_target *t)
{
	if (t->state & HS_TSTATE_COPY_LOST)
		hs_cli_err("%s: the --fork copy was lost mid-run (its heapscan-guard "
			   "process was killed); the process runs on: run again",
			   t->source);
	else
		hs_cli_err("%s exited during the run", t->source);
}

bool hs_cli_gone(const struct hs_target *t, int err)
{
	return err == -ESRCH || (err < 0 && (t->state & HS_TSTATE_GONE));
}

int hs_cli_parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!s || !*s || *s == '-' || *s == '+')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end)
		return -1;
	*out = v;
	return 0;
}

int hs_cli_parse_addr(const char *s, hs_addr_t *out)
{
	char *end;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		s += 2;
	if (!*s || strspn(s, "0123456789abcdefABCDEF") != strlen(s) || strlen(s) > 16)
		return -1;
	errno = 0;
	*out = strtoull(s, &end, 16);
	return errno || *end ? -1 : 0;
}

int hs_cli_parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	uint64_t mul = 1;

	if (!s || !*s || *s == '-' || *s == '+')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
	switch (*end) {
	case '\0': break;
	case 'k': case 'K': mul = 1ull << 10; end++; break;
	case 'm': case 'M': mul = 1ull << 20; end++; break;
	case 'g': case 'G': mul = 1ull << 30; end++; break;
	default: return -1;
	}
	if (*end == 'i' && mul > 1)
		end++;
	if ((*end == 'B' || *end == 'b') && end[1] == '\0')
		end++;
	if (*end || (v && v > UINT64_MAX / mul))
		return -1;
	*out = v * mul;
	return 0;
}

int hs_cli_parse_classes(const char *cmd, const char *list, unsigned *mask)
{
	char *dup = hs_xstrdup(list), *save = NULL;
	int ret = 0;

	*mask = 0;
	for (char *tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		int c = hs_class_parse(tok);

		if (c < 0) {
			ret = hs_cli_usage_err(cmd, "unknown region class '%s' in --regions", tok);
			break;
		}
		*mask |= 1u << c;
	}
	if (!ret && !*mask)
		ret = hs_cli_usage_err(cmd, "--regions needs at least one class");
	free(dup);
	return ret;
}

/* A common option: 1 if consumed, 0 if not one, -1 after a usage error. */
static int common_opt(int c, const char *arg, struct hs_cli_opts *o)
{
	uint64_t v;

	switch (c) {
	case 'p':
		if (hs_cli_parse_u64(arg, &v) || v == 0 || v > 0x7fffffff) {
			hs_cli_err("invalid pid '%s'; see 'heapscan --help'", arg);
			return -1;
		}
		o->pid = (pid_t)v;
		return 1;
	case 'c':
		o->core = arg;
		return 1;
	case HS_OPT_EXE:
		o->exe = arg;
		return 1;
	case HS_OPT_NO_STOP:
		o->no_stop = true;
		return 1;
	case HS_OPT_FORK:
		o->fork = true;
		return 1;
	case HS_OPT_NO_SWAPIN:
		o->no_swapin = true;
		return 1;
	case HS_OPT_JSON:
		o->json = true;
		return 1;
	default:
		return 0;
	}
}

/* getopt_long's ':' (missing value) or '?' (unknown) as one usage error
 * line; returns 64. */
static int bad_option(const char *cmd, int c, char **argv)
{
	if (c == ':')
		return hs_cli_usage_err(cmd, "option '%s' needs a value", argv[optind - 1]);
	return hs_cli_usage_err(cmd, "unknown option '%s'", argv[optind - 1]);
}

/* Exactly one of --pid/--core: 0, or -1 after the usage error. */
static int check_target(const struct hs_cli_opts *o)
{
	if (o->pid && o->core) {
		hs_cli_err("--pid and --core exclude each other; see 'heapscan --help'");
		return -1;
	}
	if (!o->pid && !o->core) {
		hs_cli_err("no target: give --pid PID or --core FILE; see 'heapscan --help'");
		return -1;
	}
	if (o->exe && !o->core) {
		hs_cli_err("--exe goes with --core; see 'heapscan --help'");
		return -1;
	}
	if (o->fork && o->core) {
		hs_cli_err("--fork goes with --pid; see 'heapscan --help'");
		return -1;
	}
	if (o->no_swapin && o->core) {
		hs_cli_err("--no-swapin goes with --pid; see 'heapscan --help'");
		return -1;
	}
	if (o->fork && o->no_stop) {
		hs_cli_err("--fork and --no-stop exclude each other; see 'heapscan --help'");
		return -1;
	}
	return 0;
}

/* Usage texts are printf formats of one %s (the common options) and %%. */
static void print_usage(const char *u)
{
	for (; *u; u++) {
		if (u[0] == '%' && u[1] == 's') {
			fputs(hs_cli_common_help, stdout);
			u++;
		} else if (u[0] == '%' && u[1] == '%') {
			putchar('%');
			u++;
		} else {
			putchar(*u);
		}
	}
}

int hs_cli_next_opt(struct hs_cli_parser *p)
{
	char shortopts[64];
	int c, r;

	if (!p->started) {
		optind = 1;
		opterr = 0;
		p->started = true;
	}
	snprintf(shortopts, sizeof(shortopts), ":%s%s", HS_CLI_COMMON_SHORTOPTS,
		 p->shortopts ? p->shortopts : "");
	do {
		c = getopt_long(p->argc, p->argv, shortopts, p->longopts, NULL);
		if (c == -1)
			return 0;
		r = common_opt(c, optarg, p->o);
	} while (r > 0);
	if (r < 0) {
		p->exit = HS_EXIT_USAGE;
		return -1;
	}
	if (c == 'h') {
		if (p->usage_fn)
			p->usage_fn();
		else
			print_usage(p->usage);
		p->exit = HS_EXIT_OK;
		return -1;
	}
	if (c == ':' || c == '?') {
		p->exit = bad_option(p->cmd, c, p->argv);
		return -1;
	}
	return c;
}


int hs_cli_finish_options(const char *cmd, int argc, char **argv,
			  const struct hs_cli_opts *o)
{
	if (optind < argc)
		return hs_cli_usage_err(cmd, "unexpected argument '%s'", argv[optind]);
	return check_target(o) < 0 ? HS_EXIT_USAGE : 0;
}


int hs_cli_open_target(const struct hs_cli_opts *o, struct hs_target **out)
{
	bool opened;
	int ret;

	*out = NULL;
	if (o->core) {
		ret = hs_target_open_core(o->core, o->exe, out);
		if (ret < 0) {
			hs_cli_err("cannot read core '%s': %s", o->core, hs_strerror(ret));
			return HS_EXIT_FATAL;
		}
		return 0;
	}
	ret = hs_target_open_pid(o->pid, (o->no_stop ? HS_TARGET_NO_STOP : 0) |
				 (o->fork ? HS_TARGET_FORK : 0) |
				 (o->no_swapin ? HS_TARGET_NO_SWAPIN : 0), out);
	opened = ret == 0;
	if (ret == 0 && !o->no_stop) {
		ret = hs_target_suspend(*out);
		if (ret < 0) {
			hs_target_close(*out);
			*out = NULL;
		}
	}
	if (ret == 0)
		return 0;
	switch (-ret) {
	case ESRCH:
		if (opened)
			hs_cli_err("pid %d: the process exited while heapscan attached",
				   (int)o->pid);
		else
			hs_cli_err("no such process: %d", (int)o->pid);
		break;
	case EPERM:
	case EACCES: {
		struct hs_buf why = HS_BUF_INIT;
		hs_ptrace_diagnose_eperm(o->pid, &why);
		hs_cli_err("permission denied for pid %d: %s", (int)o->pid, why.buf);
		hs_buf_release(&why);
		break;
	}
	case HS_E_TRACED: {
		struct hs_buf why = HS_BUF_INIT;
		hs_ptrace_diagnose_eperm(o->pid, &why);
		hs_cli_err("cannot attach to pid %d: %s", (int)o->pid, why.buf);
		hs_buf_release(&why);
		break;
	}
	default:
		hs_cli_err("cannot inspect pid %d: %s", (int)o->pid, hs_strerror(ret));
		break;
	}
	return HS_EXIT_FATAL;
}

void hs_cli_json_begin(struct hs_json *j, const char *cmd)
{
	hs_json_init(j, stdout, true);
	hs_json_obj_begin(j, NULL);
	hs_json_u64(j, "schema_version", 1);
	hs_json_str(j, "heapscan_version", HS_VERSION);
	hs_json_str(j, "command", cmd);
}

void hs_cli_json_end(struct hs_json *j)
{
	hs_json_obj_end(j);
	hs_json_finish(j);
}

bool hs_cli_progress_enabled(void)
{
	return isatty(2);
}

int hs_cli_exit_for(const struct hs_target *t)
{
	return (t->state & HS_TSTATE_PARTIAL) ? HS_EXIT_PARTIAL : HS_EXIT_OK;
}

void hs_cli_test_hold(void)
{
	sigset_t block, old;
	const char *hold = getenv("HEAPSCAN_TEST_HOLD");
	bool go_on;

	if (!hold)
		return;
	/* "resume": wait for SIGUSR1, then carry on with the run (tests
	 * change the target while a --fork snapshot is held). */
	go_on = !strcmp(hold, "resume");
	/* Block first, so a signal sent right after the line is not lost
	 * between the flag test and sigsuspend(). */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGUSR1);
	sigprocmask(SIG_BLOCK, &block, &old);
	fputs("heapscan: test: holding\n", stderr);
	fflush(stderr);
	if (go_on) {
		int sig = 0;

		sigemptyset(&block);
		sigaddset(&block, SIGUSR1);
		while (sigwait(&block, &sig) != 0)
			;
	} else {
		while (!hs_interrupted)
			sigsuspend(&old);
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
}

void hs_cli_test_hold_at(const char *point)
{
	const char *at = getenv("HEAPSCAN_TEST_HOLD_AT");
	sigset_t block, old;
	int sig = 0;

	if (!at || strcmp(at, point))
		return;
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigprocmask(SIG_BLOCK, &block, &old);
	fprintf(stderr, "heapscan: test: holding at %s\n", point);
	fflush(stderr);
	while (sigwait(&block, &sig) != 0)
		;
	sigprocmask(SIG_SETMASK, &old, NULL);
}

void hs_cli_read_done(void *t)
{
	(void)hs_target_resume(t);
	hs_cli_test_hold_at("read-done");
}
