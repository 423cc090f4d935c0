/* Errors, allocation, hs_buf, logging and small helpers of hs_core. */
#include "hs_core.h"

#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

volatile int hs_interrupted;

static const char *const hs_domain_msgs[] = {
#define HS_X_(n, m) m,
	HS_ERRORS(HS_X_)
#undef HS_X_
};

const char *hs_strerror(int err)
{
	if (err < 0)
		err = -err;
	if (err == 0)
		return "success";
	if (err > HS_E_FIRST_ && err < HS_E_LAST_)
		return hs_domain_msgs[err - HS_E_FIRST_ - 1];
	if (err < HS_E_BASE)
		return strerror(err);
	return "unknown error";
}

uint64_t hs_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *oom(size_t n)
{
	/* Nothing else can be done: the budget should have prevented this. */
	char msg[96];
	int len = snprintf(msg, sizeof(msg),
			   "heapscan: fatal: out of memory allocating %zu bytes\n", n);
	if (len > 0 && write(2, msg, (size_t)len) < 0)
		abort();
	abort();
}

void *hs_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	return p ? p : oom(n);
}

void *hs_xcalloc(size_t nmemb, size_t size)
{
	void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
	return p ? p : oom(nmemb * size);
}

void *hs_xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	return q ? q : oom(n);
}

char *hs_xstrdup(const char *s)
{
	return hs_xstrndup(s, strlen(s));
}

char *hs_xstrndup(const char *s, size_t n)
{
	char *p = hs_xmalloc(n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

/* ---- hs_buf ---- */

char hs_buf_empty_[1];

void hs_buf_init(struct hs_buf *sb)
{
	sb->alloc = sb->len = 0;
	sb->buf = hs_buf_empty_;
}

void hs_buf_release(struct hs_buf *sb)
{
	if (sb->alloc)
		free(sb->buf);
	hs_buf_init(sb);
}

char *hs_buf_detach(struct hs_buf *sb, size_t *len)
{
	char *res;

	hs_buf_grow(sb, 0);
	res = sb->buf;
	if (len)
		*len = sb->len;
	hs_buf_init(sb);
	return res;
}

void hs_buf_grow(struct hs_buf *sb, size_t extra)
{
	size_t want = sb->len + extra + 1;

	if (want < sb->len)
		oom(SIZE_MAX);
	if (!sb->alloc) {
		size_t n = want < 64 ? 64 : want;
		sb->buf = hs_xmalloc(n);
		sb->buf[0] = '\0';
		sb->alloc = n;
		return;
	}
	HS_ALLOC_GROW(sb->buf, want, sb->alloc);
}

void hs_buf_reset(struct hs_buf *sb)
{
	sb->len = 0;
	if (sb->alloc)
		sb->buf[0] = '\0';
}

void hs_buf_add(struct hs_buf *sb, const void *data, size_t len)
{
	hs_buf_grow(sb, len);
	memcpy(sb->buf + sb->len, data, len);
	sb->len += len;
	sb->buf[sb->len] = '\0';
}

void hs_buf_adds(struct hs_buf *sb, const char *s)
{
	hs_buf_add(sb, s, strlen(s));
}

void hs_buf_addch(struct hs_buf *sb, int c)
{
	char ch = (char)c;

	hs_buf_add(sb, &ch, 1);
}

void hs_buf_vaddf(struct hs_buf *sb, const char *fmt, va_list ap)
{
	va_list cp;
	int n;

	hs_buf_grow(sb, 64);
	va_copy(cp, ap);
	n = vsnprintf(sb->buf + sb->len, sb->alloc - sb->len, fmt, cp);
	va_end(cp);
	if (n < 0)
		return;
	if ((size_t)n >= sb->alloc - sb->len) {
		hs_buf_grow(sb, (size_t)n);
		n = vsnprintf(sb->buf + sb->len, sb->alloc - sb->len, fmt, ap);
	}
	sb->len += (size_t)n;
}

void hs_buf_addf(struct hs_buf *sb, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	hs_buf_vaddf(sb, fmt, ap);
	va_end(ap);
}

int hs_buf_read_file(struct hs_buf *sb, const char *path)
{
	char tmp[8192];
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	for (;;) {
		ssize_t n = read(fd, tmp, sizeof(tmp));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			n = -errno;
			close(fd);
			return (int)n;
		}
		if (n == 0)
			break;
		hs_buf_add(sb, tmp, (size_t)n);
	}
	close(fd);
	return 0;
}

/* ---- logging ---- */

static hs_log_fn log_fn;
static void *log_ud;

void hs_log_set(hs_log_fn fn, void *ud)
{
	log_fn = fn;
	log_ud = ud;
}

void hs_log(enum hs_log_level lvl, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (!log_fn)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_fn(lvl, msg, log_ud);
}

const char *hs_fmt_bytes(char *out, size_t outsz, uint64_t n)
{
	static const char units[] = "BKMGTPE";
	double v = (double)n;
	int u = 0;

	while (v >= 1024.0 && u < 6) {
		v /= 1024.0;
		u++;
	}
	if (u == 0)
		snprintf(out, outsz, "%" PRIu64 "B", n);
	else if (v < 10.0)
		snprintf(out, outsz, "%.1f%c", v, units[u]);
	else
		snprintf(out, outsz, "%.0f%c", v, units[u]);
	return out;
}
