"""Every bad input gets one clear line on stderr and a documented exit code
(0 complete, 1 partial, 2 fatal, 64 usage)."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
import harness as h

NOBODY = 65534
FATAL, USAGE = 2, 64


def kernel_thread_pid():
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                flags = int(f.read().rsplit(")", 1)[1].split()[6])
        except (OSError, IndexError, ValueError):
            continue
        if flags & 0x00200000:
            return int(d)
    return None


def as_nobody(*args):
    p = subprocess.run(["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY,
                        "--clear-groups", "--inh-caps=-all", "--", h.HEAPSCAN]
                       + [str(a) for a in args], capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


class Errors(h.TmpDirTestCase):
    def assertOneLine(self, err, *needles):
        lines = err.strip("\n").split("\n")
        self.assertEqual(len(lines), 1, err)
        self.assertTrue(lines[0].startswith("heapscan: "), err)
        for n in needles:
            self.assertIn(n, lines[0])

    def test_no_such_process(self):
        # A pid that is free: a child we reaped.
        p = subprocess.Popen(["true"])
        p.wait()
        rc, out, err = h.run("-p", p.pid)
        self.assertEqual(rc, FATAL)
        self.assertEqual(out, "")
        self.assertOneLine(err, "no such process: %d" % p.pid)

    def test_zombie(self):
        with h.Victim("threads_victim", 0) as v:
            z = v.fact("zombie")
            rc, out, err = h.run("-p", z)
            self.assertEqual(rc, FATAL)
            self.assertOneLine(err, "pid %d" % z, "exited", "zombie")

    def test_kernel_thread(self):
        pid = kernel_thread_pid()
        if pid is None:
            self.skipTest("no kernel thread visible in this pid namespace")
        rc, out, err = h.run("-p", pid)
        self.assertEqual(rc, FATAL)
        self.assertOneLine(err, "kernel thread")

    def test_self(self):
        # exec keeps the shell's pid, so heapscan is asked about itself.
        p = subprocess.run(["sh", "-c", 'exec "$0" -p $$', h.HEAPSCAN],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, FATAL)
        self.assertOneLine(p.stderr, "cannot inspect itself")

    def test_different_uid(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to run heapscan as another user")
        with h.Victim("threads_victim", 0) as v:
            rc, out, err = as_nobody("-p", v.pid)
            self.assertEqual(rc, FATAL)
            self.assertOneLine(err, "permission denied for pid %d" % v.pid,
                               "uid 0", "uid %d" % NOBODY, "CAP_SYS_PTRACE")

    def test_not_dumpable_without_cap(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to switch both processes to another user")
        with h.Victim("threads_victim", 0, "nodump", user=NOBODY) as v:
            rc, out, err = as_nobody("-p", v.pid)
            self.assertEqual(rc, FATAL)
            self.assertOneLine(err, "permission denied", "not dumpable",
                               "CAP_SYS_PTRACE")

    def test_yama(self):
        try:
            with open("/proc/sys/kernel/yama/ptrace_scope") as f:
                scope = int(f.read())
        except FileNotFoundError:
            self.skipTest("no Yama on this kernel")
        if scope < 1 or os.geteuid() == 0:
            self.skipTest("yama scope %d does not restrict this run" % scope)
        # A non-descendant that did not call PR_SET_PTRACER: our own parent.
        rc, out, err = h.run("-p", os.getppid())
        self.assertEqual(rc, FATAL)
        self.assertOneLine(err, "yama ptrace_scope")

    def test_already_traced(self):
        with h.Victim("threads_victim", 0) as v:
            with h.Victim("tracer", v.pid) as tr:
                rc, out, err = h.run("-p", v.pid)
                self.assertEqual(rc, FATAL)
                self.assertOneLine(err, "already traced by pid %d (tracer)"
                                   % tr.fact("tracer"))
                # --no-stop reads without attaching, so it still works.
                rc, out, err = h.run("-p", v.pid, "--no-stop")
                self.assertEqual(rc, 0, err)

    def test_usage_errors(self):
        cases = [
            ([], "usage:"),
            (["-p"], "needs a value"),
            (["-p", "abc"], "invalid pid 'abc'"),
            (["-p", "-5"], "invalid pid"),
            (["-p", "0"], "invalid pid '0'"),
            (["-p", "99999999999"], "invalid pid"),
            (["scan"], "no target"),
            (["scan", "-p", "1", "-c", "x"], "exclude each other"),
            (["scan", "-p", "1", "--bogus"], "unknown option '--bogus'"),
            (["scan", "-p", "1", "extra"], "unexpected argument 'extra'"),
            (["scan", "-p", "1", "--top-regions", "x"], "invalid --top-regions"),
            (["frobnicate"], "'frobnicate' is not a heapscan command"),
            (["scan", "--exe", "/bin/true", "-p", "1"], "--exe goes with --core"),
        ]
        for args, needle in cases:
            rc, out, err = h.run(*args)
            self.assertEqual(rc, USAGE, (args, err))
            self.assertEqual(out, "", args)
            self.assertIn(needle, err, args)
            if args:
                self.assertOneLine(err)

    def test_help_lists_exit_codes(self):
        rc, out, err = h.run("--help")
        self.assertEqual(rc, 0)
        for code in ("0   complete", "1   partial", "2   fatal", "64  usage"):
            self.assertIn(code, out)
        rc, out, err = h.run("scan", "--help")
        self.assertEqual(rc, 0)
        for opt in ("--pid", "--core", "--exe", "--no-stop", "--json", "--top-regions"):
            self.assertIn(opt, out)


    def test_every_option_in_man_page(self):
        import re
        with open(os.path.join(h.SOURCE, "doc", "heapscan.1")) as f:
            man = f.read().replace("\\-", "-")
        rc, out, _ = h.run("--help")
        self.assertEqual(rc, 0)
        cmds = re.findall(r"^  ([a-z]+) ", out.split("commands:")[1], re.M)
        self.assertIn("scan", cmds)
        for cmd in cmds:
            self.assertRegex(man, r"\.SS heapscan %s\b|\.B %s\b" % (cmd, cmd))
            rc, out, err = h.run(cmd, "--help")
            self.assertEqual(rc, 0, cmd)
            for opt in set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", out)):
                self.assertIn(opt, man, "%s %s" % (cmd, opt))


if __name__ == "__main__":
    h.main()
