/* The type census table; see hs_census.h. */
#include "hs_census.h"

#include <stdlib.h>
#include <string.h>

const char *hs_census_kind_name(enum hs_census_kind k)
{
	static const char *const names[] = {
#define HS_X_(n, s) s,
		HS_CENSUS_KINDS(HS_X_)
#undef HS_X_
	};

	return (unsigned)k < HS_CENSUS_KIND_N ? names[k] : "?";
}

void hs_census_release(struct hs_census *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->rows[i].type);
	free(c->rows);
	memset(c, 0, sizeof(*c));
}

struct hs_census_row *hs_census_add(struct hs_census *c, enum hs_census_kind kind,
				    const char *type, uint64_t count,
				    uint64_t bytes)
{
	struct hs_census_row *r;

	HS_ALLOC_GROW(c->rows, c->n + 1, c->alloc);
	r = &c->rows[c->n++];
	memset(r, 0, sizeof(*r));
	r->kind = kind;
	r->type = hs_xstrdup(type ? type : "?");
	r->count = count;
	r->bytes = bytes;
	return r;
}

static int row_cmp(const void *a, const void *b)
{
	const struct hs_census_row *x = a, *y = b;

	if (x->bytes != y->bytes)
		return x->bytes > y->bytes ? -1 : 1;
	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	return strcmp(x->type, y->type);
}

void hs_census_sort(struct hs_census *c)
{
	if (c->n > 1)
		qsort(c->rows, c->n, sizeof(*c->rows), row_cmp);
}

void hs_census_totals(const struct hs_census *c, enum hs_census_kind kind,
		      struct hs_census_row *out)
{
	memset(out, 0, sizeof(*out));
	out->kind = kind;
	for (size_t i = 0; i < c->n; i++) {
		const struct hs_census_row *r = &c->rows[i];

		if (kind != HS_CENSUS_KIND_N && r->kind != kind)
			continue;
		out->count += r->count;
		out->bytes += r->bytes;
		out->free_count += r->free_count;
		out->free_bytes += r->free_bytes;
	}
}
