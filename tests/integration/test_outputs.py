"""Files heapscan writes and its stdout.

Every output file (snapshot -o, watch --save-dir, dump -o) is 0600 whatever
the umask, never written through a symlink, never replaces a file without
--force, and appears whole or not at all; temporary files a SIGKILLed
heapscan left behind are removed by the next run.  A failed write to
stdout (/dev/full) is exit 2 with one line, for every command, in text and
--json.
"""
import os
import re
import signal
import stat
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402

TMP_RE = re.compile(r"\.heapscan-tmp-(\d+)-......$")


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def umask0():
    os.umask(0)


def run_umask0(*args):
    p = subprocess.run([h.HEAPSCAN] + [str(a) for a in args], preexec_fn=umask0,
                       capture_output=True, text=True, timeout=240)
    return p.returncode, p.stdout, p.stderr


class Files(h.TmpDirTestCase):
    def test_private_under_umask_000(self):
        with h.Victim("heap_victim") as v:
            snap = os.path.join(self.tmp, "a.profile")
            core = os.path.join(self.tmp, "a.core")
            wdir = os.path.join(self.tmp, "w")
            os.mkdir(wdir)
            for args in (("snapshot", "-p", v.pid, "-o", snap),
                         ("dump", "-p", v.pid, "-o", core),
                         ("watch", "-p", v.pid, "--count", "2", "--interval", "0",
                          "--save-dir", wdir)):
                rc, _, err = run_umask0(*args)
                self.assertEqual(rc, 0, err)
            files = [snap, core] + [os.path.join(wdir, f) for f in sorted(os.listdir(wdir))]
            self.assertEqual(sorted(os.listdir(wdir)),
                             ["%d-1.profile" % v.pid, "%d-2.profile" % v.pid])
            for f in files:
                self.assertEqual(mode(f), 0o600, f)
            self.assertEqual(sorted(os.listdir(self.tmp)), ["a.core", "a.profile", "w"])

    def check_symlink_refused(self, args, link, err_path):
        secret = os.path.join(self.tmp, "victim-file")
        with open(secret, "w") as f:
            f.write("keep me\n")
        os.symlink(secret, link)
        rc, out, err = h.run(*args)
        self.assertEqual(rc, 2, err)
        self.assertEqual(err, "heapscan: '%s' exists; use --force to replace it\n"
                         % err_path)
        with open(secret) as f:
            self.assertEqual(f.read(), "keep me\n")
        self.assertTrue(os.path.islink(link))
        self.assertEqual(mode(secret), 0o644 & ~self.umask)
        return secret

    def setUp(self):
        super().setUp()
        self.umask = os.umask(0o22)
        os.umask(self.umask)

    def test_snapshot_symlink_and_force(self):
        with h.Victim("heap_victim") as v:
            link = os.path.join(self.tmp, "p.profile")
            secret = self.check_symlink_refused(("snapshot", "-p", v.pid, "-o", link),
                                                link, link)
            # --force replaces the link itself, never writes through it.
            rc, _, err = h.run("snapshot", "-p", v.pid, "-o", link, "--force")
            self.assertEqual(rc, 0, err)
            self.assertFalse(os.path.islink(link))
            self.assertEqual(mode(link), 0o600)
            with open(secret) as f:
                self.assertEqual(f.read(), "keep me\n")
            with open(link) as f:
                self.assertTrue(f.read().startswith("heapscan-profile"))
            self.assertEqual(v.settled_state(), "S")

    def test_dump_symlink_refused(self):
        with h.Victim("heap_victim") as v:
            link = os.path.join(self.tmp, "d.core")
            self.check_symlink_refused(("dump", "-p", v.pid, "-o", link), link, link)

    def test_watch_symlink_refused(self):
        with h.Victim("heap_victim") as v:
            link = os.path.join(self.tmp, "%d-1.profile" % v.pid)
            self.check_symlink_refused(("watch", "-p", v.pid, "--count", "1",
                                        "--interval", "0", "--save-dir", self.tmp),
                                       link, link)
            self.assertEqual(v.settled_state(), "S")

    def test_existing_file_refused(self):
        with h.Victim("heap_victim") as v:
            path = os.path.join(self.tmp, "e.profile")
            with open(path, "w") as f:
                f.write("old\n")
            rc, _, err = h.run("snapshot", "-p", v.pid, "-o", path)
            self.assertEqual(rc, 2)
            self.assertIn("exists; use --force", err)
            with open(path) as f:
                self.assertEqual(f.read(), "old\n")
            self.assertEqual(os.listdir(self.tmp), ["e.profile"])

    def test_disk_full_leaves_nothing(self):
        mnt = os.path.join(self.tmp, "small")
        os.mkdir(mnt)
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4k", "tmpfs", mnt],
                          capture_output=True).returncode != 0:
            self.skipTest("cannot mount a tmpfs (needs root)")
        try:
            with h.Victim("strings_victim") as v:
                path = os.path.join(mnt, "full.profile")
                rc, _, err = h.run("snapshot", "-p", v.pid, "-o", path, "--keep", "100000")
                self.assertEqual(rc, 2, err)
                self.assertEqual(err, "heapscan: cannot write '%s': No space left on "
                                 "device; nothing written\n" % path)
                self.assertEqual(os.listdir(mnt), [])
        finally:
            subprocess.run(["umount", mnt], check=True)

    def test_killed_run_cleaned_by_next(self):
        """A snapshot SIGKILLed while it holds the target leaves its
        temporary file; the next run that writes into that directory (a
        dump here: one helper for every writer) removes it, but not the
        temporary file of a heapscan that still runs."""
        with h.Victim("heap_victim") as v:
            path = os.path.join(self.tmp, "k.profile")
            env = dict(os.environ, HEAPSCAN_TEST_HOLD="1")
            p = subprocess.Popen([h.HEAPSCAN, "snapshot", "-p", str(v.pid), "-o", path],
                                 env=env, text=True, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE)
            self.assertEqual(p.stderr.readline(), "heapscan: test: holding\n")
            left = os.listdir(self.tmp)
            self.assertEqual(len(left), 1)
            m = TMP_RE.search(left[0])
            self.assertTrue(left[0].startswith("k.profile.heapscan-tmp-"), left)
            self.assertEqual(int(m.group(1)), p.pid)
            self.assertEqual(mode(os.path.join(self.tmp, left[0])), 0o600)
            p.kill()
            p.communicate()
            # A live process's temporary file (the victim's pid) stays.
            live = "other.heapscan-tmp-%d-abcdef" % v.pid
            open(os.path.join(self.tmp, live), "w").close()
            self.assertEqual(sorted(os.listdir(self.tmp)), sorted(left + [live]))
            rc, _, err = h.run("dump", "-p", v.pid, "-o", os.path.join(self.tmp, "n.core"))
            self.assertEqual(rc, 0, err)
            self.assertEqual(sorted(os.listdir(self.tmp)), sorted(["n.core", live]))
            self.assertEqual(v.settled_state(), "S")

    def test_dump_killed_mid_copy_cleaned_by_next(self):
        """SIGKILL while a dump copies memory: the temporary file stays
        (nothing can remove it), the next run removes it.  heapscan holds
        after its first chunk (HEAPSCAN_TEST_HOLD_AT=dump-copy) and is
        killed there, whatever the machine's speed."""
        with h.Victim("leaky_worker", 400000) as v:
            path = os.path.join(self.tmp, "m.core")
            env = dict(os.environ, HEAPSCAN_TEST_HOLD_AT="dump-copy")
            p = subprocess.Popen([h.HEAPSCAN, "dump", "-p", str(v.pid), "-o", path,
                                  "--all"], env=env, text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            line = p.stderr.readline()
            left = [f for f in os.listdir(self.tmp) if TMP_RE.search(f)]
            p.kill()
            p.communicate()
            self.assertEqual(line, "heapscan: test: holding at dump-copy\n")
            self.assertEqual(len(left), 1, os.listdir(self.tmp))
            self.assertGreater(os.path.getsize(os.path.join(self.tmp, left[0])), 0)
            self.assertEqual(os.listdir(self.tmp), left)
            self.assertEqual(v.settled_state(), "S")
            rc, _, err = h.run("snapshot", "-p", v.pid, "-o", os.path.join(self.tmp, "s.profile"))
            self.assertEqual(rc, 0, err)
            self.assertEqual(os.listdir(self.tmp), ["s.profile"])

    def test_interrupted_snapshot_leaves_nothing(self):
        with h.Victim("heap_victim") as v:
            path = os.path.join(self.tmp, "i.profile")
            env = dict(os.environ, HEAPSCAN_TEST_HOLD="1")
            p = subprocess.Popen([h.HEAPSCAN, "snapshot", "-p", str(v.pid), "-o", path],
                                 env=env, text=True, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE)
            self.assertEqual(p.stderr.readline(), "heapscan: test: holding\n")
            p.send_signal(signal.SIGINT)
            out, err = p.communicate(timeout=60)
            self.assertEqual(p.returncode, 2, err)
            self.assertEqual(os.listdir(self.tmp), [])


class Stdout(h.TmpDirTestCase):
    def full(self, *args):
        with open("/dev/full", "w") as f:
            p = subprocess.run([h.HEAPSCAN] + [str(a) for a in args], stdout=f,
                               stderr=subprocess.PIPE, text=True, timeout=240)
        return p.returncode, p.stderr

    def test_dev_full_every_command(self):
        with h.Victim("heap_victim") as v:
            a = os.path.join(self.tmp, "a.profile")
            b = os.path.join(self.tmp, "b.profile")
            for path in (a, b):
                rc, _, err = h.run("snapshot", "-p", v.pid, "-o", path)
                self.assertEqual(rc, 0, err)
            core = os.path.join(self.tmp, "x.core")
            with open("/proc/%d/maps" % v.pid) as f:
                addr = "0x" + f.readline().split("-")[0]
            cmds = [("scan", "-p", v.pid), ("strings", "-p", v.pid), ("heap", "-p", v.pid),
                    ("stacks", "-p", v.pid), ("diff", a, b), ("check",),
                    ("snapshot", "-p", v.pid, "-o", "-"),
                    ("watch", "-p", v.pid, "--count", "1"),
                    ("show", "-p", v.pid, addr),
                    ("dump", "-p", v.pid, "-o", core)]
            for cmd in cmds:
                for json_flag in ((), ("--json",)):
                    if cmd[0] in ("snapshot", "check") and json_flag:
                        continue  # -o - and --json both want stdout; no check --json
                    args = list(cmd) + list(json_flag)
                    if cmd[0] == "dump" and os.path.exists(core):
                        os.unlink(core)
                    with self.subTest(args=args):
                        rc, err = self.full(*args)
                        self.assertEqual(rc, 2, err)
                        lines = err.splitlines()
                        self.assertEqual(len(lines), 1, err)
                        self.assertRegex(lines[0], r"^heapscan: cannot write to stdout: ")
            self.assertEqual(v.settled_state(), "S")

    def test_version_and_help(self):
        for args in (("--version",), ("--help",), ("scan", "--help")):
            rc, err = self.full(*args)
            self.assertEqual(rc, 2, args)
            self.assertEqual(err, "heapscan: cannot write to stdout: No space left on "
                             "device\n")


if __name__ == "__main__":
    h.main()
