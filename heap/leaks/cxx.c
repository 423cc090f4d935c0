/*
 * C++ objects: a chunk whose first word points into a vtable (_ZTV...)
 * of a loaded module holds an object of that class (doc/leaks.md).  The
 * vtable ranges come in as data from a layer that reads symbols.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

int hs_vtables_find(const struct hs_vtables *vt, hs_addr_t a)
{
	size_t lo = 0, hi;

	if (!vt || !vt->n || (a & 7))
		return -1;
	hi = vt->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (vt->v[mid].end <= a)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* The address point: past offset-to-top and the typeinfo pointer
	 * (more words before it only with virtual bases, still inside). */
	if (lo < vt->n && a >= vt->v[lo].start + 16 && a < vt->v[lo].end)
		return (int)lo;
	return -1;
}

struct census {
	const struct hs_vtables *vt;
	uint64_t *count, *bytes;
	hs_addr_t *sample;
};

static bool need_all(const struct lk *L, uint64_t ref)
{
	(void)L;
	(void)ref;
	return true;
}

static void census_cb(void *ud, uint64_t ref, hs_addr_t addr, uint64_t size,
		      bool have, uint64_t word)
{
	struct census *c = ud;
	int k;

	(void)ref;
	if (!have || (k = hs_vtables_find(c->vt, word)) < 0)
		return;
	if (!c->count[k]++)
		c->sample[k] = addr;
	c->bytes[k] += size;
}

static int cmp_type(const void *x, const void *y)
{
	const struct hs_cxx_type *a = x, *b = y;

	if (a->bytes != b->bytes)
		return a->bytes < b->bytes ? 1 : -1;
	if (a->count != b->count)
		return a->count < b->count ? 1 : -1;
	return strcmp(a->name ? a->name : "", b->name ? b->name : "");
}

int hs_cxx_census(struct hs_glibc_heap *h, const struct hs_vtables *vt,
		  const struct hs_leaks_opts *opts, struct hs_cxx_type **out,
		  size_t *n)
{
	struct lk L;
	struct census c = { vt, NULL, NULL, NULL };
	struct hs_cxx_type *v = NULL;
	size_t nv = 0;
	int ret;

	*out = NULL;
	*n = 0;
	if (!vt || !vt->n)
		return 0;
	if (!h->layout || !h->narenas)
		return -HS_E_UNSUPPORTED;
	memset(&L, 0, sizeof(L));
	L.h = h;
	L.vt = vt;
	ret = lk_build(&L, opts && opts->max_mem ? opts->max_mem : 256ull << 20, false);
	if (ret)
		goto out;
	c.count = hs_xcalloc(vt->n, sizeof(*c.count));
	c.bytes = hs_xcalloc(vt->n, sizeof(*c.bytes));
	c.sample = hs_xcalloc(vt->n, sizeof(*c.sample));
	ret = lk_for_each_inuse(&L, need_all, census_cb, &c);
	if (ret)
		goto out;
	for (size_t k = 0; k < vt->n; k++)
		if (c.count[k])
			nv++;
	v = hs_xcalloc(nv ? nv : 1, sizeof(*v));
	nv = 0;
	for (size_t k = 0; k < vt->n; k++)
		if (c.count[k]) {
			v[nv].type = (int)k;
			v[nv].name = vt->v[k].name;
			v[nv].count = c.count[k];
			v[nv].bytes = c.bytes[k];
			v[nv].sample = c.sample[k];
			nv++;
		}
	qsort(v, nv, sizeof(*v), cmp_type);
	*out = v;
	*n = nv;
out:
	free(c.count);
	free(c.bytes);
	free(c.sample);
	lk_free(&L);
	return ret;
}
