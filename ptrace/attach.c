/*
 * Stopping and releasing a live process.
 *
 * PTRACE_SEIZE does not stop or signal the tracee; PTRACE_INTERRUPT then
 * stops it in a PTRACE_EVENT_STOP we can tell apart from real signals
 * (unlike PTRACE_ATTACH's SIGSTOP).  New threads can be cloned while we
 * work through /proc/PID/task, so we re-list until a pass finds none.
 * A signal that arrives meanwhile shows up as a signal-delivery-stop; we
 * keep it and hand it back with PTRACE_DETACH.  A process that was
 * group-stopped (state T) reports a group-stop and stays stopped after
 * PTRACE_DETACH, which is what we want: we never send SIGCONT.
 * If heapscan dies, the kernel detaches every tracee (exit_ptrace()).
 */
#include "internal.h"

#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef NT_X86_XSTATE
#define NT_X86_XSTATE 0x202
#endif

static struct seized *find_seized(struct live_priv *p, pid_t tid)
{
	for (size_t i = 0; i < p->nseized; i++)
		if (p->seized[i].tid == tid)
			return &p->seized[i];
	return NULL;
}

/* One pass over /proc/PID/task; returns how many new threads were seized,
 * or a negative error if the very first seize is refused. */
static int seize_pass(struct live_priv *p)
{
	char path[64];
	DIR *d;
	struct dirent *de;
	int added = 0;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)p->pid);
	d = opendir(path);
	if (!d)
		return errno == ENOENT ? -ESRCH : -errno;
	while ((de = readdir(d))) {
		char *end;
		long tid = strtol(de->d_name, &end, 10);

		if (*end || tid <= 0 || find_seized(p, (pid_t)tid))
			continue;
		if (ptrace(PTRACE_SEIZE, (pid_t)tid, 0, 0) < 0) {
			int err = errno;
			/* ESRCH: exited meanwhile.  EPERM on a thread of a
			 * process we already hold: an exiting thread. */
			if (err == ESRCH || (err == EPERM && p->nseized))
				continue;
			closedir(d);
			return -err;
		}
		HS_ALLOC_GROW(p->seized, p->nseized + 1, p->aseized);
		p->seized[p->nseized++] = (struct seized){ .tid = (pid_t)tid };
		if (ptrace(PTRACE_INTERRUPT, (pid_t)tid, 0, 0) < 0 && errno != ESRCH)
			hs_log(HS_LOG_WARN, "PTRACE_INTERRUPT %ld: %s", tid, strerror(errno));
		added++;
	}
	closedir(d);
	return added;
}

int hs_live_task_status(pid_t tid, struct hs_task_status *ts)
{
	char path[64], line[256];
	FILE *f;

	memset(ts, 0, sizeof(*ts));
	snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long set;

		if (!strncmp(line, "State:", 6))
			sscanf(line + 6, " %c", &ts->state);
		else if (!strncmp(line, "TracerPid:", 10))
			sscanf(line + 10, "%d", &ts->tracer);
		else if ((!strncmp(line, "SigPnd:", 7) || !strncmp(line, "ShdPnd:", 7)) &&
			 sscanf(line + 7, "%llx", &set) == 1)
			ts->pending |= set;
	}
	fclose(f);
	return 0;
}

/*
 * ptrace says ESRCH both for a thread that is gone and for one that is not
 * in a ptrace-stop: true when tid is gone, a zombie, or has SIGKILL
 * pending (the process is being killed), not a thread we lost track of.
 */
bool hs_live_dying(pid_t tid)
{
	struct hs_task_status ts;

	return hs_live_task_status(tid, &ts) < 0 || ts.state == 'Z' || ts.state == 'X' ||
	       ((ts.pending >> (SIGKILL - 1)) & 1);
}

/*
 * The leader of a process being killed is not reported to its tracer until
 * every other thread is reaped, and we may hold those (their exits wait
 * for our waitpid): a blocking wait on it would never return.  So the
 * leader is waited for without blocking, and given up once it is dying.
 * Its stop comes within microseconds: spin with sched_yield first, then
 * 100 us naps.
 */
static pid_t wait_leader(pid_t tid, int *st, bool *gone)
{
	for (unsigned i = 0;; i++) {
		pid_t r = waitpid(tid, st, __WALL | WNOHANG);

		if (r != 0)
			return r;
		if (i >= 64 && hs_live_dying(tid)) {
			*gone = true;
			return 0;
		}
		if (i < 64) {
			sched_yield();
		} else {
			struct timespec ts = { 0, 100000 };
			nanosleep(&ts, NULL);
		}
	}
}

void hs_live_wait_stop(struct seized *s, pid_t tgid)
{
	for (;;) {
		int st;
		bool gone = false;
		pid_t r = s->tid == tgid ? wait_leader(s->tid, &st, &gone)
					 : waitpid(s->tid, &st, __WALL);

		if (gone) {
			s->stopped = false;
			return;
		}

		if (r < 0) {
			if (errno == EINTR)
				continue; /* stops are quick; finish, then detach */
			s->stopped = false; /* ECHILD: gone */
			return;
		}
		if (WIFEXITED(st) || WIFSIGNALED(st)) {
			s->stopped = false;
			return;
		}
		if (!WIFSTOPPED(st))
			continue;
		s->stopped = true;
		if ((st >> 16) == PTRACE_EVENT_STOP) {
			int sig = WSTOPSIG(st);
			/* SIGTRAP: our interrupt.  A stop signal: a group-stop
			 * (the process was or is being stopped by job control). */
			s->group_stop = sig == SIGSTOP || sig == SIGTSTP ||
					sig == SIGTTIN || sig == SIGTTOU;
		} else if ((st >> 16) == 0) {
			/* Signal-delivery-stop: keep the signal for detach. */
			s->pending_sig = WSTOPSIG(st);
		}
		return;
	}
}

static void get_regs(struct hs_thread *th)
{
	struct iovec iov;
	unsigned char xs[16384];

	iov.iov_base = &th->regs;
	iov.iov_len = sizeof(th->regs);
	th->has_regs = ptrace(PTRACE_GETREGSET, th->tid, NT_PRSTATUS, &iov) == 0 &&
		       iov.iov_len == sizeof(th->regs);
	if (th->has_regs)
		th->sp = th->regs.r[HS_REG_RSP];
	iov.iov_base = th->fpregs;
	iov.iov_len = sizeof(th->fpregs);
	th->has_fpregs = ptrace(PTRACE_GETREGSET, th->tid, NT_PRFPREG, &iov) == 0 &&
			 iov.iov_len == sizeof(th->fpregs);
	/* The kernel shortens iov_len to this CPU's XSAVE size. */
	iov.iov_base = xs;
	iov.iov_len = sizeof(xs);
	free(th->xstate);
	th->xstate = NULL;
	th->xstate_len = 0;
	if (ptrace(PTRACE_GETREGSET, th->tid, NT_X86_XSTATE, &iov) == 0 && iov.iov_len) {
		th->xstate = hs_xmalloc(iov.iov_len);
		memcpy(th->xstate, xs, iov.iov_len);
		th->xstate_len = iov.iov_len;
	}
}

int hs_live_seize_all(struct hs_target *t, struct live_priv *p)
{
	struct hs_thread *before = NULL;
	size_t nbefore = 0, alloc = 0;
	int ret, passes = 0;

	/* Names and states as they were before we stopped anything. */
	ret = hs_live_list_threads(t, p->pid);
	if (ret < 0)
		return ret;
	before = t->threads;
	nbefore = t->nthreads;
	t->threads = NULL;
	t->nthreads = 0;

	do {
		ret = seize_pass(p);
		if (ret < 0) {
			hs_live_detach_all(p);
			goto out;
		}
		/* Bounded: a fork bomb of threads must not keep us here. */
	} while (ret > 0 && ++passes < 1000);

	for (size_t i = 0; i < p->nseized; i++)
		hs_live_wait_stop(&p->seized[i], p->pid);

	/* Threads we now hold, with registers. */
	for (size_t i = 0; i < p->nseized; i++) {
		struct hs_thread th;
		bool found = false;

		if (!p->seized[i].stopped)
			continue;
		memset(&th, 0, sizeof(th));
		th.tid = p->seized[i].tid;
		for (size_t k = 0; k < nbefore; k++)
			if (before[k].tid == th.tid) {
				memcpy(th.name, before[k].name, sizeof(th.name));
				th.state = before[k].state;
				found = true;
			}
		if (!found)
			th.state = 'R';
		get_regs(&th);
		HS_ALLOC_GROW(t->threads, t->nthreads + 1, alloc);
		t->threads[t->nthreads++] = th;
	}
	ret = t->nthreads ? 0 : -ESRCH;
	if (ret < 0)
		hs_live_detach_all(p);
out:
	for (size_t k = 0; k < nbefore; k++)
		free(before[k].xstate);
	free(before);
	return ret;
}

void hs_live_detach_all(struct live_priv *p)
{
	for (size_t i = 0; i < p->nseized; i++) {
		struct seized *s = &p->seized[i];

		/*
		 * PTRACE_DETACH needs the tracee in a ptrace-stop.  One we
		 * never saw stop (it exited, or we were interrupted first)
		 * is left to the kernel: it detaches when we exit, and an
		 * exited thread needs nothing.
		 */
		if (s->stopped &&
		    ptrace(PTRACE_DETACH, s->tid, 0, (void *)(long)s->pending_sig) < 0 &&
		    errno != ESRCH)
			hs_log(HS_LOG_WARN, "cannot detach thread %d: %s", (int)s->tid,
			       strerror(errno));
		if (!s->stopped)
			ptrace(PTRACE_DETACH, s->tid, 0, 0); /* best effort */
	}
	p->nseized = 0;
}

/* ---- why EPERM ---- */

static int read_int_file(const char *path, long *v)
{
	struct hs_buf sb = HS_BUF_INIT;
	int ret = hs_buf_read_file(&sb, path);

	if (ret == 0)
		*v = strtol(sb.buf, NULL, 10);
	hs_buf_release(&sb);
	return ret;
}

void hs_ptrace_diagnose_eperm(pid_t pid, struct hs_buf *sb)
{
	struct hs_proc_info info = { 0 }, self = { 0 };
	struct hs_proc_status_extra x, sx;
	char path[64];
	FILE *f;
	long scope = -1;
	bool have_cap;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f) {
		hs_buf_adds(sb, "its /proc entry is unreadable");
		return;
	}
	if (hs_proc_parse_status(f, &info) < 0 || (rewind(f), hs_proc_parse_status_extra(f, &x)) < 0) {
		fclose(f);
		hs_buf_adds(sb, "its /proc status is unreadable");
		return;
	}
	fclose(f);
	f = fopen("/proc/self/status", "re");
	memset(&sx, 0, sizeof(sx));
	if (f) {
		if (hs_proc_parse_status(f, &self) < 0 ||
		    (rewind(f), hs_proc_parse_status_extra(f, &sx)) < 0)
			memset(&sx, 0, sizeof(sx));
		fclose(f);
	}
	have_cap = (sx.cap_eff >> 19) & 1; /* CAP_SYS_PTRACE */
	read_int_file("/proc/sys/kernel/yama/ptrace_scope", &scope);

	if (x.tracer_pid && x.tracer_pid != getpid()) {
		struct hs_buf comm = HS_BUF_INIT;
		snprintf(path, sizeof(path), "/proc/%d/comm", (int)x.tracer_pid);
		if (hs_buf_read_file(&comm, path) == 0 && comm.len &&
		    comm.buf[comm.len - 1] == '\n')
			comm.buf[--comm.len] = '\0';
		hs_buf_addf(sb, "it is already traced by pid %d (%s); detach that "
			    "tracer first, or use --no-stop to read without stopping",
			    (int)x.tracer_pid, comm.len ? comm.buf : "?");
		hs_buf_release(&comm);
	} else if (scope == 3) {
		hs_buf_adds(sb, "yama ptrace_scope is 3: ptrace is disabled on this system");
	} else if (info.uid != geteuid() && !have_cap) {
		hs_buf_addf(sb, "it runs as uid %u and heapscan as uid %u without "
			    "CAP_SYS_PTRACE; run heapscan as that user or as root",
			    (unsigned)info.uid, (unsigned)geteuid());
	} else if (scope == 2 && !have_cap) {
		hs_buf_adds(sb, "yama ptrace_scope is 2: only processes with "
			    "CAP_SYS_PTRACE may trace; run heapscan as root");
	} else if (scope == 1 && !have_cap) {
		hs_buf_adds(sb, "yama ptrace_scope is 1: only a parent, or a process the "
			    "target allowed with PR_SET_PTRACER, may trace it; run heapscan "
			    "as root or set /proc/sys/kernel/yama/ptrace_scope to 0");
	} else if (!have_cap) {
		hs_buf_adds(sb, "the process is not dumpable (setuid, or "
			    "prctl(PR_SET_DUMPABLE, 0)) and heapscan lacks CAP_SYS_PTRACE");
	} else {
		hs_buf_adds(sb, "the kernel refused (a security module or a "
			    "different user namespace?)");
	}
	hs_proc_info_release(&info);
	hs_proc_info_release(&self);
}
