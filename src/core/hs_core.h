/*
 * hs_core: the pieces every heapscan layer shares.
 *
 *   - errors: 0 or a negative code; -errno for OS failures, -HS_E_* (>= 4096)
 *     for domain failures; hs_strerror() names both;
 *   - hs_buf: a growable string (git's strbuf);
 *   - logging through an injectable callback (libraries never print);
 *   - a streaming JSON writer;
 *   - the target interface (hs_target.h) and the region classifier.
 *
 * This layer knows nothing of ptrace, libelf or glibc's malloc.
 */
#ifndef HS_CORE_H
#define HS_CORE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define HS_MUST_CHECK __attribute__((warn_unused_result))
#define HS_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define HS_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* HS_VERSION ("0.1.0") comes from project(VERSION) in CMakeLists.txt. */
#ifndef HS_VERSION
#error "HS_VERSION is defined by the build (CMakeLists.txt)"
#endif

/* ---- errors ---------------------------------------------------------- */

#define HS_E_BASE 4096
/* name, message */
#define HS_ERRORS(X)                                                        \
	X(CORRUPT, "target metadata is corrupt")                                \
	X(UNSUPPORTED, "unsupported target layout")                             \
	X(NOT_CORE, "not an ELF core file")                                     \
	X(TRUNCATED, "file is truncated")                                       \
	X(KTHREAD, "process is a kernel thread (it has no user memory)")        \
	X(ZOMBIE, "process has exited (a zombie: no memory left)")              \
	X(SELF, "heapscan cannot inspect itself")                               \
	X(TRACED, "process is already traced by another tracer")                \
	X(INTERRUPTED, "interrupted by a signal")                               \
	X(BUDGET, "memory budget exceeded")                                     \
	X(NOT_FOUND, "not found")                                               \
	X(FORMAT, "unrecognised file format")                                   \
	X(VERSION, "unsupported file version")                                  \
	X(NOT_REGULAR, "not a regular file")

enum hs_error {
	HS_E_FIRST_ = HS_E_BASE - 1,
#define HS_X_(n, m) HS_E_##n,
	HS_ERRORS(HS_X_)
#undef HS_X_
	HS_E_LAST_
};

/* Message for a code as returned by any hs_ function (negative or not).
 * Returns a static string. */
const char *hs_strerror(int err);

/* Process-wide flag set by the CLI's SIGINT/SIGTERM handler; long loops in
 * every layer poll it and return -HS_E_INTERRUPTED. */
extern volatile int hs_interrupted;

/* Monotonic clock in nanoseconds. */
uint64_t hs_now_ns(void);

/* ---- memory ---------------------------------------------------------- */

/* Allocation that cannot fail: on exhaustion it calls abort() after a
 * message, like git's xmalloc.  heapscan bounds its own memory by budget,
 * so running out is a bug, not an input condition. */
void *hs_xmalloc(size_t n);
void *hs_xcalloc(size_t nmemb, size_t size);
void *hs_xrealloc(void *p, size_t n);
char *hs_xstrdup(const char *s);
char *hs_xstrndup(const char *s, size_t n);

/* Grow *p (an array of *alloc elements of size elt) to hold at least want. */
#define HS_ALLOC_GROW(p, want, alloc)                                       \
	do {                                                                    \
		if ((want) > (alloc)) {                                             \
			size_t hs_n_ = (alloc) ? (alloc) * 2 : 16;                      \
			while (hs_n_ < (want))                                          \
				hs_n_ *= 2;                                                 \
			(p) = hs_xrealloc((p), hs_n_ * sizeof(*(p)));                   \
			(alloc) = hs_n_;                                                \
		}                                                                   \
	} while (0)

/* ---- hs_buf ---------------------------------------------------------- */

/*
 * Invariants (as git's strbuf): buf is never NULL and always NUL-terminated
 * at buf[len]; alloc == 0 means buf points at a static empty string.
 */
struct hs_buf {
	size_t alloc;
	size_t len;
	char *buf;
};
extern char hs_buf_empty_[];
#define HS_BUF_INIT { 0, 0, hs_buf_empty_ }

void hs_buf_init(struct hs_buf *sb);
void hs_buf_release(struct hs_buf *sb);
/* Returns the string, now owned by the caller; sb is reset to empty. */
char *hs_buf_detach(struct hs_buf *sb, size_t *len);
void hs_buf_grow(struct hs_buf *sb, size_t extra);
void hs_buf_reset(struct hs_buf *sb);
void hs_buf_add(struct hs_buf *sb, const void *data, size_t len);
void hs_buf_adds(struct hs_buf *sb, const char *s);
void hs_buf_addch(struct hs_buf *sb, int c);
void hs_buf_addf(struct hs_buf *sb, const char *fmt, ...) HS_PRINTF(2, 3);
void hs_buf_vaddf(struct hs_buf *sb, const char *fmt, va_list ap);
/* Reads a whole (small) file such as /proc/PID/cmdline; -errno on failure. */
int hs_buf_read_file(struct hs_buf *sb, const char *path) HS_MUST_CHECK;

/* ---- logging --------------------------------------------------------- */

enum hs_log_level { HS_LOG_ERROR, HS_LOG_WARN, HS_LOG_INFO, HS_LOG_DEBUG };
typedef void (*hs_log_fn)(enum hs_log_level, const char *msg, void *ud);
/* fn may be NULL (drop every message, the default). */
void hs_log_set(hs_log_fn fn, void *ud);
void hs_log(enum hs_log_level lvl, const char *fmt, ...) HS_PRINTF(2, 3);

/* ---- numbers for humans ---------------------------------------------- */

/* Formats n bytes as "1.5G", "320K", "12B" into out (at least 16 bytes). */
const char *hs_fmt_bytes(char *out, size_t outsz, uint64_t n);

#include "hs_json.h"
#include "hs_target.h"

#endif
