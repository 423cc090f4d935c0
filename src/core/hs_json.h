/*
 * A streaming JSON writer: values go straight to a FILE *, commas and
 * indentation are handled here, strings are escaped (bytes >= 0x80 that do
 * not form valid UTF-8 are written as \u00XX so the output always parses).
 *
 * Usage:
 *	struct hs_json j;
 *	hs_json_init(&j, stdout, true);
 *	hs_json_obj_begin(&j, NULL);
 *	hs_json_u64(&j, "schema_version", 1);
 *	hs_json_arr_begin(&j, "regions");  ...  hs_json_arr_end(&j);
 *	hs_json_obj_end(&j);
 *	hs_json_finish(&j);
 *
 * Inside an object every value takes a key; inside an array key is NULL.
 */
#ifndef HS_JSON_H
#define HS_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define HS_JSON_MAX_DEPTH 32

struct hs_json {
	FILE *out;
	bool pretty;
	int depth;
	bool first[HS_JSON_MAX_DEPTH]; /* nothing written yet at this depth */
};

void hs_json_init(struct hs_json *j, FILE *out, bool pretty);
void hs_json_obj_begin(struct hs_json *j, const char *key);
void hs_json_obj_end(struct hs_json *j);
void hs_json_arr_begin(struct hs_json *j, const char *key);
void hs_json_arr_end(struct hs_json *j);
void hs_json_str(struct hs_json *j, const char *key, const char *s);
/* A byte string of known length (may hold NULs). */
void hs_json_strn(struct hs_json *j, const char *key, const char *s, size_t n);
void hs_json_u64(struct hs_json *j, const char *key, uint64_t v);
void hs_json_i64(struct hs_json *j, const char *key, int64_t v);
void hs_json_double(struct hs_json *j, const char *key, double v);
void hs_json_bool(struct hs_json *j, const char *key, bool v);
void hs_json_null(struct hs_json *j, const char *key);
/* An address as a "0x..." string (JSON numbers lose precision above 2^53). */
void hs_json_addr(struct hs_json *j, const char *key, uint64_t addr);
/* Ends the document with a newline. */
void hs_json_finish(struct hs_json *j);

#endif
