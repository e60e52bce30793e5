#!/usr/bin/env python3
"""dataplaned against hostile clients and careless operators (docs/security.md):
text that is not UTF-8, memory a peer can pin, input that could stall the
main loop, files an operator gets wrong.

    python3 security_tests.py <test-name>

runs one test (meson registers each as its own test) and exits 0 on
success, 1 on failure.  A client program that is missing is a failure.
"""
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

from qmp import (DATAPLANED, Daemon, QMP, TestFailure, check, connect_unix,
                 nbd_uri, run)

TESTS = {}


def test(fn):
    TESTS[fn.__name__[len("test_"):].replace("_", "-")] = fn
    return fn


def require(*programs):
    for p in programs:
        check(shutil.which(p), "%s is not installed (scripts/bootstrap.sh "
              "installs it)" % p)


def memory_node(name="disk0", size=64 << 20):
    return ["--blockdev", "driver=memory,node-name=%s,size=%d" % (name, size)]


def alive(d, m):
    """The daemon runs and its monitor answers."""
    check(d.proc.poll() is None, "daemon died: status %r" % d.proc.poll())
    check("qemu" in m.ok("query-version"), "query-version")


# ---- text that is not UTF-8 -------------------------------------------------

@test
def test_qmp_long_multibyte_export_name_is_an_error_not_a_crash():
    # 'a' then 2-byte characters: a cut at an even byte count falls
    # inside a character.
    d = Daemon(memory_node() + ["--nbd-server", "addr.type=unix,addr.path=n"])
    try:
        m = d.qmp()
        name = "a" + "\u00e9" * 3000
        for cmd, args, why in [
                ("block-export-add", {"type": "nbd", "id": "e0",
                                      "node-name": "disk0", "name": name},
                 "too long"),
                # Its export id is its name, so the id check speaks first.
                ("nbd-server-add", {"device": "disk0", "name": name},
                 "expects an identifier"),
                ("block-export-add", {"type": "nbd", "id": "e1",
                                      "node-name": "disk0",
                                      "name": "\u20ac" * 1366}, "too long")]:
            desc = m.err(cmd, args, desc=why)
            check("\ufffd" not in desc, "%s: cut inside a character: %r" %
                  (cmd, desc))
            alive(d, m)
        d.stop()
    finally:
        d.cleanup()


@test
def test_qmp_file_names_that_are_not_utf8():
    images = tempfile.mkdtemp(prefix="dataplaned-images-")
    raw = os.fsencode(images) + b"/disk-\xff\xfe-\xc3.img"
    d = None
    try:
        with open(raw, "wb") as f:
            f.truncate(1 << 20)
        # Such a name can only come from the command line (QMP is UTF-8).
        d = Daemon(["--blockdev", "driver=file,node-name=f0,filename=" +
                    os.fsdecode(raw),
                    "--blockdev", "driver=raw,node-name=r0,file=f0"])
        m = d.qmp()
        nodes = {n["node-name"]: n for n in m.ok("query-named-block-nodes")}
        check(set(nodes) == {"f0", "r0"}, "nodes: %r" % sorted(nodes))
        f0 = nodes["f0"]
        check(f0["file"].endswith("/disk-\ufffd\ufffd-\ufffd.img"),
              "file %r" % f0["file"])
        check(f0["image"]["filename"] == f0["file"], "image %r" % f0)
        alive(d, m)
        d.stop()
    finally:
        if d:
            d.cleanup()
        shutil.rmtree(images)


# ---- files an operator gets wrong -------------------------------------------

def start_fails(args, needle, cwd):
    """dataplaned with args in cwd must exit 1 with one line naming needle."""
    try:
        r = subprocess.run([DATAPLANED] + args, cwd=cwd, capture_output=True,
                           text=True, timeout=20)
    except subprocess.TimeoutExpired:
        raise TestFailure("%r started instead of failing" % args)
    check(r.returncode == 1, "exit status %d for %r: %s" %
          (r.returncode, args, r.stderr))
    lines = r.stderr.strip().split("\n")
    check(len(lines) == 1 and needle in lines[0],
          "stderr %r lacks %r" % (r.stderr, needle))


@test
def test_pidfile_never_follows_a_symlink_nor_overwrites_a_file():
    work = tempfile.mkdtemp(prefix="dataplaned-pid-")
    try:
        victim = os.path.join(work, "victim")
        with open(victim, "w") as f:
            f.write("precious\n")
        os.symlink(victim, os.path.join(work, "d.pid"))
        start_fails(["--pidfile", "d.pid"], "symbolic link", work)
        check(os.path.islink(os.path.join(work, "d.pid")), "link removed")
        # A dangling link: following it would create the target.
        os.unlink(os.path.join(work, "d.pid"))
        os.symlink(os.path.join(work, "created"), os.path.join(work, "d.pid"))
        start_fails(["--pidfile", "d.pid"], "symbolic link", work)
        check(not os.path.exists(os.path.join(work, "created")),
              "the link's target was created")
        os.unlink(os.path.join(work, "d.pid"))
        # A file that is not a pid file is left alone.
        start_fails(["--pidfile", "victim"], "not a pid file", work)
        with open(victim) as f:
            check(f.read() == "precious\n", "victim changed")
        # So is a FIFO (which must not block the start either).
        os.mkfifo(os.path.join(work, "fifo"))
        start_fails(["--pidfile", "fifo"], "not a regular file", work)
        check(sorted(os.listdir(work)) == ["fifo", "victim"],
              "left: %r" % os.listdir(work))
    finally:
        shutil.rmtree(work)


@test
def test_pidfile_stale_one_taken_over_and_only_ours_removed():
    work = tempfile.mkdtemp(prefix="dataplaned-pid-")
    d = None
    pid_path = os.path.join(work, "d.pid")
    try:
        # A stale pid file, as a killed daemon leaves it.
        with open(pid_path, "w") as f:
            f.write("99999\n")
        d = Daemon(["--pidfile", "d.pid"], cwd=work)
        m = d.qmp()
        with open(pid_path) as f:
            check(f.read() == "%d\n" % d.proc.pid, "pid file content")
        # Replaced by hand while the daemon runs: the new file is not ours
        # to remove at exit.
        with open(os.path.join(work, "other"), "w") as f:
            f.write("someone else's\n")
        os.rename(os.path.join(work, "other"), pid_path)
        alive(d, m)
        d.signal(signal.SIGTERM)
        status, out, err = d.wait()
        check(status == 0, "exit %d: %s" % (status, err))
        with open(pid_path) as f:
            check(f.read() == "someone else's\n", "replaced file removed")
        os.unlink(pid_path)
        # And the normal case: removed at exit.
        d = Daemon(["--pidfile", "d.pid"], cwd=work)
        d.qmp()
        d.stop()
    finally:
        if d:
            d.cleanup()
        shutil.rmtree(work, ignore_errors=True)


# ---- limits that must mean what they say -----------------------------------

@test
def test_nbd_handshake_max_seconds_does_not_wrap():
    d = Daemon(memory_node())
    try:
        m = d.qmp()
        sock = d.path("nbd.sock")
        # Past the 32-bit range: refused, saying what is allowed.
        m.err("nbd-server-start", {"addr": {"type": "unix", "path": sock},
                                   "handshake-max-seconds": 1 << 31},
              desc="must be between 0 and 2147483647")
        # 4294968 s in 32-bit milliseconds wrapped to 704 ms: a client
        # that has not finished its handshake was dropped within a second.
        m.ok("nbd-server-start", {"addr": {"type": "unix", "path": sock},
                                  "handshake-max-seconds": 4294968})
        s = connect_unix(sock)
        check(s.recv(18).startswith(b"NBDMAGIC"), "greeting")
        s.settimeout(3)
        try:
            data = s.recv(1)
            check(False, "disconnected during the handshake (%r)" % data)
        except socket.timeout:
            pass
        s.close()
        d.stop()
    finally:
        d.cleanup()


# ---- the main loop never waits on user input ---------------------------------

def nested_blockdev(depth, leaves):
    inner = {"k%d" % i: 1 for i in range(leaves)}
    for _ in range(depth):
        inner = {"a": inner}
    return {"driver": "null-co", "node-name": "deep", "x": inner}


@test
def test_main_loop_answers_qmp_during_hostile_input():
    # Nothing is timed: each step starts something that used to hold the
    # main loop (a FIFO's open(), a nested blockdev-add whose check cost
    # leaves x depth^2, clients stalled in the handshake), then another
    # monitor client and an NBD client must still get through.  The
    # sockets' 30 s timeouts only turn a hang into a failure.
    require("nbdinfo")
    fifo_dir = tempfile.mkdtemp(prefix="dataplaned-fifo-")
    fifo = os.path.join(fifo_dir, "fifo")
    os.mkfifo(fifo)
    d = Daemon(memory_node() + ["--nbd-server", "addr.type=unix,addr.path=n",
                                "--export", "nbd,id=e0,node-name=disk0"])
    stalled = []
    try:
        a = d.qmp()
        b = d.qmp()
        uri = nbd_uri(d.path("n"), "disk0")

        def others_get_through(what):
            check("qemu" in b.ok("query-version"), "QMP during %s" % what)
            r = run(["nbdinfo", "--size", uri])
            check(r.returncode == 0 and r.stdout.strip() == str(64 << 20),
                  "NBD during %s: %r" % (what, r))

        # Clients that stop in the middle of the handshake.
        for i in range(20):
            s = connect_unix(d.path("n"))
            s.recv(18)
            s.sendall(struct.pack(">I", 1) + b"IHAVEOPT"[:i % 8])
            stalled.append(s)
        others_get_through("stalled handshakes")
        # A FIFO, read-only: open() would wait for a writer.
        a.send_raw(json.dumps({"execute": "blockdev-add", "arguments": {
            "driver": "file", "node-name": "f", "filename": fifo,
            "read-only": True}}).encode() + b"\n")
        others_get_through("a FIFO blockdev-add")
        r = a.reply()
        check("is a FIFO" in r.get("error", {}).get("desc", ""),
              "FIFO: %r" % r)
        # A nested blockdev-add near the message size limit.
        big = json.dumps({"execute": "blockdev-add",
                          "arguments": nested_blockdev(900, 60000)})
        check(len(big) < 1 << 20, "message %d bytes" % len(big))
        a.send_raw(big.encode() + b"\n")
        others_get_through("a large nested blockdev-add")
        r = a.reply()
        check("nests deeper than" in r.get("error", {}).get("desc", ""),
              "nested: %r" % r)
        # Wide instead of deep.
        wide = {"driver": "null-co", "node-name": "wide",
                "x": {"k%d" % i: i for i in range(50000)}}
        a.send_raw(json.dumps({"execute": "blockdev-add",
                               "arguments": wide}).encode() + b"\n")
        others_get_through("a wide blockdev-add")
        r = a.reply()
        check("Too many parameters" in r.get("error", {}).get("desc", ""),
              "wide: %r" % r)
        alive(d, a)
        for s in stalled:
            s.close()
        d.stop()
    finally:
        d.cleanup()
        shutil.rmtree(fifo_dir)


# ---- memory an NBD client can make the daemon hold --------------------------

NBD_OPTS_MAGIC = 0x49484156454F5054
NBD_OPT_REPLY_MAGIC = 0x3e889045565a9
NBD_REQUEST_MAGIC = 0x25609513
NBD_SIMPLE_REPLY_MAGIC = 0x67446698
NBD_OPT_GO = 7
NBD_REP_ACK = 1
NBD_CMD_READ = 0
NBD_CMD_CACHE = 5


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        check(chunk, "NBD server closed the connection")
        buf += chunk
    return buf


def nbd_open(path, name):
    """A raw NBD connection in transmission (simple replies)."""
    s = connect_unix(path)
    s.settimeout(30)
    check(recv_exact(s, 18)[:8] == b"NBDMAGIC", "greeting")
    s.sendall(struct.pack(">I", 3))  # FIXED_NEWSTYLE | NO_ZEROES
    data = struct.pack(">I", len(name)) + name.encode() + struct.pack(">H", 0)
    s.sendall(struct.pack(">QII", NBD_OPTS_MAGIC, NBD_OPT_GO, len(data)) +
              data)
    while True:
        magic, opt, rtype, rlen = struct.unpack(">QIII", recv_exact(s, 20))
        check(magic == NBD_OPT_REPLY_MAGIC, "option reply magic")
        recv_exact(s, rlen)
        check(not rtype & 0x80000000, "NBD_OPT_GO refused: %x" % rtype)
        if rtype == NBD_REP_ACK:
            return s


def nbd_request(s, cmd, cookie, offset, length):
    s.sendall(struct.pack(">IHHQQI", NBD_REQUEST_MAGIC, 0, cmd, cookie,
                          offset, length))


def nbd_reply(s, data_len=0):
    magic, err, cookie = struct.unpack(">IIQ", recv_exact(s, 16))
    check(magic == NBD_SIMPLE_REPLY_MAGIC, "reply magic %x" % magic)
    check(err == 0, "request %d failed: %d" % (cookie, err))
    if data_len:
        recv_exact(s, data_len)
    return cookie


def vm_kib(pid, field):
    """VmRSS or VmHWM (peak RSS) of pid, in KiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise TestFailure("no %s in /proc/%d/status" % (field, pid))


@test
def test_nbd_cache_requests_hold_bounded_memory():
    # 128 pipelined CACHE requests of 64 MiB held a 32 MiB buffer each,
    # uncounted: 4 GiB.  Each now reads through one counted 256 KiB piece.
    d = Daemon(memory_node("disk0", 64 << 20) +
               ["--nbd-server", "addr.type=unix,addr.path=n",
                "--export", "nbd,id=e0,node-name=disk0"])
    try:
        m = d.qmp()
        s = nbd_open(d.path("n"), "disk0")
        base = vm_kib(d.proc.pid, "VmHWM")
        for i in range(128):
            nbd_request(s, NBD_CMD_CACHE, i, 0, 64 << 20)
        got = sorted(nbd_reply(s) for _ in range(128))
        check(got == list(range(128)), "CACHE replies")
        grown = (vm_kib(d.proc.pid, "VmHWM") - base) >> 10
        print("128 x 64 MiB CACHE: peak RSS grew %d MiB" % grown)
        check(grown < 96, "128 CACHE requests took %d MiB more" % grown)
        s.close()
        alive(d, m)
        d.stop()
    finally:
        d.cleanup()


@test
def test_nbd_stalled_clients_bounded_by_the_server_budget():
    # Clients that send READs and never read the replies: each alone is
    # bounded by its own queue (64 MiB); together by max-buffer-size.
    cap_mib, req_mib, stalled_n = 64, 4, 4
    d = Daemon(memory_node("disk0", 64 << 20) +
               ["--nbd-server", "addr.type=unix,addr.path=n,"
                "max-buffer-size=%d" % (cap_mib << 20),
                "--export", "nbd,id=e0,node-name=disk0"])
    stalled = []
    try:
        m = d.qmp()
        good = nbd_open(d.path("n"), "disk0")
        base = vm_kib(d.proc.pid, "VmHWM")
        for _ in range(stalled_n):
            s = nbd_open(d.path("n"), "disk0")
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            for i in range(64):
                nbd_request(s, NBD_CMD_READ, i, 0, req_mib << 20)
            stalled.append(s)
        # Counting, not timing: every round trip of this client is a loop
        # iteration in which the stalled sockets were readable too, so after
        # many the stalled clients have taken all they will be given.  The
        # fairness rule lets it through although the budget is spent.
        for i in range(300):
            nbd_request(good, NBD_CMD_READ, i, 0, 4096)
            check(nbd_reply(good, 4096) == i, "good client's reply")
        grown = (vm_kib(d.proc.pid, "VmHWM") - base) >> 10
        # The budget, plus one request per stalled client (the fairness
        # rule), plus slack for the allocator.
        bound = cap_mib + stalled_n * req_mib + 32
        print("%d stalled clients: peak RSS grew %d MiB (bound %d)" %
              (stalled_n, grown, bound))
        check(grown < bound, "stalled clients pin %d MiB (bound %d)" %
              (grown, bound))
        for s in stalled:
            s.close()
        alive(d, m)
        d.stop()
    finally:
        d.cleanup()


@test
def test_nbd_idle_connection_is_closed_but_not_while_io_waits():
    d = Daemon(["--object", "throttle-group,id=tg,x-iops-total=2",
                "--blockdev", "driver=null-co,node-name=null0,size=1M",
                "--blockdev", "driver=throttle,node-name=t0,"
                "throttle-group=tg,file=null0",
                "--nbd-server", "addr.type=unix,addr.path=n,"
                "idle-max-seconds=1",
                "--export", "nbd,id=e0,node-name=t0"])
    try:
        m = d.qmp()
        # Requests held by the throttle for seconds, with the client
        # silent meanwhile: not idle, since I/O is in flight.
        s = nbd_open(d.path("n"), "t0")
        for i in range(8):
            nbd_request(s, NBD_CMD_READ, i, 0, 512)
        got = sorted(nbd_reply(s, 512) for _ in range(8))
        check(got == list(range(8)), "replies under the throttle")
        # Then nothing either way: closed (EOF before the 30 s timeout).
        check(s.recv(1) == b"", "idle connection not closed")
        s.close()
        alive(d, m)
        d.stop()
    finally:
        d.cleanup()


@test
def test_nbd_option_replies_are_bounded_before_the_client_reads():
    # 16 bytes of NBD_OPT_LIST ask for every export's name and
    # description (here 10 x 8 KiB): a client that sends thousands at once
    # and reads nothing made the daemon build every reply first.
    d = Daemon(memory_node("disk0", 1 << 20) +
               ["--nbd-server", "addr.type=unix,addr.path=n"])
    try:
        m = d.qmp()
        for i in range(10):
            m.ok("block-export-add", {
                "type": "nbd", "id": "e%d" % i, "node-name": "disk0",
                "name": ("%d" % i) * 4000, "description": "d" * 4000})
        s = connect_unix(d.path("n"))
        s.settimeout(30)
        check(recv_exact(s, 18)[:8] == b"NBDMAGIC", "greeting")
        base = vm_kib(d.proc.pid, "VmHWM")
        lists = 2048
        s.sendall(struct.pack(">I", 3) +
                  struct.pack(">QII", NBD_OPTS_MAGIC, 3, 0) * lists)
        # Read them all: then the daemon has handled every option.
        acks = 0
        while acks < lists:
            magic, opt, rtype, rlen = struct.unpack(">QIII",
                                                    recv_exact(s, 20))
            check(magic == NBD_OPT_REPLY_MAGIC and opt == 3, "LIST reply")
            recv_exact(s, rlen)
            acks += rtype == NBD_REP_ACK
        grown = (vm_kib(d.proc.pid, "VmHWM") - base) >> 10
        print("%d LIST options unread: peak RSS grew %d MiB" % (lists, grown))
        check(grown < 16, "unread option replies took %d MiB" % grown)
        s.close()
        alive(d, m)
        d.stop()
    finally:
        d.cleanup()


def test_main():
    name = sys.argv[1] if len(sys.argv) > 1 else None
    if name not in TESTS:
        print("usage: security_tests.py <%s>" % "|".join(sorted(TESTS)))
        return 2
    try:
        TESTS[name]()
    except TestFailure as e:
        print("FAIL: %s" % e)
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(test_main())
