/* The Python census report; see report-python.h. */
#include "report-python.h"
#include "report.h"
#include "hs_pyfind.h"
#include "hs_syms.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static int read_file_cb(void *ud, hs_addr_t addr, void *buf, size_t len)
{
	return hs_syms_read_file(ud, addr, buf, len);
}

/* hs_pyfind + hs_py_open: the interpreter, without the census. */
static int py_open(struct hs_target *t, unsigned jobs, struct hs_report_py *out)
{
	struct hs_pyfind f;
	struct hs_py_opts o;
	int ret;

	memset(out, 0, sizeof(*out));
	ret = hs_pyfind(t, &f);
	out->module = f.module;
	if (ret < 0) {
		out->is_python = ret == -HS_E_UNSUPPORTED;
		out->err = ret;
		return 0;
	}
	out->is_python = true;
	out->version_how = f.version_how;
	if (f.free_threaded) {
		out->free_threaded = true;
		out->err = -HS_E_UNSUPPORTED;
		return 0;
	}
	memset(&o, 0, sizeof(o));
	o.runtime = f.runtime;
	o.type_type = f.type_type;
	o.major = f.major;
	o.minor = f.minor;
	o.version_hex = f.version_hex;
	o.version_how = f.version_how;
	o.module = f.module;
	o.jobs = jobs;
	if (hs_syms_open(t, HS_SYMS_NO_DEBUGINFO, &out->syms) == 0) {
		o.read_file = read_file_cb;
		o.read_file_ud = out->syms;
	}
	ret = hs_py_open(t, &o, &out->py);
	if (ret == -ESRCH || ret == -HS_E_INTERRUPTED)
		return ret;
	out->err = ret;
	return 0;
}

int hs_report_py_where(struct hs_target *t, struct hs_glibc_heap *h,
		       struct hs_str_where *w)
{
	struct hs_report_py r;
	struct hs_str_where_iv *v = NULL;
	size_t n = 0;
	bool capped = false;
	int ret = py_open(t, 1, &r);

	if (ret == 0 && r.py && !r.err) {
		ret = hs_py_str_places(r.py, h, &v, &n, &capped);
		if (ret == 0 && n)
			hs_str_where_overlay(w, v, n);
		if (capped)
			hs_log(HS_LOG_DEBUG, "strings: too many Python str chunks; "
			       "some counted as C chunks");
	}
	free(v);
	hs_report_py_release(&r);
	return ret == -ESRCH || ret == -HS_E_INTERRUPTED ? ret : 0;
}

int hs_report_py_collect(struct hs_target *t, struct hs_glibc_heap *h,
			 struct hs_report_py *out)
{
	return hs_report_py_collect_jobs(t, h, 0, out);
}

int hs_report_py_collect_jobs(struct hs_target *t, struct hs_glibc_heap *h,
			      unsigned jobs, struct hs_report_py *out)
{
	int ret = py_open(t, jobs, out);

	if (ret < 0 || !out->py || out->err)
		return ret;
	ret = hs_py_census(out->py, h);
	if (ret == -ESRCH || ret == -HS_E_INTERRUPTED)
		return ret;
	out->err = ret;
	hs_py_census_rows(out->py, &out->census);
	hs_census_sort(&out->census);
	return 0;
}

void hs_report_py_release(struct hs_report_py *r)
{
	hs_py_close(r->py);
	hs_syms_close(r->syms);
	hs_census_release(&r->census);
	free(r->module);
	memset(r, 0, sizeof(*r));
}

void hs_report_py_classify(struct hs_target *t, const struct hs_report_py *r)
{
	const struct hs_py *py = r->py;
	size_t k = 0;

	if (!py || !py->narenas)
		return;
	/* Both sorted by address: one pass. */
	for (size_t i = 0; i < t->maps.n; i++) {
		struct hs_map *m = &t->maps.v[i];
		uint64_t cover = 0;

		while (k < py->narenas && py->arenas[k].addr + py->arenas[k].size <= m->start)
			k++;
		if (m->cls != HS_CLASS_ANON)
			continue;
		for (size_t j = k; j < py->narenas && py->arenas[j].addr < m->end; j++) {
			hs_addr_t lo = py->arenas[j].addr > m->start ? py->arenas[j].addr : m->start;
			hs_addr_t hi = py->arenas[j].addr + py->arenas[j].size;

			if (hi > m->end)
				hi = m->end;
			if (hi > lo)
				cover += hi - lo;
		}
		if (cover && cover * 2 >= m->end - m->start)
			m->cls = HS_CLASS_PYTHON;
	}
}

void hs_report_py_error(struct hs_buf *sb, const struct hs_report_py *r)
{
	if (!r->is_python)
		hs_buf_adds(sb, "not a Python process (no module exports PyType_Type)");
	else if (r->free_threaded)
		hs_buf_addf(sb, "'%s' is a free-threaded CPython build: its objects have "
			    "another layout, not supported by the census", r->module);
	else if (r->err == -HS_E_UNSUPPORTED && !r->py)
		hs_buf_addf(sb, "'%s' looks like a Python interpreter but exports no "
			    "PyType_Type (stripped .dynsym): no census",
			    r->module ? r->module : "?");
	else if (r->err == -HS_E_UNSUPPORTED && r->py && r->py->version[0])
		hs_buf_addf(sb, "python %s is not supported by the census (3.8-3.13 are)",
			    r->py->version);
	else if (r->err == -HS_E_UNSUPPORTED)
		hs_buf_addf(sb, "the Python version of '%s' is unknown (no Py_Version, "
			    "no version in its file name): no census",
			    r->module ? r->module : "?");
	else if (r->err == -HS_E_CORRUPT)
		hs_buf_adds(sb, "PyType_Type does not look like a type object: no census");
	else
		hs_buf_addf(sb, "python census failed: %s", hs_strerror(r->err));
}

static const char *fb(char *buf, uint64_t n)
{
	return hs_fmt_bytes(buf, 16, n);
}

void hs_report_py_status_text(FILE *out, const struct hs_report_py *r)
{
	const struct hs_py *py = r->py;
	char b1[16], b2[16];

	if (!r->is_python || r->err || !py) {
		struct hs_buf sb = HS_BUF_INIT;

		hs_report_py_error(&sb, r);
		fprintf(out, "python: %s\n", sb.buf);
		hs_buf_release(&sb);
		return;
	}
	fprintf(out, "python %s (%s, %s)\n", py->version,
		r->version_how ? r->version_how : "?", r->module);
	if (py->arenas_vec)
		fprintf(out, "  pymalloc: %zu arenas of %s%s, %" PRIu64 " used pools, "
			"%" PRIu64 " blocks in use (%s), %" PRIu64 " of them objects\n",
			py->narenas, fb(b1, py->arena_size),
			py->nvectors > 1 ? " (sub-interpreters' included)" : "",
			py->pymalloc_pools.count,
			py->pymalloc_blocks.count, fb(b2, py->pymalloc_blocks.bytes),
			py->pymalloc_objects.count);
	else
		fprintf(out, "  pymalloc: no arenas found (PYTHONMALLOC=malloc?): "
			"objects are counted in glibc chunks only\n");
	if (py->heap_types_found)
		fprintf(out, "  glibc chunks: %" PRIu64 " objects (%s)\n",
			py->glibc_objects.count, fb(b1, py->glibc_objects.bytes));
	else
		fprintf(out, "  glibc heap not walked: classes and objects over 512 "
			"bytes are not counted\n");
	fprintf(out, "  types: %zu static, %zu classes; walked in %.3f s\n",
		py->nstatic_types, py->nheap_types, (double)py->walk_ns / 1e9);
	if (py->freelist.count)
		fprintf(out, "  type freelists: %" PRIu64 " dead objects (%s), "
			"not counted as live\n", py->freelist.count,
			fb(b1, py->freelist.bytes));
	hs_report_problems_text(out, py->problems, HS_PY_MAX_PROBLEMS, py->nproblems, 5);
}

void hs_report_py_status_json(struct hs_json *j, const struct hs_report_py *r)
{
	const struct hs_py *py = r->py;

	hs_json_obj_begin(j, "python");
	hs_json_bool(j, "is_python", r->is_python);
	if (r->module)
		hs_json_str(j, "module", r->module);
	if (py && py->version[0])
		hs_json_str(j, "version", py->version);
	if (r->version_how)
		hs_json_str(j, "version_source", r->version_how);
	if (!r->is_python || r->err || !py) {
		struct hs_buf sb = HS_BUF_INIT;

		hs_report_py_error(&sb, r);
		hs_json_bool(j, "supported", r->err != -HS_E_UNSUPPORTED && r->is_python);
		hs_json_str(j, "error", sb.buf);
		hs_buf_release(&sb);
		hs_json_obj_end(j);
		return;
	}
	hs_json_bool(j, "supported", true);
	hs_json_addr(j, "runtime", py->opts.runtime);
	if (py->arenas_vec)
		hs_json_addr(j, "arena_vector", py->arenas_vec);
	else
		hs_json_null(j, "arena_vector");
	hs_json_u64(j, "arena_size", py->arena_size);
	hs_json_u64(j, "pool_size", py->pool_size);
	hs_json_u64(j, "arenas", py->narenas);
	hs_json_u64(j, "arena_vectors", py->nvectors);
	hs_json_u64(j, "used_pools", py->pymalloc_pools.count);
	hs_json_u64(j, "pymalloc_blocks", py->pymalloc_blocks.count);
	hs_json_u64(j, "pymalloc_block_bytes", py->pymalloc_blocks.bytes);
	hs_json_u64(j, "pymalloc_objects", py->pymalloc_objects.count);
	hs_json_bool(j, "glibc_walked", py->heap_types_found);
	hs_json_u64(j, "glibc_objects", py->glibc_objects.count);
	hs_json_u64(j, "glibc_object_bytes", py->glibc_objects.bytes);
	hs_json_u64(j, "objects", py->objects.count);
	hs_json_u64(j, "object_bytes", py->objects.bytes);
	hs_json_u64(j, "freelist_objects", py->freelist.count);
	hs_json_u64(j, "freelist_bytes", py->freelist.bytes);
	hs_json_u64(j, "static_types", py->nstatic_types);
	hs_json_u64(j, "classes", py->nheap_types);
	hs_json_double(j, "walk_seconds", (double)py->walk_ns / 1e9);
	hs_report_problems_json(j, py->problems, HS_PY_MAX_PROBLEMS, py->nproblems);
	hs_json_obj_end(j);
}

void hs_report_types_text(FILE *out, const struct hs_census *c, size_t top)
{
	struct hs_census_row tot;
	size_t n = top && top < c->n ? top : c->n;

	fprintf(out, "\n %5s %12s %14s  %-7s %s\n", "num", "#objects", "#bytes",
		"kind", "type");
	fprintf(out, "----------------------------------------------------------\n");
	for (size_t i = 0; i < n; i++) {
		const struct hs_census_row *r = &c->rows[i];

		fprintf(out, "%5zu: %12" PRIu64 " %14" PRIu64 "  %-7s %s", i + 1,
			r->count, r->bytes, hs_census_kind_name(r->kind), r->type);
		if (r->free_count)
			fprintf(out, "  (+%" PRIu64 " on a freelist)", r->free_count);
		fputc('\n', out);
	}
	if (n < c->n)
		fprintf(out, "  ... %zu more types (--top 0 lists all)\n", c->n - n);
	hs_census_totals(c, HS_CENSUS_KIND_N, &tot);
	fprintf(out, "Total  %12" PRIu64 " %14" PRIu64 "\n", tot.count, tot.bytes);
}

void hs_report_types_json(struct hs_json *j, const struct hs_census *c, size_t top)
{
	struct hs_census_row tot;
	size_t n = top && top < c->n ? top : c->n;

	hs_json_arr_begin(j, "types");
	for (size_t i = 0; i < n; i++) {
		const struct hs_census_row *r = &c->rows[i];

		hs_json_obj_begin(j, NULL);
		hs_json_str(j, "kind", hs_census_kind_name(r->kind));
		hs_json_str(j, "type", r->type);
		hs_json_u64(j, "count", r->count);
		hs_json_u64(j, "bytes", r->bytes);
		hs_json_u64(j, "freelist_count", r->free_count);
		hs_json_u64(j, "freelist_bytes", r->free_bytes);
		if (r->type_addr)
			hs_json_addr(j, "type_addr", r->type_addr);
		if (r->sample)
			hs_json_addr(j, "sample", r->sample);
		hs_json_obj_end(j);
	}
	hs_json_arr_end(j);
	hs_census_totals(c, HS_CENSUS_KIND_N, &tot);
	hs_json_obj_begin(j, "types_total");
	hs_json_u64(j, "types", c->n);
	hs_json_u64(j, "count", tot.count);
	hs_json_u64(j, "bytes", tot.bytes);
	hs_json_obj_end(j);
}

void hs_report_py_section_text(FILE *out, const struct hs_report_py *r,
			       const struct hs_glibc_heap *h, unsigned top)
{
	char b1[16];
	size_t n;

	if (!r->is_python)
		return;
	fprintf(out, "\nPython objects\n");
	if (r->err || !r->py) {
		struct hs_buf sb = HS_BUF_INIT;

		hs_report_py_error(&sb, r);
		fprintf(out, "  %s\n", sb.buf);
		hs_buf_release(&sb);
		return;
	}
	fprintf(out, "  Python objects: %" PRIu64 " objects, %s", r->py->objects.count,
		fb(b1, r->py->objects.bytes));
	n = r->census.n < top ? r->census.n : top;
	if (n > 3)
		n = 3;
	for (size_t i = 0; i < n; i++)
		fprintf(out, "%s%s %s", i ? ", " : " (top types: ", r->census.rows[i].type,
			fb(b1, r->census.rows[i].bytes));
	fprintf(out, "%s\n", n ? ")" : "");
	if (h && h->analyzed)
		fprintf(out, "  C heap (glibc): %s in use (Python objects over 512 bytes "
			"included)\n", fb(b1, h->totals[HS_CHUNK_INUSE].bytes + h->mmapped.bytes));
	fprintf(out, "  python %s; pymalloc %zu arenas (%s)", r->py->version,
		r->py->narenas, fb(b1, r->py->narenas * r->py->arena_size));
	fprintf(out, "; 'heapscan types' lists every type\n");
}

void hs_report_py_section_json(struct hs_json *j, const struct hs_report_py *r,
			       unsigned top)
{
	if (!r->is_python)
		return;
	hs_report_py_status_json(j, r);
	hs_report_types_json(j, &r->census, top);
}
