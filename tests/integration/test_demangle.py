"""C++ names are demangled: `heapscan stacks` (live and from a heapscan
dump) and `heapscan show` name victim::deep_wait() and victim::outer(int),
never their symbols _ZN6victim9deep_waitEv and _ZN6victim5outerEi.

demangle_victim (a C program whose functions carry mangled symbol names)
prints each function's symbol, its demangled name and address, and the tid
of the thread blocked inside both.  The resolver demangles with
libstdc++.so.6's __cxa_demangle, loaded at run time: without that library
names stay raw and the test skips.
"""
import ctypes
import os

import harness
from harness import Victim, run, run_json


def have_demangler():
    try:
        return hasattr(ctypes.CDLL("libstdc++.so.6"), "__cxa_demangle")
    except OSError:
        return False


def truth(v):
    """(tid, [(raw, demangled, addr)] innermost first) from the facts."""
    funcs = []
    for line in v.lines:
        p = line.split()
        if p[0] == "func":
            funcs.append((p[1], p[2], int(p[3], 16)))
    return v.fact("thread"), funcs


class DemangleTest(harness.TmpDirTestCase):

    def setUp(self):
        super().setUp()
        if not have_demangler():
            self.skipTest("no libstdc++.so.6 with __cxa_demangle")

    def check_json(self, doc, v):
        tid, funcs = truth(v)
        self.assertEqual(doc["schema_version"], 1)
        t = [t for t in doc["threads"] if t["tid"] == tid]
        self.assertEqual(len(t), 1, doc["threads"])
        frames = t[0]["frames"]
        names = [f["function"] for f in frames]
        # pause <- victim::deep_wait() <- victim::outer(int), adjacent.
        i = names.index(funcs[0][1])
        self.assertEqual(names[i + 1], funcs[1][1], names)
        for k, (raw, dem, addr) in enumerate(funcs):
            f = frames[i + k]
            self.assertEqual(int(f["function_addr"], 16), addr, f)
            self.assertGreater(int(f["pc"], 16), addr)
            self.assertEqual(f["module"], harness.victim_path("demangle_victim"))
        for f in frames:
            self.assertFalse(f["function"].startswith("_Z"), names)
        return [int(f["pc"], 16) for f in frames]

    def test_stacks_live_and_dump(self):
        with Victim("demangle_victim") as v:
            tid, funcs = truth(v)
            doc, rc, err = run_json("stacks", "-p", v.pid)
            self.assertEqual(rc, 0, err)
            live = self.check_json(doc, v)

            rc, out, err = run("stacks", "-p", v.pid)
            self.assertEqual(rc, 0, err)
            for raw, dem, addr in funcs:
                self.assertRegex(out, r"#\d+\s+0x[0-9a-f]{16} %s\+0x[0-9a-f]+ "
                                 r"\(demangle_victim\)" % dem.replace(
                                     "(", r"\(").replace(")", r"\)"))
                self.assertNotIn(raw, out)

            dump = os.path.join(self.tmp, "v.core")
            rc, out, err = run("dump", "-p", v.pid, "-o", dump)
            self.assertEqual(rc, 0, err)
        # The victim is gone: the dump alone names the frames.
        doc, rc, err = run_json("stacks", "-c", dump)
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.check_json(doc, v), live)
        rc, out, err = run("stacks", "-c", dump)
        self.assertEqual(rc, 0, err)
        for raw, dem, addr in funcs:
            self.assertIn(" %s+0x" % dem, out)
            self.assertNotIn(raw, out)

    def test_show(self):
        with Victim("demangle_victim") as v:
            tid, funcs = truth(v)
            for raw, dem, addr in funcs:
                doc, rc, err = run_json("show", "0x%x" % addr, "-p", v.pid)
                self.assertEqual(rc, 0, err)
                self.assertEqual(doc["symbol"]["name"], dem)
                self.assertEqual(doc["symbol"]["offset"], 0)
                rc, out, err = run("show", "0x%x" % (addr + 1), "-p", v.pid)
                self.assertEqual(rc, 0, err)
                self.assertIn("symbol  %s+0x1 (demangle_victim)" % dem, out)
                self.assertNotIn(raw, out)


if __name__ == "__main__":
    harness.main()
