"""heapscan stacks: every thread's backtrace, live, from a heapscan dump and
from a gdb gcore of the same victim.

stacks_victim prints, for each thread, the function it is blocked in, each
function's address, and the recursion depth of one thread; every thread's
stack must contain its function (named, at that address), the recursing
thread must show stacks_recurse exactly DEPTH times, and every frame of
every thread must be named.  Where eu-stack is installed, the live pcs are
compared with its own.
"""
import os
import re
import shutil
import struct
import subprocess
import unittest

import harness
from harness import Victim, run, run_json

DEPTH = 7


def victim_truth(v):
    """{tid: function} and {function: address} from the victim's facts."""
    threads, funcs = {}, {}
    for line in v.lines:
        p = line.split()
        if p[0] == "thread":
            threads[int(p[1])] = p[2]
        elif p[0] == "func":
            funcs[p[1]] = int(p[2], 16)
    return threads, funcs


class StacksTest(harness.TmpDirTestCase):

    def check_stacks(self, doc, v, method):
        threads, funcs = victim_truth(v)
        self.assertEqual(len(threads), v.fact("threads"))
        self.assertEqual(doc["command"], "stacks")
        self.assertEqual(doc["schema_version"], 1)
        self.assertEqual(doc["method"], method)
        self.assertIsNone(doc["error"])
        got = {t["tid"]: t for t in doc["threads"]}
        self.assertEqual(set(got), set(threads))
        for tid, fn in threads.items():
            frames = got[tid]["frames"]
            names = [f["function"] for f in frames]
            self.assertIn(fn, names, "thread %d: %s" % (tid, names))
            f = frames[names.index(fn)]
            self.assertEqual(int(f["function_addr"], 16), funcs[fn])
            self.assertEqual(f["module"], harness.victim_path("stacks_victim"))
            # Return addresses point after the call, inside the function.
            self.assertGreater(int(f["pc"], 16), funcs[fn])
            # Every frame resolves to a named function (glibc has .dynsym
            # at least), and the walk ends where the stack ends.
            self.assertNotIn(None, names, "thread %d: %s" % (tid, names))
            # Only frame 0, a signal frame and the frame it interrupted
            # hold an exact pc; the others hold return addresses.
            self.assertEqual([f["activation"] for f in frames],
                             [i == 0 or "__restore_rt" in names[i - 1:i + 1]
                              for i in range(len(frames))], names)
            self.assertIn(names[-1], ("_start", "clone3", "clone", "__clone3",
                                      "__clone"), names)
            if fn == "stacks_leaf_pause":
                self.assertEqual(names.count("stacks_recurse"), DEPTH)
            if fn == "stacks_main_wait":
                self.assertIn("main", names)
            if fn == "stacks_in_handler":
                # handler <- signal frame <- ... <- the interrupted function
                i = names.index(fn)
                self.assertEqual(names[i + 1], "__restore_rt", names)
                self.assertTrue(frames[i + 2]["activation"], names)
                self.assertIn("stacks_signalled", names[i + 2:])
            # file:line from the victim's DWARF for its own functions.
            if f["file"] is not None:
                self.assertTrue(f["file"].endswith("stacks_victim.c"), f["file"])
                self.assertGreater(f["line"], 0)
        return got

    def test_live(self):
        with Victim("stacks_victim", DEPTH) as v:
            doc, rc, err = run_json("stacks", "-p", v.pid)
            self.assertEqual(rc, 0, err)
            got = self.check_stacks(doc, v, "libunwind-ptrace")
            # The target was released: no thread is traced, it answers.
            for tid in os.listdir("/proc/%d/task" % v.pid):
                with open("/proc/%d/task/%s/status" % (v.pid, tid)) as f:
                    self.assertIn("TracerPid:\t0\n", f.read())
            v.send("ping")
            self.compare_eu_stack(v, got)

    def compare_eu_stack(self, v, got):
        """Same pcs, thread by thread, as elfutils' eu-stack."""
        if not shutil.which("eu-stack"):
            return
        p = subprocess.run(["eu-stack", "-p", str(v.pid)], capture_output=True,
                           text=True, timeout=120)
        eu, tid = {}, None
        for line in p.stdout.splitlines():
            m = re.match(r"TID (\d+):", line)
            if m:
                tid = int(m.group(1))
                eu[tid] = []
            m = re.match(r"#\d+\s+0x([0-9a-f]+)", line)
            if m and tid is not None:
                eu[tid].append(int(m.group(1), 16))
        self.assertEqual(set(eu), set(got), p.stderr)
        for tid, pcs in eu.items():
            if tid == v.pid:
                continue  # moved: it answered "ping" since
            ours = [int(f["pc"], 16) for f in got[tid]["frames"]]
            self.assertEqual(ours, pcs, "thread %d" % tid)

    def test_text_and_disasm(self):
        with Victim("stacks_victim", DEPTH) as v:
            threads, funcs = victim_truth(v)
            rc, out, err = run("stacks", "-p", v.pid)
            self.assertEqual(rc, 0, err)
            for tid, fn in threads.items():
                self.assertIn('thread %d "' % tid, out)
                self.assertRegex(out, r"#\d+\s+0x[0-9a-f]{16} %s\+0x[0-9a-f]+ "
                                 r"\(stacks_victim\)" % fn)
            self.assertIn("unwound with libunwind-ptrace", out)

            doc, rc, err = run_json("stacks", "-p", v.pid, "--disasm")
            self.assertEqual(rc, 0, err)
            for t in doc["threads"]:
                for f in t["frames"]:
                    marks = [i for i in f["disasm"] if i["mark"]]
                    self.assertEqual(len(marks), 1, f)
                    m, pc = marks[0], int(f["pc"], 16)
                    if f["activation"]:
                        self.assertEqual(int(m["addr"], 16), pc)
                    else:
                        # The call that returns to pc ends exactly there.
                        self.assertEqual(int(m["addr"], 16) + m["size"], pc)
                        self.assertTrue(m["text"].startswith("call"), m)
                    addrs = [int(i["addr"], 16) for i in f["disasm"]]
                    self.assertEqual(addrs, sorted(addrs))
                # Blocked threads sit right after a syscall instruction.
                f0 = t["frames"][0]
                i0 = [i["mark"] for i in f0["disasm"]].index(True)
                self.assertGreater(i0, 0, f0)
                self.assertEqual(f0["disasm"][i0 - 1]["text"], "syscall", f0)
            rc, out, err = run("stacks", "-p", v.pid, "--disasm")
            self.assertEqual(rc, 0, err)
            self.assertRegex(out, r"=> 0x[0-9a-f]{16}:  call")

    def test_dump_and_gcore(self):
        def pcs(got):
            # The workers are blocked for good (the victim checked); the
            # main thread may still be between "ready" and its read.
            return {tid: [f["pc"] for f in t["frames"]]
                    for tid, t in got.items() if tid != v.pid}

        with Victim("stacks_victim", DEPTH) as v:
            doc, rc, err = run_json("stacks", "-p", v.pid)
            self.assertEqual(rc, 0, err)
            live = pcs(self.check_stacks(doc, v, "libunwind-ptrace"))
            dump = os.path.join(self.tmp, "v.core")
            rc, out, err = run("dump", "-p", v.pid, "-o", dump)
            self.assertEqual(rc, 0, err)
            doc, rc, err = run_json("stacks", "-c", dump)
            self.assertEqual(rc, 0, err)
            # The threads have not moved: the same frames, pc for pc.
            self.assertEqual(pcs(self.check_stacks(doc, v, "libdwfl")), live)

            self.assertTrue(shutil.which("gcore"), "scripts/setup.sh installs gdb")
            prefix = os.path.join(self.tmp, "g")
            p = subprocess.run(["gcore", "-o", prefix, str(v.pid)],
                               capture_output=True, text=True, timeout=200)
            core = "%s.%d" % (prefix, v.pid)
            if p.returncode != 0 or not os.path.exists(core):
                self.fail("gcore failed: " + p.stderr[-300:])
            doc, rc, err = run_json("stacks", "-c", core)
            self.assertEqual(rc, 0, err)
            self.assertEqual(pcs(self.check_stacks(doc, v, "libdwfl")), live)

    def test_max_frames(self):
        with Victim("stacks_victim", DEPTH) as v:
            doc, rc, err = run_json("stacks", "-p", v.pid, "--max-frames", "3")
            self.assertEqual(rc, 1, err)
            for t in doc["threads"]:
                self.assertLessEqual(len(t["frames"]), 3)
            deep = [t for t in doc["threads"] if len(t["frames"]) == 3]
            self.assertTrue(deep)
            for t in deep:
                self.assertEqual(t["error"], "frame limit 3 reached")

    def test_errors(self):
        rc, out, err = run("stacks", "-p", "999999999")
        self.assertEqual(rc, 2)
        self.assertEqual(out, "")
        self.assertEqual(len(err.strip().splitlines()), 1, err)
        self.assertTrue(err.startswith("heapscan: "), err)

        rc, out, err = run("stacks")
        self.assertEqual(rc, 64)
        rc, out, err = run("stacks", "-p", "1", "--max-frames", "0")
        self.assertEqual(rc, 64)
        self.assertIn("--max-frames", err)
        rc, out, err = run("stacks", "-p", "1", "--no-stop")
        self.assertEqual(rc, 64)
        self.assertIn("--no-stop", err)
        rc, out, err = run("stacks", "-p", "1", "--fork")
        self.assertEqual(rc, 64)
        self.assertIn("--fork", err)

        # Not a core.
        junk = os.path.join(self.tmp, "junk")
        with open(junk, "wb") as f:
            f.write(b"not an elf file" * 10)
        rc, out, err = run("stacks", "-c", junk)
        self.assertEqual(rc, 2)
        self.assertEqual(len(err.strip().splitlines()), 1, err)

        # A well-formed core without a single NT_PRSTATUS: no threads.
        core = os.path.join(self.tmp, "nothreads.core")
        with open(core, "wb") as f:
            f.write(minimal_core())
        rc, out, err = run("stacks", "-c", core)
        self.assertEqual(rc, 2, err)
        self.assertEqual(out, "")
        # The core reader may warn first; the error itself is one line.
        lines = err.strip().splitlines()
        self.assertTrue(all(l.startswith("heapscan: ") for l in lines), err)
        errors = [l for l in lines if not l.startswith("heapscan: warning: ")]
        self.assertEqual(len(errors), 1, err)
        self.assertIn("no threads", errors[0])


class StacksDocTest(unittest.TestCase):

    def test_every_option_in_man_page(self):
        with open(os.path.join(harness.SOURCE, "doc", "heapscan.1")) as f:
            man = f.read().replace("\\-", "-")
        self.assertIn(".SS heapscan stacks", man)
        rc, out, err = run("stacks", "--help")
        self.assertEqual(rc, 0)
        for opt in set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", out)):
            self.assertIn(opt, man, opt)
        rc, out, err = run("--help")
        self.assertIn("stacks", out)


def minimal_core():
    """An x86_64 ET_CORE with one PT_NOTE holding only NT_PRPSINFO."""
    desc = bytearray(136)
    struct.pack_into("<i", desc, 24, 4242)
    desc[40:44] = b"nope"
    note = struct.pack("<III", 5, len(desc), 3) + b"CORE\0\0\0\0" + bytes(desc)
    ehsize, phsize = 64, 56
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    eh = ident + struct.pack("<HHIQQQIHHHHHH", 4, 62, 1, 0, ehsize, 0, 0,
                             ehsize, phsize, 1, 0, 0, 0)
    ph = struct.pack("<IIQQQQQQ", 4, 0, ehsize + phsize, 0, 0, len(note), 0, 4)
    return eh + ph + note


if __name__ == "__main__":
    harness.main()
