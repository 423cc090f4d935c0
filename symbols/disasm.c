/*
 * A few instructions around a pc, with capstone (hs_disasm_around in
 * hs_syms.h).  x86 instructions have no fixed length, so decoding must
 * start on a boundary: the enclosing function's first byte when the
 * resolver knows it (a sweep guided by symbols, not a linear guess), else
 * pc itself, or for a return address the call instruction that ends
 * exactly at pc.
 */
#include "hs_syms.h"

#include <capstone.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LEAD 4096  /* bytes decoded from the symbol start up to pc */
#define MAX_AFTER 64
#define X86_MAX_INSN 15

static void fill(struct hs_insn *d, const cs_insn *in, bool mark)
{
	d->addr = in->address;
	d->size = in->size;
	d->mark = mark;
	if (in->op_str[0])
		snprintf(d->text, sizeof(d->text), "%s %s", in->mnemonic, in->op_str);
	else
		snprintf(d->text, sizeof(d->text), "%s", in->mnemonic);
}

/* Decodes from start; see hs_disasm_around. */
static int sweep(csh h, cs_insn *in, const unsigned char *code, size_t len,
		 hs_addr_t start, hs_addr_t pc, bool ret_addr, unsigned before,
		 unsigned after, struct hs_insn *out, size_t max, size_t *n)
{
	struct hs_insn *ring = hs_xcalloc(before + 1, sizeof(*ring));
	size_t nring = 0, head = 0, got = 0;
	const uint8_t *p = code;
	uint64_t addr = start;
	bool found = false;
	int ret = -HS_E_NOT_FOUND;

	while (len && cs_disasm_iter(h, &p, &len, &addr, in)) {
		bool mark = ret_addr ? in->address + in->size == pc : in->address == pc;

		if (!found) {
			if (!mark && in->address + (ret_addr ? in->size : 0) >= pc)
				break; /* stepped over pc: not a boundary */
			if (!mark) {
				fill(&ring[head], in, false);
				head = (head + 1) % (before + 1);
				if (nring < before + 1)
					nring++;
				continue;
			}
			/* The `before` most recent ones, oldest first. */
			{
				size_t keep = nring < before ? nring : before;
				for (size_t k = 0; k < keep && got < max; k++) {
					size_t idx = (head + (before + 1) - keep + k) % (before + 1);
					out[got++] = ring[idx];
				}
			}
			if (got < max)
				fill(&out[got++], in, true);
			found = true;
			ret = 0;
			continue;
		}
		if (!after-- || got >= max)
			break;
		fill(&out[got++], in, false);
	}
	free(ring);
	*n = got;
	return ret;
}

int hs_disasm_around(struct hs_target *t, struct hs_syms *s, hs_addr_t pc,
		     bool ret_addr, unsigned before, unsigned after,
		     struct hs_insn *out, size_t max, size_t *n)
{
	struct hs_sym_info si;
	hs_addr_t start = pc;
	unsigned char *code = NULL;
	size_t len, got = 0;
	cs_insn *in = NULL;
	csh h;
	int err;

	*n = 0;
	if (!max)
		return 0;
	if (after > MAX_AFTER)
		after = MAX_AFTER;
	if (before > MAX_AFTER)
		before = MAX_AFTER;
	if (s && hs_syms_lookup(s, ret_addr ? pc - 1 : pc, &si) == 0 && si.name &&
	    si.kind == HS_SYM_FUNC && pc >= si.sym_addr && pc - si.sym_addr <= MAX_LEAD)
		start = si.sym_addr;
	if (cs_open(CS_ARCH_X86, CS_MODE_64, &h) != CS_ERR_OK)
		return -HS_E_UNSUPPORTED;
	in = cs_malloc(h);
	if (!in) {
		cs_close(&h);
		return -ENOMEM;
	}
	/* From start (or 15 bytes before pc, for the call search) to past the
	 * `after` instructions. */
	if (start == pc && ret_addr)
		start = pc - X86_MAX_INSN;
	len = (size_t)(pc - start) + (after + 1) * X86_MAX_INSN;
	code = hs_xmalloc(len);
	err = hs_target_read(t, start, code, len, &got);
	if (err < 0 || got == 0) {
		err = err < 0 ? err : -EFAULT;
		goto out;
	}
	if (start != pc - X86_MAX_INSN || !ret_addr) {
		err = sweep(h, in, code, got, start, pc, ret_addr, before, after,
			    out, max, n);
		if (err == 0 || start == pc)
			goto out;
		/* The symbol's sweep missed pc (data in code, a bad size):
		 * fall back to pc alone. */
		if (!ret_addr) {
			size_t skip = (size_t)(pc - start);

			err = got > skip ? sweep(h, in, code + skip, got - skip, pc, pc,
						 false, 0, after, out, max, n) : -EFAULT;
			goto out;
		}
		if (pc - start < X86_MAX_INSN || got < (size_t)(pc - start)) {
			err = -HS_E_NOT_FOUND;
			goto out;
		}
		memmove(code, code + (pc - start - X86_MAX_INSN),
			got - (size_t)(pc - start - X86_MAX_INSN));
		got -= (size_t)(pc - start - X86_MAX_INSN);
		start = pc - X86_MAX_INSN;
	}
	/* A return address without a usable symbol: the call that ends at pc
	 * (e8 rel32 is 5 bytes, ff /2 is 2 to 7). */
	err = -HS_E_NOT_FOUND;
	for (unsigned k = 2; k <= X86_MAX_INSN && got >= X86_MAX_INSN; k++) {
		const uint8_t *p = code + X86_MAX_INSN - k;
		size_t l = k;
		uint64_t a = pc - k;

		if (cs_disasm_iter(h, &p, &l, &a, in) && in->size == k &&
		    in->id == X86_INS_CALL) {
			err = sweep(h, in, code + X86_MAX_INSN - k, got - (X86_MAX_INSN - k),
				    pc - k, pc, true, 0, after, out, max, n);
			break;
		}
	}
out:
	free(code);
	cs_free(in, 1);
	cs_close(&h);
	return err;
}
