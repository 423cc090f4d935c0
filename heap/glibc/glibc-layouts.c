/*
 * glibc malloc structure offsets on x86_64, one row per release range.
 *
 * Sources: the struct definitions of malloc/malloc.c and malloc/arena.c at
 * each glibc tag (malloc_state, malloc_par, heap_info,
 * tcache_perthread_struct), cross-checked with gdb + libc6-dbg on
 * Debian 12's 2.36 (doc/glibc-malloc.md).  Changes
 * that split the rows:
 *   2.23  malloc_state gains attached_threads (after next_free);
 *   2.24  malloc_par loses max_total_mem;
 *   2.26  tcache (char counts[64], entries at +0x40, chunk 0x250);
 *   2.27  malloc_state gains int have_fastchunks (fastbinsY moves to 0x10);
 *   2.30  tcache counts become uint16_t (entries at +0x80, chunk 0x290);
 *   2.32  safe-linking of tcache next and fastbin fd;
 *   2.35  heap_info gains pagesize (0x20 -> 0x30); malloc_par gains
 *         thp_pagesize, hp_pagesize, hp_flags.
 *   2.15  malloc_par loses the cached `unsigned int pagesize` (after
 *         no_dyn_threshold; mmapped_mem moves from 0x40 to 0x38).
 * Every row was re-checked against the structs at each tag glibc-2.12 ..
 * glibc-2.40 (malloc/malloc.c, malloc/arena.c; PER_THREAD is defined by
 * malloc/Makefile from 2.15 on, and on 2.12-2.14 by configure
 * --enable-experimental-malloc, which Red Hat's RHEL 6 glibc 2.12 build
 * passes; THREAD_STATS defaults to 0, HAVE_TUNABLES is on by default
 * 2.35-2.37 and unconditional from 2.38; no other struct change in the
 * range); test_heap_glibc.c restates the older rows independently.
 *
 * Backports (rows no version selects; hs_glibc_layout_backport):
 * RHEL 7's glibc 2.17 carries the fix for upstream bug 19048 (its spec:
 * "Backport of fix for malloc arena free list management", upstream
 * commit a62719ba "malloc: Prevent arena free_list from turning cyclic"),
 * which adds `INTERNAL_SIZE_T attached_threads` between next_free and
 * system_mem: system_mem moves from 0x878 to 0x880, sizeof from 0x888 to
 * 0x890.  Read with the upstream row, system_mem is attached_threads
 * ("system 1B").  The walker picks the variant from the arena's own
 * figures (see doc/glibc-layouts.md).
 */
#include "hs_glibc.h"

#define NO (-1)

static const struct hs_glibc_layout layouts[] = {
	{
		.min_minor = 12, .max_minor = 14, .name = "2.12-2.14",
		.ms_fastbins = 0x08, .ms_top = 0x58, .ms_last_remainder = 0x60,
		.ms_bins = 0x68, .ms_next = 0x868, .ms_next_free = 0x870,
		.ms_attached_threads = NO, .ms_system_mem = 0x878, .ms_size = 0x888,
		.hi_size = 0x20,
		.mp_mmap_threshold = 0x10, .mp_arena_test = 0x18, .mp_n_mmaps = 0x28,
		.mp_n_mmaps_max = 0x2c, .mp_mmapped_mem = 0x40, .mp_sbrk_base = 0x58,
		.mp_tcache_bins = NO, .mp_tcache_count = NO, .mp_size = 0x60,
	},
	{
		.min_minor = 15, .max_minor = 22, .name = "2.15-2.22",
		.ms_fastbins = 0x08, .ms_top = 0x58, .ms_last_remainder = 0x60,
		.ms_bins = 0x68, .ms_next = 0x868, .ms_next_free = 0x870,
		.ms_attached_threads = NO, .ms_system_mem = 0x878, .ms_size = 0x888,
		.hi_size = 0x20,
		.mp_mmap_threshold = 0x10, .mp_arena_test = 0x18, .mp_n_mmaps = 0x28,
		.mp_n_mmaps_max = 0x2c, .mp_mmapped_mem = 0x38, .mp_sbrk_base = 0x50,
		.mp_tcache_bins = NO, .mp_tcache_count = NO, .mp_size = 0x58,
	},
	{
		.min_minor = 23, .max_minor = 23, .name = "2.23",
		.ms_fastbins = 0x08, .ms_top = 0x58, .ms_last_remainder = 0x60,
		.ms_bins = 0x68, .ms_next = 0x868, .ms_next_free = 0x870,
		.ms_attached_threads = 0x878, .ms_system_mem = 0x880, .ms_size = 0x890,
		.hi_size = 0x20,
		.mp_mmap_threshold = 0x10, .mp_arena_test = 0x18, .mp_n_mmaps = 0x28,
		.mp_n_mmaps_max = 0x2c, .mp_mmapped_mem = 0x38, .mp_sbrk_base = 0x50,
		.mp_tcache_bins = NO, .mp_tcache_count = NO, .mp_size = 0x58,
	},
	{
		.min_minor = 24, .max_minor = 25, .name = "2.24-2.25",
		.ms_fastbins = 0x08, .ms_top = 0x58, .ms_last_remainder = 0x60,
		.ms_bins = 0x68, .ms_next = 0x868, .ms_next_free = 0x870,
		.ms_attached_threads = 0x878, .ms_system_mem = 0x880, .ms_size = 0x890,
		.hi_size = 0x20,
		.mp_mmap_threshold = 0x10, .mp_arena_test = 0x18, .mp_n_mmaps = 0x28,
		.mp_n_mmaps_max = 0x2c, .mp_mmapped_mem = 0x38, .mp_sbrk_base = 0x48,
		.mp_tcache_bins = NO, .mp_tcache_count = NO, .mp_size = 0x50,
	},
	{
		.min_minor = 26, .max_minor = 26, .name = "2.26",
		.ms_fastbins = 0x08, .ms_top = 0x58, .ms_last_remainder = 0x60,
		.ms_bins = 0x68, .ms_next = 0x868, .ms_next_free = 0x870,
		.ms_attached_threads = 0x878, .ms_system_mem = 0x880, .ms_size = 0x890,
		.hi_size = 0x20,
		.mp_mmap_threshold = 0x10, .mp_arena_test = 0x18, .mp_n_mmaps = 0x28,
		.mp_n_mmaps_max = 0x2c, .mp_mmapped_mem = 0x38, .mp_sbrk_base = 0x48,
		.mp_tcache_bins = 0x50, .mp_tcache_count = 0x60, .mp_size = 0x70,
		.tc_count_size = 1, .tc_entries = 0x40, .tc_chunk_size = 0x250,
	},
	{
		.min_minor = 27, .max_minor = 29, .name = "2.27-2.29",
		.ms_fastbins = 0x10, .ms_top = 0x60, .ms_last_remainder = 0x68,
		.ms_bins = 0x70, .ms_next = 0x870, .ms_next_free = 0x878,
		.ms_attached_threads = 0x880, .ms_system_mem = 0x888, .ms_size = 0x898,
		.hi_size = 0x20,
		.mp_mmap_threshold = 0x10, .mp_arena_test = 0x18, .mp_n_mmaps = 0x28,
		.mp_n_mmaps_max = 0x2c, .mp_mmapped_mem = 0x38, .mp_sbrk_base = 0x48,
		.mp_tcache_bins = 0x50, .mp_tcache_count = 0x60, .mp_size = 0x70,
		.tc_count_size = 1, .tc_entries = 0x40, .tc_chunk_size = 0x250,
	},
	{
		.min_minor = 30, .max_minor = 31, .name = "2.30-2.31",
		.ms_fastbins = 0x10, .ms_top = 0x60, .ms_last_remainder = 0x68,
		.ms_bins = 0x70, .ms_next = 0x870, .ms_next_free = 0x878,
		.ms_attached_threads = 0x880, .ms_system_mem = 0x888, .ms_size = 0x898,
		.hi_size = 0x20,
		.mp_mmap_threshold = 0x10, .mp_arena_test = 0x18, .mp_n_mmaps = 0x28,
		.mp_n_mmaps_max = 0x2c, .mp_mmapped_mem = 0x38, .mp_sbrk_base = 0x48,
		.mp_tcache_bins = 0x50, .mp_tcache_count = 0x60, .mp_size = 0x70,
		.tc_count_size = 2, .tc_entries = 0x80, .tc_chunk_size = 0x290,
	},
	{
		.min_minor = 32, .max_minor = 34, .name = "2.32-2.34",
		.ms_fastbins = 0x10, .ms_top = 0x60, .ms_last_remainder = 0x68,
		.ms_bins = 0x70, .ms_next = 0x870, .ms_next_free = 0x878,
		.ms_attached_threads = 0x880, .ms_system_mem = 0x888, .ms_size = 0x898,
		.hi_size = 0x20,
		.mp_mmap_threshold = 0x10, .mp_arena_test = 0x18, .mp_n_mmaps = 0x28,
		.mp_n_mmaps_max = 0x2c, .mp_mmapped_mem = 0x38, .mp_sbrk_base = 0x48,
		.mp_tcache_bins = 0x50, .mp_tcache_count = 0x60, .mp_size = 0x70,
		.tc_count_size = 2, .tc_entries = 0x80, .tc_chunk_size = 0x290,
		.safe_linking = true,
	},
	{
		.min_minor = 35, .max_minor = 40, .name = "2.35-2.40",
		.ms_fastbins = 0x10, .ms_top = 0x60, .ms_last_remainder = 0x68,
		.ms_bins = 0x70, .ms_next = 0x870, .ms_next_free = 0x878,
		.ms_attached_threads = 0x880, .ms_system_mem = 0x888, .ms_size = 0x898,
		.hi_size = 0x30,
		.mp_mmap_threshold = 0x10, .mp_arena_test = 0x18, .mp_n_mmaps = 0x3c,
		.mp_n_mmaps_max = 0x40, .mp_mmapped_mem = 0x50, .mp_sbrk_base = 0x60,
		.mp_tcache_bins = 0x68, .mp_tcache_count = 0x78, .mp_size = 0x88,
		.tc_count_size = 2, .tc_entries = 0x80, .tc_chunk_size = 0x290,
		.safe_linking = true,
	},
};

/* The rows above with attached_threads backported (version ranges as
 * the row they vary; never chosen by version alone). */
static const struct hs_glibc_layout backports[] = {
	{
		.min_minor = 12, .max_minor = 14,
		.name = "2.12-2.14 with attached_threads backported",
		.ms_fastbins = 0x08, .ms_top = 0x58, .ms_last_remainder = 0x60,
		.ms_bins = 0x68, .ms_next = 0x868, .ms_next_free = 0x870,
		.ms_attached_threads = 0x878, .ms_system_mem = 0x880, .ms_size = 0x890,
		.hi_size = 0x20,
		.mp_mmap_threshold = 0x10, .mp_arena_test = 0x18, .mp_n_mmaps = 0x28,
		.mp_n_mmaps_max = 0x2c, .mp_mmapped_mem = 0x40, .mp_sbrk_base = 0x58,
		.mp_tcache_bins = NO, .mp_tcache_count = NO, .mp_size = 0x60,
	},
	{
		.min_minor = 15, .max_minor = 22,
		.name = "2.17 RHEL 7 (attached_threads backported)",
		.ms_fastbins = 0x08, .ms_top = 0x58, .ms_last_remainder = 0x60,
		.ms_bins = 0x68, .ms_next = 0x868, .ms_next_free = 0x870,
		.ms_attached_threads = 0x878, .ms_system_mem = 0x880, .ms_size = 0x890,
		.hi_size = 0x20,
		.mp_mmap_threshold = 0x10, .mp_arena_test = 0x18, .mp_n_mmaps = 0x28,
		.mp_n_mmaps_max = 0x2c, .mp_mmapped_mem = 0x38, .mp_sbrk_base = 0x50,
		.mp_tcache_bins = NO, .mp_tcache_count = NO, .mp_size = 0x58,
	},
};

const struct hs_glibc_layout *hs_glibc_layout_backport(const struct hs_glibc_layout *L)
{
	if (!L || L->ms_attached_threads != NO)
		return NULL;
	for (size_t i = 0; i < HS_ARRAY_SIZE(backports); i++)
		if (backports[i].min_minor == L->min_minor)
			return &backports[i];
	return NULL;
}

const struct hs_glibc_layout *hs_glibc_layout_for(unsigned major, unsigned minor)
{
	if (major != 2)
		return NULL;
	for (size_t i = 0; i < HS_ARRAY_SIZE(layouts); i++)
		if (minor >= layouts[i].min_minor && minor <= layouts[i].max_minor)
			return &layouts[i];
	return NULL;
}
