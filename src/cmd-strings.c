/* Placeholder: 'heapscan strings' is not implemented yet. */
#include "cli.h"

int cmd_strings(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	hs_cli_err("'strings' is not implemented yet");
	return HS_EXIT_FATAL;
}
