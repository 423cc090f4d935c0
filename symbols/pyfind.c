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

/* "python3.11", "libpython3.9.so.1.0", "libpython3.7m.so" -> 3, minor;
 * *ft: "python3.13t" (a free-threaded build, another object layout). */
static bool version_from_name(const char *path, unsigned *major, unsigned *minor,
			      bool *ft)
{
	const char *b = strstr(base_name(path), "python");
	unsigned ma, mi;
	int n = 0;

	if (!b || sscanf(b + 6, "%u.%u%n", &ma, &mi, &n) != 2 || n == 0)
		return false;
	*major = ma;
	*minor = mi;
	*ft = b[6 + n] == 't';
	return true;
}

void hs_pyfind_release(struct hs_pyfind *o)
{
	free(o->module);
	memset(o, 0, sizeof(*o));
}

/*
 * PY_VERSION as compiled into the interpreter: a string "3.N.M" (maybe
 * with a suffix such as "rc1" or "+") in .rodata, the text Py_GetVersion()
 * formats and sys.version starts with.  It stands alone, or (the linker
 * merges a string into another that ends with it) ends a longer one such
 * as the build directory ".../Python-3.8.18": standalone ones first.
 * The first such string; false if none.
 */
static bool version_from_rodata(struct hs_syms *s, hs_addr_t in_module,
				unsigned *minor, unsigned *micro, bool *final)
{
	const void *data;
	const char *p;
	size_t len;

	if (hs_syms_file_section(s, in_module, ".rodata", &data, &len) < 0)
		return false;
	p = data;
	for (int pass = 0; pass < 2; pass++)
	for (size_t i = 1; i + 6 < len; i++) {
		unsigned mi, pa;
		int n = 0;
		size_t k;

		if (p[i] != '3' || p[i + 1] != '.' ||
		    (pass == 0 ? p[i - 1] != '\0' : !strchr("-/ ", p[i - 1])))
			continue;
		/* NUL-terminated within 16 bytes, digits and dots, a suffix */
		for (k = i; k < len && k - i < 16 && p[k]; k++)
			;
		if (k >= len || p[k] || k - i > 12)
			continue;
		if (sscanf(p + i, "3.%u.%u%n", &mi, &pa, &n) != 2 || mi > 99 || pa > 99)
			continue;
		if (p[i + n] && !strchr("abrc+", p[i + n]))
			continue;
		*minor = mi;
		*micro = pa;
		*final = !p[i + n];
		return true;
	}
	return false;
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
		unsigned ma, mi;

		o->major = 3;
		o->minor = (o->version_hex >> 16) & 0xff;
		(void)version_from_name(module, &ma, &mi, &o->free_threaded);
	} else {
		unsigned ma, mi;

		o->version_hex = 0;
		if (version_from_name(module, &ma, &mi, &o->free_threaded)) {
			o->major = ma;
			o->minor = mi;
			o->version_how = "file name";
		}
		unsigned mi2, micro;
		bool final;

		if (version_from_rodata(s, o->type_type, &mi2, &micro, &final) &&
		    (!o->version_how || mi2 == o->minor)) {
			o->major = 3;
			o->minor = mi2;
			o->version_how = "version string";
			/* PY_VERSION_HEX of a final release (the string's
			 * suffix, "rc1", is not parsed: major.minor then) */
			if (final)
				o->version_hex = 0x03000000u | mi2 << 16 | micro << 8 | 0xf0;
		}
	}
	o->module = hs_xstrdup(module);
	hs_syms_close(s);
	return 0;
}
