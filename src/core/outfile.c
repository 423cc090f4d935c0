/* Private, atomic output files: see hs_outfile.h. */
#include "hs_outfile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TMP_TAG ".heapscan-tmp-"
#define MAX_OPEN 16

/* Temporary names to remove if heapscan exits with a file still open. */
static char *open_tmps[MAX_OPEN];
static bool atexit_done;

static void remove_open_tmps(void)
{
	for (size_t i = 0; i < MAX_OPEN; i++)
		if (open_tmps[i])
			unlink(open_tmps[i]);
}

static void track(char *tmp, bool add)
{
	for (size_t i = 0; i < MAX_OPEN; i++) {
		if (add && !open_tmps[i]) {
			open_tmps[i] = tmp;
			return;
		}
		if (!add && open_tmps[i] == tmp) {
			open_tmps[i] = NULL;
			return;
		}
	}
}

/* True if path's directory was cleaned already by this process (watch
 * writes a file per sample into one directory: scan it once). */
static bool cleaned_for(const char *path)
{
	static char *last;
	const char *slash = strrchr(path, '/');
	size_t n = slash ? (size_t)(slash - path) : 0;

	if (last && strlen(last) == n && !strncmp(last, path, n))
		return true;
	free(last);
	last = hs_xstrndup(path, n);
	return false;
}

/* "NAME.heapscan-tmp-PID-XXXXXX": the PID, or 0 if name is not one. */
static pid_t stale_pid(const char *name)
{
	const char *s = strstr(name, TMP_TAG), *next;
	char *end;
	long pid;

	if (!s)
		return 0;
	/* The last occurrence: NAME may hold the tag itself. */
	while ((next = strstr(s + 1, TMP_TAG)))
		s = next;
	s += strlen(TMP_TAG);
	pid = strtol(s, &end, 10);
	if (pid <= 0 || *end != '-' || strlen(end + 1) != 6)
		return 0;
	return (pid_t)pid;
}

unsigned hs_outfile_clean_stale(const char *path)
{
	struct hs_buf dir = HS_BUF_INIT;
	const char *slash = strrchr(path, '/');
	unsigned n = 0;
	DIR *d;
	struct dirent *de;

	if (slash)
		hs_buf_add(&dir, path, slash == path ? 1 : (size_t)(slash - path));
	else
		hs_buf_adds(&dir, ".");
	d = opendir(dir.buf);
	if (!d) {
		hs_buf_release(&dir);
		return 0;
	}
	while ((de = readdir(d))) {
		pid_t pid = stale_pid(de->d_name);
		struct stat sb;

		if (!pid || pid == getpid())
			continue;
		/* Running (or not ours to judge): leave it. */
		if (kill(pid, 0) == 0 || errno != ESRCH)
			continue;
		if (fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(sb.st_mode) || sb.st_uid != geteuid())
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) == 0) {
			n++;
			hs_log(HS_LOG_DEBUG, "removed '%s/%s', left by heapscan pid %d",
			       dir.buf, de->d_name, (int)pid);
		}
	}
	closedir(d);
	hs_buf_release(&dir);
	return n;
}

int hs_outfile_open(struct hs_outfile *of, const char *path, unsigned flags)
{
	struct hs_buf tmp = HS_BUF_INIT;
	struct stat sb;
	int fd;

	memset(of, 0, sizeof(*of));
	of->fd = -1;
	if (!path || !*path)
		return -EINVAL;
	if (!cleaned_for(path))
		(void)hs_outfile_clean_stale(path);
	if (!(flags & HS_OUTFILE_FORCE) && lstat(path, &sb) == 0)
		return -EEXIST;
	hs_buf_addf(&tmp, "%s" TMP_TAG "%d-XXXXXX", path, (int)getpid());
	/* mkostemp: O_CREAT | O_EXCL, so never through a symlink, mode 0600
	 * (the umask can only take bits away; fchmod makes sure). */
	fd = mkostemp(tmp.buf, O_CLOEXEC);
	if (fd < 0) {
		int err = errno;
		hs_buf_release(&tmp);
		return -err;
	}
	(void)fchmod(fd, 0600);
	of->fd = fd;
	of->flags = flags;
	of->path = hs_xstrdup(path);
	of->tmp = hs_buf_detach(&tmp, NULL);
	if (!atexit_done) {
		atexit(remove_open_tmps);
		atexit_done = true;
	}
	track(of->tmp, true);
	return 0;
}

FILE *hs_outfile_stream(struct hs_outfile *of)
{
	if (!of->f && of->fd >= 0)
		of->f = fdopen(of->fd, "w");
	return of->f;
}

static void release(struct hs_outfile *of)
{
	track(of->tmp, false);
	free(of->path);
	free(of->tmp);
	of->path = of->tmp = NULL;
	of->f = NULL;
	of->fd = -1;
}

void hs_outfile_abort(struct hs_outfile *of)
{
	if (!of->tmp)
		return;
	if (of->f)
		fclose(of->f);
	else if (of->fd >= 0)
		close(of->fd);
	unlink(of->tmp);
	release(of);
}

/* Installs tmp as path: atomically refusing to replace unless force. */
static int install(const char *tmp, const char *path, bool force)
{
	if (force)
		return rename(tmp, path) ? -errno : 0;
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -errno;
	/* Filesystems without RENAME_NOREPLACE: link() refuses to replace. */
	if (link(tmp, path))
		return -errno;
	unlink(tmp);
	return 0;
}

int hs_outfile_commit(struct hs_outfile *of)
{
	int ret = 0;

	if (!of->tmp)
		return -EINVAL;
	errno = 0;
	if (of->f && (fflush(of->f) != 0 || ferror(of->f)))
		ret = errno ? -errno : -EIO;
	if (!ret && (of->flags & HS_OUTFILE_SYNC) && fsync(of->fd) < 0)
		ret = -errno;
	if (of->f) {
		if (fclose(of->f) != 0 && !ret)
			ret = -errno;
	} else if (close(of->fd) < 0 && !ret && errno != EINTR) {
		ret = -errno;
	}
	of->f = NULL;
	of->fd = -1;
	if (!ret)
		ret = install(of->tmp, of->path, of->flags & HS_OUTFILE_FORCE);
	if (ret) {
		unlink(of->tmp);
		release(of);
		return ret;
	}
	release(of);
	return 0;
}
