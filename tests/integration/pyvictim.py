"""Python victims (fixtures/victims/py_victim.py) for the types tests.

The victim prints its own ground truth from inside (instances of its
classes counted through gc.get_objects(), the floats it made,
sys.getallocatedblocks()), then "ready", then blocks on stdin.
"""
import os
import subprocess

import harness as h

SCRIPT = os.path.join(h.SOURCE, "fixtures", "victims", "py_victim.py")
DEBIAN_PYTHON = "/usr/bin/python3"
PYENV = "/root/.pyenv/versions"


class PyVictim(h.Victim):
    """h.Victim for a Python script: same handshake, same facts."""

    def __init__(self, python, *args, env=None, script=SCRIPT):
        argv = [python, script] + [str(a) for a in args]
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, env=env, text=True,
                                     bufsize=1)
        self.facts = {}
        self.lines = []
        self.pid = self.proc.pid
        self.wait_ready()
        # after "fork", the child is the one to read
        self.pid = int(self.facts["pid"][0])

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        h.Victim.close(self)


CLASSES = os.path.join(h.SOURCE, "fixtures", "victims", "py_classes.py")
SUBINTERP = os.path.join(h.SOURCE, "fixtures", "victims", "py_subinterp.py")


def class_counts(v, kind="class"):
    """{name: count} that py_classes.py printed ("class NAME COUNT", or
    "static NAME COUNT" with kind "static")."""
    res = {}
    for line in v.lines:
        parts = line.split()
        if len(parts) == 3 and parts[0] == kind:
            res[parts[1]] = int(parts[2])
    return res


def census(rep):
    """{name: count} of a types --json report, rows of one name summed."""
    res = {}
    for r in rep["types"]:
        if r["kind"] == "python":
            res[r["type"]] = res.get(r["type"], 0) + r["count"]
    return res


def rows(rep):
    """{type name: row} of a types --json report (python rows)."""
    return {r["type"]: r for r in rep["types"] if r["kind"] == "python"}


def pyenv_pythons():
    """[(version dir, python path)] of the pyenv builds on this machine."""
    res = []
    if os.path.isdir(PYENV):
        for d in sorted(os.listdir(PYENV)):
            p = os.path.join(PYENV, d, "bin", "python3")
            if os.access(p, os.X_OK):
                res.append((d, p))
    return res
