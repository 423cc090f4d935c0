"""Post-mortem: heapscan on a gdb gcore file, a kernel core, a heapscan dump,
and on cut or damaged cores.

Victim: fixtures/victims/dump_victim.c, whose marker strings have exact
counts (heap, thread arena, anonymous mapping) it prints itself.
"""
import os
import resource
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from harness import TmpDirTestCase, Victim, main, run, run_json, skip, victim_path  # noqa: E402
from coreutil import MARKERS, Core  # noqa: E402

# Where each marker lives, as the region classes must say.
MARKER_CLASS = {"heap_marker": "heap", "arena_marker": "arena", "anon_marker": "anon"}


def string_counts(path, *extra):
    out, rc, err = run_json("strings", "-c", path, "--top", "10", *extra)
    return {s["string"]: (s["count"], s["classes"]) for s in out["strings"]}, rc, err


class CoreTest(TmpDirTestCase):
    def assert_markers(self, v, path, exact_classes=True):
        counts, rc, err = string_counts(path)
        self.assertEqual(rc, 0, err)
        for key, needle in MARKERS.items():
            n, classes = counts[needle[:-1].decode()]
            self.assertEqual(n, v.fact(key), key)
            if exact_classes:
                self.assertEqual(classes, {MARKER_CLASS[key]: n}, key)

    def gcore(self, v):
        if not shutil.which("gcore"):
            self.fail("gcore (gdb) not installed: scripts/setup.sh installs it")
        prefix = os.path.join(self.tmp, "g")
        p = subprocess.run(["gcore", "-o", prefix, str(v.pid)], capture_output=True,
                           text=True, timeout=120)
        path = "%s.%d" % (prefix, v.pid)
        if p.returncode != 0 or not os.path.exists(path):
            self.fail("gcore failed: %s" % p.stderr)
        return path

    def test_gcore_file(self):
        with Victim("dump_victim") as v:
            path = self.gcore(v)
        self.assert_markers(v, path)
        out, rc, err = run_json("scan", "-c", path)
        self.assertEqual(rc, 0, err)
        self.assertEqual(out["target"]["pid"], v.pid)
        self.assertEqual(len(out["target"]["threads"]), v.fact("threads"))
        # --exe is accepted; a missing one is a clear error.
        out, rc, err = run_json("scan", "-c", path, "--exe", victim_path("dump_victim"))
        self.assertEqual(rc, 0, err)
        rc, _, err = run("scan", "-c", path, "--exe", os.path.join(self.tmp, "nope"))
        self.assertEqual(rc, 2)
        self.assertEqual(err.count("\n"), 1)
        self.assertIn("No such file or directory", err)

    def test_truncated_core(self):
        with Victim("dump_victim") as v:
            full = os.path.join(self.tmp, "full.core")
            rc, _, err = run("dump", "-p", v.pid, "-o", full)
            self.assertEqual(rc, 0, err)
        c = Core(full)
        anon = c.load_at(v.fact("anon"))
        with open(full, "rb") as f:
            data = f.read()
        # Cut in the middle of the anon mapping's touched pages: what was
        # before the cut is analysed, the loss reported, exit status 1.
        cut_at = anon["offset"] + v.fact("anon") - anon["vaddr"] + 8 * 4096
        cut = os.path.join(self.tmp, "cut.core")
        with open(cut, "wb") as f:
            f.write(data[:cut_at])
        counts, rc, err = string_counts(cut)
        self.assertEqual(rc, 1, err)
        self.assertIn("bytes missing (file truncated)", err)
        self.assertIn("core is truncated at byte %d" % cut_at, err)
        # Marker i sits on touched page i % 16: pages 0-7 survive the cut.
        n = counts[MARKERS["anon_marker"][:-1].decode()][0]
        touched = v.fact("anon_touched_pages")
        self.assertEqual(n, sum(1 for i in range(v.fact("anon_marker")) if i % touched < 8))
        # The heap lies below the cut (lower address, earlier in the file).
        self.assertEqual(counts[MARKERS["heap_marker"][:-1].decode()][0],
                         v.fact("heap_marker"))
        # Cut inside the notes: no threads, but no crash either.
        with open(cut, "wb") as f:
            f.write(data[:c.phdrs[0]["offset"] + 200])
        rc, out, err = run("scan", "-c", cut)
        self.assertEqual(rc, 1, err)
        self.assertIn("note segment truncated", err)
        # Cut inside the program headers: nothing to analyse.
        with open(cut, "wb") as f:
            f.write(data[:100])
        rc, out, err = run("scan", "-c", cut)
        self.assertEqual(rc, 2)
        self.assertEqual(err, "heapscan: cannot read core '%s': file is truncated\n" % cut)

    def test_not_a_core(self):
        for path, msg in ((victim_path("dump_victim"), "not an ELF core file"),
                          (os.path.join(self.tmp, "missing"), "No such file or directory")):
            rc, out, err = run("scan", "-c", path)
            self.assertEqual(rc, 2)
            self.assertEqual(out, "")
            self.assertEqual(err, "heapscan: cannot read core '%s': %s\n" % (path, msg))


def kernel_core_pattern():
    """core_pattern, and whether the kernel writes cores into the cwd."""
    with open("/proc/sys/kernel/core_pattern") as f:
        pattern = f.read().strip()
    return pattern, not (pattern.startswith("|") or "/" in pattern)


class KernelCoreTest(TmpDirTestCase):
    """Its own ctest entry (int/test_core_kernel), so that it can exit 77
    (SKIP_RETURN_CODE) when this machine hands cores elsewhere without
    hiding the other tests' results."""
    assert_markers = CoreTest.assert_markers

    def kernel_core(self):
        """Runs the victim into abort() with cores enabled; (victim, path)."""
        pattern, here = kernel_core_pattern()
        assert here  # checked before unittest.main()

        def enable_cores():
            os.chdir(self.tmp)
            resource.setrlimit(resource.RLIMIT_CORE,
                               (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        v = Victim("dump_victim", preexec_fn=enable_cores)
        v.proc.stdin.write("abort\n")
        v.proc.stdin.flush()
        rc = v.proc.wait(timeout=120)
        v.close()
        self.assertEqual(rc, -6)
        cores = [f for f in os.listdir(self.tmp) if f.startswith("core")]
        if not cores:
            # A skip, not a failure (e.g. a hard RLIMIT_CORE of 0); unittest
            # would catch SystemExit, so leave at once.
            print("SKIP: no core written (core_pattern %r)" % pattern, flush=True)
            os._exit(77)
        return v, os.path.join(self.tmp, cores[0])

    def test_kernel_core(self):
        # gdb 13 warns "Unexpected size of section .reg-xstate" on this
        # CPU's 11008-byte NT_X86_XSTATE in this kernel core exactly as in
        # heapscan's dumps: the note is the kernel's, the warning gdb's.
        v, path = self.kernel_core()
        self.assert_markers(v, path)
        out, rc, err = run_json("scan", "-c", path)
        self.assertEqual(rc, 0, err)
        tids = [t["tid"] for t in out["target"]["threads"]]
        blockers = [int(l.split()[1]) for l in v.lines if l.startswith("thread ")]
        self.assertEqual(sorted(tids), sorted(blockers + [v.pid]))
        self.assertEqual(tids[0], v.pid)   # the aborting thread comes first
        classes = {r["class"] for r in out["regions"]}
        self.assertTrue({"heap", "arena", "stack", "code"} <= classes, classes)
        # 'heapscan core FILE' is the same report.
        again, rc, err = run_json("core", path)
        self.assertEqual(rc, 0, err)
        self.assertEqual(again["regions"], out["regions"])

        # Rewritten as a heapscan dump, it still holds the same strings.
        dump = os.path.join(self.tmp, "rewritten.core")
        rc, _, err = run("dump", "-c", path, "-o", dump)
        self.assertEqual(rc, 0, err)
        self.assert_markers(v, dump)
        for key, needle in MARKERS.items():
            self.assertEqual(Core(dump).count(needle), v.fact(key))


if __name__ == "__main__":
    # Without arguments only CoreTest runs (ctest int/test_core); ctest
    # int/test_core_kernel passes KernelCoreTest.
    if len(sys.argv) == 1:
        sys.argv.append("CoreTest")
    elif "KernelCoreTest" in sys.argv[1:]:
        pattern, here = kernel_core_pattern()
        if not here:
            skip("core_pattern %r hands cores elsewhere" % pattern)
    main()
