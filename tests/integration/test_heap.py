"""heapscan heap: the glibc walker against victims that print their own truth.

heap_victim leaves, in main_arena and in a thread arena, known numbers of
chunks in tcache, fastbins, unsorted/small/large bins, kept chunks of sizes
nothing else uses, and mmapped chunks; heapscan must find exactly those.
check_victim() takes the heapscan target arguments, so the same assertions
run on a live process and on a core of it.
"""
import os
import re
import shutil
import subprocess
import time

import harness
from harness import Victim, read_smaps, run, run_json

KINDS = ("tcache", "fastbin", "unsorted", "small", "large")


def victim_truth(v):
    """keep[(arena, size)] = n; free[(arena, kind)] = (n, bytes); mmapped."""
    keep, free, mm = {}, {}, None
    for line in v.lines:
        p = line.split()
        if p[0] == "keep":
            keep[(p[1], int(p[2], 16))] = int(p[3])
        elif p[0] == "free":
            free[(p[1], p[2])] = (int(p[3]), int(p[4]))
        elif p[0] == "mmapped":
            mm = (int(p[1]), int(p[2]))
    return keep, free, mm


class HeapTest(harness.TmpDirTestCase):

    def heap_json(self, *args):
        d, rc, err = run_json("heap", "--top", "100000", *args)
        self.assertEqual(rc, 0, err)
        self.assertEqual(d["schema_version"], 1)
        return d["heap"]

    def check_victim(self, v, args):
        """Every count heap_victim printed, found exactly, via args."""
        keep, free, mm = victim_truth(v)
        h = self.heap_json(*args)
        self.assertTrue(h["supported"])
        self.assertEqual(h["problems_total"], 0, h["problems"])
        self.assertFalse(h["free_set_full"])
        main = [a for a in h["arenas"] if a["main"]]
        thread = [a for a in h["arenas"] if not a["main"]]
        self.assertEqual(len(main), 1)
        self.assertEqual(len(thread), 1)
        for name, a in (("main", main[0]), ("thread", thread[0])):
            for kind in KINDS:
                got = a["chunks"][kind]
                self.assertEqual((got["count"], got["bytes"]), free[(name, kind)],
                                 "%s arena %s" % (name, kind))
            self.assertEqual(a["chunks"]["unbinned"]["count"], 0)
            self.assertEqual(a["chunks"]["unparsed"]["count"], 0)
            self.assertEqual(a["chunks"]["top"]["count"], 1)
            self.assertTrue(all(s["complete"] for s in a["heaps"]))
            # the free total is the kinds plus top
            self.assertEqual(a["free"]["count"],
                             sum(a["chunks"][k]["count"] for k in KINDS) + 1)
        hist = {b["size"]: b for b in h["histogram"]}
        for (arena, size), n in keep.items():
            self.assertEqual(hist[size]["count"], n, "size 0x%x" % size)
            self.assertEqual(hist[size]["bytes"], n * size)
        self.assertEqual((h["mmapped"]["count"], h["mmapped"]["bytes"]), mm)
        # ranked by total bytes
        b = [x["bytes"] for x in h["histogram"]]
        self.assertEqual(b, sorted(b, reverse=True))
        # both threads' tcaches, found through TLS
        tids = sorted(t["tid"] for t in h["tcaches"])
        self.assertEqual(tids, sorted([v.pid, v.fact("tid")]))
        return h

    def check_version(self, h, exact_ok=True):
        """The version range holds this machine's glibc; the layout row too."""
        libc = os.confstr("CS_GNU_LIBC_VERSION").split()[1]
        minor = int(libc.split(".")[1])
        lo = int(h["glibc_version_min"].split(".")[1])
        hi = int(h["glibc_version_max"].split(".")[1])
        self.assertTrue(lo <= minor <= hi, (libc, h["glibc_version"]))
        if lo == hi:
            self.assertEqual(h["glibc_version"], libc)
        else:
            self.assertEqual(h["glibc_version"], "2.%d-2.%d" % (lo, hi))
        row = h["layout"].split("-")
        self.assertTrue(int(row[0].split(".")[1]) <= lo and
                        hi <= int(row[-1].split(".")[1]), h["layout"])

    def test_live(self):
        with Victim("heap_victim") as v:
            h = self.check_victim(v, ["-p", v.pid])
            self.assertIn(h["main_arena_source"], ("symbol", "disasm", "scan"))
            # a live libc's version comes from its ELF symbol versions
            self.assertIn(h["glibc_version_source"], ("verdef", "verdef+name"))
            self.check_version(h)
            # the caller's main_arena gives the same picture
            h2 = self.check_victim(v, ["-p", v.pid, "--main-arena", h["main_arena"]])
            self.assertEqual(h2["main_arena_source"], "caller")
            self.assertEqual(h2["main_arena"], h["main_arena"])

    def test_live_scaled_and_text(self):
        with Victim("heap_victim", 3) as v:
            self.check_victim(v, ["-p", v.pid])
            rc, out, err = run("heap", "-p", v.pid)
            self.assertEqual(rc, 0, err)
            self.assertIn("glibc heap", out)
            self.assertIn("(main)", out)
            self.assertIn("(thread)", out)
            # the biggest size class by bytes is first: 3000 x 0x1b0
            lines = out.splitlines()
            i = [n for n, l in enumerate(lines) if "chunk size" in l][0]
            first = lines[i + 1].split()
            self.assertEqual(first[:2], ["0x1b0", "3000"])

    def test_libc_rss_unchanged(self):
        # finding the version and main_arena must not fault libc's file
        # pages into the target: its libc Rss is the same after the walk
        def libc_rss(pid):
            return [(s, e, perms, f.get("Rss")) for s, e, perms, path, f
                    in read_smaps(pid) if os.path.basename(path).startswith("libc")]
        with Victim("heap_victim") as v:
            for way in ("auto", "symbol", "disasm", "scan"):
                before = libc_rss(v.pid)
                self.assertTrue(before)
                d, rc, err = run_json("heap", "-p", v.pid, "--main-arena-from", way)
                if rc != 0 and way == "symbol":
                    continue  # no debug info: tested in test_main_arena_ways
                self.assertEqual(rc, 0, err)
                self.assertEqual(libc_rss(v.pid), before, way)
                rc, out, err = run("-p", v.pid)
                self.assertEqual(rc, 0, err)
                self.assertEqual(libc_rss(v.pid), before, "scan report")

    def gdb_main_arena(self, pid):
        """&main_arena from gdb with libc's debug info, or None."""
        if not shutil.which("gdb"):
            return None
        p = subprocess.run(["gdb", "-nx", "-batch", "-p", str(pid),
                            "-ex", "p/x (unsigned long)&main_arena"],
                           capture_output=True, text=True, timeout=120)
        m = re.search(r"^\$1 = (0x[0-9a-f]+)$", p.stdout, re.M)
        return int(m.group(1), 16) if m else None

    def test_main_arena_ways(self):
        # symbol, disasm and scan each find main_arena alone, and all agree
        # with gdb's &main_arena (libc6-dbg; scripts/setup.sh installs it)
        with Victim("heap_victim") as v:
            want = self.gdb_main_arena(v.pid)
            if want is None:
                self.fail("gdb cannot see main_arena (scripts/setup.sh installs libc6-dbg)")
            for way in ("symbol", "disasm", "scan", "auto"):
                h = self.check_victim(v, ["-p", v.pid, "--main-arena-from", way])
                self.assertEqual(int(h["main_arena"], 16), want, way)
                self.assertEqual(h["main_arena_source"],
                                 "symbol" if way == "auto" else way)
            # the caller's main_arena gives the same picture
            h = self.check_victim(v, ["-p", v.pid, "--main-arena", hex(want)])
            self.assertEqual(h["main_arena_source"], "caller")
            self.assertEqual(int(h["main_arena"], 16), want)

    def test_main_arena_from_bad(self):
        rc, out, err = run("heap", "-p", "1", "--main-arena-from", "guess")
        self.assertEqual(rc, 64)
        self.assertIn("--main-arena-from", err)

    def test_core(self):
        with Victim("heap_victim") as v:
            core = os.path.join(self.tmp, "victim.core")
            rc, out, err = run("dump", "-p", v.pid, "-o", core)
            self.assertEqual(rc, 0, err)
            self.assertTrue(os.path.exists(core))
            h = self.check_victim(v, ["-c", core])
            self.assertIn(h["main_arena_source"], ("symbol", "disasm", "scan"))
            self.check_version(h)
            for way in ("disasm", "scan"):
                h2 = self.check_victim(v, ["-c", core, "--main-arena-from", way])
                self.assertEqual(h2["main_arena"], h["main_arena"], way)

    def test_gcore(self):
        # gdb's core leaves out libc's read-only segments (no version
        # string): the layout is inferred and the counts must not change
        if not shutil.which("gcore"):
            self.fail("gdb's gcore is not installed: scripts/setup.sh installs gdb")
        with Victim("heap_victim") as v:
            prefix = os.path.join(self.tmp, "g")
            p = subprocess.run(["gcore", "-o", prefix, str(v.pid)],
                               capture_output=True, text=True, timeout=120)
            core = "%s.%d" % (prefix, v.pid)
            if p.returncode != 0 or not os.path.exists(core):
                self.fail("gcore failed: %s" % p.stderr.strip()[-200:])
            self.check_victim(v, ["-c", core])

    def test_smashed_header(self):
        with Victim("heap_victim") as v:
            v.send("smash")
            bad = v.fact("smashed")
            d, rc, err = run_json("heap", "-p", v.pid)
            self.assertEqual(rc, 0, err)
            h = d["heap"]
            probs = [p for p in h["problems"] if int(p["addr"], 16) == bad]
            self.assertTrue(probs, h["problems"])
            self.assertIn("multiple of 16", probs[0]["message"])
            main = [a for a in h["arenas"] if a["main"]][0]
            # resynchronised on the next chunk: exactly the smashed chunk
            # is skipped, and the walk still reaches top
            self.assertEqual(main["chunks"]["unparsed"]["count"], 1)
            self.assertEqual(main["chunks"]["unparsed"]["bytes"], 0x2e0)
            self.assertTrue(main["heaps"][0]["complete"])
            keep, free, mm = victim_truth(v)
            hist = {b["size"]: b for b in h["histogram"]}
            self.assertEqual(hist[0x2e0]["count"], keep[("main", 0x2e0)] - 1)

    def test_fastbin_cycle(self):
        with Victim("heap_victim") as v:
            v.send("cycle")
            head = v.fact("cycled")
            d, rc, err = run_json("heap", "-p", v.pid)
            self.assertEqual(rc, 0, err)
            h = d["heap"]
            self.assertTrue(any(int(p["addr"], 16) == head and "cycle" in p["message"]
                                for p in h["problems"]), h["problems"])
            # the rest of the list was cut at the cycle: 1 of 5 left in
            # the 0x80 fastbin, the 0x40 fastbin intact
            main = [a for a in h["arenas"] if a["main"]][0]
            self.assertEqual(main["chunks"]["fastbin"]["count"], 1 + 6)

    def test_millions_of_records(self):
        n = 2000000
        with Victim("heap_many", n) as v:
            t0 = time.time()
            h = self.heap_json("-p", v.pid)
            wall = time.time() - t0
            self.assertEqual(h["problems_total"], 0, h["problems"])
            first = h["histogram"][0]
            self.assertEqual((first["size"], first["count"]), (0x30, n))
            rate = h["walked_bytes"] / max(h["walk_seconds"], 1e-9)
            print("walked %d bytes in %.3f s (%.0f MB/s), heapscan wall %.2f s"
                  % (h["walked_bytes"], h["walk_seconds"], rate / 1e6, wall))
            rc, out, err = run("heap", "-p", v.pid)
            lines = out.splitlines()
            i = [k for k, l in enumerate(lines) if "chunk size" in l][0]
            self.assertEqual(lines[i + 1].split()[:2], ["0x30", str(n)])
            # each size's sample chunk is one `show` accepts: that size,
            # in use, in the main arena
            self.assertEqual(lines[i + 1].split()[-1], first["sample"])
            d, rc, err = run_json("show", first["sample"], "-p", v.pid)
            self.assertEqual(rc, 0, err)
            c = d["chunk"]
            self.assertEqual(c["addr"], first["sample"])
            self.assertEqual((c["size"], c["state"]), (0x30, "inuse"))


if __name__ == "__main__":
    harness.main()
