/*
 * The /proc parsers (ptrace/proc.c) on arbitrary text: maps/smaps, status
 * and the status fields the attach checks read.
 */
#include "fuzz.h"
#include "hs_ptrace.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hs_maps maps = { 0 };
	struct hs_proc_info info = { 0 };
	struct hs_proc_status_extra x;
	int bad = 0;
	FILE *f;

	hs_log_set(fuzz_quiet, NULL);
	if (!size)
		return 0;
	f = fmemopen((void *)data, size, "r");
	if (!f)
		return 0;
	if (hs_proc_parse_maps(f, &maps, &bad) == 0) {
		/* What a consumer relies on: each map non-empty, a path. */
		for (size_t i = 0; i < maps.n; i++)
			if (maps.v[i].start >= maps.v[i].end || !maps.v[i].path)
				abort();
	}
	hs_maps_release(&maps);
	rewind(f);
	info.exe = NULL;
	if (hs_proc_parse_status(f, &info) == 0 && info.comm[sizeof(info.comm) - 1])
		abort();
	hs_proc_info_release(&info);
	rewind(f);
	memset(&x, 0, sizeof(x));
	(void)hs_proc_parse_status_extra(f, &x);
	fclose(f);
	return 0;
}
