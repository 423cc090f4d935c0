/*
 * The core reader on arbitrary bytes, then what every command does with
 * a core: maps, threads, reads (streamed over every mapping, a bounded
 * amount per input), the glibc walker and the string analysis.  Memory
 * and time per input stay bounded whatever the core claims: libFuzzer's
 * -rss_limit_mb and -timeout catch a budget that does not hold.
 */
#include "fuzz.h"
#include "hs_glibc.h"
#include "hs_strings.h"
#include "hs_symbols.h"

#include <stdlib.h>
#include <string.h>

#define READ_BUDGET (1u << 20) /* bytes streamed per input */

struct sink {
	uint64_t left;
	uint64_t sum;
};

static int on_chunk(void *ud, hs_addr_t addr, const void *data, size_t len)
{
	struct sink *s = ud;
	const unsigned char *p = data;

	(void)addr;
	for (size_t i = 0; i < len; i += 512)
		s->sum += p[i];
	if (len >= s->left)
		return 1;
	s->left -= len;
	return 0;
}

static int on_chunk_walk(void *ud, const struct hs_glibc_chunk *c)
{
	uint64_t *n = ud;

	(void)c;
	return ++*n > 100000;
}

/* The glibc walker, then the string scan with the string locations it
 * gives (as `strings` and `scan` do). */
static void walk_glibc_and_strings(struct hs_target *t)
{
	struct hs_glibc_opts go = { .max_free_chunks = 4096 };
	struct hs_glibc_heap *h = NULL;
	struct hs_str_ranges r = HS_STR_RANGES_INIT;
	struct hs_str_where w = HS_STR_WHERE_INIT;
	struct hs_str_opts o;
	struct hs_str_result res;
	uint64_t n = 0;
	bool where = false;

	if (hs_glibc_open(t, &go, &h) == 0) {
		(void)hs_glibc_analyze(h);
		(void)hs_glibc_for_each_free_chunk(h, HS_GLIBC_FREE_MMAPPED,
						   on_chunk_walk, &n);
		where = hs_str_where_from_glibc(&w, h) == 0;
	}
	hs_glibc_close(h);
	hs_str_ranges_from_maps(&r, &t->maps, HS_STR_CLASSES_DEFAULT);
	hs_str_opts_init(&o);
	o.jobs = 1;
	o.chunk = 64u << 10;
	o.max_mem = 16u << 20;
	o.top = 8;
	o.where = where ? &w : NULL;
	if (hs_strings_scan(t, &r, &o, &res) == 0)
		hs_str_result_release(&res);
	hs_str_ranges_release(&r);
	hs_str_where_release(&w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hs_target *t = NULL;
	struct sink s = { READ_BUDGET, 0 };
	unsigned char buf[64 << 10];
	const char *path;

	hs_log_set(fuzz_quiet, NULL);
	path = fuzz_file(data, size);
	if (!path || hs_target_open_core(path, NULL, &t) < 0)
		return 0;
	for (size_t i = 0; i < t->maps.n; i++) {
		const struct hs_map *m = &t->maps.v[i];

		if (m->start >= m->end || !m->path)
			abort();
		if (hs_target_stream(t, m->start, m->end, buf, sizeof(buf), on_chunk,
				     &s, NULL) == 1)
			break;
	}
	for (size_t i = 0; i < t->nthreads; i++) {
		uint64_t v;

		(void)hs_read_u64(t, t->threads[i].sp, &v);
	}
	walk_glibc_and_strings(t);
	hs_target_close(t);
	return 0;
}
