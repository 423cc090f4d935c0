"""Shared helpers for heapscan's integration tests.

A victim (fixtures/victims/*.c, built into $HS_VICTIMS) prints its own ground
truth as "key value..." lines, then "ready", then blocks on stdin.  Victim()
starts one, collects those lines and waits for "ready" (no sleeps, no
retries); closing the victim writes to its stdin (it may act on a command
line) or kills it.

run() runs the heapscan binary ($HEAPSCAN) and returns (rc, stdout, stderr).
Each test gets its own temporary directory (tmpdir()).
Exit code 77 means skipped (ctest SKIP_RETURN_CODE).
"""
import json
import os
import time
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest

HEAPSCAN = os.environ.get("HEAPSCAN", "heapscan")
VICTIMS = os.environ.get("HS_VICTIMS", "")
SOURCE = os.environ.get("HS_SOURCE", os.path.join(os.path.dirname(__file__), "..", ".."))
SKIP = 77


def skip(reason):
    print("SKIP: " + reason)
    sys.exit(SKIP)


def victim_path(name):
    return os.path.join(VICTIMS, name)


class Victim:
    """A running victim process and the facts it printed about itself."""

    def __init__(self, name, *args, env=None, preexec_fn=None, user=None):
        argv = [victim_path(name)] + [str(a) for a in args]
        if user is not None:
            argv = ["setpriv", "--reuid=%d" % user, "--regid=%d" % user,
                    "--clear-groups", "--"] + argv
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            env=env, preexec_fn=preexec_fn, text=True, bufsize=1)
        self.pid = self.proc.pid if user is None else None
        self.facts = {}      # key -> list of value strings (last line wins)
        self.lines = []      # every line before "ready"
        self.wait_ready()
        if self.pid is None:
            self.pid = int(self.facts["pid"][0])

    def wait_ready(self):
        """Reads ground-truth lines until "ready"; fails if the victim dies."""
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("victim exited before 'ready' (rc=%s)"
                                   % self.proc.wait())
            line = line.rstrip("\n")
            if line == "ready":
                return
            self.lines.append(line)
            parts = line.split()
            if parts:
                self.facts[parts[0]] = parts[1:]

    def fact(self, key, idx=0, conv=int):
        v = self.facts[key][idx]
        return conv(v, 0) if conv is int else conv(v)

    def send(self, line):
        """Sends a command line to the victim, then waits for its next ready."""
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        self.wait_ready()

    def state(self):
        """The State letter from /proc/PID/status (e.g. 'S', 'T', 't')."""
        with open("/proc/%d/status" % self.pid) as f:
            for l in f:
                if l.startswith("State:"):
                    return l.split()[1]
        return "?"

    def settled_state(self, timeout=5.0):
        """The State letter once the process has left 'R' (bounded): a
        thread heapscan just detached passes through 'R' on its way back
        into its blocking call ('S') or its group stop ('T')."""
        deadline = time.monotonic() + timeout
        st = self.state()
        while st == "R" and time.monotonic() < deadline:
            os.sched_yield()
            st = self.state()
        return st

    def settled_syscall(self, tid, timeout=5.0):
        """/proc/PID/task/TID/syscall split in words once the thread has
        gone back into a blocking call (bounded): a thread heapscan just
        let go reads "running" on its way back into it."""
        path = "/proc/%d/task/%d/syscall" % (self.pid, tid)
        deadline = time.monotonic() + timeout
        while True:
            with open(path) as f:
                words = f.read().split()
            if words[0] != "running" or time.monotonic() >= deadline:
                return words
            os.sched_yield()

    def wait_idle(self, timeout=10.0):
        """Until the main thread is blocked reading its next command: after
        "ready" it still runs for a moment (leaving printf's residue on its
        stack), so a report taken at once may differ from the next."""
        deadline = time.monotonic() + timeout
        while self.settled_syscall(self.pid)[0] != "0":
            if time.monotonic() >= deadline:
                raise AssertionError("victim %d never blocked in read()" % self.pid)
            os.sched_yield()

    def close(self):
        if self.proc.poll() is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def run(*args, env=None, input=None, timeout=240):
    """Runs heapscan; returns (rc, stdout, stderr)."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    p = subprocess.run([HEAPSCAN] + [str(a) for a in args], env=full_env,
                       input=input, capture_output=True, text=True,
                       timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def run_json(*args, **kw):
    rc, out, err = run(*(list(args) + ["--json"]), **kw)
    if rc not in (0, 1):
        raise AssertionError("heapscan %s failed rc=%d: %s" % (args, rc, err))
    return json.loads(out), rc, err


def read_smaps(pid):
    """[(start, end, perms, path, {field: value_in_bytes_or_num})] from smaps."""
    maps = []
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            parts = line.split()
            if "-" in parts[0] and len(parts) >= 5 and ":" not in parts[0]:
                s, e = parts[0].split("-")
                path = line.split(None, 5)[5].strip() if len(parts) > 5 else ""
                maps.append((int(s, 16), int(e, 16), parts[1], path, {}))
            elif parts[0].endswith(":") and parts[0] != "VmFlags:":
                key = parts[0][:-1]
                val = int(parts[1])
                if len(parts) > 2 and parts[2] == "kB":
                    val *= 1024
                maps[-1][4][key] = val
    return maps


class TmpDirTestCase(unittest.TestCase):
    """A TestCase with its own temporary directory, removed afterwards."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="hs-test-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)


def require_ptrace():
    """Skips (77) when this machine does not let us trace our children."""
    try:
        with open("/proc/sys/kernel/yama/ptrace_scope") as f:
            if int(f.read()) >= 3:
                skip("yama ptrace_scope 3 forbids ptrace")
    except FileNotFoundError:
        pass


def main():
    """Runs the file's tests.  Exit 0 when they pass, 1 when any fails, and
    77 (skipped) when every test that ran was skipped: a file whose tests
    all skip must not count as passed."""
    require_ptrace()
    if not os.path.exists(HEAPSCAN):
        skip("heapscan binary not built: " + HEAPSCAN)
    prog = unittest.main(verbosity=2, exit=False)
    res = prog.result
    if not res.wasSuccessful():
        sys.exit(1)
    if res.testsRun and len(res.skipped) == res.testsRun:
        print("SKIP: every test of this file was skipped")
        sys.exit(SKIP)
    sys.exit(0)
