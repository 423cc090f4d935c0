/*
 * Thread backtraces behind hs_stacks_collect() (hs_syms.h).
 *
 * Two unwinders behind one result, as strace hides its unwinder:
 *   - live targets: libunwind-ptrace, one _UPT context per thread.  The
 *     threads are already ptrace-stopped by hs_target_suspend() (SEIZE +
 *     INTERRUPT), so PTRACE_GETREGS/PEEKDATA from this process work;
 *   - cores and heapscan dumps: libdwfl over the core file
 *     (dwfl_core_file_report finds the modules from NT_FILE and the
 *     link_map, dwfl_core_file_attach gives the threads).  Debian 12's
 *     libunwind-coredump 1.6.2 skips frames on cores (doc/elf-cores.md).
 * Anything else (or an unwinder that cannot start) gives each thread's pc
 * and sp from its registers, with the reason.
 *
 * Every walk is bounded by max_frames and stops when a frame repeats the
 * previous one's pc and sp (a corrupt stack can loop forever).
 */
#include "hs_syms.h"

#include <elfutils/libdwfl.h>
#include <errno.h>
#include <fcntl.h>
#include <libunwind-ptrace.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_MAX_FRAMES 256
#define LIMIT_MAX_FRAMES 65536
#define DWARF_REG_RSP 7

static char *xasprintf(const char *fmt, ...) HS_PRINTF(1, 2);
static char *xasprintf(const char *fmt, ...)
{
	struct hs_buf sb = HS_BUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	hs_buf_vaddf(&sb, fmt, ap);
	va_end(ap);
	return hs_buf_detach(&sb, NULL);
}

static void set_error(struct hs_stack *st, char *msg)
{
	if (st->error)
		free(msg);
	else
		st->error = msg;
}

/*
 * Appends a frame unless the limit is reached or it repeats the previous
 * one.  Returns 0 to go on, 1 to stop (st->error then says why).
 */
static int push_frame(struct hs_stack *st, size_t *alloc, unsigned max,
		      hs_addr_t pc, hs_addr_t sp, bool activation)
{
	if (st->nframes >= max) {
		set_error(st, xasprintf("frame limit %u reached", max));
		return 1;
	}
	if (st->nframes && st->frames[st->nframes - 1].pc == pc &&
	    st->frames[st->nframes - 1].sp == sp) {
		set_error(st, xasprintf("loop: frame #%zu repeats pc and sp",
					st->nframes));
		return 1;
	}
	HS_ALLOC_GROW(st->frames, st->nframes + 1, *alloc);
	st->frames[st->nframes++] = (struct hs_frame){ pc, sp, activation };
	return 0;
}

static const struct hs_thread *find_thread(const struct hs_target *t, pid_t tid)
{
	for (size_t i = 0; i < t->nthreads; i++)
		if (t->threads[i].tid == tid)
			return &t->threads[i];
	return NULL;
}

/* Frame 0 from the registers, for a thread the unwinder gave nothing. */
static void frame_from_regs(const struct hs_target *t, struct hs_stack *st)
{
	const struct hs_thread *th = find_thread(t, st->tid);
	size_t alloc = 0;

	if (st->nframes)
		return;
	if (!th || !th->has_regs) {
		set_error(st, xasprintf("no registers"));
		return;
	}
	(void)push_frame(st, &alloc, 1, th->regs.r[HS_REG_RIP],
			 th->regs.r[HS_REG_RSP], true);
	set_error(st, xasprintf("not unwound"));
}

/* ---- live: libunwind-ptrace --------------------------------------------- */

static void unwind_live_thread(unw_addr_space_t as, const struct hs_thread *th,
			       unsigned max, struct hs_stack *st)
{
	unw_cursor_t c;
	size_t alloc = 0;
	bool activation = true;
	void *upt;
	int r;

	if (!th->has_regs) {
		set_error(st, xasprintf("no registers (thread not stopped)"));
		return;
	}
	upt = _UPT_create(th->tid);
	if (!upt) {
		set_error(st, xasprintf("_UPT_create failed"));
		return;
	}
	r = unw_init_remote(&c, as, upt);
	if (r < 0) {
		set_error(st, xasprintf("unw_init_remote: %s", unw_strerror(r)));
		goto out;
	}
	for (;;) {
		unw_word_t ip = 0, sp = 0;

		if (hs_interrupted) {
			set_error(st, xasprintf("interrupted"));
			break;
		}
		if (unw_get_reg(&c, UNW_REG_IP, &ip) < 0 || ip == 0)
			break;
		(void)unw_get_reg(&c, UNW_REG_SP, &sp);
		if (push_frame(st, &alloc, max, ip, sp, activation))
			break;
		r = unw_step(&c);
		if (r == 0)
			break;
		if (r < 0) {
			set_error(st, xasprintf("unw_step: %s", unw_strerror(r)));
			break;
		}
		/*
		 * libunwind 1.6 flags the frame it restored from a sigcontext,
		 * i.e. the one a signal interrupted (its pc is exact), and not
		 * the trampoline we just left, whose pc is __restore_rt's entry
		 * (the kernel "called" it): both are activations, as libdwfl
		 * reports them.
		 */
		activation = unw_is_signal_frame(&c) > 0;
		if (activation)
			st->frames[st->nframes - 1].activation = true;
	}
out:
	_UPT_destroy(upt);
}

/*
 * libunwind's own access_mem peeks with PTRACE_PEEKDATA, which faults in
 * whatever it touches: unwinding reads .eh_frame of each library, and a
 * 128 KiB of libc's read-only data became resident in the process on
 * every 'stacks' run.  Reading through the target instead applies the
 * live backend's reading policy (doc/reading-policy.md): such pages come
 * from the file.  libunwind passes its own per-thread argument (the _UPT
 * context) to the accessors, so the target is a thread-local here, set
 * for the duration of unwind_live().
 */
static __thread struct hs_target *unw_target;

static int access_mem(unw_addr_space_t as, unw_word_t addr, unw_word_t *val,
		      int write, void *arg)
{
	if (write || !unw_target)
		return _UPT_access_mem(as, addr, val, write, arg);
	if (hs_target_read_full(unw_target, addr, val, sizeof(*val)) < 0)
		return -UNW_EINVAL;
	return 0;
}

static int unwind_live(struct hs_target *t, unsigned max, struct hs_stacks *out)
{
	unw_addr_space_t as;
	unw_accessors_t acc = _UPT_accessors;

	if (!(t->state & HS_TSTATE_SUSPENDED)) {
		out->error = xasprintf("the process is not stopped");
		return 0;
	}
	acc.access_mem = access_mem;
	unw_target = t;
	as = unw_create_addr_space(&acc, 0);
	if (!as) {
		unw_target = NULL;
		out->error = xasprintf("libunwind: cannot create an address space");
		return 0;
	}
	unw_set_caching_policy(as, UNW_CACHE_GLOBAL);
	out->method = "libunwind-ptrace";
	for (size_t i = 0; i < out->n; i++) {
		const struct hs_thread *th = find_thread(t, out->v[i].tid);

		if (hs_interrupted)
			break;
		if (th)
			unwind_live_thread(as, th, max, &out->v[i]);
	}
	unw_destroy_addr_space(as);
	unw_target = NULL;
	return hs_interrupted ? -HS_E_INTERRUPTED : 0;
}

/* ---- cores: libdwfl ---------------------------------------------------- */

struct dwfl_ctx {
	struct hs_stacks *out;
	unsigned max;
	struct hs_stack *cur;
	size_t alloc;
};

static int dwfl_frame_cb(Dwfl_Frame *f, void *arg)
{
	struct dwfl_ctx *x = arg;
	Dwarf_Addr pc;
	Dwarf_Word sp = 0;
	bool activation;

	if (hs_interrupted) {
		set_error(x->cur, xasprintf("interrupted"));
		return DWARF_CB_ABORT;
	}
	if (!dwfl_frame_pc(f, &pc, &activation)) {
		set_error(x->cur, xasprintf("%s", dwfl_errmsg(-1)));
		return DWARF_CB_ABORT;
	}
	if (dwfl_frame_reg(f, DWARF_REG_RSP, &sp) != 0)
		sp = 0;
	if (push_frame(x->cur, &x->alloc, x->max, pc, sp, activation))
		return DWARF_CB_ABORT;
	return DWARF_CB_OK;
}

static int dwfl_thread_cb(Dwfl_Thread *th, void *arg)
{
	struct dwfl_ctx *x = arg;
	pid_t tid = dwfl_thread_tid(th);
	struct hs_stacks *out = x->out;
	int r;

	x->cur = NULL;
	for (size_t i = 0; i < out->n; i++)
		if (out->v[i].tid == tid)
			x->cur = &out->v[i];
	if (!x->cur || x->cur->nframes)
		return DWARF_CB_OK; /* not in the target's list, or seen */
	x->alloc = 0;
	r = dwfl_thread_getframes(th, dwfl_frame_cb, x);
	/* -1: libdwfl's own error; our callback's aborts set x->cur->error. */
	if (r == -1 && !x->cur->error)
		set_error(x->cur, xasprintf("%s", dwfl_errmsg(-1)));
	return hs_interrupted ? DWARF_CB_ABORT : DWARF_CB_OK;
}

static const Dwfl_Callbacks core_callbacks = {
	.find_elf = dwfl_build_id_find_elf,
	.find_debuginfo = dwfl_standard_find_debuginfo,
};

static int unwind_core(struct hs_target *t, const struct hs_stacks_opts *o,
		       unsigned max, struct hs_stacks *out)
{
	const char *path = o && o->core_path ? o->core_path : t->source;
	struct dwfl_ctx x = { out, max, NULL, 0 };
	Dwfl *dwfl = NULL;
	Elf *elf = NULL;
	int fd, r;

	if (!path) {
		out->error = xasprintf("no core file to unwind");
		return 0;
	}
	/* libdwfl's core thread iteration ends at the first NT_PRSTATUS
	 * whose pid is not positive, and leaks its iteration state when it
	 * does (elfutils 0.188 core_next_thread returns the pid as is and
	 * only frees that state when the notes run out).  Such a pid means
	 * a corrupt note: say so rather than hand it over. */
	for (size_t i = 0; i < t->nthreads; i++)
		if (t->threads[i].tid <= 0) {
			out->error = xasprintf("thread %zu of the core has pid %d (corrupt "
					       "NT_PRSTATUS): not unwound", i,
					       (int)t->threads[i].tid);
			return 0;
		}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		out->error = xasprintf("cannot open '%s': %s", path, strerror(errno));
		return 0;
	}
	elf_version(EV_CURRENT);
	elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!elf) {
		out->error = xasprintf("libelf: %s", elf_errmsg(-1));
		goto out;
	}
	dwfl = dwfl_begin(&core_callbacks);
	if (!dwfl) {
		out->error = xasprintf("libdwfl: %s", dwfl_errmsg(-1));
		goto out;
	}
	dwfl_report_begin(dwfl);
	r = dwfl_core_file_report(dwfl, elf, o ? o->exe : NULL);
	if (dwfl_report_end(dwfl, NULL, NULL) != 0 || r < 0) {
		out->error = xasprintf("libdwfl: cannot report the core's modules: %s",
				       dwfl_errmsg(-1));
		goto out;
	}
	r = dwfl_core_file_attach(dwfl, elf);
	if (r < 0) {
		out->error = xasprintf("libdwfl: cannot read the core's threads: %s",
				       dwfl_errmsg(-1));
		goto out;
	}
	out->method = "libdwfl";
	r = dwfl_getthreads(dwfl, dwfl_thread_cb, &x);
	if (r == -1 && !hs_interrupted)
		out->error = xasprintf("libdwfl: %s", dwfl_errmsg(-1));
out:
	if (dwfl)
		dwfl_end(dwfl);
	if (elf)
		elf_end(elf);
	close(fd);
	return hs_interrupted ? -HS_E_INTERRUPTED : 0;
}

/* ---- the interface ----------------------------------------------------- */

int hs_stacks_collect(struct hs_target *t, const struct hs_stacks_opts *o,
		      struct hs_stacks *out)
{
	unsigned max = o && o->max_frames ? o->max_frames : DEFAULT_MAX_FRAMES;
	int err = 0;

	memset(out, 0, sizeof(*out));
	out->method = "registers";
	if (!t->nthreads)
		return -HS_E_NOT_FOUND;
	if (max > LIMIT_MAX_FRAMES)
		max = LIMIT_MAX_FRAMES;
	out->v = hs_xcalloc(t->nthreads, sizeof(*out->v));
	out->n = t->nthreads;
	for (size_t i = 0; i < t->nthreads; i++) {
		out->v[i].tid = t->threads[i].tid;
		memcpy(out->v[i].name, t->threads[i].name, sizeof(out->v[i].name));
		out->v[i].name[sizeof(out->v[i].name) - 1] = 0;
	}
	if (t->caps & HS_CAP_PTRACE_UNWIND)
		err = unwind_live(t, max, out);
	else if (t->caps & HS_CAP_POST_MORTEM)
		err = unwind_core(t, o, max, out);
	else
		out->error = xasprintf("no unwinder for this target");
	for (size_t i = 0; i < out->n; i++)
		frame_from_regs(t, &out->v[i]);
	return err;
}

void hs_stacks_release(struct hs_stacks *st)
{
	if (!st)
		return;
	for (size_t i = 0; i < st->n; i++) {
		free(st->v[i].frames);
		free(st->v[i].error);
	}
	free(st->v);
	free(st->error);
	memset(st, 0, sizeof(*st));
}
