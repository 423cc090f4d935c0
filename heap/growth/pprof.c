/*
 * pprof profile builder and protobuf encoder; see hs_pprof.h and
 * doc/pprof.md (field numbers and wire format).
 */
#include "hs_pprof.h"
#include "hs_growth.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* profile.proto field numbers (doc/pprof.md). */
enum {
	PROFILE_SAMPLE_TYPE = 1, PROFILE_SAMPLE = 2, PROFILE_MAPPING = 3,
	PROFILE_LOCATION = 4,
	PROFILE_FUNCTION = 5, PROFILE_STRING_TABLE = 6, PROFILE_TIME_NANOS = 9,
	PROFILE_DURATION_NANOS = 10, PROFILE_PERIOD_TYPE = 11, PROFILE_PERIOD = 12,
	PROFILE_COMMENT = 13,
	VALUE_TYPE_TYPE = 1, VALUE_TYPE_UNIT = 2,
	SAMPLE_LOCATION_ID = 1, SAMPLE_VALUE = 2, SAMPLE_LABEL = 3,
	LABEL_KEY = 1, LABEL_STR = 2, LABEL_NUM = 3,
	MAPPING_ID = 1, MAPPING_FILENAME = 5, MAPPING_HAS_FUNCTIONS = 7,
	LOCATION_ID = 1, LOCATION_MAPPING_ID = 2, LOCATION_LINE = 4,
	LINE_FUNCTION_ID = 1,
	FUNCTION_ID = 1, FUNCTION_NAME = 2, FUNCTION_SYSTEM_NAME = 3,
};

/* Wire types. */
enum { WT_VARINT = 0, WT_LEN = 2 };

/* ---- string table ---------------------------------------------------- */

static uint64_t hash_str(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ull;
	}
	return h;
}

static void rehash(struct hs_pprof *pp, size_t nslots)
{
	free(pp->slots);
	pp->slots = hs_xcalloc(nslots, sizeof(*pp->slots));
	pp->nslots = nslots;
	for (size_t i = 0; i < pp->nstrs; i++) {
		size_t j = hash_str(pp->strs[i]) & (nslots - 1);

		while (pp->slots[j])
			j = (j + 1) & (nslots - 1);
		pp->slots[j] = (uint32_t)(i + 1);
	}
}

/* The string table index of s, adding it; -1 beyond the bound. */
static int64_t intern(struct hs_pprof *pp, const char *s)
{
	size_t j;

	if (pp->nslots == 0 || 2 * (pp->nstrs + 1) > pp->nslots)
		rehash(pp, pp->nslots ? 2 * pp->nslots : 64);
	j = hash_str(s) & (pp->nslots - 1);
	while (pp->slots[j]) {
		if (!strcmp(pp->strs[pp->slots[j] - 1], s))
			return pp->slots[j] - 1;
		j = (j + 1) & (pp->nslots - 1);
	}
	if (pp->nstrs >= HS_PPROF_STRINGS_MAX)
		return -1;
	HS_ALLOC_GROW(pp->strs, pp->nstrs + 1, pp->astrs);
	pp->strs[pp->nstrs] = hs_xstrdup(s);
	pp->slots[j] = (uint32_t)(pp->nstrs + 1);
	return (int64_t)pp->nstrs++;
}

/* Index of s, or of "" when the table is full (labels, comments). */
static uint64_t intern_or_empty(struct hs_pprof *pp, const char *s)
{
	int64_t i = intern(pp, s);

	return i < 0 ? 0 : (uint64_t)i;
}

/* Names every profile has, at fixed indexes of its string table. */
static const char *const fixed_strs[] = {
	"", /* string_table[0] must be "" */
	"inuse_objects", "count", "inuse_space", "bytes", "space", "[heapscan]",
};
enum {
	STR_INUSE_OBJECTS = 1, STR_COUNT, STR_INUSE_SPACE, STR_BYTES, STR_SPACE,
	STR_NO_BINARY,
};

void hs_pprof_init(struct hs_pprof *pp)
{
	memset(pp, 0, sizeof(*pp));
	for (size_t i = 0; i < HS_ARRAY_SIZE(fixed_strs); i++)
		(void)intern(pp, fixed_strs[i]);
	pp->main_binary = STR_NO_BINARY;
}

void hs_pprof_set_main_binary(struct hs_pprof *pp, const char *path)
{
	pp->main_binary = path && path[0] ? intern_or_empty(pp, path) : STR_NO_BINARY;
	if (!pp->main_binary)
		pp->main_binary = STR_NO_BINARY;
}

void hs_pprof_release(struct hs_pprof *pp)
{
	for (size_t i = 0; i < pp->nstrs; i++)
		free(pp->strs[i]);
	free(pp->strs);
	free(pp->slots);
	free(pp->fn_of);
	free(pp->fn_name);
	free(pp->samples);
	free(pp->locs);
	free(pp->labels);
	free(pp->comments);
	memset(pp, 0, sizeof(*pp));
}

void hs_pprof_set_time(struct hs_pprof *pp, uint64_t time_ns, uint64_t duration_ns)
{
	pp->time_ns = time_ns;
	pp->duration_ns = duration_ns;
}

void hs_pprof_add_comment(struct hs_pprof *pp, const char *text)
{
	HS_ALLOC_GROW(pp->comments, pp->ncomments + 1, pp->acomments);
	pp->comments[pp->ncomments++] = intern_or_empty(pp, text);
}

static void add_label(struct hs_pprof *pp, const char *key, const char *val, int64_t num)
{
	struct hs_pprof_label *l;

	HS_ALLOC_GROW(pp->labels, pp->nlabels + 1, pp->alabels);
	l = &pp->labels[pp->nlabels++];
	l->key = intern_or_empty(pp, key);
	l->str = val ? intern_or_empty(pp, val) : 0;
	l->num = num;
}

void hs_pprof_add_label_str(struct hs_pprof *pp, const char *key, const char *val)
{
	/* index 0 ("") marks a number label: an empty value is no label */
	if (val && val[0])
		add_label(pp, key, val, 0);
}

void hs_pprof_add_label_num(struct hs_pprof *pp, const char *key, int64_t num)
{
	add_label(pp, key, NULL, num);
}

/* The function (= location) id named by string index name, made once. */
static uint64_t func_of(struct hs_pprof *pp, uint64_t name)
{
	if (name >= pp->afn) {
		size_t old = pp->afn;

		HS_ALLOC_GROW(pp->fn_of, name + 1, pp->afn);
		memset(pp->fn_of + old, 0, (pp->afn - old) * sizeof(*pp->fn_of));
	}
	if (!pp->fn_of[name]) {
		HS_ALLOC_GROW(pp->fn_name, pp->nfuncs + 1, pp->afn_name);
		pp->fn_name[pp->nfuncs] = name;
		pp->fn_of[name] = ++pp->nfuncs;
	}
	return pp->fn_of[name];
}

int hs_pprof_add_sample(struct hs_pprof *pp, uint64_t count, uint64_t bytes,
			const char *const *frames, size_t nframes)
{
	uint64_t idx[HS_PPROF_FRAMES_MAX];
	struct hs_pprof_sample *s;

	if (nframes == 0 || nframes > HS_PPROF_FRAMES_MAX || !frames)
		return -EINVAL;
	for (size_t i = 0; i < nframes; i++)
		if (!frames[i] || !frames[i][0])
			return -EINVAL;
	if (pp->nsamples >= HS_PPROF_SAMPLES_MAX ||
	    pp->nstrs + nframes > HS_PPROF_STRINGS_MAX)
		return -HS_E_BUDGET;
	for (size_t i = 0; i < nframes; i++)
		idx[i] = (uint64_t)intern(pp, frames[i]);
	HS_ALLOC_GROW(pp->locs, pp->nlocs + nframes, pp->alocs);
	HS_ALLOC_GROW(pp->samples, pp->nsamples + 1, pp->asamples);
	s = &pp->samples[pp->nsamples++];
	s->count = count;
	s->bytes = bytes;
	s->loc = pp->nlocs;
	s->nloc = nframes;
	for (size_t i = 0; i < nframes; i++)
		pp->locs[pp->nlocs++] = func_of(pp, idx[i]);
	return 0;
}

/* ---- items of a growth profile --------------------------------------- */

void hs_pprof_quote(struct hs_buf *out, const char *s, size_t stored, uint64_t len)
{
	size_t n = stored < HS_PPROF_TEXT_MAX ? stored : HS_PPROF_TEXT_MAX;

	hs_buf_addch(out, '"');
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\')
			hs_buf_addf(out, "\\%c", c);
		else if (c < 0x20 || c > 0x7e)
			hs_buf_addf(out, "\\x%02x", c);
		else
			hs_buf_addch(out, c);
	}
	hs_buf_addch(out, '"');
	if (len > n)
		hs_buf_addf(out, "... (%llu chars)", (unsigned long long)len);
}

static const struct hs_profile_arena *find_arena(const struct hs_profile *p, int idx)
{
	for (size_t i = 0; i < p->narenas; i++)
		if (p->arenas[i].idx == idx)
			return &p->arenas[i];
	return NULL;
}

static int add_chunks(struct hs_pprof *pp, const struct hs_profile *p)
{
	char size[40], arena[40];
	const char *frames[4];
	bool je = p->heap_allocator == HS_PROFILE_JEMALLOC;
	int ret;

	for (size_t i = 0; i < p->nchunks; i++) {
		const struct hs_profile_chunk *c = &p->chunks[i];
		const struct hs_profile_arena *a = find_arena(p, c->arena);

		if (!c->count && !c->bytes)
			continue;
		if (je) {
			/* jemalloc: regions of a size class, per arena, in its
			 * anonymous mappings */
			if (c->size)
				snprintf(size, sizeof(size), "region %llu", (unsigned long long)c->size);
			else
				snprintf(size, sizeof(size), "region (other sizes)");
			snprintf(arena, sizeof(arena), "arena %d", c->arena);
			frames[0] = size;
			frames[1] = arena;
			frames[2] = hs_class_name(HS_CLASS_ANON);
			frames[3] = "jemalloc";
			ret = hs_pprof_add_sample(pp, c->count, c->bytes, frames, 4);
			if (ret)
				return ret;
			continue;
		}
		if (c->size)
			snprintf(size, sizeof(size), "chunk 0x%llx", (unsigned long long)c->size);
		else
			snprintf(size, sizeof(size), "chunk (other sizes)");
		/* Where: the arena, then the region class its chunks live in
		 * (main_arena's in [heap], a thread arena's in its own heaps,
		 * mmapped chunks in anonymous mappings). */
		if (c->arena < 0) {
			snprintf(arena, sizeof(arena), "mmapped chunks");
			frames[2] = hs_class_name(HS_CLASS_ANON);
		} else if (a && a->is_main) {
			snprintf(arena, sizeof(arena), "main_arena");
			frames[2] = hs_class_name(HS_CLASS_HEAP);
		} else {
			snprintf(arena, sizeof(arena), "arena %d", c->arena);
			frames[2] = hs_class_name(HS_CLASS_ARENA);
		}
		frames[0] = size;
		frames[1] = arena;
		frames[3] = "glibc malloc";
		ret = hs_pprof_add_sample(pp, c->count, c->bytes, frames, 4);
		if (ret)
			return ret;
	}
	return 0;
}

static int add_strings(struct hs_pprof *pp, const struct hs_profile *p)
{
	struct hs_buf name = HS_BUF_INIT;
	const char *frames[2];
	int ret = 0;

	for (size_t i = 0; i < p->nstrings && !ret; i++) {
		const struct hs_profile_string *s = &p->strings[i];

		hs_buf_reset(&name);
		hs_pprof_quote(&name, s->s, s->stored, s->len);
		frames[0] = name.buf;
		frames[1] = "strings";
		ret = hs_pprof_add_sample(pp, s->count, s->bytes, frames, 2);
	}
	hs_buf_release(&name);
	return ret;
}

/* Objects by type: leaf "python dict" (kind and name), then "types". */
static int add_types(struct hs_pprof *pp, const struct hs_profile *p)
{
	struct hs_buf name = HS_BUF_INIT;
	const char *frames[2];
	int ret = 0;

	for (size_t i = 0; i < p->ntypes && !ret; i++) {
		const struct hs_profile_type *ty = &p->types[i];

		hs_buf_reset(&name);
		hs_buf_addf(&name, "%s %s", ty->kind, ty->name);
		frames[0] = name.buf;
		frames[1] = "types";
		ret = hs_pprof_add_sample(pp, ty->count, ty->bytes, frames, 2);
	}
	hs_buf_release(&name);
	return ret;
}

int hs_pprof_add_profile(struct hs_pprof *pp, const struct hs_profile *p)
{
	struct hs_buf c = HS_BUF_INIT;
	int ret;

	hs_pprof_set_time(pp, p->time_ns, p->build_ns);
	if (p->pid > 0)
		hs_pprof_add_label_num(pp, "pid", p->pid);
	if (p->exe && p->exe[0]) {
		hs_pprof_add_label_str(pp, "exe", p->exe);
		hs_pprof_set_main_binary(pp, p->exe);
	}
	hs_buf_addf(&c, "heapscan %s: %s", p->heapscan_version, p->source);
	hs_pprof_add_comment(pp, c.buf);
	if (p->heap_error && p->heap_error[0]) {
		hs_buf_reset(&c);
		hs_buf_addf(&c, "malloc heap not walked: %s", p->heap_error);
		hs_pprof_add_comment(pp, c.buf);
	}
	hs_buf_release(&c);
	ret = add_chunks(pp, p);
	if (!ret)
		ret = add_strings(pp, p);
	if (!ret)
		ret = add_types(pp, p);
	return ret;
}

/* ---- encoding ---------------------------------------------------------- */

static void put_varint(struct hs_buf *b, uint64_t v)
{
	unsigned char tmp[10];
	size_t n = 0;

	do {
		tmp[n] = (unsigned char)(v & 0x7f);
		v >>= 7;
		if (v)
			tmp[n] |= 0x80;
		n++;
	} while (v);
	hs_buf_add(b, tmp, n);
}

static void put_key(struct hs_buf *b, unsigned field, unsigned wt)
{
	put_varint(b, (uint64_t)field << 3 | wt);
}

/* A varint field; proto3 leaves zero values out. */
static void put_uint(struct hs_buf *b, unsigned field, uint64_t v)
{
	if (!v)
		return;
	put_key(b, field, WT_VARINT);
	put_varint(b, v);
}

static void put_bytes(struct hs_buf *b, unsigned field, const void *p, size_t n)
{
	put_key(b, field, WT_LEN);
	put_varint(b, n);
	hs_buf_add(b, p, n);
}

/* Nested messages: encoded into a scratch buffer, then added with their
 * length (the wire format puts the length first). */
static void put_msg(struct hs_buf *b, unsigned field, struct hs_buf *msg)
{
	put_bytes(b, field, msg->buf, msg->len);
	hs_buf_reset(msg);
}

static int64_t clamp(uint64_t v)
{
	return v > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)v;
}

static void put_value_type(struct hs_buf *b, unsigned field, struct hs_buf *m,
			   uint64_t type, uint64_t unit)
{
	put_uint(m, VALUE_TYPE_TYPE, type);
	put_uint(m, VALUE_TYPE_UNIT, unit);
	put_msg(b, field, m);
}

int hs_pprof_encode(const struct hs_pprof *pp, struct hs_buf *out)
{
	struct hs_buf m = HS_BUF_INIT, sub = HS_BUF_INIT, packed = HS_BUF_INIT;

	put_value_type(out, PROFILE_SAMPLE_TYPE, &m, STR_INUSE_OBJECTS, STR_COUNT);
	put_value_type(out, PROFILE_SAMPLE_TYPE, &m, STR_INUSE_SPACE, STR_BYTES);
	for (size_t i = 0; i < pp->nsamples; i++) {
		const struct hs_pprof_sample *s = &pp->samples[i];

		/* repeated scalars, packed (proto3's default) */
		for (size_t k = 0; k < s->nloc; k++)
			put_varint(&packed, pp->locs[s->loc + k]);
		put_bytes(&m, SAMPLE_LOCATION_ID, packed.buf, packed.len);
		hs_buf_reset(&packed);
		put_varint(&packed, (uint64_t)clamp(s->count));
		put_varint(&packed, (uint64_t)clamp(s->bytes));
		put_bytes(&m, SAMPLE_VALUE, packed.buf, packed.len);
		hs_buf_reset(&packed);
		for (size_t k = 0; k < pp->nlabels; k++) {
			const struct hs_pprof_label *l = &pp->labels[k];

			put_uint(&sub, LABEL_KEY, l->key);
			if (l->str) {
				put_uint(&sub, LABEL_STR, l->str);
			} else {
				/* a zero num is still a value: write it */
				put_key(&sub, LABEL_NUM, WT_VARINT);
				put_varint(&sub, (uint64_t)l->num);
			}
			put_msg(&m, SAMPLE_LABEL, &sub);
		}
		put_msg(out, PROFILE_SAMPLE, &m);
	}
	put_uint(&m, MAPPING_ID, 1);
	put_uint(&m, MAPPING_FILENAME, pp->main_binary);
	put_uint(&m, MAPPING_HAS_FUNCTIONS, 1);
	put_msg(out, PROFILE_MAPPING, &m);
	/* One location per function, same id: a frame is its name. */
	for (uint64_t id = 1; id <= pp->nfuncs; id++) {
		put_uint(&m, LOCATION_ID, id);
		put_uint(&m, LOCATION_MAPPING_ID, 1);
		put_uint(&sub, LINE_FUNCTION_ID, id);
		put_msg(&m, LOCATION_LINE, &sub);
		put_msg(out, PROFILE_LOCATION, &m);
	}
	for (uint64_t id = 1; id <= pp->nfuncs; id++) {
		put_uint(&m, FUNCTION_ID, id);
		put_uint(&m, FUNCTION_NAME, pp->fn_name[id - 1]);
		put_uint(&m, FUNCTION_SYSTEM_NAME, pp->fn_name[id - 1]);
		put_msg(out, PROFILE_FUNCTION, &m);
	}
	for (size_t i = 0; i < pp->nstrs; i++)
		put_bytes(out, PROFILE_STRING_TABLE, pp->strs[i], strlen(pp->strs[i]));
	put_uint(out, PROFILE_TIME_NANOS, (uint64_t)clamp(pp->time_ns));
	put_uint(out, PROFILE_DURATION_NANOS, (uint64_t)clamp(pp->duration_ns));
	put_value_type(out, PROFILE_PERIOD_TYPE, &m, STR_SPACE, STR_BYTES);
	put_uint(out, PROFILE_PERIOD, 1);
	for (size_t i = 0; i < pp->ncomments; i++)
		put_varint(&packed, pp->comments[i]);
	if (packed.len)
		put_bytes(out, PROFILE_COMMENT, packed.buf, packed.len);
	hs_buf_release(&packed);
	hs_buf_release(&sub);
	hs_buf_release(&m);
	return 0;
}
