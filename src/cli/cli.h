/*
 * Shared plumbing of the heapscan CLI (src/cli/ only):
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
/* The two ends of a run every command tells alike: a signal came (the
 * target is let go; note, if not NULL, is appended), or the target
 * exited while it was read. */
void hs_cli_err_interrupted(const char *note);
void hs_cli_err_gone(const struct hs_target *t);
/* Whether err is explained by the target (or its --fork copy) vanishing
 * mid-run: -ESRCH, or any failure once reads found it gone (an analysis
 * that saw only failed reads reports something else). */
bool hs_cli_gone(const struct hs_target *t, int err);
/* A usage error: message plus "see 'heapscan CMD --help'"; returns 64. */
int hs_cli_usage_err(const char *cmd, const char *fmt, ...) HS_PRINTF(2, 3);

/* Parses a size like "256M", "1G", "4096"; -1 on error. */
int hs_cli_parse_size(const char *s, uint64_t *out);
/* Parses an address: hex with or without 0x, no sign, no junk; -1 on error. */
int hs_cli_parse_addr(const char *s, hs_addr_t *out);
/* --regions LIST: region class names, comma-separated, into a mask of
 * 1 << class.  0, or 64 after the usage error. */
int hs_cli_parse_classes(const char *cmd, const char *list, unsigned *mask);
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
 * not yet ranked); "dump-copy" (dump's first chunk in its temporary file;
 * held in a copying thread, so only SIGKILL ends it).
 */
void hs_cli_test_hold_at(const char *point);

/* hs_str_opts.read_done for commands: resumes the target (the ranking
 * that follows runs while it runs), then the "read-done" test point. */
void hs_cli_read_done(void *t);

/*
 * One command (git's run_builtin).  A command that reads a target declares
 * what it needs and implements its own part, collect and render; the
 * runner (src/runner.c) owns the rest of the lifecycle: option parsing,
 * opening the target, the test hold, resuming it, the interrupted and the
 * target-gone messages, the JSON document's frame, exit codes, releasing
 * and closing.  A command of another shape sets only name, help and main.
 * Adding a command: one cmd-<name>.c defining its struct hs_command
 * hs_cmd_<name>, and its name in main.c's table.
 */
struct hs_json;
struct hs_run;

enum hs_command_flags {
	HS_CMD_HEADER_JSON = 1 << 0, /* --json: the report header after "command" */
	HS_CMD_HEADER_TEXT = 1 << 1, /* text: the report header before render */
	HS_CMD_ERROR_JSON = 1 << 2,  /* --json: a document even when collect
	                                failed (render sees run->err < 0) */
	HS_CMD_OUTPUT_FILE = 1 << 3, /* collect or finish commits a file: only
	                                their -HS_E_INTERRUPTED is an interrupt,
	                                and then "nothing written" */
};

struct hs_command {
	const char *name;
	const char *help;             /* one line of 'heapscan --help' */
	/* A command outside the runner's shape: argv[0] is its name.  When
	 * set, nothing below is used. */
	int (*main)(int argc, char **argv);

	const char *usage;            /* as hs_cli_parser's usage, usage_fn */
	void (*usage_fn)(void);
	const char *shortopts;        /* the command's own, or NULL */
	const struct option *options; /* its own long options (after the
	                                 common ones), or NULL */
	unsigned flags;               /* enum hs_command_flags */
	size_t state_size;            /* run->state: zeroed, then init() */

	/* Each may be NULL but collect and render. */
	void (*init)(void *state);
	/* A private option: 0, or an exit code (hs_cli_usage_err). */
	int (*option)(void *state, int c, const char *arg);
	/* Operands (optind is the first): 0 or an exit code.  Before the
	 * common checks of hs_cli_finish_options. */
	int (*operands)(void *state, int argc, char **argv);
	/* After the options: 0 or an exit code; before the target opens. */
	int (*check)(void *state, const struct hs_cli_opts *o);
	/* Reads the target while it is held (it may resume it earlier):
	 * 0 or a negative code.  -HS_E_INTERRUPTED and -ESRCH are told by
	 * the runner, other codes by explain. */
	int (*collect)(struct hs_run *run);
	/* After collect succeeded and the target was resumed, before render
	 * (writes a file, opens symbol files): 0 or a negative code, told
	 * as collect's are. */
	int (*finish)(struct hs_run *run);
	/* Says why collect failed (run->err) in one line; returns the exit
	 * code.  NULL: "SOURCE: <hs_strerror>", exit 2. */
	int (*explain)(struct hs_run *run);
	/* The report, the target resumed: text on out, or with --json the
	 * members of the document on j (out is then NULL). */
	void (*render)(struct hs_run *run, FILE *out, struct hs_json *j);
	/* Frees what init, option, collect and render left in state. */
	void (*release)(void *state);
};

struct hs_run {
	const struct hs_command *cmd;
	struct hs_cli_opts o;
	struct hs_target *t;          /* open from collect to the end */
	void *state;                  /* cmd->state_size bytes */
	int err;                      /* collect's (or finish's) result */
	bool partial;                 /* set by the command: exit 1 over 0 */
};

/* Runs cmd on argv (argv[0] is the command's name); returns the exit code.
 * Calls cmd->main when set. */
int hs_run_command(const struct hs_command *cmd, int argc, char **argv);

/* The default command ("heapscan -p PID", "heapscan core FILE").  The
 * others are named in main.c's table only. */
extern const struct hs_command hs_cmd_scan;

#endif
