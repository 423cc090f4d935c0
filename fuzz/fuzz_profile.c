/*
 * The profile reader (heap/profile-io.c) on arbitrary bytes; a profile it
 * accepts is written back and read again, which must succeed.
 */
#include "fuzz.h"
#include "hs_growth.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hs_profile p, q;
	unsigned line = 0;
	char *out = NULL;
	size_t outlen = 0;
	FILE *f, *w;

	hs_log_set(fuzz_quiet, NULL);
	if (!size)
		return 0;
	(void)hs_profile_sniff(data, size);
	f = fmemopen((void *)data, size, "r");
	if (!f)
		return 0;
	/* hs_profile_read initialises p (and q): release, never init. */
	if (hs_profile_read(&p, f, &line) == 0) {
		w = open_memstream(&out, &outlen);
		if (w && hs_profile_write(&p, w) == 0 && fclose(w) == 0) {
			FILE *r = outlen ? fmemopen(out, outlen, "r") : NULL;

			/* heapscan's own output must read back. */
			if (r) {
				if (hs_profile_read(&q, r, &line) != 0)
					abort();
				hs_profile_release(&q);
				fclose(r);
			}
		} else if (w) {
			fclose(w);
		}
		free(out);
	}
	hs_profile_release(&p);
	fclose(f);
	return 0;
}
