/*
 * hs_symbols: ELF core files (reading and writing), unwinding and symbols.
 */
#ifndef HS_SYMBOLS_H
#define HS_SYMBOLS_H

#include "hs_core.h"

/*
 * Opens an ELF core file (kernel core, gdb gcore, heapscan dump) as a
 * target.  exe may be NULL.  Errors: -errno, -HS_E_NOT_CORE, ...
 */
int hs_target_open_core(const char *path, const char *exe,
			struct hs_target **out) HS_MUST_CHECK;

#endif
