"""A picture taken while a thread held an arena's mutex says so.

fixtures/victims/arena_lock_victim.c blocks a thread inside glibc's
malloc_stats(), which holds main_arena's mutex while it writes to a full
stderr pipe.  heapscan heap, live, on its dump and on a gdb gcore core,
reports main_arena's mutex as held (JSON mutex_held, text "mutex held")
and still walks the heap exactly; an unlocked arena is not flagged (the
pre-fork tests check mutex_held is false everywhere else).
"""
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from harness import TmpDirTestCase, Victim, main, run, run_json, victim_path  # noqa: E402


class LockVictim(Victim):
    """The victim with stderr on a pipe that is never read."""

    def __init__(self):
        self.proc = subprocess.Popen([victim_path("arena_lock_victim")],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, bufsize=1)
        self.pid = self.proc.pid
        self.facts = {}
        self.lines = []
        self.wait_ready()

    def close(self):
        super().close()
        self.proc.stderr.close()


class ArenaLockTest(TmpDirTestCase):
    def check(self, v, target):
        doc, rc, err = run_json("heap", *target)
        self.assertEqual(rc, 0, err)
        h = doc["heap"]
        self.assertTrue(h["arenas"][0]["main"])
        self.assertTrue(h["arenas"][0]["mutex_held"])
        self.assertEqual(h["problems"], [])
        sizes = {b["size"]: b["count"] for b in h["histogram"]}
        self.assertEqual(sizes.get(0x90), v.fact("kept"))
        rc, out, err = run("heap", *target)
        self.assertEqual(rc, 0, err)
        self.assertIn("mutex held", out)

    def test_live_dump_gcore(self):
        with LockVictim() as v:
            self.check(v, ["-p", v.pid])
            path = os.path.join(self.tmp, "d.core")
            _, rc, err = run_json("dump", "-p", v.pid, "-o", path)
            self.assertEqual(rc, 0, err)
            self.check(v, ["-c", path])
            if not shutil.which("gcore"):
                self.fail("gcore (gdb) is not installed")
            prefix = os.path.join(self.tmp, "g")
            p = subprocess.run(["gcore", "-o", prefix, str(v.pid)], capture_output=True,
                               text=True, timeout=240)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.check(v, ["-c", "%s.%d" % (prefix, v.pid)])


if __name__ == "__main__":
    main()
