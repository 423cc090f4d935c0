/* Placeholder until the core reader lands (issue: dumps and cores). */
#include "hs_symbols.h"

#include <errno.h>

int hs_target_open_core(const char *path, const char *exe,
			struct hs_target **out)
{
	(void)path;
	(void)exe;
	*out = NULL;
	return -ENOSYS;
}
