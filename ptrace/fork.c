/*
 * Low-pause snapshots: a copy-on-write fork made inside the target
 * (doc/ptrace.md; the technique of CRIU's compel, without a
 * parasite).
 *
 * With every thread stopped, one thread is made to execute clone(2) with
 * no flags: a new process that shares nothing but copy-on-write memory,
 * has exit signal 0 (so no SIGCHLD, and wait(2) without __WALL/__WCLONE in
 * the target does not see it) and is born traced by us (PTRACE_O_TRACECLONE)
 * and stopped.  The thread's registers and signal mask are put back, the
 * target runs again, and reads go to the child, which holds the memory as
 * it was at the clone.  Afterwards the child is SIGKILLed and waited for;
 * being the target's child it is then the target's zombie, so wait4() is
 * injected the same way into one thread to reap it.
 *
 * Nothing is written into the target's memory: the syscall instruction
 * (0f 05) is found in its own executable mappings, the vDSO first.  Any
 * 0f 05 pair will do, even inside another instruction, because decoding
 * starts at rip.
 *
 * Safety, and what a SIGKILL of heapscan leaves behind:
 *  - SIGINT/SIGTERM only set hs_interrupted; an injection already started
 *    is always finished (waitpid's EINTR is retried), so the thread gets
 *    its registers back before anything else happens.
 *  - The child gets PTRACE_O_EXITKILL at its first stop: if heapscan dies
 *    it is killed by the kernel and stays a zombie of the target (no
 *    signal is sent, wait(2) without __WALL does not see it) until the
 *    target exits or waits with __WALL.
 *  - Between the clone and that first stop (microseconds), the child would
 *    run if heapscan died: it was cloned with every signal blocked and the
 *    trap flag set, so it executes at most one instruction (we check that
 *    it is not another syscall) and dies of the forced SIGTRAP.
 *  - If heapscan is SIGKILLed while the injected syscall itself is in
 *    flight (about 0.1 ms), the kernel detaches the thread with our
 *    registers: it takes the same SIGTRAP and the target dies.  That
 *    window cannot be closed from user space (CRIU has the same one); it
 *    is why the default stays stop-and-read (see heapscan(1)).
 *
 * Restarting the interrupted syscall: a thread stopped by PTRACE_INTERRUPT
 * inside a blocking syscall has rax = -ERESTART* and orig_rax = its number;
 * the kernel rewinds it (arch_do_signal_or_restart) on its way back to user
 * mode after the stop.  After the injection the thread sits in a
 * syscall-exit-stop instead, so with its registers back we PTRACE_INTERRUPT
 * it and PTRACE_CONT: it traps once more into an ordinary PTRACE_EVENT_STOP,
 * the very state hs_live_seize_all() left it in, and the detach restarts
 * (or, if a signal came meanwhile, interrupts) its syscall exactly as it
 * would have.  (A detach straight from the syscall-exit-stop happens to
 * rewind too, since detaching sets TIF_SIGPENDING; we do not rely on it.)
 */
#include "internal.h"

#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef PTRACE_EVENT_STOP
#define PTRACE_EVENT_STOP 128
#endif

#define X86_EFLAGS_TF 0x100u
#define USER_CS_64 0x33u
#define SCAN_BUDGET (64u << 20)  /* bytes of code searched for 0f 05 */
#define MAX_ODD_STOPS 64         /* unexpected stops tolerated per injection */

bool hs_live_forked(const struct hs_target *t)
{
	const struct live_priv *p = t->priv;

	return p && !strcmp(t->ops->name, "live") && p->forked;
}

const char *hs_live_fork_fallback(const struct hs_target *t)
{
	const struct live_priv *p = t->priv;

	return p && !strcmp(t->ops->name, "live") ? p->fork_fallback : NULL;
}

/* ---- finding a syscall instruction ---- */

/* Bytes after our syscall must not be another syscall: see the header. */
static bool is_syscall_at(const unsigned char *b)
{
	return (b[0] == 0x0f && (b[1] == 0x05 || b[1] == 0x34)) ||
	       (b[0] == 0xcd && b[1] == 0x80);
}

static bool has_token(const char *list, const char *tok)
{
	size_t n = strlen(tok);

	for (const char *s = list; (s = strstr(s, tok)); s += n)
		if ((s == list || s[-1] == ' ') && (s[n] == ' ' || s[n] == '\0'))
			return true;
	return false;
}

/* Searches m's bytes for 0f 05 not followed by another syscall. */
static int scan_map(struct hs_target *t, const struct hs_map *m, size_t *budget,
		    hs_addr_t *out)
{
	unsigned char buf[65536 + 4];
	hs_addr_t a = m->start;

	while (a < m->end && *budget) {
		size_t want = sizeof(buf), n = 0;

		if (m->end - a < want)
			want = (size_t)(m->end - a);
		if (want > *budget)
			want = *budget;
		if (hs_target_read(t, a, buf, want, &n) < 0 || n < 4)
			return -HS_E_NOT_FOUND;
		*budget -= n < *budget ? n : *budget;
		for (size_t i = 0; i + 4 <= n; i++)
			if (buf[i] == 0x0f && buf[i + 1] == 0x05 && !is_syscall_at(buf + i + 2)) {
				*out = a + i;
				return 0;
			}
		/* Overlap 3 bytes so a pair across the boundary is seen. */
		a += n - 3;
		if (n < want)
			break;
	}
	return -HS_E_NOT_FOUND;
}

static int find_syscall_insn(struct hs_target *t, hs_addr_t *out)
{
	size_t budget = SCAN_BUDGET;
	const char *test = getenv("HEAPSCAN_TEST_FORK");

	if (test && !strcmp(test, "no-insn"))
		return -HS_E_NOT_FOUND;
	/* The vDSO first (small, always there), then libc, then any code.
	 * Never [vsyscall]: it is execute-only and emulated. */
	for (int pass = 0; pass < 3; pass++)
		for (size_t i = 0; i < t->maps.n; i++) {
			const struct hs_map *m = &t->maps.v[i];
			bool vdso = !strcmp(m->path, "[vdso]");
			bool libc = !vdso && strstr(m->path, "/libc") != NULL;

			if (!(m->perms & HS_PERM_X) || !(m->perms & HS_PERM_R) ||
			    !strcmp(m->path, "[vsyscall]"))
				continue;
			if ((pass == 0 && !vdso) || (pass == 1 && !libc) ||
			    (pass == 2 && (vdso || libc)))
				continue;
			if (scan_map(t, m, &budget, out) == 0)
				return 0;
		}
	return -HS_E_NOT_FOUND;
}

/* ---- injecting one syscall ---- */

static int get_regs(pid_t tid, struct hs_regs *r)
{
	struct iovec iov = { r, sizeof(*r) };

	if (ptrace(PTRACE_GETREGSET, tid, NT_PRSTATUS, &iov) < 0)
		return -errno;
	return iov.iov_len == sizeof(*r) ? 0 : -EIO;
}

static int set_regs(pid_t tid, const struct hs_regs *r)
{
	struct iovec iov = { (void *)r, sizeof(*r) };

	return ptrace(PTRACE_SETREGSET, tid, NT_PRSTATUS, &iov) < 0 ? -errno : 0;
}

/*
 * The next stop or end of tid.  Never gives up on EINTR: an injection,
 * once started, is finished before heapscan looks at hs_interrupted.
 * Returns 0 with *st, or -ESRCH when tid has exited.
 */
static int wait_tid(pid_t tid, int *st)
{
	for (;;) {
		pid_t r = waitpid(tid, st, __WALL);

		if (r == tid) {
			if (WIFEXITED(*st) || WIFSIGNALED(*st))
				return -ESRCH;
			if (WIFSTOPPED(*st))
				return 0;
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		return r < 0 ? (errno == ECHILD ? -ESRCH : -errno) : -EIO;
	}
}

/* The stop after the injection: back to a plain PTRACE_EVENT_STOP (see
 * the header), recording a signal that arrives instead. */
static int settle(struct seized *s)
{
	int st, ret;

	if (ptrace(PTRACE_INTERRUPT, s->tid, 0, 0) < 0 ||
	    ptrace(PTRACE_CONT, s->tid, 0, 0) < 0)
		return errno == ESRCH ? -ESRCH : -errno;
	for (int odd = 0; odd < MAX_ODD_STOPS; odd++) {
		ret = wait_tid(s->tid, &st);
		if (ret < 0)
			return ret;
		if ((st >> 16) == PTRACE_EVENT_STOP) {
			int sig = WSTOPSIG(st);

			if (sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU)
				s->group_stop = true;
			return 0;
		}
		if ((st >> 16) == 0 && WSTOPSIG(st) != (SIGTRAP | 0x80)) {
			/* Signal-delivery-stop: the trap we asked for is
			 * dropped by the detach, which delivers this. */
			s->pending_sig = WSTOPSIG(st);
			return 0;
		}
		if (ptrace(PTRACE_CONT, s->tid, 0, 0) < 0)
			return -errno;
	}
	return -EIO;
}

struct inject {
	long nr;
	uint64_t args[6];
	bool clone;         /* expect PTRACE_EVENT_CLONE */
	long ret;           /* the syscall's return value */
	pid_t child;        /* clone: the new process, stopped; 0 if none */
};

/* Catches the clone child's first stop and arms PTRACE_O_EXITKILL. */
static int catch_child(pid_t child)
{
	int st, ret;

	for (int odd = 0; odd < MAX_ODD_STOPS; odd++) {
		ret = wait_tid(child, &st);
		if (ret < 0)
			return ret;
		if ((st >> 16) == PTRACE_EVENT_STOP || WSTOPSIG(st) == SIGSTOP)
			return ptrace(PTRACE_SETOPTIONS, child, 0, (void *)PTRACE_O_EXITKILL) < 0
				       ? -errno : 0;
		/* Anything else would let it run; it must not.  Kill it. */
		break;
	}
	kill(child, SIGKILL);
	return -EIO;
}

/*
 * Makes stopped thread s execute in->nr(in->args) at insn and puts it
 * back: same registers (orig), same signal mask, a PTRACE_EVENT_STOP again.
 * Returns 0 with in->ret (and in->child), or a transport error: -ESRCH if
 * the thread died.  On an error after the clone the child is killed.
 */
static int inject(struct seized *s, const struct hs_regs *orig, hs_addr_t insn,
		  struct inject *in)
{
	uint64_t mask = 0, all = ~0ull;
	struct hs_regs r = *orig;
	bool entered = false, done = false;
	int st, ret = 0, ret2;
	long opts = PTRACE_O_TRACESYSGOOD | (in->clone ? PTRACE_O_TRACECLONE : 0);

	in->child = 0;
	in->ret = -ENOSYS;
	/* Signals stay pending while the thread runs for us (SIGKILL and
	 * SIGSTOP cannot be blocked; the kernel drops them from the mask). */
	if (ptrace(PTRACE_GETSIGMASK, s->tid, (void *)sizeof(mask), &mask) < 0 ||
	    ptrace(PTRACE_SETOPTIONS, s->tid, 0, (void *)opts) < 0)
		return errno == ESRCH ? -ESRCH : -errno;
	if (ptrace(PTRACE_SETSIGMASK, s->tid, (void *)sizeof(all), &all) < 0)
		return -errno;

	r.r[HS_REG_RIP] = insn;
	r.r[HS_REG_RAX] = (uint64_t)in->nr;
	r.r[HS_REG_ORIG_RAX] = (uint64_t)-1; /* no syscall restart on resume */
	r.r[HS_REG_RDI] = in->args[0];
	r.r[HS_REG_RSI] = in->args[1];
	r.r[HS_REG_RDX] = in->args[2];
	r.r[HS_REG_R10] = in->args[3];
	r.r[HS_REG_R8] = in->args[4];
	r.r[HS_REG_R9] = in->args[5];
	/* TF: a clone child that ever ran untraced dies after one
	 * instruction (see the header); the thread itself never returns to
	 * user mode with these registers. */
	r.r[HS_REG_EFLAGS] |= X86_EFLAGS_TF;
	ret = set_regs(s->tid, &r);
	if (ret < 0)
		goto restore;
	if (ptrace(PTRACE_SYSCALL, s->tid, 0, 0) < 0) {
		ret = -errno;
		goto restore;
	}
	for (int odd = 0; !done && odd < MAX_ODD_STOPS;) {
		int sig, ev;

		ret = wait_tid(s->tid, &st);
		if (ret < 0)
			goto out_dead;
		sig = WSTOPSIG(st);
		ev = st >> 16;
		if (sig == (SIGTRAP | 0x80) && ev == 0) {
			if (entered)
				done = true;
			entered = true;
		} else if (ev == PTRACE_EVENT_CLONE && in->clone && entered && !in->child) {
			unsigned long msg = 0;

			if (ptrace(PTRACE_GETEVENTMSG, s->tid, 0, &msg) == 0 && msg) {
				in->child = (pid_t)msg;
				ret2 = catch_child(in->child);
				if (ret2 < 0) {
					hs_log(HS_LOG_WARN, "fork snapshot: child %d: %s",
					       (int)in->child, hs_strerror(ret2));
					in->child = 0;
				}
			}
		} else if (ev == 0 && sig != SIGTRAP) {
			/* SIGSTOP (unblockable): deliver it at detach. */
			if (!s->pending_sig)
				s->pending_sig = sig;
			odd++;
		} else {
			odd++;   /* a group-stop or stray trap: keep going */
		}
		if (done)
			break;
		if (ptrace(PTRACE_SYSCALL, s->tid, 0, 0) < 0) {
			ret = -errno;
			goto restore;
		}
	}
	if (!done) {
		ret = -EIO;
		goto restore;
	}
	ret = get_regs(s->tid, &r);
	if (ret == 0)
		in->ret = (long)r.r[HS_REG_RAX];

restore:
	ret2 = set_regs(s->tid, orig);
	if (ret2 == 0 && ptrace(PTRACE_SETSIGMASK, s->tid, (void *)sizeof(mask), &mask) < 0)
		ret2 = -errno;
	if (ret2 == 0 && ptrace(PTRACE_SETOPTIONS, s->tid, 0, 0) < 0)
		ret2 = -errno;
	if (ret2 == 0)
		ret2 = settle(s);
	if (ret2 == 0 && get_regs(s->tid, &r) == 0 && memcmp(&r, orig, sizeof(r)))
		hs_log(HS_LOG_WARN, "thread %d: registers differ after the injection",
		       (int)s->tid);
	if (ret2 < 0) {
		hs_log(HS_LOG_ERROR, "thread %d: cannot restore its state: %s", (int)s->tid,
		       hs_strerror(ret2));
		if (!ret)
			ret = ret2;
	}
	if (ret < 0 && in->child) {
		kill(in->child, SIGKILL);
		while (waitpid(in->child, &st, __WALL) < 0 && errno == EINTR)
			;
		in->child = 0;
	}
	return ret;

out_dead:
	/* The thread is gone (the target was killed): nothing to restore. */
	s->stopped = false;
	if (in->child) {
		kill(in->child, SIGKILL);
		while (waitpid(in->child, &st, __WALL) < 0 && errno == EINTR)
			;
		in->child = 0;
	}
	return ret;
}

/* ---- the snapshot ---- */

static const char *read_seccomp(pid_t pid, int *mode)
{
	char path[64];
	struct hs_proc_status_extra x;
	FILE *f;
	int ret;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return "its /proc status is unreadable";
	ret = hs_proc_parse_status_extra(f, &x);
	fclose(f);
	if (ret < 0)
		return "its /proc status is unreadable";
	*mode = x.seccomp;
	return NULL;
}

/* The thread to inject into: one our interrupt stopped cleanly, the main
 * thread if possible. */
static struct seized *pick_thread(struct live_priv *p)
{
	struct seized *best = NULL;

	for (size_t i = 0; i < p->nseized; i++) {
		struct seized *s = &p->seized[i];

		if (!s->stopped || s->group_stop || s->pending_sig)
			continue;
		if (s->tid == p->pid)
			return s;
		if (!best)
			best = s;
	}
	return best;
}

static const struct hs_thread *thread_of(const struct hs_target *t, pid_t tid)
{
	for (size_t i = 0; i < t->nthreads; i++)
		if (t->threads[i].tid == tid)
			return &t->threads[i];
	return NULL;
}

static int refuse(struct live_priv *p, const char *why)
{
	p->fork_fallback = why;
	return -HS_E_UNSUPPORTED;
}

int hs_live_fork_start(struct hs_target *t, struct live_priv *p)
{
	struct inject in = { .nr = SYS_clone, .clone = true };
	const struct hs_thread *th;
	struct seized *s;
	hs_addr_t insn = 0;
	const char *why;
	int mode = 0, ret;

	p->forked = false;
	p->fork_fallback = NULL;
	why = read_seccomp(p->pid, &mode);
	if (why)
		return refuse(p, why);
	if (mode == 2)
		return refuse(p, "the process has a seccomp filter (clone may be refused "
			      "or kill it)");
	if (mode)
		return refuse(p, "the process is in seccomp strict mode");
	for (size_t i = 0; i < p->nseized; i++)
		if (p->seized[i].group_stop)
			return refuse(p, "the process is stopped (job control) already");
	s = pick_thread(p);
	th = s ? thread_of(t, s->tid) : NULL;
	if (!th || !th->has_regs)
		return refuse(p, "no thread is in a state to run clone()");
	if (th->regs.r[HS_REG_CS] != USER_CS_64)
		return refuse(p, "it is a 32-bit process");
	if (find_syscall_insn(t, &insn) < 0)
		return refuse(p, "no syscall instruction was found in its code");

	/* clone(flags 0: no CLONE_*, exit signal 0; stack 0: the caller's). */
	ret = inject(s, &th->regs, insn, &in);
	if (ret == -ESRCH)
		return ret;
	if (ret < 0)
		return refuse(p, "injecting clone() failed");
	if (in.ret < 0 || !in.child) {
		hs_log(HS_LOG_DEBUG, "clone in pid %d returned %ld", (int)p->pid, in.ret);
		if (in.child) {
			int st;
			kill(in.child, SIGKILL);
			while (waitpid(in.child, &st, __WALL) < 0 && errno == EINTR)
				;
		}
		return refuse(p, "clone() failed in the process");
	}

	/* Mappings the child does not have as they were: read the parent. */
	free(p->from_parent);
	p->from_parent = hs_xcalloc(t->maps.n ? t->maps.n : 1, 1);
	for (size_t i = 0; i < t->maps.n; i++) {
		const char *vf = t->maps.v[i].vmflags;

		/* MADV_DONTFORK ("dc") is absent from the child and
		 * MADV_WIPEONFORK ("wf") reads as zeros there, so these come
		 * from the running parent: they may be inconsistent with the
		 * rest of the snapshot. */
		p->from_parent[i] = has_token(vf, "dc") || has_token(vf, "wf");
	}
	p->snap_pid = in.child;
	p->snap_insn = insn;
	p->snap_mem_fd = -1;
	p->forked = true;
	hs_log(HS_LOG_DEBUG, "fork snapshot: pid %d, syscall at %#llx, thread %d",
	       (int)in.child, (unsigned long long)insn, (int)s->tid);
	return 0;
}

/* Stops one thread of the target to inject wait4(); 0 or an error. */
static int reap_in_target(struct live_priv *p, pid_t child)
{
	char path[64];
	struct seized s;
	struct hs_regs orig;
	int ret = -ESRCH;
	DIR *d;
	struct dirent *de;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)p->pid);
	d = opendir(path);
	if (!d)
		return -ESRCH;
	/* The first thread that lets us stop it cleanly. */
	while ((de = readdir(d))) {
		char *end;
		long tid = strtol(de->d_name, &end, 10);

		if (*end || tid <= 0)
			continue;
		memset(&s, 0, sizeof(s));
		s.tid = (pid_t)tid;
		if (ptrace(PTRACE_SEIZE, s.tid, 0, 0) < 0)
			continue;
		if (ptrace(PTRACE_INTERRUPT, s.tid, 0, 0) < 0) {
			ptrace(PTRACE_DETACH, s.tid, 0, 0);
			continue;
		}
		hs_live_wait_stop(&s);
		if (!s.stopped)
			continue;
		if (s.group_stop || s.pending_sig || get_regs(s.tid, &orig) < 0 ||
		    orig.r[HS_REG_CS] != USER_CS_64) {
			ptrace(PTRACE_DETACH, s.tid, 0, (void *)(long)s.pending_sig);
			continue;
		}
		ret = 0;
		break;
	}
	closedir(d);
	if (ret < 0)
		return ret;
	{
		/* wait4(child, NULL, __WALL | WNOHANG, NULL): the child is a
		 * zombie already (we waited for it as its tracer), so this
		 * never blocks the thread. */
		struct inject in = { .nr = SYS_wait4,
				     .args = { (uint64_t)child, 0,
					       (uint64_t)(__WALL | WNOHANG), 0 } };

		ret = inject(&s, &orig, p->snap_insn, &in);
		if (ret == 0 && in.ret != child && in.ret != -ECHILD)
			hs_log(HS_LOG_WARN, "could not reap snapshot child %d in pid %d (%ld)",
			       (int)child, (int)p->pid, in.ret);
	}
	if (s.stopped && ptrace(PTRACE_DETACH, s.tid, 0, (void *)(long)s.pending_sig) < 0 &&
	    errno != ESRCH)
		hs_log(HS_LOG_WARN, "cannot detach thread %d: %s", (int)s.tid, strerror(errno));
	return ret;
}

void hs_live_fork_end(struct hs_target *t, struct live_priv *p)
{
	pid_t child = p->snap_pid;
	uint64_t t0;
	int st, ret;

	if (!child)
		return;
	p->snap_pid = 0;
	if (p->snap_mem_fd >= 0) {
		close(p->snap_mem_fd);
		p->snap_mem_fd = -1;
	}
	kill(child, SIGKILL);
	for (;;) {
		pid_t r = waitpid(child, &st, __WALL);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 || WIFEXITED(st) || WIFSIGNALED(st))
			break;
	}
	/* Now the target's zombie: reap it there (a second, short stop of
	 * one thread; the others keep running). */
	t0 = hs_now_ns();
	ret = reap_in_target(p, child);
	if (ret < 0 && ret != -ESRCH)
		hs_log(HS_LOG_WARN, "snapshot child %d left as a zombie of pid %d: %s",
		       (int)child, (int)p->pid, hs_strerror(ret));
	t->stop_ns += hs_now_ns() - t0;
	free(p->from_parent);
	p->from_parent = NULL;
}
