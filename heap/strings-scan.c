/*
 * The printable-run scanner (a pure function over buffers) and the input
 * ranges of the string analysis.  See hs_strings.h.
 */
#include "hs_heap.h"

#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* strings(1)'s printable set: graphic ASCII, space and tab. */
static const unsigned char printable[256] = {
	['\t'] = 1,
	[0x20 ... 0x7e] = 1,
};

/*
 * First byte in [q, end) whose printability is `want`, or end.  SSE2 (part
 * of x86-64) tests 16 bytes at a time: after adding 0x60, the range
 * 0x20..0x7e becomes 0x80..0xde, i.e. the signed bytes below -33.
 */
static inline const unsigned char *find_class(const unsigned char *q,
					      const unsigned char *end, bool want)
{
#ifdef __SSE2__
	const __m128i bias = _mm_set1_epi8(0x60);
	const __m128i lim = _mm_set1_epi8((char)0xdf);
	const __m128i tab = _mm_set1_epi8('\t');

	while (end - q >= 16) {
		__m128i x = _mm_loadu_si128((const __m128i *)q);
		__m128i pr = _mm_or_si128(_mm_cmplt_epi8(_mm_add_epi8(x, bias), lim),
					  _mm_cmpeq_epi8(x, tab));
		unsigned m = (unsigned)_mm_movemask_epi8(pr);

		if (!want)
			m = ~m & 0xffffu;
		if (m)
			return q + __builtin_ctz(m);
		q += 16;
	}
#endif
	while (q < end && (bool)printable[*q] != want)
		q++;
	return q;
}

const char *hs_str_encoding_name(enum hs_str_encoding e)
{
	return e == HS_STR_UTF16LE ? "utf16le" : "ascii";
}

int hs_str_encoding_parse(const char *s)
{
	if (!strcmp(s, "ascii"))
		return HS_STR_ASCII;
	if (!strcmp(s, "utf16le") || !strcmp(s, "utf-16le"))
		return HS_STR_UTF16LE;
	return -1;
}

void hs_str_scanner_init(struct hs_str_scanner *sc, enum hs_str_encoding enc,
			 unsigned min_len, unsigned max_len,
			 hs_str_emit_fn emit, void *ud)
{
	memset(sc, 0, sizeof(*sc));
	if (min_len < 1)
		min_len = 1;
	if (max_len < min_len)
		max_len = min_len;
	sc->enc = enc;
	sc->min_len = min_len;
	sc->max_len = max_len;
	sc->emit = emit;
	sc->ud = ud;
	sc->carry = hs_xmalloc(max_len);
}

void hs_str_scanner_release(struct hs_str_scanner *sc)
{
	free(sc->carry);
	sc->carry = NULL;
}

static void finish_run(struct hs_str_scanner *sc)
{
	if (sc->run_len >= sc->min_len)
		sc->emit(sc->ud, sc->run_addr, sc->carry, sc->carry_len, sc->run_len);
	sc->run_len = 0;
	sc->carry_len = 0;
}

void hs_str_scan_end(struct hs_str_scanner *sc)
{
	finish_run(sc);
	sc->have_next = false;
	sc->have_odd = false;
	sc->skip = false;
}

bool hs_str_scan_in_run(const struct hs_str_scanner *sc)
{
	return sc->run_len > 0;
}

static void carry_add(struct hs_str_scanner *sc, const unsigned char *s, size_t n)
{
	size_t room = sc->max_len - sc->carry_len;

	if (n > room)
		n = room;
	memcpy(sc->carry + sc->carry_len, s, n);
	sc->carry_len += n;
}

static void scan_ascii(struct hs_str_scanner *sc, hs_addr_t addr,
		       const unsigned char *p, size_t len)
{
	const unsigned char *q = p, *end = p + len;

	if (sc->skip) {
		q = find_class(q, end, false);
		if (q == end)
			return;
		sc->skip = false;
	}
	if (sc->run_len) {
		const unsigned char *s = q;

		q = find_class(q, end, false);
		carry_add(sc, s, (size_t)(q - s));
		sc->run_len += (uint64_t)(q - s);
		if (q == end)
			return;
		finish_run(sc);
	}
	/* Runs inside the piece are emitted straight from the buffer; only
	 * the one still open at its end is copied to the carry. */
	while (q < end) {
		const unsigned char *s;
		size_t n;

		q = find_class(q, end, true);
		if (q == end)
			break;
		s = q;
		q = find_class(q, end, false);
		n = (size_t)(q - s);
		if (q == end) {
			sc->run_addr = addr + (hs_addr_t)(s - p);
			sc->run_len = n;
			sc->carry_len = 0;
			carry_add(sc, s, n);
			break;
		}
		if (n >= sc->min_len)
			sc->emit(sc->ud, addr + (hs_addr_t)(s - p), (const char *)s,
				 n < sc->max_len ? n : sc->max_len, n);
	}
}

static void u16_unit(struct hs_str_scanner *sc, hs_addr_t a, unsigned char lo,
		     unsigned char hi)
{
	if (hi == 0 && printable[lo]) {
		if (sc->skip)
			return;
		if (!sc->run_len) {
			sc->run_addr = a;
			sc->carry_len = 0;
		}
		if (sc->carry_len < sc->max_len)
			sc->carry[sc->carry_len++] = (char)lo;
		sc->run_len++;
		return;
	}
	sc->skip = false;
	if (sc->run_len)
		finish_run(sc);
}

static void scan_utf16(struct hs_str_scanner *sc, hs_addr_t addr,
		       const unsigned char *p, size_t len)
{
	size_t i = 0;

	/* Units sit at even addresses; a piece may start or end mid-unit. */
	if (addr & 1) {
		if (sc->have_odd)
			u16_unit(sc, addr - 1, sc->odd, p[0]);
		i = 1;
	}
	sc->have_odd = false;
	for (; i + 1 < len; i += 2)
		u16_unit(sc, addr + i, p[i], p[i + 1]);
	if (i < len) {
		sc->have_odd = true;
		sc->odd = p[i];
	}
}

void hs_str_scan(struct hs_str_scanner *sc, hs_addr_t addr, const void *buf,
		 size_t len)
{
	if (len == 0)
		return;
	if (sc->have_next && addr != sc->next) {
		/* A gap: the run open before it has ended. */
		finish_run(sc);
		sc->have_odd = false;
		sc->skip = false;
	}
	if (sc->enc == HS_STR_UTF16LE)
		scan_utf16(sc, addr, buf, len);
	else
		scan_ascii(sc, addr, buf, len);
	sc->have_next = true;
	sc->next = addr + len;
}

/* ---- ranges ---- */

void hs_str_ranges_release(struct hs_str_ranges *r)
{
	free(r->v);
	memset(r, 0, sizeof(*r));
}

void hs_str_ranges_add(struct hs_str_ranges *r, hs_addr_t start, hs_addr_t end,
		       enum hs_class cls)
{
	if (end <= start)
		return;
	HS_ALLOC_GROW(r->v, r->n + 1, r->alloc);
	r->v[r->n++] = (struct hs_str_range){ start, end, cls };
}

void hs_str_ranges_from_maps(struct hs_str_ranges *r, const struct hs_maps *maps,
			     unsigned class_mask)
{
	for (size_t i = 0; i < maps->n; i++) {
		const struct hs_map *m = &maps->v[i];

		if (!(m->perms & HS_PERM_R) || (unsigned)m->cls >= HS_CLASS_N ||
		    !(class_mask & (1u << m->cls)))
			continue;
		hs_str_ranges_add(r, m->start, m->end, m->cls);
	}
}
