#!/usr/bin/env python3
"""rbd images served over NBD: dataplaned vs qemu-storage-daemon, with
librbd's own `rbd bench` as the ceiling.  bench/rbd.sh runs this.

    bench/rbd.sh [--quick] [--rounds N] [--only IMPL]

Starts a one-node Ceph cluster (tests/integration/rbd/ceph_cluster.py:
one monitor, one memstore OSD, loopback), creates a 1 GiB image (256 MiB
with --quick) and fills
it (so that reads go to the OSD, not to the object map's "no object"),
then, per round and implementation, runs fio's nbd engine against the
server exporting the image over a unix socket:

    4k-randread-qd32, 4k-randwrite-qd32, 64k-read-qd16, 64k-write-qd16

Figures (BENCH lines, see bench/bench-util.h):
    rbd-<job>-iops          IOPS (higher is better)
    rbd-<job>-cpu-per-op    daemon CPU (user + system of all its threads,
                            librbd's and librados's included) per
                            operation, us
    rbd-<job>-vs-rbd-bench  the implementation's IOPS / rbd bench's IOPS
                            on the same job (the share of the ceiling)

Implementations: dataplane (the export in an IOThread), dataplane-nopoll
(the same with poll-max-ns=0: no adaptive polling), dataplane-2iothreads (a
multi-threaded export over two IOThreads, iothread: [io0, io1], and fio
with two connections of half the queue depth each, one per IOThread: the
rbd driver is multiqueue, so neither connection's requests are forwarded
to the node's home), qemu-storage-daemon
(driver=rbd from qemu-block-extra; export in the main loop: 7.2 aborts
when a client leaves an IOThread export), rbd-bench (librbd in-process, no
NBD: --io-threads 32/16, its CPU is the client's).  Same librbd settings
for all (the writeback cache on, as both daemons default to).  10 s per
job (2 s with --quick).  Most of the time here is the OSD's, on the same
two cores.
"""
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration", "rbd"))
from ceph_cluster import CephCluster, ClusterError  # noqa: E402

IMAGE = "bench"
IMAGE_SIZE = 1 << 30

JOBS = [
    # name, fio rw, block size, iodepth
    ("4k-randread-qd32", "randread", "4k", 32),
    ("4k-randwrite-qd32", "randwrite", "4k", 32),
    ("64k-read-qd16", "read", "64k", 16),
    ("64k-write-qd16", "write", "64k", 16),
]


def bench(figure, impl, value, unit, better):
    print("BENCH\t%s\t%s\t%.6g\t%s\t%s" % (figure, impl, value, unit, better))
    sys.stdout.flush()


def note(figure, impl, text):
    print("NOTE\t%s\t%s\t%s" % (figure, impl, text))
    print("rbd.py: %s: %s" % (impl, text), file=sys.stderr)
    sys.stdout.flush()


def cpu_seconds(pid):
    """utime + stime of every thread of pid."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def find_dataplaned():
    if os.environ.get("DATAPLANED"):
        return os.environ["DATAPLANED"]  # another build, to compare
    for p in ("build-bench/daemon/dataplaned", "build/daemon/dataplaned"):
        p = os.path.join(ROOT, p)
        if os.access(p, os.X_OK):
            return p
    return None


class Server:
    """One NBD server exporting the image as 'disk' on a unix socket."""

    def __init__(self, impl, cluster, work):
        self.impl = impl
        self.sock = os.path.join(work, "nbd.sock")
        self.uri = "nbd+unix:///disk?socket=%s" % self.sock
        self.err = os.path.join(work, "server.err")
        node = {"driver": "rbd", "node-name": "disk0", "pool": "rbd",
                "image": IMAGE, "conf": cluster.conf}
        if impl.startswith("dataplane"):
            # dataplane-nopoll: the IOThread without adaptive polling, to
            # show what polling costs in CPU per op.
            poll = ",poll-max-ns=0" if impl == "dataplane-nopoll" else ""
            threads = ("iothread.0=io0,iothread.1=io1"
                       if impl == "dataplane-2iothreads" else "iothread=io0")
            argv = [find_dataplaned(), "--object", "iothread,id=io0" + poll,
                    "--object", "iothread,id=io1",
                    "--blockdev", json.dumps(node),
                    "--nbd-server", "addr.type=unix,addr.path=" + self.sock,
                    "--export", "type=nbd,id=exp0,node-name=disk0,name=disk,"
                    "writable=on," + threads]
        else:
            argv = ["qemu-storage-daemon", "--blockdev", json.dumps(node),
                    "--nbd-server", "addr.type=unix,addr.path=" + self.sock,
                    "--export", "type=nbd,id=exp0,node-name=disk0,name=disk,"
                    "writable=on"]
        self.proc = subprocess.Popen(argv, env=cluster.env,
                                     stdout=subprocess.DEVNULL,
                                     stderr=open(self.err, "w"))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if os.path.exists(self.sock) and subprocess.run(
                    ["nbdinfo", "--size", self.uri], capture_output=True
                    ).returncode == 0:
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("the server did not come up: %s" %
                           open(self.err).read()[-300:].replace("\n", " "))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if os.path.exists(self.sock):
            os.unlink(self.sock)


def run_fio(server, job, runtime, work):
    name, rw, bs, qd = job
    out = os.path.join(work, "fio.json")
    # dataplane-2iothreads: the same total queue depth over two
    # connections (the export puts one in each IOThread), each job on its
    # own half of the image.
    conns = 2 if server.impl == "dataplane-2iothreads" else 1
    before = cpu_seconds(server.proc.pid)
    r = subprocess.run(
        ["fio", "--name=j", "--ioengine=nbd", "--uri=" + server.uri,
         "--rw=" + rw, "--bs=" + bs, "--iodepth=%d" % (qd // conns),
         "--numjobs=%d" % conns, "--group_reporting",
         "--size=%d" % (IMAGE_SIZE // conns),
         "--offset_increment=%d" % (IMAGE_SIZE // conns),
         "--time_based", "--runtime=%d" % runtime,
         "--output-format=json", "--output=" + out],
        capture_output=True, text=True)
    if r.returncode != 0 or server.proc.poll() is not None:
        note("rbd-" + name, server.impl, "fio failed: %s" %
             r.stderr[-300:].replace("\n", " "))
        return None
    after = cpu_seconds(server.proc.pid)
    text = open(out).read()
    j = json.loads(text[text.index("{"):])["jobs"][0]
    d = j["read" if "read" in rw else "write"]
    if d["total_ios"] == 0:
        note("rbd-" + name, server.impl, "fio completed no I/O")
        return None
    bench("rbd-%s-iops" % name, server.impl, d["iops"], "IOPS", "higher")
    bench("rbd-%s-cpu-per-op" % name, server.impl,
          (after - before) * 1e6 / d["total_ios"], "us", "lower")
    return d["iops"]


def run_rbd_bench(cluster, job, runtime):
    """librbd's own benchmark for the same job, stopped after runtime."""
    name, rw, bs, qd = job
    io_type = "read" if "read" in rw else "write"
    pattern = "rand" if rw.startswith("rand") else "seq"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = subprocess.Popen(
        ["rbd", "bench", "--io-type", io_type, "--io-pattern", pattern,
         "--io-size", bs.upper(), "--io-threads", str(qd), "--io-total",
         "1T", "rbd/" + IMAGE], env=cluster.env, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, text=True)
    time.sleep(runtime)
    p.send_signal(signal.SIGTERM)  # it prints its summary and exits
    out, _ = p.communicate(timeout=60)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    summary = [ln for ln in out.splitlines() if ln.startswith("elapsed:")]
    if not summary:
        note("rbd-" + name, "rbd-bench", "no summary: %s" % out[-200:])
        return None
    f = summary[-1].split()
    ops, ops_per_sec = int(f[3]), float(f[5])
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime +
                                               before.ru_stime)
    bench("rbd-%s-iops" % name, "rbd-bench", ops_per_sec, "IOPS", "higher")
    bench("rbd-%s-cpu-per-op" % name, "rbd-bench", cpu * 1e6 / max(ops, 1),
          "us", "lower")
    return ops_per_sec


def main(argv):
    quick = "--quick" in argv
    rounds = 1 if quick else 3
    only = ""
    if "--rounds" in argv:
        rounds = int(argv[argv.index("--rounds") + 1])
    if "--only" in argv:
        only = argv[argv.index("--only") + 1]
    runtime = 2 if quick else 10
    global IMAGE_SIZE
    if quick:
        IMAGE_SIZE = 256 << 20

    impls = []
    if find_dataplaned():
        impls += ["dataplane", "dataplane-nopoll", "dataplane-2iothreads"]
    else:
        note("rbd", "dataplane", "dataplaned is not built: not measured")
    if shutil.which("qemu-storage-daemon"):
        impls.append("qemu-storage-daemon")
        note("rbd", "qemu-storage-daemon", "export in the main loop, not an "
             "IOThread: 7.2 aborts when a client leaves an IOThread export")
    else:
        note("rbd", "qemu-storage-daemon", "not installed: skipped")
    impls.append("rbd-bench")
    impls = [i for i in impls if i.startswith(only)]
    for prog in ("ceph-mon", "ceph-osd", "rbd", "fio", "nbdinfo"):
        if not shutil.which(prog):
            note("rbd", "-", "%s is not installed: no rbd figures" % prog)
            return 0

    cluster = CephCluster(memstore_bytes=3 << 30)
    work = tempfile.mkdtemp(prefix="dataplane-bench-rbd-")
    try:
        try:
            cluster.start()
            cluster.create_image(IMAGE, IMAGE_SIZE)
            # Data in every object: reads reach the OSD.
            cluster.rbd("bench", "--io-type", "write", "--io-pattern", "seq",
                        "--io-size", "4M", "--io-threads", "16",
                        "--io-total", str(IMAGE_SIZE), "rbd/" + IMAGE,
                        timeout=600)
        except ClusterError as e:
            note("rbd", "-", "the Ceph cluster did not start: %s" % e)
            return 1
        for r in range(rounds):
            ceiling = {}
            for impl in ["rbd-bench"] + [i for i in impls if i != "rbd-bench"]:
                print("rbd.py: round %d/%d: %s" % (r + 1, rounds, impl),
                      file=sys.stderr)
                if impl == "rbd-bench":
                    for job in JOBS:
                        ceiling[job[0]] = run_rbd_bench(cluster, job, runtime)
                    continue
                try:
                    server = Server(impl, cluster, work)
                except RuntimeError as e:
                    note("rbd", impl, str(e))
                    continue
                try:
                    for job in JOBS:
                        iops = run_fio(server, job, runtime, work)
                        if iops and ceiling.get(job[0]):
                            bench("rbd-%s-vs-rbd-bench" % job[0], impl,
                                  iops / ceiling[job[0]], "ratio", "higher")
                finally:
                    server.stop()
    finally:
        cluster.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
