/* Unit tests for the pprof encoder: its output read back by a small
 * protobuf decoder written here from the wire format (varints and
 * length-delimited fields) and profile.proto's field numbers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hs_heap.h"
#include "hs_pprof.h"
#include "growth/profile-internal.h"

/* ---- decoder ---- */

struct field {
	unsigned num;
	uint64_t v;              /* varint value, or the length */
	const unsigned char *p;  /* length-delimited: the bytes */
};

/* Reads one varint at *p (< end); fails the test on a bad encoding. */
static uint64_t get_varint(const unsigned char **p, const unsigned char *end)
{
	uint64_t v = 0;

	for (unsigned shift = 0; shift < 64; shift += 7) {
		assert_true(*p < end);
		v |= (uint64_t)(**p & 0x7f) << shift;
		if (!(*(*p)++ & 0x80))
			return v;
	}
	fail_msg("varint longer than 10 bytes");
	return 0;
}

/* Next field of [*p, end); false at the end. */
static bool next_field(const unsigned char **p, const unsigned char *end, struct field *f)
{
	uint64_t key;

	if (*p >= end)
		return false;
	key = get_varint(p, end);
	f->num = (unsigned)(key >> 3);
	switch (key & 7) {
	case 0:
		f->v = get_varint(p, end);
		f->p = NULL;
		break;
	case 2:
		f->v = get_varint(p, end);
		assert_true(f->v <= (uint64_t)(end - *p));
		f->p = *p;
		*p += f->v;
		break;
	default:
		fail_msg("wire type %u", (unsigned)(key & 7));
	}
	return true;
}

#define MAXN 64

struct dsample {
	uint64_t loc[MAXN];
	size_t nloc;
	uint64_t val[MAXN];
	size_t nval;
	uint64_t label_key[8], label_str[8], label_num[8];
	size_t nlabels;
};

struct decoded {
	char *strs[MAXN * 4];
	size_t nstrs;
	uint64_t type[4], unit[4];
	size_t ntypes;
	struct dsample samples[MAXN];
	size_t nsamples;
	uint64_t loc_id[MAXN], loc_fn[MAXN], loc_map[MAXN];
	uint64_t map_id, map_file, map_has_functions;
	size_t nmaps;
	size_t nlocs;
	uint64_t fn_id[MAXN], fn_name[MAXN];
	size_t nfns;
	uint64_t time, duration, period, ptype, punit;
	uint64_t comments[8];
	size_t ncomments;
};

static void get_packed(const struct field *f, uint64_t *out, size_t *n)
{
	const unsigned char *p = f->p, *end = f->p + f->v;

	if (!f->p) { /* unpacked: one value */
		out[(*n)++] = f->v;
		return;
	}
	while (p < end) {
		assert_true(*n < MAXN);
		out[(*n)++] = get_varint(&p, end);
	}
}

static void decode(const struct hs_buf *b, struct decoded *d)
{
	const unsigned char *p = (const unsigned char *)b->buf, *end = p + b->len;
	struct field f, g, h;

	memset(d, 0, sizeof(*d));
	while (next_field(&p, end, &f)) {
		const unsigned char *q = f.p, *qend = f.p ? f.p + f.v : NULL;

		switch (f.num) {
		case 1: /* sample_type */
		case 11: /* period_type */
			while (next_field(&q, qend, &g)) {
				uint64_t *slot = f.num == 11 ? (g.num == 1 ? &d->ptype : &d->punit)
					: (g.num == 1 ? &d->type[d->ntypes] : &d->unit[d->ntypes]);
				*slot = g.v;
			}
			if (f.num == 1)
				d->ntypes++;
			break;
		case 2: { /* sample */
			struct dsample *s = &d->samples[d->nsamples++];

			while (next_field(&q, qend, &g)) {
				if (g.num == 1)
					get_packed(&g, s->loc, &s->nloc);
				else if (g.num == 2)
					get_packed(&g, s->val, &s->nval);
				else if (g.num == 3) {
					const unsigned char *r = g.p, *rend = g.p + g.v;

					while (next_field(&r, rend, &h)) {
						if (h.num == 1)
							s->label_key[s->nlabels] = h.v;
						else if (h.num == 2)
							s->label_str[s->nlabels] = h.v;
						else if (h.num == 3)
							s->label_num[s->nlabels] = h.v;
					}
					s->nlabels++;
				}
			}
			break;
		}
		case 3: /* mapping: id, filename, has_functions */
			while (next_field(&q, qend, &g)) {
				if (g.num == 1)
					d->map_id = g.v;
				else if (g.num == 5)
					d->map_file = g.v;
				else if (g.num == 7)
					d->map_has_functions = g.v;
			}
			d->nmaps++;
			break;
		case 4: /* location: id, mapping_id, line { function_id } */
			while (next_field(&q, qend, &g)) {
				if (g.num == 1)
					d->loc_id[d->nlocs] = g.v;
				else if (g.num == 2)
					d->loc_map[d->nlocs] = g.v;
				else if (g.num == 4) {
					const unsigned char *r = g.p, *rend = g.p + g.v;

					while (next_field(&r, rend, &h))
						if (h.num == 1)
							d->loc_fn[d->nlocs] = h.v;
				}
			}
			d->nlocs++;
			break;
		case 5: /* function: id, name */
			while (next_field(&q, qend, &g)) {
				if (g.num == 1)
					d->fn_id[d->nfns] = g.v;
				else if (g.num == 2)
					d->fn_name[d->nfns] = g.v;
			}
			d->nfns++;
			break;
		case 6:
			d->strs[d->nstrs++] = hs_xstrndup((const char *)f.p, f.v);
			break;
		case 9:
			d->time = f.v;
			break;
		case 10:
			d->duration = f.v;
			break;
		case 12:
			d->period = f.v;
			break;
		case 13:
			get_packed(&f, d->comments, &d->ncomments);
			break;
		default:
			fail_msg("unexpected Profile field %u", f.num);
		}
	}
}

static void decoded_release(struct decoded *d)
{
	for (size_t i = 0; i < d->nstrs; i++)
		free(d->strs[i]);
}

static const char *str(const struct decoded *d, uint64_t i)
{
	assert_true(i < d->nstrs);
	return d->strs[i];
}

/* The name of location id (through its function). */
static const char *frame(const struct decoded *d, uint64_t id)
{
	for (size_t i = 0; i < d->nlocs; i++) {
		if (d->loc_id[i] != id)
			continue;
		for (size_t j = 0; j < d->nfns; j++)
			if (d->fn_id[j] == d->loc_fn[i])
				return str(d, d->fn_name[j]);
	}
	fail_msg("no location %llu", (unsigned long long)id);
	return NULL;
}

/* The sample whose leaf is name, or fail. */
static const struct dsample *find(const struct decoded *d, const char *leaf)
{
	for (size_t i = 0; i < d->nsamples; i++)
		if (!strcmp(frame(d, d->samples[i].loc[0]), leaf))
			return &d->samples[i];
	fail_msg("no sample '%s'", leaf);
	return NULL;
}

static void assert_frames(const struct decoded *d, const struct dsample *s,
			  const char *const *names, size_t n)
{
	assert_int_equal(s->nloc, n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(frame(d, s->loc[i]), names[i]);
}

/* ---- tests ---- */

static void test_encode(void **state)
{
	static const char *const a[] = { "chunk 0x60", "main_arena", "heap", "glibc malloc" };
	static const char *const b[] = { "chunk 0x70", "main_arena", "heap", "glibc malloc" };
	static const char *const c[] = { "\"x\"", "strings" };
	struct hs_pprof pp;
	struct hs_buf out = HS_BUF_INIT;
	struct decoded d;
	const struct dsample *s;

	(void)state;
	hs_pprof_init(&pp);
	hs_pprof_set_time(&pp, 1700000000123456789ull, 4242);
	hs_pprof_add_label_num(&pp, "pid", 0);
	hs_pprof_add_label_str(&pp, "comm", "worker");
	hs_pprof_add_label_str(&pp, "exe", ""); /* no value: no label */
	hs_pprof_add_comment(&pp, "hello");
	assert_int_equal(hs_pprof_add_sample(&pp, 3, 0x120, a, 4), 0);
	/* multi-byte varints, and a value beyond int64 clamped */
	assert_int_equal(hs_pprof_add_sample(&pp, 1ull << 40, UINT64_MAX, b, 4), 0);
	assert_int_equal(hs_pprof_add_sample(&pp, 0, 0, c, 2), 0);
	assert_int_equal(hs_pprof_encode(&pp, &out), 0);
	decode(&out, &d);

	assert_string_equal(str(&d, 0), "");
	assert_int_equal(d.ntypes, 2);
	assert_string_equal(str(&d, d.type[0]), "inuse_objects");
	assert_string_equal(str(&d, d.unit[0]), "count");
	assert_string_equal(str(&d, d.type[1]), "inuse_space");
	assert_string_equal(str(&d, d.unit[1]), "bytes");
	assert_string_equal(str(&d, d.ptype), "space");
	assert_string_equal(str(&d, d.punit), "bytes");
	assert_int_equal(d.period, 1);
	assert_int_equal(d.time, 1700000000123456789ull);
	assert_int_equal(d.duration, 4242);
	assert_int_equal(d.ncomments, 1);
	assert_string_equal(str(&d, d.comments[0]), "hello");

	assert_int_equal(d.nsamples, 3);
	s = find(&d, "chunk 0x60");
	assert_frames(&d, s, a, 4);
	assert_int_equal(s->nval, 2);
	assert_int_equal(s->val[0], 3);
	assert_int_equal(s->val[1], 0x120);
	assert_int_equal(s->nlabels, 2);
	assert_string_equal(str(&d, s->label_key[0]), "pid");
	assert_int_equal(s->label_str[0], 0);
	assert_int_equal(s->label_num[0], 0);
	assert_string_equal(str(&d, s->label_key[1]), "comm");
	assert_string_equal(str(&d, s->label_str[1]), "worker");
	s = find(&d, "chunk 0x70");
	assert_frames(&d, s, b, 4);
	assert_int_equal(s->val[0], 1ull << 40);
	assert_int_equal(s->val[1], (uint64_t)INT64_MAX);
	s = find(&d, "\"x\"");
	assert_frames(&d, s, c, 2);
	assert_int_equal(s->nval, 2);
	assert_int_equal(s->val[0], 0);

	/* one mapping, named "[heapscan]" without an exe, functions known */
	assert_int_equal(d.nmaps, 1);
	assert_int_equal(d.map_id, 1);
	assert_string_equal(str(&d, d.map_file), "[heapscan]");
	assert_int_equal(d.map_has_functions, 1);
	/* one location and one function per distinct name: 7 names */
	assert_int_equal(d.nlocs, 7);
	assert_int_equal(d.nfns, 7);
	for (size_t i = 0; i < d.nlocs; i++) {
		assert_true(d.loc_id[i] != 0);
		assert_int_equal(d.loc_map[i], 1);
		for (size_t j = 0; j < i; j++)
			assert_true(d.loc_id[j] != d.loc_id[i]);
	}
	/* every string once */
	for (size_t i = 0; i < d.nstrs; i++)
		for (size_t j = 0; j < i; j++)
			assert_true(strcmp(d.strs[i], d.strs[j]) != 0);
	decoded_release(&d);
	hs_buf_release(&out);
	hs_pprof_release(&pp);
}

static void test_bad_samples(void **state)
{
	const char *frames[HS_PPROF_FRAMES_MAX + 1];
	const char *empty[] = { "" };
	const char *null[] = { "x", NULL };
	struct hs_pprof pp;

	(void)state;
	for (size_t i = 0; i < HS_ARRAY_SIZE(frames); i++)
		frames[i] = "f";
	hs_pprof_init(&pp);
	assert_int_equal(hs_pprof_add_sample(&pp, 1, 1, frames, 0), -EINVAL);
	assert_int_equal(hs_pprof_add_sample(&pp, 1, 1, NULL, 1), -EINVAL);
	assert_int_equal(hs_pprof_add_sample(&pp, 1, 1, frames, HS_PPROF_FRAMES_MAX + 1),
			 -EINVAL);
	assert_int_equal(hs_pprof_add_sample(&pp, 1, 1, empty, 1), -EINVAL);
	assert_int_equal(hs_pprof_add_sample(&pp, 1, 1, null, 2), -EINVAL);
	assert_int_equal(pp.nsamples, 0);
	/* a frame repeated in one stack is one location, used twice */
	assert_int_equal(hs_pprof_add_sample(&pp, 1, 1, frames, HS_PPROF_FRAMES_MAX), 0);
	assert_int_equal(pp.nfuncs, 1);
	hs_pprof_release(&pp);
}

static void test_quote(void **state)
{
	struct hs_buf b = HS_BUF_INIT;
	char longs[HS_PPROF_TEXT_MAX + 50];

	(void)state;
	hs_pprof_quote(&b, "a\"b\\c\x01\xff", 7, 7);
	assert_string_equal(b.buf, "\"a\\\"b\\\\c\\x01\\xff\"");
	hs_buf_reset(&b);
	memset(longs, 'z', sizeof(longs));
	/* stored shorter than the real length: cut, with the length */
	hs_pprof_quote(&b, longs, 10, 5000);
	assert_string_equal(b.buf, "\"zzzzzzzzzz\"... (5000 chars)");
	hs_buf_reset(&b);
	hs_pprof_quote(&b, longs, sizeof(longs), sizeof(longs));
	assert_int_equal(b.len, HS_PPROF_TEXT_MAX + 2 + strlen("... (250 chars)"));
	hs_buf_release(&b);
}

static void test_add_profile(void **state)
{
	struct hs_profile p;
	struct hs_profile_arena *a;
	struct hs_profile_chunk *c;
	struct hs_profile_string *s;
	struct hs_pprof pp;
	struct hs_buf out = HS_BUF_INIT;
	struct decoded d;
	const struct dsample *x;
	static const char *const main_f[] = { "chunk 0x60", "main_arena", "heap", "glibc malloc" };
	static const char *const thr_f[] = { "chunk 0x60", "arena 1", "arena", "glibc malloc" };
	static const char *const mm_f[] = { "chunk 0x21000", "mmapped chunks", "anon",
					    "glibc malloc" };
	static const char *const other_f[] = { "chunk (other sizes)", "main_arena", "heap",
					       "glibc malloc" };
	static const char *const str_f[] = { "\"couchbase.context_info\"", "strings" };

	(void)state;
	hs_profile_init(&p);
	p.pid = 4711;
	p.time_ns = 123;
	p.build_ns = 456;
	hs_profile_set_str(&p.exe, "/usr/bin/worker");
	hs_profile_set_str(&p.source, "pid 4711");
	a = hs_profile_add_arena(&p);
	a->idx = 0;
	a->is_main = true;
	a = hs_profile_add_arena(&p);
	a->idx = 1;
	c = hs_profile_add_chunk(&p);
	*c = (struct hs_profile_chunk){ .arena = -1, .size = 0x21000, .count = 2, .bytes = 0x42000 };
	c = hs_profile_add_chunk(&p);
	*c = (struct hs_profile_chunk){ .arena = 0, .size = 0, .count = 9, .bytes = 900 };
	c = hs_profile_add_chunk(&p);
	*c = (struct hs_profile_chunk){ .arena = 0, .size = 0x60, .count = 10, .bytes = 0x3c0 };
	c = hs_profile_add_chunk(&p);
	*c = (struct hs_profile_chunk){ .arena = 1, .size = 0x60, .count = 5, .bytes = 0x1e0 };
	s = hs_profile_add_string(&p);
	s->s = hs_xstrdup("couchbase.context_info");
	s->stored = s->len = strlen(s->s);
	s->count = 7;
	s->bytes = 7 * s->len;

	hs_pprof_init(&pp);
	assert_int_equal(hs_pprof_add_profile(&pp, &p), 0);
	assert_int_equal(hs_pprof_encode(&pp, &out), 0);
	decode(&out, &d);
	assert_int_equal(d.nsamples, 5);
	assert_string_equal(str(&d, d.map_file), "/usr/bin/worker");
	assert_int_equal(d.time, 123);
	assert_int_equal(d.duration, 456);
	for (size_t i = 0; i < d.nsamples; i++) {
		const struct dsample *y = &d.samples[i];

		if (!strcmp(frame(&d, y->loc[1]), "main_arena"))
			assert_frames(&d, y, y->val[0] == 10 ? main_f : other_f, 4);
		else if (!strcmp(frame(&d, y->loc[1]), "arena 1"))
			assert_frames(&d, y, thr_f, 4);
		assert_int_equal(y->nlabels, 2);
		assert_string_equal(str(&d, y->label_key[0]), "pid");
		assert_int_equal(y->label_num[0], 4711);
		assert_string_equal(str(&d, y->label_key[1]), "exe");
		assert_string_equal(str(&d, y->label_str[1]), "/usr/bin/worker");
	}
	x = find(&d, "chunk 0x21000");
	assert_frames(&d, x, mm_f, 4);
	assert_int_equal(x->val[1], 0x42000);
	x = find(&d, "chunk (other sizes)");
	assert_int_equal(x->val[0], 9);
	x = find(&d, "\"couchbase.context_info\"");
	assert_frames(&d, x, str_f, 2);
	assert_int_equal(x->val[0], 7);
	assert_int_equal(x->val[1], 7 * 22);
	decoded_release(&d);
	hs_buf_release(&out);
	hs_pprof_release(&pp);
	hs_profile_release(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encode),
		cmocka_unit_test(test_bad_samples),
		cmocka_unit_test(test_quote),
		cmocka_unit_test(test_add_profile),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
