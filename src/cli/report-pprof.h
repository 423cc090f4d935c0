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
 * Writes p's items as a gzip-compressed pprof profile to f with the
 * labels pid, comm (may be NULL or "") and exe.  The caller opened f (an
 * hs_outfile for a file: private and atomic) and checks its writes.
 * Returns 0 or a negative error; *size (may be NULL) receives the
 * compressed size.
 */
int hs_report_pprof_write(FILE *f, const struct hs_profile *p, const char *comm,
			  size_t *size) HS_MUST_CHECK;

#endif
