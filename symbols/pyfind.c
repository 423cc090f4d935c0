/*
 * The CPython interpreter's addresses from .dynsym; see hs_pyfind.h and
 * doc/python.md ("Finding the interpreter").
 */
#include "hs_pyfind.h"
#include "hs_syms.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *base_name(const char *p)
{
	const char *b = strrchr(p, '/');

	return b ? b + 1 : p;
}

static bool python_name(const char *path)
{
	const char *b = base_name(path);

	return !strncmp(b, "python", 6) || !strncmp(b, "libpython", 9);
}

/* "python3.11", "libpython3.9.so.1.0", "libpython3.7m.so" -> 3, minor. */
static bool version_from_name(const char *path, unsigned *major, unsigned *minor)
{
	const char *b = strstr(base_name(path), "python");
	unsigned ma, mi;
	int n = 0;

	if (!b || sscanf(b + 6, "%u.%u%n", &ma, &mi, &n) != 2 || n == 0)
		return false;
	*major = ma;
	*minor = mi;
	return true;
}

void hs_pyfind_release(struct hs_pyfind *o)
{
	free(o->module);
	memset(o, 0, sizeof(*o));
}

int hs_pyfind(struct hs_target *t, struct hs_pyfind *o)
{
	struct hs_syms *s = NULL;
	const char *module = NULL;
	unsigned char vb[16];
	hs_addr_t a;
	int ret;

	memset(o, 0, sizeof(*o));
	ret = hs_syms_open(t, HS_SYMS_NO_DEBUGINFO, &s);
	if (ret < 0)
		return ret;
	/* The main executable first (Debian links the interpreter into it),
	 * then libpython. */
	for (size_t pass = 0; pass < 2 && !module; pass++)
		for (size_t i = 0; i < t->maps.n && !module; i++) {
			const struct hs_map *m = &t->maps.v[i];
			bool exe = t->info.exe && t->info.exe[0] &&
				   !strcmp(m->path, t->info.exe);

			if (m->path[0] != '/' || m->offset != 0 ||
			    (pass == 0 ? !exe : (exe || !python_name(m->path))))
				continue;
			if (hs_syms_by_name(s, m->path, "PyType_Type", &o->type_type, NULL) == 0)
				module = m->path;
		}
	/* A core without the executable's path: the first mapping of all. */
	if (!module && t->maps.n && t->maps.v[0].path[0] == '/' &&
	    hs_syms_by_name(s, t->maps.v[0].path, "PyType_Type", &o->type_type, NULL) == 0)
		module = t->maps.v[0].path;
	/* Every CPython exports PyType_Type; _PyRuntime exists from 3.7. */
	if (module && hs_syms_by_name(s, module, "_PyRuntime", &o->runtime, NULL) < 0)
		o->runtime = 0;
	if (!module) {
		o->runtime = o->type_type = 0;
		hs_syms_close(s);
		/* Named like an interpreter, yet nothing exported: stripped. */
		for (size_t i = 0; i < t->maps.n; i++)
			if (t->maps.v[i].path[0] == '/' && python_name(t->maps.v[i].path) &&
			    (t->maps.v[i].perms & HS_PERM_X)) {
				o->module = hs_xstrdup(t->maps.v[i].path);
				return -HS_E_UNSUPPORTED;
			}
		return -HS_E_NOT_FOUND;
	}
	if (hs_syms_by_name(s, module, "Py_Version", &a, NULL) == 0 &&
	    hs_syms_read_file(s, a, vb, 4) == 0) {
		uint32_t v;

		memcpy(&v, vb, 4);
		o->version_hex = v;
		o->version_how = "Py_Version";
	} else if (o->runtime && hs_target_read_full(t, o->runtime, vb, 16) == 0 &&
		   !memcmp(vb, "xdebugpy", 8)) {
		uint64_t v;

		memcpy(&v, vb + 8, 8);
		o->version_hex = (unsigned)v;
		o->version_how = "_Py_DebugOffsets";
	}
	if (o->version_hex >> 24 == 3) {
		o->major = 3;
		o->minor = (o->version_hex >> 16) & 0xff;
	} else {
		o->version_hex = 0;
		if (version_from_name(module, &o->major, &o->minor))
			o->version_how = "file name";
	}
	o->module = hs_xstrdup(module);
	hs_syms_close(s);
	return 0;
}
