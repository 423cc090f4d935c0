/*
 * hs_pyfind: where a target's CPython interpreter is, from .dynsym (no
 * debug info, no code run): the module (executable or libpython) that
 * exports _PyRuntime and PyType_Type, and its version.  heap/'s census
 * (hs_python.h) takes the result as its opts.
 *
 * This layer knows nothing of CPython's structures beyond those names
 * and the version constant.
 */
#ifndef HS_PYFIND_H
#define HS_PYFIND_H

#include "hs_core.h"

struct hs_pyfind {
	char *module;            /* owned: the file exporting _PyRuntime */
	hs_addr_t runtime;       /* _PyRuntime, 0 if not exported (< 3.7) */
	hs_addr_t type_type;     /* PyType_Type */
	unsigned major, minor;   /* 0 when unknown */
	unsigned version_hex;    /* PY_VERSION_HEX, 0 if not read */
	const char *version_how; /* "Py_Version", "_Py_DebugOffsets",
				    "version string", "file name" (static),
				    or NULL */
	bool free_threaded;      /* named like a free-threaded build
				    ("libpython3.13t.so", "python3.13t") */
};

/*
 * Fills *o (zeroed first).  The interpreter is looked for in the main
 * executable and in modules named python* or libpython*: the module that
 * exports PyType_Type (every CPython does); runtime is 0 before 3.7.
 * The version comes from Py_Version (3.11+, read from the module's
 * file), else from the _Py_DebugOffsets header at the start of
 * _PyRuntime (3.13+), else from the version string in the module's
 * .rodata ("3.9.18", what sys.version starts with) when it agrees with
 * the module's file name ("libpython3.9.so.1.0", "python3.8") or that
 * has none, else from the file name.
 * Release with hs_pyfind_release().  Returns 0, -HS_E_NOT_FOUND (not a
 * Python process: no module exports PyType_Type), -HS_E_UNSUPPORTED (an
 * executable module named python* exports neither: a stripped build;
 * o->module names it), -ENOMEM.
 */
int hs_pyfind(struct hs_target *t, struct hs_pyfind *o) HS_MUST_CHECK;
void hs_pyfind_release(struct hs_pyfind *o);

#endif
