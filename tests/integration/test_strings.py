"""heapscan strings against victims that print their own ground truth."""
import json
import os
import shutil
import signal
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import TmpDirTestCase, Victim, run, run_json  # noqa: E402

MARKERS = ("heap", "arena", "mmap", "straddle", "end")


def markers(v, names=MARKERS):
    """{string: (count, class)} from the victim's fact lines."""
    out = {}
    for name in names:
        s, count, cls = v.facts[name]
        out[s] = (int(count), cls)
    return out


def by_string(doc):
    return {e["string"]: e for e in doc["strings"]}


class StringsTest(unittest.TestCase):
    def check_exact(self, v, doc, names=MARKERS):
        got = by_string(doc)
        self.assertTrue(doc["summary"]["exact"])
        self.assertEqual(doc["summary"]["error_bound"], 0)
        for s, (count, cls) in markers(v, names).items():
            self.assertIn(s, got, "marker %r not reported" % s)
            e = got[s]
            self.assertEqual(e["count"], count, s)
            self.assertEqual(e["count_min"], count, s)
            self.assertEqual(e["classes"], {cls: count}, s)
            self.assertEqual(e["bytes"], count * len(s), s)

    def test_exact_counts_per_class(self):
        with Victim("strings_victim") as v:
            doc, rc, err = run_json("strings", "-p", v.pid, "--top", "200",
                                    "--min-len", "8")
            self.assertEqual(rc, 0, err)
            self.assertEqual(doc["schema_version"], 1)
            self.check_exact(v, doc)
            got = by_string(doc)
            # Sample addresses are the lowest ones: the straddle and end
            # strings have exactly one, where the victim put them.
            self.assertEqual(got[v.facts["straddle"][0]]["samples"],
                             ["0x%x" % v.fact("straddle_addr")])
            self.assertEqual(got[v.facts["end"][0]]["samples"],
                             ["0x%x" % v.fact("end_addr")])
            s = doc["summary"]
            self.assertGreater(s["bytes_scanned"], 8 << 20)
            self.assertTrue(s["stopped"])
            self.assertGreater(s["stop_ms"], 0)
            self.assertIn("heap", s["class_bytes"])
            self.assertIn("arena", s["class_bytes"])
            self.assertIn("anon", s["class_bytes"])
            # The target runs again after the scan.
            self.assertNotIn(v.state(), ("t",))

    def test_seams_jobs_identical(self):
        with Victim("strings_victim") as v:
            docs = []
            for args in (("--jobs", "1"), ("--jobs", "2"),
                         ("--jobs", "2", "--chunk", "64K"),
                         ("--jobs", "1", "--chunk", "4K"),
                         ("--jobs", "3", "--chunk", "16K")):
                doc, rc, err = run_json("strings", "-p", v.pid, "--top", "50",
                                        "--min-len", "8", *args)
                self.assertEqual(rc, 0, err)
                self.check_exact(v, doc)
                docs.append(doc)
            for d in docs[1:]:
                self.assertEqual(d["strings"], docs[0]["strings"])
                self.assertEqual(d["summary"]["occurrences"],
                                 docs[0]["summary"]["occurrences"])

    def test_utf16(self):
        with Victim("strings_victim") as v:
            doc, rc, err = run_json("strings", "-p", v.pid, "--encoding",
                                    "utf16le", "--top", "20", "--min-len", "8")
            self.assertEqual(rc, 0, err)
            s, count, cls = v.facts["wide"]
            e = by_string(doc)[s]
            self.assertEqual(e["count"], int(count))
            self.assertEqual(e["classes"], {cls: int(count)})
            self.assertEqual(e["bytes"], 2 * len(s) * int(count))
            # ASCII markers are not UTF-16 text.
            self.assertNotIn(v.facts["heap"][0], by_string(doc))

    def test_regions_option(self):
        with Victim("strings_victim") as v:
            doc, rc, err = run_json("strings", "-p", v.pid, "--regions", "arena",
                                    "--top", "20", "--min-len", "8")
            self.assertEqual(rc, 0, err)
            got = by_string(doc)
            self.assertEqual(doc["regions_scanned"], ["arena"])
            self.assertEqual(got[v.facts["arena"][0]]["count"], int(v.facts["arena"][1]))
            self.assertNotIn(v.facts["heap"][0], got)
            self.assertNotIn(v.facts["mmap"][0], got)

    def test_estimated_mode(self):
        # leaky_worker: many distinct strings (a tag in every record) and
        # two recurring ones; a small budget forces estimates, which must
        # bracket the truth.
        with Victim("leaky_worker", 300000, 1) as v:
            doc, rc, err = run_json("strings", "-p", v.pid, "--max-mem", "4M",
                                    "--chunk", "64K", "--top", "10")
            self.assertEqual(rc, 0, err)
            s = doc["summary"]
            self.assertFalse(s["exact"])
            self.assertEqual(s["passes"], 2)
            self.assertGreater(s["error_bound"], 0)
            self.assertLessEqual(s["mem_peak"], 4 << 20)
            got = by_string(doc)
            for key in ("string1", "string2"):
                name, count = v.facts[key][0], int(v.facts[key][1])
                e = got[name]
                self.assertLessEqual(e["count_min"], count)
                self.assertGreaterEqual(e["count"], count)
                self.assertLessEqual(e["count"] - e["count_min"], s["error_bound"])
            doc2, rc, err = run_json("strings", "-p", v.pid, "--max-mem", "4M",
                                     "--chunk", "64K", "--top", "10", "--jobs", "1")
            self.assertEqual(doc2["strings"], doc["strings"])
            # With the default budget the same counts are exact.
            doc3, rc, err = run_json("strings", "-p", v.pid, "--top", "10")
            self.assertTrue(doc3["summary"]["exact"])
            got = by_string(doc3)
            for key in ("string1", "string2"):
                name, count = v.facts[key][0], int(v.facts[key][1])
                self.assertEqual(got[name]["count"], count)

    def test_leak_growth(self):
        with Victim("leaky_worker", 20000) as v:
            name, count = v.facts["string1"][0], int(v.facts["string1"][1])
            doc, rc, err = run_json("strings", "-p", v.pid, "--top", "5")
            self.assertEqual(by_string(doc)[name]["count"], count)
            v.send("leak 5000")
            count2 = int(v.facts["string1"][1])
            self.assertGreater(count2, count)
            doc, rc, err = run_json("strings", "-p", v.pid, "--top", "5")
            self.assertEqual(by_string(doc)[name]["count"], count2)

    def test_text_report(self):
        with Victim("strings_victim") as v:
            rc, out, err = run("strings", "-p", v.pid, "--min-len", "8")
            self.assertEqual(rc, 0, err)
            self.assertIn("top strings (ascii, min-len 8, by count)", out)
            self.assertIn('"%s"' % v.facts["heap"][0], out)
            self.assertIn("counts are exact", out)
            self.assertIn("target stopped for", out)

    def test_usage_errors(self):
        for args in (("--min-len", "0"), ("--by", "size"), ("--regions", "nope"),
                     ("--chunk", "5000"), ("--max-mem", "1M"), ("--jobs", "0"),
                     ("--encoding", "ebcdic"), ("--chunks", "some")):
            rc, out, err = run("strings", "-p", "1", *args)
            self.assertEqual(rc, 64, args)
            self.assertTrue(err.startswith("heapscan: "), err)
            self.assertEqual(len(err.strip().splitlines()), 1, err)


LOC_MARKERS = ("heap", "arena", "mmap", "straddle", "end", "mmap2", "live", "freed")
LOCS = ("inuse", "free", "outside")


class StringsWhereTest(TmpDirTestCase):
    """--chunks and each string's location (issue #5), live and on a dump."""

    def expect(self, v):
        """{string: (count, class, location)} for the markers with a known
        location (the victim's loc_* facts)."""
        out = {}
        for name in LOC_MARKERS:
            s, count, cls = v.facts[name]
            out[s] = (int(count), cls, v.facts["loc_" + name][0])
        return out

    def check(self, doc, exp, chunks):
        got = by_string(doc)
        self.assertEqual(doc["chunks"], chunks)
        s = doc["summary"]
        self.assertTrue(s["exact"])
        self.assertTrue(s["where_known"])
        self.assertFalse(s["where_approximate"])
        for string, (count, cls, loc) in exp.items():
            wanted = chunks == "all" or loc == chunks
            if not wanted:
                self.assertNotIn(string, got, (chunks, string))
                continue
            self.assertIn(string, got, (chunks, string))
            e = got[string]
            self.assertEqual(e["count"], count, string)
            self.assertEqual(e["classes"], {cls: count}, string)
            self.assertEqual(e["where"], {l: count if l == loc else 0 for l in LOCS},
                             string)
        # Whatever is reported lies where --chunks asked.
        for e in doc["strings"]:
            if chunks != "all":
                self.assertEqual(e["where"][chunks], e["count"], e["string"])

    def run_modes(self, v, *target):
        exp = self.expect(v)
        # The freed copies survived: a test of nothing if there are none.
        self.assertGreater(exp[v.facts["freed"][0]][0], 0)
        for chunks in ("all", "inuse", "free"):
            for jobs in ("1", "2"):
                doc, rc, err = run_json("strings", *target, "--top", "100",
                                        "--min-len", "8", "--chunks", chunks,
                                        "--jobs", jobs)
                self.assertEqual(rc, 0, err)
                self.check(doc, exp, chunks)

    def test_live(self):
        with Victim("strings_victim") as v:
            self.run_modes(v, "-p", v.pid)
            # Default mode: every string has a location, and the text
            # report shows the column.
            rc, out, err = run("strings", "-p", v.pid, "--min-len", "8")
            self.assertEqual(rc, 0, err)
            self.assertIn("where", out)
            line = [l for l in out.splitlines() if '"%s"' % v.facts["freed"][0] in l][0]
            self.assertIn("free:%s" % v.facts["freed"][1], line)
            line = [l for l in out.splitlines() if '"%s"' % v.facts["heap"][0] in l][0]
            self.assertIn("inuse:%s" % v.facts["heap"][1], line)
            # The default report's top strings say where, too.
            doc, rc, err = run_json("scan", "-p", v.pid, "--top", "30")
            self.assertEqual(rc, 0, err)
            got = by_string(doc["strings"])
            s, count, _ = v.facts["freed"]
            self.assertEqual(got[s]["where"]["free"], int(count))

    def test_dump(self):
        with Victim("strings_victim") as v:
            path = os.path.join(self.tmp, "sv.core")
            rc, _, err = run("dump", "-p", v.pid, "-o", path)
            self.assertEqual(rc, 0, err)
            self.run_modes(v, "-c", path)

    def test_free_lists_match_walk(self):
        # Locations come from the free lists and each top, not a walk of
        # every chunk; on these victims (tcache, fastbins, unsorted, small
        # and large bins, thread arenas, mmapped chunks) the answer must
        # be the walk's, byte for byte: --chunks free/inuse scan exactly
        # the same bytes, and every string is placed alike.
        for name in ("heap_victim", "strings_victim", "threads_victim"):
            with Victim(name) as v:
                # --all reads the stack too: the victim must be done
                # writing it (the difference seen 1 run in 10 under load
                # was printf's residue below its stack pointer).
                v.wait_idle()
                for chunks in ("all", "free", "inuse"):
                    docs = []
                    for env in (None, {"HEAPSCAN_WHERE": "walk"}):
                        doc, rc, err = run_json("strings", "-p", v.pid, "--all",
                                                "--min-len", "4", "--top", "2000",
                                                "--chunks", chunks, env=env)
                        self.assertIn(rc, (0, 1), err)
                        for k in ("scan_ms", "stop_ms", "mem_peak"):
                            doc["summary"].pop(k, None)
                        docs.append(doc)
                    if docs[0] != docs[1]:
                        # say what differs
                        a = {e["string"]: e for e in docs[0]["strings"]}
                        b = {e["string"]: e for e in docs[1]["strings"]}
                        diff = [(k, a.get(k), b.get(k)) for k in sorted(set(a) | set(b))
                                if a.get(k) != b.get(k)][:4]
                        sa = {k: x for k, x in docs[0]["summary"].items()
                              if docs[1]["summary"].get(k) != x}
                        self.fail("%s --chunks %s: free lists and walk differ: "
                                  "summary %r, strings %r" % (name, chunks, sa, diff))
                    if chunks != "all":
                        self.assertGreater(docs[0]["summary"]["bytes_scanned"], 0)

    ARENA_HEAPS_SRC = r"""
#include "victim.h"
#include <pthread.h>
/* A thread arena grown over several 64 MiB heaps (the older ones closed
 * by fenceposts), with frees of every kind in each. */
static void *work(void *arg)
{
	static char *keep[1600000];
	(void)arg;
	for (int i = 0; i < 1600000; i++) {
		keep[i] = malloc(i % 97 == 0 ? 1200 : 56);
		snprintf(keep[i], 48, "arena-heaps-%d", i % 1000);
	}
	for (int i = 0; i < 1600000; i += 13)
		free(keep[i]);
	fact("arena_heaps ok");
	victim_ready_and_wait();
	return NULL;
}
int main(void)
{
	pthread_t th;
	victim_init();
	pthread_create(&th, NULL, work, NULL);
	pthread_join(th, NULL);
	return 0;
}
"""

    def test_free_lists_match_walk_arena_heaps(self):
        cc = shutil.which("cc") or shutil.which("gcc")
        if not cc:
            self.fail("no C compiler: scripts/setup.sh installs build-essential")
        src = os.path.join(self.tmp, "arena_heaps.c")
        exe = os.path.join(self.tmp, "arena_heaps")
        with open(src, "w") as f:
            f.write(self.ARENA_HEAPS_SRC)
        inc = os.path.join(harness.SOURCE, "fixtures", "victims")
        p = subprocess.run([cc, "-O1", "-pthread", "-I", inc, "-o", exe, src],
                           capture_output=True, text=True, timeout=120)
        if p.returncode != 0:
            self.fail("cannot build the victim: %s" % p.stderr[-200:])
        with Victim(exe) as v:
            heap, rc, err = run_json("heap", "-p", v.pid)
            self.assertEqual(rc, 0, err)
            arenas = [a for a in heap["heap"]["arenas"] if not a.get("main", a.get("is_main"))]
            self.assertGreaterEqual(max(len(a["heaps"]) for a in arenas), 2, arenas)
            for chunks in ("free", "inuse"):
                docs = []
                for env in (None, {"HEAPSCAN_WHERE": "walk"}):
                    doc, rc, err = run_json("strings", "-p", v.pid, "--top", "50",
                                            "--chunks", chunks, env=env)
                    self.assertEqual(rc, 0, err)
                    for k in ("scan_ms", "stop_ms", "mem_peak"):
                        doc["summary"].pop(k, None)
                    docs.append(doc)
                self.assertEqual(docs[0], docs[1], chunks)
                self.assertGreater(docs[0]["summary"]["bytes_scanned"], 1 << 20)

    def static_victim(self):
        """strings_victim linked statically (its malloc is not in a libc
        mapping, so no glibc heap is found), built here with the system
        compiler; skipped if that cannot be done."""
        cc = shutil.which("cc") or shutil.which("gcc")
        if not cc:
            self.fail("no C compiler for the static victim")
        exe = os.path.join(self.tmp, "strings_victim_static")
        src = os.path.join(harness.SOURCE, "fixtures", "victims", "strings_victim.c")
        p = subprocess.run([cc, "-O1", "-static", "-pthread", "-o", exe, src],
                           capture_output=True, text=True, timeout=120)
        if p.returncode != 0:
            self.fail("cannot link a static victim: %s" % p.stderr[-200:])
        return exe

    def test_no_glibc(self):
        # --chunks other than all is an error; locations are "unknown".
        with Victim(self.static_victim()) as v:
            rc, out, err = run("strings", "-p", v.pid, "--chunks", "inuse")
            self.assertEqual(rc, 2)
            self.assertEqual(len(err.strip().splitlines()), 1, err)
            self.assertIn("--chunks inuse needs the glibc heap", err)
            doc, rc, err = run_json("strings", "-p", v.pid, "--min-len", "8")
            self.assertEqual(rc, 0, err)
            self.assertFalse(doc["summary"]["where_known"])
            s, count = v.facts["heap"][0], int(v.facts["heap"][1])
            e = by_string(doc)[s]
            self.assertEqual(e["count"], count)
            self.assertEqual(e["where"], {"unknown": count})
            rc, out, err = run("strings", "-p", v.pid, "--min-len", "8")
            self.assertEqual(rc, 0, err)
            line = [l for l in out.splitlines() if '"%s"' % s in l][0]
            self.assertTrue(line.rstrip().endswith("unknown"), line)
            self.assertIn("where: unknown", out)


class ReleaseBeforeRankingTest(unittest.TestCase):
    """The target runs again as soon as everything is read: the tables are
    joined and ranked while it runs (issue #21), and the results are the
    same as ever."""

    def held_run(self, v, *args):
        env = dict(os.environ, HEAPSCAN_TEST_HOLD_AT="read-done")
        p = subprocess.Popen([harness.HEAPSCAN] + [str(a) for a in args],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=env)
        try:
            line = p.stderr.readline()
            self.assertIn("holding at read-done", line)
            # Everything is read, nothing ranked yet: the target is free.
            with open("/proc/%d/status" % v.pid) as f:
                self.assertIn("TracerPid:\t0\n", f.read())
            self.assertNotIn(v.settled_state(), ("t", "T"))
            p.send_signal(signal.SIGUSR1)
            out, err = p.communicate(timeout=120)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        return p.returncode, out, line + err

    def test_strings(self):
        with Victim("strings_victim") as v:
            rc, out, err = self.held_run(v, "strings", "-p", v.pid, "--top", "200",
                                         "--min-len", "8", "--json")
            self.assertEqual(rc, 0, err)
            doc = json.loads(out)
            StringsTest.check_exact(self, v, doc)
            self.assertGreater(doc["summary"]["stop_ms"], 0)

    def test_scan(self):
        with Victim("strings_victim") as v:
            rc, out, err = self.held_run(v, "scan", "-p", v.pid, "--top", "200",
                                         "--json")
            self.assertEqual(rc, 0, err)
            doc = json.loads(out)
            self.assertTrue(doc["strings"]["summary"]["exact"])
            # The stop ended before the ranking; the run goes on after it.
            self.assertLess(doc["stop_ms"], doc["elapsed_ms"])
            got = by_string(doc["strings"])
            for name in ("heap", "arena"):
                s, count, _ = v.facts[name]
                self.assertIn(s, got)
                self.assertEqual(got[s]["count"], int(count), s)


if __name__ == "__main__":
    harness.main()
