"""heapscan strings against victims that print their own ground truth."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import Victim, run, run_json  # noqa: E402

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
        # leaky_worker: many distinct strings and two recurring ones; a
        # small budget forces estimates, which must bracket the truth.
        with Victim("leaky_worker", 300000) as v:
            doc, rc, err = run_json("strings", "-p", v.pid, "--max-mem", "4M",
                                    "--chunk", "64K", "--top", "10")
            self.assertEqual(rc, 0, err)
            s = doc["summary"]
            self.assertFalse(s["exact"])
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
                     ("--encoding", "ebcdic")):
            rc, out, err = run("strings", "-p", "1", *args)
            self.assertEqual(rc, 64, args)
            self.assertTrue(err.startswith("heapscan: "), err)
            self.assertEqual(len(err.strip().splitlines()), 1, err)


if __name__ == "__main__":
    harness.main()
