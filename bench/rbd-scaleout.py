#!/usr/bin/env python3
"""Figures for docs/rbd.md's scale-out section, on a one-node cluster.

    python3 bench/rbd-scaleout.py

Starts a cluster (tests/integration/rbd/ceph_cluster.py) and measures, on
one dataplaned:
  - blockdev-add of the first rbd node (connects) and of a second one with
    the same settings (shares the connection), and one with other
    settings (a second connection);
  - the threads and resident memory each connection adds;
and with two daemons on one image (the failover of an export):
  - A writes, is killed with SIGKILL; B opens the image: the time until
    B's first write completes (librbd breaks A's exclusive lock once A's
    watch has expired);
  - A is stopped cleanly instead (SIGTERM): the same time.
Prints one line per figure; the numbers go into docs/rbd.md by hand.
"""
import json
import os
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration", "rbd"))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration", "dataplaned"))
import qmp  # noqa: E402
from ceph_cluster import CephCluster  # noqa: E402
from qmp import Daemon  # noqa: E402

for p in ("build-bench/daemon/dataplaned", "build/daemon/dataplaned"):
    if os.access(os.path.join(ROOT, p), os.X_OK):
        qmp.DATAPLANED = os.path.join(ROOT, p)
        break


def rss_kib(pid):
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def threads(pid):
    return len(os.listdir("/proc/%d/task" % pid))


def node(cluster, name, image, **extra):
    o = {"driver": "rbd", "node-name": name, "pool": "rbd", "image": image,
         "conf": cluster.conf}
    o.update(extra)
    return o


def timed(fn):
    t0 = time.monotonic()
    fn()
    return (time.monotonic() - t0) * 1000


def failover(cluster, image, sig):
    """ms from B's open to its first completed write after A dies."""
    a = Daemon(["--blockdev", json.dumps(node(cluster, "r0", image)),
                "--nbd-server", "addr.type=unix,addr.path=nbd.sock",
                "--export", "nbd,id=e0,node-name=r0,writable=on"])
    b = None
    try:
        a.qmp()
        uri = qmp.nbd_uri(a.path("nbd.sock"), "r0")
        r = qmp.run(["qemu-io", "-f", "raw", "-c", "write 0 64k", uri])
        assert r.returncode == 0, r.stderr
        a.proc.send_signal(sig)
        a.proc.wait(timeout=60)
        b = Daemon([])
        m = b.qmp()
        t0 = time.monotonic()
        m.ok("blockdev-add", node(cluster, "r0", image))
        m.ok("nbd-server-start", {"addr": {"type": "unix",
                                           "path": b.path("nbd.sock")}})
        m.ok("block-export-add", {"type": "nbd", "id": "e0",
                                  "node-name": "r0", "writable": True})
        uri = qmp.nbd_uri(b.path("nbd.sock"), "r0")
        r = qmp.run(["qemu-io", "-f", "raw", "-c", "write 0 64k", uri])
        assert r.returncode == 0, r.stderr
        return (time.monotonic() - t0) * 1000
    finally:
        a.cleanup()
        if b:
            b.stop()
            b.cleanup()


def main():
    cluster = CephCluster().start()
    try:
        for i in range(4):
            cluster.create_image("s%d" % i, 64 << 20)
        d = Daemon([])
        try:
            m = d.qmp()
            pid = d.proc.pid
            t0, r0 = threads(pid), rss_kib(pid)
            first = timed(lambda: m.ok("blockdev-add",
                                       node(cluster, "a", "s0")))
            t1, r1 = threads(pid), rss_kib(pid)
            second = timed(lambda: m.ok("blockdev-add",
                                        node(cluster, "b", "s1")))
            t2, r2 = threads(pid), rss_kib(pid)
            other = timed(lambda: m.ok("blockdev-add", node(
                cluster, "c", "s2", **{"x-osd-op-timeout": 30})))
            t3, r3 = threads(pid), rss_kib(pid)
            print("open-first-node-ms\t%.1f" % first)
            print("open-second-node-shared-ms\t%.1f" % second)
            print("open-node-new-settings-ms\t%.1f" % other)
            print("threads-daemon-no-rbd\t%d" % t0)
            print("threads-first-connection+image\t%d" % (t1 - t0))
            print("threads-second-image-shared\t%d" % (t2 - t1))
            print("threads-second-connection+image\t%d" % (t3 - t2))
            print("rss-kib-first-connection+image\t%d" % (r1 - r0))
            print("rss-kib-second-image-shared\t%d" % (r2 - r1))
            print("rss-kib-second-connection+image\t%d" % (r3 - r2))
            d.stop()
        finally:
            d.cleanup()
        print("failover-after-sigterm-ms\t%.0f" %
              failover(cluster, "s3", signal.SIGTERM))
        print("failover-after-sigkill-ms\t%.0f" %
              failover(cluster, "s3", signal.SIGKILL))
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
