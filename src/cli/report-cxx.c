/* C++ vtables as data for heap/; see report-cxx.h and doc/leaks.md. */
#include "report-cxx.h"
#include "hs_syms.h"

#include <stdlib.h>
#include <string.h>

static int vt_cb(void *ud, const char *raw, hs_addr_t addr, uint64_t size)
{
	struct hs_cxx_vtables *vs = ud;
	const char *name;

	/* Construction vtables (_ZTC) and VTTs (_ZTT) never head an object;
	 * a vtable without a size cannot bound its address points. */
	if (!size || size > (1u << 20) || (addr & 7))
		return 0;
	name = hs_syms_demangle(vs->syms, raw);
	if (!strncmp(name, "vtable for ", 11))
		name += 11;
	HS_ALLOC_GROW(vs->v, vs->n + 1, vs->alloc);
	vs->v[vs->n].start = addr;
	vs->v[vs->n].end = addr + size;
	vs->v[vs->n].name = name;
	vs->n++;
	return 0;
}

static int cmp_vt(const void *x, const void *y)
{
	const struct hs_vtable *a = x, *b = y;

	if (a->start != b->start)
		return a->start < b->start ? -1 : 1;
	return a->end < b->end ? 1 : a->end > b->end ? -1 : 0;
}

int hs_cxx_vtables_load(struct hs_target *t, struct hs_cxx_vtables *out)
{
	size_t k = 0;
	int ret;

	memset(out, 0, sizeof(*out));
	ret = hs_syms_open(t, HS_SYMS_NO_DEBUGINFO, &out->syms);
	if (ret)
		return ret;
	ret = hs_syms_for_each(out->syms, "_ZTV", vt_cb, out);
	if (ret) {
		hs_cxx_vtables_release(out);
		return ret;
	}
	/* Sorted, one entry per range: the same vtable can come from two
	 * tables or two names; an overlap keeps the first (largest). */
	if (out->n)
		qsort(out->v, out->n, sizeof(*out->v), cmp_vt);
	for (size_t i = 0; i < out->n; i++) {
		if (k && out->v[i].start < out->v[k - 1].end)
			continue;
		out->v[k++] = out->v[i];
	}
	out->n = k;
	out->vt.v = out->v;
	out->vt.n = out->n;
	return 0;
}

void hs_cxx_vtables_release(struct hs_cxx_vtables *vs)
{
	free(vs->v);
	hs_syms_close(vs->syms);
	memset(vs, 0, sizeof(*vs));
}
