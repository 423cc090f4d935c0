/*
 * Report sections shared by the CLI commands (src/ only).  Each section has
 * a text form (FILE *) and a JSON form (a member of the caller's object).
 */
#ifndef HS_REPORT_H
#define HS_REPORT_H

#include "hs_core.h"

/* Totals of the smaps fields over a set of mappings. */
struct hs_region_totals {
	size_t count;
	uint64_t smaps[HS_SMAPS_N];
};

/* Sums over all mappings and per class. */
void hs_region_totals(const struct hs_target *t, struct hs_region_totals *all,
		      struct hs_region_totals per_class[HS_CLASS_N]);

/* Header: source, exe, cmdline, threads, /proc status sizes, smaps totals,
 * stop time. */
void hs_report_header_text(FILE *out, const struct hs_target *t);
/* JSON members "target", "stop_ms", "partial". */
void hs_report_header_json(struct hs_json *j, const struct hs_target *t);

/*
 * How a live target's pages were read (doc/reading-policy.md): the policy
 * that kept untouched pages untouched, bytes swapped in, bytes left in swap
 * (--no-swapin).  Text: one "  pages:" line, nothing for other targets.
 * JSON: member "pages" (null for other targets).
 */
/* A walker's problems: "problems: N (...)" and the first min(n, cap,
 * show) of v[cap], "..." when some are not shown; nothing when n is 0. */
void hs_report_problems_text(FILE *out, const struct hs_problem *v, size_t cap,
			     size_t n, size_t show);
/* "problems_total": n and "problems": [{"addr", "message"}] (the kept ones). */
void hs_report_problems_json(struct hs_json *j, const struct hs_problem *v, size_t cap,
			     size_t n);

void hs_report_pages_text(FILE *out, const struct hs_target *t);
void hs_report_pages_json(struct hs_json *j, const struct hs_target *t);

/* Class table (sorted by Rss), the top_regions largest regions, and the
 * modules (file-backed code/rodata/data per path). */
void hs_report_regions_text(FILE *out, const struct hs_target *t,
			    unsigned top_regions);
/* JSON members "totals", "classes", "regions" (all of them), "modules". */
void hs_report_regions_json(struct hs_json *j, const struct hs_target *t);

/* Writes one mapping's smaps fields as a JSON object "smaps". */
void hs_report_smaps_json(struct hs_json *j, const uint64_t smaps[HS_SMAPS_N]);

#endif
