/* Placeholder: 'heapscan heap' is not implemented yet. */
#include "cli.h"

int cmd_heap(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	hs_cli_err("'heap' is not implemented yet");
	return HS_EXIT_FATAL;
}
