"""--fork: reads come from a copy-on-write fork made inside the target,
which runs on meanwhile; afterwards the target is exactly as it was.

Victim: fixtures/victims/fork_victim.c (a writer thread rewriting 4096
"hs-fork-gen-NNNNNNNN" strings with one generation per pass, a sleeper in
clock_nanosleep, a reader blocked on an empty pipe, main blocked on stdin).
HEAPSCAN_TEST_HOLD=resume makes heapscan say "holding" once the snapshot
exists and go on at SIGUSR1; HEAPSCAN_TEST_HOLD=1 waits for SIGINT/SIGTERM.
"""
import ctypes
import json
import os
import re
import select
import signal
import struct
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402
from coreutil import NT_PRSTATUS, Core  # noqa: E402

SYS_TGKILL = 234  # x86_64
GEN = re.compile(r"^hs-fork-gen-(\d{8})$")


def tasks(pid):
    return sorted(int(t) for t in os.listdir("/proc/%d/task" % pid))


def children(pid):
    out = []
    for t in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/children" % (pid, t)) as f:
            out += [int(c) for c in f.read().split()]
    return out


def dying(pid):
    """A zombie, or being killed (a fatal signal puts SIGKILL in every
    thread's pending set; a core dump may still be under way)."""
    try:
        if proc_state(pid) in ("Z", "X"):
            return True
        for t in tasks(pid):
            with open("/proc/%d/task/%d/status" % (pid, t)) as f:
                for line in f:
                    if line.startswith(("SigPnd:", "ShdPnd:")) and \
                            int(line.split()[1], 16) >> (signal.SIGKILL - 1) & 1:
                        return True
    except (FileNotFoundError, ProcessLookupError):
        return True
    return False


def proc_state(pid):
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def signal_state(pid):
    """{tid: (SigPnd, ShdPnd, SigBlk, SigIgn, SigCgt)} of every thread."""
    res = {}
    for t in tasks(pid):
        with open("/proc/%d/task/%d/status" % (pid, t)) as f:
            d = dict(l.split(":", 1) for l in f if ":" in l)
        res[t] = tuple(d[k].strip() for k in ("SigPnd", "ShdPnd", "SigBlk", "SigIgn", "SigCgt"))
    return res


def thread_states(pid):
    return [proc_state_tid(pid, t) for t in tasks(pid)]


def proc_state_tid(pid, tid):
    with open("/proc/%d/task/%d/stat" % (pid, tid)) as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def ping(v):
    v.send("ping")
    return v.fact("gen"), v.fact("early"), v.fact("piperr")


def gens(strings):
    """{generation: count} of the victim's strings in a strings report."""
    res = {}
    for s in strings:
        m = GEN.match(s["string"])
        if m:
            res[int(m.group(1))] = s["count"]
    return res


def prstatus_regs(path):
    """{tid: 27 registers} from a core's NT_PRSTATUS notes."""
    res = {}
    for name, t, desc in Core(path).notes:
        if name == "CORE" and t == NT_PRSTATUS:
            tid = struct.unpack_from("<i", desc, 32)[0]
            res[tid] = struct.unpack_from("<27Q", desc, 112)
    return res


def start(args, hold):
    env = dict(os.environ, HEAPSCAN_TEST_HOLD=hold)
    p = subprocess.Popen([h.HEAPSCAN] + [str(a) for a in args], env=env, text=True,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    line = p.stderr.readline()
    if line != "heapscan: test: holding\n":
        p.kill()
        p.communicate()
        raise AssertionError("heapscan did not hold: %r" % line)
    return p


def start_at_step(k, pid, extra=()):
    """heapscan strings --fork with its guard held at step k
    (HEAPSCAN_TEST_FORK_STEP); returns (process, guard pid)."""
    env = dict(os.environ, HEAPSCAN_TEST_FORK_STEP=str(k))
    p = subprocess.Popen([h.HEAPSCAN, "strings", "--fork", "-p", str(pid)] + list(extra),
                         env=env, text=True, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    line = p.stderr.readline()
    m = re.match(r"heapscan: test: fork step (\d+) guard (\d+)\n$", line)
    if not m or int(m.group(1)) != k:
        p.kill()
        p.communicate()
        raise AssertionError("no step %d line: %r" % (k, line))
    return p, int(m.group(2))


class Fork(h.TmpDirTestCase):
    def assertUnchanged(self, v, before_tasks, before_sig):
        """Same threads, no child or zombie, same signal state, none stopped."""
        self.assertEqual(tasks(v.pid), before_tasks)
        self.assertEqual(children(v.pid), [])
        self.assertEqual(signal_state(v.pid), before_sig)
        for st in thread_states(v.pid):
            self.assertNotIn(st, ("t", "T"))
        with open("/proc/%d/status" % v.pid) as f:
            self.assertIn("TracerPid:\t0\n", f.read())
        gen, early, piperr = ping(v)
        # The interrupted clock_nanosleep and pipe read were restarted,
        # not ended: the injection restored the registers exactly.
        self.assertEqual(early, 0)
        self.assertEqual(piperr, 0)
        return gen

    def test_snapshot_while_target_runs(self):
        with h.Victim("fork_victim") as v:
            slots = v.fact("slots")
            t0, s0 = tasks(v.pid), signal_state(v.pid)
            p = start(["strings", "--fork", "-p", v.pid, "--json", "--top", "20"], "resume")
            try:
                # The snapshot exists: one child of the target, stopped by
                # us; the target itself is not stopped and answers.
                kids = children(v.pid)
                self.assertEqual(len(kids), 1)
                self.assertEqual(proc_state(kids[0]), "t")
                for st in thread_states(v.pid):
                    self.assertNotIn(st, ("t", "T"))
                g1 = ping(v)[0]
                # Overwrite every slot in the target: the snapshot must not
                # see it.
                v.send("freeze 99999999")
                self.assertEqual(v.fact("frozen"), 99999999)
            finally:
                p.send_signal(signal.SIGUSR1)
                out, err = p.communicate(timeout=120)
            self.assertEqual(p.returncode, 0, err)
            self.assertEqual(err, "")
            rep = json.loads(out)
            g = gens(rep["strings"])
            self.assertNotIn(99999999, g)
            # One instant: all slots from one pass, or two consecutive
            # passes with the writer caught between them.
            self.assertEqual(sum(g.values()), slots)
            self.assertLessEqual(len(g), 2, g)
            self.assertEqual(max(g) - min(g), len(g) - 1, g)
            # The snapshot came before the ping, so it holds no generation
            # past the one being written then: the writer counts a pass
            # only when it ends, and it may still have been in the pass
            # the snapshot caught half written (gen_done one behind).
            self.assertLessEqual(max(g), g1 + 1, (g, g1))
            self.assertGreater(rep["summary"]["stop_ms"], 0)
            self.assertLess(rep["summary"]["stop_ms"], 500)
            self.assertUnchanged(v, t0, s0)

    def test_dump_fork_consistent(self):
        with h.Victim("fork_victim") as v:
            t0, s0 = tasks(v.pid), signal_state(v.pid)
            path = os.path.join(self.tmp, "f.core")
            st, rc, err = h.run_json("dump", "--fork", "-p", v.pid, "-o", path)
            self.assertEqual(rc, 0, err)
            self.assertEqual(st["snapshot"], "fork")
            self.assertLess(st["stop_ms"], 500)
            self.assertUnchanged(v, t0, s0)
            c = Core(path)
            counts = {}
            for ph in c.loads:
                for m in re.finditer(rb"hs-fork-gen-(\d{8})\0", c.segment_bytes(ph)):
                    counts[int(m.group(1))] = counts.get(int(m.group(1)), 0) + 1
            self.assertEqual(sum(counts.values()), v.fact("slots"))
            self.assertLessEqual(len(counts), 2, counts)
            self.assertEqual(max(counts) - min(counts), len(counts) - 1)
            # The threads in the dump are the target's, not the child's.
            self.assertEqual(sorted(c.prstatus_tids()), t0)

    def test_registers_unchanged(self):
        """Threads blocked in syscalls have the very same registers in
        stop-mode dumps before and after three --fork runs (the main
        thread, where clone and wait4 were injected, included)."""
        with h.Victim("fork_victim") as v:
            blocked = [v.pid] + [int(l.split()[1]) for l in v.lines
                                 if l.startswith("thread ") and l.split()[2] != "writer"]
            # "ready" comes once the threads started, not once each is in
            # its blocking call: a first dump that found the sleeper just
            # before its clock_nanosleep would record orig_rax 230.
            def settle(expect):
                # Each thread let go is back in its blocking call before
                # the next read (a sleeper not yet scheduled since would
                # still show the call it was stopped in).
                for tid in blocked:
                    self.assertIn(v.settled_syscall(tid)[0], expect, tid)
            settle(("0", "230"))
            a = os.path.join(self.tmp, "a.core")
            b = os.path.join(self.tmp, "b.core")
            # Twice: an interrupted clock_nanosleep comes back as
            # restart_syscall (orig_rax 219), and stays that.
            for _ in range(2):
                rc, _, err = h.run("dump", "-p", v.pid, "-o", a, "--force")
                self.assertEqual(rc, 0, err)
                settle(("0", "219"))
            for _ in range(3):
                rc, _, err = h.run("scan", "--fork", "-p", v.pid)
                self.assertEqual(rc, 0, err)
                self.assertEqual(err, "")
                settle(("0", "219"))
            rc, _, err = h.run("dump", "-p", v.pid, "-o", b)
            self.assertEqual(rc, 0, err)
            ra, rb = prstatus_regs(a), prstatus_regs(b)
            for tid in blocked:
                self.assertEqual(ra[tid], rb[tid], tid)
            self.assertEqual(children(v.pid), [])
            self.assertEqual(ping(v)[1:], (0, 0))

    def test_dontfork_region_read_from_parent(self):
        with h.Victim("fork_victim", "dontfork") as v:
            rep, rc, err = h.run_json("strings", "--fork", "-p", v.pid, "--top", "50")
            self.assertEqual(rc, 0, err)
            n = {s["string"]: s["count"] for s in rep["strings"]}
            self.assertEqual(n.get("hs-fork-dontfork-marker"), v.fact("dontfork", 1))
            self.assertEqual(children(v.pid), [])

    def check_fallback(self, v, env, reason):
        t0, s0 = tasks(v.pid), signal_state(v.pid)
        rep, rc, err = h.run_json("strings", "--fork", "-p", v.pid, "--top", "20", env=env)
        self.assertEqual(rc, 0, err)
        self.assertEqual(err, "heapscan: warning: no fork snapshot: %s; the process "
                         "stays stopped while it is read\n" % reason)
        g = gens(rep["strings"])
        self.assertEqual(sum(g.values()), v.fact("slots"))
        self.assertLessEqual(len(g), 2)
        self.assertUnchanged(v, t0, s0)

    def test_seccomp_falls_back(self):
        with h.Victim("fork_victim", "seccomp") as v:
            self.check_fallback(v, None, "the process has a seccomp filter (clone may "
                                "be refused or kill it)")

    def test_no_syscall_instruction_falls_back(self):
        with h.Victim("fork_victim") as v:
            self.check_fallback(v, {"HEAPSCAN_TEST_FORK": "no-insn"},
                                "no syscall instruction was found in its code")

    def test_usage(self):
        rc, _, err = h.run("scan", "--fork", "--no-stop", "-p", "1")
        self.assertEqual(rc, 64)
        self.assertIn("--fork and --no-stop exclude each other", err)
        rc, _, err = h.run("scan", "--fork", "-c", "/nonexistent")
        self.assertEqual(rc, 64)
        self.assertIn("--fork goes with --pid", err)

    def check_signal(self, sig):
        with h.Victim("fork_victim") as v:
            t0, s0 = tasks(v.pid), signal_state(v.pid)
            p = start(["strings", "--fork", "-p", v.pid], "1")
            self.assertEqual(len(children(v.pid)), 1)
            p.send_signal(sig)
            out, err = p.communicate(timeout=60)
            self.assertEqual(p.returncode, 2, err)
            self.assertIn("interrupted; target released", err)
            self.assertEqual(out, "")
            self.assertUnchanged(v, t0, s0)

    def test_sigint_kills_snapshot(self):
        self.check_signal(signal.SIGINT)

    def test_sigterm_kills_snapshot(self):
        self.check_signal(signal.SIGTERM)

    def test_sigkill_of_heapscan(self):
        """SIGKILL cannot be handled, but the snapshot child is traced by
        heapscan's guard process, not by heapscan: the guard sees heapscan
        die, kills the child and reaps it inside the target, then exits.
        The target runs on with no child left."""
        with h.Victim("fork_victim") as v:
            t0, s0 = tasks(v.pid), signal_state(v.pid)
            p = start(["strings", "--fork", "-p", v.pid], "1")
            kids = children(v.pid)
            self.assertEqual(len(kids), 1)
            g = tracer_of(kids[0])
            self.assertNotIn(g, (0, p.pid))
            gfd = os.pidfd_open(g)
            p.kill()
            p.communicate()
            wait_exit(gfd)
            self.assertUnchanged(v, t0, s0)

    def kill_at_step(self, k, victim_args=()):
        """heapscan SIGKILLed while its guard is at step k of the fork
        dance (HEAPSCAN_TEST_FORK_STEP): the guard stops there until
        heapscan is dead, then finishes.  Whatever the step, the target
        ends as it was: same threads and signal masks, not stopped, not
        traced, no child, its blocked syscalls restarted, not ended."""
        with h.Victim("fork_victim", *victim_args) as v:
            t0, s0 = tasks(v.pid), signal_state(v.pid)
            p, g = start_at_step(k, v.pid)
            gfd = os.pidfd_open(g)
            p.kill()
            out, err = p.communicate()
            wait_exit(gfd)
            self.assertEqual(err, "")
            self.assertUnchanged(v, t0, s0)
            # The injected main thread reads its commands again.
            v.send("freeze 7")
            self.assertEqual(v.fact("frozen"), 7)

    def test_kill_at_each_step(self):
        for k in range(1, 10):
            with self.subTest(step=k):
                self.kill_at_step(k)

    def test_signal_at_each_step(self):
        """A signal for the injected thread (SIGUSR2 sent to the main
        thread with tgkill) arriving at any step of the dance is held while
        the thread runs for us and delivered once it is released: handled
        once, the blocked read restarted, the snapshot and the run
        complete."""
        libc = ctypes.CDLL(None, use_errno=True)
        for k in (1, 2, 3, 4, 5, 8, 9):
            with self.subTest(step=k), h.Victim("fork_victim") as v:
                t0, s0 = tasks(v.pid), signal_state(v.pid)
                p, g = start_at_step(k, v.pid, ("--json", "--top", "20"))
                self.assertEqual(libc.syscall(SYS_TGKILL, v.pid, v.pid, signal.SIGUSR2), 0)
                os.kill(g, signal.SIGUSR1)
                out, err = p.communicate(timeout=120)
                self.assertEqual(p.returncode, 0, err)
                self.assertEqual(err, "")
                g = gens(json.loads(out)["strings"])
                self.assertEqual(sum(g.values()), v.fact("slots"))
                self.assertUnchanged(v, t0, s0)
                self.assertEqual(v.fact("usr2"), 1)

    def test_target_killed_at_each_step(self):
        """The target SIGKILLed while the guard is at step k: heapscan says
        the process exited and exits 2 (no report), the guard ends."""
        for k in (1, 2, 3, 4, 5):
            with self.subTest(step=k), h.Victim("fork_victim") as v:
                p, g = start_at_step(k, v.pid)
                gfd = os.pidfd_open(g)
                # SIGKILL wakes every thread out of its ptrace-stop before
                # kill() returns: the guard's next request on the thread
                # fails, whatever step it is at.  (The victim cannot be
                # waited for here: its tracers have not reaped it yet.)
                os.kill(v.pid, signal.SIGKILL)
                os.kill(g, signal.SIGUSR1)
                out, err = p.communicate(timeout=120)
                wait_exit(gfd)
                self.assertEqual(p.returncode, 2, err)
                self.assertEqual(out, "")
                self.assertEqual(err, "heapscan: pid %d: the process exited while "
                                 "heapscan attached\n" % v.pid)

    def test_exec_during_fork(self):
        """The target runs execve() (from its main thread, then from
        another thread) while the snapshot is held: the report is of the
        old program, heapscan says so and exits 1; the new program runs
        on and the snapshot child is reaped in it."""
        for cmd in ("exec", "texec"):
            with self.subTest(cmd=cmd), h.Victim("fork_victim") as v:
                p = start(["strings", "--fork", "-p", v.pid, "--json", "--top", "5"],
                          "resume")
                kids = children(v.pid)
                self.assertEqual(len(kids), 1)
                gfd = os.pidfd_open(tracer_of(kids[0]))
                v.send(cmd)
                self.assertEqual(v.fact("pid"), v.pid)
                p.send_signal(signal.SIGUSR1)
                out, err = p.communicate(timeout=120)
                wait_exit(gfd)
                self.assertEqual(p.returncode, 1, err)
                self.assertEqual(err, "heapscan: warning: pid %d executed a new program "
                                 "during the run; the report is of the old one\n" % v.pid)
                json.loads(out)
                self.assertEqual(children(v.pid), [])
                for st in thread_states(v.pid):
                    self.assertNotIn(st, ("t", "T"))
                self.assertEqual(ping(v)[1:], (0, 0))

    def test_guard_killed_while_copy_is_read(self):
        """The guard SIGKILLed while heapscan holds the snapshot (outside
        any injection): the copy dies with it (PTRACE_O_EXITKILL).
        heapscan must not report a mangled heap: it says the copy was
        lost and exits 2, and reaps the dead copy inside the target
        itself, which ends as it was: no zombie child left."""
        for cmd in ("strings", "heap"):
            with self.subTest(cmd=cmd), h.Victim("fork_victim") as v:
                t0, s0 = tasks(v.pid), signal_state(v.pid)
                p = start([cmd, "--fork", "-p", v.pid], "resume")
                kids = children(v.pid)
                self.assertEqual(len(kids), 1)
                g = tracer_of(kids[0])
                self.assertNotIn(g, (0, p.pid))
                gfd, kfd = os.pidfd_open(g), os.pidfd_open(kids[0])
                os.kill(g, signal.SIGKILL)
                wait_exit(gfd)
                # The copy dies a moment after its tracer: until then it
                # could still be read whole, and the report would stand.
                wait_exit(kfd)
                p.send_signal(signal.SIGUSR1)
                out, err = p.communicate(timeout=120)
                self.assertEqual(p.returncode, 2, err)
                self.assertEqual(out, "")
                self.assertIn("the fork guard process (pid %d) was killed; heapscan "
                              "reaped the snapshot child itself\n" % g, err)
                self.assertIn("the --fork copy was lost mid-run", err)
                self.assertUnchanged(v, t0, s0)

    def test_guard_killed_at_each_step(self):
        """The guard itself SIGKILLed at step k.  heapscan, alive, takes
        the thread back from the dead guard and puts back its registers
        and mask (or, at steps 1, 6 and 7, finds them its own), kills and
        reaps any copy.  The thread runs the moment the kernel releases
        it, so at steps 2-5 and 8-9 it may execute the borrowed syscall
        and its single-step trap before heapscan stops it: then it dies of
        SIGTRAP (a race, measured in doc/fork.md; wait4 is too quick for
        heapscan to win at 8-9).  Whatever happens, heapscan ends (waiting
        for a dying leader whose other threads it held once hung it), and
        a surviving target is exactly as it was."""
        racy = {2, 3, 4, 5, 8, 9}
        for k in range(1, 10):
            with self.subTest(step=k), h.Victim("fork_victim") as v:
                t0, s0 = tasks(v.pid), signal_state(v.pid)
                p, g = start_at_step(k, v.pid)
                gfd = os.pidfd_open(g)
                os.kill(g, signal.SIGKILL)
                wait_exit(gfd)
                out, err = p.communicate(timeout=60)
                self.assertIn(p.returncode, (0, 1, 2), err)
                if v.proc.poll() is None and not dying(v.pid):
                    self.assertUnchanged(v, t0, s0)
                else:
                    self.assertIn(k, racy, err)
                    v.proc.wait(timeout=60)
                    self.assertEqual(v.proc.returncode, -signal.SIGTRAP)

    def test_target_killed_during_fork(self):
        with h.Victim("fork_victim") as v:
            p = start(["strings", "--fork", "-p", v.pid, "--json"], "resume")
            kids = children(v.pid)
            gfd = os.pidfd_open(tracer_of(kids[0]))
            os.kill(v.pid, signal.SIGKILL)
            v.proc.wait()
            p.send_signal(signal.SIGUSR1)
            out, err = p.communicate(timeout=120)
            wait_exit(gfd)
            self.assertEqual(p.returncode, 1, err)
            self.assertIn("heapscan: warning: pid %d exited during the run\n" % v.pid, err)
            json.loads(out)


def tracer_of(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("TracerPid:"):
                return int(line.split()[1])
    return 0


def wait_exit(pidfd, timeout=60):
    """A pidfd becomes readable when its process has exited."""
    try:
        r, _, _ = select.select([pidfd], [], [], timeout)
        if not r:
            raise AssertionError("the guard process did not exit")
    finally:
        os.close(pidfd)


if __name__ == "__main__":
    h.main()
