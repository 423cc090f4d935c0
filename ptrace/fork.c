/*
 * Low-pause snapshots: a copy-on-write fork made inside the target
 * (doc/fork.md; the technique of CRIU's compel, without a parasite).
 *
 * With every thread stopped, one thread is made to execute clone(2) with
 * no flags: a new process that shares nothing but copy-on-write memory,
 * has exit signal 0 (so no SIGCHLD, and wait(2) without __WALL/__WCLONE in
 * the target does not see it) and is born traced (PTRACE_O_TRACECLONE)
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
 * Who does it: a guard process (guard_main), a child of heapscan in its
 * own session.  heapscan seizes and stops every thread as for any read,
 * picks the thread to run clone(), releases that one thread, and the
 * guard seizes and stops it again (it resumes its interrupted syscall in
 * between, as on any detach: harmless).  The guard alone traces it and
 * the child; it injects clone(), restores the thread, releases it and
 * hands heapscan an fd of /proc/CHILD/mem (SCM_RIGHTS) and the thread's
 * registers.  heapscan then releases the other threads and reads.  At the
 * end heapscan closes its socket; the guard kills the child, reaps it
 * inside the target (wait4 injected in a thread it stops again) and exits.
 *
 * Why a second process (doc/fork.md): while a thread has the injected
 * registers (or its signal mask all blocked), the death of its tracer
 * resumes it with them: no order of ptrace requests avoids that, since
 * clone's return value lands in rax after the page-table copy and only a
 * live tracer can put the registers back.  So the tracer must not be the
 * process people and the OOM killer kill.  If heapscan dies at any step
 * the guard (which ignores SIGINT/SIGTERM/SIGHUP and sits in another
 * process group) finishes the injection, restores, kills and reaps the
 * child, and exits.  Only a SIGKILL of the guard itself during an
 * injection leaves the thread harmed.
 *
 *  - The child is traced by the guard with PTRACE_O_EXITKILL from its
 *    first stop: it never outlives the guard.  Between the clone and that
 *    stop (microseconds), were the guard to die, the child would run: it
 *    was cloned with every signal blocked and the trap flag set, so it
 *    executes at most one instruction (we check that it is not another
 *    syscall) and dies of the forced SIGTRAP.
 *  - The child's exit signal is 0: no SIGCHLD for the target, and wait(2)
 *    in the target without __WALL/__WCLONE never returns it (but see
 *    doc/fork.md for a target that has run execve() since).
 *  - wait4 is injected at a syscall instruction looked for again at the
 *    end: the target may have run execve() in between, and the old
 *    address would be garbage in the new program.
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
#include <fcntl.h>
#include <poll.h>
#include <elf.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
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

static void test_step(int k);

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

/*
 * Running the instruction makes its page resident in the target: take one
 * on a page the process has already (both bytes), so the injection does
 * not grow its Rss (a vDSO page it never ran, say).  Unknown (no pagemap):
 * any will do.
 */
static bool resident(struct hs_target *t, hs_addr_t a)
{
	return hs_live_page_present(t, a) != 0 && hs_live_page_present(t, a + 1) != 0;
}

/* Searches m's bytes for 0f 05 not followed by another syscall, on a
 * resident page. */
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
			if (buf[i] == 0x0f && buf[i + 1] == 0x05 && !is_syscall_at(buf + i + 2) &&
			    resident(t, a + i)) {
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
 * Every message from the guard, one size: MSG_REPLY ends the clone (with
 * the child's mem fd), MSG_FINAL the reaping.  MSG_PRE is not sent: it is
 * what the guard leaves in the page it shares with heapscan before each
 * injection (the thread's own registers and mask), cleared once the
 * thread has them back, for heapscan to read only if the guard died
 * (heal()).  Writing it costs no syscall and wakes nobody mid-injection.
 */
enum { MSG_PRE = 1, MSG_REPLY, MSG_FINAL };

struct guard_msg {
	int32_t type;         /* MSG_* */
	int32_t code;         /* GUARD_*: REPLY; FINAL: OK, GONE or EXEC */
	pid_t child;          /* REPLY */
	pid_t tid;            /* PRE, REPLY: the thread */
	struct hs_regs regs;  /* PRE: its own registers; REPLY: at the clone */
	uint64_t mask;        /* PRE: its own signal mask */
	hs_addr_t insn;       /* PRE: the syscall instruction borrowed */
	uint64_t stop_ns;     /* REPLY: how long the guard held tid; FINAL:
				 the stop that reaped the child */
};

struct guard_shared {
	int pending;            /* pre holds an injection not finished */
	struct guard_msg pre;
};

static struct guard_shared *pre_shm;  /* in the guard: where MSG_PRE goes */

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
	if (pre_shm) {
		/* Before anything of the thread's changes: heapscan can put
		 * it back if we die from here on. */
		pre_shm->pre = (struct guard_msg){ .type = MSG_PRE, .tid = s->tid,
						   .regs = *orig, .mask = mask,
						   .insn = insn };
		__atomic_store_n(&pre_shm->pending, 1, __ATOMIC_RELEASE);
	}
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
	test_step(in->clone ? 2 : 8);
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
			else
				test_step(in->clone ? 3 : 9);
			entered = true;
		} else if (ev == PTRACE_EVENT_CLONE && in->clone && entered && !in->child) {
			unsigned long msg = 0;

			if (ptrace(PTRACE_GETEVENTMSG, s->tid, 0, &msg) == 0 && msg) {
				in->child = (pid_t)msg;
				test_step(4);
				ret2 = catch_child(in->child);
				if (ret2 == 0)
					test_step(5);
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
	if (ret2 == 0 && pre_shm)
		__atomic_store_n(&pre_shm->pending, 0, __ATOMIC_RELEASE);
	if (ret2 == 0 && get_regs(s->tid, &r) == 0 && memcmp(&r, orig, sizeof(r)))
		hs_log(HS_LOG_WARN, "thread %d: registers differ after the injection",
		       (int)s->tid);
	if (ret2 == -ESRCH && hs_live_dying(s->tid)) {
		/* Killed meanwhile (SIGKILL to the process): nothing to restore. */
		s->stopped = false;
		ret = -ESRCH;
		ret2 = 0;
	}
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

/* ---- the guard process ---- */

/*
 * What the guard tells heapscan.  GUARD_* codes; the reasons P falls back
 * to stop-and-read for are in guard_reason().
 */
enum {
	GUARD_OK = 0,
	GUARD_GONE,         /* the target exited */
	GUARD_EXEC,         /* the target runs another program now */
	GUARD_SIGNALLED,    /* the thread had a signal or a job-control stop */
	GUARD_INSN,         /* the syscall instruction is not there any more */
	GUARD_CLONE,        /* clone() failed in the target */
	GUARD_INJECT,       /* ptrace refused a step of the injection */
	GUARD_MEM,          /* the child's memory could not be opened */
};

static const char *guard_reason(int code)
{
	switch (code) {
	case GUARD_SIGNALLED:
		return "a signal arrived for the thread chosen to run clone()";
	case GUARD_INSN:
		return "its code changed under the syscall instruction";
	case GUARD_CLONE:
		return "clone() failed in the process";
	case GUARD_MEM:
		return "the snapshot's memory could not be opened";
	case GUARD_EXEC:
		return "the process executed a new program";
	default:
		return "injecting clone() failed";
	}
}

static int guard_pidfd = -1;  /* heapscan's, in the guard */
static int guard_test_step;   /* HEAPSCAN_TEST_FORK_STEP in the guard */

/*
 * The test hook: at step k the guard says so on stderr and waits for
 * heapscan to die (the test SIGKILLs it), then goes on.  Steps: 1 thread
 * seized by the guard; 2 clone's registers set; 3 clone's entry stop;
 * 4 PTRACE_EVENT_CLONE; 5 child caught, thread still injected; 6 thread
 * restored and released, snapshot served; 7 child killed, not reaped;
 * 8 wait4's registers set; 9 wait4's entry stop.
 */
static void test_step(int k)
{
	struct pollfd pf[2] = { { .fd = guard_pidfd, .events = POLLIN },
				{ .fd = -1, .events = POLLIN } };
	sigset_t usr1, old;

	if (k != guard_test_step || guard_pidfd < 0)
		return;
	/* SIGUSR1 to the guard also goes on (heapscan alive): a test sends
	 * the target a signal at this step first. */
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	sigprocmask(SIG_BLOCK, &usr1, &old);
	pf[1].fd = signalfd(-1, &usr1, SFD_CLOEXEC);
	fprintf(stderr, "heapscan: test: fork step %d guard %d\n", k, (int)getpid());
	fflush(stderr);
	while (poll(pf, pf[1].fd >= 0 ? 2 : 1, -1) < 0 && errno == EINTR)
		;
	if (pf[1].fd >= 0) {
		struct signalfd_siginfo si;

		/* Consume it: unblocked, it would end the guard. */
		if (pf[1].revents & POLLIN)
			(void)!read(pf[1].fd, &si, sizeof(si));
		close(pf[1].fd);
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
}

/* /proc/PID/auxv differs from what heapscan read when it opened the
 * process: an execve() replaced the program (new stack, new entry). */
static int identity(const struct hs_target *t, pid_t pid)
{
	char path[64];
	struct hs_buf sb = HS_BUF_INIT;
	int ret;

	snprintf(path, sizeof(path), "/proc/%d/auxv", (int)pid);
	ret = hs_buf_read_file(&sb, path);
	if (ret < 0 || !sb.len)
		ret = GUARD_GONE;
	else if (t->info.auxv_len &&
		 (sb.len != t->info.auxv_len || memcmp(sb.buf, t->info.auxv, sb.len)))
		ret = GUARD_EXEC;
	else
		ret = GUARD_OK;
	hs_buf_release(&sb);
	if (ret == GUARD_OK) {
		struct hs_proc_info info = { 0 };
		FILE *f;

		snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
		f = fopen(path, "re");
		if (!f || hs_proc_parse_status(f, &info) < 0 || info.state == 'Z' ||
		    info.state == 'X')
			ret = GUARD_GONE;
		if (f)
			fclose(f);
		hs_proc_info_release(&info);
	}
	return ret;
}

static void reap_child(pid_t child)
{
	int st;

	kill(child, SIGKILL);
	for (;;) {
		pid_t r = waitpid(child, &st, __WALL);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 || WIFEXITED(st) || WIFSIGNALED(st))
			break;
	}
}

/* Seizes and stops one thread for an injection: 0, or -errno with
 * nothing held. */
static int seize_one(pid_t tgid, pid_t tid, struct seized *s, struct hs_regs *regs)
{
	memset(s, 0, sizeof(*s));
	s->tid = tid;
	if (ptrace(PTRACE_SEIZE, tid, 0, 0) < 0)
		return -errno;
	if (ptrace(PTRACE_INTERRUPT, tid, 0, 0) < 0) {
		int err = errno;
		ptrace(PTRACE_DETACH, tid, 0, 0);
		return -err;
	}
	hs_live_wait_stop(s, tgid);
	if (!s->stopped)
		return -ESRCH;
	if (s->group_stop || s->pending_sig || get_regs(tid, regs) < 0 ||
	    regs->r[HS_REG_CS] != USER_CS_64) {
		ptrace(PTRACE_DETACH, tid, 0, (void *)(long)s->pending_sig);
		s->stopped = false;
		return -EAGAIN;
	}
	return 0;
}

/*
 * Reaps the killed child inside the target: wait4(child, NULL, __WALL |
 * WNOHANG, NULL) injected into the first thread that stops cleanly.  The
 * syscall instruction is looked for again in the maps of now: the
 * process may have run execve() since the snapshot.  Returns 0 or an
 * error; *stop_ns gets how long the thread was held.
 */
static int reap_in_target(struct hs_target *t, struct live_priv *p, pid_t child,
			  uint64_t *stop_ns)
{
	char path[64];
	struct seized s;
	struct hs_regs orig;
	hs_addr_t insn;
	int ret = -ESRCH;
	DIR *d;
	struct dirent *de;
	uint64_t t0;

	p->snap_pid = 0;   /* reads now go to the target itself */
	if (hs_live_read_maps(t, p->pid) < 0)
		return -ESRCH;
	if (find_syscall_insn(t, &insn) < 0)
		return -HS_E_NOT_FOUND;
	snprintf(path, sizeof(path), "/proc/%d/task", (int)p->pid);
	d = opendir(path);
	if (!d)
		return -ESRCH;
	t0 = hs_now_ns();
	while ((de = readdir(d))) {
		char *end;
		long tid = strtol(de->d_name, &end, 10);

		if (*end || tid <= 0)
			continue;
		if (seize_one(p->pid, (pid_t)tid, &s, &orig) == 0) {
			ret = 0;
			break;
		}
	}
	closedir(d);
	if (ret == 0) {
		/* The child is a zombie already (we waited for it as its
		 * tracer), so this never blocks the thread. */
		struct inject in = { .nr = SYS_wait4,
				     .args = { (uint64_t)child, 0,
					       (uint64_t)(__WALL | WNOHANG), 0 } };

		ret = inject(&s, &orig, insn, &in);
		if (ret == 0 && in.ret != child && in.ret != -ECHILD)
			hs_log(HS_LOG_WARN, "could not reap snapshot child %d in pid %d (%ld)",
			       (int)child, (int)p->pid, in.ret);
		if (s.stopped && ptrace(PTRACE_DETACH, s.tid, 0, (void *)(long)s.pending_sig) < 0 &&
		    errno != ESRCH)
			hs_log(HS_LOG_WARN, "cannot detach thread %d: %s", (int)s.tid,
			       strerror(errno));
	}
	*stop_ns = hs_now_ns() - t0;
	return ret;
}

static void send_msg(int sock, const struct guard_msg *m, int fd)
{
	struct iovec iov = { (void *)m, sizeof(*m) };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	memset(&u, 0, sizeof(u));
	if (fd >= 0) {
		struct cmsghdr *c;

		mh.msg_control = u.buf;
		mh.msg_controllen = sizeof(u.buf);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	/* heapscan may be dead: EPIPE (SIGPIPE is ignored), nothing to do. */
	while (sendmsg(sock, &mh, MSG_NOSIGNAL) < 0 && errno == EINTR)
		;
}

/* Blocks until heapscan closes its end or dies. */
static void wait_parent(int sock)
{
	struct pollfd pf[2] = { { .fd = sock, .events = POLLIN },
				{ .fd = guard_pidfd, .events = POLLIN } };
	char c;

	for (;;) {
		int n = poll(pf, guard_pidfd >= 0 ? 2 : 1, -1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || (pf[1].revents & POLLIN))
			return;
		if (pf[0].revents) {
			ssize_t r = read(sock, &c, 1);
			if (r <= 0 && !(r < 0 && errno == EINTR))
				return;
		}
	}
}

/*
 * The guard: a child of heapscan in its own session, which alone traces
 * the thread that runs clone() and the snapshot child.  If heapscan dies
 * at any moment (SIGKILL, the OOM killer, a timeout killing its process
 * group), the guard finishes the injection, puts the thread back, kills
 * and reaps the child, and exits.  Never returns.
 */
struct guard_job {
	pid_t tid;            /* the thread to run clone() */
	hs_addr_t insn;       /* the syscall instruction to use */
};

static void guard_main(struct hs_target *t, struct live_priv *p, int sock, pid_t parent)
{
	struct inject in = { .nr = SYS_clone, .clone = true };
	struct guard_msg r = { .type = MSG_REPLY, .code = GUARD_INJECT };
	struct guard_msg fin = { .type = MSG_FINAL, .code = GUARD_OK };
	struct guard_job job;
	ssize_t got;
	pid_t tid;
	hs_addr_t insn;
	struct seized s;
	struct sigaction sa;
	const char *step = getenv("HEAPSCAN_TEST_FORK_STEP");
	unsigned char code[2];
	size_t n = 0;
	int memfd = -1, null, ret;
	uint64_t t0;

	/* Out of heapscan's process group and terminal: a Ctrl-C or a kill
	 * of the group ends heapscan, and the guard then cleans up. */
	setsid();
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGQUIT, &sa, NULL);
	sigaction(SIGPIPE, &sa, NULL);
	prctl(PR_SET_NAME, "heapscan-guard", 0, 0, 0);
	/* As a fork of heapscan it shows heapscan's resident size, so the OOM
	 * killer would rank it as high: exempt it where we may (root).  It
	 * only waits on a socket; heapscan stays the one to kill. */
	{
		int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
		if (fd >= 0) {
			(void)!write(fd, "-1000", 5);
			close(fd);
		}
	}
	/* heapscan's stdin and stdout are not ours (its report must end
	 * when heapscan does), nor its other files: output files, the
	 * target's mem fd.  stderr stays, for warnings. */
	null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null >= 0) {
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
		close(null);
	}
	if (sock > 3)
		close_range(3, (unsigned)sock - 1, 0);
	close_range((unsigned)sock + 1, ~0u, 0);
	p->mem_fd = -1;
	p->use_pread = false;
	p->nseized = 0;        /* heapscan's tracees, not ours */
	/* The reading policy's files went with the rest: open the target's
	 * pagemap again, or the guard's own reads (the syscall instruction,
	 * found again at the end) would fault pages into the target. */
	hs_live_policy_reopen(t, p);
	guard_pidfd = (int)syscall(SYS_pidfd_open, parent, 0);
	pre_shm = p->guard_shm;
	guard_test_step = step ? atoi(step) : 0;

	/* Ready before heapscan stops anything; the job comes once it has
	 * released the thread.  EOF: no job (no snapshot after all, or
	 * heapscan died), and the thread is free. */
	do
		got = recv(sock, &job, sizeof(job), MSG_WAITALL);
	while (got < 0 && errno == EINTR);
	if (got != (ssize_t)sizeof(job))
		_exit(0);
	tid = r.tid = job.tid;
	insn = job.insn;

	t0 = hs_now_ns();
	ret = seize_one(p->pid, tid, &s, &r.regs);
	if (ret < 0) {
		r.code = ret == -EAGAIN ? GUARD_SIGNALLED : GUARD_GONE;
		goto reply;
	}
	test_step(1);
	/* Between heapscan's release of the thread and our stop the process
	 * ran: it may have run execve(), or unmapped the code we chose. */
	r.code = identity(t, p->pid);
	if (r.code == GUARD_OK) {
		ret = hs_target_read(t, insn, code, 2, &n);
		/* A process being killed keeps its /proc entry (we trace
		 * it) but loses its memory: gone, not changed. */
		if (ret < 0 && (ret == -ESRCH || hs_live_dying(p->pid) ||
				  identity(t, p->pid) == GUARD_GONE))
			r.code = GUARD_GONE;
		else if (ret < 0 || n != 2 || code[0] != 0x0f || code[1] != 0x05)
			r.code = GUARD_INSN;
	}
	if (r.code != GUARD_OK) {
		ptrace(PTRACE_DETACH, tid, 0, 0);
		goto reply;
	}
	ret = inject(&s, &r.regs, insn, &in);
	if (ret == -ESRCH)
		r.code = GUARD_GONE;
	else if (ret < 0)
		r.code = GUARD_INJECT;
	else if (in.ret < 0 || !in.child)
		r.code = GUARD_CLONE;
	if (r.code == GUARD_OK) {
		char path[64];

		snprintf(path, sizeof(path), "/proc/%d/mem", (int)in.child);
		memfd = open(path, O_RDONLY | O_CLOEXEC);
		if (memfd < 0)
			r.code = GUARD_MEM;
	}
	if (s.stopped && ptrace(PTRACE_DETACH, tid, 0, (void *)(long)s.pending_sig) < 0 &&
	    errno != ESRCH)
		hs_log(HS_LOG_WARN, "cannot detach thread %d: %s", (int)tid, strerror(errno));
	r.stop_ns = hs_now_ns() - t0;
	if (r.code != GUARD_OK && in.child) {
		uint64_t ns;

		reap_child(in.child);
		(void)reap_in_target(t, p, in.child, &ns);
		in.child = 0;
	}
	r.child = in.child;

reply:
	send_msg(sock, &r, memfd);
	if (memfd >= 0)
		close(memfd);
	if (r.code != GUARD_OK)
		_exit(0);
	test_step(6);
	wait_parent(sock);

	reap_child(in.child);
	test_step(7);
	fin.code = identity(t, p->pid);
	ret = reap_in_target(t, p, in.child, &fin.stop_ns);
	if (ret < 0 && ret != -ESRCH)
		hs_log(HS_LOG_WARN, "snapshot child %d left as a zombie of pid %d: %s",
		       (int)in.child, (int)p->pid, hs_strerror(ret));
	send_msg(sock, &fin, -1);
	_exit(0);
}

/* Reads the guard's next message, with the child's mem fd if it sent one;
 * EINTR is retried (the guard is quick and must not be abandoned
 * mid-injection).  -EPIPE: the guard is gone. */
static int recv_msg(int sock, struct guard_msg *r, int *fd)
{
	struct iovec iov = { r, sizeof(*r) };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *c;
	ssize_t n;

	*fd = -1;
	do
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_WAITALL);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(*r))
		return -EPIPE;
	for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
			memcpy(fd, CMSG_DATA(c), sizeof(int));
	return 0;
}

static void wait_guard(pid_t g)
{
	int st;

	while (waitpid(g, &st, 0) < 0 && errno == EINTR)
		;
}

/* ---- when the guard dies holding a thread ---- */

/* Whether sig is pending for thread tid (its own set or its process's). */
static bool sig_pending(pid_t tid, int sig)
{
	struct hs_task_status ts;

	return hs_live_task_status(tid, &ts) == 0 && ((ts.pending >> (sig - 1)) & 1);
}

/* The signal mask PTRACE_SETSIGMASK leaves for "block everything". */
#define ALL_BLOCKED (~0ull & ~((1ull << (SIGKILL - 1)) | (1ull << (SIGSTOP - 1))))

/*
 * Takes back a thread the guard had (the fallback reads with it stopped).
 * Seizes and stops tid, which a dying guard may still trace: its
 * PTRACE_SEIZE fails with EPERM until the guard's exit lets the thread go,
 * and the thread runs as soon as it is scheduled after that.  A busy
 * spin, not sched_yield(): yielding to another runnable task here gives
 * the thread the time to run.  0 with tid stopped in *s, or -errno with
 * nothing held.
 */
static int seize_released(struct live_priv *p, pid_t tid, struct seized *s)
{
	uint64_t t0 = hs_now_ns();
	unsigned spins = 0;
	int ret;

	memset(s, 0, sizeof(*s));
	s->tid = tid;
	while (ptrace(PTRACE_SEIZE, s->tid, 0, 0) < 0) {
		uint64_t waited = hs_now_ns() - t0;

		/* EPERM is also what an exiting thread answers. */
		if (errno == EPERM && ++spins % 4096 == 0 && hs_live_dying(tid))
			errno = ESRCH;
		if (errno != EPERM || waited > 2000000000ull) {
			ret = errno == ESRCH ? -ESRCH : -errno;
			hs_log(HS_LOG_DEBUG, "thread %d not seized after the guard: %s",
			       (int)s->tid, hs_strerror(ret));
			return ret;
		}
		if (waited > 50000000ull)
			sched_yield();
	}
	if (ptrace(PTRACE_INTERRUPT, s->tid, 0, 0) < 0 && errno != ESRCH) {
		ret = -errno;
		ptrace(PTRACE_DETACH, s->tid, 0, 0);
		return ret;
	}
	hs_live_wait_stop(s, p->pid);
	hs_log(HS_LOG_DEBUG, "thread %d seized after the guard in %llu us, %s, signal %d",
	       (int)s->tid, (unsigned long long)(hs_now_ns() - t0) / 1000,
	       s->stopped ? "stopped" : "gone", s->pending_sig);
	return s->stopped ? 0 : -ESRCH;
}

/*
 * The guard died in an injection (a MSG_PRE with no REPLY or FINAL after
 * it): the kernel let the thread go with the injected registers, the trap
 * flag and every signal blocked.  The guard is released as it exits, and
 * the thread runs once it is scheduled; heapscan, alive and waiting on the
 * guard's socket (closed earlier in the guard's exit), seizes it as soon
 * as the kernel lets it, which stops it before it runs its own code again,
 * and puts back what MSG_PRE recorded.  The mark of an injected state is
 * the trap flag, which the thread did not have: a thread that got back
 * its registers already is left as it is (but its mask, if still all
 * blocked).  If the thread ran the borrowed instruction and took the
 * single-step trap, that SIGTRAP is dropped.  Lost only if the thread runs
 * the instruction after the syscall before we stop it (doc/fork.md).
 * Returns 0 with the thread stopped in *s, or -errno with nothing held.
 */
static int heal(struct live_priv *p, const struct guard_msg *pre, struct seized *s)
{
	struct hs_regs cur;
	uint64_t mask = 0;
	bool injected;
	int ret;

	ret = seize_released(p, pre->tid, s);
	if (ret < 0)
		return ret;
	ret = get_regs(s->tid, &cur);
	if (ret == 0 && ptrace(PTRACE_GETSIGMASK, s->tid, (void *)sizeof(mask), &mask) < 0)
		ret = -errno;
	if (ret < 0)
		goto fail;
	injected = (cur.r[HS_REG_EFLAGS] & X86_EFLAGS_TF) &&
		   !(pre->regs.r[HS_REG_EFLAGS] & X86_EFLAGS_TF);
	if (injected) {
		ret = set_regs(s->tid, &pre->regs);
		if (ret < 0)
			goto fail;
	}
	if (mask != pre->mask && (injected || mask == ALL_BLOCKED) &&
	    ptrace(PTRACE_SETSIGMASK, s->tid, (void *)sizeof(pre->mask), &pre->mask) < 0) {
		ret = -errno;
		goto fail;
	}
	/* The single-step trap it took, if it ran that far, is queued still
	 * (forced: it would kill).  PTRACE_INTERRUPT's trap is taken before
	 * any signal is dequeued, so let it run into the signal-delivery-stop
	 * (synchronous signals come first), drop it there, then stop it. */
	if (injected && s->pending_sig != SIGTRAP && sig_pending(s->tid, SIGTRAP)) {
		int st;

		if (ptrace(PTRACE_CONT, s->tid, 0, 0) < 0) {
			ret = -errno;
			goto fail;
		}
		ret = wait_tid(s->tid, &st);
		if (ret < 0) {
			s->stopped = false;
			return ret;
		}
		s->pending_sig = (st >> 16) == 0 ? WSTOPSIG(st) : 0;
	}
	if (injected && s->pending_sig == SIGTRAP) {
		s->pending_sig = 0;
		ret = settle(s);   /* dropped by the PTRACE_CONT in settle */
		if (ret < 0) {
			if (ret == -ESRCH)
				s->stopped = false;
			goto fail;
		}
	}
	hs_log(HS_LOG_WARN, "the fork guard process was killed during an injection; "
	       "heapscan put thread %d back%s", (int)s->tid,
	       injected ? "" : " (its registers were already its own)");
	return 0;
fail:
	ptrace(PTRACE_DETACH, s->tid, 0, 0);
	s->stopped = false;
	return ret;
}

/* Children of thread tid of pid with exit signal 0: copies cloned by an
 * injection (a program's own children have SIGCHLD; threads are not
 * children).  Up to max; the count. */
static size_t copies_of(pid_t pid, pid_t tid, pid_t *out, size_t max)
{
	char path[64], buf[4096];
	size_t n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid, (int)tid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (n < max && fscanf(f, "%4095s", buf) == 1) {
		long c = strtol(buf, NULL, 10);
		char spath[64], stat[1024], *q, *save = NULL;
		FILE *sf;
		int field = 2, exit_sig = -1;

		if (c <= 0)
			continue;
		snprintf(spath, sizeof(spath), "/proc/%ld/stat", c);
		sf = fopen(spath, "re");
		if (!sf)
			continue;
		q = fgets(stat, sizeof(stat), sf) ? strrchr(stat, ')') : NULL;
		fclose(sf);
		/* Field 38 is exit_signal (proc(5)); q is at the end of 2. */
		for (char *tok = q ? strtok_r(q + 1, " ", &save) : NULL; tok;
		     tok = strtok_r(NULL, " ", &save))
			if (++field == 38) {
				exit_sig = atoi(tok);
				break;
			}
		if (exit_sig == 0)
			out[n++] = (pid_t)c;
	}
	fclose(f);
	return n;
}

/*
 * Kills a copy the dead guard left and waits until it is a zombie the
 * target can reap.  A copy made while we had seized the thread mid-clone
 * is our tracee (clone decides to trace the child at its start, from the
 * guard's PTRACE_O_TRACECLONE, and links it to whoever traces the thread
 * at its end): only our wait hands it to its parent.  Otherwise its pidfd
 * turns readable once it is a zombie.
 */
static void kill_copy(pid_t child, int pidfd)
{
	struct hs_task_status ts;
	struct pollfd pf = { .fd = pidfd, .events = POLLIN };

	kill(child, SIGKILL);
	if (hs_live_task_status(child, &ts) == 0 && ts.tracer == getpid())
		reap_child(child);
	else if (pidfd >= 0)
		while (poll(&pf, 1, 5000) < 0 && errno == EINTR)
			;
}

/* Kills the copies an unfinished clone injection left in thread s (held by
 * us) and reaps them there with injected wait4() calls. */
static void reap_copies(struct live_priv *p, struct seized *s, hs_addr_t insn)
{
	pid_t kids[8];
	size_t n = copies_of(p->pid, s->tid, kids, HS_ARRAY_SIZE(kids));

	for (size_t i = 0; i < n; i++) {
		int fd = (int)syscall(SYS_pidfd_open, kids[i], 0);
		struct inject in = { .nr = SYS_wait4,
				     .args = { (uint64_t)kids[i], 0,
					       (uint64_t)(__WALL | WNOHANG), 0 } };
		struct hs_regs orig;
		int ret;

		kill_copy(kids[i], fd);
		if (fd >= 0)
			close(fd);
		ret = get_regs(s->tid, &orig);
		if (ret == 0)
			ret = inject(s, &orig, insn, &in);
		if (ret < 0 || in.ret != kids[i])
			hs_log(HS_LOG_WARN, "snapshot child %d left as a zombie of pid %d (%s, "
			       "wait4 %ld)", (int)kids[i], (int)p->pid, hs_strerror(ret), in.ret);
	}
}

/* What the dead guard left in the shared page: an unfinished injection's
 * MSG_PRE, or nothing (type 0). */
static void guard_pre(const struct live_priv *p, struct guard_msg *pre)
{
	const struct guard_shared *sh = p->guard_shm;

	memset(pre, 0, sizeof(*pre));
	if (sh && __atomic_load_n(&sh->pending, __ATOMIC_ACQUIRE))
		*pre = sh->pre;
}

/* The guard died before its reply: put the thread back if it held it in
 * the injection, reap what the clone made, and keep the thread stopped
 * for the stop-and-read fallback. */
static int after_guard_died(struct live_priv *p, const struct guard_msg *pre, pid_t tid)
{
	struct seized s;
	int ret;

	if (pre->type == MSG_PRE && pre->tid == tid) {
		ret = heal(p, pre, &s);
		if (ret == 0)
			reap_copies(p, &s, pre->insn);
	} else {
		ret = seize_released(p, tid, &s);
	}
	if (ret < 0)
		return ret;
	HS_ALLOC_GROW(p->seized, p->nseized + 1, p->aseized);
	p->seized[p->nseized++] = s;
	return 0;
}

void hs_live_guard_start(struct hs_target *t, struct live_priv *p)
{
	int sv[2];
	pid_t self = getpid(), g;

	p->guard_why = NULL;
	p->guard_shm = mmap(NULL, sizeof(struct guard_shared), PROT_READ | PROT_WRITE,
			    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p->guard_shm == MAP_FAILED) {
		p->guard_shm = NULL;
		p->guard_why = "no memory shared with the guard process";
		return;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		p->guard_why = "no socket for the guard process";
		return;
	}
	/* The guard leaves by _exit(): nothing buffered is written twice. */
	g = fork();
	if (g < 0) {
		close(sv[0]);
		close(sv[1]);
		p->guard_why = "no guard process (fork failed)";
		return;
	}
	if (g == 0) {
		close(sv[0]);
		guard_main(t, p, sv[1], self);
	}
	close(sv[1]);
	p->guard_pid = g;
	p->guard_sock = sv[0];
}

void hs_live_guard_stop(struct live_priv *p)
{
	if (p->guard_pid) {
		close(p->guard_sock);
		p->guard_sock = -1;
		wait_guard(p->guard_pid);
		p->guard_pid = 0;
	}
	if (p->guard_shm) {
		munmap(p->guard_shm, sizeof(struct guard_shared));
		p->guard_shm = NULL;
	}
}

int hs_live_fork_start(struct hs_target *t, struct live_priv *p)
{
	struct guard_msg r, pre = { 0 };
	struct guard_job job;
	struct hs_thread *th;
	struct seized *s;
	hs_addr_t insn = 0;
	const char *why;
	int mode = 0, ret, fd;
	pid_t tid;

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
	th = s ? (struct hs_thread *)thread_of(t, s->tid) : NULL;
	if (!th || !th->has_regs)
		return refuse(p, "no thread is in a state to run clone()");
	if (th->regs.r[HS_REG_CS] != USER_CS_64)
		return refuse(p, "it is a 32-bit process");
	if (find_syscall_insn(t, &insn) < 0)
		return refuse(p, "no syscall instruction was found in its code");
	if (!p->guard_pid)
		return refuse(p, p->guard_why ? p->guard_why : "no guard process");

	/*
	 * The thread goes to the guard: we let it go (it resumes what it was
	 * doing, as on any detach) and the guard stops it again.  The other
	 * threads stay stopped by us meanwhile.
	 */
	job.tid = tid = s->tid;
	job.insn = insn;
	ptrace(PTRACE_DETACH, tid, 0, 0);
	*s = p->seized[--p->nseized];
	while (send(p->guard_sock, &job, sizeof(job), MSG_NOSIGNAL) < 0 && errno == EINTR)
		;
	ret = recv_msg(p->guard_sock, &r, &fd);
	if (ret == 0 && r.type != MSG_REPLY)
		ret = -EPROTO;
	if (ret < 0) {
		/* The guard died (only SIGKILL ends it early): take the
		 * thread back before waiting for the guard, which releases it
		 * only at the very end of its exit. */
		if (fd >= 0)
			close(fd);
		guard_pre(p, &pre);
		ret = after_guard_died(p, &pre, tid);
		hs_live_guard_stop(p);
		if (ret == -ESRCH)
			return ret;
		return refuse(p, "the guard process died");
	}
	if (r.code != GUARD_OK) {
		/* The guard gave up, put the thread back and exited. */
		struct seized back;

		if (fd >= 0)
			close(fd);
		hs_live_guard_stop(p);
		if (r.code == GUARD_GONE)
			return -ESRCH;
		why = guard_reason(r.code);
		ret = seize_released(p, tid, &back);
		if (ret == -ESRCH)
			return ret;
		if (ret == 0) {
			HS_ALLOC_GROW(p->seized, p->nseized + 1, p->aseized);
			p->seized[p->nseized++] = back;
		}
		return refuse(p, why);
	}
	/* The registers the thread had at the clone: it may have moved
	 * between our release and the guard's stop. */
	th->regs = r.regs;
	th->sp = r.regs.r[HS_REG_RSP];

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
	p->snap_pid = r.child;
	p->snap_insn = insn;
	p->snap_mem_fd = fd;
	/* The child is the target's, not ours: a pidfd is how we learn that
	 * it died (the guard killed by SIGKILL takes it along). */
	p->snap_pidfd = (int)syscall(SYS_pidfd_open, r.child, 0);
	p->forked = true;
	hs_log(HS_LOG_DEBUG, "fork snapshot: pid %d, syscall at %#llx, thread %d, guard %d",
	       (int)r.child, (unsigned long long)insn, (int)tid, (int)p->guard_pid);
	return 0;
}

bool hs_live_snap_lost(struct hs_target *t, struct live_priv *p)
{
	struct pollfd pf = { .fd = p->snap_pidfd, .events = POLLIN };
	bool lost;

	if (!p->snap_pid)
		return false;
	if (p->snap_pidfd >= 0)
		lost = poll(&pf, 1, 0) == 1;
	else
		lost = kill(p->snap_pid, 0) < 0;
	if (lost)
		__atomic_or_fetch(&t->state, HS_TSTATE_COPY_LOST, __ATOMIC_RELAXED);
	return lost;
}

/*
 * The guard died (SIGKILL: nothing else ends it early) before it reaped
 * the copy: heapscan, still alive, does what it would have done.  The
 * copy was killed with its tracer (PTRACE_O_EXITKILL), or is killed now:
 * its pid cannot be reused before it is reaped, and only the target can
 * reap it.  Waits for it to be a zombie (its pidfd turns readable), then
 * injects the wait4() itself, as the guard would.
 */
static void reap_after_guard(struct hs_target *t, struct live_priv *p, pid_t child,
			     pid_t guard)
{
	uint64_t ns = 0;
	int ret;

	kill_copy(child, p->snap_pidfd);
	ret = reap_in_target(t, p, child, &ns);
	t->stop_ns += ns;
	if (ret < 0 && ret != -ESRCH)
		hs_log(HS_LOG_WARN, "the fork guard process (pid %d) was killed; snapshot "
		       "child %d left as a zombie of pid %d: %s", (int)guard, (int)child,
		       (int)p->pid, hs_strerror(ret));
	else
		hs_log(HS_LOG_WARN, "the fork guard process (pid %d) was killed; heapscan "
		       "reaped the snapshot child itself", (int)guard);
}

void hs_live_fork_end(struct hs_target *t, struct live_priv *p)
{
	struct guard_msg fin = { .code = GUARD_OK }, pre = { 0 };
	pid_t child = p->snap_pid, guard = p->guard_pid;
	int ret, fd = -1;

	if (!p->snap_pid)
		return;
	p->snap_pid = 0;
	if (p->snap_mem_fd >= 0) {
		close(p->snap_mem_fd);
		p->snap_mem_fd = -1;
	}
	/* The guard kills the child, reaps it in the target, and answers. */
	shutdown(p->guard_sock, SHUT_WR);
	ret = recv_msg(p->guard_sock, &fin, &fd);
	if (fd >= 0)
		close(fd);
	if (ret < 0 || fin.type != MSG_FINAL) {
		/* The guard died, maybe holding a thread in the wait4()
		 * injection: that thread first, then the child. */
		struct seized s;

		guard_pre(p, &pre);
		ret = pre.type == MSG_PRE ? heal(p, &pre, &s) : -ENOENT;
		if (ret < 0 && ret != -ENOENT)
			hs_log(HS_LOG_WARN, "thread %d: cannot put it back: %s", (int)pre.tid,
			       hs_strerror(ret));
		if (ret == 0 && ptrace(PTRACE_DETACH, s.tid, 0, (void *)(long)s.pending_sig) < 0 &&
		    errno != ESRCH)
			hs_log(HS_LOG_WARN, "cannot detach thread %d: %s", (int)s.tid,
			       strerror(errno));
		hs_live_guard_stop(p);
		reap_after_guard(t, p, child, guard);
	} else {
		hs_live_guard_stop(p);
		t->stop_ns += fin.stop_ns;
		if (fin.code == GUARD_GONE) {
			hs_log(HS_LOG_WARN, "pid %d exited during the run", (int)p->pid);
			__atomic_or_fetch(&t->state, HS_TSTATE_GONE | HS_TSTATE_PARTIAL,
					  __ATOMIC_RELAXED);
		} else if (fin.code == GUARD_EXEC) {
			hs_log(HS_LOG_WARN, "pid %d executed a new program during the run; "
			       "the report is of the old one", (int)p->pid);
			__atomic_or_fetch(&t->state, HS_TSTATE_PARTIAL, __ATOMIC_RELAXED);
		}
	}
	if (p->snap_pidfd >= 0) {
		close(p->snap_pidfd);
		p->snap_pidfd = -1;
	}
	free(p->from_parent);
	p->from_parent = NULL;
}
