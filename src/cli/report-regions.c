/* Header and region sections of the reports; see report.h. */
#include "report.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

void hs_region_totals(const struct hs_target *t, struct hs_region_totals *all,
		      struct hs_region_totals per_class[HS_CLASS_N])
{
	memset(all, 0, sizeof(*all));
	if (per_class)
		memset(per_class, 0, sizeof(struct hs_region_totals) * HS_CLASS_N);
	for (size_t i = 0; i < t->maps.n; i++) {
		const struct hs_map *m = &t->maps.v[i];
		struct hs_region_totals *c = per_class ? &per_class[m->cls] : NULL;

		all->count++;
		if (c)
			c->count++;
		for (int f = 0; f < HS_SMAPS_N; f++) {
			/* Page sizes and flags are not additive. */
			if (f == HS_SMAPS_KERNEL_PAGE_SIZE || f == HS_SMAPS_MMU_PAGE_SIZE ||
			    f == HS_SMAPS_THP_ELIGIBLE || f == HS_SMAPS_PROTECTION_KEY)
				continue;
			all->smaps[f] += m->smaps[f];
			if (c)
				c->smaps[f] += m->smaps[f];
		}
	}
}

static uint64_t kb(uint64_t bytes)
{
	return bytes / 1024;
}

void hs_report_header_text(FILE *out, const struct hs_target *t)
{
	const struct hs_proc_info *in = &t->info;
	struct hs_region_totals all;
	char a[16], b[16], c[16], d[16];

	hs_region_totals(t, &all, NULL);
	fprintf(out, "heapscan %s: %s (%s)%s\n", HS_VERSION, t->source,
		in->comm[0] ? in->comm : "?",
		(t->state & HS_TSTATE_COPY_LOST) ? "  [the --fork copy was lost during the run]"
		: (t->state & HS_TSTATE_GONE) ? "  [target exited during the run]" : "");
	fprintf(out, "  exe:      %s\n", in->exe[0] ? in->exe : "?");
	fprintf(out, "  cmdline:  %s\n", in->cmdline[0] ? in->cmdline : "?");
	fprintf(out, "  threads:  %zu   state: %c", t->nthreads, in->state ? in->state : '?');
	if (t->caps & HS_CAP_STOPPABLE) {
		if (t->flags & HS_TARGET_NO_STOP)
			fprintf(out, "   not stopped (--no-stop)\n");
		else
			fprintf(out, "   stopped for %.3f ms of %.3f ms so far\n",
				(double)t->stop_ns / 1e6,
				(double)(hs_now_ns() - t->open_ns) / 1e6);
	} else {
		fputc('\n', out);
	}
	if (in->vm_rss || in->vm_size)
		fprintf(out, "  status:   VmRSS %" PRIu64 " kB (%s)  RssAnon %" PRIu64
			" kB  RssFile %" PRIu64 " kB  RssShmem %" PRIu64 " kB  VmSwap %"
			PRIu64 " kB\n", kb(in->vm_rss), hs_fmt_bytes(a, sizeof(a), in->vm_rss),
			kb(in->rss_anon), kb(in->rss_file), kb(in->rss_shmem), kb(in->vm_swap));
	fprintf(out, "  smaps:    %zu mappings  Size %s  Rss %" PRIu64 " kB (%s)  Pss %"
		PRIu64 " kB  Private_Dirty %" PRIu64 " kB (%s)  Swap %" PRIu64 " kB (%s)\n",
		all.count, hs_fmt_bytes(d, sizeof(d), all.smaps[HS_SMAPS_SIZE]),
		kb(all.smaps[HS_SMAPS_RSS]), hs_fmt_bytes(a, sizeof(a), all.smaps[HS_SMAPS_RSS]),
		kb(all.smaps[HS_SMAPS_PSS]), kb(all.smaps[HS_SMAPS_PRIVATE_DIRTY]),
		hs_fmt_bytes(b, sizeof(b), all.smaps[HS_SMAPS_PRIVATE_DIRTY]),
		kb(all.smaps[HS_SMAPS_SWAP]), hs_fmt_bytes(c, sizeof(c), all.smaps[HS_SMAPS_SWAP]));
	hs_report_pages_text(out, t);
	if (t->unreadable)
		fprintf(out, "  partial:  %" PRIu64 " bytes could not be read\n", t->unreadable);
}

void hs_report_pages_text(FILE *out, const struct hs_target *t)
{
	char a[16], b[16];

	if (!t->page_policy)
		return;
	if (!strcmp(t->page_policy, "off"))
		fprintf(out, "  pages:    every page read through the process "
			"(HEAPSCAN_READ_POLICY=off)");
	else if (!strcmp(t->page_policy, "pagemap"))
		fprintf(out, "  pages:    untouched pages not read (pagemap)");
	else
		fprintf(out, "  pages:    untouched mappings not read (%s); untouched pages of "
			"touched mappings read through the process", t->page_policy);
	fprintf(out, "; swapped in %s", hs_fmt_bytes(a, sizeof(a), t->swapped_in));
	if (t->flags & HS_TARGET_NO_SWAPIN)
		fprintf(out, ", %s left in swap (--no-swapin)",
			hs_fmt_bytes(b, sizeof(b), t->swap_skipped));
	if (t->faulted_in)
		fprintf(out, "; %s read through the process though it did not have them "
			"(their file or shared memory could not be opened: map_files needs "
			"CAP_SYS_ADMIN)", hs_fmt_bytes(b, sizeof(b), t->faulted_in));
	fputc('\n', out);
}

void hs_report_pages_json(struct hs_json *j, const struct hs_target *t)
{
	if (!t->page_policy) {
		hs_json_null(j, "pages");
		return;
	}
	hs_json_obj_begin(j, "pages");
	hs_json_str(j, "policy", t->page_policy);
	hs_json_u64(j, "swapped_in_bytes", t->swapped_in);
	hs_json_bool(j, "no_swapin", (t->flags & HS_TARGET_NO_SWAPIN) != 0);
	hs_json_u64(j, "swap_skipped_bytes", t->swap_skipped);
	hs_json_u64(j, "faulted_in_bytes", t->faulted_in);
	hs_json_obj_end(j);
}

void hs_report_header_json(struct hs_json *j, const struct hs_target *t)
{
	const struct hs_proc_info *in = &t->info;
	char st[2] = { in->state, 0 };

	hs_json_obj_begin(j, "target");
	hs_json_str(j, "kind", t->ops->name);
	hs_json_str(j, "source", t->source);
	hs_json_i64(j, "pid", in->pid);
	hs_json_i64(j, "ppid", in->ppid);
	hs_json_u64(j, "uid", in->uid);
	hs_json_str(j, "comm", in->comm);
	hs_json_str(j, "exe", in->exe);
	hs_json_str(j, "cmdline", in->cmdline);
	hs_json_str(j, "state", st);
	hs_json_u64(j, "time_ns", in->time_ns);
	hs_json_obj_begin(j, "status");
	hs_json_u64(j, "VmSize", in->vm_size);
	hs_json_u64(j, "VmRSS", in->vm_rss);
	hs_json_u64(j, "RssAnon", in->rss_anon);
	hs_json_u64(j, "RssFile", in->rss_file);
	hs_json_u64(j, "RssShmem", in->rss_shmem);
	hs_json_u64(j, "VmSwap", in->vm_swap);
	hs_json_u64(j, "VmHWM", in->vm_hwm);
	hs_json_obj_end(j);
	hs_json_arr_begin(j, "threads");
	for (size_t i = 0; i < t->nthreads; i++) {
		const struct hs_thread *th = &t->threads[i];
		char ts[2] = { th->state, 0 };
		hs_json_obj_begin(j, NULL);
		hs_json_i64(j, "tid", th->tid);
		hs_json_str(j, "name", th->name);
		hs_json_str(j, "state", ts);
		if (th->sp)
			hs_json_addr(j, "sp", th->sp);
		else
			hs_json_null(j, "sp");
		if (th->has_regs)
			hs_json_addr(j, "pc", th->regs.r[HS_REG_RIP]);
		hs_json_obj_end(j);
	}
	hs_json_arr_end(j);
	hs_json_obj_end(j);
	hs_json_bool(j, "stopped", hs_target_holds(t));
	hs_json_double(j, "stop_ms", (double)t->stop_ns / 1e6);
	hs_json_double(j, "elapsed_ms", (double)(hs_now_ns() - t->open_ns) / 1e6);
	hs_json_bool(j, "partial", (t->state & HS_TSTATE_PARTIAL) != 0);
	hs_json_bool(j, "target_exited", (t->state & (HS_TSTATE_GONE | HS_TSTATE_COPY_LOST)) ==
		     HS_TSTATE_GONE);
	hs_json_bool(j, "fork_copy_lost", (t->state & HS_TSTATE_COPY_LOST) != 0);
	hs_json_u64(j, "unreadable_bytes", t->unreadable);
	hs_report_pages_json(j, t);
}

void hs_report_smaps_json(struct hs_json *j, const uint64_t smaps[HS_SMAPS_N])
{
	hs_json_obj_begin(j, "smaps");
	for (int f = 0; f < HS_SMAPS_N; f++)
		hs_json_u64(j, hs_smaps_key(f), smaps[f]);
	hs_json_obj_end(j);
}

/* Class indices sorted by Rss, then Size, descending. */
static const struct hs_region_totals *sort_tot;
static int cmp_class(const void *a, const void *b)
{
	const struct hs_region_totals *x = &sort_tot[*(const int *)a];
	const struct hs_region_totals *y = &sort_tot[*(const int *)b];

	if (x->smaps[HS_SMAPS_RSS] != y->smaps[HS_SMAPS_RSS])
		return x->smaps[HS_SMAPS_RSS] < y->smaps[HS_SMAPS_RSS] ? 1 : -1;
	if (x->smaps[HS_SMAPS_SIZE] != y->smaps[HS_SMAPS_SIZE])
		return x->smaps[HS_SMAPS_SIZE] < y->smaps[HS_SMAPS_SIZE] ? 1 : -1;
	return *(const int *)a - *(const int *)b;
}

static void sorted_classes(const struct hs_region_totals per[HS_CLASS_N],
			   int order[HS_CLASS_N])
{
	for (int c = 0; c < HS_CLASS_N; c++)
		order[c] = c;
	sort_tot = per;
	qsort(order, HS_CLASS_N, sizeof(int), cmp_class);
}

static int cmp_map_rss(const void *a, const void *b)
{
	const struct hs_map *x = *(const struct hs_map *const *)a;
	const struct hs_map *y = *(const struct hs_map *const *)b;

	if (x->smaps[HS_SMAPS_RSS] != y->smaps[HS_SMAPS_RSS])
		return x->smaps[HS_SMAPS_RSS] < y->smaps[HS_SMAPS_RSS] ? 1 : -1;
	return x->start < y->start ? -1 : x->start > y->start;
}

/* Per-module (file path) Rss of code, rodata and data. */
struct module {
	const char *path;
	uint64_t rss[3], size;
	size_t count;
};

static int cmp_module(const void *a, const void *b)
{
	const struct module *x = a, *y = b;
	uint64_t rx = x->rss[0] + x->rss[1] + x->rss[2];
	uint64_t ry = y->rss[0] + y->rss[1] + y->rss[2];

	if (rx != ry)
		return rx < ry ? 1 : -1;
	return strcmp(x->path, y->path);
}

static struct module *collect_modules(const struct hs_target *t, size_t *n)
{
	struct module *mods = NULL;
	size_t alloc = 0;

	*n = 0;
	for (size_t i = 0; i < t->maps.n; i++) {
		const struct hs_map *m = &t->maps.v[i];
		int k = m->cls == HS_CLASS_CODE ? 0 : m->cls == HS_CLASS_RODATA ? 1 :
			m->cls == HS_CLASS_DATA ? 2 : -1;
		size_t j;

		if (k < 0)
			continue;
		for (j = 0; j < *n; j++)
			if (!strcmp(mods[j].path, m->path))
				break;
		if (j == *n) {
			HS_ALLOC_GROW(mods, *n + 1, alloc);
			memset(&mods[j], 0, sizeof(mods[j]));
			mods[j].path = m->path;
			(*n)++;
		}
		mods[j].rss[k] += m->smaps[HS_SMAPS_RSS];
		mods[j].size += m->end - m->start;
		mods[j].count++;
	}
	if (*n > 1)
		qsort(mods, *n, sizeof(*mods), cmp_module);
	return mods;
}

static char perm_str(unsigned perms, unsigned bit, char c)
{
	return (perms & bit) ? c : '-';
}

void hs_report_regions_text(FILE *out, const struct hs_target *t,
			    unsigned top_regions)
{
	struct hs_region_totals all, per[HS_CLASS_N];
	int order[HS_CLASS_N];
	const struct hs_map **byrss;
	struct module *mods;
	size_t nmods;

	hs_region_totals(t, &all, per);
	sorted_classes(per, order);
	fprintf(out, "\nRegions by class (kB, from smaps)\n");
	fprintf(out, "  %-8s %-36s %6s %12s %12s %12s %13s %10s\n", "class", "what",
		"count", "Size", "Rss", "Pss", "Private_Dirty", "Swap");
	for (int k = 0; k < HS_CLASS_N; k++) {
		const struct hs_region_totals *c = &per[order[k]];
		if (!c->count)
			continue;
		fprintf(out, "  %-8s %-36s %6zu %12" PRIu64 " %12" PRIu64 " %12" PRIu64
			" %13" PRIu64 " %10" PRIu64 "\n", hs_class_name(order[k]),
			hs_class_label(order[k]), c->count, kb(c->smaps[HS_SMAPS_SIZE]),
			kb(c->smaps[HS_SMAPS_RSS]), kb(c->smaps[HS_SMAPS_PSS]),
			kb(c->smaps[HS_SMAPS_PRIVATE_DIRTY]), kb(c->smaps[HS_SMAPS_SWAP]));
	}
	fprintf(out, "  %-8s %-36s %6zu %12" PRIu64 " %12" PRIu64 " %12" PRIu64
		" %13" PRIu64 " %10" PRIu64 "\n", "total", "", all.count,
		kb(all.smaps[HS_SMAPS_SIZE]), kb(all.smaps[HS_SMAPS_RSS]),
		kb(all.smaps[HS_SMAPS_PSS]), kb(all.smaps[HS_SMAPS_PRIVATE_DIRTY]),
		kb(all.smaps[HS_SMAPS_SWAP]));

	if (top_regions && t->maps.n) {
		size_t n = t->maps.n < top_regions ? t->maps.n : top_regions;
		byrss = hs_xmalloc(t->maps.n * sizeof(*byrss));
		for (size_t i = 0; i < t->maps.n; i++)
			byrss[i] = &t->maps.v[i];
		qsort(byrss, t->maps.n, sizeof(*byrss), cmp_map_rss);
		fprintf(out, "\nLargest regions by Rss (kB)\n");
		fprintf(out, "  %-33s %-4s %-8s %12s %12s %10s  %s\n", "address", "perm",
			"class", "Size", "Rss", "Swap", "path");
		for (size_t i = 0; i < n; i++) {
			const struct hs_map *m = byrss[i];
			char range[40];
			snprintf(range, sizeof(range), "%012" PRIx64 "-%012" PRIx64,
				 m->start, m->end);
			fprintf(out, "  %-33s %c%c%c%c %-8s %12" PRIu64 " %12" PRIu64
				" %10" PRIu64 "  %s%s", range,
				perm_str(m->perms, HS_PERM_R, 'r'),
				perm_str(m->perms, HS_PERM_W, 'w'),
				perm_str(m->perms, HS_PERM_X, 'x'),
				(m->perms & HS_PERM_SHARED) ? 's' : 'p',
				hs_class_name(m->cls), kb(m->end - m->start),
				kb(m->smaps[HS_SMAPS_RSS]), kb(m->smaps[HS_SMAPS_SWAP]),
				m->path, (m->flags & HS_MAP_DELETED) ? " (deleted)" : "");
			if (m->stack_tid)
				fprintf(out, " [stack of thread %d]", (int)m->stack_tid);
			fputc('\n', out);
		}
		free(byrss);
	}

	mods = collect_modules(t, &nmods);
	if (nmods) {
		size_t n = nmods < 10 ? nmods : 10;
		fprintf(out, "\nModules by Rss (kB; %zu file-backed, top %zu)\n", nmods, n);
		fprintf(out, "  %10s %10s %10s  %s\n", "code", "rodata", "data", "path");
		for (size_t i = 0; i < n; i++)
			fprintf(out, "  %10" PRIu64 " %10" PRIu64 " %10" PRIu64 "  %s\n",
				kb(mods[i].rss[0]), kb(mods[i].rss[1]), kb(mods[i].rss[2]),
				mods[i].path);
	}
	free(mods);
}

void hs_report_regions_json(struct hs_json *j, const struct hs_target *t)
{
	struct hs_region_totals all, per[HS_CLASS_N];
	int order[HS_CLASS_N];
	struct module *mods;
	size_t nmods;

	hs_region_totals(t, &all, per);
	sorted_classes(per, order);
	hs_json_obj_begin(j, "totals");
	hs_json_u64(j, "count", all.count);
	hs_report_smaps_json(j, all.smaps);
	hs_json_obj_end(j);

	hs_json_arr_begin(j, "classes");
	for (int k = 0; k < HS_CLASS_N; k++) {
		const struct hs_region_totals *c = &per[order[k]];
		if (!c->count)
			continue;
		hs_json_obj_begin(j, NULL);
		hs_json_str(j, "class", hs_class_name(order[k]));
		hs_json_str(j, "label", hs_class_label(order[k]));
		hs_json_u64(j, "count", c->count);
		hs_report_smaps_json(j, c->smaps);
		hs_json_obj_end(j);
	}
	hs_json_arr_end(j);

	hs_json_arr_begin(j, "regions");
	for (size_t i = 0; i < t->maps.n; i++) {
		const struct hs_map *m = &t->maps.v[i];
		char perms[5] = {
			perm_str(m->perms, HS_PERM_R, 'r'), perm_str(m->perms, HS_PERM_W, 'w'),
			perm_str(m->perms, HS_PERM_X, 'x'),
			(m->perms & HS_PERM_SHARED) ? 's' : 'p', 0
		};
		hs_json_obj_begin(j, NULL);
		hs_json_addr(j, "start", m->start);
		hs_json_addr(j, "end", m->end);
		hs_json_str(j, "perms", perms);
		hs_json_u64(j, "offset", m->offset);
		hs_json_u64(j, "inode", m->inode);
		hs_json_str(j, "path", m->path);
		hs_json_bool(j, "deleted", (m->flags & HS_MAP_DELETED) != 0);
		hs_json_str(j, "class", hs_class_name(m->cls));
		if (m->stack_tid)
			hs_json_i64(j, "stack_tid", m->stack_tid);
		hs_json_str(j, "vmflags", m->vmflags);
		hs_report_smaps_json(j, m->smaps);
		hs_json_obj_end(j);
	}
	hs_json_arr_end(j);

	mods = collect_modules(t, &nmods);
	hs_json_arr_begin(j, "modules");
	for (size_t i = 0; i < nmods; i++) {
		hs_json_obj_begin(j, NULL);
		hs_json_str(j, "path", mods[i].path);
		hs_json_u64(j, "mappings", mods[i].count);
		hs_json_u64(j, "code_rss", mods[i].rss[0]);
		hs_json_u64(j, "rodata_rss", mods[i].rss[1]);
		hs_json_u64(j, "data_rss", mods[i].rss[2]);
		hs_json_obj_end(j);
	}
	hs_json_arr_end(j);
	free(mods);
}

void hs_report_problems_text(FILE *out, const struct hs_problem *v, size_t cap,
			     size_t n, size_t show)
{
	size_t k = n < cap ? n : cap;

	if (!n)
		return;
	if (k > show)
		k = show;
	fprintf(out, "  problems: %zu (corruption, or a picture torn by --no-stop)\n", n);
	for (size_t i = 0; i < k; i++)
		fprintf(out, "    0x%" PRIx64 ": %s\n", v[i].addr, v[i].msg);
	if (k < n)
		fprintf(out, "    ...\n");
}

void hs_report_problems_json(struct hs_json *j, const struct hs_problem *v, size_t cap,
			     size_t n)
{
	hs_json_u64(j, "problems_total", n);
	hs_json_arr_begin(j, "problems");
	for (size_t i = 0; i < n && i < cap; i++) {
		hs_json_obj_begin(j, NULL);
		hs_json_addr(j, "addr", v[i].addr);
		hs_json_str(j, "message", v[i].msg);
		hs_json_obj_end(j);
	}
	hs_json_arr_end(j);
}
