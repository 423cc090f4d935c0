#!/usr/bin/env python3
"""SIGKILL heapscan at random moments of `heap --fork` runs and count the harm.

usage: bench/fork_kill_trials.py HEAPSCAN VICTIMS_DIR [TRIALS [RECORDS [MAX_MS [WHO]]]]

One leaky_worker RECORDS (default 2,000,000: about 200 MB of heap, so the
clone's page-table copy takes milliseconds) is started per trial; heapscan
`heap --fork -p PID` is SIGKILLed after a uniform random delay in
[0, MAX_MS] ms (default 120).  Then, once no guard process is left, the
trial counts: the target dead (and of which signal), stopped, traced, a
child left behind, or not answering a command.  Not a test (timing-based,
slow); it repeats the trials of issue 19 against a given binary.

WHO is heapscan (default) or guard: the SIGKILL goes to the heapscan-guard
process instead, the case the man page says is not covered; the delay then
counts from the guard's start.  Killing the guard also ends heapscan's run
(it reports the guard's death); heapscan is waited for before counting.
"""
import os
import random
import signal
import subprocess
import sys
import time


def children(pid):
    out = []
    for t in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/children" % (pid, t)) as f:
            out += f.read().split()
    return out


def guards():
    res = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/comm" % d) as f:
                    if f.read().strip() == "heapscan-guard":
                        res.append(int(d))
            except OSError:
                pass
    return res


def ppid(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError):
        return -1


def status_field(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return line.split()[1]
    return "?"


def main():
    hs, victims = sys.argv[1], sys.argv[2]
    trials = int(sys.argv[3]) if len(sys.argv) > 3 else 100
    records = int(sys.argv[4]) if len(sys.argv) > 4 else 2000000
    max_ms = float(sys.argv[5]) if len(sys.argv) > 5 else 120.0
    who = sys.argv[6] if len(sys.argv) > 6 else "heapscan"
    if who not in ("heapscan", "guard"):
        sys.exit("fork_kill_trials.py: WHO is heapscan or guard")
    harm = {"died": 0, "stopped": 0, "traced": 0, "child_left": 0, "no_answer": 0}
    signals = {}
    outcome = {}
    for _ in range(trials):
        v = subprocess.Popen([os.path.join(victims, "leaky_worker"), str(records)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                             bufsize=1)
        while v.stdout.readline().strip() != "ready":
            pass
        p = subprocess.Popen([hs, "heap", "--fork", "-p", str(v.pid)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if who == "guard":
            g = None
            while g is None and p.poll() is None:
                g = next((x for x in guards() if ppid(x) == p.pid), None)
            time.sleep(random.uniform(0, max_ms) / 1000.0)
            if g is not None:
                try:
                    os.kill(g, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            rc = p.wait()
            outcome[rc] = outcome.get(rc, 0) + 1
        else:
            time.sleep(random.uniform(0, max_ms) / 1000.0)
            p.kill()
            p.wait()
        deadline = time.monotonic() + 30
        while guards() and time.monotonic() < deadline:
            time.sleep(0.01)
        if v.poll() is not None:
            harm["died"] += 1
            signals[-v.returncode] = signals.get(-v.returncode, 0) + 1
            continue
        st = status_field(v.pid, "State")
        if st in ("t", "T"):
            harm["stopped"] += 1
        if status_field(v.pid, "TracerPid") != "0":
            harm["traced"] += 1
        if children(v.pid):
            harm["child_left"] += 1
        try:
            v.stdin.write("leak 1\n")
            v.stdin.flush()
            ok = False
            for line in v.stdout:
                if line.strip() == "ready":
                    ok = True
                    break
            if not ok:
                harm["no_answer"] += 1
        except OSError:
            harm["no_answer"] += 1
        v.kill()
        v.wait()
    print("trials %d, SIGKILL to %s after 0-%g ms, %d records"
          % (trials, who, max_ms, records))
    if outcome:
        print("heapscan exited " + ", ".join("%d x%d" % (rc, n)
                                             for rc, n in sorted(outcome.items())))
    for k, n in harm.items():
        print("%-11s %d" % (k, n))
    if signals:
        print("died of " + ", ".join("%s x%d" % (signal.Signals(s).name, n)
                                     for s, n in signals.items()))


if __name__ == "__main__":
    main()
