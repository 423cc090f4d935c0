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

/*
 * Printability of the 64 bytes at q as a bit mask (bit i: q[i]).  SSE2
 * (part of x86-64) classifies 16 bytes per instruction; see find_class.
 */
static inline uint64_t mask64(const unsigned char *q)
{
#ifdef __SSE2__
	const __m128i bias = _mm_set1_epi8(0x60);
	const __m128i lim = _mm_set1_epi8((char)0xdf);
	const __m128i tab = _mm_set1_epi8('\t');
	uint64_t m = 0;

	for (int k = 0; k < 4; k++) {
		__m128i x = _mm_loadu_si128((const __m128i *)(q + 16 * k));
		__m128i pr = _mm_or_si128(_mm_cmplt_epi8(_mm_add_epi8(x, bias), lim),
					  _mm_cmpeq_epi8(x, tab));

		m |= (uint64_t)(unsigned)_mm_movemask_epi8(pr) << (16 * k);
	}
	return m;
#else
	uint64_t m = 0;

	for (int k = 0; k < 64; k++)
		m |= (uint64_t)printable[q[k]] << k;
	return m;
#endif
}

/* The same for the n < 64 bytes at q; bits n..63 are 0. */
static inline uint64_t mask_tail(const unsigned char *q, size_t n)
{
	uint64_t m = 0;

	for (size_t k = 0; k < n; k++)
		m |= (uint64_t)printable[q[k]] << k;
	return m;
}

/* Printability of the bytes in [q, end), at most 64; bits past end are 0. */
static inline uint64_t block_mask(const unsigned char *q, const unsigned char *end)
{
	return end - q >= 64 ? mask64(q) : mask_tail(q, (size_t)(end - q));
}

/*
 * Bit i set iff bits i..i+k-1 of the 128-bit number next:cur are all set
 * (k in 1..64): the places where k printable bytes begin.  Doubling
 * shifts: after the loop bit i covers r bits, the last step the rest.
 */
static inline uint64_t runs_of(uint64_t cur, uint64_t next, unsigned k)
{
	unsigned __int128 a = (unsigned __int128)next << 64 | cur;
	unsigned r = 1;

	while (2 * r <= k) {
		a &= a >> r;
		r *= 2;
	}
	if (k > r)
		a &= a >> (k - r);
	return (uint64_t)a;
}

/*
 * Runs are found 64 bytes at a time from the printability mask: a run is
 * a stretch of 1 bits, so its start and end are two count-trailing-zeros
 * away, whatever the bytes in between.  Only starts followed by at least
 * min(min_len, 64) printable bytes are visited (runs_of, looking into the
 * next block; bytes past the piece count as printable, since the run may
 * go on in the next piece): binary data is full of short printable runs
 * that would otherwise cost a loop turn each.  Runs inside the piece are
 * emitted straight from the buffer; only the one still open at its end is
 * copied to the carry.
 */
static void scan_ascii(struct hs_str_scanner *sc, hs_addr_t addr,
		       const unsigned char *p, size_t len)
{
	const unsigned char *q = p, *end = p + len;
	size_t min_len = sc->min_len, max_len = sc->max_len;
	unsigned k = sc->min_len < 64 ? sc->min_len : 64;
	const unsigned char *rs = NULL; /* start of a run begun in this piece */
	uint64_t cur;

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
	cur = q < end ? block_mask(q, end) : 0;
	while (q < end) {
		size_t avail = (size_t)(end - q);
		size_t lim = avail < 64 ? avail : 64;
		const unsigned char *nq = q + lim;
		uint64_t m = cur, nxt = 0, next_ext = ~0ull, beyond, starts;

		if (nq < end) {
			nxt = block_mask(nq, end);
			next_ext = end - nq >= 64 ? nxt : nxt | ~0ull << (end - nq);
		}
		beyond = lim < 64 ? ~0ull << lim : 0;
		cur = nxt;
		if (rs) {
			/* A run is open: where does it end in this block?  Bits
			 * past lim are 0 in m, so ~m has them. */
			uint64_t z = ~m;
			unsigned e;
			size_t n;

			if (!z || (unsigned)__builtin_ctzll(z) >= lim) {
				q = nq;
				continue;
			}
			e = (unsigned)__builtin_ctzll(z);
			n = (size_t)(q + e - rs);
			if (n >= min_len)
				sc->emit(sc->ud, addr + (hs_addr_t)(rs - p), (const char *)rs,
					 n < max_len ? n : max_len, n);
			rs = NULL;
			m &= ~0ull << e;
		}
		/* No run is open at bit 0 here (or it ended below the bits
		 * left in m): a 1 bit after a 0 bit, or bit 0, starts a run. */
		starts = m & ~(m << 1) & runs_of(m | beyond, next_ext, k);
		while (starts) {
			unsigned s = (unsigned)__builtin_ctzll(starts);
			uint64_t zz = ~m & (~0ull << s);
			unsigned e;
			size_t n;

			if (!zz || (e = (unsigned)__builtin_ctzll(zz)) >= lim) {
				rs = q + s; /* runs to the block's end */
				break;
			}
			n = e - s;
			if (n >= min_len)
				sc->emit(sc->ud, addr + (hs_addr_t)(q + s - p), (const char *)q + s,
					 n < max_len ? n : max_len, n);
			starts &= starts - 1;
		}
		q = nq;
	}
	if (rs) {
		size_t n = (size_t)(end - rs);

		sc->run_addr = addr + (hs_addr_t)(rs - p);
		sc->run_len = n;
		sc->carry_len = 0;
		carry_add(sc, rs, n);
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
