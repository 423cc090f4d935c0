/*
 * The command runner (see struct hs_command in cli.h): the one place where
 * a target-reading command's lifecycle is written.  Part of the heapscan
 * executable.
 */
#include "cli.h"
#include "report.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The report: text on stdout, or one JSON document. */
static void render(struct hs_run *run)
{
	const struct hs_command *cmd = run->cmd;

	if (run->o.json) {
		struct hs_json j;

		hs_cli_json_begin(&j, cmd->name);
		if (cmd->flags & HS_CMD_HEADER_JSON)
			hs_report_header_json(&j, run->t);
		cmd->render(run, NULL, &j);
		hs_cli_json_end(&j);
		return;
	}
	if (cmd->flags & HS_CMD_HEADER_TEXT)
		hs_report_header_text(stdout, run->t);
	cmd->render(run, stdout, NULL);
}

/* The common options, then the command's own: getopt_long's table. */
static struct option *all_options(const struct option *own)
{
	static const struct option common[] = { HS_CLI_COMMON_LONGOPTS };
	size_t n = 0;
	struct option *v;

	while (own && own[n].name)
		n++;
	v = hs_xcalloc(HS_ARRAY_SIZE(common) + n + 1, sizeof(*v));
	memcpy(v, common, sizeof(common));
	if (n)
		memcpy(v + HS_ARRAY_SIZE(common), own, n * sizeof(*v));
	return v;
}

/* Options, operands and checks: true to go on, or false with *code set
 * (--help, a usage error). */
static bool parse(struct hs_run *run, int argc, char **argv, int *code)
{
	const struct hs_command *cmd = run->cmd;
	struct option *longopts = all_options(cmd->options);
	struct hs_cli_parser ps = {
		.cmd = cmd->name, .usage = cmd->usage, .usage_fn = cmd->usage_fn,
		.shortopts = cmd->shortopts, .longopts = longopts, .o = &run->o,
		.argc = argc, .argv = argv,
	};
	int c = 0, ret = 0;

	while (!ret && (c = hs_cli_next_opt(&ps)) > 0)
		ret = cmd->option ? cmd->option(run->state, c, optarg) : 0;
	free(longopts);
	if (c < 0) {
		*code = ps.exit;
		return false;
	}
	if (!ret && cmd->operands)
		ret = cmd->operands(run->state, argc, argv);
	if (!ret)
		ret = hs_cli_finish_options(cmd->name, argc, argv, &run->o);
	if (!ret && cmd->check)
		ret = cmd->check(run->state, &run->o);
	*code = ret;
	return ret == 0;
}

/* Open, hold, collect, resume, tell; the exit code. */
static int run_target(struct hs_run *run)
{
	const struct hs_command *cmd = run->cmd;
	bool file = cmd->flags & HS_CMD_OUTPUT_FILE;
	int ret;

	ret = hs_cli_open_target(&run->o, &run->t);
	if (ret)
		return ret;
	hs_cli_test_hold();
	run->err = hs_interrupted ? -HS_E_INTERRUPTED : cmd->collect(run);
	/* Everything is read: let the target run before formatting. */
	(void)hs_target_resume(run->t);
	if (run->err == 0 && cmd->finish)
		run->err = cmd->finish(run);
	/* A file once committed stands: only collect's own code says a
	 * signal cut it short. */
	if (run->err == -HS_E_INTERRUPTED || (hs_interrupted && !file)) {
		hs_cli_err_interrupted(file ? ", nothing written" : NULL);
		return HS_EXIT_FATAL;
	}
	if (run->err < 0) {
		if (run->o.json && (cmd->flags & HS_CMD_ERROR_JSON))
			render(run);
		if (hs_cli_gone(run->t, run->err)) {
			hs_cli_err_gone(run->t);
			return HS_EXIT_FATAL;
		}
		if (cmd->explain)
			return cmd->explain(run);
		hs_cli_err("%s: %s", run->t->source, hs_strerror(run->err));
		return HS_EXIT_FATAL;
	}
	render(run);
	ret = hs_cli_exit_for(run->t);
	if (ret == HS_EXIT_OK && run->partial)
		ret = HS_EXIT_PARTIAL;
	return ret; /* main() checks that stdout was written */
}

int hs_run_command(const struct hs_command *cmd, int argc, char **argv)
{
	struct hs_run run = { .cmd = cmd };
	int ret;

	if (cmd->main)
		return cmd->main(argc, argv);
	run.state = cmd->state_size ? hs_xcalloc(1, cmd->state_size) : NULL;
	if (cmd->init)
		cmd->init(run.state);
	if (parse(&run, argc, argv, &ret))
		ret = run_target(&run);
	if (cmd->release)
		cmd->release(run.state);
	free(run.state);
	hs_target_close(run.t);
	return ret;
}
