"""Reading a process must not change it (doc/reading-policy.md).

untouched_victim holds a 256 MiB anonymous mapping, 8 MiB of .bss and
8 MiB of shared anonymous memory it never touched, a 16 MiB malloc chunk
of which only the first page was written, and a file mapped privately and
shared without being touched.  Every command, live, --no-stop and --fork,
must leave its Rss (smaps_rollup) unchanged to the page, and find exactly
what the victim says it holds.  HEAPSCAN_READ_POLICY=off (every page
read through the process, the way heapscan read before) must give the
same results, and does fault in the untouched memory: that is what the
Rss measure here detects.

SwapTest (its own ctest entry, int/test_pagemap_swap) needs root and a
swap file it can enable; it exits 77 where it cannot, and the decision
logic is also unit-tested on made-up pagemap words (unit/test_ptrace_pagemap).
"""
import json
import os
import subprocess
import sys

import harness
from harness import Victim, run, run_json

MODES = (("live", []), ("no-stop", ["--no-stop"]), ("fork", ["--fork"]))
UNTOUCHED = 256 << 20
SHM_UNTOUCHED = 8 << 20


def rss_kb(pid):
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            if line.startswith("Rss:"):
                return int(line.split()[1])
    raise AssertionError("no Rss in smaps_rollup")


def vm_pte_kb(pid):
    """VmPTE (page tables) from /proc/PID/status, in kB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmPTE:"):
                return int(line.split()[1])
    raise AssertionError("no VmPTE in status")


def mapping_rss(pid, start):
    """Rss in bytes of the mapping that starts at start."""
    for m in harness.read_smaps(pid):
        if m[0] == start:
            return m[4]["Rss"]
    raise AssertionError("no mapping at 0x%x" % start)


def skip_now(reason):
    """Exit 77 from inside a test (unittest would count sys.exit as an
    error); the caller has cleaned up."""
    print("SKIP: " + reason)
    sys.stdout.flush()
    os._exit(harness.SKIP)


def string_counts(d):
    return {s["string"]: s["count"] for s in d["strings"]}


class PagemapTest(harness.TmpDirTestCase):

    def setUp(self):
        super().setUp()
        self.v = Victim("untouched_victim", self.tmp)
        # Two --all runs are compared: the main thread's stack must not
        # change between them (it still runs for a moment after "ready").
        self.v.wait_idle()

    def tearDown(self):
        self.v.close()
        super().tearDown()

    def mark(self, key):
        return self.v.facts[key][0], int(self.v.facts[key][1])

    def unchanged(self, what, *args, env=None, ok=(0,)):
        """Runs heapscan; asserts its exit code and that the victim's Rss
        did not move.  Returns (stdout, stderr)."""
        before, pte = rss_kb(self.v.pid), vm_pte_kb(self.v.pid)
        rc, out, err = run(*args, env=env)
        after = rss_kb(self.v.pid)
        self.assertIn(rc, ok, "%s: rc %d: %s" % (what, rc, err))
        self.assertEqual(after, before, "%s changed the victim's Rss by %d kB"
                         % (what, after - before))
        # nor its page tables (reading untouched memory through the
        # process maps the zero page there: Rss stays, VmPTE grows)
        self.assertEqual(vm_pte_kb(self.v.pid), pte, "%s changed VmPTE" % what)
        return out, err

    def check_heap(self, h, what):
        size, n = int(self.v.facts["keep_chunk"][0], 16), int(self.v.facts["keep_chunk"][1])
        self.assertTrue(h["supported"], what)
        self.assertEqual(h["problems_total"], 0, (what, h["problems"]))
        hist = {b["size"]: b["count"] for b in h["histogram"]}
        self.assertEqual(hist.get(size), n, what)
        self.assertEqual(h["mmapped"]["count"], self.v.fact("mmapped"), what)
        self.assertGreaterEqual(h["mmapped"]["bytes"], 16 << 20, what)

    def check_default_strings(self, counts, what):
        for key in ("mark_heap", "mark_big"):
            s, n = self.mark(key)
            self.assertEqual(counts.get(s), n, "%s: %s" % (what, s))
        # not in the default classes (heap, arena, anon)
        self.assertNotIn(self.mark("mark_file")[0], counts, what)

    def check_all_strings(self, d, what):
        """--all: each marker where the victim put it, plus the copies of
        its literal in the victim's .rodata (the same number for each
        marker: exe)."""
        by = {x["string"]: {k: n for k, n in x["classes"].items() if n}
              for x in d["strings"]}
        exe = by[self.mark("mark_heap")[0]].get("rodata", 0)
        self.assertGreaterEqual(exe, 1, what)
        for key, where in (("mark_heap", {"heap": 1}), ("mark_big", {"anon": 1}),
                           ("mark_shm", {"shm": 1}),
                           # the file, mapped privately and shared
                           ("mark_file", {"rodata": 1, "shm": 1})):
            s, n = self.mark(key)
            want = {k: m * n for k, m in where.items()}
            want["rodata"] = want.get("rodata", 0) + exe
            self.assertEqual(by.get(s), want, "%s: %s" % (what, s))

    def test_every_command_leaves_rss(self):
        v = self.v
        pid = str(v.pid)
        big = v.facts["big_chunk"][0]
        prof = os.path.join(self.tmp, "a.prof")
        core = os.path.join(self.tmp, "v.core")
        for mode, extra in MODES:
            with self.subTest(mode=mode):
                out, _ = self.unchanged("scan " + mode, "-p", pid, "--json", "--top", "100000", *extra)
                d = json.loads(out)
                self.check_heap(d["heap"], "scan " + mode)
                self.check_default_strings(string_counts(d["strings"]), "scan " + mode)
                self.assertEqual(d["pages"]["policy"], "pagemap")
                self.assertEqual(d["pages"]["swapped_in_bytes"], 0)

                out, _ = self.unchanged("text scan " + mode, "-p", pid, *extra)
                self.assertIn("pages:    untouched pages not read (pagemap); swapped in 0B", out)

                out, _ = self.unchanged("heap " + mode, "heap", "-p", pid, "--json", *extra)
                self.check_heap(json.loads(out)["heap"], "heap " + mode)

                out, _ = self.unchanged("strings " + mode, "strings", "-p", pid, "--json",
                                        "--top", "100000", *extra)
                self.check_default_strings(string_counts(json.loads(out)), "strings " + mode)

                # --all: the file mapping's last page is past the end of
                # the file (unreadable: partial, as it always was).
                out, _ = self.unchanged("strings --all " + mode, "strings", "-p", pid, "--all",
                                        "--json", "--top", "100000", *extra, ok=(1,))
                d = json.loads(out)
                self.check_all_strings(d, "strings --all " + mode)
                self.assertGreaterEqual(d["summary"]["unreadable_bytes"], 4096)

                self.unchanged("snapshot " + mode, "snapshot", "-p", pid, "-o", prof, "--force",
                               *extra)
                out, _ = self.unchanged("diff " + mode, "diff", prof, "-p", pid, "--json",
                                        "--top", "0", *extra)
                d = json.loads(out)
                self.assertEqual(d["growth"], [], "diff " + mode)
                self.assertEqual(d["shrinkage"], [], "diff " + mode)

                out, _ = self.unchanged("show --refs " + mode, "show", big, "-p", pid, "--refs",
                                        "--json", *extra)
                d = json.loads(out)
                self.assertEqual(d["chunk"]["state"], "mmapped")
                self.assertGreaterEqual(d["chunk"]["size"], 16 << 20)
                self.assertTrue(d["refs"]["complete"])
                # the victim's stack or data holds the pointer it got
                self.assertGreaterEqual(len(d["refs"]["refs"]), 1)

                out, _ = self.unchanged("dump " + mode, "dump", "-p", pid, "-o", core, "-f",
                                        "--json", *extra)
                d = json.loads(out)
                # never-touched pages left as holes, never produced
                self.assertGreaterEqual(d["bytes_absent"], UNTOUCHED)
                dc, rc, err = run_json("strings", "-c", core, "--top", "100000")
                self.assertEqual(rc, 0, err)
                self.check_default_strings(string_counts(dc), "strings of the dump " + mode)

                out, _ = self.unchanged("watch " + mode, "watch", "-p", pid, "--count", "1",
                                        "--interval", "0", "--json", *extra)
                w = json.loads(out.splitlines()[0])
                self.assertEqual(w["sample"], 1)
                self.assertEqual(w["totals"]["heap_inuse_chunks"] >= self.v.fact("keep_chunk", 1),
                                 True)

        out, _ = self.unchanged("stacks", "stacks", "-p", pid)
        self.assertIn("main", out)

    def test_same_as_reading_everything(self):
        """The bytes are the same as when every page is read through the
        process (the old way), which does fault the untouched memory in."""
        pid = str(self.v.pid)
        args = ("strings", "-p", pid, "--all", "--json", "--top", "100000")
        out, _ = self.unchanged("strings --all", *args, ok=(1,))
        new = json.loads(out)
        hout, _ = self.unchanged("heap", "heap", "-p", pid, "--json", "--top", "100000")
        shm = int(self.v.facts["shm_untouched"][0], 16)
        before, pte = rss_kb(self.v.pid), vm_pte_kb(self.v.pid)
        self.assertEqual(mapping_rss(self.v.pid, shm), 0)
        rc, out, err = run(*args, env={"HEAPSCAN_READ_POLICY": "off"})
        self.assertEqual(rc, 1, err)
        old = json.loads(out)
        grown = rss_kb(self.v.pid) - before
        # The old way changes the process, and the measure above sees it:
        # on this kernel an untouched private anonymous page read from
        # outside maps the shared zero page (not counted in Rss), but a
        # hole of shared memory is allocated (all 8 MiB), and file pages
        # are mapped in (doc/reading-policy.md).
        self.assertEqual(mapping_rss(self.v.pid, shm), SHM_UNTOUCHED)
        self.assertGreaterEqual(grown * 1024, SHM_UNTOUCHED, "policy off grew Rss by %d kB" % grown)
        # page tables for the 256 MiB read: 4 KiB per 2 MiB
        self.assertGreaterEqual((vm_pte_kb(self.v.pid) - pte) * 1024, UNTOUCHED // 512)
        self.assertEqual(old["summary"]["pages"]["policy"], "off")
        self.assertEqual(string_counts(new), string_counts(old))
        for k in ("bytes_scanned", "unreadable_bytes", "occurrences", "distinct", "class_bytes"):
            self.assertEqual(new["summary"][k], old["summary"][k], k)
        rc, out, err = run("heap", "-p", pid, "--json", "--top", "100000",
                           env={"HEAPSCAN_READ_POLICY": "off"})
        self.assertEqual(rc, 0, err)
        h_new, h_old = json.loads(hout)["heap"], json.loads(out)["heap"]
        for k in ("histogram", "mmapped", "totals"):
            self.assertEqual(h_new[k], h_old[k], k)

    def test_pagemap_words(self):
        """The same without PAGEMAP_SCAN (kernels before 6.7): the words."""
        pid = str(self.v.pid)
        args = ("strings", "-p", pid, "--all", "--json", "--top", "100000")
        out, _ = self.unchanged("strings --all", *args, ok=(1,))
        out2, _ = self.unchanged("strings --all, words", *args, ok=(1,),
                                 env={"HEAPSCAN_READ_POLICY": "words"})
        a, b = json.loads(out), json.loads(out2)
        self.check_all_strings(b, "strings --all, words")
        self.assertEqual(string_counts(a), string_counts(b))
        for mode, extra in MODES:
            out, _ = self.unchanged("heap, words " + mode, "heap", "-p", pid, "--json", *extra,
                                    env={"HEAPSCAN_READ_POLICY": "words"})
            self.check_heap(json.loads(out)["heap"], "heap, words " + mode)

    def test_unprivileged(self):
        """As the victim's own unprivileged user, map_files is closed
        (CAP_SYS_ADMIN): private files still come through
        /proc/PID/root, but shared anonymous memory can only be read
        through the process, which allocates its holes.  The results
        stay right, and the report counts exactly what that cost."""
        if os.geteuid() != 0:
            self.skipTest("needs root to run as another user")
        nobody = 65534
        d = os.path.join(self.tmp, "nobody")
        os.mkdir(d)
        os.chmod(self.tmp, 0o711)
        os.chmod(d, 0o777)
        with Victim("untouched_victim", d, user=nobody) as v:
            before = rss_kb(v.pid)
            p = subprocess.run(["setpriv", "--reuid=%d" % nobody, "--regid=%d" % nobody,
                                "--clear-groups", "--", harness.HEAPSCAN, "strings", "-p",
                                str(v.pid), "--all", "--json", "--top", "100000"],
                               capture_output=True, text=True, timeout=240)
            self.assertEqual(p.returncode, 1, p.stderr)
            out = json.loads(p.stdout)
            grown = (rss_kb(v.pid) - before) * 1024
            pages = out["summary"]["pages"]
            self.assertEqual(pages["policy"], "pagemap")
            # the 12 MiB of shared anonymous memory but the one page the
            # victim wrote
            self.assertEqual(pages["faulted_in_bytes"], (12 << 20) - 4096)
            self.assertEqual(grown, pages["faulted_in_bytes"])
            self.v, saved = v, self.v
            try:
                self.check_all_strings(out, "strings --all as nobody")
            finally:
                self.v = saved

    def test_smaps_fallback(self):
        """Without pagemap, mappings smaps shows untouched are still not
        read; pages inside touched ones are (the report says so)."""
        pid = str(self.v.pid)
        before = rss_kb(self.v.pid)
        d, rc, err = run_json("strings", "-p", pid, "--all", "--top", "100000",
                              env={"HEAPSCAN_READ_POLICY": "smaps"})
        self.assertEqual(rc, 1, err)
        grown = rss_kb(self.v.pid) - before
        self.assertEqual(d["summary"]["pages"]["policy"], "smaps")
        self.check_all_strings(d, "strings --all, smaps")
        # the 256 MiB mapping and the .bss stayed untouched; the big
        # chunk's 16 MiB and the heap's tail did not
        self.assertLess(grown * 1024, 64 << 20, "grew by %d kB" % grown)
        rc, out, err = run("-p", pid, env={"HEAPSCAN_READ_POLICY": "smaps"})
        self.assertEqual(rc, 0, err)
        self.assertIn("untouched mappings not read (smaps)", out)

    def test_no_swapin_without_swap(self):
        """Nothing in swap: --no-swapin changes nothing and is complete."""
        pid = str(self.v.pid)
        out, _ = self.unchanged("--no-swapin", "heap", "-p", pid, "--json", "--no-swapin")
        d = json.loads(out)
        self.check_heap(d["heap"], "heap --no-swapin")
        self.assertEqual(d["pages"]["no_swapin"], True)
        self.assertEqual(d["pages"]["swap_skipped_bytes"], 0)
        rc, out, err = run("-p", pid, "--no-swapin")
        self.assertEqual(rc, 0, err)
        self.assertIn("0B left in swap (--no-swapin)", out)
        rc, out, err = run("-c", "/nonexistent", "--no-swapin")
        self.assertEqual(rc, 64)
        self.assertIn("--no-swapin goes with --pid", err)


class SwapTest(harness.TmpDirTestCase):
    """Pages the victim wrote and the kernel swapped out (MADV_PAGEOUT):
    read by default (Rss grows by exactly the bytes reported swapped in,
    the strings are all found), left alone with --no-swapin (Rss unchanged,
    partial, the bytes reported); with --fork the copy swaps them in and
    the process keeps them in swap."""

    def setUp(self):
        super().setUp()
        self.swapfile = os.path.join(self.tmp, "swap")
        self.skip_reason = None
        if os.geteuid() != 0:
            self.skip_reason = "needs root to enable a swap file"
            return
        with open(self.swapfile, "wb") as f:
            f.write(b"\0" * (64 << 20))
        os.chmod(self.swapfile, 0o600)
        for cmd in (["mkswap", self.swapfile], ["swapon", self.swapfile]):
            try:
                r = subprocess.run(cmd, capture_output=True, text=True)
            except FileNotFoundError:
                self.skip_reason = "no %s" % cmd[0]
                return
            if r.returncode != 0:
                self.skip_reason = "cannot enable a swap file here: %s: %s" % (
                    cmd[0], r.stderr.strip())
                return

    def tearDown(self):
        subprocess.run(["swapoff", self.swapfile], capture_output=True)
        super().tearDown()
        if self.skip_reason:
            skip_now(self.skip_reason)

    def test_swapped_pages(self):
        if self.skip_reason:
            return
        with Victim("untouched_victim", self.tmp) as v:
            v.send("pageout")
            swapped = v.fact("swapped_pages")
            mark, n = v.facts["mark_swap"][0], int(v.facts["mark_swap"][1])
            if swapped == 0:
                self.skip_reason = "MADV_PAGEOUT swapped nothing out"
                return
            pid = str(v.pid)

            before = rss_kb(v.pid)
            d, rc, err = run_json("strings", "-p", pid, "--no-swapin", "--top", "100000")
            self.assertEqual(rc, 1, err)   # partial
            self.assertEqual(rss_kb(v.pid), before)
            self.assertEqual(d["summary"]["pages"]["swap_skipped_bytes"], swapped * 4096)
            self.assertEqual(d["summary"]["pages"]["swapped_in_bytes"], 0)
            self.assertEqual(string_counts(d).get(mark, 0), n - swapped)

            # --fork: the copy swaps the pages in, for itself: the process
            # keeps them in swap and its Rss does not move.
            d, rc, err = run_json("strings", "-p", pid, "--fork", "--top", "100000")
            self.assertEqual(rc, 0, err)
            self.assertEqual(rss_kb(v.pid), before)
            self.assertEqual(d["summary"]["pages"]["swapped_in_bytes"], swapped * 4096)
            self.assertEqual(string_counts(d).get(mark), n)

            d, rc, err = run_json("strings", "-p", pid, "--top", "100000")
            self.assertEqual(rc, 0, err)
            grown = rss_kb(v.pid) - before
            self.assertEqual(d["summary"]["pages"]["swapped_in_bytes"], swapped * 4096)
            self.assertEqual(grown * 1024, swapped * 4096)
            self.assertEqual(string_counts(d).get(mark), n)

            # Read back in: nothing more to swap in, Rss stays.
            before = rss_kb(v.pid)
            rc, out, err = run("-p", pid)
            self.assertEqual(rc, 0, err)
            self.assertIn("swapped in 0B", out)
            self.assertEqual(rss_kb(v.pid), before)


if __name__ == "__main__":
    # Without arguments only PagemapTest runs (ctest int/test_pagemap);
    # ctest int/test_pagemap_swap passes SwapTest, which exits 77 itself.
    if len(sys.argv) == 1:
        sys.argv.append("PagemapTest")
    harness.main()
