/* hs_outfile: private, atomic output files (src/hs_outfile.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hs_outfile.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/hs-outfile-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	(void)state;
	while (d && (de = readdir(d)))
		if (de->d_name[0] != '.')
			unlinkat(dirfd(d), de->d_name, 0);
	if (d)
		closedir(d);
	return rmdir(dir);
}

static char *path_in(const char *name)
{
	static char buf[4][256];
	static int i;

	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, name);
	return buf[i];
}

/* Entries of dir, sorted, comma-joined. */
static void listing(char *out, size_t n)
{
	struct dirent **v;
	int k = scandir(dir, &v, NULL, alphasort);

	out[0] = '\0';
	for (int i = 0; i < k; i++) {
		if (v[i]->d_name[0] != '.') {
			if (out[0])
				strncat(out, ",", n - strlen(out) - 1);
			strncat(out, v[i]->d_name, n - strlen(out) - 1);
		}
		free(v[i]);
	}
	free(v);
}

static void read_file(const char *p, char *out, size_t n)
{
	FILE *f = fopen(p, "r");
	size_t r;

	assert_non_null(f);
	r = fread(out, 1, n - 1, f);
	out[r] = '\0';
	fclose(f);
}

static void test_commit_private(void **state)
{
	struct hs_outfile of;
	char buf[256];
	struct stat sb;
	mode_t old = umask(0);

	(void)state;
	assert_int_equal(hs_outfile_open(&of, path_in("a"), 0), 0);
	/* Only the temporary name exists while writing. */
	listing(buf, sizeof(buf));
	assert_non_null(strstr(buf, "a.heapscan-tmp-"));
	assert_null(strchr(buf, ','));
	assert_non_null(hs_outfile_stream(&of));
	fputs("hello\n", hs_outfile_stream(&of));
	assert_int_equal(hs_outfile_commit(&of), 0);
	umask(old);
	listing(buf, sizeof(buf));
	assert_string_equal(buf, "a");
	assert_int_equal(lstat(path_in("a"), &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0600);
	read_file(path_in("a"), buf, sizeof(buf));
	assert_string_equal(buf, "hello\n");
	unlink(path_in("a"));
}

static void test_exists_and_force(void **state)
{
	struct hs_outfile of;
	char buf[256];

	(void)state;
	assert_int_equal(symlink("/etc/hostname", path_in("l")), 0);
	assert_int_equal(hs_outfile_open(&of, path_in("l"), 0), -EEXIST);
	/* Appearing after open: the rename refuses too (RENAME_NOREPLACE). */
	assert_int_equal(hs_outfile_open(&of, path_in("late"), 0), 0);
	assert_int_equal(write(of.fd, "x", 1), 1);
	assert_int_equal(symlink("/etc/hostname", path_in("late")), 0);
	assert_int_equal(hs_outfile_commit(&of), -EEXIST);
	listing(buf, sizeof(buf));
	assert_string_equal(buf, "l,late");
	/* --force replaces the link itself. */
	assert_int_equal(hs_outfile_open(&of, path_in("l"), HS_OUTFILE_FORCE), 0);
	assert_int_equal(write(of.fd, "new", 3), 3);
	assert_int_equal(hs_outfile_commit(&of), 0);
	read_file(path_in("l"), buf, sizeof(buf));
	assert_string_equal(buf, "new");
	unlink(path_in("l"));
	unlink(path_in("late"));
}

static void test_abort(void **state)
{
	struct hs_outfile of;
	char buf[256];

	(void)state;
	assert_int_equal(hs_outfile_open(&of, path_in("b"), 0), 0);
	fputs("partial", hs_outfile_stream(&of));
	hs_outfile_abort(&of);
	hs_outfile_abort(&of); /* harmless twice */
	listing(buf, sizeof(buf));
	assert_string_equal(buf, "");
}

static void test_full_disk(void **state)
{
	struct hs_outfile of;
	char buf[256];
	FILE *f;
	int full;

	(void)state;
	/* /dev/full stands for the disk: writes fail with ENOSPC at flush. */
	assert_int_equal(hs_outfile_open(&of, path_in("c"), 0), 0);
	full = open("/dev/full", O_WRONLY | O_CLOEXEC);
	assert_true(full >= 0);
	assert_int_equal(dup2(full, of.fd), of.fd);
	close(full);
	f = hs_outfile_stream(&of);
	fputs("data", f);
	assert_int_equal(hs_outfile_commit(&of), -ENOSPC);
	listing(buf, sizeof(buf));
	assert_string_equal(buf, "");
}

static void test_clean_stale(void **state)
{
	char buf[256], name[128];
	pid_t dead = fork();

	(void)state;
	if (dead == 0)
		_exit(0);
	waitpid(dead, NULL, 0);
	snprintf(name, sizeof(name), "x.heapscan-tmp-%d-abcdef", (int)dead);
	close(open(path_in(name), O_CREAT | O_WRONLY, 0600));
	snprintf(name, sizeof(name), "y.heapscan-tmp-%d-abcdef", (int)getppid());
	close(open(path_in(name), O_CREAT | O_WRONLY, 0600));
	close(open(path_in("z.heapscan-tmp-1-short"), O_CREAT | O_WRONLY, 0600));
	assert_int_equal(hs_outfile_clean_stale(path_in("anything")), 1);
	listing(buf, sizeof(buf));
	snprintf(name, sizeof(name), "y.heapscan-tmp-%d-abcdef,z.heapscan-tmp-1-short",
		 (int)getppid());
	assert_string_equal(buf, name);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_commit_private),
		cmocka_unit_test(test_exists_and_force),
		cmocka_unit_test(test_abort),
		cmocka_unit_test(test_full_disk),
		cmocka_unit_test(test_clean_stale),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
