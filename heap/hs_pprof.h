/*
 * pprof profiles: heapscan's items as a memory profile that `go tool
 * pprof`, Pyroscope and Parca read (doc/pprof.md).
 *
 * A struct hs_pprof collects samples.  Each sample is one item (a string,
 * the in-use chunks of one size in one arena, later a Python type or a
 * leak group) with two values, as Go's heap profiles name them:
 * inuse_objects (count) and inuse_space (bytes).  Its "stack" is a list
 * of frame names, leaf first: the leaf names the item ("\"text\"",
 * "chunk 0x60"), the frames above it say where the item lives ("main_arena",
 * "heap", "glibc malloc").  pprof tools draw those as a call tree and
 * compare them across profiles by name, so names must be stable across
 * processes (no addresses).  Labels given with hs_pprof_add_label_*()
 * are put on every sample (pid, comm, exe).
 *
 * hs_pprof_encode() writes the profile.proto message (uncompressed;
 * profiles on disk are gzip-compressed, which the caller does).  The
 * encoder is heapscan's own: a Profile needs ten fields of five message
 * types, each a varint or a length-delimited field (doc/pprof.md lists
 * the field numbers).
 *
 * This layer sees only hs_core.h and hs_growth.h: it formats, it neither
 * compresses nor writes files.
 */
#ifndef HS_PPROF_H
#define HS_PPROF_H

#include "hs_core.h"

struct hs_profile;

/* Bounds: a profile holds at most this many samples / distinct names. */
#define HS_PPROF_SAMPLES_MAX (4u << 20)
#define HS_PPROF_STRINGS_MAX (4u << 20)
#define HS_PPROF_FRAMES_MAX 64
/* Longest string item shown in a frame name (characters of the text). */
#define HS_PPROF_TEXT_MAX 200

struct hs_pprof_sample {
	uint64_t count, bytes;
	size_t loc;              /* first index into hs_pprof.locs */
	size_t nloc;
};

struct hs_pprof_label {
	uint64_t key;            /* string table index */
	uint64_t str;            /* string table index, 0 for a number */
	int64_t num;
};

/* All fields are private to pprof.c; init before use, release after. */
struct hs_pprof {
	char **strs;             /* string table; strs[0] is "" */
	size_t nstrs, astrs;
	uint32_t *slots;         /* hash of strs: index + 1, 0 empty */
	size_t nslots;
	uint64_t *fn_of;         /* per string: function/location id, or 0 */
	size_t afn;
	uint64_t nfuncs;         /* functions (= locations) made so far */
	uint64_t *fn_name;       /* per function id - 1: its name's index */
	size_t afn_name;
	struct hs_pprof_sample *samples;
	size_t nsamples, asamples;
	uint64_t *locs;          /* location ids of all samples, leaf first */
	size_t nlocs, alocs;
	struct hs_pprof_label *labels;
	size_t nlabels, alabels;
	uint64_t *comments;      /* string table indexes */
	size_t ncomments, acomments;
	uint64_t time_ns, duration_ns;
	uint64_t main_binary;    /* string index of the mapping's file name */
};

void hs_pprof_init(struct hs_pprof *pp);
void hs_pprof_release(struct hs_pprof *pp);

/* When the picture was taken (CLOCK_REALTIME ns) and how long it took. */
void hs_pprof_set_time(struct hs_pprof *pp, uint64_t time_ns, uint64_t duration_ns);
/*
 * The file name of the profile's one mapping (the process's executable;
 * default "[heapscan]").  Every location belongs to it, and it says its
 * functions are known, so pprof tools show the name and never try to
 * symbolize frames from the binary.
 */
void hs_pprof_set_main_binary(struct hs_pprof *pp, const char *path);
/* A free-text line of the profile (`go tool pprof -comments`). */
void hs_pprof_add_comment(struct hs_pprof *pp, const char *text);
/* A label on every sample: key=val (string) or key=num. */
void hs_pprof_add_label_str(struct hs_pprof *pp, const char *key, const char *val);
void hs_pprof_add_label_num(struct hs_pprof *pp, const char *key, int64_t num);

/*
 * Adds one item: count objects holding bytes bytes.  frames[0] is the
 * leaf (the item's name), frames[nframes - 1] the root; each a
 * NUL-terminated name (copied).  Values above INT64_MAX are clamped.
 * Returns 0, -EINVAL (nframes 0 or above HS_PPROF_FRAMES_MAX, a NULL or
 * empty name) or -HS_E_BUDGET (beyond HS_PPROF_SAMPLES_MAX samples or
 * HS_PPROF_STRINGS_MAX names; nothing was added).
 */
int hs_pprof_add_sample(struct hs_pprof *pp, uint64_t count, uint64_t bytes,
			const char *const *frames, size_t nframes) HS_MUST_CHECK;

/*
 * Appends to out the frame name of a string item: the text in double
 * quotes, '"' and '\' backslash-escaped, bytes outside 0x20..0x7e as
 * \xHH, cut after HS_PPROF_TEXT_MAX characters with `..." (N chars)`
 * when the text was longer (len: its real length).
 */
void hs_pprof_quote(struct hs_buf *out, const char *s, size_t stored, uint64_t len);

/*
 * Adds a growth profile's items: each kept string (frames: the quoted
 * text, "strings") and each in-use chunk size per arena ("chunk 0x60",
 * "main_arena" | "arena N" | "mmapped chunks", the region class "heap" |
 * "arena" | "anon", "glibc malloc"); labels pid and exe (when known);
 * time, and build time as duration.  Strings overlap the chunks that
 * hold them: the roots "strings" and "glibc malloc" are two views of the
 * same memory.  Returns 0 or an error of hs_pprof_add_sample().
 */
int hs_pprof_add_profile(struct hs_pprof *pp, const struct hs_profile *p) HS_MUST_CHECK;

/*
 * Appends the Profile message (uncompressed protobuf) to out: sample
 * types inuse_objects/count and inuse_space/bytes, period type
 * space/bytes, one mapping, one function and one location per distinct
 * frame name.
 * Returns 0.
 */
int hs_pprof_encode(const struct hs_pprof *pp, struct hs_buf *out) HS_MUST_CHECK;

#endif
