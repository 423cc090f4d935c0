/*
 * hs_alloc: which malloc a target uses, and where jemalloc keeps what its
 * walker needs, found with what heap/ may not use (libelf, capstone, the
 * target's ELF modules).
 *
 * Detection looks at mapped module names first (an allocator in its own
 * shared library interposes malloc for the whole process, when ld.so's
 * link map has it before libc: one dlopen'd later serves no malloc), then
 * at the executable's symbols (an allocator linked in), then at libc.  This
 * layer knows nothing of the allocators' structures beyond where the
 * jemalloc walker's entry points are: heap/ checks what it is given.
 */
#ifndef HS_ALLOC_H
#define HS_ALLOC_H

#include "hs_core.h"

#define HS_ALLOCATORS(X)                                                    \
	X(UNKNOWN, "unknown")                                                   \
	X(GLIBC, "glibc")                                                       \
	X(JEMALLOC, "jemalloc")                                                 \
	X(TCMALLOC, "tcmalloc")                                                 \
	X(MIMALLOC, "mimalloc")                                                 \
	X(MUSL, "musl")

enum hs_alloc_kind {
#define HS_X_(n, s) HS_ALLOC_##n,
	HS_ALLOCATORS(HS_X_)
#undef HS_X_
	HS_ALLOC_N
};

const char *hs_alloc_name(enum hs_alloc_kind k); /* "jemalloc" */

struct hs_alloc_info {
	enum hs_alloc_kind kind;
	bool linked_in;          /* in the executable, not a shared library */
	/* Where it was seen: the module's path (a library, or the
	 * executable when linked in); "" if unknown. */
	char module[256];
	/* "module name", "symbol NAME" (static storage or this buffer) */
	char how[64];
};

/*
 * Names t's allocator.  Never fails: UNKNOWN when nothing is recognised
 * (a static binary without symbols, an allocator heapscan does not
 * know).  A library is recognised by its file name (libjemalloc*,
 * libtcmalloc*, libmimalloc*; ld-musl, libc.musl, or a libc.so on a path
 * naming musl), an allocator linked into the executable by its exported
 * or .symtab symbols (je_malloc, mallctl, malloc_conf / tc_malloc /
 * mi_malloc / musl's __libc_malloc_impl or __malloc_donate / glibc's
 * _int_malloc or main_arena), glibc by libc.so.6.
 */
void hs_alloc_detect(struct hs_target *t, struct hs_alloc_info *out);

/* What the jemalloc walker takes from the library's code and data. */
struct hs_alloc_jemalloc {
	hs_addr_t rtree[4];      /* candidates for the emap's rtree, best first */
	size_t nrtree;
	const char *rtree_how;   /* "disasm" or "symbol" */
	bool have_tpoff;         /* tsd = thread's fs_base + tsd_tpoff */
	int64_t tsd_tpoff;
	uint64_t tsd_size;       /* the library's PT_TLS p_memsz */
	unsigned tsd_state_off;  /* from `cmpb $0, %fs:OFF(reg)`, 0 if not seen */
	char version[64];        /* "5.3.0-0-g54eaed1d8b56..." or "" */
	/* The zero-fill tails (.bss past the file's bytes) of every mapped
	 * ELF object, [start, end) pairs sorted by start: anonymous memory
	 * that is no allocator's.  Owned; free with hs_alloc_jemalloc_release. */
	hs_addr_t (*bss)[2];
	size_t nbss;
};

void hs_alloc_jemalloc_release(struct hs_alloc_jemalloc *j);

/*
 * For the jemalloc that info names (a shared library: its file on disk,
 * never the target's text or .rodata):
 *   - the rtree: the RIP-relative `lea` targets in malloc_usable_size and
 *     sallocx (the slow path passes &arena_emap_global.rtree to the leaf
 *     lookup) that lie in the writable segment with room for the tree's
 *     2 MiB root array; for a linked-in jemalloc, the je_arena_emap_global
 *     symbol;
 *   - the tsd: the library's R_X86_64_TPOFF64 relocation names a GOT slot
 *     that ld.so filled with the TLS block's offset from the thread
 *     pointer; that slot is read in the target (RELRO data ld.so wrote);
 *   - every mapped ELF object's bss tail (its writable PT_LOAD's memsz
 *     past filesz, from the files' program headers).
 * Returns 0 (out->nrtree >= 1), -HS_E_NOT_FOUND, -ENOMEM.
 */
int hs_alloc_jemalloc_find(struct hs_target *t, const struct hs_alloc_info *info,
			   struct hs_alloc_jemalloc *out) HS_MUST_CHECK;

#endif
