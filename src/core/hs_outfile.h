/*
 * Files heapscan writes (a dump, a profile, any later output format).
 *
 * Every output file holds the target's memory or strings, so it is private
 * and appears whole or not at all:
 *  - it is written under a temporary name in the same directory,
 *    "PATH.heapscan-tmp-PID-XXXXXX", created with O_EXCL (never through a
 *    symlink) and mode 0600 whatever the umask;
 *  - hs_outfile_commit() renames it to PATH once everything is written
 *    (and, with HS_OUTFILE_SYNC, synced).  Without HS_OUTFILE_FORCE an
 *    existing PATH (a symlink included) is refused with -EEXIST, checked
 *    at open and again, atomically, by the rename (RENAME_NOREPLACE);
 *    with it, PATH is replaced (a symlink itself, never its target);
 *  - on any error, and on hs_outfile_abort(), the temporary file is
 *    removed: no partial file is ever left at PATH.  An exit() while a
 *    file is open removes its temporary file too (atexit).  A heapscan
 *    killed by SIGKILL leaves it behind: hs_outfile_open() removes those
 *    in the directory whose PID is no longer running (and that belong to
 *    this user), so the next run cleans up.
 *
 * Usage:
 *	struct hs_outfile of;
 *	ret = hs_outfile_open(&of, path, force ? HS_OUTFILE_FORCE : 0);
 *	... write through of.fd, or through hs_outfile_stream(&of) ...
 *	ret = ok ? hs_outfile_commit(&of) : (hs_outfile_abort(&of), err);
 * After commit or abort the struct is released (either may be called once).
 * Not thread-safe: open, commit and abort from one thread.
 */
#ifndef HS_OUTFILE_H
#define HS_OUTFILE_H

#include "hs_core.h"

#include <stdio.h>

enum hs_outfile_flags {
	HS_OUTFILE_FORCE = 1 << 0,  /* replace an existing PATH */
	HS_OUTFILE_SYNC = 1 << 1,   /* fsync before the rename */
};

struct hs_outfile {
	int fd;        /* the temporary file, open for writing; -1 once closed */
	FILE *f;       /* from hs_outfile_stream(), or NULL */
	char *path;    /* the final name (owned) */
	char *tmp;     /* the temporary name (owned) */
	unsigned flags;
};

/* Creates the temporary file for path.  0, -EEXIST (path exists and no
 * HS_OUTFILE_FORCE), or -errno; on error *of needs no release. */
int hs_outfile_open(struct hs_outfile *of, const char *path, unsigned flags) HS_MUST_CHECK;

/* A stdio stream on of->fd (made once; closed by commit/abort), or NULL
 * with errno set. */
FILE *hs_outfile_stream(struct hs_outfile *of);

/* Flushes, checks every write, syncs if asked, closes and renames the
 * file into place.  0, or -errno (then the temporary file is removed and
 * nothing is at path that was not there before). */
int hs_outfile_commit(struct hs_outfile *of) HS_MUST_CHECK;

/* Closes and removes the temporary file. */
void hs_outfile_abort(struct hs_outfile *of);

/* Removes stale temporary files of dead heapscan processes in the
 * directory of path (hs_outfile_open does it already); how many. */
unsigned hs_outfile_clean_stale(const char *path);

#endif
