"""A throwaway one-node Ceph cluster for the rbd tests and benchmark.

One monitor and one OSD on loopback, the OSD on memstore (data in memory),
no authentication, pool 'rbd' with one replica; everything lives in a
temporary directory and every daemon runs in the foreground as our child,
so that stop() (or our exit) leaves nothing behind.  Built from
/work/shared/recipes/ceph-single-node.sh.

    python3 ceph_cluster.py run -- CMD ARGS...

starts a cluster, runs CMD with CEPH_CONF (and CEPH_MON_ADDR) in its
environment, stops the cluster and exits with CMD's status.
"""
import atexit
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid

# Bounds: starting takes ~20 s on a quiet 2-core machine.
START_TIMEOUT = 180
STOP_TIMEOUT = 30


class ClusterError(Exception):
    pass


def _die_with_parent():
    """In the child before exec: the daemon is killed if we die, even by
    SIGKILL (a test harness's timeout), so no cluster outlives its test."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


# SIGTERM (meson's timeout) runs the atexit handlers: the cluster stops.
if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
    signal.signal(signal.SIGTERM, lambda sig, frame: sys.exit(128 + sig))


def free_port():
    """A port nobody listens on now (the monitor needs a fixed one)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class CephCluster:
    def __init__(self, memstore_bytes=1 << 30, osd_conf=None):
        self.dir = tempfile.mkdtemp(prefix="dataplane-ceph-")
        self.conf = os.path.join(self.dir, "ceph.conf")
        self.port = free_port()
        self.mon_addr = "127.0.0.1:%d" % self.port
        self.mon = None
        self.osd = None
        self.osd_id = None
        self.memstore_bytes = memstore_bytes
        self.osd_conf = osd_conf or {}
        self.env = dict(os.environ, CEPH_CONF=self.conf)
        atexit.register(self.stop)

    # ---- helpers --------------------------------------------------------

    def log_tail(self, name, lines=20):
        path = os.path.join(self.dir, "%s.log" % name)
        try:
            with open(path, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return "(no %s)" % path

    def run(self, argv, timeout=60, check=True, input=None):
        """Runs a ceph command-line tool against the cluster."""
        try:
            r = subprocess.run(argv, env=self.env, capture_output=True,
                               text=True, timeout=timeout, input=input)
        except subprocess.TimeoutExpired:
            raise ClusterError("%s: timed out after %d s" %
                               (" ".join(argv), timeout))
        if check and r.returncode != 0:
            raise ClusterError("%s: exit %d: %s" % (" ".join(argv),
                                                   r.returncode,
                                                   r.stderr.strip()[-500:]))
        return r

    def _spawn(self, argv):
        return subprocess.Popen(argv, env=self.env, stdout=subprocess.DEVNULL,
                                stderr=open(os.path.join(
                                    self.dir, "%s.stderr" % argv[0]), "ab"),
                                start_new_session=True,
                                preexec_fn=_die_with_parent)

    # ---- life -----------------------------------------------------------

    def start(self):
        """Starts the cluster and waits until an image can be created."""
        deadline = time.monotonic() + START_TIMEOUT
        fsid = str(uuid.uuid4())
        os.makedirs(os.path.join(self.dir, "mon"))
        os.makedirs(os.path.join(self.dir, "osd0"))
        os.makedirs(os.path.join(self.dir, "run"))
        extra = "".join("%s = %s\n" % kv for kv in self.osd_conf.items())
        with open(self.conf, "w") as f:
            f.write("""[global]
fsid = %(fsid)s
mon host = v2:%(addr)s
auth cluster required = none
auth service required = none
auth client required = none
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon warn on pool no redundancy = false
osd objectstore = memstore
memstore device bytes = %(mem)d
osd crush chooseleaf type = 0
# A stopped OSD saves its memstore and loads it again on restart.
osd fast shutdown = false
run dir = %(dir)s/run
log file = %(dir)s/$name.log
admin socket = %(dir)s/run/$name.asok
mon data = %(dir)s/mon
osd data = %(dir)s/osd$id
ms bind ipv6 = false
%(extra)s""" % {"fsid": fsid, "addr": self.mon_addr, "dir": self.dir,
                "mem": self.memstore_bytes, "extra": extra})
        self.run(["monmaptool", "--create", "--addv", "a",
                  "[v2:%s]" % self.mon_addr, "--fsid", fsid,
                  os.path.join(self.dir, "monmap")])
        self.run(["ceph-mon", "--mkfs", "-i", "a", "--monmap",
                  os.path.join(self.dir, "monmap")])
        self.mon = self._spawn(["ceph-mon", "-f", "-i", "a"])
        self.osd_id = self.run(["ceph", "osd", "create"],
                               timeout=60).stdout.strip()
        self.run(["ceph-osd", "--mkfs", "-i", self.osd_id], timeout=120)
        self.start_osd()
        self.run(["ceph", "osd", "pool", "create", "rbd", "8"], timeout=60)
        self.run(["ceph", "osd", "pool", "application", "enable", "rbd",
                  "rbd"], timeout=60, check=False)
        self.wait_usable(deadline)
        return self

    def wait_usable(self, deadline):
        """Until an image can be created and removed (the OSD is up and
        its placement groups are active)."""
        last = ""
        while time.monotonic() < deadline:
            if self.mon.poll() is not None:
                raise ClusterError("ceph-mon exited (%d): %s" % (
                    self.mon.returncode, self.log_tail("mon.a")))
            if self.osd and self.osd.poll() is not None:
                raise ClusterError("ceph-osd exited (%d): %s" % (
                    self.osd.returncode, self.log_tail("osd.%s" %
                                                       self.osd_id)))
            r = self.run(["rbd", "create", "--size", "1M", "rbd/probe"],
                         timeout=10, check=False) \
                if time.monotonic() < deadline - 10 else None
            if r is not None and r.returncode == 0:
                self.run(["rbd", "rm", "rbd/probe"], timeout=30)
                return
            last = r.stderr.strip() if r is not None else last
            time.sleep(1)
        raise ClusterError("the cluster did not become usable within %d s "
                           "(last: %s)" % (START_TIMEOUT, last))

    def start_osd(self):
        self.osd = self._spawn(["ceph-osd", "-f", "-i", self.osd_id])

    def stop_osd(self):
        """Stops the OSD cleanly (memstore saved); clients' requests to it
        wait or time out."""
        if self.osd and self.osd.poll() is None:
            self.osd.send_signal(signal.SIGTERM)
            try:
                self.osd.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.osd.kill()
                self.osd.wait()
        self.osd = None

    def restart_osd(self, timeout=120):
        self.start_osd()
        self.wait_usable(time.monotonic() + timeout)

    def start_osd_if_stopped(self):
        """After a test that stopped the OSD, whatever happened."""
        if self.osd is None or self.osd.poll() is not None:
            self.restart_osd()

    def stop(self):
        for p in (self.osd, self.mon):
            if p and p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in (self.osd, self.mon):
            if p:
                try:
                    p.wait(timeout=STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.osd = self.mon = None
        if os.path.isdir(self.dir):
            shutil.rmtree(self.dir, ignore_errors=True)

    # ---- images ---------------------------------------------------------

    def rbd(self, *args, timeout=120, check=True, input=None):
        return self.run(["rbd"] + list(args), timeout=timeout, check=check,
                        input=input)

    def create_image(self, name, size, features=None):
        # rbd's bare sizes are MiB.
        argv = ["create", "--size", "%dK" % (size // 1024), "rbd/%s" % name]
        if features is not None:
            argv += ["--image-feature", features] if features else \
                ["--image-feature", "layering"]
        self.rbd(*argv)


def main(argv):
    if len(argv) < 3 or argv[1] != "run" or "--" not in argv:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    cmd = argv[argv.index("--") + 1:]
    cluster = CephCluster()
    try:
        cluster.start()
    except ClusterError as e:
        print("ceph_cluster: cannot start the cluster: %s" % e,
              file=sys.stderr)
        cluster.stop()
        return 1
    try:
        env = dict(cluster.env, CEPH_MON_ADDR=cluster.mon_addr)
        return subprocess.call(cmd, env=env)
    finally:
        cluster.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
