#!/usr/bin/env python3
"""dataplaned's rbd driver against a real one-node Ceph cluster.

    python3 rbd_tests.py [test-name ...]

starts one cluster (ceph_cluster.py), runs every test (or those named)
against it, one dataplaned per test, stops the cluster and exits 0 if all
passed, 1 otherwise.  A cluster that cannot start is a failure that says
why, never a skip.  Output: one "ok"/"FAIL" line per test (TAP-like).
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "dataplaned"))

from ceph_cluster import CephCluster, ClusterError, free_port  # noqa: E402
import qmp  # noqa: E402
from qmp import Daemon, TestFailure, check, nbd_uri, run  # noqa: E402

# Daemons run in their own directories.
qmp.DATAPLANED = os.path.abspath(qmp.DATAPLANED)

TESTS = []
cluster = None


def test(fn):
    TESTS.append(fn)
    return fn


def name_of(fn):
    return fn.__name__[len("test_"):].replace("_", "-")


# ---- helpers ----------------------------------------------------------------

_image_seq = [0]


def new_image(size=64 << 20, features=None):
    """A fresh image in pool rbd; returns its name."""
    _image_seq[0] += 1
    name = "t%d" % _image_seq[0]
    cluster.create_image(name, size, features)
    return name


def rbd_node(node, image, **extra):
    opts = {"driver": "rbd", "node-name": node, "pool": "rbd",
            "image": image, "conf": cluster.conf}
    opts.update(extra)
    return opts


def blockdev_arg(opts):
    return ["--blockdev", json.dumps(opts)]


def nbd_args(*exports):
    """--nbd-server on nbd.sock and one --export per (node, iothread)."""
    args = ["--nbd-server", "addr.type=unix,addr.path=nbd.sock"]
    for node, iothread in exports:
        args += ["--export", "nbd,id=e-%s,node-name=%s,writable=on%s" %
                 (node, node, ",iothread=" + iothread if iothread else "")]
    return args


def uri(d, node):
    return nbd_uri(d.path("nbd.sock"), node)


def qemu_io(d, node, *cmds, fmt_check=True, read_only=False):
    argv = ["qemu-io", "-f", "raw"] + (["-r"] if read_only else [])
    for c in cmds:
        argv += ["-c", c]
    r = run(argv + [uri(d, node)])
    if fmt_check:
        check(r.returncode == 0 and "Pattern verification failed" not in
              r.stdout and "error" not in r.stdout.lower(),
              "qemu-io %r: %s %s" % (cmds, r.stdout, r.stderr))
    return r


def proc_threads(pid):
    return len(os.listdir("/proc/%d/task" % pid))


def proc_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def tcp_sessions(pid, port):
    """TCP connections of process pid whose remote port is port (sessions
    with the monitor)."""
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        m = re.match(r"socket:\[(\d+)\]", target)
        if m:
            inodes.add(m.group(1))
    n = 0
    for table in ("/proc/%d/net/tcp" % pid, "/proc/%d/net/tcp6" % pid):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            rport = int(f[2].split(":")[1], 16)
            if rport == port and f[9] in inodes and f[3] == "01":
                n += 1
    return n


def wait_for(cond, what, timeout=60):
    """Polls cond (an observable state, not a timing) until true."""
    deadline = time.monotonic() + timeout
    while not cond():
        check(time.monotonic() < deadline, "timed out waiting for " + what)
        time.sleep(0.1)


def rbd_export(image, path):
    cluster.rbd("export", "rbd/%s" % image, path)


def random_file(path, size):
    with open(path, "wb") as f:
        f.write(os.urandom(size))


# ---- data ---------------------------------------------------------------------

@test
def test_nbd_export_from_iothread_matches_what_was_written():
    """Data written over NBD to an rbd node in an IOThread is what qemu-img
    compare sees through the export and what rbd export reads from the
    cluster."""
    image = new_image(32 << 20)
    tmp = tempfile.mkdtemp(prefix="rbd-test-")
    src = os.path.join(tmp, "src.raw")
    out = os.path.join(tmp, "export.raw")
    random_file(src, 32 << 20)
    d = Daemon(["--object", "iothread,id=io0"] +
               blockdev_arg(rbd_node("r0", image)) + nbd_args(("r0", "io0")))
    try:
        d.qmp()
        r = run(["nbdcopy", src, uri(d, "r0")])
        check(r.returncode == 0, "nbdcopy: %s" % r.stderr)
        r = run(["qemu-img", "compare", "-f", "raw", "-F", "raw", src,
                 uri(d, "r0")])
        check(r.returncode == 0, "qemu-img compare: %s %s" % (r.stdout,
                                                              r.stderr))
        # Flushed at close: the cluster has it all.
        d.stop()
        rbd_export(image, out)
        r = run(["cmp", src, out])
        check(r.returncode == 0, "rbd export differs: %s" % r.stdout)
    finally:
        d.cleanup()
        shutil.rmtree(tmp)


@test
def test_fio_verify_while_node_moves_between_iothreads():
    """fio writes and verifies through NBD while the rbd node hops between
    two IOThreads (x-blockdev-set-iothread) every 100 ms."""
    image = new_image(128 << 20)
    d = Daemon(["--object", "iothread,id=ioA", "--object", "iothread,id=ioB"] +
               blockdev_arg(rbd_node("r0", image)) + nbd_args(("r0", "ioA")))
    try:
        m = d.qmp()
        fio = subprocess.Popen(
            ["fio", "--name=verify", "--ioengine=nbd", "--uri=" + uri(d, "r0"),
             "--rw=randwrite", "--bs=4k", "--iodepth=32", "--size=128M",
             "--time_based", "--runtime=8", "--verify=crc32c",
             "--do_verify=1", "--verify_fatal=1", "--verify_backlog=512",
             "--verify_state_save=0", "--output-format=json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        moves = 0
        targets = ["ioB", "ioA"]
        while fio.poll() is None:
            m.ok("x-blockdev-set-iothread",
                 {"node-name": "r0", "iothread": targets[moves % 2],
                  "force": True})
            moves += 1
            # A move every 100 ms: the interval is the test's subject.
            time.sleep(0.1)
        out, err = fio.communicate(timeout=120)
        check(fio.returncode == 0, "fio failed (%d): %s" % (fio.returncode,
                                                            err[-2000:]))
        job = json.loads(out[out.index("{"):])["jobs"][0]
        check(job["error"] == 0, "fio error %r" % job["error"])
        check(job["write"]["io_bytes"] > 0, "fio wrote nothing")
        check(moves >= 20, "only %d moves" % moves)
        print("# moves=%d written=%d MiB verified" %
              (moves, job["write"]["io_bytes"] >> 20))
        d.stop()
    finally:
        d.cleanup()


@test
def test_multiqueue_requests_from_three_iothreads_in_process():
    """The block layer's multiqueue test (tests/unit/test-block-multiqueue.c
    built as test-rbd-multiqueue) on an rbd node: three IOThreads submit
    random writes, FUA writes, reads checked against a model, write-zeroes,
    flushes and block status at once while the main loop moves the node's
    home between the first IOThread and itself and drains it; every
    callback must run in its submitter's context, the final disk must equal
    the models, and the two IOThreads that are never home must have
    completed rbd requests through their own contexts' queues (forwarded
    requests would complete through the home's).  Then an IOThread that
    cannot get an eventfd for its queue (RLIMIT_NOFILE lowered) still
    completes rbd requests in its own thread, through aio_defer."""
    exe = os.environ.get("RBD_MULTIQUEUE")
    check(exe and os.path.exists(exe),
          "RBD_MULTIQUEUE (test-rbd-multiqueue, built by meson) not found: %r"
          % exe)
    image = new_image(4 << 20)
    env = dict(os.environ, G_SLICE="always-malloc",
               RBD_MQ_SPEC="driver=rbd,pool=rbd,image=%s,conf=%s" %
               (image, cluster.conf))
    r = subprocess.run([exe, "--verbose"], env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=600)
    passed = re.findall(r"^ok \d+ (/block/multiqueue/\S+)", r.stdout, re.M)
    check(r.returncode == 0 and passed == ["/block/multiqueue/rbd",
                                           "/block/multiqueue/rbd-no-eventfd"],
          "test-rbd-multiqueue (exit %d): %s" % (r.returncode,
                                                 r.stdout[-3000:]))
    for line in r.stdout.splitlines():
        if "completions in its own context" in line:
            print(line)


@test
def test_multi_threaded_export_fio_verify_while_home_moves():
    """An NBD export of an rbd node over two IOThreads (iothread: [ioA,
    ioB]): four fio connections, spread two and two, write and verify
    (crc32c) their own regions while the node's home moves between ioA,
    ioB and the main loop; afterwards the image on the cluster holds what
    the clients read back."""
    image = new_image(64 << 20)
    d = Daemon(["--object", "iothread,id=ioA", "--object", "iothread,id=ioB"] +
               blockdev_arg(rbd_node("r0", image)) +
               ["--nbd-server", "addr.type=unix,addr.path=nbd.sock"])
    tmp = tempfile.mkdtemp(prefix="rbd-test-")
    try:
        m = d.qmp()
        m.ok("block-export-add", {"type": "nbd", "id": "e0",
                                  "node-name": "r0", "writable": True,
                                  "iothread": ["ioA", "ioB"]})
        fio = subprocess.Popen(
            ["fio", "--name=verify", "--ioengine=nbd", "--uri=" + uri(d, "r0"),
             "--rw=randwrite", "--bs=4k", "--iodepth=16", "--numjobs=4",
             "--size=16M", "--offset_increment=16M", "--io_size=4M",
             "--verify=crc32c", "--do_verify=1", "--verify_fatal=1",
             "--verify_backlog=256", "--verify_state_save=0",
             "--group_reporting", "--output-format=json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # Count connections, not time: once all four are attached, check
        # the spread and move the home while they run.
        spread = None
        moves = 0
        targets = ["ioB", "ioA", None]
        try:
            while fio.poll() is None:
                e = m.ok("query-block-exports")[0]
                if spread is None and sum(e["x-iothread-connections"]) == 4:
                    spread = e["x-iothread-connections"]
                if spread is not None:
                    m.ok("x-blockdev-set-iothread",
                         {"node-name": "r0", "iothread": targets[moves % 3],
                          "force": True})
                    moves += 1
                time.sleep(0.05)
            out, err = fio.communicate(timeout=300)
        finally:
            if fio.poll() is None:
                fio.kill()
                fio.communicate()
        check(fio.returncode == 0, "fio failed (%d): %s" % (fio.returncode,
                                                            err[-2000:]))
        job = json.loads(out[out.index("{"):])["jobs"][0]
        check(job["error"] == 0, "fio error %r" % job["error"])
        check(job["write"]["io_bytes"] == 4 * (4 << 20),
              "written %r" % job["write"]["io_bytes"])
        check(spread == [2, 2], "connections per IOThread: %r" % spread)
        check(moves >= 3, "only %d moves of the home while fio ran" % moves)
        # What NBD clients read is what the cluster has (after the
        # daemon's close flushed librbd's cache).
        via_nbd = os.path.join(tmp, "nbd.raw")
        r = run(["nbdcopy", uri(d, "r0"), via_nbd])
        check(r.returncode == 0, "nbdcopy: %s" % r.stderr)
        d.stop()
        on_cluster = os.path.join(tmp, "cluster.raw")
        rbd_export(image, on_cluster)
        r = run(["cmp", via_nbd, on_cluster])
        check(r.returncode == 0, "rbd export differs: %s" % r.stdout)
        print("# spread=%r moves=%d" % (spread, moves))
    finally:
        d.cleanup()
        shutil.rmtree(tmp)


@test
def test_block_status_gives_sparse_copies():
    """Block status comes from the object map (fast-diff) or, without one,
    from librbd's object listing: NBD clients see the holes, and nbdcopy
    makes a sparse copy equal to the image."""
    tmp = tempfile.mkdtemp(prefix="rbd-test-")
    try:
        for features in (None, "layering"):
            image = new_image(64 << 20, features)
            d = Daemon(blockdev_arg(rbd_node("r0", image)) +
                       nbd_args(("r0", None)))
            try:
                d.qmp()
                qemu_io(d, "r0", "write -P 0x11 0 64k", "write -P 0x22 20M 4M",
                        "write -P 0x33 60M 1M")
                r = run(["nbdinfo", "--map", "--json", uri(d, "r0")])
                check(r.returncode == 0, "nbdinfo --map: %s" % r.stderr)
                extents = json.loads(r.stdout)
                data = [(e["offset"], e["length"]) for e in extents
                        if not e["type"] & 1]
                holes = sum(e["length"] for e in extents if e["type"] & 1)
                # Objects are 4 MiB: data is reported per object at worst.
                check(holes >= (64 << 20) - 3 * (4 << 20),
                      "%s: only %d bytes of holes: %r" % (features, holes,
                                                          extents))
                for off in (0, 20 << 20, 60 << 20):
                    check(any(o <= off < o + n for o, n in data),
                          "%s: %d not data: %r" % (features, off, extents))
                copy = os.path.join(tmp, "copy-%s.raw" % features)
                r = run(["nbdcopy", uri(d, "r0"), copy])
                check(r.returncode == 0, "nbdcopy: %s" % r.stderr)
                st = os.stat(copy)
                check(st.st_size == 64 << 20, "copy size %d" % st.st_size)
                check(st.st_blocks * 512 <= 16 << 20,
                      "%s: copy not sparse: %d bytes allocated" %
                      (features, st.st_blocks * 512))
                r = run(["qemu-img", "compare", "-f", "raw", "-F", "raw",
                         copy, uri(d, "r0")])
                check(r.returncode == 0, "compare: %s" % r.stdout)
                r = run(["qemu-img", "map", "--output=json", "-f", "raw",
                         uri(d, "r0")])
                check(r.returncode == 0, "qemu-img map: %s" % r.stderr)
                check(any(not e["data"] for e in json.loads(r.stdout)),
                      "qemu-img map sees no hole: %s" % r.stdout[:500])
                d.stop()
            finally:
                d.cleanup()
    finally:
        shutil.rmtree(tmp)


@test
def test_discard_and_write_zeroes_unmap():
    """discard=unmap passes NBD trims to librbd; write-zeroes with unmap
    leaves holes; both read back as zeroes."""
    image = new_image(32 << 20)
    d = Daemon(blockdev_arg(rbd_node("r0", image, discard="unmap")) +
               nbd_args(("r0", None)))
    try:
        d.qmp()
        qemu_io(d, "r0", "write -P 0x44 0 16M", "discard 0 8M",
                "write -z -u 8M 8M", "read -P 0 0 16M")
        r = run(["nbdinfo", "--map", "--json", uri(d, "r0")])
        holes = sum(e["length"] for e in json.loads(r.stdout) if e["type"] & 1)
        check(holes >= 24 << 20, "holes after discard: %d" % holes)
        d.stop()
    finally:
        d.cleanup()


@test
def test_snapshot_opens_read_only():
    """A snapshot opens only read-only and shows the data of its time."""
    image = new_image(16 << 20)
    d = Daemon(blockdev_arg(rbd_node("r0", image)) + nbd_args(("r0", None)))
    try:
        m = d.qmp()
        qemu_io(d, "r0", "write -P 0x55 0 1M")
        cluster.rbd("snap", "create", "rbd/%s@s1" % image)
        qemu_io(d, "r0", "write -P 0x66 0 1M")
        m.err("blockdev-add", rbd_node("snap0", image, snapshot="s1"),
              desc="snapshots are always read-only")
        m.ok("blockdev-add", rbd_node("snap0", image, snapshot="s1",
                                      **{"read-only": True}))
        m.err("block-export-add", {"type": "nbd", "id": "es", "node-name":
                                   "snap0", "writable": True})
        m.ok("block-export-add", {"type": "nbd", "id": "es",
                                  "node-name": "snap0"})
        qemu_io(d, "snap0", "read -P 0x55 0 1M", read_only=True)
        qemu_io(d, "r0", "read -P 0x66 0 1M")
        # The export is read-only: a client cannot even open it writable.
        r = qemu_io(d, "snap0", "write -P 0x77 0 4k", fmt_check=False)
        check(r.returncode != 0 and "wrote" not in r.stdout,
              "a write to the snapshot: %s %s" % (r.stdout, r.stderr))
        m.err("block_resize", {"node-name": "snap0", "size": 32 << 20},
              desc="read-only")
        d.stop()
    finally:
        d.cleanup()


@test
def test_block_resize_reaches_the_image_and_clients():
    image = new_image(16 << 20)
    d = Daemon(blockdev_arg(rbd_node("r0", image)) + nbd_args(("r0", None)))
    try:
        m = d.qmp()
        qemu_io(d, "r0", "write -P 0x12 15M 1M")
        m.ok("block_resize", {"node-name": "r0", "size": 48 << 20})
        r = run(["nbdinfo", "--size", uri(d, "r0")])
        check(int(r.stdout) == 48 << 20, "nbdinfo size %r" % r.stdout)
        info = json.loads(cluster.rbd("info", "--format", "json",
                                      "rbd/%s" % image).stdout)
        check(info["size"] == 48 << 20, "rbd info size %r" % info["size"])
        qemu_io(d, "r0", "read -P 0x12 15M 1M", "read -P 0 16M 32M",
                "write -P 0x13 47M 1M", "read -P 0x13 47M 1M")
        m.ok("block_resize", {"node-name": "r0", "size": 8 << 20})
        info = json.loads(cluster.rbd("info", "--format", "json",
                                      "rbd/%s" % image).stdout)
        check(info["size"] == 8 << 20, "shrunk: %r" % info["size"])
        d.stop()
    finally:
        d.cleanup()


# ---- opening ----------------------------------------------------------------

@test
def test_open_errors_name_what_was_wrong_and_leave_nothing():
    """Wrong pool, image, namespace, snapshot, configuration file, secret
    and an unreachable monitor: one line each naming the culprit, in
    bounded time (the unreachable monitor: its x-mount-timeout), the daemon
    stays up, and its threads and file descriptors come back to where they
    were."""
    image = new_image(4 << 20)
    d = Daemon()
    try:
        m = d.qmp()
        pid = d.proc.pid
        # One successful open and close first: librados's and the pool's
        # threads that stay for the process's life are then counted in.
        m.ok("blockdev-add", rbd_node("warm", image))
        m.ok("blockdev-del", {"node-name": "warm"})
        wait_for(lambda: tcp_sessions(pid, cluster.port) == 0,
                 "the connection's close")
        threads, fds = proc_threads(pid), proc_fds(pid)
        closed = str(free_port())
        cases = [
            (rbd_node("a", image, pool="nopool"), "Pool 'nopool' does not "
             "exist"),
            (rbd_node("a", "noimage"), "Image 'rbd/noimage' does not exist"),
            (rbd_node("a", image, namespace="nons"), "Namespace 'nons' does "
             "not exist in pool 'rbd'"),
            (rbd_node("a", image, snapshot="nosnap", **{"read-only": True}),
             "Snapshot 'nosnap' of image 'rbd/%s' does not exist" % image),
            (rbd_node("a", image, conf="/nonexistent/ceph.conf"),
             "Cannot read the Ceph configuration file "
             "'/nonexistent/ceph.conf'"),
            (rbd_node("a", image, **{"key-secret": "nosecret"}),
             "No secret with id 'nosecret'"),
            (rbd_node("a", image, server=[{"host": "127.0.0.1",
                                           "port": closed}],
                      **{"x-mount-timeout": 2}),
             "no answer from monitors 127.0.0.1:%s within 2 s" % closed),
            (rbd_node("a", image, **{"x-osd-op-timeout": "soon"}),
             "'x-osd-op-timeout' expects a number of seconds"),
        ]
        for opts, want in cases:
            desc = m.err("blockdev-add", opts, desc=want)
            check("\n" not in desc, "not one line: %r" % desc)
        check(m.ok("query-named-block-nodes") == [], "no node left")
        wait_for(lambda: proc_threads(pid) <= threads,
                 "threads back to %d (now %d)" % (threads, proc_threads(pid)))
        check(proc_fds(pid) <= fds, "fds %d, were %d" % (proc_fds(pid), fds))
        check(tcp_sessions(pid, cluster.port) == 0, "a monitor session left")
        d.stop()
    finally:
        d.cleanup()
    # On the command line: exit 1 and one line on stderr.
    d = Daemon(blockdev_arg(rbd_node("r0", "noimage")), monitor=False)
    try:
        status, out, err = d.wait()
        check(status == 1, "exit status %d" % status)
        lines = err.strip().splitlines()
        check(len(lines) == 1 and "Image 'rbd/noimage' does not exist" in
              lines[0], "stderr: %r" % err)
        d.check_clean()
    finally:
        d.cleanup()


@test
def test_qmp_answers_during_a_slow_open():
    """blockdev-add waiting on an unreachable monitor holds up only its own
    client: another client's commands are answered meanwhile, and the
    first client gets its error afterwards."""
    image = new_image(4 << 20)
    d = Daemon(["--blockdev", "driver=memory,node-name=mem0,size=1M"] +
               nbd_args(("mem0", None)))
    try:
        slow, other = d.qmp(), d.qmp()
        closed = str(free_port())
        slow.send_raw(json.dumps({
            "execute": "blockdev-add", "id": "slow",
            "arguments": rbd_node("a", image, server=[
                {"host": "127.0.0.1", "port": closed}],
                **{"x-mount-timeout": 6})}).encode() + b"\n")
        slow.send_raw(b'{"execute": "query-version", "id": "after"}\n')
        answered = 0
        # The slow reply cannot come before its timeout; while it waits,
        # the other client and the memory export are served.
        for _ in range(5):
            check(other.ok("query-named-block-nodes")[0]["node-name"] ==
                  "mem0", "nodes")
            qemu_io(d, "mem0", "write -P 0x1 0 4k", "read -P 0x1 0 4k")
            answered += 1
        r = slow.reply()
        check(r.get("id") == "slow" and "no answer from monitors" in
              r["error"]["desc"], "slow reply %r" % r)
        r = slow.reply()
        check(r.get("id") == "after" and "return" in r, "then %r" % r)
        check(answered == 5, "answered %d" % answered)
        # The blocked client's queue did not reorder anything, and a good
        # open through QMP works.
        slow.ok("blockdev-add", rbd_node("r0", image))
        d.stop()
    finally:
        d.cleanup()


@test
def test_nodes_share_one_cluster_connection():
    """Nodes with the same settings share one connection (one monitor
    session), other settings get their own, and the last close ends it."""
    images = [new_image(4 << 20) for _ in range(3)]
    d = Daemon()
    try:
        m = d.qmp()
        pid = d.proc.pid
        m.ok("blockdev-add", rbd_node("a", images[0]))
        m.ok("blockdev-add", rbd_node("b", images[1]))
        m.ok("blockdev-add", rbd_node("c", images[2],
                                      **{"read-only": True}))
        check(tcp_sessions(pid, cluster.port) == 1,
              "sessions with 3 alike nodes: %d" %
              tcp_sessions(pid, cluster.port))
        m.ok("blockdev-add", rbd_node("d", images[0],
                                      **{"x-osd-op-timeout": 30,
                                         "read-only": True}))
        check(tcp_sessions(pid, cluster.port) == 2,
              "sessions with other settings: %d" %
              tcp_sessions(pid, cluster.port))
        for n in ("a", "b", "d"):
            m.ok("blockdev-del", {"node-name": n})
        wait_for(lambda: tcp_sessions(pid, cluster.port) == 1,
                 "the second connection's end")
        m.ok("blockdev-del", {"node-name": "c"})
        wait_for(lambda: tcp_sessions(pid, cluster.port) == 0,
                 "the last connection's end")
        d.stop()
    finally:
        d.cleanup()


@test
def test_export_fails_over_to_another_daemon():
    """Two daemons on one image (scale-out): B serves it read-only while A
    writes; A stops; B opens it writable and takes over the writes (the
    exclusive lock passes), with A's data there."""
    image = new_image(16 << 20)
    a = Daemon(blockdev_arg(rbd_node("r0", image)) + nbd_args(("r0", None)))
    b = None
    try:
        a.qmp()
        qemu_io(a, "r0", "write -P 0x21 0 1M")
        b = Daemon(blockdev_arg(rbd_node("ro", image, **{"read-only": True}))
                   + ["--nbd-server", "addr.type=unix,addr.path=nbd.sock",
                      "--export", "nbd,id=e-ro,node-name=ro"])
        mb = b.qmp()
        qemu_io(b, "ro", "read -P 0x21 0 1M", read_only=True)
        a.stop()
        mb.ok("blockdev-add", rbd_node("rw", image))
        mb.ok("block-export-add", {"type": "nbd", "id": "e-rw",
                                   "node-name": "rw", "writable": True})
        qemu_io(b, "rw", "read -P 0x21 0 1M", "write -P 0x22 1M 1M",
                "read -P 0x22 1M 1M")
        b.stop()
        r = cluster.rbd("lock", "ls", "--format", "json", "rbd/%s" % image)
        check(json.loads(r.stdout or "[]") in ([], {}),
              "a lock left behind: %s" % r.stdout)
    finally:
        a.cleanup()
        if b:
            b.cleanup()


# ---- faults -----------------------------------------------------------------

def start_fio(d, node, runtime, size, extra=()):
    return subprocess.Popen(
        ["fio", "--name=fault", "--ioengine=nbd", "--uri=" + uri(d, node),
         "--rw=randwrite", "--bs=4k", "--iodepth=16", "--size=%d" % size,
         "--time_based", "--runtime=%d" % runtime, "--verify=crc32c",
         "--do_verify=1", "--verify_fatal=1", "--verify_backlog=256",
         "--verify_state_save=0", "--output-format=json"] + list(extra),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@test
def test_osd_down_requests_wait_then_resume():
    """Without an OSD timeout (librbd's default) requests wait while the
    OSD is down; QMP and another export keep answering; when the OSD is
    back the waiting requests complete and fio verifies everything."""
    image = new_image(64 << 20)
    # cache.direct=on: no librbd cache that could answer a read by itself.
    d = Daemon(["--object", "iothread,id=io0",
                "--blockdev", "driver=memory,node-name=mem0,size=1M"] +
               blockdev_arg(rbd_node("r0", image, cache={"direct": True})) +
               nbd_args(("r0", "io0"), ("mem0", None)))
    reader = None
    try:
        m = d.qmp()
        qemu_io(d, "r0", "write -P 0x7 32M 64k")
        fio = start_fio(d, "r0", 6, 32 << 20)
        try:
            wait_for(lambda: tcp_sessions(d.proc.pid, cluster.port) == 1,
                     "the connection")
            time.sleep(1)  # some I/O before the fault
            cluster.stop_osd()
            # A read of data that only the stopped OSD has cannot finish.
            reader = subprocess.Popen(
                ["qemu-io", "-r", "-f", "raw", "-c", "read -P 0x7 32M 64k",
                 uri(d, "r0")], stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True)
            for _ in range(5):
                m.ok("query-named-block-nodes")
                qemu_io(d, "mem0", "write -P 0x2 0 4k", "read -P 0x2 0 4k")
            check(reader.poll() is None, "a read finished with the OSD down: "
                  "%s" % (reader.stdout.read() if reader.poll() is not None
                          else ""))
            check(fio.poll() is None, "fio finished with the OSD down")
            cluster.restart_osd()
            out, err = fio.communicate(timeout=300)
            rout, rerr = reader.communicate(timeout=300)
        finally:
            for p in (fio, reader):
                if p and p.poll() is None:
                    p.kill()
                    p.communicate()
        check(reader.returncode == 0 and "read 65536/65536" in rout,
              "the waiting read: %s %s" % (rout, rerr))
        check(fio.returncode == 0, "fio: %s" % err[-2000:])
        job = json.loads(out[out.index("{"):])["jobs"][0]
        check(job["error"] == 0, "fio error %r" % job["error"])
        qemu_io(d, "r0", "write -P 0x3 0 4k", "read -P 0x3 0 4k")
        d.stop()
    finally:
        cluster.start_osd_if_stopped()
        d.cleanup()


@test
def test_osd_down_with_timeout_fails_requests_then_recovers():
    """With x-osd-op-timeout, requests to a stopped OSD fail with EIO after
    the timeout, the daemon stays up, and once the OSD is back new
    requests succeed on the same node."""
    image = new_image(16 << 20)
    d = Daemon(blockdev_arg(rbd_node("r0", image,
                                     **{"x-osd-op-timeout": 3})) +
               nbd_args(("r0", None)))
    try:
        m = d.qmp()
        qemu_io(d, "r0", "write -P 0x4 0 1M")
        cluster.stop_osd()
        r = qemu_io(d, "r0", "read -P 0x4 0 64k", fmt_check=False)
        text = r.stdout + r.stderr
        check("Input/output error" in text, "read with the OSD down: %s" %
              text)
        r = qemu_io(d, "r0", "write -P 0x5 1M 64k", fmt_check=False)
        check("Input/output error" in r.stdout + r.stderr,
              "write with the OSD down: %s" % (r.stdout + r.stderr))
        m.ok("query-named-block-nodes")
        # block_resize waits for the cluster on a threadlet: another client
        # is answered meanwhile, and the resize fails after the timeout.
        other = d.qmp()
        m.send_raw(json.dumps({"execute": "block_resize", "id": "rs",
                               "arguments": {"node-name": "r0",
                                             "size": 32 << 20}}).encode() +
                   b"\n")
        check(other.ok("query-version"), "other client during the resize")
        r = m.reply()
        check(r.get("id") == "rs" and "error" in r and
              "Cannot resize image 'rbd/%s'" % image in r["error"]["desc"],
              "block_resize with the OSD down: %r" % r)
        cluster.restart_osd()
        qemu_io(d, "r0", "read -P 0x4 0 1M", "write -P 0x6 2M 64k",
                "read -P 0x6 2M 64k")
        m.ok("block_resize", {"node-name": "r0", "size": 32 << 20})
        d.stop()
    finally:
        cluster.start_osd_if_stopped()
        d.cleanup()


# ---- driver ---------------------------------------------------------------------

def main(argv):
    global cluster
    want = argv[1:]
    selected = [t for t in TESTS if not want or name_of(t) in want]
    unknown = set(want) - {name_of(t) for t in TESTS}
    if unknown:
        print("unknown tests: %s" % " ".join(sorted(unknown)))
        return 2
    for prog in ("ceph-mon", "ceph-osd", "ceph", "rbd", "monmaptool",
                 "qemu-img", "qemu-io", "nbdinfo", "nbdcopy", "fio"):
        if not shutil.which(prog):
            print("FAIL: %s is not installed (scripts/bootstrap.sh test)" %
                  prog)
            return 1
    cluster = CephCluster()
    t0 = time.monotonic()
    try:
        cluster.start()
    except ClusterError as e:
        print("FAIL: the Ceph cluster did not start: %s" % e)
        cluster.stop()
        return 1
    print("# cluster up in %.1f s, monitor %s" % (time.monotonic() - t0,
                                                 cluster.mon_addr))
    failed = []
    try:
        for i, t in enumerate(selected, 1):
            t0 = time.monotonic()
            try:
                t()
                print("ok %d %s (%.1f s)" % (i, name_of(t),
                                             time.monotonic() - t0))
            except Exception as e:  # noqa: BLE001 - report and go on
                failed.append(name_of(t))
                print("FAIL %d %s: %s" % (i, name_of(t), e))
                if not isinstance(e, TestFailure):
                    traceback.print_exc(file=sys.stdout)
            sys.stdout.flush()
    finally:
        cluster.stop()
    print("%d passed, %d failed%s" % (len(selected) - len(failed),
                                      len(failed),
                                      (": " + " ".join(failed)) if failed
                                      else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
