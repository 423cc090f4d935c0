/*
 * The glibc walker over a mem target built from the input:
 *
 *   header (56 bytes, little-endian):
 *     u8  glibc minor (0: detect)
 *     u8  flags: 1 main_arena given (trusted), 2 main_arena as a candidate
 *                (checked), neither: the scan; 4 HS_GLIBC_NO_TLS,
 *                8 HS_GLIBC_NO_MMAPPED
 *     u16 unused
 *     u32 main_arena's offset in region 0
 *     4 x { u32 len } then 4 x { u64 addr }  (page-aligned by the harness)
 *   then the regions' bytes in order:
 *     0 libc's writable data (named like libc, holds main_arena)
 *     1 [heap]
 *     2 an anonymous mapping (a thread arena's heap, mmapped chunks)
 *     3 a thread's TLS block (fs_base is its end)
 *
 * fixtures/fuzz/glibc/ holds seeds cut from real processes by
 * fixtures/fuzz/make-seeds.py, so the walk starts from a real heap.
 */
#include "fuzz.h"
#include "hs_glibc.h"

#include <stdlib.h>
#include <string.h>

#define HDR 56
#define NREG 4

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

static int on_chunk(void *ud, const struct hs_glibc_chunk *c)
{
	uint64_t *n = ud;

	(void)c;
	return ++*n > 200000;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const paths[NREG] = {
		"/usr/lib/x86_64-linux-gnu/libc.so.6", "[heap]", "", ""
	};
	struct hs_glibc_opts o = { .max_free_chunks = 4096 };
	struct hs_glibc_heap *h = NULL;
	struct hs_target *t;
	hs_addr_t addr[NREG], arena = 0;
	size_t pos = HDR;
	uint64_t n = 0;

	hs_log_set(fuzz_quiet, NULL);
	if (size < HDR || hs_target_open_mem(&t) < 0)
		return 0;
	for (int i = 0; i < NREG; i++) {
		size_t len = get32(data + 8 + 4 * i);
		hs_addr_t a = get64(data + 24 + 8 * i) & ~(hs_addr_t)4095;
		bool clash = false;

		addr[i] = 0;
		if (len > size - pos)
			len = size - pos;
		if (!len || a + len < a)
			continue;
		for (size_t k = 0; k < t->maps.n; k++)
			if (a < t->maps.v[k].end && t->maps.v[k].start < a + len)
				clash = true;
		if (!clash) {
			hs_target_mem_add(t, a, data + pos, len, HS_PERM_R | HS_PERM_W,
					  paths[i]);
			addr[i] = a;
			if (i == 0)
				arena = a + get32(data + 4);
		}
		pos += len;
	}
	if (addr[3]) {
		t->threads = hs_xcalloc(1, sizeof(*t->threads));
		t->nthreads = 1;
		t->threads[0].tid = 1;
		t->threads[0].has_regs = true;
		for (size_t k = 0; k < t->maps.n; k++)
			if (t->maps.v[k].start == addr[3])
				t->threads[0].regs.r[HS_REG_FS_BASE] = t->maps.v[k].end;
	}
	hs_classify(t);
	o.version_minor = data[0];
	if ((data[1] & 1) && arena)
		o.main_arena = arena;
	else if ((data[1] & 2) && arena)
		o.candidates[o.ncandidates++] = arena;
	if (data[1] & 4)
		o.flags |= HS_GLIBC_NO_TLS;
	if (data[1] & 8)
		o.flags |= HS_GLIBC_NO_MMAPPED;
	int ret = hs_glibc_open(t, &o, &h);

	if (ret == 0) {
		(void)hs_glibc_analyze(h);
		(void)hs_glibc_for_each_free_chunk(h, HS_GLIBC_FREE_MMAPPED, on_chunk, &n);
	}
	/* HS_FUZZ_VERBOSE=1: what a seed reaches (for checking the corpus). */
	if (getenv("HS_FUZZ_VERBOSE"))
		fprintf(stderr, "glibc: open %d, main_arena 0x%llx, %zu arenas, %llu in use, "
			"%zu problems\n", ret, h ? (unsigned long long)h->main_arena : 0ull,
			h ? h->narenas : 0, h ? (unsigned long long)h->totals[HS_CHUNK_INUSE].count : 0ull,
			h ? h->nproblems : 0);
	hs_glibc_close(h);
	hs_target_close(t);
	return 0;
}
