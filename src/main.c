/*
 * heapscan: process-inspection and heap-forensics for Linux.
 *
 * Dispatches "heapscan <cmd> ..." through a table (git's cmd_struct);
 * "heapscan -p PID" alone means "heapscan scan -p PID".
 */
#include "cli.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

struct cmd_struct {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help;
};

static const struct cmd_struct commands[] = {
	{ "scan", cmd_scan, "where the memory is: regions, heap, top strings (default)" },
	{ "strings", cmd_strings, "count printable strings in the target's memory" },
	{ "heap", cmd_heap, "walk the glibc heap: arenas, chunks in use and free" },
	{ "dump", cmd_dump, "write an ELF core file that gdb opens" },
	{ "core", cmd_core, "the default report on a core file (same as scan -c FILE)" },
	{ "check", cmd_check, "probe what this machine lets heapscan do" },
	{ "stacks", cmd_stacks, "every thread's backtrace, symbolized (like eu-stack)" },
	{ "snapshot", cmd_snapshot, "write a growth profile for a later diff" },
	{ "diff", cmd_diff, "what grew between two profiles, dumps or cores" },
	{ "watch", cmd_watch, "sample a process repeatedly: what grows, how fast" },
	{ "show", cmd_show, "what is at an address: mapping, chunk, dump, references" },
	{ "types", cmd_types, "live objects by type, like jmap -histo (Python)" },
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: heapscan [-p PID | -c CORE] [options]     (same as 'scan')\n"
		"       heapscan <command> [options]\n"
		"       heapscan --version\n\n"
		"commands:\n");
	for (size_t i = 0; i < HS_ARRAY_SIZE(commands); i++)
		fprintf(out, "  %-9s %s\n", commands[i].name, commands[i].help);
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

static void install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: a blocking waitpid() must return EINTR. */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
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

int main(int argc, char **argv)
{
	const char *name;

	install_signals();
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
		printf("heapscan %s\n", HS_VERSION);
		return HS_EXIT_OK;
	}
	if (name[0] == '-') {
		/* "heapscan -p PID ...": argv[0] stands in for "scan". */
		return cmd_scan(argc, argv);
	}
	for (size_t i = 0; i < HS_ARRAY_SIZE(commands); i++)
		if (!strcmp(name, commands[i].name))
			return commands[i].fn(argc - 1, argv + 1);
	hs_cli_err("'%s' is not a heapscan command; see 'heapscan --help'", name);
	return HS_EXIT_USAGE;
}
