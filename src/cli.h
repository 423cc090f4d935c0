/*
 * Shared plumbing of the heapscan CLI (src/main.c and src/cmd-*.c only):
 * exit codes, error printing, common options, opening a target from them.
 */
#ifndef HS_CLI_H
#define HS_CLI_H

#include <getopt.h>

#include "hs_core.h"

/* Exit codes, documented in --help and heapscan.1. */
enum hs_exit {
	HS_EXIT_OK = 0,      /* complete */
	HS_EXIT_PARTIAL = 1, /* report written, but some memory was unreadable
	                        or the target exited during the run */
	HS_EXIT_FATAL = 2,   /* nothing useful could be done */
	HS_EXIT_USAGE = 64,  /* bad command line */
};

/* Options every target-reading command shares. */
struct hs_cli_opts {
	pid_t pid;           /* 0: none */
	const char *core;    /* -c/--core FILE, or NULL */
	const char *exe;     /* --exe FILE for cores */
	bool no_stop;
	bool fork;           /* --fork: read a copy-on-write fork snapshot */
	bool no_swapin;      /* --no-swapin: leave swapped-out pages unread */
	bool json;
};

/* Long-option values of the common options (short ones use their letter). */
enum {
	HS_OPT_EXE = 0x1000,
	HS_OPT_NO_STOP,
	HS_OPT_JSON,
	HS_OPT_FORK,
	HS_OPT_NO_SWAPIN,
	HS_OPT_FIRST_PRIVATE = 0x1100, /* commands number theirs from here */
};

#define HS_CLI_COMMON_LONGOPTS                                              \
	{ "pid", required_argument, NULL, 'p' },                                \
	{ "core", required_argument, NULL, 'c' },                               \
	{ "exe", required_argument, NULL, HS_OPT_EXE },                         \
	{ "no-stop", no_argument, NULL, HS_OPT_NO_STOP },                       \
	{ "fork", no_argument, NULL, HS_OPT_FORK },                             \
	{ "no-swapin", no_argument, NULL, HS_OPT_NO_SWAPIN },                   \
	{ "json", no_argument, NULL, HS_OPT_JSON },                             \
	{ "help", no_argument, NULL, 'h' }
#define HS_CLI_COMMON_SHORTOPTS "p:c:h"

/* Help text lines for the common options, for each command's usage. */
extern const char hs_cli_common_help[];


/*
 * One command's option parsing: getopt_long over the common options and
 * the command's own.  Set every field but `exit`, then:
 *
 *	while ((c = hs_cli_next_opt(&ps)) > 0)
 *		switch (c) { ...the command's own options... }
 *	if (c < 0)
 *		return ps.exit;
 *
 * The common options fill *o; -h/--help prints usage (a printf format
 * whose one %s is hs_cli_common_help) and ends with exit 0; a missing
 * value, an unknown option or a bad common value is a usage error (64).
 */
struct hs_cli_parser {
	const char *cmd;              /* for messages: "heapscan CMD --help" */
	const char *usage;
	void (*usage_fn)(void);       /* prints usage instead, if set */
	const char *shortopts;        /* the command's own short options, or NULL */
	const struct option *longopts; /* HS_CLI_COMMON_LONGOPTS, then its own */
	struct hs_cli_opts *o;
	int argc;
	char **argv;
	int exit;                     /* set when hs_cli_next_opt returns -1 */
	bool started;                 /* internal: optind was reset */
};

/* Returns the next command-private option, 0 after the last option
 * (optind indexes the first operand), or -1: return p->exit. */
int hs_cli_next_opt(struct hs_cli_parser *p);


/* After the options: no stray arguments, exactly one target.  Returns 0,
 * or 64 after printing the usage error. */
int hs_cli_finish_options(const char *cmd, int argc, char **argv,
			  const struct hs_cli_opts *o);


/*
 * Opens the target named by o (live pid or core file), printing the one-line
 * error itself on failure.  Returns 0, or the exit code to use.
 */
int hs_cli_open_target(const struct hs_cli_opts *o, struct hs_target **out);

/* Starts a command's JSON document on stdout: the outer object with
 * schema_version, heapscan_version and command.  End it with
 * hs_cli_json_end(). */
void hs_cli_json_begin(struct hs_json *j, const char *cmd);
void hs_cli_json_end(struct hs_json *j);

/* "heapscan: <message>" on stderr, one line. */
void hs_cli_err(const char *fmt, ...) HS_PRINTF(1, 2);
void hs_cli_warn(const char *fmt, ...) HS_PRINTF(1, 2);
/* A usage error: message plus "see 'heapscan CMD --help'"; returns 64. */
int hs_cli_usage_err(const char *cmd, const char *fmt, ...) HS_PRINTF(2, 3);

/* Parses a size like "256M", "1G", "4096"; -1 on error. */
int hs_cli_parse_size(const char *s, uint64_t *out);
/* Parses an address: hex with or without 0x, no sign, no junk; -1 on error. */
int hs_cli_parse_addr(const char *s, hs_addr_t *out);
/* Parses a non-negative integer; -1 on error. */
int hs_cli_parse_u64(const char *s, uint64_t *out);

/* true when stderr is a terminal (progress goes there only then). */
bool hs_cli_progress_enabled(void);

/* Exit code for a finished run: PARTIAL if the target says so. */
int hs_cli_exit_for(const struct hs_target *t);

/*
 * The test hook HEAPSCAN_TEST_HOLD=1: after the target is suspended, write
 * "heapscan: test: holding" to stderr and wait for a signal, so tests can
 * signal or kill heapscan while the target is stopped, without sleeps.
 * HEAPSCAN_TEST_HOLD=resume: the same line, then wait for SIGUSR1 and go on
 * with the run.
 */
void hs_cli_test_hold(void);

/*
 * The test hook HEAPSCAN_TEST_HOLD_AT=POINT: at the named point of a run,
 * write "heapscan: test: holding at POINT" to stderr and wait for SIGUSR1.
 * Points: "read-done" (everything read, the target resumed, the results
 * not yet ranked).
 */
void hs_cli_test_hold_at(const char *point);

/* hs_str_opts.read_done for commands: resumes the target (the ranking
 * that follows runs while it runs), then the "read-done" test point. */
void hs_cli_read_done(void *t);

/* Subcommands: argv[0] is the subcommand name. */
int cmd_scan(int argc, char **argv);
int cmd_strings(int argc, char **argv);
int cmd_heap(int argc, char **argv);
int cmd_dump(int argc, char **argv);
int cmd_core(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_stacks(int argc, char **argv);
int cmd_snapshot(int argc, char **argv);
int cmd_diff(int argc, char **argv);
int cmd_watch(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_leaks(int argc, char **argv);
int cmd_types(int argc, char **argv);

#endif
