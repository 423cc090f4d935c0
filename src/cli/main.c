/*
 * heapscan: process-inspection and heap-forensics for Linux.
 *
 * Dispatches "heapscan <cmd> ..." through a table of struct hs_command
 * (git's cmd_struct) to the runner (src/runner.c);
 * "heapscan -p PID" alone means "heapscan scan -p PID".
 */
#include "cli.h"
#include "hs_gitrev.h" /* generated: cmake/gitrev.cmake */

#include <errno.h>
#include <stdbool.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * The commands in --help's order: each NAME is the struct hs_command
 * hs_cmd_NAME of src/cli/cmd-NAME.c (core's is in cmd-dump.c).
 */
#define COMMANDS(X) X(scan) X(strings) X(heap) X(dump) X(core) X(check) X(stacks) \
	X(snapshot) X(diff) X(watch) X(show) X(leaks) X(types)

#define DECLARE(name) extern const struct hs_command hs_cmd_##name;
#define ROW(name) &hs_cmd_##name,
COMMANDS(DECLARE)
static const struct hs_command *const commands[] = { COMMANDS(ROW) };

static void usage(FILE *out)
{
	fprintf(out,
		"usage: heapscan [-p PID | -c CORE] [options]     (same as 'scan')\n"
		"       heapscan <command> [options]\n"
		"       heapscan --version\n\n"
		"commands:\n");
	for (size_t i = 0; i < HS_ARRAY_SIZE(commands); i++)
		fprintf(out, "  %-9s %s\n", commands[i]->name, commands[i]->help);
	fprintf(out,
		"\n'heapscan <command> --help' lists a command's options.\n\n"
		"exit status:\n"
		"  0   complete\n"
		"  1   partial: a report was written, but some memory could not be read\n"
		"      or the target exited during the run\n"
		"  2   fatal: no such process, permission denied, unreadable file, ...\n"
		"  64  usage error\n");
}

static void on_signal(int sig)
{
	(void)sig;
	/* The main path sees the flag, detaches every thread and exits. */
	hs_interrupted = 1;
}

/*
 * Installed from a constructor: before main() and before the constructors
 * of the libraries linked after us, so a SIGINT/SIGTERM that comes in the
 * first milliseconds (the dynamic loader's work is all that runs before)
 * sets the flag instead of ending heapscan by the default action.  Nothing
 * can run earlier than this: a signal during the loader's own work (about
 * a millisecond) ends heapscan before it has opened anything.
 *
 * SIGHUP left ignored stays ignored (nohup heapscan watch ...); SIGINT and
 * SIGTERM are always heapscan's, so the target is released whoever started
 * it.  The three are unblocked: a mask inherited from the parent would
 * otherwise make heapscan deaf to them for its whole run, and one already
 * pending from before execve() is taken now (run() then says
 * "interrupted" before touching any target).
 */
__attribute__((constructor(101))) static void install_signals(void)
{
	struct sigaction sa, old;
	sigset_t set;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: a blocking waitpid() must return EINTR. */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (sigaction(SIGHUP, NULL, &old) != 0 || old.sa_handler != SIG_IGN)
		sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
}

static void log_to_stderr(enum hs_log_level lvl, const char *msg, void *ud)
{
	(void)ud;
	if (lvl == HS_LOG_DEBUG && !getenv("HEAPSCAN_DEBUG"))
		return;
	fprintf(stderr, "heapscan: %s%s\n",
		lvl == HS_LOG_ERROR ? "error: " : lvl == HS_LOG_WARN ? "warning: " : "",
		msg);
}

/*
 * Every command ends here: the report on stdout is only complete once it
 * was written, so a failed write (a full disk, a closed pipe, /dev/full)
 * turns a command's result into a fatal error with one line on stderr.
 */
static int finish_stdout(int rc)
{
	int err = 0;
	bool failed = false;

	if (fflush(stdout) != 0) {
		err = errno;
		failed = true;
	}
	/* An earlier write failed (its errno is long gone). */
	if (ferror(stdout))
		failed = true;
	/* close() reports what a flush may not (NFS, some devices). */
	if (!failed && close(STDOUT_FILENO) < 0 && errno != EBADF && errno != EINTR) {
		err = errno;
		failed = true;
	}
	if (!failed)
		return rc;
	if (err)
		hs_cli_err("cannot write to stdout: %s", strerror(err));
	else
		hs_cli_err("cannot write to stdout: a write failed");
	return HS_EXIT_FATAL;
}

static int run(int argc, char **argv)
{
	const char *name;

	if (hs_interrupted) {
		/* A signal before the first instruction of main(). */
		hs_cli_err("interrupted");
		return HS_EXIT_FATAL;
	}
	hs_log_set(log_to_stderr, NULL);
	if (argc < 2) {
		usage(stderr);
		return HS_EXIT_USAGE;
	}
	name = argv[1];
	if (!strcmp(name, "-h") || !strcmp(name, "--help") || !strcmp(name, "help")) {
		usage(stdout);
		return HS_EXIT_OK;
	}
	if (!strcmp(name, "--version") || !strcmp(name, "-V")) {
		printf("heapscan %s (%s)\n", HS_VERSION, HS_GIT_REVISION);
		return HS_EXIT_OK;
	}
	if (name[0] == '-') {
		/* "heapscan -p PID ...": argv[0] stands in for "scan". */
		return hs_run_command(&hs_cmd_scan, argc, argv);
	}
	for (size_t i = 0; i < HS_ARRAY_SIZE(commands); i++)
		if (!strcmp(name, commands[i]->name))
			return hs_run_command(commands[i], argc - 1, argv + 1);
	hs_cli_err("'%s' is not a heapscan command; see 'heapscan --help'", name);
	return HS_EXIT_USAGE;
}

int main(int argc, char **argv)
{
	return finish_stdout(run(argc, argv));
}
