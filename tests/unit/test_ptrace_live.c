/*
 * The live backend against a forked child whose memory layout we made
 * ourselves before fork: adjacent mappings with different permissions,
 * a hole, a known pattern.  Checks reads across mapping boundaries, short
 * reads into holes, EFAULT in holes, the pread fallback, stop/resume and
 * ESRCH once the child is gone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"

#define PG 4096

static unsigned char *area; /* 5 pages: rw, r (own mapping), rw, hole, rw */
static pid_t child;
static int pipefd[2];

static int setup(void **state)
{
	(void)state;
	area = mmap(NULL, 5 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (area == MAP_FAILED)
		return -1;
	for (size_t i = 0; i < 5 * PG; i++)
		area[i] = (unsigned char)(i * 7 + i / PG);
	mprotect(area + PG, PG, PROT_READ);
	munmap(area + 3 * PG, PG);
	if (pipe(pipefd) < 0)
		return -1;
	child = fork();
	if (child == 0) {
		char c;
		close(pipefd[1]);
		while (read(pipefd[0], &c, 1) < 0 && errno == EINTR)
			;
		_exit(0);
	}
	close(pipefd[0]);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
	}
	close(pipefd[1]);
	return 0;
}

static char state_of(pid_t pid)
{
	char path[64], buf[512], *p;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return '?';
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = 0;
	fclose(f);
	p = strrchr(buf, ')');
	return p ? p[2] : '?';
}

static void check_reads(struct hs_target *t)
{
	unsigned char buf[5 * PG];
	hs_addr_t a = (hs_addr_t)(uintptr_t)area;
	size_t n;

	/* Across the rw | r | rw boundaries: one call, three iovecs. */
	assert_int_equal(hs_target_read(t, a + 100, buf, 3 * PG - 200, &n), 0);
	assert_int_equal(n, 3 * PG - 200);
	assert_memory_equal(buf, area + 100, n);
	/* Into the hole: short. */
	assert_int_equal(hs_target_read(t, a + 2 * PG + 10, buf, 2 * PG, &n), 0);
	assert_int_equal(n, PG - 10);
	assert_memory_equal(buf, area + 2 * PG + 10, n);
	/* Starting in the hole: nothing. */
	assert_int_equal(hs_target_read(t, a + 3 * PG + 8, buf, 16, &n), -EFAULT);
	assert_int_equal(n, 0);
	/* After the hole. */
	assert_int_equal(hs_target_read(t, a + 4 * PG, buf, PG, &n), 0);
	assert_int_equal(n, PG);
	assert_memory_equal(buf, area + 4 * PG, PG);
}

struct sum {
	size_t bytes;
	int gaps;
	hs_addr_t next;
};

static int sum_cb(void *ud, hs_addr_t addr, const void *data, size_t len)
{
	struct sum *s = ud;

	if (s->next && addr != s->next)
		s->gaps++;
	assert_memory_equal(data, area + (addr - (hs_addr_t)(uintptr_t)area), len);
	s->bytes += len;
	s->next = addr + len;
	return 0;
}

static void test_reads_stopped(void **state)
{
	struct hs_target *t;
	struct sum s = { 0 };
	unsigned char buf[8192];
	uint64_t unreadable = 0;

	(void)state;
	assert_int_equal(hs_target_open_pid(child, 0, &t), 0);
	assert_int_equal(hs_target_suspend(t), 0);
	assert_true(t->state & HS_TSTATE_SUSPENDED);
	assert_int_equal(state_of(child), 't');
	assert_int_equal(t->nthreads, 1);
	assert_true(t->threads[0].has_regs);
	assert_true(t->threads[0].has_fpregs);
	assert_true(t->threads[0].xstate_len >= 512);
	/* The state before we stopped it, not our tracing stop. */
	assert_true(t->info.state == 'S' || t->info.state == 'R');
	check_reads(t);
	assert_int_equal(hs_target_stream(t, (hs_addr_t)(uintptr_t)area,
					  (hs_addr_t)(uintptr_t)area + 5 * PG, buf,
					  sizeof(buf), sum_cb, &s, &unreadable), 0);
	assert_int_equal(s.bytes, 4 * PG);
	assert_int_equal(s.gaps, 1);
	assert_int_equal(unreadable, PG);

	/* The /proc/PID/mem path gives the same answers. */
	((struct live_priv *)t->priv)->use_pread = true;
	check_reads(t);

	assert_int_equal(hs_target_resume(t), 0);
	assert_int_not_equal(state_of(child), 't');
	assert_true(t->stop_ns > 0);
	hs_target_close(t);
}

static void test_no_stop_and_gone(void **state)
{
	struct hs_target *t;
	unsigned char buf[64];
	size_t n;

	(void)state;
	assert_int_equal(hs_target_open_pid(child, HS_TARGET_NO_STOP, &t), 0);
	assert_int_equal(hs_target_suspend(t), 0);
	assert_false(t->state & HS_TSTATE_SUSPENDED);
	assert_int_not_equal(state_of(child), 't');
	check_reads(t);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	child = 0;
	assert_int_equal(hs_target_read(t, (hs_addr_t)(uintptr_t)area, buf, 64, &n),
			 -ESRCH);
	assert_true(t->state & HS_TSTATE_GONE);
	hs_target_close(t);
}

static void test_open_errors(void **state)
{
	struct hs_target *t = NULL;

	(void)state;
	assert_int_equal(hs_target_open_pid(getpid(), 0, &t), -HS_E_SELF);
	assert_null(t);
	assert_int_equal(hs_target_open_pid(-1, 0, &t), -ESRCH);
	assert_int_equal(hs_target_open_pid(0x7ffffff0, 0, &t), -ESRCH);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reads_stopped),
		cmocka_unit_test(test_no_stop_and_gone),
		cmocka_unit_test(test_open_errors),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
