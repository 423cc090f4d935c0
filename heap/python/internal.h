/*
 * Private to heap/python: the CPython layouts (doc/python.md) and the
 * helpers the finder and the census share.
 */
#ifndef HS_PYTHON_INTERNAL_H
#define HS_PYTHON_INTERNAL_H

#include "hs_python.h"

#include <pthread.h>
#include <string.h>

/* PyObject / PyVarObject (default build, 3.8-3.13). */
#define PY_OB_REFCNT 0
#define PY_OB_TYPE 8
#define PY_OB_SIZE 16
/* PyTypeObject, the same offsets in 3.8-3.13. */
#define PY_TP_NAME 24
#define PY_TP_BASICSIZE 32
#define PY_TP_ITEMSIZE 40
#define PY_TP_FLAGS 168
#define PY_TP_DICT 264
#define PY_TP_READ 272          /* bytes of a type object read to check it */

/* tp_flags bits. */
#define PY_TPF_MANAGED_WEAKREF (1ull << 3)  /* 3.12+ */
#define PY_TPF_MANAGED_DICT (1ull << 4)     /* 3.11+ */
#define PY_TPF_HEAPTYPE (1ull << 9)
#define PY_TPF_READY (1ull << 12)
#define PY_TPF_HAVE_GC (1ull << 14)
#define PY_TPF_TYPE_SUBCLASS (1ull << 31)

#define PY_GC_HEAD 16
#define PY_PREHEADER 16
/* A refcount above this is not one (immortal 3.12+ counts are 2^32-1 and
 * below); 0 is a dead object on a freelist. */
#define PY_MAX_REFCNT (1ull << 40)

/* pymalloc (3.8+ on 64-bit: 16-byte size classes up to 512 bytes). */
#define PY_POOL_OVERHEAD 48
#define PY_PH_REF 0             /* u32 ref.count */
#define PY_PH_FREEBLOCK 8
#define PY_PH_ARENAINDEX 32     /* u32 */
#define PY_PH_SZIDX 36          /* u32 */
#define PY_PH_NEXTOFFSET 40     /* u32 */
#define PY_PH_MAXNEXTOFFSET 44  /* u32 */
#define PY_ALIGN 16
#define PY_NSIZES 32
#define PY_AO_SIZE 48           /* struct arena_object */
#define PY_AO_ADDRESS 0
#define PY_AO_POOL_ADDRESS 8
#define PY_AO_NFREEPOOLS 16     /* u32 */
#define PY_AO_NTOTALPOOLS 20    /* u32 */
#define PY_AO_NEXTARENA 32

/* PyASCIIObject: length +16, state +32 (kind bits 2-4, compact bit 5,
 * ascii bit 6); compact ASCII data follows the header. */
#define PY_STR_LENGTH 16
#define PY_STR_STATE 32

struct py_layout {
	unsigned minor;
	uint64_t arena_size, pool_size;
	uint64_t preheader_flags; /* tp_flags that add the 2-word pre-header */
	unsigned heaptype_size;   /* sizeof(PyHeapTypeObject) */
	unsigned ht_qualname;     /* offset of ht_qualname */
	unsigned str_data;        /* compact ASCII data offset */
	bool dict_log2;           /* 3.11+ dict keys header */
};

const struct py_layout *hs_py_layout_for(unsigned minor);

static inline uint64_t py_u64(const void *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

static inline uint32_t py_u32(const void *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

struct py_priv {
	const struct py_layout *lay;
	uint32_t *hash;          /* type index + 1, 0 empty */
	size_t hcap;             /* power of two */
	size_t types_alloc;
	hs_addr_t modkey;        /* the interned "__module__" str, once seen */
	pthread_mutex_t mu;      /* guards problems */
};

/* Index of the type at addr, or -1. */
static inline long py_type_lookup(const struct hs_py *py, hs_addr_t addr)
{
	const struct py_priv *pv = py->priv;
	size_t mask = pv->hcap - 1;
	size_t i = (size_t)((addr >> 3) * 0x9E3779B97F4A7C15ull >> 20) & mask;

	for (;;) {
		uint32_t v = pv->hash[i];

		if (!v)
			return -1;
		if (py->types[v - 1].addr == addr)
			return (long)v - 1;
		i = (i + 1) & mask;
	}
}

/* Checks the type object at addr and adds it (heap: a class); returns its
 * index, or -1 when it does not look like a type. */
long hs_py_type_add(struct hs_py *py, hs_addr_t addr, bool heap);

#endif
