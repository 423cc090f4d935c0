/*
 * hs_python: a census of a CPython interpreter's objects (3.8-3.13,
 * x86_64, the default GIL build), read from outside with no code run in
 * the target and no debug info.  doc/python.md gives the layouts.
 *
 * The caller (symbols/ finds them in .dynsym, see hs_pyfind.h) passes in
 * opts the addresses of _PyRuntime and PyType_Type and the version;
 * this layer then finds everything else by shape:
 *   - pymalloc's arena vector: a pointer in the interpreter's writable data
 *     (a static in 3.8-3.11, inside _PyRuntime's main interpreter in 3.12,
 *     in the static obmalloc state in 3.13) to a malloc'd array of
 *     arena_objects whose used entries describe arenas of the version's
 *     size (256 KiB before 3.10, 1 MiB from 3.10);
 *   - static type objects: words in the writable data of every module
 *     whose ob_type is `type` (or a metatype found the same way);
 *   - heap types (classes): glibc chunks of a PyHeapTypeObject's size
 *     whose ob_type is `type` or a metatype, to a fixed point.
 * hs_py_census() then counts, per type, the allocated blocks of every used
 * pool of every arena (objects up to 512 bytes) and the in-use glibc
 * chunks that hold larger objects: a block is an object of type T when
 * the word where ob_type lies (after the GC header and the 3.11+
 * pre-header that T's flags imply) is T, and ob_refcnt is plausible; with
 * refcount 0 it is a dead object kept on a type freelist, counted apart.
 *
 * Target memory is hostile: every vector, list and string is bounded, and
 * a pool or chunk that fails a check is counted as a problem, not walked.
 * heapscan's memory is bounded: one arena and one window of the glibc
 * heap at a time, and a table of types (capped at HS_PY_MAX_TYPES).
 *
 * This layer sees only hs_core.h (and the glibc walker): no ptrace, no
 * libelf.
 */
#ifndef HS_PYTHON_H
#define HS_PYTHON_H

#include "hs_core.h"
#include "hs_census.h"
#include "hs_glibc.h"
#include "hs_strings.h"

#define HS_PY_MAX_TYPES (1u << 18)

struct hs_py_opts {
	hs_addr_t runtime;       /* _PyRuntime; 0 before 3.7 */
	hs_addr_t type_type;     /* PyType_Type; 0: not a Python process */
	unsigned major, minor;   /* 3.minor; 0: unknown */
	unsigned version_hex;    /* PY_VERSION_HEX (Py_Version), 0 if unread */
	/* Where the version came from: "Py_Version", "file name" (static). */
	const char *version_how;
	/* The file that holds _PyRuntime (borrowed for the open call; copied). */
	const char *module;
	/*
	 * Optional (may be NULL): reads len bytes at addr from the file that
	 * backs a module's read-only mapping; 0 or a negative error.  Used
	 * when the target cannot give them (a gcore core omits the
	 * interpreter's .rodata, where static types' tp_name strings lie).
	 * ud is passed back; both must outlive the hs_py.
	 */
	int (*read_file)(void *ud, hs_addr_t addr, void *buf, size_t len);
	void *read_file_ud;
	unsigned jobs;           /* threads reading arenas, at most 4; 0: 2,
				    or 1 on one CPU */
};

struct hs_py_type {
	hs_addr_t addr;
	char *name;              /* owned, as Python prints the class */
	uint64_t flags;          /* tp_flags */
	int64_t basicsize, itemsize;
	unsigned obj_off;        /* bytes of GC header and pre-header before
				    the object in its block */
	bool heap;               /* a heap type (a class) */
	uint64_t count, bytes;   /* live objects */
	uint64_t free_count, free_bytes; /* refcount 0: on a freelist */
	hs_addr_t sample;
};

struct hs_py_arena {
	hs_addr_t addr;          /* arena_object.address */
	uint64_t size;           /* the version's arena size */
	hs_addr_t pool_address;  /* pools below it have been used */
	uint32_t index;          /* in the arena vector (pools' arenaindex) */
};

struct hs_py_count {
	uint64_t count, bytes;
};

#define HS_PY_MAX_PROBLEMS 16

struct hs_py {
	struct hs_target *t;     /* borrowed: must outlive the hs_py */
	struct hs_py_opts opts;  /* opts.module points to module below */
	char *module;            /* owned */
	unsigned minor;          /* 3.minor */
	char version[32];        /* "3.11.2", or "3.11" */
	uint64_t arena_size, pool_size;
	hs_addr_t arenas_vec;    /* the arena_object array */
	hs_addr_t arenas_ptr;    /* the word in the data that points to it */
	uint64_t maxarenas;      /* entries in the vector */
	size_t nvectors;         /* arena vectors walked: the main one, and
				    those of isolated sub-interpreters */
	struct hs_py_arena *arenas; /* owned, used arenas, sorted by address */
	size_t narenas;
	struct hs_py_type *types; /* owned */
	size_t ntypes;
	size_t nstatic_types, nheap_types;
	unsigned jobs;           /* threads reading the arenas (census) */
	uint64_t data_scanned;   /* bytes of module data read for types */
	/* Filled by hs_py_census(). */
	bool census_done;
	bool heap_types_found;   /* false: no glibc heap to find classes in */
	struct hs_py_count pymalloc_blocks;  /* allocated blocks, all */
	struct hs_py_count pymalloc_objects; /* of them recognised objects */
	struct hs_py_count pymalloc_pools;   /* used pools, bytes = pool size */
	struct hs_py_count glibc_objects;    /* objects in glibc chunks */
	struct hs_py_count objects;          /* all live objects */
	struct hs_py_count freelist;         /* refcount-0 objects */
	uint64_t walk_ns;
	struct hs_problem problems[HS_PY_MAX_PROBLEMS];
	size_t nproblems;
	void *priv;
};

/*
 * Checks the version, finds the arena vector and the static types.
 * Errors: -HS_E_NOT_FOUND when opts->type_type is 0 (not Python: no output
 * is due, *out stays NULL); -HS_E_UNSUPPORTED for a version outside
 * 3.8-3.13 or unknown (*out is set with version filled, so the caller can
 * say which); -HS_E_CORRUPT when PyType_Type does not look like a type;
 * -ESRCH, -HS_E_INTERRUPTED.  An arena vector not found is not an error
 * (arenas_vec 0: PYTHONMALLOC=malloc, or pymalloc not found; objects in
 * glibc chunks are still counted).  On success the caller frees *out with
 * hs_py_close().  t should be suspended.
 */
int hs_py_open(struct hs_target *t, const struct hs_py_opts *opts,
	       struct hs_py **out) HS_MUST_CHECK;
void hs_py_close(struct hs_py *py);

/*
 * The census: heap types from h's in-use chunks (h may be NULL: no glibc
 * heap, then only static types are known and large objects are not
 * counted), then every pymalloc block and every in-use glibc chunk.
 * Returns 0, -ESRCH, -HS_E_INTERRUPTED.
 */
int hs_py_census(struct hs_py *py, struct hs_glibc_heap *h) HS_MUST_CHECK;

/* Appends one HS_CENSUS_PYTHON row per type with live or freelisted
 * objects. */
void hs_py_census_rows(const struct hs_py *py, struct hs_census *c);

/*
 * Where Python objects' bytes are, for the strings' locations: every used
 * arena, and each in-use glibc chunk of h (may be NULL) that holds a str
 * or bytes object, as PYTHON intervals, sorted and disjoint, into *out
 * (owned by the caller, free()) and *n.  At most 2^20 chunks are kept
 * (*capped, may be NULL, says so).  Needs hs_py_open only, not the census.
 * Returns 0, -ESRCH, -HS_E_INTERRUPTED.
 */
int hs_py_str_places(struct hs_py *py, struct hs_glibc_heap *h,
		     struct hs_str_where_iv **out, size_t *n, bool *capped) HS_MUST_CHECK;

/* The used arena holding addr, or NULL. */
const struct hs_py_arena *hs_py_arena_find(const struct hs_py *py, hs_addr_t addr);

/* Records a problem (first HS_PY_MAX_PROBLEMS kept). */
void hs_py_problem(struct hs_py *py, hs_addr_t addr, const char *fmt, ...)
	HS_PRINTF(3, 4);

#endif
