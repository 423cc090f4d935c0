"""heapscan show ADDR: mapping, chunk, annotated dump and --refs.

Victim: fixtures/victims/show_victim.c.  It prints its record's user
pointer, chunk and chunk size (malloc_usable_size + 8), the string inside
it, the global the record points to, the label string it points to, every
word that points into the record (exactly two: a heap holder and a global),
a freed tcache and a freed unsorted chunk, and a PROT_NONE page.
check_record() takes heapscan's target arguments, so the same assertions
run on the live process and on a heapscan dump of it.
"""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import Victim, run, run_json  # noqa: E402

FATAL, USAGE = 2, 64


def mem_refs(r):
    """The memory references of a --refs result (registers are listed after
    them with kind "register"; test_refs_regs.py checks those)."""
    return [x for x in r["refs"] if x["kind"] == "memory"]


def truth(v):
    t = {"refs": [], "freed": {}}
    for line in v.lines:
        p = line.split()
        if p[0] == "record":
            t["user"], t["chunk"], t["size"] = (int(x, 16) for x in p[1:4])
        elif p[0] in ("string", "label"):
            t[p[0]] = int(p[1], 16)
            t[p[0] + "_text"] = p[2]
        elif p[0] == "global":
            t["global"], t["global_name"] = int(p[1], 16), p[2]
        elif p[0] in ("gptr", "holder", "noaccess"):
            t[p[0]] = int(p[1], 16)
        elif p[0] == "ref":
            t["refs"].append(int(p[1], 16))
        elif p[0] == "freed":
            t["freed"][p[1]] = (int(p[2], 16), int(p[3], 16))
    return t


def hx(a):
    return "0x%x" % a


def words_by_at(d):
    return {int(w["at"], 16): w for w in d["dump"]["words"]}


class ShowTest(harness.TmpDirTestCase):

    def show(self, addr, *args, rc_ok=(0,)):
        d, rc, err = run_json("show", hx(addr) if isinstance(addr, int) else addr, *args)
        self.assertIn(rc, rc_ok, err)
        self.assertEqual(d["schema_version"], 1)
        self.assertEqual(d["command"], "show")
        return d

    def check_record(self, v, target):
        """show on the string inside the record, with --refs: everything the
        victim printed, exactly."""
        t = truth(v)
        d = self.show(t["string"], "--refs", *target)
        self.assertTrue(d["heap"]["walked"])
        self.assertEqual(d["mapping"]["class"], "heap")
        c = d["chunk"]
        self.assertEqual(int(c["addr"], 16), t["chunk"])
        self.assertEqual(int(c["user"], 16), t["user"])
        self.assertEqual(c["size"], t["size"])
        self.assertEqual(c["state"], "inuse")
        self.assertFalse(c["free"])
        self.assertTrue(c["arena_main"])
        # the dump: header, the string inside, in-use usable bytes (size + 8)
        dump = bytes.fromhex(d["dump"]["hex"])
        self.assertEqual(int(d["dump"]["addr"], 16), t["chunk"])
        self.assertEqual(len(dump), t["size"] + 8)
        self.assertFalse(d["dump"]["truncated"])
        off = t["string"] - t["chunk"]
        name = t["string_text"].encode()
        self.assertEqual(dump[off:off + len(name) + 1], name + b"\0")
        w = words_by_at(d)
        self.assertEqual(w[t["chunk"] + 8]["field"], "size")
        # the pointer to the global, named
        g = w[t["gptr"]]
        self.assertEqual(int(g["value"], 16), t["global"])
        self.assertEqual(g["points_to"]["class"], "data")
        self.assertEqual(g["points_to"]["symbol"]["name"], t["global_name"])
        self.assertEqual(g["points_to"]["symbol"]["offset"], 0)
        self.assertEqual(g["points_to"]["string"], "show-victim-global-marker")
        self.assertNotIn("chunk", g["points_to"])
        # the pointer to the label: another chunk, in use, and its string
        lab = w[t["gptr"] + 8]
        self.assertEqual(int(lab["value"], 16), t["label"])
        self.assertEqual(int(lab["points_to"]["chunk"]["addr"], 16), t["label"] - 16)
        self.assertEqual(lab["points_to"]["chunk"]["state"], "inuse")
        self.assertEqual(lab["points_to"]["string"], t["label_text"])
        # --refs: exactly the victim's two pointers, and nothing was cut
        r = d["refs"]
        self.assertTrue(r["complete"], r)
        self.assertEqual(r["cut"], "complete")
        self.assertEqual(int(r["target_lo"], 16), t["chunk"])
        self.assertEqual(int(r["target_hi"], 16), t["chunk"] + t["size"])
        self.assertEqual(sorted(int(x["at"], 16) for x in mem_refs(r)), sorted(t["refs"]))
        by_class = {x["class"]: x for x in mem_refs(r)}
        self.assertEqual(sorted(by_class), ["data", "heap"])
        self.assertEqual(int(by_class["heap"]["chunk"]["addr"], 16), t["holder"])
        self.assertEqual(by_class["heap"]["chunk"]["state"], "inuse")
        self.assertIsNone(by_class["data"]["chunk"])
        self.assertEqual(by_class["data"]["symbol"]["name"], "show_victim_root")
        for x in mem_refs(r):
            self.assertEqual(int(x["value"], 16), t["user"])
        self.assertGreater(r["scanned_bytes"], 0)
        return t

    def test_live_record(self):
        with Victim("show_victim") as v:
            self.check_record(v, ["-p", v.pid])
            self.assertEqual(v.settled_state(), "S")   # let go after the run

    def test_any_address_in_the_chunk(self):
        with Victim("show_victim") as v:
            t = truth(v)
            for a in (t["chunk"], t["chunk"] + 8, t["user"], t["user"] + 3,
                      t["chunk"] + t["size"] - 1):
                d = self.show(a, "-p", v.pid)
                self.assertEqual(int(d["chunk"]["addr"], 16), t["chunk"], hx(a))
                self.assertEqual(d["chunk"]["size"], t["size"])
            # without 0x, upper case
            d = self.show("%X" % t["user"], "-p", v.pid)
            self.assertEqual(int(d["address"], 16), t["user"])
            # the next byte is the holder's chunk, not the record's
            d = self.show(t["chunk"] + t["size"], "-p", v.pid)
            self.assertEqual(int(d["chunk"]["addr"], 16), t["holder"])

    def test_freed_chunks(self):
        with Victim("show_victim") as v:
            t = truth(v)
            self.assertEqual(set(t["freed"]), {"tcache", "unsorted"})
            for kind, (chunk, size) in t["freed"].items():
                d = self.show(chunk + 16, "-p", v.pid)
                self.assertEqual(int(d["chunk"]["addr"], 16), chunk)
                self.assertEqual(d["chunk"]["size"], size)
                self.assertEqual(d["chunk"]["state"], kind)
                self.assertTrue(d["chunk"]["free"])
                # a free chunk's dump ends at its size
                self.assertEqual(d["dump"]["length"], size)
            # the unsorted chunk: fd and bk point at main_arena's unsorted bin,
            # and only that bin's two words point at the chunk
            chunk, size = t["freed"]["unsorted"]
            d = self.show(chunk, "--refs", "-p", v.pid)
            w = words_by_at(d)
            for at in (chunk + 16, chunk + 24):
                self.assertTrue(w[at]["points_to"]["arena"]["main"])
            refs = mem_refs(d["refs"])
            self.assertEqual(len(refs), 2, refs)
            for x in refs:
                self.assertEqual(int(x["value"], 16), chunk)
                self.assertTrue(x["arena"]["main"])
                self.assertEqual(x["class"], "data")

    def test_outside_the_heap(self):
        with Victim("show_victim") as v:
            t = truth(v)
            d = self.show(t["global"], "--len", "64", "-p", v.pid)
            self.assertIsNone(d["chunk"])
            self.assertEqual(d["mapping"]["class"], "data")
            self.assertTrue(d["mapping"]["path"].endswith("/show_victim"))
            self.assertEqual(d["symbol"]["name"], t["global_name"])
            self.assertEqual(int(d["dump"]["addr"], 16), t["global"] & ~15)
            self.assertEqual(d["dump"]["length"], 64 + (t["global"] & 15))
            self.assertIn(b"show-victim-global-marker", bytes.fromhex(d["dump"]["hex"]))
            rc, out, err = run("show", hx(t["global"]), "-p", v.pid)
            self.assertEqual(rc, 0, err)
            self.assertIn("not in a malloc heap", out)
            self.assertIn("symbol  show_victim_global (show_victim)", out)

    def test_text(self):
        with Victim("show_victim") as v:
            t = truth(v)
            rc, out, err = run("show", hx(t["string"]), "--refs", "-p", v.pid)
            self.assertEqual(rc, 0, err)
            self.assertEqual(err, "")
            self.assertIn("chunk   %s, user pointer %s, size 0x%x" % (
                hx(t["chunk"]), hx(t["user"]), t["size"]), out)
            self.assertIn(", in use, arena ", out)
            self.assertIn("-> show_victim_global (show_victim) "
                          "\"show-victim-global-marker\"", out)
            self.assertIn("\"%s\"" % t["label_text"], out)
            self.assertIn("2 found", out)
            self.assertIn("; complete", out)
            for a in t["refs"]:
                self.assertRegex(out, r"(?m)^  %s  " % hx(a))

    def test_limits(self):
        with Victim("show_victim") as v:
            t = truth(v)
            # one result at most: cut, and said so (exit 1, partial)
            d = self.show(t["user"], "--refs", "--refs-max", "1", "-p", v.pid,
                          rc_ok=(1,))
            self.assertEqual(len(mem_refs(d["refs"])), 1)
            self.assertEqual(d["refs"]["cut"], "results")
            self.assertFalse(d["refs"]["complete"])
            self.assertIn(int(mem_refs(d["refs"])[0]["at"], 16), t["refs"])
            # a byte budget smaller than the memory to scan
            d = self.show(t["user"], "--refs", "--refs-bytes", "4096", "-p", v.pid,
                          rc_ok=(1,))
            self.assertEqual(d["refs"]["cut"], "bytes")
            self.assertEqual(d["refs"]["scanned_bytes"], 4096)
            # --max-bytes bounds the dump
            d = self.show(t["user"], "--max-bytes", "32", "-p", v.pid)
            self.assertEqual(d["dump"]["length"], 32)
            self.assertTrue(d["dump"]["truncated"])
            self.assertEqual(d["dump"]["wanted"], t["size"] + 8)

    def test_strings_samples_accepted(self):
        with Victim("show_victim") as v:
            t = truth(v)
            d, rc, err = run_json("strings", "--top", "100000", "-p", v.pid)
            self.assertEqual(rc, 0, err)
            hit = [s for s in d["strings"] if s["string"] == t["string_text"]]
            self.assertEqual(len(hit), 1)
            self.assertEqual([int(a, 16) for a in hit[0]["samples"]], [t["string"]])
            d = self.show(hit[0]["samples"][0], "-p", v.pid)
            self.assertEqual(int(d["chunk"]["addr"], 16), t["chunk"])

    def test_core(self):
        with Victim("show_victim") as v:
            core = os.path.join(self.tmp, "v.core")
            rc, out, err = run("dump", "-p", v.pid, "-o", core)
            self.assertEqual(rc, 0, err)
            t = self.check_record(v, ["-c", core])
            d = self.show(t["freed"]["tcache"][0], "-c", core)
            self.assertEqual(d["chunk"]["state"], "tcache")

    def test_errors(self):
        with Victim("show_victim") as v:
            t = truth(v)
            cases = [
                (["show", "-p", v.pid], USAGE, "no address"),
                (["show", "xyz", "-p", v.pid], USAGE, "invalid address 'xyz'"),
                (["show", "0x", "-p", v.pid], USAGE, "invalid address"),
                (["show", "-0x10", "-p", v.pid], USAGE, None),
                (["show", hx(t["user"]), "extra", "-p", v.pid], USAGE,
                 "unexpected argument 'extra'"),
                (["show", hx(t["user"])], USAGE, "no target"),
                (["show", hx(t["user"]), "-p", v.pid, "--refs-max", "0"], USAGE,
                 "invalid --refs-max"),
                (["show", "0x10", "-p", v.pid], FATAL, "address 0x10 is not mapped"),
                (["show", hx(t["noaccess"]), "-p", v.pid], FATAL,
                 "is mapped but not readable"),
            ]
            for args, code, needle in cases:
                rc, out, err = run(*args)
                self.assertEqual(rc, code, (args, err))
                lines = err.strip("\n").split("\n")
                self.assertEqual(len(lines), 1, err)
                self.assertTrue(lines[0].startswith("heapscan: "), err)
                self.assertFalse(lines[0].endswith("."), err)
                if needle:
                    self.assertIn(needle, lines[0])
                self.assertEqual(out, "")
            self.assertEqual(v.settled_state(), "S")

    def test_help_and_man_page(self):
        rc, out, err = run("show", "--help")
        self.assertEqual(rc, 0)
        with open(os.path.join(harness.SOURCE, "doc", "heapscan.1")) as f:
            man = f.read().replace("\\-", "-")
        self.assertIn(".SS heapscan show", man)
        # show's own options (the common ones are test_errors' business)
        own = out.split("this help\n", 1)[1]
        opts = set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", own))
        self.assertIn("--refs-max", opts)
        for opt in opts:
            self.assertIn(opt, man, opt)
        rc, out, err = run("--help")
        self.assertIn("show", out)


if __name__ == "__main__":
    harness.main()
