#!/usr/bin/env python3
"""dataplaned from the outside: QMP over its monitor socket, data over NBD
with real clients (nbdinfo, qemu-io, fio).

    python3 dataplaned_tests.py <test-name>

runs one test (meson registers each as its own test) and exits 0 on
success, 1 on failure, 77 when a client program is missing.
"""
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time

from qmp import (DATAPLANED, Daemon, QMP, TestFailure, check, connect_unix,
                 nbd_uri, run)

TESTS = {}


def test(fn):
    TESTS[fn.__name__[len("test_"):].replace("_", "-")] = fn
    return fn


def need(*programs):
    for p in programs:
        if not shutil.which(p):
            print("SKIP: %s not installed" % p)
            sys.exit(77)


def memory_node(name="disk0", size=64 << 20):
    return ["--blockdev", "driver=memory,node-name=%s,size=%d" % (name, size)]


def nbd_server(d):
    return ["--nbd-server", "addr.type=unix,addr.path=%s" % d.path("nbd.sock")]


def nbd_server_args(path):
    return ["--nbd-server", "addr.type=unix,addr.path=%s" % path]


# ---- the monitor protocol ---------------------------------------------------

@test
def test_qmp_greeting_and_negotiation():
    d = Daemon()
    try:
        m = d.qmp(negotiate=False)
        qmp = m.greeting["QMP"]
        check(set(qmp["version"]["qemu"]) == {"major", "minor", "micro"},
              "greeting version: %r" % qmp)
        check(qmp["version"]["package"] == "", "package: %r" % qmp)
        check(qmp["capabilities"] == [], "capabilities: %r" % qmp)
        m.err("query-version", cls="CommandNotFound",
              desc="Expecting capabilities negotiation")
        m.err("qmp_capabilities", {"enable": ["oob"]},
              desc="Capability 'oob' not available")
        check(m.cmd("qmp_capabilities") == {"return": {}}, "negotiation")
        m.err("qmp_capabilities", cls="CommandNotFound",
              desc="already complete")
        v = m.ok("query-version")
        check(v["qemu"] == qmp["version"]["qemu"], "query-version: %r" % v)
        names = {c["name"] for c in m.ok("query-commands")}
        for c in ("qmp_capabilities", "query-version", "query-commands",
                  "quit", "object-add", "object-del", "qom-list", "qom-get",
                  "qom-set", "query-iothreads", "blockdev-add", "blockdev-del",
                  "query-named-block-nodes", "nbd-server-start",
                  "nbd-server-stop", "block-export-add", "block-export-del",
                  "query-block-exports", "x-blockdev-set-iothread", "stop",
                  "cont"):
            check(c in names, "query-commands lacks %s" % c)
        d.stop()
    finally:
        d.cleanup()


@test
def test_qmp_monitor_socket_is_private():
    d = Daemon()
    try:
        d.qmp()
        mode = os.stat(d.qmp_path).st_mode
        check(stat.S_ISSOCK(mode), "not a socket")
        check(stat.S_IMODE(mode) == 0o600, "mode %o" % stat.S_IMODE(mode))
        d.stop()
    finally:
        d.cleanup()


@test
def test_qmp_error_cases_keep_connection_usable():
    d = Daemon()
    try:
        m = d.qmp()
        m.err("no-such-command", cls="CommandNotFound",
              desc="The command no-such-command has not been found")
        # Every bad message gets one error reply, and the next works.
        bad = [
            (b'{"execute": "query-version"\n,,}\n', "JSON parse error"),
            (b'[1, 2, 3]\n', "QMP input must be a JSON object"),
            (b'"text"\n', "QMP input must be a JSON object"),
            (b'42\n', "QMP input must be a JSON object"),
            (b'{"arguments": {}}\n', "QMP input lacks member 'execute'"),
            (b'{"execute": 1}\n', "'execute' must be a string"),
            (b'{"execute": "quit", "arguments": 1}\n',
             "'arguments' must be an object"),
            (b'{"execute": "quit", "bogus": 1}\n',
             "QMP input member 'bogus' is unexpected"),
            (b'}\n', "JSON parse error"),
        ]
        for data, desc in bad:
            m.send_raw(data)
            r = m.reply()
            check("error" in r and desc in r["error"]["desc"],
                  "%r: got %r" % (data, r))
            check(m.ok("query-version"), "usable after %r" % data)
        # Arguments: missing, unexpected, wrong type.
        m.err("object-del", {}, desc="Parameter 'id' is missing")
        m.err("object-del", {"id": "x", "extra": 1},
              desc="Parameter 'extra' is unexpected")
        m.err("object-del", {"id": 5},
              desc="Invalid parameter type for 'id', expected: string")
        m.err("query-version", {"x": 1}, desc="Parameter 'x' is unexpected")
        # Not found.
        m.err("qom-get", {"path": "/objects/nope", "property": "x"},
              cls="DeviceNotFound")
        m.err("object-del", {"id": "nope"}, desc="not found")
        # The id comes back, whatever its type, on success and on error.
        for ident in ("a", 7, {"k": [1, None]}):
            r = m.cmd("query-version", id=ident)
            check(r.get("id") == ident and "return" in r, "id: %r" % r)
            r = m.cmd("nope", id=ident)
            check(r.get("id") == ident and "error" in r, "id: %r" % r)
        # A message over 1 MiB is refused without being kept, and the
        # connection goes on.
        big = (b'{"execute": "query-version", "arguments": {"x": "' +
               b"y" * (1100 * 1024) + b'"}}\n')
        m.send_raw(big)
        r = m.reply()
        check("error" in r and "too large" in r["error"]["desc"],
              "oversized: %r" % r)
        check(m.ok("query-version"), "usable after an oversized message")
        d.stop()
    finally:
        d.cleanup()


@test
def test_qmp_several_clients_and_events():
    d = Daemon()
    try:
        clients = [d.qmp() for _ in range(3)]
        raw = d.qmp(negotiate=False)
        # Pipelined requests on every client, answered in order per client.
        for i, c in enumerate(clients):
            for j in range(5):
                c.send_raw(json.dumps({"execute": "query-version",
                                       "id": [i, j]}).encode() + b"\n")
        for i, c in enumerate(clients):
            for j in range(5):
                r = c.reply()
                check(r.get("id") == [i, j], "client %d: %r" % (i, r))
        # An event reaches every negotiated client, with a timestamp.
        clients[0].ok("stop")
        for c in clients:
            ev = c.wait_event("STOP")
            ts = ev["timestamp"]
            check(isinstance(ts["seconds"], int) and
                  0 <= ts["microseconds"] < 1000000, "timestamp %r" % ts)
        clients[1].ok("cont")
        for c in clients:
            c.wait_event("RESUME")
        # ... and not the one that never negotiated: its next line is the
        # reply to its own command.
        r = raw.cmd("query-version")
        check(r["error"]["class"] == "CommandNotFound", "raw: %r" % r)
        check(raw.events == [], "events before negotiation: %r" % raw.events)
        # A client that goes away costs the others nothing.
        clients[2].close()
        check(clients[0].ok("query-version"), "after a client left")
        d.stop()
    finally:
        d.cleanup()


@test
def test_qmp_quit_replies_then_shuts_down():
    d = Daemon(memory_node())
    try:
        m = d.qmp()
        other = d.qmp()
        check(m.cmd("quit") == {"return": {}}, "quit reply")
        for c in (m, other):
            ev = c.wait_event("SHUTDOWN")
            check(ev["data"] == {"guest": False, "reason": "host-qmp-quit"},
                  "SHUTDOWN data %r" % ev)
        status, out, err = d.wait()
        check(status == 0, "exit %d: %s" % (status, err))
        d.check_clean()
    finally:
        d.cleanup()


# ---- bad command lines: one line naming the option, exit 1, nothing left ---

def bad_cmdline(args, needle, files=None):
    d = Daemon(args, monitor=False)
    try:
        for name, content in (files or {}).items():
            with open(d.path(name), "w") as f:
                f.write(content)
        status, out, err = d.wait()
        check(status == 1, "exit status %d for %r" % (status, args))
        lines = err.strip().split("\n")
        check(len(lines) == 1, "not one line: %r" % err)
        check(lines[0].startswith("dataplaned: "), "prefix: %r" % err)
        check(needle in lines[0], "%r lacks %r" % (lines[0], needle))
        left = sorted(set(os.listdir(d.dir)) - set(files or {}))
        check(left == [], "left behind: %r" % left)
    finally:
        d.cleanup()


@test
def test_cmdline_unknown_option():
    bad_cmdline(["--frobnicate"], "--frobnicate: unrecognized option")


@test
def test_cmdline_missing_argument():
    bad_cmdline(["--blockdev"], "--blockdev: option requires an argument")


@test
def test_cmdline_stray_argument():
    bad_cmdline(["disk.img"], "disk.img: unexpected argument")


@test
def test_cmdline_bad_keyval_syntax():
    bad_cmdline(["--object", "iothread,id=io0,poll max=1"],
                "--object iothread,id=io0,poll max=1: Invalid parameter")


@test
def test_cmdline_bad_json():
    bad_cmdline(["--blockdev", '{"driver": "memory",'],
                "--blockdev {\"driver\": \"memory\",: JSON parse error")


@test
def test_cmdline_unknown_object_type():
    bad_cmdline(["--object", "nosuch,id=x"], "Invalid object type 'nosuch'")


@test
def test_cmdline_bad_object_property():
    bad_cmdline(["--object", "iothread,id=io0,poll-max-ns=lots"],
                "'poll-max-ns'")


@test
def test_cmdline_bad_blockdev_driver():
    bad_cmdline(["--blockdev", "driver=nosuch,node-name=n"], "'driver'")


@test
def test_cmdline_export_of_missing_node():
    # A later failure tears down what earlier options created: the NBD
    # socket, the monitor socket and the pid file are all gone.
    bad_cmdline(["--pidfile", "d.pid",
                 "--chardev", "socket,id=c,path=q.sock,server=on,wait=off",
                 "--monitor", "c",
                 "--nbd-server", "addr.type=unix,addr.path=nbd.sock",
                 "--export", "nbd,id=e,node-name=nope"],
                "--export nbd,id=e,node-name=nope: Cannot find node 'nope'")


@test
def test_cmdline_monitor_on_unknown_chardev():
    bad_cmdline(["--monitor", "chardev=nope"], "chardev 'nope' not found")


@test
def test_cmdline_chardev_not_a_server():
    bad_cmdline(["--chardev", "socket,id=c,path=q.sock"], "server=on")


@test
def test_cmdline_socket_path_not_a_socket():
    bad_cmdline(["--chardev", "socket,id=c,path=taken,server=on,wait=off",
                 "--monitor", "c"], "not a socket", files={"taken": "x"})


@test
def test_cmdline_bad_nbd_address():
    bad_cmdline(["--nbd-server", "addr.type=carrier-pigeon"], "'addr.type'")


@test
def test_cmdline_pidfile_in_use():
    holder = Daemon(["--pidfile", "d.pid"], monitor=True)
    try:
        holder.qmp()
        bad_cmdline(["--pidfile", holder.path("d.pid")], "another instance")
        check(os.path.exists(holder.path("d.pid")), "first pid file kept")
        holder.stop()
    finally:
        holder.cleanup()


@test
def test_cmdline_help_and_version():
    r = run([DATAPLANED, "--help"])
    check(r.returncode == 0 and "--blockdev" in r.stdout and
          "--nbd-server" in r.stdout, "help: %r" % r)
    r = run([DATAPLANED, "--version"])
    check(r.returncode == 0 and r.stdout.startswith("dataplaned "),
          "version: %r" % r)


@test
def test_cmdline_object_help():
    r = run([DATAPLANED, "--object", "help"])
    check(r.returncode == 0 and "iothread" in r.stdout and
          "throttle-group" in r.stdout, "--object help: %r" % r)
    r = run([DATAPLANED, "--object", "iothread,help"])
    check(r.returncode == 0 and "poll-max-ns" in r.stdout,
          "--object iothread,help: %r" % r)
    bad_cmdline(["--object", "nosuch,help"], "Invalid object type 'nosuch'")


# ---- IOThreads at runtime ---------------------------------------------------

def thread_ids(pid):
    return {int(t) for t in os.listdir("/proc/%d/task" % pid)}


@test
def test_iothreads_added_and_removed_at_runtime():
    d = Daemon()
    try:
        m = d.qmp()
        before = thread_ids(d.proc.pid)
        check(m.ok("query-iothreads") == [], "no IOThreads at start")
        for i in range(4):
            m.ok("object-add", {"qom-type": "iothread", "id": "io%d" % i,
                                "poll-max-ns": 1000 * i})
        info = m.ok("query-iothreads")
        check([t["id"] for t in info] == ["io0", "io1", "io2", "io3"],
              "ids: %r" % info)
        tids = thread_ids(d.proc.pid)
        for i, t in enumerate(info):
            check(t["thread-id"] in tids, "thread %r not running" % t)
            check(t["poll-max-ns"] == 1000 * i, "poll-max-ns %r" % t)
            for key in ("poll-grow", "poll-shrink", "aio-max-batch"):
                check(isinstance(t[key], int), "%s in %r" % (key, t))
            with open("/proc/%d/task/%d/comm" % (d.proc.pid,
                                                t["thread-id"])) as f:
                check(f.read().strip() == t["id"], "thread name")
        # Runtime changes through qom-set show in query-iothreads.
        m.ok("qom-set", {"path": "/objects/io1", "property": "poll-max-ns",
                         "value": 4096})
        check(m.ok("qom-get", {"path": "/objects/io1",
                               "property": "poll-max-ns"}) == 4096, "qom-get")
        check(m.ok("query-iothreads")[1]["poll-max-ns"] == 4096, "query")
        m.err("qom-set", {"path": "/objects/io1", "property": "thread-id",
                          "value": 1}, desc="not writable")
        # As in QEMU, thread-pool-max changes at runtime: it resizes the
        # IOThread's own pool (/objects/io1-pool).
        m.ok("qom-set", {"path": "/objects/io1", "property": "thread-pool-max",
                         "value": 7})
        check(m.ok("qom-get", {"path": "/objects/io1-pool",
                               "property": "max-threads"}) == 7, "pool max")
        m.err("object-add", {"qom-type": "iothread", "id": "io0"},
              desc="Duplicate ID 'io0'")
        names = [p["name"] for p in m.ok("qom-list",
                                         {"path": "/objects/io0"})]
        check("poll-max-ns" in names and "thread-id" in names, "qom-list")
        children = [p["name"] for p in m.ok("qom-list", {"path": "/objects"})]
        check("io3" in children, "qom-list /objects: %r" % children)
        for i in range(4):
            m.ok("object-del", {"id": "io%d" % i})
        check(m.ok("query-iothreads") == [], "all removed")
        check(thread_ids(d.proc.pid) == before,
              "threads left: %r" % (thread_ids(d.proc.pid) - before))
        d.stop()
    finally:
        d.cleanup()


@test
def test_iothread_in_use_is_not_deleted():
    d = Daemon(["--object", "iothread,id=io0"] + memory_node())
    try:
        m = d.qmp()
        m.ok("x-blockdev-set-iothread", {"node-name": "disk0",
                                         "iothread": "io0"})
        m.err("object-del", {"id": "io0"},
              desc="iothread 'io0' is in use by block node 'disk0'")
        m.ok("x-blockdev-set-iothread", {"node-name": "disk0",
                                         "iothread": None})
        m.ok("object-del", {"id": "io0"})
        m.err("x-blockdev-set-iothread", {"node-name": "disk0",
                                          "iothread": "io0"},
              desc="Cannot find iothread io0")
        m.err("x-blockdev-set-iothread", {"node-name": "nope",
                                          "iothread": None},
              desc="Failed to find node with node-name='nope'")
        d.stop()
    finally:
        d.cleanup()


# ---- block nodes and exports at runtime -------------------------------------

@test
def test_blockdev_export_and_teardown_at_runtime():
    need("nbdinfo", "qemu-io")
    d = Daemon()
    try:
        m = d.qmp()
        sock = d.path("nbd.sock")
        m.ok("object-add", {"qom-type": "iothread", "id": "io0"})
        m.ok("blockdev-add", {"driver": "memory", "node-name": "mem0",
                              "size": 32 << 20})
        m.err("blockdev-add", {"driver": "memory", "node-name": "mem0",
                               "size": 4096})
        nodes = m.ok("query-named-block-nodes")
        check([(n["node-name"], n["drv"], n["image"]["virtual-size"])
               for n in nodes] == [("mem0", "memory", 32 << 20)],
              "nodes: %r" % nodes)
        m.err("block-export-add", {"type": "nbd", "id": "e0",
                                   "node-name": "mem0"},
              desc="NBD server not running")
        # The legacy address shape, as libvirt sends it.
        m.ok("nbd-server-start", {"addr": {"type": "unix",
                                           "data": {"path": sock}}})
        m.err("nbd-server-start", {"addr": {"type": "unix", "path": sock}},
              desc="already running")
        m.ok("block-export-add", {"type": "nbd", "id": "e0",
                                  "node-name": "mem0", "name": "mem",
                                  "writable": True, "iothread": "io0",
                                  "description": "runtime export"})
        exports = m.ok("query-block-exports")
        check(exports == [{"type": "nbd", "id": "e0", "node-name": "mem0",
                           "shutting-down": False}], "exports %r" % exports)
        r = run(["nbdinfo", "--json", nbd_uri(sock, "mem")])
        check(r.returncode == 0, "nbdinfo: %s" % r.stderr)
        info = json.loads(r.stdout)["exports"][0]
        check(info["export-size"] == 32 << 20, "size %r" % info)
        check(info.get("description") == "runtime export", "desc %r" % info)
        r = run(["qemu-io", "-f", "raw", "-c", "write -P 0xa5 4096 64k",
                 "-c", "read -P 0xa5 4096 64k", nbd_uri(sock, "mem")])
        check(r.returncode == 0 and "Pattern verification failed"
              not in r.stdout, "qemu-io: %s %s" % (r.stdout, r.stderr))
        # In use: the node by the export, the IOThread by the node.
        m.err("blockdev-del", {"node-name": "mem0"},
              desc="in use by export 'e0'")
        m.err("object-del", {"id": "io0"}, desc="in use by block node")
        # Teardown in order, each step visible.
        m.ok("block-export-del", {"id": "e0", "mode": "hard"})
        ev = m.wait_event("BLOCK_EXPORT_DELETED")
        check(ev["data"] == {"id": "e0"}, "event %r" % ev)
        check(m.ok("query-block-exports") == [], "no exports")
        m.err("block-export-del", {"id": "e0"})
        m.ok("blockdev-del", {"node-name": "mem0"})
        check(m.ok("query-named-block-nodes") == [], "no nodes")
        m.ok("object-del", {"id": "io0"})
        m.ok("nbd-server-stop")
        check(not os.path.exists(sock), "NBD socket removed on stop")
        m.err("nbd-server-stop", desc="not running")
        d.stop()
    finally:
        d.cleanup()


@test
def test_export_refuses_safe_delete_with_client_connected():
    need("qemu-io")
    d = Daemon(memory_node() + ["--nbd-server",
                                "addr.type=unix,addr.path=nbd.sock",
                                "--export", "nbd,id=e0,node-name=disk0"])
    try:
        m = d.qmp()
        # An interactive qemu-io keeps its connection open until stdin ends;
        # its answer to "length" proves that it is connected.
        client = subprocess.Popen(
            ["qemu-io", "-r", "-f", "raw",
             nbd_uri(d.path("nbd.sock"), "disk0")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            client.stdin.write("length\n")
            client.stdin.flush()
            line = client.stdout.readline()
            check("64 MiB" in line, "client connected: %r" % line)
            m.err("block-export-del", {"id": "e0", "mode": "safe"})
            check(len(m.ok("query-block-exports")) == 1, "export kept")
            m.ok("block-export-del", {"id": "e0", "mode": "hard"})
            m.wait_event("BLOCK_EXPORT_DELETED")
        finally:
            client.stdin.close()
            client.wait(timeout=30)
        d.stop()
    finally:
        d.cleanup()


@test
def test_export_hard_delete_then_node_and_iothread_go():
    """Clients connected in an IOThread; block-export-del hard, then, on
    BLOCK_EXPORT_DELETED, blockdev-del and object-del of the IOThread: each
    succeeds, and the clients see their connection end."""
    need("qemu-io")
    d = Daemon(["--object", "iothread,id=io0"] + memory_node() +
               ["--nbd-server", "addr.type=unix,addr.path=nbd.sock",
                "--export", "nbd,id=e0,node-name=disk0,iothread=io0"])
    clients = []
    try:
        m = d.qmp()
        for _ in range(4):
            c = subprocess.Popen(["qemu-io", "-r", "-f", "raw",
                                  nbd_uri(d.path("nbd.sock"), "disk0")],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True)
            clients.append(c)
            c.stdin.write("length\n")
            c.stdin.flush()
            check("64 MiB" in c.stdout.readline(), "client connected")
        m.ok("block-export-del", {"id": "e0", "mode": "hard"})
        # As with QEMU, the node is free once the event says the export is
        # gone (its clients may take a moment to close).
        ev = m.wait_event("BLOCK_EXPORT_DELETED")
        check(ev["data"] == {"id": "e0"}, "event %r" % ev)
        m.ok("blockdev-del", {"node-name": "disk0"})
        m.ok("object-del", {"id": "io0"})
        check(m.ok("query-iothreads") == [], "IOThread gone")
        # A read on a dropped connection fails rather than hangs.
        for c in clients:
            out, _ = c.communicate("read 0 512\n", timeout=30)
            check("read failed" in out or "error" in out.lower(),
                  "client still served: %r" % out)
        d.stop()
    finally:
        for c in clients:
            if c.poll() is None:
                c.kill()
                c.communicate()
        d.cleanup()


@test
def test_nbd_server_limits_reach_the_server():
    need("qemu-io", "nbdinfo")
    d = Daemon(memory_node())
    try:
        m = d.qmp()
        sock = d.path("nbd.sock")
        # The flat address shape, with both limits.
        m.ok("nbd-server-start", {"addr": {"type": "unix", "path": sock},
                                  "max-connections": 1,
                                  "handshake-max-seconds": 1})
        m.ok("block-export-add", {"type": "nbd", "id": "e0",
                                  "node-name": "disk0"})
        holder = subprocess.Popen(["qemu-io", "-r", "-f", "raw",
                                   nbd_uri(sock, "disk0")],
                                  stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        try:
            holder.stdin.write("length\n")
            holder.stdin.flush()
            check("64 MiB" in holder.stdout.readline(), "first client")
            r = run(["nbdinfo", "--size", nbd_uri(sock, "disk0")])
            check(r.returncode != 0, "a second client got in: %r" % r)
        finally:
            holder.stdin.close()
            holder.wait(timeout=30)
        # A client that never finishes its handshake is disconnected: the
        # server's greeting arrives, then EOF (well within the bound).  The
        # first client's slot is released by a main-loop BH after its EOF:
        # until then a new connection is over max-connections and closed
        # without a greeting, so try again a bounded number of times.
        for _ in range(50):
            s = connect_unix(sock)
            s.settimeout(20)
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            s.close()
            if data:
                break
            time.sleep(0.1)
        check(data.startswith(b"NBDMAGIC"), "greeting %r" % data[:16])
        d.stop()
    finally:
        d.cleanup()


@test
def test_nbd_server_x_poll_sockets():
    # Busy-polled sockets serve the same bytes, from the command line and
    # through QMP; a value that is not a boolean is refused, naming the key.
    need("qemu-io")
    bad_cmdline(["--nbd-server",
                 "addr.type=unix,addr.path=n.sock,x-poll-sockets=maybe"],
                "x-poll-sockets")
    d = Daemon(memory_node() + ["--object", "iothread,id=io0"], monitor=True)
    try:
        m = d.qmp()
        sock = d.path("nbd.sock")
        m.err("nbd-server-start", {"addr": {"type": "unix", "path": sock},
                                   "x-poll-sockets": "yes"})
        m.ok("nbd-server-start", {"addr": {"type": "unix", "path": sock},
                                  "x-poll-sockets": True})
        m.ok("x-blockdev-set-iothread", {"node-name": "disk0",
                                         "iothread": "io0"})
        m.ok("block-export-add", {"type": "nbd", "id": "e0",
                                  "node-name": "disk0", "writable": True})
        r = run(["qemu-io", "-f", "raw", "-c", "write -P 0x6b 0 1M",
                 "-c", "read -P 0x6b 0 1M", nbd_uri(sock, "disk0")])
        check(r.returncode == 0 and "Pattern verification failed"
              not in r.stdout, "qemu-io: %s %s" % (r.stdout, r.stderr))
        d.stop()
    finally:
        d.cleanup()


@test
def test_nbd_server_over_tcp():
    need("nbdinfo")
    import random
    d = Daemon(memory_node())
    try:
        m = d.qmp()
        rng = random.Random(os.getpid())
        for attempt in range(10):
            port = rng.randrange(20000, 60000)
            r = m.cmd("nbd-server-start",
                      {"addr": {"type": "inet",
                                "data": {"host": "127.0.0.1",
                                         "port": str(port)}}})
            if "return" in r:
                break
            check("in use" in r["error"]["desc"].lower(),
                  "nbd-server-start: %r" % r)
        else:
            raise TestFailure("no free port in 10 tries")
        m.ok("block-export-add", {"type": "nbd", "id": "e0",
                                  "node-name": "disk0"})
        r = run(["nbdinfo", "--size", "nbd://127.0.0.1:%d/disk0" % port])
        check(r.returncode == 0 and int(r.stdout) == 64 << 20,
              "nbdinfo: %r" % r)
        m.ok("nbd-server-stop")
        m.wait_event("BLOCK_EXPORT_DELETED")
        d.stop()
    finally:
        d.cleanup()


# ---- the listener rules (dataplane/socket.h) --------------------------------

def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


@test
def test_nbd_accept_at_fd_limit_backs_off():
    # With every fd in use, accept() fails while the listening socket stays
    # readable.  The daemon must stop watching it for a while instead of
    # spinning and logging on every loop iteration: QMP keeps answering,
    # the log stays short, and once fds are free again clients get in.
    need("nbdinfo")
    import resource

    def low_fd_limit():
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))

    d = Daemon(memory_node() + nbd_server_args("nbd.sock") +
               ["--export", "nbd,id=e0,node-name=disk0"],
               preexec_fn=low_fd_limit)
    clients = []
    try:
        m = d.qmp()
        # Connections that never handshake: each holds a daemon fd until
        # there is none left; the rest wait in the listen backlog.
        for _ in range(100):
            clients.append(connect_unix(d.path("nbd.sock")))
        for _ in range(1000):
            if open_fds(d.proc.pid) >= 64:
                break
            time.sleep(0.01)
        check(open_fds(d.proc.pid) >= 64, "the daemon never ran out of fds")
        # Each round trip is at least one main-loop iteration; a listener
        # that spins logs on every one of them.
        rounds = 300
        for _ in range(rounds):
            m.ok("query-version")
        for c in clients:
            c.close()
        clients = []
        # Fds free again: the retry brings accepting back.
        for _ in range(100):
            r = run(["nbdinfo", "--size", nbd_uri(d.path("nbd.sock"), "disk0")])
            if r.returncode == 0:
                break
            time.sleep(0.1)
        check(r.returncode == 0 and int(r.stdout) == 64 << 20,
              "no NBD client after the fds came back: %r" % r)
        _, err = d.stop()
        lines = [l for l in err.splitlines() if "accept" in l]
        check(len(lines) >= 1, "no accept error logged: %r" % err[:500])
        check(len(lines) <= 10 + 1,
              "%d accept lines for %d loop rounds: %r" %
              (len(lines), rounds, lines[:3]))
    finally:
        for c in clients:
            c.close()
        d.cleanup()


@test
def test_nbd_live_socket_is_refused():
    # A second daemon on the path of a live NBD socket fails and leaves
    # the first one's socket in place, still serving.
    need("nbdinfo")
    first = Daemon(memory_node() + nbd_server_args("nbd.sock") +
                   ["--export", "nbd,id=e0,node-name=disk0"])
    try:
        first.qmp()
        sock = first.path("nbd.sock")
        ino = os.stat(sock).st_ino
        second = Daemon(memory_node() + nbd_server_args(sock), monitor=False)
        try:
            status, _, err = second.wait()
            check(status == 1, "second daemon exit status %d" % status)
            check("is in use by another process" in err, "stderr: %r" % err)
        finally:
            second.cleanup()
        check(os.stat(sock).st_ino == ino, "the socket file was replaced")
        r = run(["nbdinfo", "--size", nbd_uri(sock, "disk0")])
        check(r.returncode == 0, "first daemon no longer served: %r" % r)
        first.stop()
    finally:
        first.cleanup()


@test
def test_nbd_socket_mode_is_explicit():
    # 0600 whatever the umask; addr.mode sets another, also exactly.
    def umask(mask):
        return lambda: os.umask(mask)

    for mask, extra, want in ((0, "", 0o600), (0o077, ",addr.mode=0660", 0o660)):
        d = Daemon(["--nbd-server", "addr.type=unix,addr.path=nbd.sock" +
                    extra], preexec_fn=umask(mask))
        try:
            d.qmp()
            mode = stat.S_IMODE(os.stat(d.path("nbd.sock")).st_mode)
            check(mode == want, "umask %o%s: mode %o" % (mask, extra, mode))
            qmp_mode = stat.S_IMODE(os.stat(d.qmp_path).st_mode)
            check(qmp_mode == 0o600, "monitor mode %o" % qmp_mode)
            d.stop()
        finally:
            d.cleanup()
    bad_cmdline(["--nbd-server", "addr.type=unix,addr.path=s,addr.mode=660"],
                "Parameter 'addr.mode' must be between 0 and 511")


@test
def test_exit_removes_only_our_own_sockets():
    # Files that replaced the daemon's sockets while it ran are not its to
    # remove at exit.
    d = Daemon(nbd_server_args("nbd.sock"))
    try:
        d.qmp()
        os.rename(d.path("nbd.sock"), d.path("old.sock"))
        with open(d.path("nbd.sock"), "w") as f:
            f.write("someone else's")
        os.unlink(d.qmp_path)
        with open(d.qmp_path, "w") as f:
            f.write("someone else's too")
        d.signal(signal.SIGTERM)
        status, _, err = d.wait()
        check(status == 0, "exit status %d: %s" % (status, err))
        left = sorted(os.listdir(d.dir))
        check(left == ["nbd.sock", "old.sock", "qmp.sock"],
              "left: %r" % left)
        for name in ("nbd.sock", "qmp.sock"):
            check(stat.S_ISREG(os.stat(d.path(name)).st_mode),
                  "%s is not the replacement" % name)
    finally:
        d.cleanup()
    # And our own go, as always.
    d = Daemon(nbd_server_args("nbd.sock"))
    try:
        d.qmp()
        d.stop()
    finally:
        d.cleanup()


@test
def test_throttle_group_limits_change_through_qom_set():
    d = Daemon(["--object", "throttle-group,id=tg0"] + memory_node("m0") +
               ["--blockdev",
                "driver=throttle,node-name=t0,throttle-group=tg0,file=m0"])
    try:
        m = d.qmp()
        props = [p["name"] for p in m.ok("qom-list",
                                         {"path": "/objects/tg0"})]
        limit = "x-iops-total"  # at runtime: here only (see limits)
        check(limit in props, "qom-list: %r" % props)
        m.ok("qom-set", {"path": "/objects/tg0", "property": limit,
                         "value": 1000})
        check(m.ok("qom-get", {"path": "/objects/tg0",
                               "property": limit}) == 1000, "limit set")
        m.err("object-del", {"id": "tg0"}, desc="in use")
        d.stop()
    finally:
        d.cleanup()


# ---- signals and the default run ---------------------------------------------

def signal_cleanup(sig):
    need("qemu-io")
    d = Daemon(["--pidfile", "d.pid", "--object", "iothread,id=io0"] +
               memory_node() + ["--nbd-server",
                                "addr.type=unix,addr.path=nbd.sock",
                                "--export",
                                "nbd,id=e0,node-name=disk0,writable=on,"
                                "iothread=io0"])
    try:
        m = d.qmp()
        with open(d.path("d.pid")) as f:
            check(int(f.read()) == d.proc.pid, "pid file content")
        r = run(["qemu-io", "-f", "raw", "-c", "write 0 1M",
                 nbd_uri(d.path("nbd.sock"), "disk0")])
        check(r.returncode == 0, "qemu-io: %s" % r.stderr)
        d.signal(sig)
        ev = m.wait_event("SHUTDOWN")
        check(ev["data"]["reason"] == "host-signal", "reason %r" % ev)
        status, out, err = d.wait()
        check(status == 0, "exit %d: %s" % (status, err))
        d.check_clean()
    finally:
        d.cleanup()


@test
def test_sigterm_cleans_up():
    signal_cleanup(signal.SIGTERM)


@test
def test_sighup_cleans_up():
    # qemu-storage-daemon stops on SIGHUP as on SIGTERM.
    signal_cleanup(signal.SIGHUP)


@test
def test_sigint_cleans_up():
    signal_cleanup(signal.SIGINT)


def nbd_connections(d):
    """Connections the daemon has accepted on its nbd.sock (from ss)."""
    r = run(["ss", "-x", "-p", "state", "established"])
    return sum(1 for line in r.stdout.splitlines()
               if "nbd.sock " in line and "pid=%d," % d.proc.pid in line)


@test
def test_sigterm_under_load_cleans_up():
    """SIGTERM while fio has 32 requests in flight on an IOThread's export:
    the daemon drops the connection, drains, closes and exits 0."""
    need("fio")
    d = Daemon(["--object", "iothread,id=io0"] + memory_node() +
               ["--nbd-server", "addr.type=unix,addr.path=nbd.sock",
                "--export", "nbd,id=e0,node-name=disk0,writable=on,"
                "iothread=io0"])
    try:
        m = d.qmp()
        fio = subprocess.Popen(
            ["fio", "--name=load", "--ioengine=nbd",
             "--uri=" + nbd_uri(d.path("nbd.sock"), "disk0"),
             "--rw=randrw", "--bs=64k", "--iodepth=32", "--size=64M",
             "--time_based", "--runtime=60", "--verify_state_save=0",
             "--output-format=json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            # Wait until fio's connection is in the transmission phase.
            deadline = time.monotonic() + 30
            while not any(e["id"] == "e0" for e in m.ok("query-block-exports")):
                check(time.monotonic() < deadline, "export missing")
            while True:
                if fio.poll() is not None:
                    raise TestFailure("fio ended early: %s" %
                                      fio.stderr.read())
                check(time.monotonic() < deadline, "fio never connected")
                if nbd_connections(d) > 0:
                    break
                time.sleep(0.05)
            d.signal(signal.SIGTERM)
            status, out, err = d.wait()
            check(status == 0, "exit %d: %s" % (status, err))
            d.check_clean()
        finally:
            fio.kill()
            fio.communicate()
    finally:
        d.cleanup()


@test
def test_sigterm_while_stopped_cleans_up():
    d = Daemon(["--object", "iothread,id=io0"] + memory_node())
    try:
        m = d.qmp()
        m.ok("x-blockdev-set-iothread", {"node-name": "disk0",
                                         "iothread": "io0"})
        m.ok("stop")
        m.err("x-blockdev-set-iothread", {"node-name": "disk0",
                                          "iothread": None},
              desc="stopped")
        d.stop()
    finally:
        d.cleanup()


@test
def test_default_run_serves_memory_disk():
    need("nbdinfo", "qemu-io")
    d = Daemon([], monitor=False)
    try:
        sock = d.path("dataplaned.sock")
        connect_unix(d.path("dataplaned-qmp.sock")).close()
        m = QMP(d.path("dataplaned-qmp.sock"))
        d.monitors.append(m)
        check(m.ok("query-iothreads")[0]["id"] == "iothread0", "IOThread")
        r = run(["nbdinfo", "--size", nbd_uri(sock, "disk0")])
        check(r.returncode == 0 and int(r.stdout) == 1 << 30,
              "nbdinfo: %r" % r)
        r = run(["qemu-io", "-f", "raw", "-c", "write -P 0x5a 0 1M", "-c",
                 "read -P 0x5a 0 1M", nbd_uri(sock, "disk0")])
        check(r.returncode == 0 and "verification failed" not in r.stdout,
              "qemu-io: %r" % r)
        out, err = d.stop()
        check("nbdinfo 'nbd+unix:///disk0?socket=" in out, "hint: %r" % out)
        check("qemu-io " in out, "hint: %r" % out)
    finally:
        d.cleanup()


@test
def test_daemonize_detaches_after_setup():
    d = Daemon(["--daemonize", "--pidfile", "d.pid"] + memory_node(),
               monitor=True)
    try:
        status, out, err = d.wait()
        check(status == 0, "parent exit %d: %s" % (status, err))
        # The parent exits only once everything exists.
        check(os.path.exists(d.qmp_path) and os.path.exists(d.path("d.pid")),
              "set up before the parent exits")
        with open(d.path("d.pid")) as f:
            pid = int(f.read())
        m = QMP(d.qmp_path)
        m.ok("quit")
        m.wait_event("SHUTDOWN")
        # The daemon is not our child: wait for its monitor to close.
        try:
            while True:
                m.recv()
        except TestFailure:
            pass
        m.close()
        deadline = time.monotonic() + 15
        while os.path.exists("/proc/%d" % pid):
            check(time.monotonic() < deadline, "daemon still running")
            time.sleep(0.01)
        d.check_clean()
    finally:
        d.cleanup()


# ---- moving a node under load ----------------------------------------------

@test
def test_fio_verify_while_node_moves_between_iothreads():
    """fio writes and verifies (crc32c) through NBD while the node hops
    between two IOThreads every 100 ms for 10 s."""
    need("fio")
    d = Daemon(["--object", "iothread,id=ioA", "--object", "iothread,id=ioB"] +
               memory_node("disk0", 256 << 20) +
               ["--nbd-server", "addr.type=unix,addr.path=nbd.sock",
                "--export", "nbd,id=e0,node-name=disk0,writable=on,"
                "iothread=ioA"])
    try:
        m = d.qmp()
        fio = subprocess.Popen(
            ["fio", "--name=verify", "--ioengine=nbd",
             "--uri=" + nbd_uri(d.path("nbd.sock"), "disk0"),
             "--rw=randwrite", "--bs=4k", "--iodepth=32", "--size=256M",
             "--time_based", "--runtime=10", "--verify=crc32c",
             "--do_verify=1", "--verify_fatal=1", "--verify_backlog=1024",
             "--verify_state_save=0",
             "--output-format=json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        moves = 0
        deadline = time.monotonic() + 10
        targets = ["ioB", "ioA"]
        # A move every 100 ms: the interval is the test's subject, not a
        # way of waiting for something.
        while time.monotonic() < deadline and fio.poll() is None:
            m.ok("x-blockdev-set-iothread",
                 {"node-name": "disk0", "iothread": targets[moves % 2],
                  "force": True})
            moves += 1
            time.sleep(0.1)
        out, err = fio.communicate(timeout=120)
        check(fio.returncode == 0, "fio failed (%d): %s" % (fio.returncode,
                                                            err[-2000:]))
        job = json.loads(out[out.index("{"):])["jobs"][0]
        check(job["error"] == 0, "fio error %r" % job["error"])
        written = job["write"]["io_bytes"]
        check(written > 0, "fio wrote nothing")
        check(moves >= 50, "only %d moves" % moves)
        print("moves=%d written=%d MiB verified" % (moves, written >> 20))
        d.stop()
    finally:
        d.cleanup()


@test
def test_multi_threaded_export_spreads_clients_fio_verify():
    """An export over two IOThreads (QEMU 10.1's iothread list): four fio
    connections are spread two and two, write and verify (crc32c) their
    regions of a file on a disk file system while the node's home context
    moves, and the IOThreads cannot be deleted under the export."""
    need("fio")
    d = Daemon(["--object", "iothread,id=ioA", "--object", "iothread,id=ioB"])
    fd, img = tempfile.mkstemp(prefix="mq-export-", dir="/var/tmp")
    os.ftruncate(fd, 256 << 20)
    os.close(fd)
    try:
        m = d.qmp()
        m.ok("blockdev-add", {"driver": "file", "node-name": "disk0",
                              "filename": img})
        m.ok("nbd-server-start", {"addr": {"type": "unix", "data": {
            "path": d.path("nbd.sock")}}})
        m.err("block-export-add", {"type": "nbd", "id": "bad",
                                   "node-name": "disk0", "iothread": []},
              desc="The set of I/O threads must not be empty")
        m.err("block-export-add", {"type": "nbd", "id": "bad",
                                   "node-name": "disk0",
                                   "iothread": ["ioA", "nope"]},
              desc='iothread "nope" not found')
        m.err("block-export-add", {"type": "nbd", "id": "bad",
                                   "node-name": "disk0",
                                   "iothread": ["ioA"],
                                   "fixed-iothread": True},
              desc="Cannot use fixed-iothread for a multi-threaded export")
        m.ok("block-export-add", {"type": "nbd", "id": "e0",
                                  "node-name": "disk0", "writable": True,
                                  "iothread": ["ioA", "ioB"]})
        info = m.ok("query-block-exports")
        check(info[0]["iothread"] == ["ioA", "ioB"], "query: %r" % info)
        m.err("object-del", {"id": "ioB"},
              desc="iothread 'ioB' is in use by block export 'e0'")

        fio = subprocess.Popen(
            ["fio", "--name=verify", "--ioengine=nbd",
             "--uri=" + nbd_uri(d.path("nbd.sock"), "disk0"),
             "--rw=randwrite", "--bs=4k", "--iodepth=16", "--numjobs=4",
             "--size=64M", "--offset_increment=64M", "--io_size=16M",
             "--verify=crc32c", "--do_verify=1", "--verify_fatal=1",
             "--verify_backlog=512", "--verify_state_save=0",
             "--group_reporting", "--output-format=json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # Count connections (not time): wait until all four are attached,
        # then check the spread.
        spread = None
        moves = 0
        targets = ["ioB", "ioA", None]
        while fio.poll() is None:
            e = m.ok("query-block-exports")[0]
            if sum(e["x-iothread-connections"]) == 4 and spread is None:
                spread = e["x-iothread-connections"]
            if spread is not None and moves < 6:
                # The node's home moves; the connections stay put.
                m.ok("x-blockdev-set-iothread",
                     {"node-name": "disk0", "iothread": targets[moves % 3],
                      "force": True})
                moves += 1
            time.sleep(0.05)
        out, err = fio.communicate(timeout=300)
        check(fio.returncode == 0, "fio failed (%d): %s" % (fio.returncode,
                                                            err[-2000:]))
        job = json.loads(out[out.index("{"):])["jobs"][0]
        check(job["error"] == 0, "fio error %r" % job["error"])
        check(job["write"]["io_bytes"] == 4 * (16 << 20),
              "written %r" % job["write"]["io_bytes"])
        check(spread == [2, 2], "connections per IOThread: %r" % spread)
        print("spread=%r moves=%d" % (spread, moves))
        m.ok("block-export-del", {"id": "e0"})
        for _ in range(200):
            if m.ok("query-block-exports") == []:
                break
            time.sleep(0.05)
        check(m.ok("query-block-exports") == [], "export gone")
        m.ok("object-del", {"id": "ioB"})
        d.stop()
    finally:
        d.cleanup()
        os.unlink(img)


@test
def test_block_resize_visible_to_clients():
    """block_resize grows a node exported from an IOThread: new NBD clients
    see the new size and can use it; a file under a raw node grows on
    disk; the refusals say why and change nothing."""
    need("nbdinfo", "qemu-io")
    img = os.path.join(tempfile.mkdtemp(prefix="dataplaned-resize-"), "f.img")
    with open(img, "wb") as f:
        f.truncate(1 << 20)
    d = Daemon(["--object", "iothread,id=io0"] +
               memory_node("mem0", 1 << 20) +
               ["--blockdev", "driver=raw,node-name=raw0,file.driver=file,"
                "file.filename=%s,file.node-name=file0" % img,
                "--blockdev", "driver=raw,node-name=fixed0,size=4096,"
                "file.driver=null-co",
                "--blockdev", "driver=null-co,node-name=ro0,read-only=on",
                "--nbd-server", "addr.type=unix,addr.path=nbd.sock",
                "--export", "nbd,id=e0,node-name=mem0,writable=on,"
                "iothread=io0",
                "--export", "nbd,id=e1,node-name=raw0,writable=on"])
    try:
        m = d.qmp()
        sock = d.path("nbd.sock")

        def size_of(name):
            r = run(["nbdinfo", "--size", nbd_uri(sock, name)])
            check(r.returncode == 0, "nbdinfo: %s" % r.stderr)
            return int(r.stdout)

        check(size_of("mem0") == 1 << 20, "initial size")
        r = run(["qemu-io", "-f", "raw", "-c", "write -P 0x3c 0 1M",
                 nbd_uri(sock, "mem0")])
        check(r.returncode == 0, "qemu-io: %s" % r.stderr)
        m.ok("block_resize", {"node-name": "mem0", "size": 64 << 20})
        check(size_of("mem0") == 64 << 20, "size after the resize")
        nodes = {n["node-name"]: n for n in m.ok("query-named-block-nodes")}
        check(nodes["mem0"]["image"]["virtual-size"] == 64 << 20,
              "query-named-block-nodes: %r" % nodes["mem0"])
        r = run(["qemu-io", "-f", "raw", "-c", "read -P 0x3c 0 1M",
                 "-c", "read -P 0 1M 63M", "-c", "write -P 0x7e 63M 1M",
                 "-c", "read -P 0x7e 63M 1M", nbd_uri(sock, "mem0")])
        check(r.returncode == 0 and "Pattern verification failed"
              not in r.stdout, "qemu-io: %s %s" % (r.stdout, r.stderr))
        # Through raw to the file: the image grows on disk.
        m.ok("block_resize", {"node-name": "raw0", "size": 3 << 20})
        check(os.path.getsize(img) == 3 << 20, "file size %d" %
              os.path.getsize(img))
        check(size_of("raw0") == 3 << 20, "raw0 size")
        # Refusals.
        m.err("block_resize", {"node-name": "nope", "size": 1 << 20},
              cls="DeviceNotFound",
              desc="Cannot find device='' nor node-name='nope'")
        m.err("block_resize", {"device": "mem0", "size": 1 << 20},
              cls="DeviceNotFound", desc="Cannot find device='mem0'")
        m.err("block_resize", {"node-name": "mem0", "size": -1},
              desc="Parameter 'size' expects a >0 size")
        m.err("block_resize", {"node-name": "mem0"},
              desc="Parameter 'size' is missing")
        m.err("block_resize", {"node-name": "fixed0", "size": 8192},
              desc="Cannot resize fixed-size raw disks")
        m.err("block_resize", {"node-name": "ro0", "size": 8192},
              desc="read-only")
        check(size_of("mem0") == 64 << 20, "unchanged by the refusals")
        d.stop()
    finally:
        d.cleanup()
        shutil.rmtree(os.path.dirname(img), ignore_errors=True)


# ---- what a script written for qemu-storage-daemon relies on ----------------
# Each expectation here was checked against qemu-storage-daemon 7.2 with the
# same command line and QMP conversation.

@test
def test_compat_export_defaults():
    need("nbdinfo")
    d = Daemon(["--blockdev", "null-co,node-name=n0,size=0x100000",
                "--blockdev", "null-co,node-name=n1,size=1048576",
                "--nbd-server", "addr.type=unix,addr.path=nbd.sock",
                # No name: the export is called after its node.
                "--export", "nbd,id=e0,node-name=n0",
                # name= (empty): the default export, what a URI without
                # a name reaches.
                "--export", "nbd,id=e1,node-name=n1,name=,writable=on"])
    try:
        d.qmp()  # the monitor comes last: once it answers, all is set up
        sock = d.path("nbd.sock")
        r = run(["nbdinfo", "--json", "--list", nbd_uri(sock, "")])
        check(r.returncode == 0, "nbdinfo --list: %s" % r.stderr)
        exports = {e["export-name"]: e for e in json.loads(r.stdout)["exports"]}
        check(sorted(exports) == ["", "n0"], "exports %r" % sorted(exports))
        n0 = exports["n0"]
        check(n0["export-size"] == 1 << 20, "hex size: %r" % n0)
        check(n0["is_read_only"] is True, "writable defaults to off")
        check(exports[""]["is_read_only"] is False, "writable=on")
        # The block sizes QEMU advertises, which clients size requests by.
        check((n0["block_size_minimum"], n0["block_size_preferred"],
               n0["block_size_maximum"]) == (1, 4096, 32 << 20),
              "block sizes %r" % n0)
        r = run(["nbdinfo", "--json", nbd_uri(sock, "")])
        check(r.returncode == 0, "nbdinfo default export: %s" % r.stderr)
        check(json.loads(r.stdout)["exports"][0]["is_read_only"] is False,
              "the default export is e1's")
        d.stop()
    finally:
        d.cleanup()


@test
def test_compat_chardev_short_form_booleans():
    # QEMU's chardev parser still takes `server,nowait` (with a warning),
    # and older scripts and tutorials all write it so.
    d = Daemon(["--chardev", "socket,id=mon,path=m.sock,server,nowait",
                "--monitor", "mon"], monitor=False)
    try:
        m = QMP(d.path("m.sock"))
        d.monitors.append(m)
        check("return" in m.cmd("query-version"), "monitor works")
        out, err = d.stop()
        check("short-form boolean option 'server' deprecated" in err,
              "warning: %r" % err)
    finally:
        d.cleanup()
    # A misspelt short form is still an error, not a silent default.
    bad_cmdline(["--chardev", "socket,id=mon,path=m.sock,nowiat,server=on",
                 "--monitor", "mon"], "nowiat")


@test
def test_compat_throttle_limits_as_one_property():
    # QEMU changes a group's limits with qom-set of the struct "limits"
    # (its x- properties are creation-only there).
    d = Daemon(["--object", "throttle-group,id=tg0,x-iops-total=100"])
    try:
        m = d.qmp()
        tg = "/objects/tg0"
        limits = m.ok("qom-get", {"path": tg, "property": "limits"})
        check(limits["iops-total"] == 100 and limits["bps-read"] == 0 and
              limits["iops-total-max-length"] == 1, "limits %r" % limits)
        # Members are merged into the current limits.  Each needs another
        # set first (the burst needs its rate; iops-read needs iops-total
        # cleared), whatever order the object lists them in.
        m.ok("qom-set", {"path": tg, "property": "limits",
                         "value": {"iops-total-max-length": 3,
                                   "iops-total-max": 400,
                                   "iops-total": 300}})
        limits = m.ok("qom-get", {"path": tg, "property": "limits"})
        check((limits["iops-total"], limits["iops-total-max"],
               limits["iops-total-max-length"]) == (300, 400, 3),
              "limits %r" % limits)
        m.ok("qom-set", {"path": tg, "property": "limits",
                         "value": {"iops-read": 10, "iops-total": 0,
                                   "iops-total-max": 0,
                                   "iops-total-max-length": 1}})
        check(m.ok("qom-get", {"path": tg, "property": "x-iops-read"}) == 10,
              "iops-read set")
        # An invalid whole changes nothing.
        m.err("qom-set", {"path": tg, "property": "limits",
                          "value": {"iops-read": 500, "iops-read-max": 100}},
              desc="iops-read-max")
        check(m.ok("qom-get", {"path": tg, "property": "x-iops-read"}) == 10,
              "refused limits were rolled back")
        m.err("qom-set", {"path": tg, "property": "limits",
                          "value": {"bogus": 1}},
              desc="Parameter 'limits.bogus' is unexpected")
        m.err("qom-set", {"path": tg, "property": "limits",
                          "value": {"iops-read": "x"}},
              desc="Invalid parameter type for 'limits.iops-read', "
                   "expected: integer")
        m.err("qom-set", {"path": tg, "property": "limits", "value": 5},
              desc="expected: object")
        d.stop()
    finally:
        d.cleanup()


@test
def test_compat_qmp_error_texts():
    # The texts scripts match on, as QEMU 7.2 words them.
    d = Daemon(["--blockdev", "null-co,node-name=n0"])
    try:
        m = d.qmp()
        check(m.cmd("qmp_capabilities")["error"] ==
              {"class": "CommandNotFound",
               "desc": "Capabilities negotiation is already complete, "
                       "command ignored"}, "second qmp_capabilities")
        for cmd, args, desc in [
                ("x-blockdev-set-iothread",
                 {"node-name": "nope", "iothread": None},
                 "Failed to find node with node-name='nope'"),
                ("blockdev-del", {"node-name": "nope"},
                 "Failed to find node with node-name='nope'"),
                ("blockdev-add", {"driver": "null-co", "node-name": "n0"},
                 "Duplicate nodes with node-name='n0'"),
                ("object-del", {"id": "nope"}, "object 'nope' not found"),
                ("block-export-del", {"id": "nope"},
                 "Export 'nope' is not found"),
                ("nbd-server-stop", None, "NBD server not running"),
                ("block-export-add", {"type": "nbd", "id": "e0",
                                      "node-name": "n0"},
                 "NBD server not running")]:
            got = m.err(cmd, args)
            check(got == desc, "%s: %r, QEMU says %r" % (cmd, got, desc))
        m.err("qom-get", {"path": "/objects/nope", "property": "x"},
              cls="DeviceNotFound", desc="Device '/objects/nope' not found")
        d.stop()
    finally:
        d.cleanup()


@test
def test_compat_one_value_syntax():
    # Values mean what they mean to qemu-storage-daemon, wherever they are
    # given (dataplane/input.h): integers as strtoll with base 0 ("010" is
    # 8), the short bools y/n, sizes with suffixes, ids by id_wellformed.
    d = Daemon(["--object", "iothread,id=io0,poll-max-ns=010,poll-grow=0x2",
                "--blockdev", "driver=null-co,node-name=n0,size=1.5k,"
                "read-only=y"] + nbd_server_args("s"))
    try:
        m = d.qmp()
        check(m.ok("qom-get", {"path": "/objects/io0",
                               "property": "poll-max-ns"}) == 8,
              "poll-max-ns=010")
        check(m.ok("qom-get", {"path": "/objects/io0",
                               "property": "poll-grow"}) == 2, "poll-grow")
        nodes = {n["node-name"]: n for n in m.ok("query-named-block-nodes")}
        check(nodes["n0"]["ro"] is True, "read-only=y: %r" % nodes["n0"])
        m.ok("qom-set", {"path": "/objects/io0", "property": "poll-max-ns",
                         "value": 0})
        for cmd, args in [
                ("block-export-add", {"type": "nbd", "id": "1e",
                                      "node-name": "n0"}),
                ("blockdev-add", {"driver": "null-co", "node-name": "n-" * 70}),
                ("object-add", {"qom-type": "iothread", "id": "a b"})]:
            got = m.err(cmd, args)
            check(got.endswith("expects an identifier"), "%s: %r" % (cmd, got))
        d.stop()
    finally:
        d.cleanup()
    bad_cmdline(["--chardev", "socket,id=9c,path=q.sock,server=on,wait=off"],
                "Parameter 'id' expects an identifier")
    bad_cmdline(["--nbd-server", "addr.type=unix,addr.path=s,"
                 "max-connections=09"], "'max-connections' expects integer")


@test
def test_compat_nbd_server_add_and_remove():
    # The NBD export commands that came before block-export-add: the
    # export's id is its name, which defaults to the node's.
    need("nbdinfo")
    d = Daemon(memory_node("n0", 1 << 20) + ["--nbd-server",
                                             "addr.type=unix,addr.path=s"])
    try:
        m = d.qmp()
        sock = d.path("s")
        m.ok("nbd-server-add", {"device": "n0"})
        m.ok("nbd-server-add", {"device": "n0", "name": "x",
                                "description": "dd", "writable": True})
        check(sorted((e["id"], e["node-name"])
                     for e in m.ok("query-block-exports")) ==
              [("n0", "n0"), ("x", "n0")], "exports")
        r = run(["nbdinfo", "--json", "--list", nbd_uri(sock, "")])
        check(r.returncode == 0, "nbdinfo: %s" % r.stderr)
        exports = {e["export-name"]: e for e in json.loads(r.stdout)["exports"]}
        check(exports["n0"]["is_read_only"] is True, "n0 read-only")
        check(exports["x"]["is_read_only"] is False, "x writable")
        check(exports["x"].get("description") == "dd", "x description")
        m.err("nbd-server-add", {"device": "nope"}, desc="nope")
        m.ok("nbd-server-remove", {"name": "n0"})
        check(m.wait_event("BLOCK_EXPORT_DELETED")["data"] == {"id": "n0"},
              "event for n0")
        m.ok("nbd-server-remove", {"name": "x", "mode": "hard"})
        check(m.wait_event("BLOCK_EXPORT_DELETED")["data"] == {"id": "x"},
              "event for x")
        m.err("nbd-server-remove", {"name": "x"},
              desc="Export 'x' is not found")
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
