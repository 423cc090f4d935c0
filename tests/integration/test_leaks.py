"""heapscan leaks against victims with known reachability graphs, and
against valgrind's memcheck on the same programs.

leak_victim (C) and leak_cxx (C++) print, for each class of chunk, the
count, the chunk bytes and the requested bytes.  heapscan must match the
chunk figures exactly, live, with --fork, on its own dump and on a gcore
core; memcheck (which replaces malloc, so it reports requested sizes) must
match the counts and the requested bytes, and heapscan's counts.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import TmpDirTestCase, Victim, read_smaps, run, run_json  # noqa: E402


def triple(v, key):
    return tuple(int(x) for x in v.facts[key])


def count(doc, key):
    return (doc[key]["count"], doc[key]["bytes"])


def memcheck(victim, tmp):
    """Runs the victim under memcheck, which checks at "ready"; returns
    ({kind: (blocks, bytes)} of the first LEAK SUMMARY, facts)."""
    if not shutil.which("valgrind"):
        raise unittest.SkipTest("valgrind is not installed (scripts/setup.sh installs it)")
    log = os.path.join(tmp, "vg.log")
    p = subprocess.Popen(
        ["valgrind", "--leak-check=full", "--show-leak-kinds=all",
         "--log-file=" + log, harness.victim_path(victim)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
    facts = {}
    try:
        for line in p.stdout:
            line = line.strip()
            if line == "ready":
                break
            parts = line.split()
            if parts:
                facts[parts[0]] = parts[1:]
        else:
            raise AssertionError("victim died under valgrind")
    finally:
        p.stdin.close()
        p.wait(timeout=120)
    text = open(log).read()
    m = text.find("LEAK SUMMARY")
    if m < 0:
        raise AssertionError("no LEAK SUMMARY in memcheck's log:\n" + text[-2000:])
    out = {}
    for kind, nbytes, blocks in re.findall(
            r"(definitely lost|indirectly lost|possibly lost|still reachable):"
            r" ([\d,]+) bytes in ([\d,]+) blocks", text[m:m + 1000]):
        out.setdefault(kind, (int(blocks.replace(",", "")), int(nbytes.replace(",", ""))))
    return out, facts


class LeaksTest(TmpDirTestCase):
    def check_c(self, v, doc):
        """heapscan's classes against leak_victim's ground truth."""
        for key, fact in (("leaked", "leaked"), ("unreferenced", "unref"),
                          ("definite", "definite"), ("indirect", "indirect")):
            n, nbytes, _ = triple(v, fact)
            self.assertEqual(count(doc, key), (n, nbytes), key)
        self.assertEqual(doc["leaked"]["count"],
                         doc["definite"]["count"] + doc["indirect"]["count"])
        self.assertEqual(doc["inuse"]["count"],
                         doc["anchored"]["count"] + doc["leaked"]["count"])
        # Two leaked cycles have no unreferenced chunk above them.
        self.assertEqual(doc["leak_cycles"], 2)
        # The chunk reached through its middle and its child, plus
        # glibc's own (the second thread's DTV, see test_memcheck).
        pn, pbytes, _ = triple(v, "possible")
        self.assertGreaterEqual(doc["possible"]["count"], pn)
        an, _, _ = triple(v, "anchored_known")
        self.assertGreaterEqual(doc["anchored"]["count"] - doc["possible"]["count"], an)
        # Samples of leaked groups are leaked chunks' headers in the heap.
        lg = [g for g in doc["groups"] if g["leaked"]["count"]]
        self.assertEqual(sum(g["leaked"]["count"] for g in lg), doc["leaked"]["count"])
        for g in lg:
            self.assertTrue(g["samples"])
            # The victim fills its chunks with 'Z' (0x5a).
            self.assertTrue(g["string"].startswith("ZZZZ"), g)

    def test_live(self):
        with Victim("leak_victim") as v:
            self.assertEqual(v.fact("reg_only"), 1, "the register-only list has a copy in memory")
            doc, rc, err = run_json("leaks", "-p", v.pid, "--top", "0")
            self.assertEqual(rc, 0, err)
            self.assertEqual(doc["schema_version"], 1)
            self.check_c(v, doc)
            self.assertGreaterEqual(doc["roots"]["threads_with_registers"], 2)
            self.assertFalse(doc["roots"]["whole_stacks"])
            # The target runs again afterwards.
            self.assertNotIn(v.settled_state(), ("t", "T"))

    def test_register_only_root(self):
        """Without registers (--no-stop), the list held only in r15 is
        leaked: the register is what anchors it."""
        with Victim("leak_victim") as v:
            doc, rc, err = run_json("leaks", "-p", v.pid, "--no-stop", "--top", "0")
            self.assertIn(rc, (0, 1), err)
            n, nbytes, _ = triple(v, "leaked")
            self.assertTrue(doc["roots"]["whole_stacks"])
            # 3 nodes of 32 bytes (chunk 0x30) more leaked than with registers.
            self.assertEqual(count(doc, "leaked"), (n + 3, nbytes + 3 * 48))

    def test_closure_without_edges(self):
        """When the leaked-to-leaked pointers do not fit the budget, the
        closures read the chunks again: same answer."""
        with Victim("leak_victim") as v:
            doc, rc, err = run_json("leaks", "-p", v.pid, "--top", "0",
                                    env={"HEAPSCAN_TEST_NO_EDGES": "1"})
            self.assertEqual(rc, 0, err)
            self.check_c(v, doc)

    def test_budget(self):
        """An index larger than --max-mem is a clear fatal error, and the
        target runs on."""
        with Victim("leaky_worker", 200000, 16, "graph") as v:
            rc, out, err = run("leaks", "-p", v.pid, "--max-mem", "1M")
            self.assertEqual(rc, 2, err)
            self.assertIn("--max-mem", err)
            self.assertEqual(len(err.strip().splitlines()), 1, err)
            self.assertNotIn(v.settled_state(), ("t", "T"))
            doc, rc, err = run_json("leaks", "-p", v.pid, "--top", "3")
            self.assertEqual(rc, 0, err)
            self.assertEqual(doc["leaked"]["count"], v.fact("leaked_chunks"))
            self.assertEqual(doc["unreferenced"]["count"], v.fact("unref_chunks"))
            self.assertEqual(doc["anchored"]["count"], v.fact("anchored_chunks") + 1)
            # Records (88 bytes: chunk 0x60) are named by their string.
            rec = [g for g in doc["groups"] if g["size"] == 0x60]
            self.assertEqual(len(rec), 1)
            self.assertEqual(rec[0]["string"], "couchbase.context_info")
            self.assertEqual(rec[0]["leaked"]["count"], 200000 // 4)

    def test_fork(self):
        with Victim("leak_victim") as v:
            doc, rc, err = run_json("leaks", "-p", v.pid, "--fork", "--top", "0")
            if rc != 0 and "fork" in err:
                self.skipTest("--fork unavailable: " + err.strip())
            self.assertEqual(rc, 0, err)
            self.check_c(v, doc)

    def test_dump_and_gcore(self):
        with Victim("leak_victim") as v:
            live, rc, err = run_json("leaks", "-p", v.pid, "--top", "0")
            self.assertEqual(rc, 0, err)
            core = os.path.join(self.tmp, "victim.core")
            rc, out, err = run("dump", "-p", v.pid, "-o", core)
            self.assertEqual(rc, 0, err)
            doc, rc, err = run_json("leaks", "-c", core, "--top", "0")
            self.assertEqual(rc, 0, err)
            self.check_c(v, doc)
            for k in ("anchored", "possible", "leaked", "unreferenced", "definite"):
                self.assertEqual(doc[k], live[k], k)
            if not shutil.which("gcore"):
                return
            prefix = os.path.join(self.tmp, "gc")
            p = subprocess.run(["gcore", "-o", prefix, str(v.pid)],
                               capture_output=True, text=True, timeout=120)
            gc = "%s.%d" % (prefix, v.pid)
            self.assertEqual(p.returncode, 0, p.stderr[-500:])
            doc, rc, err = run_json("leaks", "-c", gc, "--top", "0")
            self.assertIn(rc, (0, 1), err)
            self.check_c(v, doc)

    def test_rss_unchanged(self):
        with Victim("leak_victim") as v:
            before = sum(m[4].get("Rss", 0) for m in read_smaps(v.pid))
            rc, out, err = run("leaks", "-p", v.pid)
            self.assertEqual(rc, 0, err)
            after = sum(m[4].get("Rss", 0) for m in read_smaps(v.pid))
            self.assertEqual(after, before)

    def test_memcheck(self):
        vg, facts = memcheck("leak_victim", self.tmp)
        with Victim("leak_victim") as v:
            doc, rc, err = run_json("leaks", "-p", v.pid, "--top", "0")
            self.assertEqual(rc, 0, err)
        for key, fact, kind in (("definite", "definite", "definitely lost"),
                                ("indirect", "indirect", "indirectly lost")):
            n, _, req = (int(x) for x in facts[fact])
            self.assertEqual(vg[kind], (n, req), kind)
            self.assertEqual(doc[key]["count"], n, key)
        self.assertEqual(vg["definitely lost"][0] + vg["indirectly lost"][0],
                         doc["leaked"]["count"])
        # Reached only through interior pointers: the victim's two and
        # the second thread's DTV (its thread pointer holds dtv + 1).
        self.assertEqual(vg["possibly lost"][0], doc["possible"]["count"])


class LeaksCxxTest(TmpDirTestCase):
    def classes(self, v):
        out = {}
        for line in v.lines:
            parts = line.split()
            if parts[0] == "class":
                out[parts[1]] = (int(parts[2]), int(parts[3]), int(parts[4]))
        return out

    def check_cxx(self, v, doc):
        self.assertGreater(doc["vtables"], 0)
        for key, fact in (("leaked", "leaked"), ("unreferenced", "unref"),
                          ("definite", "definite"), ("indirect", "indirect")):
            n, nbytes, _ = triple(v, fact)
            self.assertEqual(count(doc, key), (n, nbytes), key)
        by_type = {}
        for g in doc["groups"]:
            if g["type"]:
                self.assertEqual(g["kind"], "c++")
                a = by_type.setdefault(g["type"], [0, 0, set()])
                a[0] += g["anchored"]["count"]
                a[1] += g["leaked"]["count"]
                a[2].add(g["size"])
        for name, (anchored, leaked, size) in self.classes(v).items():
            self.assertIn(name, by_type)
            self.assertEqual(by_type[name][:2], [anchored, leaked], name)
            self.assertEqual(by_type[name][2], {size}, name)

    def test_live_and_core(self):
        with Victim("leak_cxx") as v:
            doc, rc, err = run_json("leaks", "-p", v.pid, "--top", "0")
            self.assertEqual(rc, 0, err)
            self.check_cxx(v, doc)
            core = os.path.join(self.tmp, "cxx.core")
            rc, out, err = run("dump", "-p", v.pid, "-o", core)
            self.assertEqual(rc, 0, err)
            doc, rc, err = run_json("leaks", "-c", core, "--top", "0")
            self.assertEqual(rc, 0, err)
            self.check_cxx(v, doc)
            if shutil.which("gcore"):
                prefix = os.path.join(self.tmp, "gc")
                p = subprocess.run(["gcore", "-o", prefix, str(v.pid)],
                                   capture_output=True, text=True, timeout=120)
                self.assertEqual(p.returncode, 0, p.stderr[-500:])
                doc, rc, err = run_json("leaks", "-c", "%s.%d" % (prefix, v.pid),
                                        "--top", "0")
                self.assertIn(rc, (0, 1), err)
                self.check_cxx(v, doc)
            # Without the symbols, nothing is named, the counts stand.
            plain, rc, err = run_json("leaks", "-p", v.pid, "--no-types", "--top", "0")
            self.assertEqual(rc, 0, err)
            self.assertEqual(plain["vtables"], 0)
            self.assertFalse([g for g in plain["groups"] if g["type"]])
            self.assertEqual(plain["leaked"], doc["leaked"])

    def test_types_rows(self):
        """heapscan types: a row of kind c++ per class, every live object
        (anchored or leaked) counted, bytes its chunks'; live and on a dump."""
        with Victim("leak_cxx") as v:
            core = os.path.join(self.tmp, "types.core")
            rc, out, err = run("dump", "-p", v.pid, "-o", core)
            self.assertEqual(rc, 0, err)
            for target in (["-p", v.pid], ["-c", core]):
                doc, rc, err = run_json("types", *target)
                self.assertEqual(rc, 0, err)
                rows = {r["type"]: r for r in doc["types"] if r["kind"] == "c++"}
                want = self.classes(v)
                self.assertEqual(set(rows), set(want), target)
                for name, (anchored, leaked, size) in want.items():
                    self.assertEqual(rows[name]["count"], anchored + leaked, name)
                    self.assertEqual(rows[name]["bytes"], (anchored + leaked) * size, name)
            rc, out, err = run("types", "-p", v.pid)
            self.assertEqual(rc, 0, err)
            a, l, size = want["Derived"]
            self.assertRegex(out, r"(?m)^\s+\d+:\s+%d\s+%d\s+c\+\+\s+Derived$"
                             % (a + l, (a + l) * size))

    def test_memcheck(self):
        vg, facts = memcheck("leak_cxx", self.tmp)
        with Victim("leak_cxx") as v:
            doc, rc, err = run_json("leaks", "-p", v.pid, "--top", "0")
            self.assertEqual(rc, 0, err)
        for key, fact, kind in (("definite", "definite", "definitely lost"),
                                ("indirect", "indirect", "indirectly lost")):
            n, _, req = (int(x) for x in facts[fact])
            self.assertEqual(vg[kind], (n, req), kind)
            self.assertEqual(doc[key]["count"], n, key)
        self.assertEqual(vg["possibly lost"][0], doc["possible"]["count"])


if __name__ == "__main__":
    harness.main()
