#!/usr/bin/env python3
"""NBD over TLS: dataplaned with tls-creds-x509 / tls-creds-psk objects,
driven by real clients (qemu-io, qemu-img, nbdinfo, nbdcopy, fio) and by a
raw socket for what no client does on purpose.

    python3 tls_tests.py <test-name>

Certificates and keys are made per run by tests/tls-certs.sh (certtool,
psktool) in a scratch directory; see that script for the layout.  A client
program that is missing fails the test, saying which.
"""
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

from qmp import Daemon, TestFailure, check, run

TESTS = {}
CERTS_SCRIPT = os.environ.get("TLS_CERTS_SCRIPT", "tests/tls-certs.sh")

NBD_OPTS_MAGIC = 0x49484156454F5054
NBD_REP_MAGIC = 0x3E889045565A9
NBD_OPT_EXPORT_NAME, NBD_OPT_ABORT, NBD_OPT_LIST = 1, 2, 3
NBD_OPT_STARTTLS, NBD_OPT_GO = 5, 7
NBD_REP_ACK = 1
NBD_REP_ERR_TLS_REQD = (1 << 31) + 5
CLIENT1_DN = "C=GB,O=Dataplane Test,CN=client1"
CLIENT2_DN = "C=GB,O=Dataplane Test,CN=client2"


def test(fn):
    TESTS[fn.__name__[len("test_"):].replace("_", "-")] = fn
    return fn


def require(*programs):
    for p in programs:
        if not shutil.which(p):
            raise TestFailure("%s is not installed (scripts/bootstrap.sh "
                              "test installs it)" % p)


class Certs:
    """The credentials tests/tls-certs.sh makes, in a scratch directory."""

    def __init__(self):
        require("certtool", "psktool")
        self.dir = tempfile.mkdtemp(prefix="dataplane-tls-")
        r = run(["sh", CERTS_SCRIPT, self.dir])
        check(r.returncode == 0, "tls-certs.sh: %s" % r.stderr)

    def path(self, name):
        return os.path.join(self.dir, name)

    def psk_key(self, dirname, user):
        with open(self.path(dirname + "/keys.psk")) as f:
            for line in f:
                u, k = line.strip().split(":")
                if u == user:
                    return k
        raise TestFailure("no key for %s" % user)

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def x509_object(certs, ident="tls0", dirname="server", extra=""):
    return ["--object", "tls-creds-x509,id=%s,endpoint=server,dir=%s%s" %
            (ident, certs.path(dirname), extra)]


def psk_object(certs, ident="tls0", dirname="psk"):
    return ["--object", "tls-creds-psk,id=%s,endpoint=server,dir=%s" %
            (ident, certs.path(dirname))]


def tls_daemon(objects, server_extra="", size=64 << 20):
    """A daemon serving memory node disk0 (writable) from IOThread io0 over
    NBD with TLS (tls-creds=tls0) on nbd.sock."""
    return Daemon(objects +
                  ["--object", "iothread,id=io0",
                   "--blockdev", "driver=memory,node-name=disk0,size=%d" % size,
                   "--nbd-server", "addr.type=unix,addr.path=nbd.sock,"
                   "tls-creds=tls0" + server_extra,
                   "--export", "nbd,id=e0,node-name=disk0,writable=on,"
                   "iothread=io0"])


def uri_x509(d, certs, dirname, name="disk0"):
    return ("nbds+unix:///%s?socket=%s&tls-certificates=%s" %
            (name, d.path("nbd.sock"), certs.path(dirname)))


def uri_psk(d, certs, dirname, user, name="disk0"):
    return ("nbds+unix://%s@/%s?socket=%s&tls-psk-file=%s" %
            (user, name, d.path("nbd.sock"), certs.path(dirname + "/keys.psk")))


def qemu_client_object(certs, dirname, kind="x509", user=None):
    props = "tls-creds-%s,id=tls0,endpoint=client,dir=%s" % (
        kind, certs.path(dirname))
    if user:
        props += ",username=" + user
    return ["--object", props]


def qemu_image_opts(d, name="disk0"):
    # QEMU checks the server's certificate against a host name, which a
    # unix socket does not give: tls-hostname says which.
    return ("driver=nbd,server.type=unix,server.path=%s,export=%s,"
            "tls-creds=tls0,tls-hostname=localhost" % (d.path("nbd.sock"), name))


def qemu_io(d, certs, dirname, commands, kind="x509", user=None):
    argv = (["qemu-io"] + qemu_client_object(certs, dirname, kind, user) +
            ["--image-opts", qemu_image_opts(d)])
    for c in commands:
        argv += ["-c", c]
    return run(argv)


def nbdinfo_size(uri):
    r = run(["nbdinfo", "--size", uri])
    return int(r.stdout) if r.returncode == 0 else None


# ---- a raw NBD client, for what real clients do not do on purpose ----------

class Raw:
    def __init__(self, path, timeout=15):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(path)
        greeting = self.recv(18)
        check(struct.unpack(">QQH", greeting)[1] == NBD_OPTS_MAGIC,
              "greeting %r" % greeting)
        self.s.sendall(struct.pack(">I", 3))  # fixed newstyle, no zeroes

    def recv(self, n):
        b = b""
        while len(b) < n:
            chunk = self.s.recv(n - len(b))
            if not chunk:
                raise TestFailure("server closed after %d of %d bytes" %
                                  (len(b), n))
            b += chunk
        return b

    def opt(self, opt, data=b""):
        self.s.sendall(struct.pack(">QII", NBD_OPTS_MAGIC, opt, len(data)) +
                       data)

    def reply(self):
        magic, opt, typ, n = struct.unpack(">QIII", self.recv(20))
        check(magic == NBD_REP_MAGIC, "reply magic %x" % magic)
        return opt, typ, self.recv(n)

    def closed_by_server(self):
        """True if the server closes the connection (within the socket
        timeout): EOF or a reset."""
        try:
            while True:
                if not self.s.recv(4096):
                    return True
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    def close(self):
        self.s.close()


# ---- real clients, the good cases -------------------------------------------

@test
def test_tls_x509_real_clients_read_and_write():
    """qemu-io and qemu-img (QEMU's TLS client), nbdinfo and nbdcopy
    (libnbd's) with client certificates, writing and reading back."""
    require("qemu-io", "qemu-img", "nbdinfo", "nbdcopy")
    certs = Certs()
    d = tls_daemon(x509_object(certs))
    try:
        d.qmp()
        r = qemu_io(d, certs, "client",
                    ["write -P 0x5a 0 1M", "read -P 0x5a 0 1M",
                     "read -P 0 1M 1M"])
        check(r.returncode == 0 and "read 1048576/1048576" in r.stdout and
              "Pattern verification failed" not in r.stdout,
              "qemu-io: %s %s" % (r.stdout, r.stderr))
        r = run(["qemu-img", "info", "--output=json"] +
                qemu_client_object(certs, "client") +
                ["--image-opts", qemu_image_opts(d)])
        check(r.returncode == 0 and
              json.loads(r.stdout)["virtual-size"] == 64 << 20,
              "qemu-img info: %s" % r.stderr)
        r = run(["nbdinfo", "--json", uri_x509(d, certs, "client")])
        check(r.returncode == 0, "nbdinfo: %s" % r.stderr)
        info = json.loads(r.stdout)
        check(info["TLS"] is True and
              info["exports"][0]["export-size"] == 64 << 20,
              "nbdinfo: %r" % info)
        # nbdcopy in, nbdcopy out, same bytes; then qemu-img convert in
        # (writes through QEMU's client) and nbdcopy out again.
        src = certs.path("src.img")
        with open(src, "wb") as f:
            f.write(os.urandom(8 << 20))
        r = run(["nbdcopy", src, uri_x509(d, certs, "client")])
        check(r.returncode == 0, "nbdcopy in: %s" % r.stderr)
        out = certs.path("out.img")
        r = run(["nbdcopy", uri_x509(d, certs, "client"), out])
        check(r.returncode == 0, "nbdcopy out: %s" % r.stderr)
        with open(src, "rb") as a, open(out, "rb") as b:
            check(a.read() == b.read(8 << 20), "nbdcopy round trip differs")
        with open(src, "wb") as f:
            f.write(os.urandom(4 << 20))
        r = run(["qemu-img", "convert", "-n", "-f", "raw", "--target-image-opts"]
                + qemu_client_object(certs, "client") +
                [src, qemu_image_opts(d)])
        check(r.returncode == 0, "qemu-img convert: %s" % r.stderr)
        r = run(["nbdcopy", uri_x509(d, certs, "client"), out])
        with open(src, "rb") as a, open(out, "rb") as b:
            check(a.read() == b.read(4 << 20),
                  "qemu-img convert then nbdcopy differs")
        d.stop()
    finally:
        d.cleanup()
        certs.cleanup()


@test
def test_tls_psk_real_clients_read_and_write():
    """PSK (keys.psk from psktool): qemu-io with tls-creds-psk, nbdinfo and
    nbdcopy with tls-psk-file and the username in the URI."""
    require("qemu-io", "nbdinfo", "nbdcopy")
    certs = Certs()
    d = tls_daemon(psk_object(certs))
    try:
        d.qmp()
        r = qemu_io(d, certs, "psk-alice",
                    ["write -P 0x33 4k 64k", "read -P 0x33 4k 64k"],
                    kind="psk", user="alice")
        check(r.returncode == 0 and "read 65536/65536" in r.stdout and
              "Pattern verification failed" not in r.stdout,
              "qemu-io: %s %s" % (r.stdout, r.stderr))
        check(nbdinfo_size(uri_psk(d, certs, "psk", "bob")) == 64 << 20,
              "nbdinfo as bob")
        src = certs.path("src.img")
        with open(src, "wb") as f:
            f.write(os.urandom(2 << 20))
        r = run(["nbdcopy", src, uri_psk(d, certs, "psk-alice", "alice")])
        check(r.returncode == 0, "nbdcopy in: %s" % r.stderr)
        out = certs.path("out.img")
        r = run(["nbdcopy", uri_psk(d, certs, "psk-alice", "alice"), out])
        check(r.returncode == 0, "nbdcopy out: %s" % r.stderr)
        with open(src, "rb") as a, open(out, "rb") as b:
            check(a.read() == b.read(2 << 20), "round trip differs")
        d.stop()
    finally:
        d.cleanup()
        certs.cleanup()


# ---- who is refused -----------------------------------------------------------

@test
def test_tls_refuses_wrong_ca_wrong_key_and_plaintext():
    require("qemu-io", "nbdinfo")
    certs = Certs()
    d = tls_daemon(x509_object(certs) + psk_object(certs, ident="psk0"))
    try:
        m = d.qmp()
        # A client whose CA did not issue the server's certificate.
        check(nbdinfo_size(uri_x509(d, certs, "client-wrongca")) is None,
              "nbdinfo with the wrong CA got through")
        r = qemu_io(d, certs, "client-wrongca", ["read 0 4k"])
        check(r.returncode != 0, "qemu-io with the wrong CA: %s" % r.stdout)
        # Plaintext: libnbd's nbd:// fails, and a raw client sees why:
        # TLS_REQD for every option, then EXPORT_NAME ends the connection.
        r = run(["nbdinfo", "--size",
                 "nbd+unix:///disk0?socket=%s" % d.path("nbd.sock")])
        check(r.returncode != 0, "plaintext nbdinfo got through")
        raw = Raw(d.path("nbd.sock"))
        for opt, data in ((NBD_OPT_LIST, b""),
                          (NBD_OPT_GO, struct.pack(">I", 5) + b"disk0" +
                           struct.pack(">H", 0))):
            raw.opt(opt, data)
            o, typ, msg = raw.reply()
            check(typ == NBD_REP_ERR_TLS_REQD, "opt %d: type %x" % (opt, typ))
            check(b"disk0" not in msg, "the reply tells about the export")
        raw.opt(NBD_OPT_EXPORT_NAME, b"disk0")
        check(raw.closed_by_server(), "EXPORT_NAME before TLS not closed")
        raw.close()
        # PSK: a server with the PSK object; alice with another key.
        m.ok("nbd-server-stop")
        m.wait_event("BLOCK_EXPORT_DELETED")
        m.ok("nbd-server-start", {"addr": {"type": "unix",
                                           "path": d.path("nbd.sock")},
                                  "tls-creds": "psk0"})
        m.ok("block-export-add", {"type": "nbd", "id": "e0",
                                  "node-name": "disk0"})
        check(nbdinfo_size(uri_psk(d, certs, "psk-wrong", "alice")) is None,
              "a wrong PSK key got through")
        check(nbdinfo_size(uri_psk(d, certs, "psk", "alice")) == 64 << 20,
              "the right key")
        r = qemu_io(d, certs, "psk-wrong", ["read 0 4k"], kind="psk",
                    user="alice")
        check(r.returncode != 0, "qemu-io with a wrong key: %s" % r.stdout)
        out, err = d.stop()
        check("TLS handshake failed" in err, "no log of the failures: %s" % err)
    finally:
        d.cleanup()
        certs.cleanup()


@test
def test_tls_verify_peer_checks_client_certificates():
    require("nbdinfo")
    certs = Certs()
    d = tls_daemon(x509_object(certs) +
                   x509_object(certs, ident="loose", extra=",verify-peer=off"))
    try:
        m = d.qmp()
        # verify-peer=on (QEMU's default): a certificate from our CA only.
        check(nbdinfo_size(uri_x509(d, certs, "client")) == 64 << 20,
              "client1's certificate")
        check(nbdinfo_size(uri_x509(d, certs, "client-nocert")) is None,
              "no client certificate got through")
        check(nbdinfo_size(uri_x509(d, certs, "client-otherca")) is None,
              "a certificate from another CA got through")
        # verify-peer=off: no client certificate needed.
        m.ok("nbd-server-stop")
        m.wait_event("BLOCK_EXPORT_DELETED")
        m.ok("nbd-server-start", {"addr": {"type": "unix",
                                           "path": d.path("nbd.sock")},
                                  "tls-creds": "loose"})
        m.ok("block-export-add", {"type": "nbd", "id": "e0",
                                  "node-name": "disk0"})
        check(nbdinfo_size(uri_x509(d, certs, "client-nocert")) == 64 << 20,
              "verify-peer=off refused a client without certificate")
        d.stop()
    finally:
        d.cleanup()
        certs.cleanup()


@test
def test_tls_authz_admits_one_identity():
    """authz-simple with a certificate's DN, changed at runtime (qom-set),
    and with a PSK username."""
    require("nbdinfo", "qemu-io")
    certs = Certs()
    d = tls_daemon(x509_object(certs) +
                   ["--object", "authz-simple,id=auth0,identity=" +
                    CLIENT1_DN.replace(",", ",,")],
                   server_extra=",tls-authz=auth0")
    try:
        m = d.qmp()
        check(nbdinfo_size(uri_x509(d, certs, "client")) == 64 << 20,
              "client1 refused")
        check(nbdinfo_size(uri_x509(d, certs, "client2")) is None,
              "client2 got through")
        r = qemu_io(d, certs, "client2", ["read 0 4k"])
        check(r.returncode != 0, "qemu-io as client2 got through")
        m.ok("qom-set", {"path": "/objects/auth0", "property": "identity",
                         "value": CLIENT2_DN})
        check(nbdinfo_size(uri_x509(d, certs, "client2")) == 64 << 20,
              "client2 refused after qom-set")
        check(nbdinfo_size(uri_x509(d, certs, "client")) is None,
              "client1 got through after qom-set")
        # The authz object is in use too.
        m.err("object-del", {"id": "auth0"}, desc="in use by NBD server")
        # PSK: the username is the identity.
        m.ok("nbd-server-stop")
        m.wait_event("BLOCK_EXPORT_DELETED")
        m.ok("object-add", {"qom-type": "tls-creds-psk", "id": "psk0",
                            "endpoint": "server", "dir": certs.path("psk")})
        m.ok("object-add", {"qom-type": "authz-simple", "id": "bobonly",
                            "identity": "bob"})
        m.ok("nbd-server-start", {"addr": {"type": "unix",
                                           "path": d.path("nbd.sock")},
                                  "tls-creds": "psk0", "tls-authz": "bobonly"})
        m.ok("block-export-add", {"type": "nbd", "id": "e0",
                                  "node-name": "disk0"})
        check(nbdinfo_size(uri_psk(d, certs, "psk", "bob")) == 64 << 20,
              "bob refused")
        check(nbdinfo_size(uri_psk(d, certs, "psk", "alice")) is None,
              "alice got through")
        out, err = d.stop()
        check("Identity '%s' is not allowed by 'auth0'" % CLIENT2_DN in err,
              "no log of the refusal: %s" % err)
    finally:
        d.cleanup()
        certs.cleanup()


@test
def test_tls_authz_listfile_follows_its_file():
    """authz-listfile: QEMU's rule list in a JSON file, glob and exact
    rules, re-read when the file is rewritten."""
    require("nbdinfo")
    certs = Certs()
    acl = certs.path("acl.json")
    with open(acl, "w") as f:
        json.dump({"policy": "deny", "rules": [
            {"match": CLIENT2_DN, "policy": "deny"},
            {"match": "C=GB,O=Dataplane Test,CN=*", "policy": "allow",
             "format": "glob"}]}, f)
    d = tls_daemon(x509_object(certs) +
                   ["--object", "authz-listfile,id=acl0,filename=" + acl],
                   server_extra=",tls-authz=acl0")
    try:
        d.qmp()
        check(nbdinfo_size(uri_x509(d, certs, "client")) == 64 << 20,
              "client1 refused")
        check(nbdinfo_size(uri_x509(d, certs, "client2")) is None,
              "client2 got through")
        # Renamed into place: the daemon re-reads it.  The reload is an
        # event in the daemon's loop: wait for its effect (bounded).
        with open(acl + ".new", "w") as f:
            json.dump({"rules": [{"match": CLIENT2_DN, "policy": "allow"}]},
                      f)
        os.rename(acl + ".new", acl)
        for attempt in range(100):
            if nbdinfo_size(uri_x509(d, certs, "client2")) == 64 << 20:
                break
            time.sleep(0.05)
        else:
            raise TestFailure("the rewritten list was not applied")
        check(nbdinfo_size(uri_x509(d, certs, "client")) is None,
              "client1 got through after the rewrite")
        out, err = d.stop()
        check("is denied by 'acl0' (rule 1)" in err, "no log: %s" % err)
    finally:
        d.cleanup()
        certs.cleanup()


# ---- objects at runtime ---------------------------------------------------------

@test
def test_tls_objects_at_runtime_and_in_use():
    require("nbdinfo")
    certs = Certs()
    d = Daemon(["--blockdev", "driver=memory,node-name=disk0,size=1M"])
    try:
        m = d.qmp()
        # Bad directories and files: object-add says which and why, and the
        # daemon goes on.
        m.err("object-add", {"qom-type": "tls-creds-x509", "id": "t",
                             "endpoint": "server", "dir": certs.path("nope")},
              desc="No such file or directory")
        m.err("object-add", {"qom-type": "tls-creds-x509", "id": "t",
                             "endpoint": "server",
                             "dir": certs.path("server-expired")},
              desc="has expired")
        m.err("object-add", {"qom-type": "tls-creds-x509", "id": "t",
                             "endpoint": "server",
                             "dir": certs.path("client-nocert")},
              desc="server-cert.pem': No such file or directory")
        m.err("object-add", {"qom-type": "tls-creds-psk", "id": "t",
                             "endpoint": "server",
                             "dir": certs.path("server")},
              desc="keys.psk': No such file or directory")
        m.err("object-add", {"qom-type": "tls-creds-x509", "id": "t",
                             "endpoint": "sideways",
                             "dir": certs.path("server")},
              desc="'endpoint'")
        # Good ones, then a server that uses them.
        m.ok("object-add", {"qom-type": "tls-creds-x509", "id": "cli",
                            "endpoint": "client", "dir": certs.path("client")})
        m.ok("object-add", {"qom-type": "tls-creds-x509", "id": "tls0",
                            "endpoint": "server", "dir": certs.path("server")})
        types = {e["name"]: e["type"]
                 for e in m.ok("qom-list", {"path": "/objects"})}
        check(types.get("tls0") == "child<tls-creds-x509>", "qom-list %r" % types)
        addr = {"type": "unix", "path": d.path("nbd.sock")}
        m.err("nbd-server-start", {"addr": addr, "tls-creds": "nope"},
              desc="No TLS credentials with id 'nope'")
        m.err("nbd-server-start", {"addr": addr, "tls-creds": "cli"},
              desc="endpoint=server")
        m.err("nbd-server-start", {"addr": addr, "tls-creds": "tls0",
                                   "tls-authz": "nope"},
              desc="No authorization object with id 'nope'")
        m.err("nbd-server-start", {"addr": addr, "tls-authz": "tls0"},
              desc="not an authorization object")
        m.ok("nbd-server-start", {"addr": addr, "tls-creds": "tls0"})
        m.ok("block-export-add", {"type": "nbd", "id": "e0",
                                  "node-name": "disk0"})
        check(nbdinfo_size(uri_x509(d, certs, "client")) == 1 << 20,
              "TLS client after object-add")
        m.err("object-del", {"id": "tls0"},
              desc="tls-creds-x509 'tls0' is in use by NBD server")
        m.ok("object-del", {"id": "cli"})
        m.ok("nbd-server-stop")
        m.wait_event("BLOCK_EXPORT_DELETED")
        m.ok("object-del", {"id": "tls0"})
        # Without TLS now: a plaintext client gets in.
        m.ok("nbd-server-start", {"addr": addr})
        m.ok("block-export-add", {"type": "nbd", "id": "e0",
                                  "node-name": "disk0"})
        check(nbdinfo_size("nbd+unix:///disk0?socket=%s" %
                           d.path("nbd.sock")) == 1 << 20, "plaintext after")
        d.stop()
    finally:
        d.cleanup()
        certs.cleanup()


# ---- handshakes that fail or stall --------------------------------------------

@test
def test_tls_stalled_and_failed_handshakes_close_only_their_connection():
    """A client that stops in the middle of its TLS handshake is dropped by
    the handshake timer (handshake-max-seconds); one that sends garbage is
    dropped at once; a TLS client connected meanwhile keeps working."""
    require("qemu-io")
    certs = Certs()
    d = tls_daemon(x509_object(certs), server_extra=",handshake-max-seconds=1")
    try:
        d.qmp()
        # A client in transmission, through every failure below.
        good = subprocess.Popen(
            ["qemu-io"] + qemu_client_object(certs, "client") +
            ["--image-opts", qemu_image_opts(d)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        good.stdin.write("write -P 0x11 0 64k\n")
        good.stdin.flush()
        stalled = Raw(d.path("nbd.sock"))
        stalled.opt(NBD_OPT_STARTTLS)
        check(stalled.reply()[1] == NBD_REP_ACK, "STARTTLS")
        stalled.s.sendall(b"\x16\x03\x01")  # a record header, cut short
        garbage = Raw(d.path("nbd.sock"))
        garbage.opt(NBD_OPT_STARTTLS)
        check(garbage.reply()[1] == NBD_REP_ACK, "STARTTLS")
        garbage.s.sendall(b"\xee" * 600)
        check(garbage.closed_by_server(), "garbage handshake not closed")
        # The socket timeout (15 s) is the bound; the log line below says
        # it was the 1 s handshake timer that closed it.
        check(stalled.closed_by_server(), "stalled handshake not closed")
        stalled.close()
        garbage.close()
        out, err = good.communicate("read -P 0x11 0 64k\nquit\n", timeout=60)
        check(good.returncode == 0 and "read 65536/65536" in out and
              "Pattern verification failed" not in out,
              "the good client: %s %s" % (out, err))
        out, err = d.stop()
        check("handshake not finished in 1000 ms" in err,
              "the stalled client was not dropped by the timer: %s" % err)
        check("TLS handshake failed" in err, "garbage not logged: %s" % err)
    finally:
        d.cleanup()
        certs.cleanup()


# ---- I/O while the node moves ---------------------------------------------------

def unprivileged(argv, home):
    """libnbd reads the default certificate directory from $HOME/.pki/libnbd
    unless it runs as root (then /etc/pki/libnbd, not ours to touch): as
    root, run the client as nobody."""
    if os.geteuid() != 0:
        return argv
    return ["setpriv", "--reuid=65534", "--regid=65534",
            "--clear-groups"] + argv


@test
def test_tls_fio_verify_while_node_moves_between_iothreads():
    """fio's nbd engine (libnbd) writes and verifies over TLS while the
    node hops between two IOThreads every 100 ms: the TLS sessions move
    with their connections."""
    require("fio")
    if not subprocess.run(["fio", "--enghelp=nbd"],
                          capture_output=True).returncode == 0:
        raise TestFailure("fio has no nbd engine")
    certs = Certs()
    d = Daemon(x509_object(certs) +
               ["--object", "iothread,id=ioA", "--object", "iothread,id=ioB",
                "--blockdev", "driver=memory,node-name=disk0,size=%d" %
                (128 << 20),
                "--nbd-server", "addr.type=unix,addr.path=nbd.sock,"
                "tls-creds=tls0",
                "--export", "nbd,id=e0,node-name=disk0,writable=on,"
                "iothread=ioA"])
    try:
        m = d.qmp()
        # fio takes a URI only: the client certificate comes from libnbd's
        # default directory, $HOME/.pki/libnbd.
        home = certs.path("home")
        shutil.copytree(certs.path("client"), home + "/.pki/libnbd")
        if os.geteuid() == 0:
            for root, dirs, files in os.walk(certs.dir):
                for n in dirs + files:
                    os.chmod(os.path.join(root, n), 0o755)
            os.chmod(certs.dir, 0o755)
            os.chmod(d.dir, 0o755)
            os.chmod(d.path("nbd.sock"), 0o777)
        env = dict(os.environ, HOME=home)
        fio = subprocess.Popen(
            unprivileged(["fio", "--name=verify", "--ioengine=nbd",
                          "--uri=nbds+unix:///disk0?socket=" +
                          d.path("nbd.sock"),
                          "--rw=randwrite", "--bs=4k", "--iodepth=32",
                          "--size=128M", "--time_based", "--runtime=8",
                          "--verify=crc32c", "--do_verify=1",
                          "--verify_fatal=1", "--verify_backlog=1024",
                          "--verify_state_save=0", "--output-format=json"],
                         home),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=env, cwd=home)
        moves = 0
        deadline = time.monotonic() + 8
        targets = ["ioB", "ioA"]
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
        check(moves >= 40, "only %d moves" % moves)
        print("moves=%d written=%d MiB verified over TLS" % (moves,
                                                            written >> 20))
        d.stop()
    finally:
        d.cleanup()
        certs.cleanup()


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
