/*
 * The `heapscan show` report (src/ only): text and JSON forms of a
 * collected struct hs_show, with symbols from the resolver.
 */
#ifndef HS_REPORT_SHOW_H
#define HS_REPORT_SHOW_H

#include "hs_core.h"
#include "hs_heap.h"

struct hs_syms;

/* What the report knows besides the picture itself. */
struct hs_report_show {
	struct hs_target *t;          /* borrowed */
	const struct hs_show *s;      /* borrowed */
	const struct hs_glibc_heap *h; /* borrowed, may be NULL */
	int heap_err;                 /* hs_glibc_open's error, 0 if none */
	const char *allocator;        /* the heap's allocator; NULL: glibc */
	struct hs_syms *syms;         /* borrowed, may be NULL: no symbols */
};

/*
 * Opens a symbol resolver for t, or returns NULL when there is none (the
 * resolver is missing from this build or failed): the report then names
 * mappings and offsets instead of symbols.  Close with
 * hs_report_show_syms_close() (NULL is fine).
 */
struct hs_syms *hs_report_show_syms_open(struct hs_target *t);
void hs_report_show_syms_close(struct hs_syms *s);

/* Text form: the mapping, the chunk, the annotated dump, the references
 * (memory, then one "thread TID register REG = VALUE (+OFF)" line per
 * register hit). */
void hs_report_show_text(FILE *out, const struct hs_report_show *r);
/* JSON form: members "address", "mapping", "heap", "chunk", "dump", and
 * "refs" (only when the scan ran) of the current object.  refs.refs holds
 * "kind": "memory" entries, then "kind": "register" ones (tid, register,
 * value, offset from the user pointer); refs.registers counts threads. */
void hs_report_show_json(struct hs_json *j, const struct hs_report_show *r);

#endif
