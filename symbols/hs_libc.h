/*
 * hs_libc: where the target's glibc keeps main_arena, found with what the
 * heap walker may not use (libelf, libdw through hs_syms, capstone).
 *
 * Both functions only propose: heap/'s walker receives the address in
 * hs_glibc_opts (main_arena for a symbol, candidates for disassembly
 * guesses) and checks it against the arena invariants (the `next` ring,
 * `top`, the self-referencing empty bins).  Neither reads the target's
 * code or .rodata: libc's file on disk supplies .dynsym and the code
 * bytes, so a live target's file Rss does not grow.
 *
 * This layer knows nothing of malloc's structures beyond "main_arena is
 * in libc's writable segment".
 */
#ifndef HS_LIBC_H
#define HS_LIBC_H

#include "hs_core.h"

/*
 * main_arena from libc's debug info (e.g. Debian's libc6-dbg, found by
 * build-id): the `main_arena` symbol through the hs_syms resolver.
 * Returns 0 with *addr, -HS_E_NOT_FOUND when there is no debug info or
 * no libc, -ENOMEM.
 */
int hs_libc_main_arena_symbol(struct hs_target *t, hs_addr_t *addr) HS_MUST_CHECK;

/* The exported functions whose first instructions load &main_arena with
 * a RIP-relative lea (glibc 2.17-2.40: malloc_trim, mallinfo, malloc_stats
 * and __libc_mallopt; mallinfo2 from 2.33). */
extern const char *const hs_libc_arena_users[];

/*
 * Guesses of main_arena without debug info: decodes (capstone, x86_64)
 * at most HS_LIBC_DISASM_INSNS instructions of each hs_libc_arena_users
 * function found in libc's .dynsym, and collects the targets of
 * RIP-relative lea instructions that fall in libc's writable PT_LOAD.
 * Writes up to max runtime addresses to out, most-referenced first (ties:
 * first seen), and their count to *n.
 * Returns 0 (*n >= 1), -HS_E_NOT_FOUND (no libc mapping, its file cannot
 * be opened or is not x86_64 ELF, or no function references such an
 * address), -ENOMEM.
 */
#define HS_LIBC_DISASM_INSNS 64
int hs_libc_main_arena_disasm(struct hs_target *t, hs_addr_t *out, size_t max,
			      size_t *n) HS_MUST_CHECK;

#endif
