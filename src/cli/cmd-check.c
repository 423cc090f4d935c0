/*
 * heapscan check: what this machine lets heapscan do (CRIU's "criu check").
 * Each line is one probe and its verdict; exit 0 when live inspection works.
 */
#include "cli.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>
#include <gnu/libc-version.h>

#include "hs_ptrace.h"

static void line(const char *what, bool ok, const char *detail)
{
	printf("  %-28s %-4s %s\n", what, ok ? "ok" : "FAIL", detail);
}

static int cmd_check(int argc, char **argv)
{
	struct utsname u;
	struct hs_buf sb = HS_BUF_INIT;
	struct hs_target *t = NULL;
	int pipefd[2], ret, bad = 0;
	pid_t child;
	char detail[256];

	if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		printf("usage: heapscan check\n\nProbes whether this machine lets "
		       "heapscan stop and read processes.\n");
		return HS_EXIT_OK;
	}
	if (argc > 1)
		return hs_cli_usage_err("check", "unexpected argument '%s'", argv[1]);
	uname(&u);
	printf("heapscan %s check\n", HS_VERSION);
	snprintf(detail, sizeof(detail), "%s %s %s", u.sysname, u.release, u.machine);
	line("kernel", !strcmp(u.machine, "x86_64"), detail);
	snprintf(detail, sizeof(detail), "heapscan built against glibc %s",
		 gnu_get_libc_version());
	line("glibc", true, detail);
	if (hs_buf_read_file(&sb, "/proc/sys/kernel/yama/ptrace_scope") == 0) {
		int scope = atoi(sb.buf);
		snprintf(detail, sizeof(detail), "ptrace_scope %d%s", scope,
			 scope == 0 ? " (classic)" : scope == 1 ? " (descendants or root)" :
			 scope == 2 ? " (CAP_SYS_PTRACE only)" : " (ptrace disabled)");
		line("yama", scope < 3, detail);
		bad += scope >= 3;
	} else {
		line("yama", true, "not present");
	}
	hs_buf_reset(&sb);
	if (hs_buf_read_file(&sb, "/proc/sys/kernel/core_pattern") == 0) {
		sb.buf[strcspn(sb.buf, "\n")] = '\0';
		line("core_pattern", true, sb.buf);
	}
	hs_buf_release(&sb);

	/* A child to attach to, as a real target would be. */
	if (pipe(pipefd) < 0)
		return HS_EXIT_FATAL;
	child = fork();
	if (child == 0) {
		char c;
		close(pipefd[1]);
		while (read(pipefd[0], &c, 1) < 0 && errno == EINTR)
			;
		_exit(0);
	}
	close(pipefd[0]);
	ret = hs_target_open_pid(child, 0, &t);
	if (ret == 0)
		ret = hs_target_suspend(t);
	snprintf(detail, sizeof(detail), "%s", ret ? hs_strerror(ret) :
		 "PTRACE_SEIZE + PTRACE_INTERRUPT of a child");
	line("ptrace attach", ret == 0, detail);
	bad += ret != 0;
	if (t) {
		uint64_t word = 0;
		size_t n = 0;
		int r = hs_target_read(t, t->maps.n ? t->maps.v[0].start : 0, &word,
				       sizeof(word), &n);
		line("memory read", r == 0 && n == sizeof(word),
		     r ? hs_strerror(r) : "process_vm_readv or /proc/PID/mem");
		bad += r != 0;
		/* Not fatal: without pagemap heapscan falls back to smaps and
		 * may fault untouched pages in (doc/reading-policy.md). */
		line("untouched pages left alone",
		     t->page_policy && !strcmp(t->page_policy, "pagemap"),
		     t->page_policy ? t->page_policy : "?");
		hs_target_close(t);
	}
	close(pipefd[1]);
	waitpid(child, NULL, 0);
	return bad ? HS_EXIT_FATAL : HS_EXIT_OK;
}

const struct hs_command hs_cmd_check = {
	.name = "check",
	.help = "probe what this machine lets heapscan do",
	.main = cmd_check,
};
