"""A real pre-fork server: nginx from Debian, master + 1 worker.

The test starts nginx on a loopback port with its own config in a temp
dir (daemon off, master_process on, worker_processes 1; pid, logs and
temp paths in the temp dir), hands it the listening socket (nginx's
NGINX="fd;" inheritance, so requests queue until the worker accepts: no
waiting for a port), sends requests until the worker's heap has grown
past what it inherited from the master (two adjacent [heap] mappings),
then checks heapscan's chunk totals for the worker (and the master)
against gdb_heapwalk.py, a walk by gdb with libc6-dbg from mp_.sbrk_base.
nginx is stopped at the end.
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from harness import TmpDirTestCase, main, run_json, skip  # noqa: E402
from test_prefork import gdb_counts, gdb_walk, heapscan_counts  # noqa: E402

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx")
                                  else None)

CONF = """daemon off;
master_process on;
worker_processes 1;
pid %(d)s/nginx.pid;
error_log %(d)s/error.log;
events { worker_connections 64; }
http {
    access_log off;
    keepalive_timeout 0;
    lingering_close off;
    client_body_temp_path %(d)s/body;
    proxy_temp_path %(d)s/proxy;
    fastcgi_temp_path %(d)s/fastcgi;
    uwsgi_temp_path %(d)s/uwsgi;
    scgi_temp_path %(d)s/scgi;
    server {
        listen 127.0.0.1:%(port)d;
        location / { return 200 "hello from the worker\\n"; }
    }
}
"""


def heap_maps(pid):
    with open("/proc/%d/maps" % pid) as f:
        return [line.split()[0] for line in f if line.rstrip().endswith("[heap]")]


class NginxTest(TmpDirTestCase):
    def setUp(self):
        super().setUp()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        self.port = sock.getsockname()[1]
        conf = os.path.join(self.tmp, "nginx.conf")
        with open(conf, "w") as f:
            f.write(CONF % dict(d=self.tmp, port=self.port))
        env = dict(os.environ, NGINX="%d;" % sock.fileno())
        self.nginx = subprocess.Popen(
            [NGINX, "-p", self.tmp, "-c", conf, "-e", os.path.join(self.tmp, "error.log")],
            env=env, pass_fds=[sock.fileno()], stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        sock.close()

    def tearDown(self):
        if self.nginx.poll() is None:
            self.nginx.send_signal(signal.SIGQUIT)   # graceful: worker too
            try:
                self.nginx.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.nginx.kill()
                self.nginx.wait()
        self.nginx.stderr.close()
        super().tearDown()

    def get(self, i):
        url = "http://127.0.0.1:%d/req%d?%s" % (self.port, i, "q" * 2000)
        with urllib.request.urlopen(url, timeout=30) as r:
            self.assertEqual(r.read(), b"hello from the worker\n")

    def wait_idle(self, pid, timeout=10.0):
        """Until the worker is back in epoll_wait: the response is out and
        the connection's memory freed (it closes the socket, then frees
        the pool, so the client can see EOF a moment before).  Bounded,
        like harness.Victim.settled_state."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open("/proc/%d/syscall" % pid) as f:
                nr = f.read().split()[0]
            if nr in ("232", "281"):      # epoll_wait, epoll_pwait
                return
            os.sched_yield()
        self.fail("nginx worker %d never went back to epoll_wait" % pid)

    def worker(self):
        with open("/proc/%d/task/%d/children" % (self.nginx.pid, self.nginx.pid)) as f:
            kids = [int(x) for x in f.read().split()]
        self.assertEqual(len(kids), 1, kids)
        return kids[0]

    def check(self, pid):
        doc, rc, err = run_json("heap", "-p", pid)
        self.assertEqual(rc, 0, err)
        h = doc["heap"]
        self.assertEqual(h["problems"], [])
        for a in h["arenas"]:
            for seg in a["heaps"]:
                self.assertTrue(seg["complete"], seg)
        walk = gdb_walk(pid)
        self.assertEqual(walk["total"]["bad"], 0, walk)
        self.assertEqual(heapscan_counts(h), gdb_counts(walk))
        self.assertEqual([a["system_mem"] for a in h["arenas"]],
                         [a["system_mem"] for a in walk["arenas"]])
        return h, walk

    def test_worker_equals_gdb(self):
        # Requests until the worker's heap outgrows what it inherited.
        self.get(0)
        pid = self.worker()
        for i in range(1, 200):
            if len(heap_maps(pid)) >= 2:
                break
            self.get(i)
        maps = heap_maps(pid)
        self.assertEqual(len(maps), 2, maps)
        self.assertEqual(maps[0].split("-")[1], maps[1].split("-")[0])
        self.wait_idle(pid)
        h, walk = self.check(pid)
        # The walk covers both mappings: the heap starts in the first and
        # ends at the break.
        maps = heap_maps(pid)
        self.assertEqual(len(maps), 2, maps)
        self.assertEqual(h["arenas"][0]["heaps"][0]["first_chunk"], "0x" + maps[0].split("-")[0])
        self.assertEqual(h["arenas"][0]["heaps"][0]["end"], "0x" + maps[1].split("-")[1])
        self.assertGreater(walk["total"]["inuse"][0], 100)
        # The master is exact too.
        self.check(self.nginx.pid)


if __name__ == "__main__":
    if not NGINX:
        skip("nginx is not installed (scripts/setup.sh installs nginx-light)")
    if not shutil.which("gdb"):
        skip("gdb is not installed (scripts/setup.sh installs it)")
    main()
