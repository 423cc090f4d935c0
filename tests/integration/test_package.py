"""Installing heapscan: cmake --install, cpack -G DEB, bash completion, --version.

- cmake --install puts the binary, man page and completion in bin,
  share/man/man1 and share/bash-completion/completions;
- cpack -G DEB makes heapscan_VERSION_ARCH.deb whose Depends names the
  runtime packages that own the libraries the binary loads (ldd, then
  dpkg -S: independent of how CPack computed them) and no -dev package;
  the .deb unpacked in a scratch root (dpkg -x) runs `heapscan --version`
  and prints the package's version and the git revision;
- the completion, run in bash as bash runs it, completes every command of
  `heapscan --help` and every option of each `heapscan CMD --help`.
"""
import os
import re
import shutil
import subprocess

import harness

BUILD = os.environ.get("HS_BUILD", "")
COMPLETION = os.path.join(BUILD, "heapscan.bash")


def sh(*args, **kw):
    p = subprocess.run(list(args), capture_output=True, text=True, timeout=300, **kw)
    if p.returncode != 0:
        raise AssertionError("%s failed (%d): %s%s" % (args, p.returncode, p.stdout, p.stderr))
    return p.stdout


def git_revision():
    """What --version should name: the source tree's revision, if git."""
    p = subprocess.run(["git", "-C", harness.SOURCE, "rev-parse", "--short=12", "HEAD"],
                       capture_output=True, text=True)
    return p.stdout.strip() if p.returncode == 0 else None


def complete(words, script=COMPLETION):
    """COMPREPLY of heapscan's completion for the command line `words`
    (the last word is the one being completed)."""
    prog = (
        'source "$1"; shift\n'
        'COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))\n'
        'COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}\n'
        '_heapscan; printf "%s\\n" "${COMPREPLY[@]}"\n')
    out = sh("bash", "--norc", "--noprofile", "-c", prog, "bash", script, *words)
    return [l for l in out.splitlines() if l]


def help_options(cmd):
    """The options `heapscan CMD --help` documents: every --long word, and the
    short options that open its option lines."""
    rc, out, err = harness.run(cmd, "--help")
    assert rc == 0, (cmd, err)
    longs = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]+", out))
    shorts = set(re.findall(r"^ +(-[A-Za-z0-9])[, ]", out, re.M))
    return longs | shorts


def commands():
    rc, out, err = harness.run("--help")
    assert rc == 0, err
    return re.findall(r"^  ([a-z][a-z0-9-]*) ", out.split("commands:")[1], re.M)


class PackageTest(harness.TmpDirTestCase):

    def check_version(self, heapscan, version=None):
        out = sh(heapscan, "--version", env={"PATH": "/usr/bin:/bin"})
        m = re.match(r"^heapscan (\d+\.\d+\.\d+) \((.*)\)\n$", out)
        self.assertTrue(m, out)
        if version:
            self.assertEqual(m.group(1), version)
        rev = git_revision()
        if rev:
            self.assertRegex(m.group(2), r"^git %s(-dirty)?$" % rev)
        else:
            self.assertEqual(m.group(2), "not built from a git checkout")
        return m.group(1)

    def test_install(self):
        prefix = os.path.join(self.tmp, "prefix")
        sh("cmake", "--install", BUILD, "--prefix", prefix)
        exe = os.path.join(prefix, "bin", "heapscan")
        self.assertTrue(os.access(exe, os.X_OK))
        page = os.path.join(prefix, "share/man/man1/heapscan.1")
        self.assertTrue(os.path.isfile(page))
        # Rendered with every warning on: none.  (A text line that starts
        # with ' or . is a request to troff, and vanishes from the page.)
        r = subprocess.run(["groff", "-man", "-Tutf8", "-ww", page],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0)
        self.assertEqual(r.stderr, "")
        self.assertIn("uniq -c | sort -rn' without the core", r.stdout.replace("\u2010", "-"))
        comp = os.path.join(prefix, "share/bash-completion/completions/heapscan")
        self.assertTrue(os.path.isfile(comp))
        self.assertEqual(complete(["heapscan", "snaps"], comp), ["snapshot"])
        self.check_version(exe)

    def test_deb(self):
        if not shutil.which("dpkg-deb"):
            harness.skip("not a Debian system: no dpkg-deb")
        out = os.path.join(self.tmp, "out")
        sh("cpack", "-G", "DEB", "--config", os.path.join(BUILD, "CPackConfig.cmake"),
           "-B", out)
        arch = sh("dpkg", "--print-architecture").strip()
        debs = [f for f in os.listdir(out) if f.endswith(".deb")]
        self.assertEqual(len(debs), 1, debs)
        m = re.match(r"^heapscan_(\d+\.\d+\.\d+)_%s\.deb$" % re.escape(arch), debs[0])
        self.assertTrue(m, debs[0])
        deb = os.path.join(out, debs[0])
        self.assertEqual(sh("dpkg-deb", "-f", deb, "Package").strip(), "heapscan")
        self.assertEqual(sh("dpkg-deb", "-f", deb, "Version").strip(), m.group(1))
        depends = sh("dpkg-deb", "-f", deb, "Depends").strip()
        dep_names = {d.split()[0] for d in depends.split(", ")}
        self.assertFalse([d for d in dep_names if d.endswith("-dev")], depends)
        # every library the binary links (DT_NEEDED, found where ldd finds
        # it) comes from a package in Depends
        root = os.path.join(self.tmp, "root")
        sh("dpkg", "-x", deb, root)
        exe = os.path.join(root, "usr", "bin", "heapscan")
        needed = set(re.findall(r"\(NEEDED\)\s+Shared library: \[(.*?)\]",
                                sh("readelf", "-d", exe)))
        self.assertIn("libz.so.1", needed)
        owners = set()
        for line in sh("ldd", exe).splitlines():
            lm = re.search(r"^\s*(\S+) => (/\S+) \(0x", line)
            if not lm or lm.group(1) not in needed:
                continue
            needed.discard(lm.group(1))
            found = lm.group(2)
            path = os.path.realpath(found)
            p = subprocess.run(["dpkg", "-S", path], capture_output=True, text=True)
            if p.returncode != 0:   # merged /usr: dpkg knows the /lib name
                p = subprocess.run(["dpkg", "-S", found], capture_output=True, text=True)
            self.assertEqual(p.returncode, 0, "no package owns %s" % path)
            owners.add(p.stdout.split(":")[0])
        self.assertEqual(needed, set(), "not found by ldd")
        self.assertTrue(owners >= {"libc6", "libelf1", "libdw1", "zlib1g"}, owners)
        self.assertEqual(owners - dep_names, set(), (owners, depends))
        for f in ("usr/share/man/man1/heapscan.1",
                  "usr/share/bash-completion/completions/heapscan"):
            self.assertTrue(os.path.isfile(os.path.join(root, f)), f)
        # runs from the scratch root with the system's libraries only
        self.check_version(exe, m.group(1))

    def test_version_outside_git(self):
        """The revision script in a tree that is not a git checkout."""
        src = os.path.join(self.tmp, "src")
        os.mkdir(src)
        out = os.path.join(self.tmp, "hs_gitrev.h")
        sh("cmake", "-DSRC=" + src, "-DOUT=" + out, "-P",
           os.path.join(harness.SOURCE, "cmake", "gitrev.cmake"))
        with open(out) as f:
            self.assertIn('#define HS_GIT_REVISION "not built from a git checkout"', f.read())

    def test_completion(self):
        cmds = commands()
        self.assertIn("snapshot", cmds)
        self.assertEqual(sorted(complete(["heapscan", ""])), sorted(cmds))
        self.assertEqual(complete(["heapscan", "snaps"]), ["snapshot"])
        for cmd in cmds:
            got = set(complete(["heapscan", cmd, "-"]))
            self.assertEqual(help_options(cmd) - got, set(), cmd)
        top = set(complete(["heapscan", "-"]))
        self.assertTrue({"--version", "--help", "--pid", "--core"} <= top, top)
        self.assertEqual(complete(["heapscan", "snapshot", "--form"]), ["--format"])
        self.assertEqual(sorted(complete(["heapscan", "snapshot", "-p", "1", "--format", ""])),
                         ["pprof", "profile"])
        self.assertEqual(complete(["heapscan", "watch", "--save-d"]), ["--save-dir"])
        mine = str(os.getpid())
        self.assertIn(mine, complete(["heapscan", "snapshot", "-p", mine[:-1]]))
        os.mkdir(os.path.join(self.tmp, "dir1"))
        got = complete(["heapscan", "watch", "--save-dir", os.path.join(self.tmp, "di")])
        self.assertEqual(got, [os.path.join(self.tmp, "dir1")])


if __name__ == "__main__":
    if not os.path.isfile(COMPLETION):
        harness.skip("no build tree with heapscan.bash: " + COMPLETION)
    harness.main()
