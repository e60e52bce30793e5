#!/usr/bin/env python3
"""dataplaned's vhost-user-blk export driven by the project's own front-end
(tests/vhost-user-cases.c for scenarios, tests/vhost-user-load.c for load),
with the daemon managed over QMP.

    python3 vhost_user_blk_tests.py <test-name>

runs one test and exits 0 on success, 1 on failure.  The QEMU guest tests
are in tests/integration/vhost-guest/.
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

from qmp import DATAPLANED, Daemon, TestFailure, check, run

CASES = os.environ.get("VHOST_USER_CASES", "build/tests/vhost-user-cases")
LOAD = os.environ.get("VHOST_USER_LOAD", "build/tests/vhost-user-load")

TESTS = {}


def test(fn):
    TESTS[fn.__name__[len("test_"):].replace("_", "-")] = fn
    return fn


def cases(*args, **kw):
    r = run([CASES] + [str(a) for a in args], **kw)
    check(r.returncode == 0, "vhost-user-cases %s failed (%d): %s%s" %
          (" ".join(str(a) for a in args), r.returncode, r.stdout, r.stderr))
    return r.stdout


def load(sock, *args):
    r = run([LOAD, "--socket", sock] + [str(a) for a in args])
    check(r.returncode == 0, "vhost-user-load %s failed (%d): %s%s" %
          (" ".join(str(a) for a in args), r.returncode, r.stdout, r.stderr))
    return dict(kv.split("=") for kv in r.stdout.split())


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def wait_fd_count(pid, want):
    """Waits (10 s at most) until the daemon is back to want fds: a
    front-end's release finishes in the background."""
    deadline = time.monotonic() + 10
    while fd_count(pid) != want and time.monotonic() < deadline:
        time.sleep(0.01)
    check(fd_count(pid) == want, "fds: %d before, %d after" %
          (want, fd_count(pid)))


def image(size):
    """A fresh directory with a zero-filled raw image in it."""
    d = tempfile.mkdtemp(prefix="dataplaned-test-")
    path = os.path.join(d, "disk.img")
    with open(path, "wb") as f:
        f.truncate(size)
    return d, path


def start_load(sock, *args):
    """vhost-user-load in the background, returned once it is connected
    and its rings are set up."""
    p = subprocess.Popen([LOAD, "--socket", sock, "--announce"] +
                         [str(a) for a in args], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    check(line == "connected\n", "load did not connect: %r %s" %
          (line, p.stderr.read() if p.poll() is not None else ""))
    return p


def export(node, sock, extra=""):
    return ["--export", "vhost-user-blk,id=vu0,node-name=%s,addr.type=unix,"
            "addr.path=%s%s" % (node, sock, extra)]


# ---- I/O ---------------------------------------------------------------------

@test
def test_io_on_one_and_four_queues():
    d = Daemon(["--object", "iothread,id=io0",
                "--blockdev", "driver=memory,node-name=disk0,size=64M"] +
               export("disk0", "vu.sock",
                      ",writable=on,num-queues=4,iothread=io0"))
    try:
        d.qmp()
        out = cases("io", d.path("vu.sock"), 1)
        check("capacity=67108864 id=vu0 queues=1" in out, "io: %r" % out)
        cases("io", d.path("vu.sock"), 4)
        r = load(d.path("vu.sock"), "--rw", "verify", "--queues", 4, "--qd",
                 8, "--time", 2, "--interrupts")
        check(int(r["ops"]) > 0 and r["verify_fail"] == "0", "load %r" % r)
        r = load(d.path("vu.sock"), "--rw", "verify", "--queues", 2, "--qd",
                 16, "--time", 2, "--segs", 4, "--bs", 65536, "--no-indirect")
        check(int(r["ops"]) > 0 and r["verify_fail"] == "0", "load %r" % r)
        d.stop()
    finally:
        d.cleanup()


@test
def test_read_only_export_refuses_writes():
    d = Daemon(["--blockdev", "driver=memory,node-name=disk0,size=16M"] +
               export("disk0", "vu.sock"))
    try:
        d.qmp()
        cases("read-only", d.path("vu.sock"))
        d.stop()
    finally:
        d.cleanup()


@test
def test_discard_and_write_zeroes_reach_the_file():
    tmp, img = image(16 << 20)
    d = Daemon(["--object", "iothread,id=io0",
                "--blockdev", "driver=file,node-name=disk0,filename=%s,"
                "discard=unmap" % img] +
               export("disk0", "vu.sock", ",writable=on,iothread=io0"),
               cwd=tmp)
    try:
        d.qmp()
        cases("zeroes", d.path("vu.sock"))
        with open(img, "rb") as f:
            data = f.read(65536)
        check(data[:32768] == bytes(32768), "the zeroed range in the file")
        check(data[49152:] != bytes(16384), "the written range in the file")
        os.unlink(img)
        d.stop()
    finally:
        d.cleanup()


# ---- front-ends that misbehave or go away -------------------------------------

@test
def test_hostile_front_ends_leave_the_daemon_serving():
    d = Daemon(["--object", "iothread,id=io0",
                "--blockdev", "driver=memory,node-name=disk0,size=16M"] +
               export("disk0", "vu.sock", ",writable=on,iothread=io0"))
    try:
        m = d.qmp()
        fds = fd_count(d.proc.pid)
        cases("hostile", d.path("vu.sock"))
        exports = m.ok("query-block-exports")
        check(exports == [{"type": "vhost-user-blk", "id": "vu0",
                           "node-name": "disk0", "shutting-down": False}],
              "exports %r" % exports)
        wait_fd_count(d.proc.pid, fds)
        d.stop()
    finally:
        d.cleanup()


@test
def test_guest_memory_truncated_under_the_mapping():
    """A front-end shares an unsealed memfd and then shrinks it: touching
    the missing pages would be a SIGBUS.  The daemon closes that connection
    and serves the next front-end."""
    d = Daemon(["--object", "iothread,id=io0",
                "--blockdev", "driver=memory,node-name=disk0,size=16M"] +
               export("disk0", "vu.sock", ",writable=on,iothread=io0"))
    try:
        m = d.qmp()
        out = cases("truncate", d.path("vu.sock"))
        check("closed after the truncation" in out, out)
        cases("io", d.path("vu.sock"), 1)
        check(len(m.ok("query-block-exports")) == 1, "export gone")
        _, err = d.stop()
        check("truncated under the mapping" in err, "stderr: %r" % err)
    finally:
        d.cleanup()


@test
def test_front_end_gone_mid_io_then_next_one_served():
    d = Daemon(["--object", "iothread,id=io0",
                "--blockdev", "driver=memory,node-name=disk0,size=64M"] +
               export("disk0", "vu.sock",
                      ",writable=on,num-queues=2,iothread=io0"))
    try:
        d.qmp()
        fds = fd_count(d.proc.pid)
        out = cases("disconnect", d.path("vu.sock"), 20)
        check("disconnected 20 times" in out, out)
        # A killed front-end: SIGKILL in the middle of a load.
        p = start_load(d.path("vu.sock"), "--qd", 32, "--queues", 2, "--rw",
                       "randwrite", "--time", 30)
        time.sleep(0.3)  # mid-I/O is the subject: let it get going
        p.kill()
        p.wait()
        r = load(d.path("vu.sock"), "--rw", "verify", "--qd", 8, "--time", 1)
        check(r["verify_fail"] == "0" and int(r["ops"]) > 0, "load %r" % r)
        # Every mapping and fd of the old front-ends is released.
        wait_fd_count(d.proc.pid, fds)
        d.stop()
    finally:
        d.cleanup()


@test
def test_killed_backend_restarted_resubmits_inflight_writes():
    """The daemon is SIGKILLed while 16 writes are held by a throttle node;
    a new daemon on the same socket and image gets the inflight area back
    from the front-end and redoes them."""
    tmp, img = image(16 << 20)
    first = Daemon(["--object", "iothread,id=io0",
                    "--object", "throttle-group,id=tg,limits.iops-total=1",
                    "--blockdev", "driver=file,node-name=f0,filename=%s" % img,
                    "--blockdev", "driver=throttle,node-name=disk0,"
                    "throttle-group=tg,file=f0"] +
                   export("disk0", "vu.sock", ",writable=on,iothread=io0"),
                   cwd=tmp)
    second = None
    client = None
    try:
        first.qmp()
        client = subprocess.Popen([CASES, "resume", first.path("vu.sock"),
                                   "16"], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        line = client.stdout.readline()
        check(line.startswith("submitted 16"), "client: %r %s" %
              (line, client.stderr.read() if client.poll() is not None
               else ""))
        first.proc.kill()
        first.proc.wait()
        for m in first.monitors:
            m.close()
        os.unlink(first.qmp_path)
        second = Daemon(["--blockdev", "driver=file,node-name=disk0,"
                         "filename=%s" % img] +
                        export("disk0", "vu.sock", ",writable=on"), cwd=tmp)
        second.qmp()
        client.stdin.write("go\n")
        client.stdin.flush()
        out, err = client.communicate(timeout=60)
        check(client.returncode == 0, "client failed: %s%s" % (out, err))
        check("resumed 16" in out, out)
        print(line.strip() + "; " + out.strip())
        os.unlink(img)
        second.stop()
    finally:
        if client and client.poll() is None:
            client.kill()
            client.wait()
        first.cleanup() if second is None else second.cleanup()


# ---- QMP, moves, shutdown -----------------------------------------------------

@test
def test_block_resize_is_announced_to_the_front_end():
    d = Daemon(["--object", "iothread,id=io0",
                "--blockdev", "driver=memory,node-name=disk0,size=16M"] +
               export("disk0", "vu.sock", ",writable=on,iothread=io0"))
    client = None
    try:
        m = d.qmp()
        client = subprocess.Popen([CASES, "resize", d.path("vu.sock")],
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        line = client.stdout.readline()
        check(line == "ready capacity=16777216\n", "client: %r" % line)
        m.ok("block_resize", {"node-name": "disk0", "size": 32 << 20})
        out, err = client.communicate(timeout=60)
        check(client.returncode == 0, "client failed: %s%s" % (out, err))
        check(out == "capacity=33554432\n", "client: %r" % out)
        d.stop()
    finally:
        if client and client.poll() is None:
            client.kill()
            client.wait()
        d.cleanup()


@test
def test_qmp_add_query_del_with_unique_ids():
    d = Daemon(["--object", "iothread,id=io0",
                "--blockdev", "driver=memory,node-name=disk0,size=16M",
                "--blockdev", "driver=memory,node-name=disk1,size=16M",
                "--nbd-server", "addr.type=unix,addr.path=nbd.sock",
                "--export", "nbd,id=e0,node-name=disk1"])
    try:
        m = d.qmp()
        args = {"type": "vhost-user-blk", "id": "e0", "node-name": "disk0",
                "addr": {"type": "unix", "path": d.path("vu.sock")},
                "writable": True, "num-queues": 2, "iothread": "io0"}
        m.err("block-export-add", args,
              desc="Block export id 'e0' is already in use")
        args["id"] = "vu0"
        m.err("block-export-add", dict(args, addr={"type": "inet",
                                                   "host": "::", "port": 1}),
              desc="unix")
        m.err("block-export-add", dict(args, **{"num-queues": 0}),
              desc="num-queues")
        m.err("block-export-add", dict(args, **{"logical-block-size": 1000}),
              desc="logical-block-size")
        m.err("block-export-add", dict(args, name="x"), desc="name")
        m.ok("block-export-add", args)
        check(os.stat(d.path("vu.sock")).st_mode & 0o777 == 0o600,
              "socket mode")
        exports = sorted(m.ok("query-block-exports"), key=lambda e: e["id"])
        check(exports == [
            {"type": "nbd", "id": "e0", "node-name": "disk1",
             "shutting-down": False},
            {"type": "vhost-user-blk", "id": "vu0", "node-name": "disk0",
             "shutting-down": False}], "exports %r" % exports)
        m.err("blockdev-del", {"node-name": "disk0"},
              desc="in use by export 'vu0'")
        # A front-end connected: a safe delete is refused.
        p = start_load(d.path("vu.sock"), "--time", 30, "--queues", 2)
        m.err("block-export-del", {"id": "vu0"}, desc="in use")
        m.ok("block-export-del", {"id": "vu0", "mode": "hard"})
        check(m.wait_event("BLOCK_EXPORT_DELETED")["data"] == {"id": "vu0"},
              "event")
        check(not os.path.exists(d.path("vu.sock")), "socket left behind")
        p.kill()
        p.wait()
        m.ok("blockdev-del", {"node-name": "disk0"})
        m.ok("block-export-del", {"id": "e0"})
        d.stop()
    finally:
        d.cleanup()


@test
def test_inherited_listening_socket_fd():
    """addr.type=fd: the daemon serves on a listening socket it inherited
    (socket activation), here opened by the test."""
    import socket
    tmp = tempfile.mkdtemp(prefix="dataplaned-test-")
    path = os.path.join(tmp, "vu.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(4)
    fd = s.fileno()
    os.set_inheritable(fd, True)
    argv = [DATAPLANED, "--blockdev", "driver=memory,node-name=disk0,size=16M",
            "--export", "vhost-user-blk,id=vu0,node-name=disk0,addr.type=fd,"
            "addr.str=%d,writable=on,logical-block-size=4k" % fd]
    p = subprocess.Popen(argv, pass_fds=[fd], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    s.close()
    try:
        out = cases("io", path, 1)
        check("id=vu0" in out, "io: %r" % out)
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=15)
        check(p.returncode == 0, "exit %d: %s" % (p.returncode, err))
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        if os.path.exists(path):
            os.unlink(path)
        os.rmdir(tmp)


@test
def test_cmdline_refuses_bad_vhost_user_blk_options():
    for opts, desc in [
            ("vhost-user-blk,id=v,node-name=disk0", "Parameter 'addr' is missing"),
            ("vhost-user-blk,id=v,node-name=disk0,addr.type=unix",
             "addr.path"),
            ("vhost-user-blk,id=v,node-name=disk0,addr.type=inet,"
             "addr.host=::,addr.port=1", "unix"),
            ("vhost-user-blk,id=v,node-name=disk0,addr.type=unix,"
             "addr.path=x.sock,num-queues=257", "num-queues"),
            ("vhost-user-blk,id=v,node-name=disk0,addr.type=unix,"
             "addr.path=x.sock,bogus=1", "bogus"),
            ("vhost-user-blk,id=v,node-name=nope,addr.type=unix,"
             "addr.path=x.sock", "Cannot find node 'nope'"),
            ("vhost-user-blk,id=v,node-name=disk0,addr.type=unix,"
             "addr.path=x.sock,writable=on", "read-only"),
            # An iothread list is taken (queues spread over it), but its
            # IOThreads must exist, and it is one form or the other.
            ("vhost-user-blk,id=v,node-name=disk0,addr.type=unix,"
             "addr.path=x.sock,iothread.0=nope", 'iothread "nope" not found'),
            ("vhost-user-blk,id=v,node-name=disk0,addr.type=unix,"
             "addr.path=x.sock,iothread=a,iothread.0=b",
             "used inconsistently")]:
        d = Daemon(["--blockdev", "driver=memory,node-name=disk0,size=1M,"
                    "read-only=on", "--export", opts], monitor=False)
        try:
            status, out, err = d.wait()
            check(status == 1, "%s: status %d" % (opts, status))
            check(desc in err, "%s: %r lacks %r" % (opts, err, desc))
            d.check_clean()
        finally:
            d.cleanup()


@test
def test_verify_while_node_moves_between_iothreads():
    """vhost-user-load writes and verifies on two queues while the node
    hops between two IOThreads and the main loop."""
    d = Daemon(["--object", "iothread,id=ioA", "--object", "iothread,id=ioB",
                "--blockdev", "driver=memory,node-name=disk0,size=64M"] +
               export("disk0", "vu.sock",
                      ",writable=on,num-queues=2,iothread=ioA"))
    try:
        m = d.qmp()
        p = start_load(d.path("vu.sock"), "--rw", "verify", "--queues", 2,
                       "--qd", 16, "--time", 6, "--size-limit", 8 << 20)
        moves = 0
        targets = ["ioB", None, "ioA"]
        deadline = time.monotonic() + 6
        # A move every 50 ms: the interval is the subject, not a wait.
        while time.monotonic() < deadline and p.poll() is None:
            m.ok("x-blockdev-set-iothread",
                 {"node-name": "disk0", "iothread": targets[moves % 3],
                  "force": True})
            moves += 1
            time.sleep(0.05)
        out, err = p.communicate(timeout=60)
        check(p.returncode == 0, "load failed: %s%s" % (out, err))
        r = dict(kv.split("=") for kv in out.split())
        check(int(r["ops"]) > 0 and r["verify_fail"] == "0", "load %r" % r)
        check(moves >= 20, "only %d moves" % moves)
        print("moves=%d ops=%s verified" % (moves, r["ops"]))
        d.stop()
    finally:
        d.cleanup()


@test
def test_sigterm_with_front_end_connected_cleans_up():
    d = Daemon(["--object", "iothread,id=io0",
                "--blockdev", "driver=memory,node-name=disk0,size=64M"] +
               export("disk0", "vu.sock", ",writable=on,iothread=io0"))
    try:
        d.qmp()
        p = start_load(d.path("vu.sock"), "--qd", 32, "--rw", "randwrite",
                       "--time", 30)
        d.stop()
        p.kill()
        p.wait()
    finally:
        d.cleanup()


@test
def test_four_queues_over_two_iothreads_verify():
    """iothread.0/iothread.1 (QEMU 10.1's iothread list): virtqueue i runs
    in IOThread list[i % 2] while the node hops between other threads;
    vhost-user-load writes and verifies on all four queues."""
    d = Daemon(["--object", "iothread,id=ioA", "--object", "iothread,id=ioB",
                "--object", "iothread,id=ioC",
                "--blockdev", "driver=memory,node-name=disk0,size=64M",
                "--blockdev", "driver=memory,node-name=disk1,size=16M"] +
               export("disk0", "vu.sock",
                      ",writable=on,num-queues=4,iothread.0=ioA,"
                      "iothread.1=ioB"))
    try:
        m = d.qmp()
        info = m.ok("query-block-exports")
        check(info[0]["iothread"] == ["ioA", "ioB"] and
              info[0]["x-iothread-requests"] == [0, 0], "query: %r" % info)
        m.err("object-del", {"id": "ioA"},
              desc="iothread 'ioA' is in use by block export 'vu0'")
        p = start_load(d.path("vu.sock"), "--rw", "verify", "--queues", 4,
                       "--qd", 8, "--time", 4, "--interrupts",
                       "--size-limit", 8 << 20)
        moves = 0
        targets = ["ioC", None, "ioA"]
        reqs = [0, 0]
        deadline = time.monotonic() + 4
        # A move every 50 ms: the interval is the subject, not a wait.
        while time.monotonic() < deadline and p.poll() is None:
            m.ok("x-blockdev-set-iothread",
                 {"node-name": "disk0", "iothread": targets[moves % 3],
                  "force": True})
            moves += 1
            # The counters grow while the front-end is connected and read
            # zero once it is gone: keep the largest seen.
            e = m.ok("query-block-exports")[0]
            if sum(e["x-iothread-requests"]) > sum(reqs):
                reqs = e["x-iothread-requests"]
            time.sleep(0.05)
        out, err = p.communicate(timeout=60)
        check(p.returncode == 0, "load failed: %s%s" % (out, err))
        r = dict(kv.split("=") for kv in out.split())
        check(int(r["ops"]) > 0 and r["verify_fail"] == "0", "load %r" % r)
        check(moves >= 10, "only %d moves" % moves)
        # Both IOThreads took requests, counted in their own threads.
        check(reqs[0] > 100 and reqs[1] > 100, "per iothread: %r" % reqs)
        print("moves=%d ops=%s per-iothread=%r verified" %
              (moves, r["ops"], reqs))
        # The same over QMP, with a JSON list, on a second node.
        m.err("block-export-add",
              {"type": "vhost-user-blk", "id": "bad", "node-name": "disk1",
               "addr": {"type": "unix", "path": d.path("bad.sock")},
               "iothread": ["ioB", "nope"]},
              desc='iothread "nope" not found')
        m.ok("block-export-add",
             {"type": "vhost-user-blk", "id": "vu1", "node-name": "disk1",
              "addr": {"type": "unix", "path": d.path("vu1.sock")},
              "writable": True, "num-queues": 3,
              "iothread": ["ioB", "ioA"]})
        cases("io", d.path("vu1.sock"), 3)
        r = load(d.path("vu1.sock"), "--rw", "verify", "--queues", 3, "--qd",
                 4, "--time", 1)
        check(int(r["ops"]) > 0 and r["verify_fail"] == "0", "load %r" % r)
        m.ok("block-export-del", {"id": "vu1"})
        check(m.wait_event("BLOCK_EXPORT_DELETED")["data"] == {"id": "vu1"},
              "event")
        m.ok("block-export-del", {"id": "vu0"})
        check(m.wait_event("BLOCK_EXPORT_DELETED")["data"] == {"id": "vu0"},
              "event")
        # Released with the exports (the node, which may have stopped in
        # ioA, goes home to the main loop first).
        m.ok("x-blockdev-set-iothread",
             {"node-name": "disk0", "iothread": None, "force": True})
        m.ok("object-del", {"id": "ioA"})
        d.stop()
    finally:
        d.cleanup()


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in TESTS:
        print("usage: %s <test>\ntests: %s" % (sys.argv[0],
                                               " ".join(sorted(TESTS))))
        return 2
    try:
        TESTS[sys.argv[1]]()
    except TestFailure as e:
        print("FAIL: %s" % e)
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
