"""Corrupt glibc heaps: each inconsistency named with its address, the rest
of the walk kept.

Victim: fixtures/victims/corrupt_victim.c KIND corrupts its own heap in one
way after building a known one, and prints where (ground truth): the
address heapscan must name, main_arena, and the in-use chunks it keeps
(26 of size 0x1b0, a size nothing else in it uses).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from harness import TmpDirTestCase, Victim, main, run, run_json, skip  # noqa: E402

# kind -> words the problem at the victim's address must contain
KINDS = {
    "size": ["0xdeadbee1"],
    "top-size": ["top chunk size", "runs past"],
    "tcache-count": ["count 60000"],
    "tcache-cycle": ["tcache", "cycle"],
    "fastbin-cycle": ["fastbin", "cycle"],
    "unsorted-cycle": ["unsorted", "cycle"],
    "system-mem": ["system_mem 0x1000"],
    "bin-null": ["unsorted bin", "NULL"],
}


def victim(kind):
    v = Victim("corrupt_victim", kind)
    if "unsupported" in " ".join(v.lines):
        v.close()
        skip("corrupt_victim: " + " ".join(v.lines))
    return v


class CorruptHeapTest(TmpDirTestCase):
    def heap(self, v, *extra):
        out, rc, err = run_json("heap", "-p", v.pid, *extra)
        self.assertEqual(rc, 0, err)
        return out["heap"]

    def assert_rest_kept(self, v, h, kind):
        """The walk went on: main_arena is the victim's, and the kept
        chunks are all counted (but the one whose header was smashed)."""
        self.assertEqual(int(h["main_arena"], 16), v.fact("main_arena"))
        size, n = v.fact("keep", 0), v.fact("keep", 1)
        sizes = {b["size"]: b["count"] for b in h["histogram"]}
        self.assertEqual(sizes.get(size), n - (1 if kind == "size" else 0), kind)

    def test_baseline_no_problem(self):
        with victim("none") as v:
            h = self.heap(v)
            self.assertEqual(h["problems_total"], 0, h["problems"])
            self.assert_rest_kept(v, h, "none")

    def test_each_kind_named(self):
        for kind, words in KINDS.items():
            with self.subTest(kind=kind), victim(kind) as v:
                h = self.heap(v)
                addrs = [int(a, 0) for a in v.facts["corrupt"][1:]]
                named = [p for p in h["problems"] if int(p["addr"], 16) in addrs and
                         all(w in p["message"] for w in words)]
                self.assertTrue(named, "%s at %s not named: %s" %
                                (kind, v.facts["corrupt"], h["problems"]))
                self.assert_rest_kept(v, h, kind)

    def test_main_arena_checks_named(self):
        """With only the scan to find main_arena, a corrupt one is named
        with what failed, not 'not found'."""
        for kind, words in (("top-size", ["top chunk"]), ("bin-null", ["bin 1", "fd 0x0"])):
            with self.subTest(kind=kind), victim(kind) as v:
                rc, out, err = run("heap", "-p", v.pid, "--main-arena-from", "scan")
                self.assertEqual(rc, 2, err)
                self.assertEqual(err.count("\n"), 1, err)
                self.assertIn("main_arena is corrupt", err)
                self.assertIn("0x%x" % v.fact("main_arena"), err)
                for w in words:
                    self.assertIn(w, err)

    def test_strings_and_scan_say_corrupt(self):
        with victim("bin-null") as v:
            out, rc, err = run_json("strings", "-p", v.pid)
            self.assertEqual(rc, 0, err)
            self.assertGreater(out["summary"]["heap_problems"], 0)
            rc, text, err = run("strings", "-p", v.pid)
            self.assertIn("the glibc heap is corrupt", text)
            rc, text, err = run("scan", "-p", v.pid)
            self.assertEqual(rc, 0, err)
            self.assertIn("the glibc heap is corrupt", text)
            self.assertIn("0x%x" % v.fact("corrupt", 1), text)
        with victim("none") as v:
            out, rc, err = run_json("strings", "-p", v.pid)
            self.assertEqual(out["summary"]["heap_problems"], 0)


if __name__ == "__main__":
    main()
