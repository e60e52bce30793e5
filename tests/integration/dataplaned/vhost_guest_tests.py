#!/usr/bin/env python3
"""dataplaned's vhost-user-blk export with a real front-end: QEMU booting a
small Linux guest under TCG (tests/integration/vhost-guest/fixture.sh
builds the kernel and initramfs from Debian packages, once, into a cache
folder).  The guest runs guest-tool on its virtio disks; the host checks the
images afterwards with the same tool.

    python3 vhost_guest_tests.py <test-name>

Two boots in all.  The first writes through a throttle node while the
daemon is SIGKILLed and restarted (QEMU reconnects, the new daemon redoes
what was in flight from the inflight area), then is killed itself while it
writes; the second, on the same export and two more (one with its four
queues spread over two IOThreads: iothread.0/iothread.1), does every other
check.  If QEMU or the fixture
cannot start, the test fails and says why (no silent skip).
"""
import gzip
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from qmp import Daemon, TestFailure, check, run

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "..", "vhost-guest", "fixture.sh")
GUEST_TOOL = os.environ.get("GUEST_TOOL",
                            "build/tests/integration/vhost-guest/guest-tool")
CACHE = os.environ.get("VHOST_GUEST_CACHE",
                       os.path.join(os.path.expanduser("~"), ".cache",
                                    "dataplane-vhost-guest"))
QEMU = os.environ.get("QEMU", "qemu-system-x86_64")
BOOT_TIMEOUT = 240

TESTS = {}


def test(fn):
    TESTS[fn.__name__[len("test_"):].replace("_", "-")] = fn
    return fn


# ---- the guest ---------------------------------------------------------------

def cpio_newc(files):
    """A newc cpio archive of {path: (mode, bytes)}."""
    out = bytearray()
    ino = 1000

    def entry(name, mode, data):
        nonlocal ino
        ino += 1
        name_b = name.encode() + b"\0"
        hdr = "070701" + "".join("%08X" % v for v in (
            ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name_b), 0))
        out.extend(hdr.encode() + name_b)
        out.extend(b"\0" * (-len(out) % 4))
        out.extend(data)
        out.extend(b"\0" * (-len(out) % 4))

    for name, (mode, data) in files.items():
        entry(name, mode, data)
    entry("TRAILER!!!", 0, b"")
    return bytes(out)


def fixture():
    if not shutil.which(QEMU):
        raise TestFailure("%s is not installed (Debian: qemu-system-x86): "
                          "the guest tests need it" % QEMU)
    r = run(["sh", FIXTURE, CACHE])
    check(r.returncode == 0, "the guest fixture failed: %s" % r.stderr)
    check(os.path.exists(GUEST_TOOL), "%s is not built" % GUEST_TOOL)


def initrd(tmp, script):
    """The cached initramfs plus /test.sh and /bin/guest-tool."""
    with open(GUEST_TOOL, "rb") as f:
        tool = f.read()
    extra = cpio_newc({"test.sh": (0o100755, script.encode()),
                       "bin/guest-tool": (0o100755, tool)})
    path = os.path.join(tmp, "initrd.gz")
    with open(os.path.join(CACHE, "initrd.gz"), "rb") as f:
        base = f.read()
    with open(path, "wb") as f:
        f.write(base)
        f.write(gzip.compress(extra))
    return path


SCRIPT_HEAD = """#!/bin/sh
dev() {
    for d in /sys/block/vd*; do
        [ "$(cat $d/serial)" = "$1" ] && echo ${d##*/}
    done
}
run() {
    if "$@"; then echo "GUEST: ok $*"; else echo "GUEST: FAIL $*"; fi
}
"""


class Guest:
    """QEMU booting the test kernel with vhost-user-blk disks.  Its serial
    console is read line by line; lines starting with GUEST are the test's."""

    def __init__(self, tmp, script, disks, smp=2, reconnect=False):
        self.lines = []
        argv = [QEMU, "-M", "q35", "-smp", str(smp), "-m", "512",
                "-display", "none", "-serial", "stdio", "-monitor", "none",
                "-no-reboot", "-kernel", os.path.join(CACHE, "vmlinuz"),
                "-initrd", initrd(tmp, SCRIPT_HEAD + script),
                "-append", "console=ttyS0 quiet panic=-1",
                "-object", "memory-backend-memfd,id=mem,size=512M,share=on",
                "-numa", "node,memdev=mem"]
        for i, (sock, queues) in enumerate(disks):
            argv += ["-chardev", "socket,id=vu%d,path=%s%s" %
                     (i, sock, ",reconnect=1" if reconnect else ""),
                     "-device", "vhost-user-blk-pci,chardev=vu%d,"
                     "num-queues=%d" % (i, queues)]
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.PIPE,
                                         stderr=subprocess.STDOUT)
        except OSError as e:
            raise TestFailure("QEMU cannot start: %s" % e)
        self.buf = b""
        self.deadline = time.monotonic() + BOOT_TIMEOUT

    def line(self, timeout=None):
        """The next console line, or None once QEMU has exited, or "" if
        timeout seconds pass without one."""
        give_up = time.monotonic() + timeout if timeout is not None else None
        while b"\n" not in self.buf:
            now = time.monotonic()
            if now >= self.deadline:
                self.proc.kill()
                raise TestFailure("guest did not finish in %d s; console:\n%s"
                                  % (BOOT_TIMEOUT, "\n".join(self.lines[-40:])))
            if give_up is not None and now >= give_up:
                return ""
            left = min(self.deadline, give_up or self.deadline) - now
            r, _, _ = select.select([self.proc.stdout], [], [], left)
            if not r:
                continue
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk:
                if self.buf:
                    line, self.buf = self.buf, b""
                    break
                return None
            self.buf += chunk
        else:
            line, self.buf = self.buf.split(b"\n", 1)
        text = line.decode(errors="replace").rstrip("\r")
        self.lines.append(text)
        return text

    def wait_for(self, word):
        while True:
            text = self.line()
            if text is None:
                raise TestFailure("QEMU exited before '%s'; console:\n%s" %
                                  (word, "\n".join(self.lines[-40:])))
            if word in text:
                return text

    def finish(self):
        """Reads to the end; returns the GUEST lines."""
        while self.line() is not None:
            pass
        self.proc.wait(timeout=30)
        return [l for l in self.lines if l.startswith("GUEST")]

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def host_check(*args):
    r = run([GUEST_TOOL] + [str(a) for a in args])
    check(r.returncode == 0, "host: guest-tool %s: %s" %
          (" ".join(str(a) for a in args), r.stderr))


# ---- the test -----------------------------------------------------------------

@test
def test_qemu_guest_io_queues_read_only_discard_and_restart():
    fixture()
    tmp = tempfile.mkdtemp(prefix="vhost-guest-")
    imgs = {}
    for name, size in (("k", 8 << 20), ("m", 16 << 20), ("r", 1 << 20)):
        imgs[name] = os.path.join(tmp, name + ".img")
        with open(imgs[name], "wb") as f:
            f.truncate(size)
    # The read-only disk's contents, for the guest to find.
    host_check("write", imgs["r"], 0, "1M", 5, 1)
    socks = {n: os.path.join(tmp, n + ".sock") for n in ("k", "m", "r")}
    kill0 = ("vhost-user-blk,id=kill0,node-name=k,addr.type=unix,"
             "addr.path=%s,writable=on,iothread=io1" % socks["k"])
    # The first daemon holds the guest's writes in a throttle node, so that
    # some are in flight when it is killed.
    first = Daemon(["--object", "iothread,id=io1",
                    "--object", "throttle-group,id=tg,limits.iops-total=100",
                    "--blockdev", "driver=file,node-name=kf,filename=%s" %
                    imgs["k"],
                    "--blockdev", "driver=throttle,node-name=k,"
                    "throttle-group=tg,file=kf",
                    "--export", kill0])
    d = None
    g = None
    try:
        first.qmp()
        # Boot 1: the daemon is killed under the guest's writes and
        # restarted; QEMU reconnects (reconnect=1), the new daemon redoes
        # what was in flight from the inflight area, the guest's writes
        # finish and read back.  Then the guest (the front-end) is killed
        # while it writes.
        g = Guest(tmp, """K=$(dev kill0)
echo "GUEST: disk $K"
echo "GUEST: writing-under-restart"
run guest-tool write /dev/$K 0 1M 8 2
run guest-tool check /dev/$K 0 1M 8
guest-tool forever /dev/$K 4M 4M
""", [(socks["k"], 1)], reconnect=True)
        g.wait_for("writing-under-restart")
        time.sleep(1)  # mid-I/O is the subject: the throttle holds writes
        first.proc.kill()
        first.proc.wait()
        d = Daemon(["--object", "iothread,id=io1",
                    "--object", "iothread,id=io2",
                    "--object", "iothread,id=io3",
                    "--blockdev", "driver=file,node-name=k,filename=%s,"
                    "discard=unmap" % imgs["k"],
                    "--blockdev", "driver=file,node-name=m,filename=%s" %
                    imgs["m"],
                    "--blockdev", "driver=file,node-name=r,filename=%s,"
                    "read-only=on" % imgs["r"],
                    "--export", kill0,
                    "--export", "vhost-user-blk,id=mq,node-name=m,"
                    "addr.type=unix,addr.path=%s,writable=on,num-queues=4,"
                    "iothread.0=io3,iothread.1=io2" % socks["m"],
                    "--export", "vhost-user-blk,id=ro,node-name=r,"
                    "addr.type=unix,addr.path=%s" % socks["r"]])
        m = d.qmp()
        text = g.wait_for("writing")
        while "writing-under" in text:
            text = g.wait_for("writing")
        time.sleep(1)  # mid-I/O is the subject: let writes flow
        g.kill()
        out = [l for l in g.lines if l.startswith("GUEST")]
        print("\n".join(out))
        check("GUEST: ok guest-tool check /dev/vda 0 1M 8" in out,
              "writes across the daemon's restart: %r" % out)
        host_check("check", imgs["k"], 0, "1M", 8)
        print("boot 1: daemon killed and restarted under the guest's "
              "writes, then the guest killed while writing")
        check(m.ok("query-block-exports") != [], "daemon still serving")

        # Boot 2: the restarted front-end on the same export, and the rest.
        g = Guest(tmp, """K=$(dev kill0); M=$(dev mq); R=$(dev ro)
echo "GUEST: disks $K $M $R"
echo "GUEST: queues $(ls /sys/block/$K/mq | wc -l) $(ls /sys/block/$M/mq | wc -l)"
echo "GUEST: ro $(cat /sys/block/$R/ro) $(cat /sys/block/$K/ro)"
echo "GUEST: sizes $(cat /sys/block/$K/size) $(cat /sys/block/$M/size)"
run guest-tool write /dev/$K 0 4M 3 2
run guest-tool check /dev/$K 0 4M 3
echo "GUEST: move-begin"
run guest-tool write /dev/$M 0 8M 4 4
run guest-tool check /dev/$M 0 8M 4
echo "GUEST: move-end"
echo "GUEST: resize-now $(cat /sys/block/$M/size)"
n=0
while [ $n -lt 100 ] && [ "$(cat /sys/block/$M/size)" = 32768 ]; do
    sleep 0.1
    n=$((n + 1))
done
echo "GUEST: size-after $(cat /sys/block/$M/size)"
run guest-tool write /dev/$M 16M 1M 6 1
run guest-tool check /dev/$M 16M 1M 6
# The driver let go of the 4-queue disk and took it again: QEMU stops the
# rings (GET_VRING_BASE) and sets them up anew on the same connection.
V=$(basename $(readlink /sys/block/$M/device))
echo $V > /sys/bus/virtio/drivers/virtio_blk/unbind
echo $V > /sys/bus/virtio/drivers/virtio_blk/bind
n=0
while [ $n -lt 50 ] && [ -z "$(dev mq)" ]; do sleep 0.1; n=$((n + 1)); done
M=$(dev mq)
echo "GUEST: rebound $V as $M"
run guest-tool check /dev/$M 0 8M 4
run guest-tool readonly /dev/$R
run guest-tool check /dev/$R 0 1M 5
run guest-tool discard /dev/$K 1M 1M
run guest-tool zeroout /dev/$K 2M 1M
run guest-tool punch /dev/$K 3M 512k
run guest-tool zero /dev/$K 2M 1536k
run guest-tool check /dev/$K 0 1M 3
run guest-tool check /dev/$K 3584k 512k 3
echo "GUEST: done"
""", [(socks["k"], 1), (socks["m"], 4), (socks["r"], 1)], smp=4)
        g.wait_for("move-begin")
        moves = 0
        targets = ["io2", "io1"]
        while True:
            # Move the 4-queue disk's node under the guest's writes.
            m.ok("x-blockdev-set-iothread", {"node-name": "m",
                                             "iothread": targets[moves % 2],
                                             "force": True})
            moves += 1
            # A move every 20 ms while the guest writes: the interval is
            # the subject (moves under I/O), not a wait for something.
            text = g.line(timeout=0.02)
            if text is None or "move-end" in text:
                break
        # The 4-queue disk's queues run in io3 and io2 (QEMU 10.1's
        # iothread list), whatever the node's home; which of them the
        # guest's one writer used depends on the vCPU it ran on.
        e = [x for x in m.ok("query-block-exports") if x["id"] == "mq"][0]
        check(e["iothread"] == ["io3", "io2"], "mq: %r" % e)
        check(sum(e["x-iothread-requests"]) > 10, "mq: %r" % e)
        print("boot 2: requests per iothread of mq: %r" %
              e["x-iothread-requests"])
        # block_resize while the guest runs: it must see the new size.
        g.wait_for("resize-now")
        m.ok("block_resize", {"node-name": "m", "size": 32 << 20})
        out = g.finish()
        print("\n".join(out))
        print("boot 2: %d moves under guest I/O" % moves)
        check("GUEST-DONE 0" in out, "guest script status: %r" % out[-1:])
        check(not any("FAIL" in l for l in out), "guest checks failed")
        check("GUEST: queues 1 4" in out, "queues: %r" % out)
        check("GUEST: ro 1 0" in out, "read-only flags: %r" % out)
        check("GUEST: sizes 16384 32768" in out, "sizes: %r" % out)
        check("GUEST: size-after 65536" in out, "resize not seen: %r" % out)
        check(sum("GUEST: ok" in l for l in out) == 15, "checks that ran")
        # The host side of the images.
        host_check("check", imgs["k"], 0, "1M", 3)
        host_check("zero", imgs["k"], "2M", "1536k")
        host_check("check", imgs["k"], "3584k", "512k", 3)
        host_check("check", imgs["m"], 0, "8M", 4)
        host_check("check", imgs["m"], "16M", "1M", 6)
        check(os.path.getsize(imgs["m"]) == 32 << 20, "image m not resized")
        host_check("check", imgs["r"], 0, "1M", 5)
        # The killed guest's writes went to 4M..8M: whatever it wrote last,
        # the daemon is fine and the export serves the next one (above).
        _, err = d.stop()
        check("resubmitting" in err,
              "the restarted daemon resubmitted nothing: %r" % err)
    finally:
        if g:
            g.kill()
        if d:
            d.cleanup()
        first.cleanup()
        shutil.rmtree(tmp)


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
