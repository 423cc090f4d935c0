"""Hostile input: damaged cores and non-regular files.

Each mutant is made from fixtures/cores/tiny.core.xz (a heapscan dump of
corrupt_victim; its ground truth is fixtures/cores/tiny.facts, regenerated
with it by fixtures/fuzz/make-seeds.py).  heapscan runs under an address
space limit (RLIMIT_AS 1 GiB) and a time limit: it must end with its
documented exit code and a clear line, within a few seconds and a few
hundred MB, whatever the core claims.
"""
import lzma
import os
import resource
import signal
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import HEAPSCAN, SOURCE, TmpDirTestCase, main, run, run_json  # noqa: E402

FIXTURE = os.path.join(SOURCE, "fixtures", "cores", "tiny.core.xz")
FACTS = os.path.join(SOURCE, "fixtures", "cores", "tiny.facts")
PT_LOAD, PT_NOTE = 1, 4
AS_LIMIT = 1 << 30
MAXRSS_KB = 400 * 1024   # ASan builds take more than plain ones
TIME_LIMIT = 20.0


def facts():
    out = {}
    with open(FACTS) as f:
        for line in f:
            k, *v = line.split()
            out[k] = v
    return out


def phdrs(d):
    phoff, = struct.unpack_from("<Q", d, 32)
    phnum, = struct.unpack_from("<H", d, 56)
    for i in range(phnum):
        o = phoff + 56 * i
        t, _, off, va, _, fs, ms, _ = struct.unpack_from("<IIQQQQQQ", d, o)
        yield dict(o=o, type=t, off=off, vaddr=va, filesz=fs, memsz=ms)


def limited():
    resource.setrlimit(resource.RLIMIT_AS, (AS_LIMIT, AS_LIMIT))


_ASAN = None


def asan_build():
    """An ASan build reserves terabytes of shadow address space, which
    RLIMIT_AS forbids: it is bounded by ASan's own RSS limit instead."""
    global _ASAN
    if _ASAN is None:
        p = subprocess.run([HEAPSCAN, "--version"], capture_output=True, text=True,
                           preexec_fn=limited)
        _ASAN = p.returncode != 0 and "AddressSanitizer" in p.stderr
    return _ASAN


def run_bounded(*args, timeout=60):
    """Runs heapscan with RLIMIT_AS (ASan builds: hard_rss_limit_mb);
    returns (rc, out, err, seconds, maxrss_kb)."""
    env = dict(os.environ)
    if asan_build():
        env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") +
                               ":hard_rss_limit_mb=%d" % (AS_LIMIT >> 20)).lstrip(":")
    t0 = time.monotonic()
    p = subprocess.Popen([HEAPSCAN] + [str(a) for a in args], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env,
                         preexec_fn=None if asan_build() else limited)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        raise AssertionError("heapscan %s still running after %d s" % (args, timeout))
    secs = time.monotonic() - t0
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return p.returncode, out, err, secs, ru.ru_maxrss


class HostileCoreTest(TmpDirTestCase):
    def setUp(self):
        super().setUp()
        with lzma.open(FIXTURE) as f:
            self.core = bytearray(f.read())
        self.facts = facts()

    def write(self, name, data):
        path = os.path.join(self.tmp, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def assert_bounded(self, args, rc_want, err_needle):
        rc, out, err, secs, rss = run_bounded(*args)
        self.assertEqual(rc, rc_want, "%s: rc %d, stderr %s" % (args, rc, err[-600:]))
        self.assertLess(secs, TIME_LIMIT, args)
        self.assertLess(rss, MAXRSS_KB, args)
        self.assertIn(err_needle, err, args)
        self.assertNotIn("Sanitizer", err, args)
        return out, err

    def test_fixture_ground_truth(self):
        """The fixture itself reads back: main_arena is the victim's."""
        path = self.write("tiny.core", self.core)
        out, rc, err = run_json("heap", "-c", path)
        self.assertEqual(rc, 0, err)
        self.assertEqual(int(out["heap"]["main_arena"], 16),
                         int(self.facts["main_arena"][0], 16))
        self.assertEqual(out["heap"]["problems_total"], 0)
        sizes = {h["size"]: h["count"] for h in out["heap"]["histogram"]}
        self.assertEqual(sizes[int(self.facts["keep"][0], 16)], int(self.facts["keep"][1]))

    def test_huge_memsz_note_past_eof(self):
        """A PT_NOTE past the end of the file and a segment claiming
        p_memsz 0x5e000000002000 (once 24 GB and the OOM killer)."""
        top = int(self.facts["top"][0], 16)
        d = bytearray(self.core)
        hit = False
        for p in phdrs(d):
            if p["type"] == PT_NOTE:
                struct.pack_into("<Q", d, p["o"] + 8, len(d) + 0x1000)
            elif p["type"] == PT_LOAD and p["vaddr"] <= top < p["vaddr"] + p["memsz"]:
                struct.pack_into("<Q", d, p["o"] + 40, 0x5e000000002000)
                hit = True
        self.assertTrue(hit)
        path = self.write("huge.core", d)
        for cmd in ("strings", "scan", "heap"):
            self.assert_bounded((cmd, "-c", path), 1 if cmd != "heap" else 2,
                                "past the end of the file")

    def test_huge_memsz_every_segment(self):
        """Every segment claims 2^40 bytes more than the file holds."""
        d = bytearray(self.core)
        for p in phdrs(d):
            if p["type"] == PT_LOAD:
                struct.pack_into("<Q", d, p["o"] + 40, p["memsz"] + (1 << 40))
        path = self.write("huge2.core", d)
        for cmd in ("strings", "scan"):
            self.assert_bounded((cmd, "-c", path), 1, "")

    def test_many_segments(self):
        """65535 segments of 64 GiB holes each: the work and memory
        follow the file, not the address space it describes."""
        n = 65535
        ph = bytearray()
        for i in range(n):
            ph += struct.pack("<IIQQQQQQ", PT_LOAD, 6, 0, 0x100000000 + (i << 36), 0,
                              0, 1 << 36, 0x1000)
        ehdr = bytearray(self.core[:64])
        struct.pack_into("<Q", ehdr, 32, 64)           # e_phoff
        struct.pack_into("<Q", ehdr, 40, 0)            # e_shoff
        struct.pack_into("<HHHH", ehdr, 56, n, 64, 0, 0)
        path = self.write("many.core", ehdr + ph)
        for cmd in ("strings", "scan"):
            self.assert_bounded((cmd, "-c", path), 1, "no thread")

    def test_prstatus_all_ff(self):
        """NT_PRSTATUS filled with 0xff: no leak (libdwfl's, avoided), a
        named corruption, exit 1."""
        d = bytearray(self.core)
        for p in phdrs(d):
            if p["type"] != PT_NOTE:
                continue
            pos, end = p["off"], p["off"] + p["filesz"]
            while pos + 12 <= end:
                nsz, dsz, t = struct.unpack_from("<III", d, pos)
                name = bytes(d[pos + 12:pos + 12 + nsz]).rstrip(b"\0")
                desc = pos + 12 + ((nsz + 3) & ~3)
                if t == 1 and name == b"CORE":
                    d[desc:desc + dsz] = b"\xff" * dsz
                pos = desc + ((dsz + 3) & ~3)
        path = self.write("prs.core", d)
        out, err = self.assert_bounded(("stacks", "-c", path), 1, "corrupt")
        self.assertIn("corrupt NT_PRSTATUS", out)

    def test_backing_file_is_a_fifo(self):
        """A mapped file the core names turns out to be a FIFO: the core
        opens without waiting for a writer."""
        exe = b"/opt/heapscan-fixtures/build/victims/corrupt_victi"
        self.assertIn(exe + b"\0", self.core)
        fifo = os.path.join(self.tmp, "f").encode()
        fifo += b"x" * (len(exe) - len(fifo))
        if len(fifo) != len(exe):
            self.skipTest("temporary directory path too long")
        os.mkfifo(fifo)
        path = self.write("fifo-exe.core", bytes(self.core).replace(exe, fifo))
        self.assert_bounded(("scan", "-c", path), 0, "")

    def test_fifo_refused(self):
        fifo = os.path.join(self.tmp, "fifo")
        os.mkfifo(fifo)
        for args in (("scan", "-c", fifo), ("strings", "-c", fifo),
                     ("stacks", "-c", fifo), ("diff", fifo, fifo)):
            rc, out, err, secs, _ = run_bounded(*args, timeout=30)
            self.assertEqual(rc, 2, (args, err))
            self.assertLess(secs, 10, args)
            self.assertIn("not a regular file", err, args)
            self.assertEqual(err.count("\n"), 1, (args, err))
            self.assertEqual(out, "", args)

    def test_sigint_ends_a_run_cleanly(self):
        """SIGINT during a core analysis: heapscan stops at its next poll
        (exit 2 with one line), not by the default action."""
        d = bytearray(self.core)
        for p in phdrs(d):
            if p["type"] == PT_LOAD:
                struct.pack_into("<Q", d, p["o"] + 40, p["memsz"] + (1 << 40))
        path = self.write("sig.core", d)
        env = dict(os.environ, HEAPSCAN_TEST_HOLD="1")
        p = subprocess.Popen([HEAPSCAN, "strings", "-c", path], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env)
        try:
            for _ in range(50):          # warnings, then the hold's line
                line = p.stderr.readline()
                if not line or "test: holding" in line:
                    break
            self.assertIn("test: holding", line)
            p.send_signal(signal.SIGINT)
            out, err = p.communicate(timeout=30)
        finally:
            if p.poll() is None:
                p.kill()
        self.assertEqual(p.returncode, 2, err)
        self.assertIn("interrupted", err)


if __name__ == "__main__":
    main()
