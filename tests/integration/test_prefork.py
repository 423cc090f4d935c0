"""Pre-fork workers: a child whose heaps outgrew what it inherited.

After fork, a child's brk heap (and a thread arena's heap) that grows past
the inherited part shows as two adjacent mappings.  glibc sees one heap;
so must heapscan, live, on its own dump and on a gdb gcore core:
  - C: fixtures/victims/prefork_victim.c (ground truth in its facts);
  - Python: fixtures/victims/prefork_victim.py (os.fork + ctypes malloc);
  - every figure also equals an independent walk by gdb with libc6-dbg
    (gdb_heapwalk.py).
"""
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from harness import (SOURCE, TmpDirTestCase, Victim, main, run, run_json,  # noqa: E402
                     victim_path)

HERE = os.path.dirname(os.path.abspath(__file__))
KINDS = ("inuse", "tcache", "fastbin", "unsorted", "small", "large", "unbinned",
         "top", "mmapped", "unparsed")


def gdb_walk(target, exe=None):
    """gdb_heapwalk.py's counts for a pid (int) or a core path."""
    if not shutil.which("gdb"):
        raise AssertionError("gdb is not installed (scripts/setup.sh installs it)")
    args = ["gdb", "-batch", "-nx"]
    if isinstance(target, int):
        args += ["-p", str(target)]
    else:
        args += [exe, target]
    args += ["-x", os.path.join(HERE, "gdb_heapwalk.py")]
    p = subprocess.run(args, capture_output=True, text=True, timeout=240)
    for line in p.stdout.splitlines():
        if line.startswith("HEAPWALK "):
            return json.loads(line[9:])
    raise AssertionError("gdb walk failed: %s\n%s" % (p.stdout[-2000:], p.stderr[-2000:]))


def heapscan_counts(heap):
    """heapscan's heap JSON in gdb_heapwalk's terms."""
    t = heap["totals"]
    binned = [sum(t[k]["count"] for k in ("unsorted", "small", "large", "unbinned")),
              sum(t[k]["bytes"] for k in ("unsorted", "small", "large", "unbinned"))]
    return {"inuse": [t["inuse"]["count"], t["inuse"]["bytes"]],
            "tcache": [t["tcache"]["count"], t["tcache"]["bytes"]],
            "fastbin": [t["fastbin"]["count"], t["fastbin"]["bytes"]],
            "binned": binned,
            "top": [t["top"]["count"], t["top"]["bytes"]],
            "mmapped": [t["mmapped"]["count"], t["mmapped"]["bytes"]]}


def gdb_counts(g):
    out = {k: g["total"][k] for k in ("inuse", "tcache", "fastbin", "binned", "top")}
    out["mmapped"] = g["mmapped"]
    return out


class PyVictim(Victim):
    """A Python victim script, run by this interpreter."""

    def __init__(self, name):
        import subprocess as sp
        self.proc = sp.Popen([sys.executable, os.path.join(SOURCE, "fixtures", "victims", name)],
                             stdin=sp.PIPE, stdout=sp.PIPE, text=True, bufsize=1)
        self.pid = self.proc.pid
        self.facts = {}
        self.lines = []
        self.wait_ready()


class PreforkBase(TmpDirTestCase):
    def start(self):
        raise NotImplementedError

    def worker(self):
        """The victim, with .pid the forked child (the process under test)."""
        v = self.start()
        v.parent = v.pid
        v.pid = v.fact("pid")
        self.assertEqual(v.fact("ppid"), v.parent)
        # After "ready" the child still runs: CPython allocates its 8 KiB
        # stdin buffer before it blocks in read(), so a heap read at once
        # and a gdb walk a moment later could see two heaps.
        v.wait_idle()
        return v

    def close(self, v):
        # Killing the child makes the parent exit (it waits for it).
        v.close()

    def dump(self, v):
        path = os.path.join(self.tmp, "w.core")
        _, rc, err = run_json("dump", "-p", v.pid, "-o", path)
        self.assertEqual(rc, 0, err)
        return path

    def gcore(self, v):
        if not shutil.which("gcore"):
            raise AssertionError("gcore (gdb) is not installed")
        prefix = os.path.join(self.tmp, "g")
        p = subprocess.run(["gcore", "-o", prefix, str(v.pid)], capture_output=True,
                           text=True, timeout=240)
        path = "%s.%d" % (prefix, v.pid)
        if p.returncode != 0 or not os.path.exists(path):
            self.fail("gcore failed: %s" % p.stderr)
        return path

    def split_heap(self, pid):
        """The victim's maps really show the split this test is about."""
        heaps = []
        with open("/proc/%d/maps" % pid) as f:
            for line in f:
                if line.rstrip().endswith("[heap]"):
                    s, e = line.split()[0].split("-")
                    heaps.append((int(s, 16), int(e, 16)))
        self.assertGreaterEqual(len(heaps), 2, heaps)
        for a, b in zip(heaps, heaps[1:]):
            self.assertEqual(a[1], b[0], heaps)
        return heaps

    def check_heap(self, v, target, exe=None):
        """heapscan heap on target: complete, no problems, equal to gdb."""
        doc, rc, err = run_json("heap", *target)
        self.assertEqual(rc, 0, err)
        h = doc["heap"]
        self.assertEqual(h["problems"], [])
        self.assertEqual(h["problems_total"], 0)
        for a in h["arenas"]:
            for seg in a["heaps"]:
                self.assertTrue(seg["complete"], seg)
            self.assertEqual(a["chunks"]["unparsed"]["count"], 0)
            self.assertFalse(a["mutex_held"])
        walk = gdb_walk(v.pid if exe is None else target[1], exe)
        self.assertEqual(walk["total"]["bad"], 0, walk)
        self.assertEqual(heapscan_counts(h), gdb_counts(walk))
        # Per arena too, in the ring's order.
        self.assertEqual([(a["addr"], a["chunks"]["inuse"]["count"],
                           a["chunks"]["inuse"]["bytes"], a["system_mem"])
                          for a in h["arenas"]],
                         [(w["addr"], w["inuse"][0], w["inuse"][1], w["system_mem"])
                          for w in walk["arenas"]])
        return h

    def by_size(self, h):
        return {b["size"]: b["count"] for b in h["histogram"]}


class CWorkerTest(PreforkBase):
    def start(self):
        return Victim("prefork_victim")

    def expect_heap(self, v, h):
        sizes = self.by_size(h)
        for key, size in (("keep_main_0x1a0", 0x1a0), ("keep_main_0x1e0", 0x1e0),
                          ("keep_thread_0x2c0", 0x2c0), ("keep_thread_0x2d0", 0x2d0)):
            self.assertEqual(sizes.get(size), v.fact(key), key)
        for size in (0x3a0, 0x1b0, 0x3b0, 0x1c0):
            self.assertEqual(sizes.get(size), 1, hex(size))
        t = h["totals"]
        self.assertEqual(t["tcache"]["count"], v.fact("free_main_tcache"))
        self.assertEqual(t["tcache"]["bytes"], 5 * 0x1e0 + 7 * 0x50)
        self.assertEqual(t["fastbin"]["count"], v.fact("free_main_fastbin"))
        self.assertEqual(t["fastbin"]["bytes"], 3 * 0x50)
        self.assertEqual(t["mmapped"]["count"], v.fact("mmapped"))
        self.assertEqual(t["mmapped"]["bytes"], v.fact("mmapped", 1))
        main_heap = h["arenas"][0]["heaps"]
        self.assertEqual(len(main_heap), 1)
        # The heap starts in the inherited part and ends in the new one.
        self.assertLess(int(main_heap[0]["first_chunk"], 16), v.fact("boundary"))
        self.assertEqual(int(main_heap[0]["end"], 16), v.fact("brk"))

    def expect_strings(self, v, target):
        doc, rc, err = run_json("strings", *target, "--top", "50", "--min-len", "20")
        self.assertEqual(rc, 0, err)
        got = {e["string"]: e for e in doc["strings"]}
        for key in ("string_parent", "string_child", "string_straddle"):
            text, inuse, free = v.facts[key]
            e = got[text]
            self.assertEqual(e["count"], int(inuse) + int(free), key)
            self.assertEqual(e["where"], {"inuse": int(inuse), "free": int(free),
                                          "outside": 0}, key)
        straddle = got[v.facts["string_straddle"][0]]
        self.assertEqual(straddle["samples"], ["0x%x" % v.fact("straddle")])
        # No piece of a string cut at the mapping boundary.
        for s in got:
            if s != v.facts["string_straddle"][0]:
                self.assertNotIn(s, v.facts["string_straddle"][0], s)
        self.assertTrue(doc["summary"]["exact"])
        self.assertTrue(doc["summary"]["where_known"])
        # Restricted to in-use chunks, the same in-use counts.
        doc, rc, err = run_json("strings", *target, "--top", "50", "--min-len", "20",
                                "--chunks", "inuse")
        self.assertEqual(rc, 0, err)
        got = {e["string"]: e["count"] for e in doc["strings"]}
        for key in ("string_parent", "string_child", "string_straddle"):
            text, inuse, free = v.facts[key]
            self.assertEqual(got[text], int(inuse), key)

    def expect_show(self, v, target):
        for which, hsize, osize in (("old", 0x3a0, 0x1b0), ("new", 0x3b0, 0x1c0)):
            holder = v.fact("holder_" + which)
            obj = holder + hsize
            doc, rc, err = run_json("show", *target, "0x%x" % obj, "--refs")
            self.assertEqual(rc, 0, err)
            c = doc["chunk"]
            self.assertEqual(int(c["addr"], 16), obj - 16, which)
            self.assertEqual(c["size"], osize, which)
            self.assertEqual(c["state"], "inuse", which)
            self.assertTrue(doc["refs"]["complete"])
            refs = doc["refs"]["refs"]
            # The only pointer: the holder's last word, which is also the
            # object's prev_size field; it belongs to the holder.
            self.assertEqual([(int(r["at"], 16), int(r["value"], 16)) for r in refs],
                             [(obj - 16, obj)], which)
            self.assertEqual(int(refs[0]["chunk"]["addr"], 16), holder - 16, which)
            self.assertEqual(refs[0]["chunk"]["size"], hsize, which)

    def test_live(self):
        v = self.worker()
        try:
            self.split_heap(v.pid)
            h = self.check_heap(v, ["-p", v.pid])
            self.expect_heap(v, h)
            self.expect_strings(v, ["-p", v.pid])
            self.expect_show(v, ["-p", v.pid])
            self.expect_classes(v, ["-p", v.pid], self.split_heap(v.pid))
        finally:
            self.close(v)

    def expect_classes(self, v, target, heaps):
        """Region classes count every piece: both [heap] pieces are heap,
        both rw pieces of the thread arena's heap are arena."""
        doc, rc, err = run_json("scan", *target, "--top", "1")
        self.assertIn(rc, (0, 1), err)
        regions = [(int(r["start"], 16), int(r["end"], 16), r["class"])
                   for r in doc["regions"]]
        for s, e in heaps:
            inside = [r for r in regions if r[0] < e and r[1] > s]
            self.assertTrue(inside, (s, e))
            self.assertEqual({r[2] for r in inside}, {"heap"}, inside)
            self.assertEqual((min(r[0] for r in inside), max(r[1] for r in inside)), (s, e))
        arenas = [r for r in regions if r[2] == "arena"]
        self.assertEqual(len(arenas), 2, arenas)
        self.assertEqual(arenas[0][1], arenas[1][0])

    def test_dump(self):
        v = self.worker()
        try:
            heaps = self.split_heap(v.pid)
            path = self.dump(v)
            target = ["-c", path]
            self.expect_classes(v, target, heaps)
            h = self.check_heap(v, target, exe=victim_path("prefork_victim"))
            self.expect_heap(v, h)
            self.expect_strings(v, target)
            self.expect_show(v, target)
        finally:
            self.close(v)

    def test_gcore(self):
        v = self.worker()
        try:
            heaps = self.split_heap(v.pid)
            path = self.gcore(v)
            target = ["-c", path]
            self.expect_classes(v, target, heaps)
            h = self.check_heap(v, target, exe=victim_path("prefork_victim"))
            # --main-arena is honoured on a core: the same walk.
            doc, rc, err = run_json("heap", *target, "--main-arena", h["main_arena"])
            self.assertEqual(rc, 0, err)
            self.assertEqual(doc["heap"]["main_arena_source"], "caller")
            self.assertEqual(doc["heap"]["totals"], h["totals"])
            self.expect_heap(v, h)
            self.expect_strings(v, target)
            self.expect_show(v, target)
        finally:
            self.close(v)


class PythonWorkerTest(PreforkBase):
    """os.fork + ctypes malloc in CPython: the interpreter's own chunks
    make per-size counts exact only for the victim's sizes; the gdb walk
    checks every total."""

    def start(self):
        return PyVictim("prefork_victim.py")

    def expect(self, v, target, exe=None):
        h = self.check_heap(v, target, exe)
        sizes = self.by_size(h)
        self.assertEqual(sizes.get(0x9b0), v.fact("keep_0x9b0"))
        self.assertEqual(sizes.get(0xa30), v.fact("keep_0xa30"))
        main_heap = h["arenas"][0]["heaps"]
        self.assertEqual(len(main_heap), 1)
        self.assertLess(int(main_heap[0]["first_chunk"], 16), v.fact("boundary"))
        self.assertEqual(int(main_heap[0]["end"], 16), v.fact("brk"))
        doc, rc, err = run_json("strings", *target, "--top", "100", "--min-len", "20")
        self.assertEqual(rc, 0, err)
        got = {e["string"]: e for e in doc["strings"]}
        for key in ("string_parent", "string_child", "string_freed"):
            text, inuse, free = v.facts[key]
            # The literals themselves are bytes objects in pymalloc's
            # arenas: outside malloc's chunks.
            w = got[text]["where"]
            self.assertEqual((w["inuse"], w["free"]), (int(inuse), int(free)), key)
        for which, hsize, osize in (("old", 0x3a0, 0x1b0), ("new", 0x3b0, 0x1c0)):
            holder = v.fact("holder_" + which)
            obj = holder + hsize
            doc, rc, err = run_json("show", *target, "0x%x" % obj, "--refs")
            self.assertEqual(rc, 0, err)
            self.assertEqual((int(doc["chunk"]["addr"], 16), doc["chunk"]["size"],
                              doc["chunk"]["state"]), (obj - 16, osize, "inuse"), which)
            # The holder's last word is a reference, located in the
            # holder (the interpreter may keep stray copies elsewhere).
            refs = {int(r["at"], 16): r for r in doc["refs"]["refs"]}
            self.assertIn(obj - 16, refs, which)
            self.assertEqual(int(refs[obj - 16]["chunk"]["addr"], 16), holder - 16, which)

    def test_live(self):
        v = self.worker()
        try:
            self.split_heap(v.pid)
            self.expect(v, ["-p", v.pid])
        finally:
            self.close(v)

    def test_dump_and_gcore(self):
        v = self.worker()
        try:
            self.expect(v, ["-c", self.dump(v)], exe=sys.executable)
            self.expect(v, ["-c", self.gcore(v)], exe=sys.executable)
        finally:
            self.close(v)


if __name__ == "__main__":
    main()
