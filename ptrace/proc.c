/*
 * /proc parsers.  They take FILE * so unit tests feed them fixtures with odd
 * lines (paths with spaces, "(deleted)", [vsyscall], anon_inode:, socket:).
 */
#include "hs_ptrace.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static unsigned parse_perms(const char *p)
{
	unsigned perms = 0;

	if (p[0] == 'r')
		perms |= HS_PERM_R;
	if (p[1] == 'w')
		perms |= HS_PERM_W;
	if (p[2] == 'x')
		perms |= HS_PERM_X;
	if (p[3] == 's')
		perms |= HS_PERM_SHARED;
	return perms;
}

/* "55d4a7c00000-55d4a7c21000 rw-p 00000000 00:00 0   [heap]" */
static int parse_map_line(char *line, struct hs_maps *maps)
{
	unsigned long long start, end, off, inode;
	unsigned maj, min;
	char perms[5];
	int n = 0;
	struct hs_map *m;
	char *path;
	size_t len;
	static const char deleted[] = " (deleted)";

	if (sscanf(line, "%llx-%llx %4s %llx %x:%x %llu%n", &start, &end, perms,
		   &off, &maj, &min, &inode, &n) != 7 || strlen(perms) != 4)
		return -HS_E_FORMAT;
	if (end <= start)   /* the kernel lists no empty mapping */
		return -HS_E_FORMAT;
	path = line + n;
	while (*path == ' ' || *path == '\t')
		path++;
	len = strlen(path);
	while (len && (path[len - 1] == '\n' || path[len - 1] == '\r'))
		path[--len] = '\0';
	m = hs_maps_add(maps, start, end, NULL);
	if (len >= sizeof(deleted) - 1 &&
	    !strcmp(path + len - (sizeof(deleted) - 1), deleted)) {
		m->flags |= HS_MAP_DELETED;
		path[len - (sizeof(deleted) - 1)] = '\0';
	}
	free(m->path);
	m->path = hs_xstrdup(path);
	m->offset = off;
	m->dev_major = maj;
	m->dev_minor = min;
	m->inode = inode;
	m->perms = parse_perms(perms);
	return 0;
}

static int parse_smaps_field(char *line, struct hs_map *m)
{
	char *colon = strchr(line, ':');
	char *val;
	unsigned long long v;
	char *end;

	if (!colon)
		return -HS_E_FORMAT;
	*colon = '\0';
	val = colon + 1;
	while (*val == ' ' || *val == '\t')
		val++;
	if (!strcmp(line, "VmFlags")) {
		size_t len = strlen(val);
		while (len && isspace((unsigned char)val[len - 1]))
			val[--len] = '\0';
		snprintf(m->vmflags, sizeof(m->vmflags), "%s", val);
		return 0;
	}
	for (int f = 0; f < HS_SMAPS_N; f++) {
		if (strcmp(line, hs_smaps_key(f)))
			continue;
		errno = 0;
		v = strtoull(val, &end, 10);
		if (errno || end == val)
			return -HS_E_FORMAT;
		m->smaps[f] = hs_smaps_is_kb(f) ? v * 1024 : v;
		m->flags |= HS_MAP_HAS_SMAPS;
		return 0;
	}
	return 0; /* a field this kernel has and we do not know: ignore */
}

int hs_proc_parse_maps(FILE *f, struct hs_maps *maps, int *bad_line)
{
	char *line = NULL;
	size_t cap = 0;
	int lineno = 0, ret = 0;

	while (getline(&line, &cap, f) > 0) {
		lineno++;
		if (line[0] == '\n' || line[0] == '\0')
			continue;
		/* Header lines start with a hex address; field lines with a key. */
		if (isxdigit((unsigned char)line[0]) && strchr(line, '-') &&
		    (strchr(line, '-') < strchr(line, ' ') || !strchr(line, ' ')) &&
		    !(strchr(line, ':') && strchr(line, ':') < strchr(line, ' '))) {
			ret = parse_map_line(line, maps);
		} else if (maps->n > 0) {
			ret = parse_smaps_field(line, &maps->v[maps->n - 1]);
		} else {
			ret = -HS_E_FORMAT;
		}
		if (ret < 0) {
			if (bad_line)
				*bad_line = lineno;
			break;
		}
	}
	free(line);
	if (ret == 0)
		hs_maps_sort(maps);
	return ret;
}

/* "VmRSS:	    1234 kB" -> bytes */
static uint64_t kb_field(const char *val)
{
	return strtoull(val, NULL, 10) * 1024;
}

int hs_proc_parse_status(FILE *f, struct hs_proc_info *info)
{
	char *line = NULL;
	size_t cap = 0;
	bool seen_name = false;

	while (getline(&line, &cap, f) > 0) {
		char *val = strchr(line, ':');
		if (!val)
			continue;
		*val++ = '\0';
		while (*val == ' ' || *val == '\t')
			val++;
		val[strcspn(val, "\n")] = '\0';
		if (!strcmp(line, "Name")) {
			snprintf(info->comm, sizeof(info->comm), "%s", val);
			seen_name = true;
		} else if (!strcmp(line, "State")) {
			info->state = val[0];
		} else if (!strcmp(line, "Tgid")) {
			info->pid = (pid_t)atoi(val);
		} else if (!strcmp(line, "PPid")) {
			info->ppid = (pid_t)atoi(val);
		} else if (!strcmp(line, "Uid")) {
			unsigned r = 0, e = 0;
			sscanf(val, "%u %u", &r, &e);
			info->uid = r;
			info->euid = e;
		} else if (!strcmp(line, "Gid")) {
			unsigned r = 0, e = 0;
			sscanf(val, "%u %u", &r, &e);
			info->gid = r;
			info->egid = e;
		} else if (!strcmp(line, "Threads")) {
			info->nthreads = atoi(val);
		} else if (!strcmp(line, "VmSize")) {
			info->vm_size = kb_field(val);
		} else if (!strcmp(line, "VmRSS")) {
			info->vm_rss = kb_field(val);
		} else if (!strcmp(line, "RssAnon")) {
			info->rss_anon = kb_field(val);
		} else if (!strcmp(line, "RssFile")) {
			info->rss_file = kb_field(val);
		} else if (!strcmp(line, "RssShmem")) {
			info->rss_shmem = kb_field(val);
		} else if (!strcmp(line, "VmSwap")) {
			info->vm_swap = kb_field(val);
		} else if (!strcmp(line, "VmHWM")) {
			info->vm_hwm = kb_field(val);
		}
	}
	free(line);
	return seen_name ? 0 : -HS_E_FORMAT;
}

int hs_proc_parse_status_extra(FILE *f, struct hs_proc_status_extra *x)
{
	char *line = NULL;
	size_t cap = 0;
	bool seen_vm = false, seen_name = false, seen_kthread = false;

	memset(x, 0, sizeof(*x));
	while (getline(&line, &cap, f) > 0) {
		char *val = strchr(line, ':');
		if (!val)
			continue;
		*val++ = '\0';
		if (!strcmp(line, "Name"))
			seen_name = true;
		else if (!strcmp(line, "TracerPid"))
			x->tracer_pid = (pid_t)atoi(val);
		else if (!strcmp(line, "Kthread")) {
			x->kthread = atoi(val) != 0;
			seen_kthread = true;
		}
		else if (!strcmp(line, "CapEff"))
			x->cap_eff = strtoull(val, NULL, 16);
		else if (!strcmp(line, "Threads"))
			x->threads = atoi(val);
		else if (!strcmp(line, "Seccomp"))
			x->seccomp = atoi(val);
		else if (!strcmp(line, "VmSize"))
			seen_vm = true;
	}
	free(line);
	/* Kernels before "Kthread:" (6.2): a kernel thread has no Vm* lines.
	 * Where the line exists it is the answer: a process that is exiting
	 * has lost its Vm* lines too (x->exiting). */
	if (!seen_vm && !seen_kthread)
		x->kthread = true;
	x->exiting = !seen_vm && seen_kthread && !x->kthread;
	return seen_name ? 0 : -HS_E_FORMAT;
}
