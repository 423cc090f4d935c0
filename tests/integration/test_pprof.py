"""heapscan snapshot/watch --format pprof against growth_victim and leaky_worker.

Two checks of every profile: an independent decode here (gzip, then the
protobuf wire format read field by field against profile.proto's numbers)
compares each sample with the victim's own figures; and Debian's `go tool
pprof` (golang-go) must read the files: `-top` lists the items and
`-top -diff_base A B` names the leak, with the exact delta the victim
printed, as the top growth.
"""
import gzip
import os
import re
import shutil
import stat
import subprocess
import tempfile
import time

import harness
from harness import Victim, run

N = 1000

# ---- a tiny protobuf reader (wire types 0 and 2 are all pprof uses) ----


def varint(buf, i):
    v = shift = 0
    while True:
        b = buf[i]
        i += 1
        v |= (b & 0x7f) << shift
        shift += 7
        if not b & 0x80:
            return v, i


def fields(buf):
    """[(field, value)] of one message; value is int or bytes."""
    out, i = [], 0
    while i < len(buf):
        key, i = varint(buf, i)
        f, wt = key >> 3, key & 7
        if wt == 0:
            v, i = varint(buf, i)
        elif wt == 2:
            n, i = varint(buf, i)
            v = buf[i:i + n]
            i += n
            assert len(v) == n, "truncated field"
        else:
            raise AssertionError("unexpected wire type %d" % wt)
        out.append((f, v))
    return out


def packed(v):
    if isinstance(v, int):
        return [v]
    out, i = [], 0
    while i < len(v):
        x, i = varint(v, i)
        out.append(x)
    return out


def decode(path):
    """The profile as a dict: sample_types [(type, unit)], samples
    [(frames leaf first, [values], {label: value})], time, duration,
    comments, period_type."""
    with open(path, "rb") as f:
        raw = f.read()
    assert raw[:2] == b"\x1f\x8b", "not gzip"
    top = fields(gzip.decompress(raw))
    strs = [v.decode() for f, v in top if f == 6]
    assert strs[0] == ""
    funcs, locs = {}, {}
    for f, v in top:
        if f == 5:
            d = dict(fields(v))
            funcs[d[1]] = strs[d.get(2, 0)]
    for f, v in top:
        if f == 4:
            fl = fields(v)
            lid = dict(fl)[1]
            lines = [dict(fields(l)) for k, l in fl if k == 4]
            locs[lid] = funcs[lines[0][1]]
    p = {"sample_types": [], "samples": [], "comments": [],
         "time": 0, "duration": 0, "mappings": []}
    for f, v in top:
        if f == 1:
            d = dict(fields(v))
            p["sample_types"].append((strs[d[1]], strs[d[2]]))
        elif f == 2:
            ids, vals, labels = [], [], {}
            for k, x in fields(v):
                if k == 1:
                    ids += packed(x)
                elif k == 2:
                    vals += packed(x)
                elif k == 3:
                    l = dict(fields(x))
                    labels[strs[l[1]]] = strs[l[2]] if l.get(2) else l.get(3, 0)
            p["samples"].append(([locs[i] for i in ids], vals, labels))
        elif f == 3:
            d = dict(fields(v))
            p["mappings"].append((d[1], strs[d.get(5, 0)], d.get(7, 0)))
        elif f == 9:
            p["time"] = v
        elif f == 10:
            p["duration"] = v
        elif f == 11:
            d = dict(fields(v))
            p["period_type"] = (strs[d[1]], strs[d[2]])
        elif f == 13:
            p["comments"] += [strs[i] for i in packed(v)]
    return p


def quoted(s):
    return '"%s"' % s


# ---- go tool pprof ------------------------------------------------------

GO = shutil.which("go")


def pprof_top(home, *args):
    """{name: (flat, cum)} of `go tool pprof -top ARGS`, and the first node."""
    env = dict(os.environ, HOME=home, GOCACHE=os.path.join(home, "cache"),
               GOPATH=os.path.join(home, "gopath"), GOTOOLCHAIN="local",
               GOPROXY="off", GOFLAGS="")
    p = subprocess.run([GO, "tool", "pprof", "-top", "-nodecount=100000",
                        "-nodefraction=0", "-edgefraction=0"] + list(args),
                       capture_output=True, text=True, env=env, timeout=120)
    if p.returncode != 0:
        raise AssertionError("go tool pprof %s: %s" % (args, p.stderr))
    nodes, first = {}, None
    started = False
    for line in p.stdout.splitlines():
        if re.match(r"\s*flat\s+flat%", line):
            started = True
            continue
        if not started or not line.strip():
            continue
        m = re.match(r"\s*(-?\d+)B?\s+\S+%\s+\S+%\s+(-?\d+)B?\s+\S+%\s+(.*)$", line)
        assert m, "unparsed pprof line: %r" % line
        name = m.group(3)
        nodes[name] = (int(m.group(1)), int(m.group(2)))
        if first is None:
            first = name
    return nodes, first


class PprofTest(harness.TmpDirTestCase):

    def path(self, name):
        return os.path.join(self.tmp, name)

    def snap(self, v, name, *extra):
        p = self.path(name)
        rc, out, err = run("snapshot", "-p", v.pid, "--format", "pprof", "-o", p, *extra)
        self.assertEqual(rc, 0, err)
        self.assertIn("wrote " + p + " (pprof", out)
        return p

    def need_go(self):
        if not GO:
            self.skipTest("no go toolchain (golang-go; scripts/setup.sh installs it)")

    def sample(self, prof, leaf):
        got = [s for s in prof["samples"] if s[0][0] == leaf]
        self.assertEqual(len(got), 1, (leaf, [s[0] for s in prof["samples"]][:20]))
        return got[0]

    def check_victim_profile(self, v, prof, arena_frames):
        """The items growth_victim leaked, exact, with their frames."""
        recs = v.fact("records")
        size = v.fact("chunk_size")
        self.assertEqual(prof["sample_types"],
                         [("inuse_objects", "count"), ("inuse_space", "bytes")])
        self.assertEqual(prof["period_type"], ("space", "bytes"))
        for key in ("string1", "string2"):
            s = v.facts[key][0]
            frames, vals, labels = self.sample(prof, quoted(s))
            self.assertEqual(frames, [quoted(s), "strings"])
            self.assertEqual(vals, [recs, recs * len(s)])
        got = [s for s in prof["samples"]
               if s[0][0] == "chunk 0x%x" % size and s[0][2] == arena_frames[1]]
        self.assertEqual(len(got), 1, got)
        frames, vals, labels = got[0]
        self.assertEqual(frames[2:], arena_frames[1:])
        if arena_frames[0] == "main_arena":
            self.assertEqual(frames[1], "main_arena")
        else:
            self.assertRegex(frames[1], r"^arena [1-9]\d*$")
        # other allocations of this size may exist; the records are there
        self.assertGreaterEqual(vals[0], recs)
        self.assertEqual(vals[1], vals[0] * size)
        self.assertEqual(len(prof["mappings"]), 1)
        self.assertEqual(os.path.realpath(prof["mappings"][0][1]),
                         os.path.realpath(harness.victim_path("growth_victim")))
        self.assertEqual(prof["mappings"][0][2], 1)   # has_functions
        for frames, vals, labels in prof["samples"]:
            self.assertEqual(labels["pid"], v.pid)
            self.assertEqual(labels["comm"], "growth_victim")
            self.assertEqual(os.path.realpath(labels["exe"]),
                             os.path.realpath(harness.victim_path("growth_victim")))
            self.assertEqual(len(vals), 2)

    def test_snapshot_decodes(self):
        with Victim("growth_victim") as v:
            t0 = time.time_ns()
            a = self.snap(v, "a.pb.gz")
            t1 = time.time_ns()
            self.assertEqual(stat.S_IMODE(os.stat(a).st_mode), 0o600)
            prof = decode(a)
            self.assertTrue(t0 <= prof["time"] <= t1, (t0, prof["time"], t1))
            self.assertGreater(prof["duration"], 0)
            self.assertLess(prof["duration"], t1 - t0)
            self.assertTrue(any("pid %d" % v.pid in c for c in prof["comments"]),
                            prof["comments"])
            self.check_victim_profile(v, prof, ["main_arena", "heap", "glibc malloc"])
            # no temporary file left next to it
            self.assertEqual(os.listdir(self.tmp), ["a.pb.gz"])
            # -o -: the same profile on stdout (a pipe)
            p = subprocess.run([harness.HEAPSCAN, "snapshot", "-p", str(v.pid),
                                "--format", "pprof", "-o", "-"],
                               capture_output=True, timeout=120)
            self.assertEqual(p.returncode, 0, p.stderr)
            with open(self.path("stdout.pb.gz"), "wb") as f:
                f.write(p.stdout)
            self.check_victim_profile(v, decode(self.path("stdout.pb.gz")),
                                      ["main_arena", "heap", "glibc malloc"])

    def test_diff_base_names_the_leak(self):
        self.need_go()
        for mode in ("main", "thread"):
            with self.subTest(mode=mode), Victim("growth_victim", mode) as v:
                a = self.snap(v, mode + "-a.pb.gz")
                v.send("leak %d" % N)
                b = self.snap(v, mode + "-b.pb.gz")
                self.check_victim_profile(
                    v, decode(b), ["main_arena", "heap", "glibc malloc"] if mode == "main"
                    else ["arena N", "arena", "glibc malloc"])
                size = v.fact("chunk_size")
                s1, s2 = v.facts["string1"][0], v.facts["string2"][0]
                chunk = "chunk 0x%x" % size
                # plain -top reads the profile: the records are all there
                nodes, first = pprof_top(self.tmp, "-unit=B", b)
                self.assertEqual(nodes[quoted(s1)][0], v.fact("records") * len(s1))
                # bytes: the records' chunk size is the top growth, exact
                nodes, first = pprof_top(self.tmp, "-unit=B", "-diff_base", a, b)
                self.assertEqual(first, chunk)
                self.assertEqual(nodes[chunk], (N * size, N * size))
                self.assertEqual(nodes["glibc malloc"][1], N * size)
                self.assertEqual(nodes["heap" if mode == "main" else "arena"][1], N * size)
                if mode == "thread":
                    arenas = [k for k in nodes if re.match(r"arena \d+$", k)]
                    self.assertEqual([nodes[k][1] for k in arenas], [N * size])
                self.assertEqual(nodes[quoted(s1)][0], N * len(s1))
                self.assertEqual(nodes[quoted(s2)][0], N * len(s2))
                # objects: N of each
                nodes, first = pprof_top(self.tmp, "-sample_index=inuse_objects",
                                         "-diff_base", a, b)
                for name in (chunk, quoted(s1), quoted(s2)):
                    self.assertEqual(nodes[name][0], N)

    def test_leaky_worker_top_growth(self):
        """The demo worker: under the strings view the top -diff_base line is
        "couchbase.context_info" with the victim's own delta."""
        self.need_go()
        with Victim("leaky_worker", 20000) as v:
            a = self.snap(v, "a.pb.gz")
            before = int(v.facts["string1"][1])
            v.send("leak %d" % N)
            b = self.snap(v, "b.pb.gz")
            s1, s2 = v.facts["string1"][0], v.facts["string2"][0]
            delta = int(v.facts["string1"][1]) - before
            self.assertEqual(delta, N)
            nodes, first = pprof_top(self.tmp, "-unit=B", "-focus=^strings$",
                                     "-diff_base", a, b)
            self.assertEqual(first, quoted(s1))
            self.assertEqual(nodes[quoted(s1)], (delta * len(s1), delta * len(s1)))
            self.assertEqual(nodes[quoted(s2)][0], delta * len(s2))
            # overall, the records' chunks lead: one size, N more of them
            nodes, first = pprof_top(self.tmp, "-unit=B", "-diff_base", a, b)
            m = re.match(r"chunk 0x([0-9a-f]+)$", first)
            self.assertTrue(m, first)
            size = int(m.group(1), 16)
            self.assertGreaterEqual(size, v.fact("record_size") + 8)
            self.assertLess(size, v.fact("record_size") + 8 + 16)
            self.assertEqual(nodes[first][0], N * size)

    def test_core(self):
        with Victim("growth_victim") as v:
            core = self.path("v.core")
            rc, out, err = run("dump", "-p", v.pid, "-o", core)
            self.assertEqual(rc, 0, err)
            out_pb = self.path("core.pb.gz")
            rc, out, err = run("snapshot", "-c", core, "--format", "pprof", "-o", out_pb)
            self.assertEqual(rc, 0, err)
            prof = decode(out_pb)
            self.check_victim_profile(v, prof, ["main_arena", "heap", "glibc malloc"])

    def test_watch_save_dir(self):
        with Victim("growth_victim") as v:
            env = dict(os.environ, HEAPSCAN_TEST_WATCH_STEP="1")
            d = self.path("w")
            os.mkdir(d)
            w = subprocess.Popen([harness.HEAPSCAN, "watch", "-p", str(v.pid),
                                  "--count", "2", "--interval", "0", "--json",
                                  "--save-dir", d, "--format", "pprof"],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, env=env, text=True)
            try:
                self.assertTrue(w.stdout.readline())
                before = v.fact("records")
                v.send("leak %d" % N)
                w.stdin.write("\n")
                w.stdin.flush()
                self.assertTrue(w.stdout.readline())
                self.assertEqual(w.wait(timeout=120), 0, w.stderr.read())
            finally:
                if w.poll() is None:
                    w.kill()
                    w.wait()
                for f in (w.stdin, w.stdout, w.stderr):
                    f.close()
            names = sorted(os.listdir(d))
            self.assertEqual(names, ["%d-1.pb.gz" % v.pid, "%d-2.pb.gz" % v.pid])
            s1 = v.facts["string1"][0]
            counts = []
            for n in names:
                self.assertEqual(stat.S_IMODE(os.stat(os.path.join(d, n)).st_mode), 0o600)
                prof = decode(os.path.join(d, n))
                counts.append(self.sample(prof, quoted(s1))[1][0])
            self.assertEqual(counts, [before, before + N])
            if GO:
                nodes, first = pprof_top(self.tmp, "-unit=B", "-diff_base",
                                         os.path.join(d, names[0]), os.path.join(d, names[1]))
                self.assertEqual(first, "chunk 0x%x" % v.fact("chunk_size"))

    def test_output_replaces_symlink_not_target(self):
        with Victim("growth_victim") as v:
            target = self.path("precious")
            with open(target, "w") as f:
                f.write("keep me\n")
            link = self.path("link.pb.gz")
            os.symlink(target, link)
            self.snap(v, "link.pb.gz")
            with open(target) as f:
                self.assertEqual(f.read(), "keep me\n")
            self.assertFalse(os.path.islink(link))
            decode(link)

    def test_usage(self):
        rc, out, err = run("snapshot", "-p", "999999999", "--format", "svg", "-o", self.path("x"))
        self.assertEqual(rc, 64)
        self.assertIn("unknown --format 'svg'", err)
        rc, out, err = run("watch", "-p", "999999999", "--format", "pprof")
        self.assertEqual(rc, 64)
        self.assertIn("--save-dir", err)
        with Victim("growth_victim") as v:
            rc, out, err = run("snapshot", "-p", v.pid, "--format", "pprof", "-o",
                               os.path.join(self.tmp, "no", "such", "f.pb.gz"))
            self.assertEqual(rc, 2)
            self.assertIn("cannot write", err)
            self.assertEqual(os.listdir(self.tmp), [])


if __name__ == "__main__":
    harness.main()
