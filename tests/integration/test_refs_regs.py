"""heapscan show ADDR --refs: references held in thread registers.

Victim: fixtures/victims/regs_victim.c.  It mallocs a buffer (fact "buf
USER CHUNK_SIZE") and starts a thread (fact "reader TID") blocked in
read(pipe, buf + 16, 64) on a pipe nobody writes; it says "ready" only
after /proc/self/task/TID/syscall showed that read with buf + 16 as its
second argument (fact "reading TID ADDR").  The saved rsi of that thread is
then buf + 16, so show on buf must report "thread TID register rsi" at
offset 0x10, live and on a heapscan dump of the victim.  Memory references
are whatever they are (the thread's stack may hold buf too): only their
shape is checked.
"""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import Victim, run, run_json  # noqa: E402


def truth(v):
    t = {"buf": v.fact("buf", 0), "size": v.fact("buf", 1),
         "tid": v.fact("reader"), "pid": v.fact("pid")}
    # the victim's own check of the thread's syscall arguments
    assert v.fact("reading", 0) == t["tid"]
    assert v.fact("reading", 1) == t["buf"] + 16
    return t


def hx(a):
    return "0x%x" % a


class RefsRegsTest(harness.TmpDirTestCase):

    def show(self, t, target, *args, rc_ok=(0,)):
        d, rc, err = run_json("show", hx(t["buf"]), "--refs", *(list(args) + target))
        self.assertIn(rc, rc_ok, err)
        self.assertEqual(d["schema_version"], 1)
        return d

    def check_json(self, d, t, nthreads=2):
        """The chunk is buf's; rsi of the reader is among the register refs,
        every register ref is consistent, memory refs keep their shape."""
        self.assertEqual(int(d["chunk"]["user"], 16), t["buf"])
        self.assertEqual(d["chunk"]["size"], t["size"])
        r = d["refs"]
        lo, hi = int(r["target_lo"], 16), int(r["target_hi"], 16)
        self.assertEqual(lo, t["buf"] - 16)
        self.assertEqual(hi, t["buf"] - 16 + t["size"])
        self.assertEqual(r["registers"]["threads"], nthreads)
        self.assertEqual(r["registers"]["threads_without_registers"], 0)
        regs = [x for x in r["refs"] if x["kind"] == "register"]
        mem = [x for x in r["refs"] if x["kind"] == "memory"]
        self.assertEqual(len(regs) + len(mem), len(r["refs"]))
        self.assertEqual(r["registers"]["found"], len(regs))
        for x in regs:
            v = int(x["value"], 16)
            self.assertTrue(lo <= v < hi, x)
            self.assertEqual(x["offset"], v - t["buf"])
            self.assertIn(x["tid"], (t["pid"], t["tid"]))
        hit = [x for x in regs if x["tid"] == t["tid"] and x["register"] == "rsi"]
        self.assertEqual(len(hit), 1, regs)
        self.assertEqual(int(hit[0]["value"], 16), t["buf"] + 16)
        self.assertEqual(hit[0]["offset"], 0x10)
        for x in mem:
            self.assertTrue(lo <= int(x["value"], 16) < hi, x)
            self.assertIn("at", x)
            self.assertIn("class", x)
        return regs, mem

    def check_text(self, t, target):
        rc, out, err = run("show", hx(t["buf"]), "--refs", *target)
        self.assertEqual(rc, 0, err)
        self.assertIn("  thread %d register rsi = %s (+0x10)\n"
                      % (t["tid"], hx(t["buf"] + 16)), out)
        self.assertRegex(out, r"(?m)^registers of 2 threads: [1-9]\d* points? into it$")
        # register lines come after the references header, inside the section
        self.assertLess(out.index("references to "),
                        out.index("thread %d register rsi" % t["tid"]))
        return out

    def test_live(self):
        with Victim("regs_victim") as v:
            t = truth(v)
            self.check_json(self.show(t, ["-p", v.pid]), t)
            self.check_text(t, ["-p", v.pid])
            # the reader is still blocked in its read after being let go
            self.assertEqual(v.settled_state(), "S")
            f = v.settled_syscall(t["tid"])
            self.assertEqual(int(f[0]), 0)
            self.assertEqual(int(f[2], 16), t["buf"] + 16)

    def test_core(self):
        with Victim("regs_victim") as v:
            t = truth(v)
            core = os.path.join(self.tmp, "v.core")
            rc, out, err = run("dump", "-p", v.pid, "-o", core)
            self.assertEqual(rc, 0, err)
        # the victim is gone: everything below comes from the file
        self.check_json(self.show(t, ["-c", core]), t)
        self.check_text(t, ["-c", core])

    def test_limits_do_not_apply(self):
        """A memory scan cut by --refs-bytes or --refs-max still reports every
        register hit, and register hits do not count as results."""
        with Victim("regs_victim") as v:
            t = truth(v)
            d = self.show(t, ["-p", v.pid], "--refs-bytes", "4096", rc_ok=(1,))
            self.assertEqual(d["refs"]["cut"], "bytes")
            self.assertEqual(d["refs"]["scanned_bytes"], 4096)
            regs, _ = self.check_json(d, t)
            full = self.show(t, ["-p", v.pid])
            self.assertEqual(sorted((x["tid"], x["register"]) for x in regs),
                             sorted((x["tid"], x["register"]) for x in full["refs"]["refs"]
                                    if x["kind"] == "register"))
            d = self.show(t, ["-p", v.pid], "--refs-max", "1", rc_ok=(0, 1))
            mem = [x for x in d["refs"]["refs"] if x["kind"] == "memory"]
            self.assertLessEqual(len(mem), 1)
            self.check_json(d, t)

    def test_no_stop(self):
        """--no-stop reads no registers, and says so."""
        with Victim("regs_victim") as v:
            t = truth(v)
            d, rc, err = run_json("show", hx(t["buf"]), "--refs", "--no-stop",
                                  "-p", v.pid)
            self.assertIn(rc, (0, 1), err)
            g = d["refs"]["registers"]
            self.assertEqual(g["threads"], 0)
            self.assertEqual(g["threads_without_registers"], 2)
            self.assertEqual([x for x in d["refs"]["refs"] if x["kind"] == "register"], [])
            rc, out, err = run("show", hx(t["buf"]), "--refs", "--no-stop", "-p", v.pid)
            self.assertIn("2 threads without registers", out)
            self.assertNotRegex(out, re.compile(r"register rsi"))


if __name__ == "__main__":
    harness.main()
