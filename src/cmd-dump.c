/* Placeholder: 'heapscan dump' is not implemented yet. */
#include "cli.h"

int cmd_dump(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	hs_cli_err("'dump' is not implemented yet");
	return HS_EXIT_FATAL;
}
