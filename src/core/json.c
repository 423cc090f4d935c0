/* Streaming JSON writer; see hs_json.h. */
#include "hs_json.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

void hs_json_init(struct hs_json *j, FILE *out, bool pretty)
{
	memset(j, 0, sizeof(*j));
	j->out = out;
	j->pretty = pretty;
	j->first[0] = true;
}

static void indent(struct hs_json *j)
{
	if (!j->pretty)
		return;
	fputc('\n', j->out);
	for (int i = 0; i < j->depth; i++)
		fputs("  ", j->out);
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t len;
	uint32_t cp;

	if (s[0] < 0xc2 || s[0] > 0xf4)
		return 0;
	len = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : 2;
	if (len > n)
		return 0;
	cp = s[0] & (0x7f >> len);
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

static void put_string(FILE *out, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;

	fputc('"', out);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = p[i];
		size_t ul;

		switch (c) {
		case '"': fputs("\\\"", out); continue;
		case '\\': fputs("\\\\", out); continue;
		case '\n': fputs("\\n", out); continue;
		case '\r': fputs("\\r", out); continue;
		case '\t': fputs("\\t", out); continue;
		default: break;
		}
		if (c < 0x20 || c == 0x7f) {
			fprintf(out, "\\u%04x", c);
		} else if (c < 0x80) {
			fputc(c, out);
		} else if ((ul = utf8_len(p + i, n - i)) != 0) {
			fwrite(p + i, 1, ul, out);
			i += ul - 1;
		} else {
			/* A raw byte: keep it visible and the document valid. */
			fprintf(out, "\\u%04x", c);
		}
	}
	fputc('"', out);
}

static void prefix(struct hs_json *j, const char *key)
{
	if (!j->first[j->depth])
		fputc(',', j->out);
	j->first[j->depth] = false;
	if (j->depth > 0)
		indent(j);
	if (key) {
		put_string(j->out, key, strlen(key));
		fputs(j->pretty ? ": " : ":", j->out);
	}
}

static void open_(struct hs_json *j, const char *key, char c)
{
	prefix(j, key);
	fputc(c, j->out);
	if (j->depth + 1 < HS_JSON_MAX_DEPTH)
		j->depth++;
	j->first[j->depth] = true;
}

static void close_(struct hs_json *j, char c)
{
	bool empty = j->first[j->depth];

	if (j->depth > 0)
		j->depth--;
	if (!empty)
		indent(j);
	fputc(c, j->out);
}

void hs_json_obj_begin(struct hs_json *j, const char *key) { open_(j, key, '{'); }
void hs_json_obj_end(struct hs_json *j) { close_(j, '}'); }
void hs_json_arr_begin(struct hs_json *j, const char *key) { open_(j, key, '['); }
void hs_json_arr_end(struct hs_json *j) { close_(j, ']'); }

void hs_json_strn(struct hs_json *j, const char *key, const char *s, size_t n)
{
	prefix(j, key);
	put_string(j->out, s, n);
}

void hs_json_str(struct hs_json *j, const char *key, const char *s)
{
	if (!s) {
		hs_json_null(j, key);
		return;
	}
	hs_json_strn(j, key, s, strlen(s));
}

void hs_json_u64(struct hs_json *j, const char *key, uint64_t v)
{
	prefix(j, key);
	fprintf(j->out, "%" PRIu64, v);
}

void hs_json_i64(struct hs_json *j, const char *key, int64_t v)
{
	prefix(j, key);
	fprintf(j->out, "%" PRId64, v);
}

void hs_json_double(struct hs_json *j, const char *key, double v)
{
	prefix(j, key);
	if (isfinite(v))
		fprintf(j->out, "%.6g", v);
	else
		fputs("null", j->out);
}

void hs_json_bool(struct hs_json *j, const char *key, bool v)
{
	prefix(j, key);
	fputs(v ? "true" : "false", j->out);
}

void hs_json_null(struct hs_json *j, const char *key)
{
	prefix(j, key);
	fputs("null", j->out);
}

void hs_json_addr(struct hs_json *j, const char *key, uint64_t addr)
{
	char tmp[24];

	snprintf(tmp, sizeof(tmp), "0x%" PRIx64, addr);
	hs_json_str(j, key, tmp);
}

void hs_json_finish(struct hs_json *j)
{
	fputc('\n', j->out);
	fflush(j->out);
}
