/*
 * Shared by the libFuzzer harnesses: quiet logging, and a file holding the
 * input for the readers that take a path.
 */
#ifndef HS_FUZZ_H
#define HS_FUZZ_H

#include "hs_core.h"

#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_quiet(enum hs_log_level lvl, const char *msg, void *ud)
{
	(void)lvl;
	(void)msg;
	(void)ud;
}

/* A memfd holding data, reachable by path: /proc/self/fd/N.  One per
 * process, rewritten per input. */
static inline const char *fuzz_file(const uint8_t *data, size_t size)
{
	static int fd = -1;
	static char path[64];

	if (fd < 0) {
		fd = memfd_create("hs-fuzz", MFD_CLOEXEC);
		if (fd < 0)
			return NULL;
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	}
	if (ftruncate(fd, 0) || (size && pwrite(fd, data, size, 0) != (ssize_t)size))
		return NULL;
	return path;
}

#endif
