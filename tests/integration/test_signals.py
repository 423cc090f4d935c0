"""The target is never left stopped: not after SIGINT/SIGTERM to heapscan,
nor after SIGKILL.  HEAPSCAN_TEST_HOLD=1 makes heapscan say "holding" on
stderr once the target is stopped, then wait for a signal."""
import os
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
import harness as h


def start_held(pid, preexec_fn=None):
    env = dict(os.environ, HEAPSCAN_TEST_HOLD="1")
    p = subprocess.Popen([h.HEAPSCAN, "-p", str(pid)], env=env, text=True,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         preexec_fn=preexec_fn)
    line = p.stderr.readline()
    if line.strip() != "heapscan: test: holding":
        p.kill()
        raise AssertionError("heapscan did not hold: %r" % line)
    return p


def signal_masks(pid):
    """The SigBlk/SigIgn/SigCgt sets of /proc/PID/status, as sets of numbers."""
    res = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            key, _, val = line.partition(":")
            if key in ("SigBlk", "SigIgn", "SigCgt"):
                bits = int(val.strip(), 16)
                res[key] = {n for n in range(1, 65) if bits >> (n - 1) & 1}
    return res


def thread_states(pid):
    states = []
    for tid in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
            states.append(f.read().rsplit(")", 1)[1].split()[0])
    return states


class Signals(h.TmpDirTestCase):
    def check_signal(self, sig):
        with h.Victim("threads_victim", 2) as v:
            p = start_held(v.pid)
            # While heapscan holds it, every thread is in a tracing stop.
            self.assertEqual(thread_states(v.pid), ["t"] * 3)
            p.send_signal(sig)
            out, err = p.communicate(timeout=60)
            self.assertEqual(p.returncode, 2)
            self.assertIn("interrupted; target released", err)
            self.assertEqual(out, "")
            self.assertReleased(v.pid)
            v.send("ping")

    def assertReleased(self, pid):
        # No thread in a tracing stop, no tracer.  (A thread may be briefly
        # 'R' while its interrupted futex wait restarts, so not == 'S'.)
        for st in thread_states(pid):
            self.assertNotIn(st, ("t", "T"))
        with open("/proc/%d/status" % pid) as f:
            self.assertIn("TracerPid:\t0\n", f.read())

    def test_sigint_releases_target(self):
        self.check_signal(signal.SIGINT)

    def test_sigterm_releases_target(self):
        self.check_signal(signal.SIGTERM)

    def test_sigkill_of_heapscan_releases_target(self):
        with h.Victim("threads_victim", 2) as v:
            p = start_held(v.pid)
            self.assertEqual(thread_states(v.pid), ["t"] * 3)
            p.kill()
            p.wait()
            p.stdout.close()
            p.stderr.close()
            # The kernel detached every thread when the tracer died.
            v.send("ping")
            self.assertReleased(v.pid)

    def test_signal_pending_at_exec(self):
        # The loader's window made deterministic: SIGINT blocked and
        # pending before execve() (both survive it).  heapscan must take
        # it at its first instruction of its own and stop before touching
        # the target, not run deaf to it with the inherited mask.
        def pend():
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
            os.kill(os.getpid(), signal.SIGINT)
        with h.Victim("threads_victim", 2) as v:
            p = subprocess.run([h.HEAPSCAN, "-p", str(v.pid)], preexec_fn=pend,
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertEqual(p.stderr, "heapscan: interrupted\n")
            self.assertEqual(p.stdout, "")
            self.assertReleased(v.pid)
            v.send("ping")

    def test_inherited_mask_and_nohup(self):
        # Started with SIGINT/SIGTERM/SIGHUP blocked and SIGHUP ignored (as
        # under nohup): while it holds the target, SIGINT and SIGTERM are
        # caught and unblocked, SIGHUP stays ignored; SIGTERM still
        # releases the target.
        def prep():
            signal.pthread_sigmask(signal.SIG_BLOCK,
                                   {signal.SIGINT, signal.SIGTERM, signal.SIGHUP})
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
        with h.Victim("threads_victim", 2) as v:
            p = start_held(v.pid, preexec_fn=prep)
            m = signal_masks(p.pid)
            self.assertIn(signal.SIGHUP, m["SigIgn"])
            self.assertLessEqual({signal.SIGINT, signal.SIGTERM}, m["SigCgt"])
            p.send_signal(signal.SIGHUP)
            p.send_signal(signal.SIGTERM)
            out, err = p.communicate(timeout=60)
            self.assertEqual(p.returncode, 2)
            self.assertIn("interrupted; target released", err)
            self.assertReleased(v.pid)
            v.send("ping")
        with h.Victim("threads_victim", 2) as v:
            p = start_held(v.pid)
            m = signal_masks(p.pid)
            self.assertLessEqual({signal.SIGINT, signal.SIGTERM, signal.SIGHUP},
                                 m["SigCgt"])
            p.send_signal(signal.SIGHUP)
            out, err = p.communicate(timeout=60)
            self.assertEqual(p.returncode, 2)
            self.assertIn("interrupted; target released", err)
            self.assertReleased(v.pid)


if __name__ == "__main__":
    h.main()
