/*
 * hs_census: a histogram of live objects by type, as `jmap -histo` prints
 * it: one row per type with a count and the bytes its allocator gave.
 *
 * Rows come from several walkers: kind "python" (CPython objects,
 * hs_python.h) and kind "c++" (objects recognised by their vtable).  A
 * walker appends its rows with hs_census_add(); the caller sorts once and
 * prints.  Rows are never merged across kinds, and two types of one kind
 * that print the same name (a class defined twice) stay two rows, as two
 * class objects stay two lines in jmap.
 *
 * This layer reads no memory: it only holds the table.
 */
#ifndef HS_CENSUS_H
#define HS_CENSUS_H

#include "hs_core.h"

/* name, JSON/text spelling */
#define HS_CENSUS_KINDS(X)                                                  \
	X(PYTHON, "python")                                                     \
	X(CXX, "c++")

enum hs_census_kind {
#define HS_X_(n, s) HS_CENSUS_##n,
	HS_CENSUS_KINDS(HS_X_)
#undef HS_X_
	HS_CENSUS_KIND_N
};

const char *hs_census_kind_name(enum hs_census_kind k); /* "python" */

struct hs_census_row {
	enum hs_census_kind kind;
	char *type;              /* owned: "__main__.LeakyContext", "dict" */
	uint64_t count;          /* live objects */
	uint64_t bytes;          /* allocator block sizes, summed */
	/* Dead objects the runtime keeps for reuse (type freelists): not
	 * live, reported apart.  0 where the kind has no such notion. */
	uint64_t free_count, free_bytes;
	hs_addr_t type_addr;     /* the type object / vtable, 0 if none */
	hs_addr_t sample;        /* one object's address, 0 if none */
};

struct hs_census {
	struct hs_census_row *rows; /* owned */
	size_t n, alloc;
};

#define HS_CENSUS_INIT { NULL, 0, 0 }

void hs_census_release(struct hs_census *c);
/* Appends a row (type copied) and returns it for the optional fields. */
struct hs_census_row *hs_census_add(struct hs_census *c, enum hs_census_kind kind,
				    const char *type, uint64_t count,
				    uint64_t bytes);
/* Sorts rows by bytes, then count (descending), then kind and name. */
void hs_census_sort(struct hs_census *c);
/* Sums of count/bytes (and free_count/free_bytes) over rows of one kind,
 * or of every kind with kind == HS_CENSUS_KIND_N. */
void hs_census_totals(const struct hs_census *c, enum hs_census_kind kind,
		      struct hs_census_row *out);

#endif
