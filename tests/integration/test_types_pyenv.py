"""heapscan types on every CPython build pyenv left on this machine
(/root/.pyenv/versions/*: 3.8-3.13 built with a shared libpython, so the
interpreter is found in libpython3.X.so rather than in the executable).
Exact counts of the victim's classes live, on a heapscan dump and on a
gcore core; 3.7 and older refused with one line.  The whole file skips (77), saying so, on a
machine without pyenv (CI runs on a fresh Debian: test_types.py covers
Debian's python3 there).
"""
import os
import shutil
import subprocess
import unittest

import harness as h
from pyvictim import (CLASSES, SUBINTERP, PyVictim, census, class_counts,
                      pyenv_pythons, rows)

N = 20000


def version_of(d):
    parts = d.split(".")
    return int(parts[0]), int(parts[1])


class PyenvTypes(h.TmpDirTestCase):
    def test_supported_versions(self):
        tested = 0
        for d, python in pyenv_pythons():
            if not ((3, 8) <= version_of(d) <= (3, 13)):
                continue
            with self.subTest(python=d), PyVictim(python, N) as v:
                libs = subprocess.run(["ldd", python], capture_output=True,
                                      text=True).stdout
                rep, rc, err = h.run_json("types", "-p", v.pid)
                self.assertEqual(rc, 0, err)
                py = rep["python"]
                if "libpython" in libs:
                    self.assertIn("libpython", py["module"])
                # Py_Version (3.11+) or the version string (3.8-3.10)
                self.assertEqual(py["version"], d)
                self.assertIn(py["version_source"], ("Py_Version", "version string"))
                r = rows(rep)
                for cls in ("LeakyContext", "Slotted", "Big"):
                    self.assertEqual(r["__main__." + cls]["count"], v.fact(cls),
                                     cls)
                self.assertGreaterEqual(r["float"]["count"], v.fact("floats_made"))
                self.assertEqual(py["problems_total"], 0, py["problems"])
                self.assertLessEqual(py["pymalloc_blocks"], v.fact("allocated_blocks") + 100)
                self.assertGreater(py["pymalloc_blocks"], v.fact("allocated_blocks") * 0.98)
                # the same from a heapscan dump and a gcore core (which
                # leaves libpython's .rodata out), after the victim is gone
                cores = [os.path.join(self.tmp, "%s.core" % d)]
                rc, _, err = h.run("dump", "-p", v.pid, "-o", cores[0])
                self.assertEqual(rc, 0, err)
                if shutil.which("gcore"):
                    prefix = os.path.join(self.tmp, "g" + d)
                    p = subprocess.run(["gcore", "-o", prefix, str(v.pid)],
                                       capture_output=True, text=True, timeout=120)
                    self.assertEqual(p.returncode, 0, p.stderr)
                    cores.append("%s.%d" % (prefix, v.pid))
                v.close()
                for path in cores:
                    rep, rc, err = h.run_json("types", "-c", path)
                    self.assertEqual(rc, 0, path + err)
                    self.assertEqual(rep["python"]["version"], d)
                    r2 = rows(rep)
                    for cls in ("LeakyContext", "Slotted", "Big"):
                        self.assertEqual(r2["__main__." + cls]["count"], v.fact(cls),
                                         (path, cls))
                    os.unlink(path)
                tested += 1
        if not tested:
            self.skipTest("no pyenv CPython 3.8-3.13 on this machine")

    def test_every_class_matches_gc(self):
        tested = 0
        for d, python in pyenv_pythons():
            if not ((3, 8) <= version_of(d) <= (3, 13)):
                continue
            with self.subTest(python=d), PyVictim(python, script=CLASSES) as v:
                want = class_counts(v)
                rep, rc, err = h.run_json("types", "-p", v.pid)
                self.assertEqual(rc, 0, err)
                got = census(rep)
                bad = {k: (n, got.get(k)) for k, n in want.items() if got.get(k) != n}
                self.assertEqual(bad, {})
                tested += 1
        if not tested:
            self.skipTest("no pyenv CPython 3.8-3.13 on this machine")

    def test_isolated_subinterpreter(self):
        # 3.12+: an isolated sub-interpreter has its own obmalloc state and
        # arenas; its objects count too (found through the interpreter list)
        tested = 0
        for d, python in pyenv_pythons():
            if not ((3, 12) <= version_of(d) <= (3, 13)):
                continue
            with self.subTest(python=d), PyVictim(python, 12345, script=SUBINTERP) as v:
                rep, rc, err = h.run_json("types", "-p", v.pid)
                self.assertEqual(rc, 0, err)
                self.assertEqual(rep["python"]["arena_vectors"], 2)
                got = census(rep)
                self.assertEqual(got["__main__.SubThing"], v.fact("SubThing"))
                self.assertEqual(got["__main__.LeakyContext"], v.fact("LeakyContext"))
                self.assertEqual(rep["python"]["problems_total"], 0)
                tested += 1
        if not tested:
            self.skipTest("no pyenv CPython 3.12 or 3.13 on this machine")

    def test_unsupported_versions(self):
        old = [(d, p) for d, p in pyenv_pythons() if (3, 0) <= version_of(d) < (3, 8)]
        if not old:
            self.skipTest("no pyenv CPython before 3.8 on this machine")
        for d, python in old:
            with self.subTest(python=d), PyVictim(python, 100) as v:
                rc, out, err = h.run("types", "-p", v.pid)
                self.assertEqual(rc, 2)
                self.assertEqual(out, "")
                # the full version, from the version string in .rodata
                self.assertEqual(err, "heapscan: python %s is not supported by the "
                                 "census (3.8-3.13 are)\n" % d)
                # the default report says so in its section; the rest stands
                rc, out, err = h.run("-p", v.pid, "--no-strings")
                self.assertEqual(rc, 0, err)
                self.assertIn("\nPython objects\n  python %s is not supported" % d, out)
                self.assertIn("glibc heap", out)


if __name__ == "__main__":
    if not pyenv_pythons():
        h.skip("no pyenv CPython builds under /root/.pyenv/versions")
    h.main()
