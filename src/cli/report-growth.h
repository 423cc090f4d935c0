/*
 * The growth report (src/ only): text and JSON forms of an hs_diff, for
 * 'heapscan diff' and each sample of 'heapscan watch'.
 */
#ifndef HS_REPORT_GROWTH_H
#define HS_REPORT_GROWTH_H

#include "hs_core.h"
#include "hs_heap.h"

enum hs_report_growth_flags {
	HS_REPORT_GROWTH_RATE = 1 << 0,   /* a per-hour rate column/member */
	HS_REPORT_GROWTH_NO_SHRINK = 1 << 1,
};

/* What an item is, for humans: "heap", "[heap] 0x..-0x..", "main arena
 * 0x.. size 0x60", "\"text\"" (strings quoted and cut at 60 chars). */
void hs_report_growth_name(struct hs_buf *sb, const struct hs_growth_item *it);

/*
 * Text: warnings, then per kind (region classes, regions, chunk sizes,
 * strings) the top `top` growers by bytes (0: all), the correlated
 * groups, then shrinkage likewise.
 */
void hs_report_growth_text(FILE *out, const struct hs_diff *d, unsigned top,
			   unsigned flags);

/* JSON members "compared_by", "elapsed_s", "tolerance", "warnings",
 * "growth", "shrinkage", "groups" of the current object; top as above,
 * per kind. */
void hs_report_growth_json(struct hs_json *j, const struct hs_diff *d, unsigned top,
			   unsigned flags);

/* A profile's description as the JSON object member key. */
void hs_report_profile_json(struct hs_json *j, const char *key,
			    const struct hs_profile *p);
/* One line: "SOURCE (pid N, exe E) at TIME" */
void hs_report_profile_text(FILE *out, const char *label, const struct hs_profile *p);

/*
 * Loading profiles for the CLI (these print their one-line error):
 *   - hs_growth_load: path is a profile file, or any core file (kernel,
 *     gcore, heapscan dump), which is opened with exe (may be NULL) and
 *     profiled with po (may be NULL);
 *   - hs_growth_profile_target: suspends t (unless t was opened with
 *     HS_TARGET_NO_STOP; suspend still refreshes maps), builds p, resumes;
 *     p->stop_ns is this sample's stop time only.
 * p is initialised here (it must not hold a profile); release it also
 * after an error.  Return 0 or an exit
 * code (HS_EXIT_FATAL).
 */
int hs_growth_load(const char *path, const char *exe, const struct hs_profile_opts *po,
		   struct hs_profile *p) HS_MUST_CHECK;
int hs_growth_profile_target(struct hs_target *t, const struct hs_profile_opts *po,
			     struct hs_profile *p) HS_MUST_CHECK;
/* What hs_growth_profile_target does while t is held, for the command
 * runner (which holds, resumes and tells): builds p (it must not hold a
 * profile: its strings are replaced), prints nothing.  0 or a negative
 * code. */
int hs_growth_profile_collect(struct hs_target *t, const struct hs_profile_opts *po,
			      struct hs_profile *p) HS_MUST_CHECK;

#endif
