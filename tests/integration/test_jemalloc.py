"""heapscan on jemalloc (Debian 12's libjemalloc2 5.3.0), and the allocator
it names.

Ground truth is jemalloc's own count: jemalloc_victim prints mallctl's
curregs (small classes) and curlextents (large) after an epoch refresh,
then makes no allocation; redis-server prints je_malloc_stats_print through
MEMORY MALLOC-STATS.  For every size class, regions in use plus regions in
thread caches must equal that count (curregs counts regions handed out of
slabs, cached ones included).  The same on a heapscan dump and a gcore of
the victim; the target's Rss must not change; strings must place every
live marker in use.  Processes on other allocators must be named as such,
never as glibc, with --json still one complete document.
"""
import json
import os
import shutil
import socket
import subprocess
import sys

import harness
from harness import Victim, read_smaps, run, run_json

LIBJE = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"
LIBTC = "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4"
LIBMI = "/usr/lib/x86_64-linux-gnu/libmimalloc.so.2"

# A Python program that keeps markers alive, prints its pid, then "ready",
# and blocks on stdin (the victim protocol).  The markers are bytes objects
# over 512 bytes: smaller objects live in pymalloc's own mmapped arenas,
# not in malloc's heap.
PY_VICTIM = r"""
import os, sys
keep = [b"hspy-marker-%05d" % i + bytes(600 + i) for i in range(400)]
big = [bytearray(b"hspy-big-%03d" % i) + bytearray(70000) for i in range(4)]
os.write(1, b"pid %d\nready\n" % os.getpid())
sys.stdin.read()
"""


# A C program that mallocs, prints its pid and "ready", and waits.
WAIT_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
int main(void)
{
	char *volatile p = malloc(100);
	(void)p;
	printf("pid %d\nready\n", (int)getpid());
	fflush(stdout);
	getchar();
	return 0;
}
"""


def victim_classes(v):
    """{size: count} from the victim's curregs and curlextents lines."""
    truth = {}
    for line in v.lines:
        p = line.split()
        if p[0] in ("curregs", "curlextents"):
            truth[int(p[1])] = int(p[2])
    return truth


def parse_malloc_stats(text):
    """{size: curregs} of the bins table and {size: curlextents} of the
    large table of je_malloc_stats_print's merged-arena section.  Columns
    are found by their header names, not by position."""
    lines = text.splitlines()

    def table(head, col):
        for i, l in enumerate(lines):
            f = l.split()
            if f and f[0] == head and col in f:
                # the header's first word ("bins:") sits above no column
                names = f[1:]
                k = names.index(col)
                out = {}
                for row in lines[i + 1:]:
                    r = row.split()
                    if r == ["---"]:
                        continue
                    if not r or not r[0].isdigit():
                        break
                    out[int(r[0])] = int(r[k])
                return out
        raise AssertionError("no %s table with %s in MALLOC-STATS" % (head, col))

    return table("bins:", "curregs"), table("large:", "curlextents")


class JemallocTest(harness.TmpDirTestCase):

    def heap(self, *args):
        d, rc, err = run_json("heap", *args)
        self.assertEqual(rc, 0, err)
        self.assertEqual(d["schema_version"], 1)
        h = d["heap"]
        self.assertEqual(h["allocator"], "jemalloc", h)
        self.assertTrue(h["supported"], h)
        self.assertEqual(h["problems_total"], 0, h["problems"])
        self.assertFalse(h["truncated"])
        return h

    def check_classes(self, h, truth, what):
        got = {c["size"]: c["in_use"] + c["tcache"] for c in h["size_classes"]
               if c["in_use"] + c["tcache"]}
        self.assertEqual(got, truth, what)
        for c in h["size_classes"]:
            self.assertGreaterEqual(c["free"], 0)
            for k in ("in_use", "tcache", "free"):
                self.assertEqual(c[k + "_bytes"], c[k] * c["size"])
            if c["small"]:
                self.assertEqual(c["in_use"] + c["tcache"] + c["free"],
                                 c["slabs"] * c["regs_per_slab"], c)

    def start_victim(self, name="jemalloc_victim"):
        if not os.path.exists(harness.victim_path(name)):
            self.skipTest("%s not built (libjemalloc-dev missing)" % name)
        return Victim(name)

    def test_linked_in(self):
        # jemalloc inside the executable: found by its symbols, same counts
        with self.start_victim("jemalloc_static_victim") as v:
            h = self.heap("-p", v.pid)
            self.assertTrue(h["linked_in"])
            self.assertTrue(h["allocator_source"].startswith("symbol "))
            self.assertEqual(h["rtree_source"], "symbol")
            self.assertEqual(h["jemalloc_version"], v.facts["version"][0])
            self.check_classes(h, victim_classes(v), "linked in")
            tids = {t["tid"]: t for t in h["tcaches"]}
            self.assertEqual(tids[v.fact("thread_tid")]["count"], 32)

    def test_victim_live(self):
        with self.start_victim() as v:
            h = self.heap("-p", v.pid)
            self.check_classes(h, victim_classes(v), "live")
            # both threads' caches: the worker freed 32 64-byte blocks
            tids = {t["tid"]: t for t in h["tcaches"]}
            self.assertIn(v.pid, tids)
            self.assertIn(v.fact("thread_tid"), tids)
            self.assertEqual(tids[v.fact("thread_tid")]["count"], 32)
            self.assertTrue(h["tcache_known"])
            self.assertEqual(h["jemalloc_version"], v.facts["version"][0])
            self.assertEqual(h["rtree_source"], "disasm")
            # the text report names the allocator and agrees
            rc, out, err = run("heap", "-p", v.pid)
            self.assertEqual(rc, 0, err)
            self.assertIn("jemalloc heap", out)
            self.assertNotIn("glibc heap", out)

    def test_victim_strings(self):
        with self.start_victim() as v:
            d, rc, err = run_json("strings", "-p", v.pid, "--min-len", "9",
                                  "--top", "100000")
            self.assertEqual(rc, 0, err)
            self.assertTrue(d["summary"]["where_known"])
            found = {s["string"]: s for s in d["strings"]}
            markers = [s for s in found if s.startswith("hsje-live-")]
            self.assertEqual(len(markers), v.fact("markers"))
            for m in markers:
                self.assertEqual(found[m]["where"]["inuse"], found[m]["count"], m)
            for _, name in (l.split()[1:] for l in v.lines if l.startswith("marker ")):
                self.assertEqual(found[name]["count"], 1, name)
            # the 500 freed 48-byte blocks, in caches or slabs: free
            dead = found["hsje-dead"]
            self.assertEqual(dead["count"], 500)
            self.assertEqual(dead["where"]["free"], 500)
            # --chunks free: only the bytes of free and cached regions
            d, rc, err = run_json("strings", "-p", v.pid, "--min-len", "9",
                                  "--top", "100000", "--chunks", "free")
            self.assertEqual(rc, 0, err)
            found = {s["string"]: s for s in d["strings"]}
            self.assertEqual(found["hsje-dead"]["count"], 500)
            self.assertFalse([s for s in found if s.startswith("hsje-live-")])

    def test_victim_show(self):
        with self.start_victim() as v:
            marks = [l.split()[1:] for l in v.lines if l.startswith("marker ")]
            freed = [l.split()[1] for l in v.lines if l.startswith("freed ")]
            for addr, name in marks[:1] + marks[-2:]:
                # any byte inside names the region that holds it
                inside = "%#x" % (int(addr, 16) + 5)
                d, rc, err = run_json("show", inside, "-p", v.pid)
                self.assertEqual(rc, 0, err)
                b = d["block"]
                self.assertEqual(b["allocator"], "jemalloc")
                self.assertEqual(b["addr"], addr, name)
                self.assertEqual(b["offset"], 5)
                self.assertEqual(b["state"], "inuse", name)
                self.assertEqual(bytes.fromhex(d["dump"]["hex"])[:len(name)].decode(), name)
            for addr in freed:
                d, rc, err = run_json("show", addr, "-p", v.pid)
                self.assertEqual(rc, 0, err)
                self.assertIn(d["block"]["state"], ("cached", "free"), addr)
                self.assertEqual(d["block"]["class"], 48)

    def test_malloc_conf_variants(self):
        # jemalloc's own options change where extents lie and what caches
        # hold: without retained memory its mappings land next to the
        # libraries' bss (which the walk must tell apart), without tcache
        # there are no caches, the HPA makes its own extents
        if not os.path.exists(harness.victim_path("jemalloc_victim")):
            self.skipTest("jemalloc_victim not built (libjemalloc-dev missing)")
        for conf in ("retain:false", "retain:false,narenas:3", "tcache:false",
                     "hpa:true", "dirty_decay_ms:0,muzzy_decay_ms:0", "narenas:1"):
            env = dict(os.environ, MALLOC_CONF=conf)
            with Victim("jemalloc_victim", env=env) as v:
                before = [(s, e, f.get("Rss")) for s, e, _, _, f in read_smaps(v.pid)]
                h = self.heap("-p", v.pid)
                self.check_classes(h, victim_classes(v), conf)
                self.assertEqual(len(h["tcaches"]), 0 if conf == "tcache:false" else 2, conf)
                self.assertEqual([(s, e, f.get("Rss")) for s, e, _, _, f in read_smaps(v.pid)],
                                 before, conf)

    def test_victim_cores(self):
        with self.start_victim() as v:
            truth = victim_classes(v)
            live = self.heap("-p", v.pid)
            core = os.path.join(self.tmp, "je.core")
            rc, out, err = run("dump", "-p", v.pid, "-o", core)
            self.assertEqual(rc, 0, err)
            h = self.heap("-c", core)
            self.check_classes(h, truth, "heapscan dump")
            self.assertEqual(h["size_classes"], live["size_classes"])
            if not shutil.which("gcore"):
                return
            prefix = os.path.join(self.tmp, "g")
            p = subprocess.run(["gcore", "-o", prefix, str(v.pid)],
                               capture_output=True, text=True, timeout=120)
            gcore = "%s.%d" % (prefix, v.pid)
            if p.returncode != 0 or not os.path.exists(gcore):
                self.fail("gcore failed: %s" % p.stderr.strip()[-200:])
            h = self.heap("-c", gcore)
            self.check_classes(h, truth, "gcore")

    def test_victim_snapshot(self):
        # growth's profile: in-use blocks per arena and size class, as heap
        # counts them (both threads' arenas)
        with self.start_victim() as v:
            h = self.heap("-p", v.pid)
            prof = os.path.join(self.tmp, "je.prof")
            rc, out, err = run("snapshot", "-p", v.pid, "-o", prof)
            self.assertEqual(rc, 0, err)
            per_size, arenas = {}, set()
            with open(prof) as f:
                for line in f:
                    p = line.split()
                    if p[0] == "chunk":
                        arenas.add(int(p[1]))
                        per_size[int(p[2])] = per_size.get(int(p[2]), 0) + int(p[3])
            self.assertEqual(per_size, {c["size"]: c["in_use"] for c in h["size_classes"]
                                        if c["in_use"]})
            self.assertEqual(arenas, {0, 1})
            # the pprof profile names jemalloc's regions, not glibc chunks
            pp = os.path.join(self.tmp, "je.pb.gz")
            rc, out, err = run("snapshot", "-p", v.pid, "-o", pp, "--format", "pprof")
            self.assertEqual(rc, 0, err)
            from test_pprof import decode
            got = {}
            for frames, vals, _ in decode(pp)["samples"]:
                if frames[-1] == "jemalloc":
                    size = int(frames[0].split()[1])
                    got[size] = got.get(size, 0) + vals[0]
                self.assertNotEqual(frames[-1], "glibc malloc", frames)
            self.assertEqual(got, per_size)

    def test_leaks_names_jemalloc(self):
        # leaks indexes glibc chunks only: it says which allocator it met
        with self.start_victim() as v:
            rc, out, err = run("leaks", "-p", v.pid)
            self.assertEqual(rc, 2, err)
            self.assertIn("the allocator is jemalloc", err)
            self.assertNotIn("main_arena", err)

    def test_victim_rss_unchanged(self):
        def rss(pid):
            return [(s, e, perms, path, f.get("Rss")) for s, e, perms, path, f
                    in read_smaps(pid)]
        with self.start_victim() as v:
            before = rss(v.pid)
            self.heap("-p", v.pid)
            self.assertEqual(rss(v.pid), before)

    def test_python_preload(self):
        if not os.path.exists(LIBJE):
            self.skipTest("libjemalloc2 not installed")
        env = dict(os.environ, LD_PRELOAD=LIBJE)
        p = subprocess.Popen([sys.executable, "-c", PY_VICTIM], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, env=env)
        try:
            pid = int(p.stdout.readline().split()[1])
            self.assertEqual(p.stdout.readline().strip(), "ready")
            h = self.heap("-p", pid)
            self.assertGreater(h["in_use"]["count"], 1000)
            self.assertTrue(any(t["tid"] == pid for t in h["tcaches"]))
            # the four 70 KiB bytearrays: large extents of the 80 KiB class
            big = [c for c in h["size_classes"] if c["size"] == 81920]
            self.assertTrue(big and big[0]["in_use"] >= 4, big)
            d, rc, err = run_json("strings", "-p", pid, "--min-len", "12",
                                  "--top", "100000")
            self.assertEqual(rc, 0, err)
            found = {s["string"]: s for s in d["strings"]}
            for i in range(400):
                m = "hspy-marker-%05d" % i
                self.assertIn(m, found)
                self.assertGreaterEqual(found[m]["where"]["inuse"], 1, m)
            for i in range(4):
                self.assertGreaterEqual(found["hspy-big-%03d" % i]["where"]["inuse"], 1)
        finally:
            p.stdin.close()
            p.wait(timeout=30)

    def test_dlopened_jemalloc_is_not_malloc(self):
        # libjemalloc dlopen'd after start (its initial-exec TLS needs the
        # tunable's static TLS room): mapped, initialised, but malloc is
        # still glibc's, which the link map order shows
        if not os.path.exists(LIBJE):
            self.skipTest("libjemalloc2 not installed")
        env = dict(os.environ, GLIBC_TUNABLES="glibc.rtld.optional_static_tls=65536")
        code = "import ctypes; ctypes.CDLL(%r)\n" % LIBJE + PY_VICTIM
        p = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, env=env)
        try:
            pid = int(p.stdout.readline().split()[1])
            self.assertEqual(p.stdout.readline().strip(), "ready")
            self.assertTrue(any(path.endswith("libjemalloc.so.2")
                                for _, _, _, path, _ in read_smaps(pid)))
            d, rc, err = run_json("heap", "-p", pid)
            self.assertEqual(rc, 0, err)
            self.assertEqual(d["heap"]["allocator"], "glibc")
            self.assertTrue(d["heap"]["supported"])
            self.assertGreater(d["heap"]["totals"]["inuse"]["count"], 100)
        finally:
            p.stdin.close()
            p.wait(timeout=30)

    def other_allocator(self, lib, name):
        if not os.path.exists(lib):
            self.skipTest("%s not installed" % lib)
        env = dict(os.environ, LD_PRELOAD=lib)
        p = subprocess.Popen([sys.executable, "-c", PY_VICTIM], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, env=env)
        try:
            pid = int(p.stdout.readline().split()[1])
            self.assertEqual(p.stdout.readline().strip(), "ready")
            rc, out, err = run("heap", "-p", pid, "--json")
            self.assertEqual(rc, 2, err)
            d = json.loads(out)       # one complete document
            self.assertEqual(d["heap"]["allocator"], name)
            self.assertFalse(d["heap"]["supported"])
            self.assertIn(name, d["heap"]["error"])
            self.assertIn(name, err)
            d, rc, err = run_json("-p", pid)  # scan: the heap section says so
            self.assertEqual(rc, 0, err)
            self.assertEqual(d["heap"]["allocator"], name)
            self.assertIn("not walk", d["heap"]["error"])
            rc, out, err = run("-p", pid)
            self.assertEqual(rc, 0, err)
            self.assertIn("%s heap" % name, out)
            self.assertNotIn("glibc heap", out)
            # a growth profile says why it has no heap records
            prof = os.path.join(self.tmp, "o.prof")
            rc, out, err = run("snapshot", "-p", pid, "-o", prof, "--no-strings")
            self.assertEqual(rc, 0, err)
            with open(prof) as f:
                text = f.read()
            self.assertIn("meta heap_error the allocator is %s;" % name, text)
            self.assertNotIn("\nchunk ", text)
        finally:
            p.stdin.close()
            p.wait(timeout=30)

    def test_tcmalloc_named(self):
        self.other_allocator(LIBTC, "tcmalloc")

    def test_mimalloc_named(self):
        self.other_allocator(LIBMI, "mimalloc")

    def built_named(self, cc, flags, name):
        """Compiles WAIT_C with cc, runs it, checks heap names `name`."""
        if not shutil.which(cc):
            self.skipTest("%s is not installed" % cc)
        src = os.path.join(self.tmp, "w.c")
        exe = os.path.join(self.tmp, "w")
        with open(src, "w") as f:
            f.write(WAIT_C)
        p = subprocess.run([cc] + flags + ["-o", exe, src], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        p = subprocess.Popen([exe], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            pid = int(p.stdout.readline().split()[1])
            self.assertEqual(p.stdout.readline().strip(), "ready")
            rc, out, err = run("heap", "-p", pid, "--json")
            d = json.loads(out)
            self.assertEqual(d["heap"]["allocator"], name, d["heap"])
            self.assertEqual(rc, 0 if d["heap"]["supported"] else 2, err)
            return d["heap"]
        finally:
            p.stdin.close()
            p.wait(timeout=30)

    def test_musl_named(self):
        h = self.built_named("musl-gcc", [], "musl")
        self.assertIn("musl", h["allocator_module"])
        self.assertFalse(h["supported"])
        h = self.built_named("musl-gcc", ["-static"], "musl")
        self.assertEqual(h["allocator_source"][:7], "symbol ")

    def test_static_glibc_named(self):
        # glibc linked in: named glibc (its heap walk needs libc.so.6)
        self.built_named("gcc", ["-static"], "glibc")

    def test_glibc_still_glibc(self):
        with Victim("heap_victim") as v:
            for cmd in (["heap"], []):
                d, rc, err = run_json(*(cmd + ["-p", v.pid]))
                self.assertEqual(rc, 0, err)
                self.assertEqual(d["heap"]["allocator"], "glibc")
                self.assertTrue(d["heap"]["supported"])


class RedisTest(harness.TmpDirTestCase):
    """An idle redis-server (Debian's, on the shared libjemalloc.so.2)."""

    NKEYS = 3000

    def setUp(self):
        super().setUp()
        server = shutil.which("redis-server")
        if not server:
            self.skipTest("redis-server not installed")
        self.srv = subprocess.Popen(
            [server, "--port", "0", "--unixsocket", os.path.join(self.tmp, "r.sock"),
             "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.tmp, "--loglevel", "verbose"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        # the server logs "ready to accept connections" once it listens
        for line in self.srv.stdout:
            if "eady to accept connections" in line:
                break
        else:
            self.fail("redis-server exited: rc=%s" % self.srv.wait())
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(os.path.join(self.tmp, "r.sock"))
        self.rf = self.sock.makefile("rb")

    def tearDown(self):
        try:
            self.sock.close()
        finally:
            self.srv.terminate()
            self.srv.wait(timeout=30)
            super().tearDown()

    def cmd(self, *args):
        """One RESP command; the reply (bulk string, status or integer)."""
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.sock.sendall(out)
        line = self.rf.readline()
        if line[:1] == b"$":
            n = int(line[1:])
            data = self.rf.read(n + 2)[:-2] if n >= 0 else None
            return data.decode()
        if line[:1] == b"-":
            raise AssertionError(line.decode())
        return line[1:].strip().decode()

    def fill(self):
        keys = ["hsredis:key:%06d" % i for i in range(self.NKEYS)]
        pipe = b""
        for i, k in enumerate(keys):
            v = ("value-%d-" % i) + "v" * (i % 300)
            pipe += b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (
                len(k), k.encode(), len(v), v.encode())
        self.sock.sendall(pipe)
        for _ in keys:
            self.assertEqual(self.rf.readline(), b"+OK\r\n")
        return keys

    def test_redis_exact(self):
        keys = self.fill()
        pid = self.srv.pid
        d, rc, err = run_json("heap", "-p", pid)
        self.assertEqual(rc, 0, err)
        h = d["heap"]
        self.assertEqual(h["allocator"], "jemalloc")
        self.assertEqual(h["problems_total"], 0, h["problems"])
        # Read after heapscan: the command's own allocations come from
        # the warm caches (curregs does not move) except the stats
        # printer's 64 KiB output buffer, a large allocation alive only
        # while it prints.
        bins, large = parse_malloc_stats(self.cmd("MEMORY", "MALLOC-STATS"))
        mine = {c["size"]: c for c in h["size_classes"]}
        self.assertGreater(len(bins), 10)
        for size, curregs in bins.items():
            c = mine.get(size, {"in_use": 0, "tcache": 0})
            self.assertEqual(c["in_use"] + c["tcache"], curregs, "bin %d" % size)
        for c in h["size_classes"]:
            if c["small"] and c["in_use"] + c["tcache"]:
                self.assertIn(c["size"], bins)
        for size, n in large.items():
            c = mine.get(size, {"in_use": 0, "tcache": 0})
            extra = 1 if size == 65536 else 0
            self.assertIn(n - (c["in_use"] + c["tcache"]), (0, extra), "large %d" % size)
        # strings: every key, in use
        d, rc, err = run_json("strings", "-p", pid, "--min-len", "15",
                              "--top", "1000000")
        self.assertEqual(rc, 0, err)
        found = {s["string"]: s for s in d["strings"]}
        for k in keys:
            self.assertIn(k, found)
            self.assertGreaterEqual(found[k]["where"]["inuse"], 1, k)

    def test_redis_scan_names_jemalloc(self):
        self.fill()
        pid = self.srv.pid
        before = [(s, e, f.get("Rss")) for s, e, _, _, f in read_smaps(pid)]
        rc, out, err = run("heap", "-p", pid)
        self.assertEqual(rc, 0, err)
        self.assertEqual([(s, e, f.get("Rss")) for s, e, _, _, f in read_smaps(pid)],
                         before)
        self.assertIn("jemalloc heap", out)
        self.assertIn("libjemalloc.so.2", out)
        self.assertNotIn("main_arena", out)
        d, rc, err = run_json("-p", pid)
        self.assertEqual(rc, 0, err)
        self.assertEqual(d["heap"]["allocator"], "jemalloc")
        self.assertTrue(d["heap"]["supported"])


if __name__ == "__main__":
    harness.main()
