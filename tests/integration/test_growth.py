"""heapscan snapshot / diff / watch against growth_victim.

growth_victim leaks records (one malloc each, holding two known strings)
on a "leak N" command and prints its exact totals, the chunk size and the
last record's address.  Between two pictures the strings must grow by N
exactly, the chunk size of the right arena by N chunks and N*size bytes,
the region that grew most must hold the records, and the two strings and
the chunk size must form one correlated group: live, through watch
(NDJSON), and through two heapscan dumps.
"""
import json
import os
import subprocess

import harness
from harness import Victim, run, run_json

N = 1000


def strings_of(v):
    return v.facts["string1"][0], v.facts["string2"][0]


class GrowthTest(harness.TmpDirTestCase):

    def path(self, name):
        return os.path.join(self.tmp, name)

    def snapshot(self, v, name, *extra):
        p = self.path(name)
        rc, out, err = run("snapshot", "-p", v.pid, "-o", p, *extra)
        self.assertEqual(rc, 0, err)
        self.assertIn("wrote " + p, out)
        return p

    def check_growth(self, v, d, before, n, arena, by="rss", last=None):
        """d: a diff/watch JSON with growth since `before` records."""
        s1, s2 = strings_of(v)
        size = v.fact("chunk_size")
        if by:
            self.assertEqual(d["compared_by"], by)
        growth = d["growth"]
        strs = {g["string"]: g for g in growth if g["kind"] == "string"}
        for s in (s1, s2):
            self.assertIn(s, strs)
            self.assertEqual(strs[s]["count_before"], before)
            self.assertEqual(strs[s]["count_after"], before + n)
            self.assertEqual(strs[s]["delta_count"], n)
            self.assertEqual(strs[s]["delta_bytes"], n * len(s))
        chunks = [g for g in growth if g["kind"] == "chunk"]
        self.assertTrue(chunks)
        c = chunks[0]   # the largest chunk growth is the records'
        self.assertEqual(c["size"], size)
        self.assertEqual(c["arena"], arena)
        self.assertEqual(c["delta_count"], n)
        self.assertEqual(c["delta_bytes"], n * size)
        self.assertEqual(c["count_after"] - c["count_before"], n)
        # the region that grew most holds the last record
        regions = [g for g in growth if g["kind"] == "region"]
        self.assertTrue(regions)
        r = regions[0]
        if last is None:
            last = v.fact("last_record")
        self.assertTrue(int(r["start"], 16) <= last < int(r["end"], 16), r)
        self.assertEqual(r["class"], "heap" if arena == "main" else "arena")
        if arena == "main":
            self.assertEqual(r["path"], "[heap]")
        # one correlated group: both strings and the chunk size
        groups = [g for g in d["groups"]
                  if {(i["kind"], i.get("string"), i.get("size")) for i in g["items"]}
                  >= {("string", s1, None), ("string", s2, None), ("chunk", None, size)}]
        self.assertEqual(len(groups), 1, d["groups"])
        self.assertEqual(groups[0]["delta_count"], n)
        for g in groups[0]["items"]:
            self.assertEqual(g["delta_count"], n)
        # The group's bytes are its chunks', not chunks + the strings
        # inside them.
        self.assertEqual(groups[0]["bytes_of"], "chunks")
        self.assertEqual(groups[0]["delta_bytes"],
                         sum(i["delta_bytes"] for i in groups[0]["items"]
                             if i["kind"] == "chunk"))
        self.assertEqual((groups[0]["delta_count_min"], groups[0]["delta_count_max"]), (n, n))
        return d

    def live_case(self, mode):
        with Victim("growth_victim", mode) as v:
            before = v.fact("records")
            a = self.snapshot(v, "a.prof")
            v.send("leak %d" % N)
            self.assertEqual(v.fact("records"), before + N)
            b = self.snapshot(v, "b.prof")
            d, rc, err = run_json("diff", a, b, "--top", "0")
            self.assertEqual(rc, 0, err)
            self.assertEqual(d["command"], "diff")
            self.assertEqual(d["warnings"], [])
            self.check_growth(v, d, before, N, mode)
            # B as "now": -p PID, after one more leak
            v.send("leak %d" % N)
            d, rc, err = run_json("diff", a, "-p", v.pid, "--top", "0")
            self.assertEqual(rc, 0, err)
            self.check_growth(v, d, before, 2 * N, mode)
            self.assertGreater(d["b"]["stop_ms"], 0)
            # the text form names the group
            rc, out, err = run("diff", a, b)
            self.assertEqual(rc, 0, err)
            self.assertIn("correlated growth", out)
            self.assertIn(strings_of(v)[0], out)

    def test_live_thread_arena(self):
        self.live_case("thread")

    def test_live_main_heap(self):
        self.live_case("main")

    def test_idle_no_growth(self):
        with Victim("growth_victim", "main") as v:
            a = self.snapshot(v, "a.prof")
            b = self.snapshot(v, "b.prof")
            c = self.snapshot(v, "c.prof", "--no-stop")
            for x, y in ((a, b), (a, c)):
                d, rc, err = run_json("diff", x, y, "--top", "0")
                self.assertEqual(rc, 0, err)
                self.assertEqual(d["growth"], [])
                self.assertEqual(d["shrinkage"], [])
                self.assertEqual(d["groups"], [])
            rc, out, err = run("diff", a, b)
            self.assertIn("no growth", out)

    def test_watch_ndjson(self):
        with Victim("growth_victim", "thread") as v:
            before = v.fact("records")
            env = dict(os.environ, HEAPSCAN_TEST_WATCH_STEP="1")
            w = subprocess.Popen([harness.HEAPSCAN, "watch", "-p", str(v.pid),
                                  "--count", "3", "--interval", "0", "--top", "0"],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, env=env, text=True)
            try:
                lines, lasts = [], []
                for k in range(3):
                    line = w.stdout.readline()
                    self.assertTrue(line, w.stderr.read() if w.poll() is not None else "")
                    lines.append(json.loads(line))
                    if k < 2:
                        v.send("leak %d" % N)
                        lasts.append(v.fact("last_record"))
                        w.stdin.write("\n")
                        w.stdin.flush()
                self.assertEqual(w.wait(timeout=120), 0, w.stderr.read())
            finally:
                if w.poll() is None:
                    w.kill()
                    w.wait()
            self.assertEqual([l["sample"] for l in lines], [1, 2, 3])
            for l in lines:
                self.assertEqual(l["schema_version"], 1)
                self.assertEqual(l["command"], "watch")
                self.assertEqual(l["pid"], v.pid)
                self.assertIn("stop_ms", l)
            self.assertEqual(lines[0]["growth"], [])
            self.check_growth(v, lines[1], before, N, "thread", last=lasts[0])
            self.check_growth(v, lines[2], before, 2 * N, "thread", last=lasts[1])
            self.assertIn("bytes_per_hour", lines[2]["growth"][0])
            self.assertGreater(lines[2]["growth"][0]["bytes_per_hour"], 0)

    def test_watch_idle(self):
        with Victim("growth_victim", "main") as v:
            rc, out, err = run("watch", "-p", v.pid, "--count", "2",
                               "--interval", "0.05", "--no-stop")
            self.assertEqual(rc, 0, err)
            lines = [json.loads(l) for l in out.splitlines()]
            self.assertEqual(len(lines), 2)
            self.assertEqual(lines[1]["growth"], [])

    def test_watch_save_dir(self):
        with Victim("growth_victim", "main") as v:
            rc, out, err = run("watch", "-p", v.pid, "--count", "2",
                               "--interval", "0", "--save-dir", self.tmp)
            self.assertEqual(rc, 0, err)
            p1 = self.path("%d-1.profile" % v.pid)
            p2 = self.path("%d-2.profile" % v.pid)
            d, rc, err = run_json("diff", p1, p2)
            self.assertEqual(rc, 0, err)
            self.assertEqual(d["growth"], [])

    def test_dumps(self):
        with Victim("growth_victim", "main") as v:
            before = v.fact("records")
            a, b = self.path("a.core"), self.path("b.core")
            rc, _, err = run("dump", "-p", v.pid, "-o", a)
            self.assertEqual(rc, 0, err)
            v.send("leak %d" % N)
            rc, _, err = run("dump", "-p", v.pid, "-o", b)
            self.assertEqual(rc, 0, err)
            d, rc, err = run_json("diff", a, b, "--top", "0")
            self.assertEqual(rc, 0, err)
            self.assertIn(d["a"]["kind"], ("core", "dump"))
            # heapscan dumps keep smaps figures; other cores give Size only
            self.check_growth(v, d, before, N, "main", by=None)
            # a profile of a core diffs against a live profile of the same
            p = self.snapshot(v, "now.prof")
            d, rc, err = run_json("diff", b, p, "--top", "0")
            self.assertEqual(rc, 0, err)
            self.assertEqual(d["b"]["kind"], "live")
            self.assertEqual([g for g in d["growth"] if g["kind"] != "region"
                              and g["kind"] != "class"], [])

    def bad(self, args, code, text):
        rc, out, err = run(*args)
        self.assertEqual(rc, code, err)
        self.assertEqual(len(err.splitlines()), 1, err)
        self.assertTrue(err.startswith("heapscan: "), err)
        self.assertIn(text, err)
        return err

    def test_bad_inputs(self):
        with Victim("growth_victim", "main") as v:
            a = self.snapshot(v, "a.prof")
        with open(a) as f:
            text = f.read()
        def write(name, s):
            p = self.path(name)
            with open(p, "w") as f:
                f.write(s)
            return p
        # truncated anywhere: no end line
        lines = text.splitlines(True)
        trunc = write("t.prof", "".join(lines[:len(lines) // 2]))
        self.bad(["diff", trunc, a], 2, "truncated")
        trunc2 = write("t2.prof", text[:len(text) - 3])
        self.bad(["diff", a, trunc2], 2, "truncated")
        foreign = write("f.txt", "hello world\n")
        self.bad(["diff", foreign, a], 2, "neither a heapscan profile nor a core")
        future = write("v.prof", text.replace("heapscan-profile 1\n",
                                              "heapscan-profile 99\n", 1))
        self.bad(["diff", future, a], 2, "version 99")
        corrupt = write("c.prof", text.replace("\nregion 0x", "\nregion 0xzz", 1))
        self.bad(["diff", corrupt, a], 2, "corrupt")
        self.bad(["diff", self.path("missing.prof"), a], 2, "cannot open")
        # different executables: refused, unless --force
        exe = [l for l in lines if l.startswith("meta exe ")][0]
        other = write("o.prof", text.replace(exe, "meta exe /usr/bin/other\n"))
        self.bad(["diff", a, other], 2, "different executables")
        rc, out, err = run("diff", a, other, "--force")
        self.assertEqual(rc, 0, err)
        self.assertIn("warning: different executables", err)
        # different pid: a warning only
        pid = [l for l in lines if l.startswith("meta pid ")][0]
        restarted = write("r.prof", text.replace(pid, "meta pid 1\n"))
        rc, out, err = run("diff", a, restarted)
        self.assertEqual(rc, 0, err)
        self.assertIn("warning: different processes", err)
        # usage
        self.bad(["diff", a], 64, "give B or -p PID")
        self.bad(["snapshot", "-p", "1"], 64, "-o FILE")
        self.bad(["watch", "-p", "1", "--interval", "x"], 64, "--interval")

    def test_options_in_man_page(self):
        import re
        with open(os.path.join(harness.SOURCE, "doc", "heapscan.1")) as f:
            man = f.read().replace("\\-", "-")
        for cmd in ("snapshot", "diff", "watch"):
            rc, out, err = run(cmd, "--help")
            self.assertEqual(rc, 0, cmd)
            for opt in set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", out)):
                self.assertIn(opt, man, "%s %s" % (cmd, opt))
        self.assertIn("PROFILE FILES", man)


if __name__ == "__main__":
    harness.main()
