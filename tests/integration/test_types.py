"""heapscan types on Debian's python3 (the interpreter linked into the
executable): exact counts of the victim's own classes (with __dict__, with
__slots__, and instances too large for pymalloc), floats at least as many
as it made; live, on a heapscan dump, on a gcore core, with threads, in a
forked child, with PYTHONMALLOC=malloc; and the bad inputs.  Ground truth:
the victim's own gc.get_objects() counts (fixtures/victims/py_victim.py).
"""
import json
import os
import shutil
import signal
import subprocess
import unittest

import harness as h
import test_pprof
from pyvictim import CLASSES, DEBIAN_PYTHON, PyVictim, census, class_counts, rows

N = 30000


class Types(h.TmpDirTestCase):
    def check(self, v, rep, exact_big=True):
        r = rows(rep)
        self.assertEqual(rep["python"]["version"][:4], v.facts["version"][0][:4])
        self.assertEqual(r["__main__.LeakyContext"]["count"], v.fact("LeakyContext"))
        self.assertEqual(r["__main__.Slotted"]["count"], v.fact("Slotted"))
        if exact_big:
            self.assertEqual(r["__main__.Big"]["count"], v.fact("Big"))
        self.assertGreaterEqual(r["float"]["count"], v.fact("floats_made"))
        # bytes are whole allocator blocks, at least the object's size
        self.assertGreaterEqual(r["__main__.LeakyContext"]["bytes"],
                                48 * v.fact("LeakyContext"))
        # sorted by bytes, total = sum of rows
        b = [x["bytes"] for x in rep["types"]]
        self.assertEqual(b, sorted(b, reverse=True))
        self.assertEqual(rep["types_total"]["count"], sum(x["count"] for x in rep["types"]))
        self.assertEqual(rep["types_total"]["bytes"], b and sum(b))
        # every recognised pymalloc object is an allocated block
        py = rep["python"]
        self.assertLessEqual(py["pymalloc_objects"], py["pymalloc_blocks"])
        self.assertEqual(py["problems_total"], 0, py["problems"])
        return r

    def test_live(self):
        with PyVictim(DEBIAN_PYTHON, N) as v:
            rep, rc, err = h.run_json("types", "-p", v.pid)
            self.assertEqual(rc, 0, err)
            self.check(v, rep)
            py = rep["python"]
            self.assertEqual(py["version_source"], "Py_Version")
            # sys.getallocatedblocks() (taken by the victim just before
            # "ready") is the sum of every used pool's count plus the
            # objects PyObject_Malloc handed to malloc: the blocks the walk
            # finds are that sum (each pool's walk equalled its own count:
            # problems_total 0 above), within what the victim's last lines
            # allocated
            ab = v.fact("allocated_blocks")
            self.assertLessEqual(py["pymalloc_blocks"], ab + 100)
            self.assertGreater(py["pymalloc_blocks"], ab * 0.98)
            # text form: jmap-like rows and a total
            rc, out, err = h.run("types", "-p", v.pid, "--top", "3")
            self.assertEqual(rc, 0, err)
            self.assertIn("__main__.LeakyContext", out)
            self.assertIn("Total", out)
            self.assertIn("more types", out)

    def test_strings_where_python(self):
        # Text in str objects (small ones in pymalloc, large ones in glibc
        # chunks) is "python"; the same text in bytearray buffers (C
        # memory, not str objects) is in in-use chunks.
        with PyVictim(DEBIAN_PYTHON, 2000) as v:
            rep, rc, err = h.run_json("strings", "-p", v.pid, "--top", "100000")
            self.assertEqual(rc, 0, err)
            got = {e["string"]: e for e in rep["strings"]}
            small = got["heapscan-small-marker"]
            big = got["heapscan-big-marker"]
            ba = got["heapscan-ba-marker"]
            # (+ the literal in the victim's code object)
            self.assertGreaterEqual(small["count"], v.fact("small_marker"))
            self.assertEqual(small["where"]["python"], small["count"])
            self.assertGreaterEqual(big["count"], v.fact("big_marker"))
            self.assertEqual(big["where"]["python"], big["count"])
            self.assertEqual(ba["where"]["inuse"], v.fact("bytearray_marker"))
            # the default report says the same
            rc, out, err = h.run("-p", v.pid, "--top", "3")
            self.assertEqual(rc, 0, err)
            self.assertIn("in Python objects", out)

    def test_snapshot_diff_types(self):
        with PyVictim(DEBIAN_PYTHON, 5000) as v:
            a = os.path.join(self.tmp, "a.prof")
            b = os.path.join(self.tmp, "b.prof")
            rc, _, err = h.run("snapshot", "-p", v.pid, "-o", a, "--no-strings")
            self.assertEqual(rc, 0, err)
            before = v.fact("LeakyContext")
            v.send("grow 7000")
            self.assertEqual(v.fact("LeakyContext"), before + 7000)
            rc, _, err = h.run("snapshot", "-p", v.pid, "-o", b, "--no-strings")
            self.assertEqual(rc, 0, err)
            with open(b) as f:
                self.assertIn("type python %d " % (before + 7000), f.read())
            rep, rc, err = h.run_json("diff", a, b)
            self.assertEqual(rc, 0, err)
            items = [it for it in rep["growth"] if it["kind"] == "type"]
            lc = [it for it in items if it["type"] == "__main__.LeakyContext"]
            self.assertEqual(len(lc), 1, items[:5])
            self.assertEqual(lc[0]["count_before"], before)
            self.assertEqual(lc[0]["delta_count"], 7000)
            self.assertEqual(lc[0]["type_kind"], "python")
            rc, out, err = h.run("diff", a, b)
            self.assertEqual(rc, 0, err)
            self.assertIn("objects by type that grew", out)
            # the same census in a pprof profile: leaf "python TYPE" under "types"
            pb = os.path.join(self.tmp, "b.pb.gz")
            rc, _, err = h.run("snapshot", "-p", v.pid, "-o", pb, "--format", "pprof",
                               "--no-strings")
            self.assertEqual(rc, 0, err)
            samples = [s for s in test_pprof.decode(pb)["samples"]
                       if s[0] == ["python __main__.LeakyContext", "types"]]
            self.assertEqual(len(samples), 1)
            self.assertEqual(samples[0][1][0], before + 7000)
            line = [l for l in out.splitlines() if l.endswith("__main__.LeakyContext")]
            # its row, and the correlated group that names it
            self.assertEqual(len(line), 2, out)
            self.assertIn("+7000", line[0])
            self.assertIn("+7000", line[1])
            # the new arena is a python region
            self.assertIn("(python)", out)

    def test_every_class_matches_gc(self):
        # Every class (heap type) with GC-tracked instances, the victim's
        # and the standard library's, metaclass and nested ones included:
        # heapscan's count is gc.get_objects()'s, exactly.
        with PyVictim(DEBIAN_PYTHON, script=CLASSES) as v:
            want = class_counts(v)
            self.assertIn("__main__.Outer.Inner", want)
            self.assertGreater(len(want), 50)
            rep, rc, err = h.run_json("types", "-p", v.pid)
            self.assertEqual(rc, 0, err)
            got = census(rep)
            bad = {k: (n, got.get(k)) for k, n in want.items() if got.get(k) != n}
            self.assertEqual(bad, {})
            # static types: gc sees only tracked instances, heapscan all
            static = class_counts(v, "static")
            self.assertIn("dict", static)
            low = {k: (n, got.get(k)) for k, n in static.items() if got.get(k, 0) < n}
            self.assertEqual(low, {})

    def test_scan_section_and_python_regions(self):
        with PyVictim(DEBIAN_PYTHON, N) as v:
            rep, rc, err = h.run_json("-p", v.pid, "--no-strings", "--top", "5")
            self.assertEqual(rc, 0, err)
            py = rep["python"]
            # the same census as heapscan types
            r = rows(rep)
            self.assertEqual(r["__main__.LeakyContext"]["count"], v.fact("LeakyContext"))
            self.assertEqual(len(rep["types"]), 5)
            # pymalloc's arenas are the python class, and nothing else is
            arenas = py["arenas"] * py["arena_size"]
            pyregions = [x for x in rep["regions"] if x["class"] == "python"]
            self.assertTrue(pyregions)
            size = sum(int(x["end"], 16) - int(x["start"], 16) for x in pyregions)
            self.assertGreaterEqual(size, arenas // 2)
            self.assertLessEqual(size, 2 * arenas)
            rc, out, err = h.run("-p", v.pid, "--no-strings")
            self.assertEqual(rc, 0, err)
            self.assertRegex(out, r"Python objects: \d+ objects, ")
            self.assertIn("C heap (glibc): ", out)
            self.assertIn("Python object arenas (pymalloc)", out)

    def test_no_stop_and_fork(self):
        with PyVictim(DEBIAN_PYTHON, N) as v:
            for opt in ("--no-stop", "--fork"):
                rep, rc, err = h.run_json("types", "-p", v.pid, opt)
                self.assertEqual(rc, 0, opt + err)
                self.check(v, rep)

    def test_threads(self):
        with PyVictim(DEBIAN_PYTHON, N, "threads") as v:
            rep, rc, err = h.run_json("types", "-p", v.pid)
            self.assertEqual(rc, 0, err)
            self.assertEqual(len(rep["target"]["threads"]), 3)
            self.check(v, rep)

    def test_forked_child(self):
        with PyVictim(DEBIAN_PYTHON, N, "fork") as v:
            self.assertNotEqual(v.pid, v.proc.pid)
            rep, rc, err = h.run_json("types", "-p", v.pid)
            self.assertEqual(rc, 0, err)
            self.check(v, rep)

    def test_pythonmalloc_malloc(self):
        env = dict(os.environ, PYTHONMALLOC="malloc")
        with PyVictim(DEBIAN_PYTHON, N, env=env) as v:
            rep, rc, err = h.run_json("types", "-p", v.pid)
            self.assertEqual(rc, 0, err)
            r = self.check(v, rep)
            self.assertEqual(rep["python"]["pymalloc_blocks"], 0)
            self.assertGreater(rep["python"]["glibc_objects"], v.fact("LeakyContext"))
            self.assertIn("dict", r)

    def test_dump_and_gcore(self):
        with PyVictim(DEBIAN_PYTHON, N) as v:
            path = os.path.join(self.tmp, "v.core")
            rc, _, err = h.run("dump", "-p", v.pid, "-o", path)
            self.assertEqual(rc, 0, err)
            gpath = None
            if shutil.which("gcore"):
                prefix = os.path.join(self.tmp, "g")
                p = subprocess.run(["gcore", "-o", prefix, str(v.pid)],
                                   capture_output=True, text=True, timeout=120)
                self.assertEqual(p.returncode, 0, p.stderr)
                gpath = "%s.%d" % (prefix, v.pid)
            # the cores are read after the victim is gone
            v.close()
            rep, rc, err = h.run_json("types", "-c", path)
            self.assertEqual(rc, 0, err)
            self.check(v, rep)
            if gpath is None:
                self.skipTest("gcore (gdb) not installed")
            rep, rc, err = h.run_json("types", "-c", gpath)
            self.assertEqual(rc, 0, err)
            self.check(v, rep)

    def test_not_python(self):
        with h.Victim("heap_victim") as v:
            rc, out, err = h.run("types", "-p", v.pid)
            self.assertEqual(rc, 2)
            self.assertEqual(out, "")
            self.assertEqual(err, "heapscan: not a Python process (no module "
                             "exports PyType_Type)\n")
            # the default report has no Python section and no error
            rc, out, err = h.run("-p", v.pid, "--no-strings")
            self.assertEqual(rc, 0, err)
            self.assertNotIn("Python", out)
            rep, rc, err = h.run_json("-p", v.pid, "--no-strings")
            self.assertNotIn("python", rep)

    def test_stripped_interpreter(self):
        # a program named like an interpreter that exports nothing of it
        fake = os.path.join(self.tmp, "python3.11")
        shutil.copy(h.victim_path("heap_victim"), fake)
        p = subprocess.Popen([fake], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True)
        try:
            while p.stdout.readline().strip() != "ready":
                pass
            rc, out, err = h.run("types", "-p", p.pid)
            self.assertEqual(rc, 2)
            self.assertIn("looks like a Python interpreter but exports no PyType_Type",
                          err)
            self.assertEqual(err.count("\n"), 1)
        finally:
            p.kill()
            p.communicate()

    def test_target_exits_mid_run(self):
        with PyVictim(DEBIAN_PYTHON, 2000) as v:
            env = dict(os.environ, HEAPSCAN_TEST_HOLD="resume")
            p = subprocess.Popen([h.HEAPSCAN, "types", "-p", str(v.pid)], env=env,
                                 text=True, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE)
            self.assertEqual(p.stderr.readline(), "heapscan: test: holding\n")
            # (the parent can reap it only once heapscan, its tracer, lets go)
            os.kill(v.pid, signal.SIGKILL)
            p.send_signal(signal.SIGUSR1)
            out, err = p.communicate(timeout=120)
            v.proc.wait(timeout=60)
            self.assertEqual(p.returncode, 2, err)
            self.assertEqual(out, "")
            self.assertEqual(err.count("\n"), 1, err)
            self.assertIn("exited", err)


if __name__ == "__main__":
    if not os.access(DEBIAN_PYTHON, os.X_OK):
        raise SystemExit("FAIL: %s is missing (scripts/setup.sh installs python3)"
                         % DEBIAN_PYTHON)
    h.main()
