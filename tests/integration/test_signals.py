"""The target is never left stopped: not after SIGINT/SIGTERM to heapscan,
nor after SIGKILL.  HEAPSCAN_TEST_HOLD=1 makes heapscan say "holding" on
stderr once the target is stopped, then wait for a signal."""
import os
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
import harness as h


def start_held(pid):
    env = dict(os.environ, HEAPSCAN_TEST_HOLD="1")
    p = subprocess.Popen([h.HEAPSCAN, "-p", str(pid)], env=env, text=True,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    line = p.stderr.readline()
    if line.strip() != "heapscan: test: holding":
        p.kill()
        raise AssertionError("heapscan did not hold: %r" % line)
    return p


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


if __name__ == "__main__":
    h.main()
