/*
 * The Python object census in the CLI (src/ only): finding the
 * interpreter (symbols/hs_pyfind.h), the census (heap/hs_python.h), and
 * its text and JSON forms for `heapscan types` and the default report.
 */
#ifndef HS_REPORT_PYTHON_H
#define HS_REPORT_PYTHON_H

#include "hs_core.h"
#include "hs_heap.h"
#include "hs_python.h"

struct hs_syms;

struct hs_report_py {
	bool is_python;          /* a module exports _PyRuntime (or looks like
				    an interpreter but is stripped) */
	int err;                 /* 0: census done; else why not (see _error) */
	char *module;            /* owned: the interpreter's file */
	const char *version_how;
	struct hs_py *py;        /* owned; NULL when not Python */
	struct hs_census census; /* python rows, sorted */
	struct hs_syms *syms;    /* owned: reads the modules' files */
	bool free_threaded;      /* a free-threaded build: not supported */
};

/*
 * Finds the interpreter and takes the census with the glibc heap h (may
 * be NULL: then classes and objects over 512 bytes are not counted).  The
 * target must be stopped.  A process that is not Python gives
 * is_python false and err -HS_E_NOT_FOUND; an unsupported version or a
 * stripped interpreter a non-zero err with is_python true.  Returns 0, or
 * -ESRCH / -HS_E_INTERRUPTED (the run must end).
 */
int hs_report_py_collect(struct hs_target *t, struct hs_glibc_heap *h,
			 struct hs_report_py *out) HS_MUST_CHECK;
/* The same with `jobs` threads reading the arenas (0: the default). */
int hs_report_py_collect_jobs(struct hs_target *t, struct hs_glibc_heap *h,
			      unsigned jobs, struct hs_report_py *out) HS_MUST_CHECK;
void hs_report_py_release(struct hs_report_py *r);

/*
 * Refines the classes of t's maps after a census: an anonymous rw mapping
 * (class ANON) at least half covered by pymalloc arenas becomes PYTHON.
 * (Arenas are anonymous mmaps of the arena size that the kernel merges
 * with their neighbours, so a mapping may hold arenas and other memory.)
 */
void hs_report_py_classify(struct hs_target *t, const struct hs_report_py *r);

/*
 * On a Python process, lays the memory of Python objects (pymalloc arenas,
 * glibc chunks of str and bytes objects of h, which may be NULL) over the
 * strings' locations w (finished) as "python".  Nothing for another
 * process, an unsupported version, or a failure (logged).  Returns 0,
 * -ESRCH or -HS_E_INTERRUPTED.
 */
int hs_report_py_where(struct hs_target *t, struct hs_glibc_heap *h,
		       struct hs_str_where *w) HS_MUST_CHECK;

/* One line saying why there is no census, lowercase, no final period. */
void hs_report_py_error(struct hs_buf *sb, const struct hs_report_py *r);

/* "python 3.11.2 (Py_Version, /usr/bin/python3.11): ..." lines. */
void hs_report_py_status_text(FILE *out, const struct hs_report_py *r);
/* The member "python" (an object) of the current JSON object. */
void hs_report_py_status_json(struct hs_json *j, const struct hs_report_py *r);

/* The histogram: rows (sorted), the first `top` of them (0: all), and a
 * total line over all rows. */
void hs_report_types_text(FILE *out, const struct hs_census *c, size_t top);
/* The member "types" (an array) and "types_total" of the current object. */
void hs_report_types_json(struct hs_json *j, const struct hs_census *c, size_t top);

/* The default report's section: "Python objects: N objects, X (top types
 * ...)" beside "C heap (glibc): Y in use".  Nothing when not Python. */
void hs_report_py_section_text(FILE *out, const struct hs_report_py *r,
			       const struct hs_glibc_heap *h, unsigned top);
void hs_report_py_section_json(struct hs_json *j, const struct hs_report_py *r,
			       unsigned top);

#endif
