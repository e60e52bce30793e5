"""A small QMP client and a dataplaned runner for the integration tests.

The daemon runs in the foreground in a private temporary directory (its
working directory), so every file it creates is visible there and "nothing
left behind" is a directory listing.
"""
import json
import os
import signal
import socket
import subprocess
import tempfile
import time

DATAPLANED = os.environ.get("DATAPLANED", "build/daemon/dataplaned")

# Upper bounds: nothing here waits forever.
CONNECT_TIMEOUT = 10.0
EXIT_TIMEOUT = 15.0


class TestFailure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise TestFailure(what)


class QMP:
    """One monitor connection.  Events that arrive while waiting for a
    reply are kept in self.events, in order."""

    def __init__(self, path, negotiate=True, timeout=CONNECT_TIMEOUT):
        self.sock = connect_unix(path, timeout)
        self.sock.settimeout(30)
        self.buf = b""
        self.events = []
        self.greeting = self.recv()
        if negotiate:
            r = self.cmd("qmp_capabilities")
            check(r == {"return": {}}, "negotiation failed: %r" % r)

    def close(self):
        self.sock.close()

    def send_raw(self, data):
        self.sock.sendall(data)

    def recv(self):
        """The next message, event or not."""
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise TestFailure("monitor closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def reply(self):
        """The next message that is not an event."""
        while True:
            msg = self.recv()
            if "event" in msg:
                self.events.append(msg)
                continue
            return msg

    def cmd(self, name, args=None, id=None):
        msg = {"execute": name}
        if args is not None:
            msg["arguments"] = args
        if id is not None:
            msg["id"] = id
        self.send_raw(json.dumps(msg).encode() + b"\n")
        return self.reply()

    def ok(self, name, args=None):
        """Runs a command that must succeed; returns its return value."""
        r = self.cmd(name, args)
        check("return" in r, "%s %r failed: %r" % (name, args, r))
        return r["return"]

    def err(self, name, args=None, cls="GenericError", desc=None):
        """Runs a command that must fail; returns the error description."""
        r = self.cmd(name, args)
        check("error" in r, "%s %r should have failed: %r" % (name, args, r))
        check(r["error"]["class"] == cls,
              "%s: class %s, wanted %s" % (name, r["error"]["class"], cls))
        if desc is not None:
            check(desc in r["error"]["desc"],
                  "%s: %r lacks %r" % (name, r["error"]["desc"], desc))
        return r["error"]["desc"]

    def wait_event(self, name):
        """Returns the first event called name, reading more if needed."""
        for i, ev in enumerate(self.events):
            if ev["event"] == name:
                return self.events.pop(i)
        while True:
            msg = self.recv()
            if msg.get("event") == name:
                return msg
            self.events.append(msg)


def connect_unix(path, timeout=CONNECT_TIMEOUT):
    """Connects, retrying while the daemon is still starting (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return s
        except (FileNotFoundError, ConnectionRefusedError):
            s.close()
            if time.monotonic() > deadline:
                raise TestFailure("cannot connect to %s" % path)
            time.sleep(0.01)


class Daemon:
    """dataplaned in the foreground, in its own temporary directory.

    With monitor=True (the default) a monitor is added on qmp.sock and
    self.qmp() connects to it.  preexec_fn runs in the child before exec
    (resource limits, umask)."""

    def __init__(self, args=(), monitor=True, cwd=None, preexec_fn=None):
        self.dir = cwd or tempfile.mkdtemp(prefix="dataplaned-test-")
        self.qmp_path = os.path.join(self.dir, "qmp.sock")
        argv = [DATAPLANED] + list(args)
        if monitor:
            argv += ["--chardev",
                     "socket,id=qmp,path=%s,server=on,wait=off" % self.qmp_path,
                     "--monitor", "chardev=qmp"]
        self.proc = subprocess.Popen(argv, cwd=self.dir,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE,
                                     preexec_fn=preexec_fn)
        self.monitors = []

    def path(self, name):
        return os.path.join(self.dir, name)

    def qmp(self, negotiate=True):
        m = QMP(self.qmp_path, negotiate)
        self.monitors.append(m)
        return m

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout=EXIT_TIMEOUT):
        """Waits for exit; returns (status, stdout, stderr)."""
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
            raise TestFailure("daemon did not exit; stderr: %s" % err.decode())
        for m in self.monitors:
            m.close()
        return self.proc.returncode, out.decode(), err.decode()

    def stop(self):
        """SIGTERM; checks the exit status and that nothing is left."""
        self.signal(signal.SIGTERM)
        status, out, err = self.wait()
        check(status == 0, "exit status %d, stderr: %s" % (status, err))
        self.check_clean()
        return out, err

    def check_clean(self):
        left = os.listdir(self.dir)
        check(left == [], "left behind in %s: %r" % (self.dir, left))

    def cleanup(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()
        for name in os.listdir(self.dir):
            os.unlink(os.path.join(self.dir, name))
        os.rmdir(self.dir)


def run(argv, **kw):
    """Runs a client program; returns CompletedProcess with text output."""
    return subprocess.run(argv, capture_output=True, text=True, timeout=120,
                          **kw)


def nbd_uri(sock, name):
    return "nbd+unix:///%s?socket=%s" % (name, sock)
