/*
 * The "live" backend: a running process read through /proc and
 * process_vm_readv, stopped with ptrace only between suspend and resume.
 */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int open_proc_file(pid_t pid, const char *name, FILE **out)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, name);
	*out = fopen(path, "re");
	if (!*out)
		return errno == ENOENT ? -ESRCH : -errno;
	return 0;
}

int hs_live_read_maps(struct hs_target *t, pid_t pid)
{
	struct hs_maps maps = { 0 };
	FILE *f;
	int bad = 0, ret;

	ret = open_proc_file(pid, "smaps", &f);
	if (ret < 0)
		return ret;
	ret = hs_proc_parse_maps(f, &maps, &bad);
	fclose(f);
	if (ret < 0) {
		hs_log(HS_LOG_WARN, "cannot parse /proc/%d/smaps line %d", (int)pid, bad);
		hs_maps_release(&maps);
		return ret;
	}
	hs_maps_release(&t->maps);
	t->maps = maps;
	hs_classify(t);
	if (t->priv)
		hs_live_policy_maps_changed(t->priv);
	return 0;
}

/* The stack pointer of a thread blocked in a syscall, from
 * /proc/PID/task/TID/syscall ("nr a1 .. a6 sp pc"); 0 when running. */
static hs_addr_t syscall_sp(pid_t pid, pid_t tid)
{
	char path[64], buf[256];
	unsigned long long v[9];
	FILE *f;
	int n;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/syscall", (int)pid, (int)tid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	if (!fgets(buf, sizeof(buf), f)) {
		fclose(f);
		return 0;
	}
	fclose(f);
	n = sscanf(buf, "%lld %llx %llx %llx %llx %llx %llx %llx %llx",
		   (long long *)&v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6],
		   &v[7], &v[8]);
	if (n == 9)
		return v[7];
	if (n == 3 && (long long)v[0] == -1) /* "-1 sp pc": blocked, not in a syscall */
		return v[1];
	return 0;
}

/* comm and state letter from /proc/PID/task/TID/stat. */
static int thread_stat(pid_t pid, pid_t tid, struct hs_thread *th)
{
	char path[64];
	struct hs_buf sb = HS_BUF_INIT;
	char *open_p, *close_p;
	int ret;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", (int)pid, (int)tid);
	ret = hs_buf_read_file(&sb, path);
	if (ret < 0) {
		hs_buf_release(&sb);
		return ret == -ENOENT ? -ESRCH : ret;
	}
	/* "tid (comm) S ..." where comm may hold spaces and parentheses. */
	open_p = strchr(sb.buf, '(');
	close_p = strrchr(sb.buf, ')');
	if (open_p && close_p && close_p > open_p) {
		size_t n = (size_t)(close_p - open_p - 1);
		if (n >= sizeof(th->name))
			n = sizeof(th->name) - 1;
		memcpy(th->name, open_p + 1, n);
		th->name[n] = '\0';
		th->state = close_p[1] == ' ' ? close_p[2] : '?';
	}
	hs_buf_release(&sb);
	return 0;
}

static int cmp_tid(const void *a, const void *b)
{
	const struct hs_thread *x = a, *y = b;

	return (x->tid > y->tid) - (x->tid < y->tid);
}

int hs_live_list_threads(struct hs_target *t, pid_t pid)
{
	char path[64];
	DIR *d;
	struct dirent *de;
	size_t alloc = 0;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (!d)
		return errno == ENOENT ? -ESRCH : -errno;
	hs_target_clear_threads(t);
	while ((de = readdir(d))) {
		struct hs_thread th;
		char *end;
		long tid = strtol(de->d_name, &end, 10);

		if (*end || tid <= 0)
			continue;
		memset(&th, 0, sizeof(th));
		th.tid = (pid_t)tid;
		if (thread_stat(pid, th.tid, &th) < 0)
			continue; /* exited meanwhile */
		th.sp = syscall_sp(pid, th.tid);
		HS_ALLOC_GROW(t->threads, t->nthreads + 1, alloc);
		t->threads[t->nthreads++] = th;
	}
	closedir(d);
	if (t->nthreads > 1)
		qsort(t->threads, t->nthreads, sizeof(*t->threads), cmp_tid);
	return t->nthreads ? 0 : -ESRCH;
}

/* PF_KTHREAD in the flags field (9th) of /proc/PID/stat. */
static bool is_kthread(pid_t pid)
{
	char path[64];
	struct hs_buf sb = HS_BUF_INIT;
	bool res = false;
	char *p;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (hs_buf_read_file(&sb, path) == 0 && (p = strrchr(sb.buf, ')'))) {
		unsigned long long flags = 0;
		char state;
		int ppid, pgrp, session, tty, tpgid;
		if (sscanf(p + 1, " %c %d %d %d %d %d %llu", &state, &ppid, &pgrp,
			   &session, &tty, &tpgid, &flags) == 7)
			res = (flags & 0x00200000) != 0; /* PF_KTHREAD */
	}
	hs_buf_release(&sb);
	return res;
}

static int read_status(pid_t pid, struct hs_proc_info *info,
		       struct hs_proc_status_extra *x)
{
	FILE *f;
	int ret = open_proc_file(pid, "status", &f);

	if (ret < 0)
		return ret;
	ret = hs_proc_parse_status(f, info);
	if (ret == 0 && x) {
		rewind(f);
		ret = hs_proc_parse_status_extra(f, x);
	}
	fclose(f);
	return ret;
}

static void read_identity(struct hs_target *t, pid_t pid)
{
	char path[64], exe[PATH_MAX];
	struct hs_buf sb = HS_BUF_INIT;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	n = readlink(path, exe, sizeof(exe) - 1);
	free(t->info.exe);
	t->info.exe = hs_xstrndup(exe, n > 0 ? (size_t)n : 0);

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	if (hs_buf_read_file(&sb, path) == 0) {
		while (sb.len && sb.buf[sb.len - 1] == '\0')
			sb.len--;
		for (size_t i = 0; i < sb.len; i++)
			if (sb.buf[i] == '\0')
				sb.buf[i] = ' ';
		sb.buf[sb.len] = '\0';
	}
	free(t->info.cmdline);
	t->info.cmdline = hs_buf_detach(&sb, NULL);

	snprintf(path, sizeof(path), "/proc/%d/auxv", (int)pid);
	if (hs_buf_read_file(&sb, path) == 0 && sb.len) {
		free(t->info.auxv);
		t->info.auxv = (unsigned char *)hs_buf_detach(&sb, &t->info.auxv_len);
	}
	hs_buf_release(&sb);
}

/* Re-reads everything /proc says (not memory). */
static int refresh(struct hs_target *t, pid_t pid)
{
	struct timespec ts;
	char state = t->info.state;
	int ret = read_status(pid, &t->info, NULL);

	if (ret < 0)
		return ret;
	/* While we hold it, /proc says 't': keep the state it had before. */
	if (state && (t->state & HS_TSTATE_SUSPENDED))
		t->info.state = state;
	clock_gettime(CLOCK_REALTIME, &ts);
	t->info.time_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	return hs_live_read_maps(t, pid);
}

/* ---- memory ---- */

/* /proc/PID/mem of the target, or of the snapshot child. */
static int open_mem(struct live_priv *p, pid_t pid, int *fdp)
{
	int ret = 0;

	pthread_mutex_lock(&p->lock);
	if (*fdp < 0) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
		*fdp = open(path, O_RDONLY | O_CLOEXEC);
		if (*fdp < 0)
			ret = errno == ENOENT ? -ESRCH : -errno;
	}
	pthread_mutex_unlock(&p->lock);
	return ret;
}

static int read_pread(struct live_priv *p, pid_t pid, hs_addr_t addr,
		      void *buf, size_t len, size_t *nread)
{
	int *fdp = pid == p->pid ? &p->mem_fd : &p->snap_mem_fd;
	int ret = open_mem(p, pid, fdp);

	if (ret < 0)
		return ret;
	while (*nread < len) {
		ssize_t n = pread(*fdp, (char *)buf + *nread, len - *nread,
				  (off_t)(addr + *nread));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (*nread)
				return 0;
			/* EIO: a hole; ESRCH or 0 with a dead mm: gone. */
			return errno == EIO ? -EFAULT : -errno;
		}
		if (n == 0)
			break;
		*nread += (size_t)n;
	}
	if (*nread == 0 && kill(pid, 0) < 0 && errno == ESRCH)
		return -ESRCH;
	return *nread ? 0 : -EFAULT;
}

/* Test hook: SIGKILL the target after N reads and wait until its memory is
 * gone, so "target exited mid-run" is tested deterministically. */
static void test_kill_hook(struct live_priv *p)
{
	uint64_t n;

	if (!p->test_kill_after)
		return;
	n = __atomic_add_fetch(&p->nreads, 1, __ATOMIC_RELAXED);
	if (n != p->test_kill_after)
		return;
	kill(p->pid, SIGKILL);
	/* We trace every thread: each reports its exit to us. */
	for (size_t i = 0; i < p->nseized; i++) {
		int st;
		while (waitpid(p->seized[i].tid, &st, __WALL) < 0 && errno == EINTR)
			;
		p->seized[i].stopped = false;
	}
	if (!p->nseized) {
		/* --no-stop: not our child; wait for /proc to say it is dead. */
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/mem", (int)p->pid);
		while (access(path, F_OK) == 0) {
			struct hs_buf sb = HS_BUF_INIT;
			char st = 0;
			snprintf(path, sizeof(path), "/proc/%d/stat", (int)p->pid);
			if (hs_buf_read_file(&sb, path) == 0 && strrchr(sb.buf, ')'))
				st = strrchr(sb.buf, ')')[2];
			hs_buf_release(&sb);
			if (st == 'Z' || st == 'X' || st == 0)
				break;
			sched_yield();
		}
	}
}

/*
 * Builds the remote iovecs for [addr, addr+len): one per mapping the range
 * crosses, stopping at the first gap in the maps, because an iovec that
 * starts in an unmapped page fails the whole call with EFAULT while one
 * that runs into a hole just comes back short (doc/ptrace.md).  At most
 * IOV_BATCH pieces (the kernel allows 1024).  Returns the bytes covered.
 */
#define IOV_BATCH 64
static size_t split_at_maps(const struct hs_target *t, hs_addr_t addr, size_t len,
			    struct iovec *remote, struct iovec *local, void *buf,
			    int *niov, pid_t *pid)
{
	const struct live_priv *p = t->priv;
	const struct hs_map *m = hs_maps_find(&t->maps, addr);
	size_t done = 0;
	bool parent = false;

	*pid = p->snap_pid ? p->snap_pid : p->pid;
	if (m && p->snap_pid && p->from_parent) {
		/* A fork snapshot: one source per call. */
		parent = p->from_parent[m - t->maps.v];
		if (parent)
			*pid = p->pid;
	}

	*niov = 0;
	if (!m) {
		/* Not in our maps (stale with --no-stop): let the kernel say. */
		remote[0] = (struct iovec){ (void *)(uintptr_t)addr, len };
		local[0] = (struct iovec){ buf, len };
		*niov = 1;
		return len;
	}
	while (done < len && *niov < IOV_BATCH) {
		hs_addr_t a = addr + done;
		size_t n = len - done;

		if (!m || a < m->start || a >= m->end)
			break;
		if (p->snap_pid && p->from_parent && p->from_parent[m - t->maps.v] != parent)
			break;
		if (m->end - a < n)
			n = (size_t)(m->end - a);
		remote[*niov] = (struct iovec){ (void *)(uintptr_t)a, n };
		local[*niov] = (struct iovec){ (char *)buf + done, n };
		(*niov)++;
		done += n;
		m = (m + 1 < t->maps.v + t->maps.n && m[1].start == m->end) ? m + 1 : NULL;
	}
	return done;
}

int hs_live_read_raw(struct hs_target *t, hs_addr_t addr, void *buf, size_t len,
		     size_t *nread)
{
	struct live_priv *p = t->priv;
	struct iovec local[IOV_BATCH], remote[IOV_BATCH];
	int niov;
	ssize_t n;
	pid_t pid;
	size_t covered;

	*nread = 0;
	covered = split_at_maps(t, addr, len, remote, local, buf, &niov, &pid);
	if (covered == 0)
		return -EFAULT;
	/*
	 * The fork snapshot through /proc/SNAP/mem, never process_vm_readv:
	 * that pins pages (FOLL_PIN), and pinning a copy-on-write page shared
	 * with the parent makes the kernel unshare it (since 5.19): every
	 * page read would be copied into the child, doubling the memory
	 * (charged to the target's cgroup) and running 3x slower.  /proc/mem
	 * reads through get_user_pages without a pin: nothing is copied.
	 */
	if (pid == p->snap_pid) {
		int ret = read_pread(p, pid, addr, buf, covered, nread);

		/* Nothing from the copy: if it died (its guard was killed),
		 * the picture is gone, not this page. */
		if (*nread == 0 && hs_live_snap_lost(t, p))
			return -ESRCH;
		return ret;
	}
	if (p->use_pread)
		return read_pread(p, pid, addr, buf, covered, nread);
	n = process_vm_readv(pid, local, (unsigned long)niov, remote,
			     (unsigned long)niov, 0);
	if (n > 0) {
		*nread = (size_t)n;
		return 0;
	}
	if (n == 0)
		return -EFAULT;
	switch (errno) {
	case EFAULT:
		return -EFAULT;
	case ESRCH:
		return -ESRCH;
	case EPERM:
	case ENOSYS:
		/* Some kernels/LSMs refuse process_vm_readv but allow
		 * /proc/PID/mem (doc/ptrace.md). */
		p->use_pread = true;
		return read_pread(p, pid, addr, buf, covered, nread);
	default:
		return -errno;
	}
}

/* ---- files behind mappings ---- */

static int live_open_file(struct hs_target *t, const struct hs_map *m)
{
	const struct live_priv *p = t->priv;

	if (!m->path || m->path[0] != '/')
		return -ENOENT;
	return hs_live_open_map_file(p->pid, m);
}

/* Every read goes through the reading policy (pagemap.c): untouched
 * pages are never read through the process. */
static int live_read(struct hs_target *t, hs_addr_t addr, void *buf, size_t len,
		     size_t *nread)
{
	test_kill_hook(t->priv);
	return hs_live_policy_read(t, addr, buf, len, nread);
}

/* ---- lifecycle ---- */

static int live_suspend(struct hs_target *t)
{
	struct live_priv *p = t->priv;
	int ret;

	if (t->flags & HS_TARGET_NO_STOP)
		return refresh(t, p->pid);
	if (t->flags & HS_TARGET_FORK)
		hs_live_guard_start(t, p);
	p->stop_start = hs_now_ns();
	ret = hs_live_seize_all(t, p);
	if (ret < 0) {
		hs_live_guard_stop(p);
		t->stop_ns += hs_now_ns() - p->stop_start;
		return ret;
	}
	t->state |= HS_TSTATE_SUSPENDED;
	ret = refresh(t, p->pid);
	if (ret < 0) {
		hs_live_guard_stop(p);
		hs_target_resume(t);
		return ret;
	}
	if (t->flags & HS_TARGET_FORK) {
		ret = hs_live_fork_start(t, p);
		if (ret < 0)
			hs_live_guard_stop(p);  /* it had no job */
		if (ret == 0) {
			/* The child holds the picture: let the target go. */
			hs_live_detach_all(p);
			t->stop_ns += hs_now_ns() - p->stop_start;
		} else if (ret == -ESRCH) {
			hs_target_resume(t);
			return ret;
		} else {
			hs_log(HS_LOG_WARN, "no fork snapshot: %s; the process stays "
			       "stopped while it is read", p->fork_fallback);
		}
	}
	return 0;
}

static int live_resume(struct hs_target *t)
{
	struct live_priv *p = t->priv;

	t->state &= ~HS_TSTATE_SUSPENDED;
	if (p->snap_pid) {
		hs_live_fork_end(t, p); /* adds its own, second stop */
		return 0;
	}
	hs_live_detach_all(p);
	t->stop_ns += hs_now_ns() - p->stop_start;
	return 0;
}

static void live_close(struct hs_target *t)
{
	struct live_priv *p = t->priv;

	if (!p)
		return;
	hs_live_fork_end(t, p);
	hs_live_guard_stop(p);
	hs_live_detach_all(p);
	hs_live_policy_release(p);
	if (p->mem_fd >= 0)
		close(p->mem_fd);
	free(p->from_parent);
	pthread_mutex_destroy(&p->lock);
	free(p->seized);
	free(p);
	t->priv = NULL;
}

static const struct hs_target_ops live_ops = {
	.name = "live",
	.read = live_read,
	.suspend = live_suspend,
	.resume = live_resume,
	.open_file = live_open_file,
	.close = live_close,
};

int hs_target_open_pid(pid_t pid, unsigned flags, struct hs_target **out)
{
	struct hs_proc_info info = { 0 };
	struct hs_proc_status_extra x;
	struct hs_target *t;
	struct live_priv *p;
	struct hs_buf sb = HS_BUF_INIT;
	char path[64];
	int ret;

	*out = NULL;
	if (pid <= 0)
		return -ESRCH;
	ret = read_status(pid, &info, &x);
	if (ret < 0)
		goto err_info;
	/* A thread id names its process. */
	if (info.pid > 0 && info.pid != pid)
		pid = info.pid;
	if (pid == getpid()) {
		ret = -HS_E_SELF;
		goto err_info;
	}
	/*
	 * A process that dies while we attach passes through "no memory"
	 * (exit_mm), 'Z' and 'X': that is "it exited" (-HS_E_ZOMBIE), not a
	 * kernel thread.  Only PF_KTHREAD in its stat flags makes a kernel
	 * thread.
	 */
	if (info.state == 'Z' || info.state == 'X' || x.exiting) {
		ret = -HS_E_ZOMBIE;
		goto err_info;
	}
	if (x.kthread || is_kthread(pid)) {
		ret = is_kthread(pid) ? -HS_E_KTHREAD : -ESRCH;
		goto err_info;
	}
	if (x.tracer_pid && x.tracer_pid != getpid() && !(flags & HS_TARGET_NO_STOP)) {
		ret = -HS_E_TRACED;
		goto err_info;
	}
	/* auxv needs the same access check as reading memory: fail early
	 * and clearly rather than on the first read. */
	snprintf(path, sizeof(path), "/proc/%d/auxv", (int)pid);
	ret = hs_buf_read_file(&sb, path);
	hs_buf_release(&sb);
	if (ret < 0) {
		if (ret == -ENOENT)
			ret = -ESRCH;
		goto err_info;
	}

	t = hs_target_new(&live_ops);
	t->flags = flags;
	t->caps = HS_CAP_STOPPABLE | HS_CAP_READ_FAULTS | HS_CAP_SMAPS |
		  HS_CAP_PTRACE_UNWIND;
	hs_proc_info_release(&t->info);
	t->info = info;
	t->info.exe = hs_xstrdup("");
	t->info.cmdline = hs_xstrdup("");
	p = hs_xcalloc(1, sizeof(*p));
	p->pid = pid;
	p->mem_fd = -1;
	p->snap_mem_fd = -1;
	p->snap_pidfd = -1;
	p->guard_sock = -1;
	pthread_mutex_init(&p->lock, NULL);
	hs_live_policy_init(t, p);
	{
		const char *k = getenv("HEAPSCAN_TEST_KILL_AFTER_READS");
		p->test_kill_after = k ? strtoull(k, NULL, 10) : 0;
	}
	t->priv = p;
	hs_buf_addf(&sb, "pid %d", (int)pid);
	t->source = hs_buf_detach(&sb, NULL);
	read_identity(t, pid);
	ret = hs_live_list_threads(t, pid);
	if (ret == 0)
		ret = refresh(t, pid);
	if (ret < 0) {
		hs_target_close(t);
		return ret;
	}
	*out = t;
	return 0;

err_info:
	hs_proc_info_release(&info);
	return ret;
}
