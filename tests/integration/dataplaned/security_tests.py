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
        for cmd, args in [
                ("block-export-add", {"type": "nbd", "id": "e0",
                                      "node-name": "disk0", "name": name}),
                ("nbd-server-add", {"device": "disk0", "name": name}),
                ("block-export-add", {"type": "nbd", "id": "e1",
                                      "node-name": "disk0",
                                      "name": "\u20ac" * 1366})]:
            desc = m.err(cmd, args, desc="too long")
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
