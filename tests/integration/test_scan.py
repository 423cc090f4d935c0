"""heapscan scan (-p PID) against victims that print their own ground truth."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
import harness as h


def by_start(report):
    return {int(r["start"], 16): r for r in report["regions"]}


def region_of(report, addr):
    for r in report["regions"]:
        if int(r["start"], 16) <= addr < int(r["end"], 16):
            return r
    return None


class ScanThreadsVictim(h.TmpDirTestCase):
    @classmethod
    def setUpClass(cls):
        cls.v = h.Victim("threads_victim", 3)
        # after "ready" the main thread is on its way into read(): the
        # report records the state it finds
        cls.v.settled_state()
        # smaps before heapscan reads anything: reading memory maps file
        # pages (libc's version string) into the target, which moves its
        # file-backed Rss; heapscan takes its smaps before it reads.
        cls.smaps = h.read_smaps(cls.v.pid)
        cls.rep, cls.rc, _ = h.run_json("-p", cls.v.pid)

    @classmethod
    def tearDownClass(cls):
        cls.v.close()

    def test_exit_code_complete(self):
        self.assertEqual(self.rc, 0)
        self.assertEqual(self.rep["schema_version"], 1)
        self.assertFalse(self.rep["partial"])

    def test_identity(self):
        t = self.rep["target"]
        self.assertEqual(t["pid"], self.v.pid)
        self.assertEqual(t["exe"], os.path.realpath(h.victim_path("threads_victim")))
        self.assertEqual(t["comm"], "threads_victim")
        self.assertTrue(t["cmdline"].endswith("threads_victim 3"))

    def test_threads_with_registers(self):
        t = self.rep["target"]
        tids = sorted(int(x) for x in os.listdir("/proc/%d/task" % self.v.pid))
        self.assertEqual(len(t["threads"]), self.v.fact("threads"))
        self.assertEqual(sorted(th["tid"] for th in t["threads"]), tids)
        for th in t["threads"]:
            self.assertIsNotNone(th["sp"])
            self.assertIn("pc", th)
            # The state before heapscan stopped it, not 't'.
            self.assertEqual(th["state"], "S")
        self.assertEqual(t["state"], "S")

    def test_anon_region_exact(self):
        start, size, touched = (int(x, 0) for x in self.v.facts["anon"])
        r = by_start(self.rep)[start]
        self.assertEqual(int(r["end"], 16) - start, size)
        self.assertEqual(r["class"], "anon")
        self.assertEqual(r["smaps"]["Rss"], touched)
        self.assertEqual(r["smaps"]["Private_Dirty"], touched)

    def test_thread_stacks(self):
        stacks = [l.split() for l in self.v.lines if l.startswith("thread ")]
        self.assertEqual(len(stacks), 3)
        for _, tid, lo, hi in stacks:
            r = region_of(self.rep, int(lo, 16))
            self.assertIsNotNone(r)
            self.assertEqual(r["class"], "stack")
            self.assertEqual(r["stack_tid"], int(tid))
            self.assertGreaterEqual(int(r["end"], 16), int(hi, 16))
        main = [r for r in self.rep["regions"] if r["path"] == "[stack]"]
        self.assertEqual(len(main), 1)
        self.assertEqual(main[0]["class"], "stack")
        self.assertEqual(main[0]["stack_tid"], self.v.pid)

    def test_thread_arenas(self):
        ptrs = [l.split() for l in self.v.lines if l.startswith("arena_ptr ")]
        for _, tid, addr in ptrs:
            r = region_of(self.rep, int(addr, 16))
            self.assertIsNotNone(r, addr)
            self.assertEqual(r["class"], "arena", r)
            self.assertEqual(int(r["start"], 16) % (64 << 20), 0)

    def test_regions_match_smaps(self):
        ours = [(int(r["start"], 16), int(r["end"], 16), r["perms"], r["smaps"])
                for r in self.rep["regions"]]
        theirs = [(s, e, p, f) for s, e, p, _, f in self.smaps]
        self.assertEqual(len(ours), len(theirs))
        for (s1, e1, p1, f1), (s2, e2, p2, f2) in zip(ours, theirs):
            self.assertEqual((s1, e1, p1), (s2, e2, p2))
            # Pss and Shared_* move when other processes (heapscan itself)
            # map the same files; these belong to the target alone.
            for key in ("Size", "Rss", "Private_Dirty", "Anonymous", "Swap", "Locked"):
                self.assertEqual(f1[key], f2[key], "%x %s" % (s1, key))

    def test_class_totals_add_up(self):
        tot = self.rep["totals"]["smaps"]
        for key in ("Size", "Rss", "Pss", "Private_Dirty", "Swap", "Anonymous"):
            self.assertEqual(sum(c["smaps"][key] for c in self.rep["classes"]),
                             tot[key], key)
        for key in ("Size", "Rss", "Private_Dirty", "Swap", "Anonymous"):
            self.assertEqual(sum(f.get(key, 0) for *_, f in self.smaps), tot[key], key)
        self.assertEqual(sum(c["count"] for c in self.rep["classes"]),
                         len(self.smaps))

    def test_target_not_left_stopped(self):
        self.assertEqual(self.v.settled_state(), "S")
        with open("/proc/%d/status" % self.v.pid) as f:
            self.assertIn("TracerPid:\t0\n", f.read())
        self.v.send("ping")  # it still answers

    def test_text_report(self):
        rc, out, err = h.run("-p", self.v.pid)
        self.assertEqual(rc, 0, err)
        self.assertIn("pid %d (threads_victim)" % self.v.pid, out)
        self.assertIn("threads:  4", out)
        self.assertRegex(out, r"\n  arena +glibc thread arena heaps +\d+ ")
        start = int(self.v.facts["anon"][0], 16)
        self.assertIn("%012x-" % start, out)
        self.assertEqual(err, "")

    def test_scan_subcommand_same_as_default(self):
        rep2, rc, _ = h.run_json("scan", "-p", self.v.pid)
        self.assertEqual(rc, 0)
        self.assertEqual(rep2["totals"]["count"], self.rep["totals"]["count"])

    def test_no_stop(self):
        rep, rc, _ = h.run_json("-p", self.v.pid, "--no-stop")
        self.assertEqual(rc, 0)
        self.assertFalse(rep["stopped"])
        self.assertEqual(rep["stop_ms"], 0)
        # Blocked threads still get their stacks from /proc/PID/task/*/syscall.
        stacks = [r for r in rep["regions"] if r["class"] == "stack"]
        self.assertEqual(len(stacks), self.v.fact("threads"))


class ScanStoppedProcess(h.TmpDirTestCase):
    def test_group_stopped_process_stays_stopped(self):
        with h.Victim("threads_victim", 1) as v:
            os.kill(v.pid, 19)  # SIGSTOP
            while v.state() != "T":
                os.sched_yield()
            rep, rc, _ = h.run_json("-p", v.pid)
            self.assertEqual(rc, 0)
            self.assertEqual(rep["target"]["state"], "T")
            # Had heapscan resumed it, it would settle in 'S' (reading stdin).
            self.assertEqual(v.settled_state(), "T")
            os.kill(v.pid, 18)  # SIGCONT
            v.send("ping")


class ScanRealPython(h.TmpDirTestCase):
    def test_python3(self):
        p = subprocess.Popen([sys.executable, "-c",
                              "import sys; x = ['leak%d' % i for i in range(100000)]; "
                              "print('ready', flush=True); sys.stdin.read()"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            self.assertEqual(p.stdout.readline().strip(), "ready")
            smaps = h.read_smaps(p.pid)
            rep, rc, _ = h.run_json("-p", p.pid)
            self.assertEqual(rc, 0)
            self.assertEqual(rep["target"]["exe"], os.path.realpath(sys.executable))
            self.assertEqual(rep["totals"]["smaps"]["Rss"],
                             sum(f.get("Rss", 0) for *_, f in smaps))
            self.assertEqual(sum(c["smaps"]["Rss"] for c in rep["classes"]),
                             rep["totals"]["smaps"]["Rss"])
            heap = [c for c in rep["classes"] if c["class"] == "heap"]
            self.assertEqual(len(heap), 1)
        finally:
            p.kill()
            p.wait()


class ScanLeakyWorker(h.TmpDirTestCase):
    """The default report on the demo worker names the leak: its two strings
    with exact counts, and its record's chunk size first by bytes."""

    def test_leak_named(self):
        with h.Victim("leaky_worker", 30000) as v:
            n = v.fact("records")
            rep, rc, _ = h.run_json("-p", v.pid)
            self.assertEqual(rc, 0)
            top = rep["strings"]["strings"][:2]
            self.assertEqual({s["string"] for s in top},
                             {v.facts["string1"][0], v.facts["string2"][0]})
            for s in top:
                self.assertEqual(s["count"], n)
            first = rep["heap"]["histogram"][0]
            size = v.fact("record_size")
            self.assertEqual(first["size"], (size + 8 + 15) // 16 * 16)
            self.assertEqual(first["count"], n)

    def test_target_exits_mid_run(self):
        with h.Victim("leaky_worker", 30000) as v:
            rc, out, err = h.run("-p", v.pid, "--json",
                                 env={"HEAPSCAN_TEST_KILL_AFTER_READS": "3"})
            self.assertEqual(rc, 1, err)
            import json
            rep = json.loads(out)
            self.assertTrue(rep["partial"])
            self.assertTrue(rep["target_exited"])
            # What was read before it died is still reported.
            self.assertGreater(rep["totals"]["count"], 0)
            rc, out, err = h.run("-p", str(v.pid))
            self.assertEqual(rc, 2)


if __name__ == "__main__":
    h.main()
