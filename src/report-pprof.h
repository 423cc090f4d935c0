/*
 * pprof output for the CLI (src/ only): a growth profile as a
 * gzip-compressed profile.proto file (heap/hs_pprof.h builds and encodes
 * it; this compresses and writes).
 */
#ifndef HS_REPORT_PPROF_H
#define HS_REPORT_PPROF_H

#include "hs_core.h"
#include "hs_heap.h"

/*
 * Writes p's items as a pprof profile to path ('-': stdout) with the
 * labels pid, comm (may be NULL or "") and exe.  A file is written under
 * a temporary name in its directory, mode 0600, and renamed into place
 * (replacing path, never writing through a symlink).  Prints its
 * one-line error; returns 0 or HS_EXIT_FATAL.  *size (may be NULL)
 * receives the compressed size.
 */
int hs_report_pprof_write(const char *path, const struct hs_profile *p,
			  const char *comm, size_t *size);

#endif
