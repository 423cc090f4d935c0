"""heapscan dump: an ELF core that gdb and eu-stack open, sparse, safe.

Victim: fixtures/victims/dump_victim.c (4 threads, 3 blocked in
victim_thread_blocker_1..3; known marker strings in heap, arena, anon).
"""
import os
import resource
import shutil
import signal
import stat
import struct
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from harness import (HEAPSCAN, TmpDirTestCase, Victim, main, run, run_json,  # noqa: E402
                     victim_path)
from coreutil import (MARKERS, NT_AUXV, NT_FILE, NT_FPREGSET, NT_PRPSINFO,  # noqa: E402
                      NT_PRSTATUS, NT_SIGINFO, NT_X86_XSTATE, PT_LOAD, PT_NOTE,
                      Core, hole_at)

PAGE = 4096


def addr(a):
    return int(a, 16) if isinstance(a, str) else a


def blocker_threads(v):
    """{tid: blocker function name} as the victim printed them."""
    return {int(l.split()[1]): l.split()[2] for l in v.lines if l.startswith("thread ")}


def data_extents(path):
    """[(start, end)] of the file's data (SEEK_DATA/SEEK_HOLE)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        out, off, size = [], 0, os.fstat(fd).st_size
        while off < size:
            try:
                d = os.lseek(fd, off, os.SEEK_DATA)
            except OSError:   # ENXIO: only a hole is left
                break
            off = os.lseek(fd, d, os.SEEK_HOLE)
            out.append((d, off))
        return out
    finally:
        os.close(fd)


class DumpTest(TmpDirTestCase):
    def dump(self, v, *extra, name="v.core"):
        path = os.path.join(self.tmp, name)
        out, rc, err = run_json("dump", "-p", v.pid, "-o", path, *extra)
        self.assertEqual(rc, 0, err)
        return path, out

    def test_layout_notes_and_sparse(self):
        with Victim("dump_victim") as v:
            path, st = self.dump(v)
            self.assertEqual(v.settled_state(), "S")   # let go after the copy
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        self.assertEqual(os.listdir(self.tmp), ["v.core"])  # no temp left
        c = Core(path)
        self.assertEqual(c.e_type, 4)          # ET_CORE
        self.assertEqual(c.e_machine, 62)      # EM_X86_64
        self.assertEqual(c.phdrs[0]["type"], PT_NOTE)
        self.assertEqual(sum(p["type"] == PT_NOTE for p in c.phdrs), 1)
        starts = [p["vaddr"] for p in c.loads]
        self.assertEqual(starts, sorted(starts))
        for p in c.loads:
            self.assertEqual(p["offset"] % PAGE, 0)
            self.assertLessEqual(p["filesz"], p["memsz"])
        self.assertEqual(st["regions"], len(c.loads))

        # Note order: per thread PRSTATUS, FPREGSET, XSTATE; the process
        # notes after the first PRSTATUS; heapscan's own note last.
        kinds = [(n, t) for n, t, _ in c.notes]
        self.assertEqual(kinds[0], ("CORE", NT_PRSTATUS))
        for k in (NT_PRPSINFO, NT_SIGINFO, NT_AUXV, NT_FILE):
            self.assertEqual(kinds.count(("CORE", k)), 1, hex(k))
        self.assertEqual(kinds[-1][0], "HEAPSCAN")
        threads = blocker_threads(v)
        tids = c.prstatus_tids()
        self.assertEqual(sorted(tids), sorted(list(threads) + [v.pid]))
        self.assertEqual(tids[0], v.pid)
        idx = [i for i, k in enumerate(kinds) if k == ("CORE", NT_PRSTATUS)] + [len(kinds) - 1]
        for a, b in zip(idx, idx[1:]):
            own = [k for k in kinds[a + 1:b]
                   if k in (("CORE", NT_FPREGSET), ("LINUX", NT_X86_XSTATE))]
            self.assertEqual(own, [("CORE", NT_FPREGSET), ("LINUX", NT_X86_XSTATE)])
        self.assertIn(victim_path("dump_victim"), c.nt_file_paths())

        # Every marker the victim placed is in the dump, exactly.
        for key, needle in MARKERS.items():
            self.assertEqual(c.count(needle), v.fact(key), key)

        # The anon mapping: full p_memsz, untouched pages are holes.
        anon, anon_len = v.fact("anon"), v.fact("anon", 1)
        touched = v.fact("anon_touched_pages")
        ph = c.load_at(anon)   # the kernel may have merged it with a neighbour
        self.assertLessEqual(anon + anon_len, ph["vaddr"] + ph["memsz"])
        self.assertEqual(ph["filesz"], ph["memsz"])
        anon_off = ph["offset"] + anon - ph["vaddr"]
        for pg in range(touched, anon_len // PAGE, 17):
            self.assertTrue(hole_at(path, anon_off + pg * PAGE), pg)
        self.assertFalse(hole_at(path, anon_off))
        self.assertGreaterEqual(st["bytes_absent"], anon_len - touched * PAGE)
        disk = os.stat(path).st_blocks * 512
        self.assertEqual(disk, st["disk_bytes"])
        self.assertLess(disk, os.stat(path).st_size)

    def test_gdb_lists_every_thread(self):
        if not shutil.which("gdb"):
            self.fail("gdb not installed: scripts/setup.sh installs it")
        with Victim("dump_victim") as v:
            path, _ = self.dump(v)
            threads = blocker_threads(v)
        p = subprocess.run(["gdb", "-nx", "-batch", "-ex", "info threads",
                            "-ex", "thread apply all bt", victim_path("dump_victim"), path],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        for tid in list(threads) + [v.pid]:
            self.assertIn("(LWP %d)" % tid, p.stdout)
        # Each blocker's backtrace holds its function, under its thread.
        for tid, fn in threads.items():
            sect = p.stdout.split("(LWP %d)):" % tid)[1].split("\nThread ")[0]
            self.assertRegex(sect, r"#\d+ .* in %s \(\)" % fn)
        self.assertRegex(p.stdout, r"#\d+\s+(0x[0-9a-f]+ in )?main \(")

    def test_eu_stack(self):
        if not shutil.which("eu-stack"):
            self.fail("eu-stack not installed: scripts/setup.sh installs elfutils")
        with Victim("dump_victim") as v:
            path, _ = self.dump(v)
            threads = blocker_threads(v)
        p = subprocess.run(["eu-stack", "--core", path], capture_output=True,
                           text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        for tid, fn in threads.items():
            self.assertIn("TID %d:" % tid, p.stdout)
            self.assertIn(fn, p.stdout)

    def test_live_and_dump_agree(self):
        with Victim("dump_victim") as v:
            # Dump first: the scan's heap section reads libc's read-only
            # data, which maps those file pages into the victim and moves
            # its file-backed Rss; the dump reads only what it writes.
            path, _ = self.dump(v)
            live, rc, err = run_json("scan", "-p", v.pid)
            self.assertEqual(rc, 0, err)
            live_s, rc, err = run_json("strings", "-p", v.pid, "--top", "10")
            self.assertEqual(rc, 0, err)
        dump, rc, err = run_json("scan", "-c", path)
        self.assertEqual(rc, 0, err)
        # Pss and the shared/private split of clean pages move whenever any
        # other process maps the same libraries: compare the victim's own.
        def own(t):
            return {k: v for k, v in t.items()
                    if not k.startswith("Pss") and k not in ("Shared_Clean", "Private_Clean")}
        self.assertEqual(own(dump["totals"]["smaps"]), own(live["totals"]["smaps"]))
        self.assertEqual(dump["totals"]["count"], live["totals"]["count"])
        self.assertEqual([(c["class"], c["count"], own(c["smaps"])) for c in dump["classes"]],
                         [(c["class"], c["count"], own(c["smaps"])) for c in live["classes"]])
        self.assertEqual([(r["start"], r["end"], r["class"]) for r in dump["regions"]],
                         [(r["start"], r["end"], r["class"]) for r in live["regions"]])
        dump_s, rc, err = run_json("strings", "-c", path, "--top", "10")
        self.assertEqual(rc, 0, err)
        counts = lambda s: {x["string"]: (x["count"], x["classes"]) for x in s["strings"]}  # noqa
        self.assertEqual(counts(dump_s), counts(live_s))
        self.assertEqual(dump_s["summary"]["class_bytes"], live_s["summary"]["class_bytes"])
        for key, needle in MARKERS.items():
            self.assertEqual(counts(dump_s)[needle[:-1].decode()][0], v.fact(key))

    def test_stop_covers_only_the_copy(self):
        with Victim("dump_victim") as v:
            _, st = self.dump(v)
            self.assertEqual(v.settled_state(), "S")
        self.assertGreater(st["stop_ms"], 0)
        self.assertGreaterEqual(st["stop_ms"], st["copy_ms"])
        self.assertLess(st["stop_ms"], st["wall_ms"] + 1000)

    def test_refuses_to_overwrite(self):
        with Victim("dump_victim") as v:
            path = os.path.join(self.tmp, "exists.core")
            with open(path, "w") as f:
                f.write("keep me")
            rc, out, err = run("dump", "-p", v.pid, "-o", path)
            self.assertEqual(rc, 2)
            self.assertIn("exists; use --force", err)
            self.assertEqual(open(path).read(), "keep me")
            self.assertEqual(v.settled_state(), "S")
            rc, out, err = run("dump", "-p", v.pid, "-o", path, "--force")
            self.assertEqual(rc, 0, err)
            self.assertEqual(Core(path).e_type, 4)
            self.assertEqual(os.listdir(self.tmp), ["exists.core"])

    def test_write_error_leaves_nothing(self):
        """A file size limit stands in for a full disk: same code path."""
        def limit():
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))
        with Victim("dump_victim") as v:
            path = os.path.join(self.tmp, "small.core")
            p = subprocess.run([HEAPSCAN, "dump", "-p", str(v.pid), "-o", path],
                               preexec_fn=limit, capture_output=True, text=True,
                               timeout=120)
            self.assertEqual(p.returncode, 2)
            self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
            self.assertRegex(p.stderr, r"^heapscan: cannot write '.*small\.core': "
                             r"File too large; nothing written\n$")
            self.assertEqual(os.listdir(self.tmp), [])
            self.assertEqual(v.settled_state(), "S")

    def test_disk_full_mid_copy_leaves_nothing(self):
        """A real ENOSPC while memory is copied (the size is set before
        copying, so the RLIMIT test above fails earlier): a tmpfs smaller
        than the victim's data, which the file's sparse size still fits."""
        mnt = os.path.join(self.tmp, "small")
        os.mkdir(mnt)
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", mnt],
                          capture_output=True).returncode != 0:
            self.skipTest("cannot mount a tmpfs (needs root)")
        try:
            with Victim("dump_victim") as v:
                path = os.path.join(mnt, "full.core")
                rc, out, err = run("dump", "-p", v.pid, "-o", path)
                self.assertEqual(rc, 2, err)
                self.assertEqual(len(err.strip().splitlines()), 1, err)
                self.assertRegex(err, r"^heapscan: cannot write '.*full\.core': "
                                 r"No space left on device; nothing written\n$")
                self.assertEqual(os.listdir(mnt), [])
                self.assertEqual(v.settled_state(), "S")
        finally:
            subprocess.run(["umount", mnt], check=True)

    def test_interrupt_leaves_nothing(self):
        with Victim("dump_victim") as v:
            path = os.path.join(self.tmp, "int.core")
            p = subprocess.Popen([HEAPSCAN, "dump", "-p", str(v.pid), "-o", path],
                                 env=dict(os.environ, HEAPSCAN_TEST_HOLD="1"),
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            self.assertEqual(p.stderr.readline(), "heapscan: test: holding\n")
            self.assertEqual(v.state(), "t")   # stopped by us
            p.send_signal(signal.SIGINT)
            out, err = p.communicate(timeout=60)
            self.assertEqual(p.returncode, 2, err)
            self.assertIn("interrupted", err)
            self.assertEqual(os.listdir(self.tmp), [])
            self.assertEqual(v.settled_state(), "S")

    def test_region_selection(self):
        with Victim("dump_victim") as v:
            full, _ = self.dump(v, "--all", name="all.core")
            heap, _ = self.dump(v, "--heap-only", name="heap.core")
            stk, _ = self.dump(v, "--regions", "stack", name="stack.core")
            rc, _, err = run("dump", "-p", v.pid, "-o", os.path.join(self.tmp, "x"),
                             "--regions", "heap,bogus")
            self.assertEqual(rc, 64)
            self.assertIn("unknown region class 'bogus'", err)
            rc, _, err = run("dump", "-p", v.pid)
            self.assertEqual(rc, 64)
        cls = {addr(r["start"]): r["class"] for r in run_json("scan", "-c", full)[0]["regions"]}
        for name, want in (("heap.core", {"heap", "arena", "anon", "data"}),
                           ("stack.core", {"stack"})):
            c = Core(os.path.join(self.tmp, name))
            for p in c.loads:
                k = cls[p["vaddr"]]
                if k in want:
                    self.assertEqual(p["filesz"], p["memsz"], (name, k))
                else:
                    self.assertIn(p["filesz"], (0, PAGE), (name, k))
        # --all: the code of the victim itself is in the file.
        c = Core(full)
        code = [p for p in c.loads if cls[p["vaddr"]] == "code"]
        self.assertTrue(code)
        self.assertTrue(all(p["filesz"] == p["memsz"] for p in code))
        c = Core(os.path.join(self.tmp, "heap.core"))
        self.assertEqual(c.count(MARKERS["heap_marker"]), v.fact("heap_marker"))
        self.assertEqual(c.count(MARKERS["arena_marker"]), v.fact("arena_marker"))

    def test_sparse_exactly_as_reported(self):
        """Data blocks of the file are exactly the bytes the dump says it
        wrote: every zero, absent or unreadable page is a hole."""
        with Victim("dump_victim") as v:
            path, st = self.dump(v)
        c = Core(path)
        lo = min(p["offset"] for p in c.loads if p["filesz"])
        hi = max(p["offset"] + p["filesz"] for p in c.loads)
        data = sum(min(e, hi) - max(d, lo) for d, e in data_extents(path)
                   if e > lo and d < hi)
        self.assertEqual(data, st["bytes_written"])


if __name__ == "__main__":
    main()
