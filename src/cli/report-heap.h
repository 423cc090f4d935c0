/*
 * The glibc heap report (src/ only): text and JSON forms of an analysed
 * hs_glibc_heap, and the one-call section the default report uses.
 */
#ifndef HS_REPORT_HEAP_H
#define HS_REPORT_HEAP_H

#include "hs_core.h"
#include "hs_heap.h"
#include "hs_alloc.h"

/*
 * The target's allocator, and its heap when heapscan walks it and it is
 * not glibc's (glibc's stays in struct hs_glibc_heap).
 */
struct hs_report_alloc {
	struct hs_alloc_info ai;
	struct hs_alloc_jemalloc jf;  /* what the symbols layer found */
	struct hs_jemalloc_heap *je;  /* owned; NULL unless walked */
	int je_err;                   /* 0 or why jemalloc's walk failed */
};

/*
 * Names t's allocator (hs_alloc_detect) and, for jemalloc, walks its heap.
 * Call while the target is stopped.  Returns 0, or -ESRCH /
 * -HS_E_INTERRUPTED; a failed walk is in ra->je_err.  Release with
 * hs_report_alloc_release().
 */
int hs_report_alloc_collect(struct hs_target *t, struct hs_report_alloc *ra) HS_MUST_CHECK;
void hs_report_alloc_release(struct hs_report_alloc *ra);
/* True when the glibc walker is the one to run: glibc, or nothing known
 * (a static binary without symbols may still hold a glibc heap). */
bool hs_report_alloc_glibc(const struct hs_report_alloc *ra);
/* The blocks of the heap ra or h holds (jemalloc first); false if none. */
bool hs_report_alloc_blocks(const struct hs_report_alloc *ra, struct hs_glibc_heap *h,
			    struct hs_blocks *b);

/*
 * Finds and walks t's glibc heap (hs_glibc_open + hs_glibc_analyze) with
 * opts (may be NULL).  main_arena comes from, in order: the caller
 * (opts->main_arena), libc's debug info (the `main_arena` symbol, how
 * "symbol"), disassembly of libc's exported malloc functions (candidates
 * the walker checks, how "disasm"), the scan of libc's data (how "scan").
 * Call while the target is stopped; it neither suspends nor resumes.
 * *out is set whenever there is something to report, even with an error
 * (an unsupported glibc says which version); the caller frees it with
 * hs_glibc_close().  Returns 0 or a negative error (-HS_E_UNSUPPORTED,
 * -HS_E_NOT_FOUND, -ESRCH, -HS_E_INTERRUPTED).
 */
int hs_report_heap_collect(struct hs_target *t, const struct hs_glibc_opts *opts,
			   struct hs_glibc_heap **out) HS_MUST_CHECK;

/* Where main_arena may come from: AUTO tries every way in the order
 * above; the others use that way only (no fallback), for tests and for
 * users who distrust one source. */
enum hs_arena_way {
	HS_ARENA_AUTO,
	HS_ARENA_SYMBOL,
	HS_ARENA_DISASM,
	HS_ARENA_SCAN,
};

/* "auto", "symbol", "disasm", "scan" -> the way; -1 if unknown. */
int hs_arena_way_parse(const char *s);

/*
 * Adds to go the main_arena candidates `way` allows (AUTO: libc's debug
 * symbol, then the disassembly of its malloc functions); SYMBOL and DISASM
 * also forbid the scan.  Nothing is added when go already names
 * main_arena or candidates.  Every command that opens the heap uses this,
 * so they all find the same main_arena the same way.
 */
void hs_report_heap_find_arena(struct hs_target *t, struct hs_glibc_opts *go,
			       enum hs_arena_way way);

/* hs_glibc_open (free lists, no walk) with main_arena found as above. */
int hs_report_heap_open(struct hs_target *t, const struct hs_glibc_opts *opts,
			enum hs_arena_way way,
			struct hs_glibc_heap **out) HS_MUST_CHECK;

/* hs_report_heap_collect with main_arena from `way` only (AUTO: all). */
int hs_report_heap_collect_way(struct hs_target *t, const struct hs_glibc_opts *opts,
			       enum hs_arena_way way,
			       struct hs_glibc_heap **out) HS_MUST_CHECK;

/* A one-line explanation of collect's error err for h (h may be NULL),
 * lowercase, no final period, e.g. "glibc 2.41 is not supported (2.12-2.40)". */
void hs_report_heap_error(struct hs_buf *sb, const struct hs_glibc_heap *h, int err);

enum hs_report_heap_flags {
	HS_REPORT_HEAP_DETAIL = 1 << 0, /* heaps, tcaches, all problems */
};

/*
 * Text form: per arena in-use and free chunks by kind, fragmentation,
 * mmapped chunks, the `top` largest in-use size classes by bytes, and
 * problems.  h may be NULL or unanalysed when err < 0: one note line.
 */
void hs_report_heap_text(FILE *out, const struct hs_glibc_heap *h, int err,
			 unsigned top, unsigned flags);
/*
 * The heap section for any allocator: ra (may be NULL: glibc) says which;
 * jemalloc's walked heap, an allocator heapscan does not walk (named, with
 * heap.error), or glibc's h / err as above.
 */
void hs_report_heap_text_any(FILE *out, const struct hs_report_alloc *ra,
			     const struct hs_glibc_heap *h, int err, unsigned top,
			     unsigned flags);
void hs_report_heap_json_any(struct hs_json *j, const struct hs_report_alloc *ra,
			     const struct hs_glibc_heap *h, int err, unsigned top,
			     unsigned flags);
/* JSON form: the member "heap" (an object) of the current object. */
void hs_report_heap_json(struct hs_json *j, const struct hs_glibc_heap *h, int err,
			 unsigned top, unsigned flags);

/*
 * The default report's section in one call: collect, print the text
 * section to out (j NULL) or the JSON member "heap" into j, release.
 * Does not resume the target: a caller that wants the target running
 * before formatting uses collect + print.  An unsupported glibc or a
 * missing main_arena is reported in the section, not as an error: the
 * rest of the report (regions, strings) stands on its own.
 * Returns 0, or a negative error for -ESRCH / -HS_E_INTERRUPTED.
 */
int hs_report_heap_section(struct hs_target *t, FILE *out, struct hs_json *j,
			   unsigned top);

#endif
