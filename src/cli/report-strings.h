/*
 * The "top strings" report (src/ only): text and JSON forms of an
 * hs_str_result, and the one-call section the default report uses.
 */
#ifndef HS_REPORT_STRINGS_H
#define HS_REPORT_STRINGS_H

#include "hs_core.h"
#include "hs_heap.h"
#include "report-heap.h"

/*
 * Chunk space of t for string locations, from h (an open glibc heap of
 * t), or if h is NULL from a glibc heap opened and closed again, into w
 * (empty): hs_str_where_from_glibc (free lists, no walk), or with
 * HEAPSCAN_WHERE=walk in the environment hs_str_where_from_glibc_walk.  Returns 0, or an error with w empty
 * and a one-line reason in why (reset first; the caller releases it).
 */
int hs_report_strings_where(struct hs_target *t, struct hs_glibc_heap *h,
			    struct hs_str_where *w, struct hs_buf *why) HS_MUST_CHECK;
/*
 * The same for any allocator: ra is t's allocator as the caller found it
 * (hs_report_alloc_collect), or NULL to find it here.  A jemalloc heap
 * gives its regions (hs_str_where_from_blocks); glibc, or an allocator not
 * recognised, the glibc heap as above; another allocator an error naming
 * it.
 */
int hs_report_strings_where_any(struct hs_target *t, const struct hs_report_alloc *ra,
				struct hs_glibc_heap *h, struct hs_str_where *w,
				struct hs_buf *why) HS_MUST_CHECK;

/*
 * Counts strings in t with the defaults (ascii, min-len 6, heap + arena +
 * anon, 256 MiB budget, 2 jobs) keeping the top `top`, with each string's
 * location when the glibc heap is found: h is t's glibc heap if the
 * caller opened it already (the default report), NULL to open one.  Call
 * while the target is stopped; it does not suspend it, and resumes it
 * only with `release`: as soon as everything is read, before the tables
 * are joined and ranked (the caller reads nothing more).  res as for
 * hs_strings_scan().  Returns 0 or a negative error.
 */
int hs_report_strings_collect_heap(struct hs_target *t, const struct hs_report_alloc *ra,
				   struct hs_glibc_heap *h, unsigned top, bool release,
				   struct hs_str_result *res) HS_MUST_CHECK;

/* The "top strings" table and its summary line(s).  t gives the stop time
 * (may be NULL: not shown). */
void hs_report_strings_text(FILE *out, const struct hs_str_result *res,
			    const struct hs_target *t);
/* JSON members "summary" (object) and "strings" (array) of the current
 * object. */
void hs_report_strings_json(struct hs_json *j, const struct hs_str_result *res,
			    const struct hs_target *t);

#endif
