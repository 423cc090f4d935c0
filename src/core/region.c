/*
 * Region classifier: names what each mapping is from /proc-style facts only
 * (perms, path, neighbours, thread stack pointers).  Reads no memory, so it
 * works the same on maps from a live process, a core's NT_FILE or a test.
 */
#include "hs_core.h"

#include <string.h>

/* glibc's HEAP_MAX_SIZE on 64-bit: 2 * DEFAULT_MMAP_THRESHOLD_MAX. */
#define ARENA_HEAP_MAX (64ull << 20)

static bool is_anon(const struct hs_map *m)
{
	/* "[anon:name]" is an anonymous mapping named by PR_SET_VMA_ANON_NAME. */
	return m->inode == 0 &&
	       (m->path[0] == '\0' || !strncmp(m->path, "[anon:", 6));
}

static bool is_special(const struct hs_map *m)
{
	static const char *const names[] = {
		"[vdso]", "[vvar]", "[vvar_vclock]", "[vsyscall]", "[uprobes]", "[sigpage]",
	};

	if (m->flags & HS_MAP_SPECIAL)
		return true;
	for (size_t i = 0; i < HS_ARRAY_SIZE(names); i++)
		if (!strcmp(m->path, names[i]))
			return true;
	return false;
}

static bool is_shm(const struct hs_map *m)
{
	return (m->perms & HS_PERM_SHARED) || !strncmp(m->path, "/dev/shm/", 9) ||
	       !strncmp(m->path, "/SYSV", 5) || !strncmp(m->path, "/memfd:", 7) ||
	       !strncmp(m->path, "[anon_shmem:", 12);
}

/*
 * A glibc non-main heap is a mapping aligned to HEAP_MAX_SIZE whose
 * readable part grows by mprotect inside a PROT_NONE reservation of
 * HEAP_MAX_SIZE in all: rw part at an aligned start, then a ---p rest that
 * ends at start + HEAP_MAX_SIZE (or no rest once the heap is full).  The
 * rw part may be several adjacent mappings: in a forked child, the part
 * grown after the fork cannot merge with the inherited one, and mprotect
 * or madvise on part of it splits it too (doc/heap-segments.md).  Every
 * piece is the arena's.
 */
static bool rw_anon(const struct hs_map *m)
{
	return is_anon(m) && (m->perms & (HS_PERM_R | HS_PERM_W)) == (HS_PERM_R | HS_PERM_W) &&
	       !(m->perms & HS_PERM_SHARED);
}

static bool is_arena_heap(const struct hs_maps *maps, size_t i)
{
	size_t first = i, last = i;
	hs_addr_t start, limit;

	if (!rw_anon(&maps->v[i]))
		return false;
	/* Back to the aligned start, through adjacent rw pieces. */
	while ((maps->v[first].start & (ARENA_HEAP_MAX - 1)) && first > 0 &&
	       maps->v[first - 1].end == maps->v[first].start && rw_anon(&maps->v[first - 1]))
		first--;
	start = maps->v[first].start;
	if (start & (ARENA_HEAP_MAX - 1))
		return false;
	limit = start + ARENA_HEAP_MAX;
	while (maps->v[last].end < limit && last + 1 < maps->n &&
	       maps->v[last + 1].start == maps->v[last].end && rw_anon(&maps->v[last + 1]))
		last++;
	if (maps->v[last].end > limit)
		return false;
	if (maps->v[last].end == limit)
		return true;
	if (last + 1 >= maps->n)
		return false;
	const struct hs_map *r = &maps->v[last + 1];
	return r->start == maps->v[last].end && r->end == limit && r->perms == 0 && is_anon(r);
}

static enum hs_class classify_one(const struct hs_maps *maps, size_t i)
{
	const struct hs_map *m = &maps->v[i];

	if (is_special(m))
		return HS_CLASS_SPECIAL;
	if (!strcmp(m->path, "[heap]"))
		return HS_CLASS_HEAP;
	if (!strcmp(m->path, "[stack]"))
		return HS_CLASS_STACK;
	if (is_shm(m))
		return HS_CLASS_SHM;
	if ((m->perms & (HS_PERM_R | HS_PERM_W | HS_PERM_X)) == 0)
		return HS_CLASS_RESERVED;
	if (is_anon(m)) {
		if (!(m->perms & HS_PERM_W))
			return HS_CLASS_ANON_RO;
		return is_arena_heap(maps, i) ? HS_CLASS_ARENA : HS_CLASS_ANON;
	}
	if (m->perms & HS_PERM_X)
		return HS_CLASS_CODE;
	if (m->perms & HS_PERM_W)
		return HS_CLASS_DATA;
	return HS_CLASS_RODATA;
}

void hs_classify(struct hs_target *t)
{
	struct hs_maps *maps = &t->maps;

	for (size_t i = 0; i < maps->n; i++) {
		maps->v[i].cls = classify_one(maps, i);
		maps->v[i].stack_tid = 0;
	}
	/* Thread stacks: the anonymous mapping holding each thread's sp. */
	for (size_t k = 0; k < t->nthreads; k++) {
		const struct hs_thread *th = &t->threads[k];
		struct hs_map *m;

		if (!th->sp)
			continue;
		m = (struct hs_map *)hs_maps_find(maps, th->sp);
		if (!m)
			continue;
		if (m->cls == HS_CLASS_ANON || m->cls == HS_CLASS_STACK) {
			m->cls = HS_CLASS_STACK;
			if (!m->stack_tid)
				m->stack_tid = th->tid;
		}
	}
}
