/*
 * C++ vtables of a target's loaded modules, as the data heap/ takes
 * (src/ only: it reads symbols through hs_symbols).
 */
#ifndef HS_REPORT_CXX_H
#define HS_REPORT_CXX_H

#include "hs_core.h"
#include "hs_leaks.h"

struct hs_syms;

struct hs_cxx_vtables {
	struct hs_vtables vt;    /* what heap/ borrows: points into v */
	struct hs_vtable *v;     /* owned, sorted by start */
	size_t n, alloc;
	struct hs_syms *syms;    /* owned: the class names live in it */
};

/*
 * Collects every vtable symbol (_ZTV<class>, with a size) of t's modules
 * (.symtab when the module has one, else .dynsym) and names each by its
 * demangled class.  Reads the modules' files, not the target's memory.
 * A target without vtables gives an empty set.  Returns 0 or -ENOMEM.
 */
int hs_cxx_vtables_load(struct hs_target *t, struct hs_cxx_vtables *out) HS_MUST_CHECK;
void hs_cxx_vtables_release(struct hs_cxx_vtables *vs);

#endif
