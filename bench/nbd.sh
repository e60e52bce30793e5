#!/bin/bash
# NBD servers side by side: dataplaned, nbdkit (file plugin), qemu-nbd
# (--aio=io_uring) and qemu-storage-daemon, each exporting the same 1 GiB
# raw image over a unix socket, one server at a time, driven by fio's nbd
# engine (libnbd).
#
#   bench/nbd.sh [--quick] [--rounds N] [--only SERVER] [--fs LIST] [--tls]
#
# Three storage set-ups (--fs, default "tmpfs ext4 ext4direct"; --quick:
# tmpfs), each a prefix of the job names:
#   tmpfs      the image on /dev/shm (memory; every server copies from it);
#   ext4       the image on a disk file system (/var/tmp, ext4 here; the
#              figure names say ext4 whatever df -T says, and a NOTE line
#              gives the real type), page cache warm: before each server
#              `sync`, drop caches, then the whole image is read once;
#   ext4direct the same image with O_DIRECT: dataplaned and
#              qemu-storage-daemon cache.direct=on, qemu-nbd --cache=none;
#              nbdkit's file plugin has no O_DIRECT: it runs with
#              cache=none (it evicts what it touched from the page cache)
#              and says so in a NOTE.  Caches are dropped before each
#              server.  A job whose server read less than half of what
#              it served from the disk (/proc/diskstats of the image's
#              device) gets a NOTE: that row came from the page cache
#              and is not an O_DIRECT figure (nbdkit's sequential and
#              two-connection reads, here).
# dataplaned runs three times: with its default IOThread (adaptive polling
# on), as "dataplane-nopoll" (poll-max-ns=0), and as "dataplane-2iothreads"
# (a multi-threaded export over two IOThreads: connections are spread).
# Jobs: 4k random read at QD1 and QD32, 4k random write at QD32, 256k
# sequential read at QD8, and two 4k random read QD32 connections at once.
# Figures per set-up, job and server (BENCH lines, see bench/bench-util.h):
#   nbd-<fs>-<job>-iops   IOPS (higher is better)
#   nbd-<job>-lat-mean    mean completion latency, us
#   nbd-<job>-lat-p99     99th percentile completion latency, us
#   nbd-<job>-cpu-per-op  server CPU (user + system of every thread, from
#                         /proc/<pid>/stat) per completed operation, us
# Each job runs 6 s (2 s with --quick); rounds interleave the servers.
# A server that is not installed (or dataplaned before it is built) is
# skipped with a NOTE line.
#
# --tls (bench/tls.sh): the same servers with TLS required (X.509,
# certificates made by tests/tls-certs.sh, client certificates verified
# by every server), on tmpfs: dataplaned's tls-creds-x509, nbdkit
# --tls=require --tls-certificates --tls-verify-peer, qemu-nbd --tls-creds
# and qemu-storage-daemon's tls-creds; jobs 4k random read QD32 and 256k
# sequential read QD8, figures named tls-<job>-<metric>, and the server's
# CPU per connection (tls-connect-cpu-per-op: 100 nbdinfo connections one
# after another, each a full TLS handshake).  fio (libnbd) finds the client
# certificate in $HOME/.pki/libnbd; as root libnbd would look in
# /etc/pki/libnbd instead, so fio then runs as nobody.
set -u
cd "$(dirname "$0")/.."

quick=0
rounds=3
only=""
fs_list=""
tls=0
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) quick=1 ;;
    --tls) tls=1 ;;
    --rounds)
        [ $# -ge 2 ] || { echo "nbd.sh: --rounds needs a count" >&2; exit 2; }
        rounds=$2
        shift
        ;;
    --only)
        [ $# -ge 2 ] || { echo "nbd.sh: --only needs a server name" >&2; exit 2; }
        only=$2
        shift
        ;;
    --fs)
        [ $# -ge 2 ] || { echo "nbd.sh: --fs needs a list" >&2; exit 2; }
        fs_list=$2
        shift
        ;;
    -h | --help)
        sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "nbd.sh: unknown argument '$1'" >&2
        exit 2
        ;;
    esac
    shift
done
case "$rounds" in
'' | *[!0-9]* | 0)
    echo "nbd.sh: --rounds wants a positive count, not '$rounds'" >&2
    exit 2
    ;;
esac

# --quick (CI's smoke run) and --tls measure tmpfs only unless told
# otherwise.
if [ -z "$fs_list" ]; then
    if [ $quick = 1 ] || [ $tls = 1 ]; then
        fs_list=tmpfs
    else
        fs_list="tmpfs ext4 ext4direct"
    fi
fi
for fs in $fs_list; do
    case "$fs" in
    tmpfs | ext4 | ext4direct) ;;
    *)
        echo "nbd.sh: --fs takes tmpfs, ext4 and ext4direct, not '$fs'" >&2
        exit 2
        ;;
    esac
done

runtime=6
img_mib=1024
if [ $quick = 1 ]; then
    runtime=2
fi

# Figure names: nbd-<job>-<metric>, or tls-<job>-<metric> with --tls.
prefix=nbd
[ $tls = 1 ] && prefix=tls

note() {
    printf 'NOTE\t%s\t%s\t%s\n' "${1/#nbd/$prefix}" "$2" "$3"
    echo "nbd.sh: $2: $3" >&2
}

if ! command -v fio >/dev/null || ! fio --enghelp=nbd >/dev/null 2>&1; then
    note nbd - "fio with the nbd engine is not installed: no NBD figures"
    exit 0
fi

work=$(mktemp -d /dev/shm/dataplane-bench-nbd.XXXXXX)
diskdir=""
img=""
sock=$work/nbd.sock
server_pid=""

stop_server() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null
        wait "$server_pid" 2>/dev/null
        server_pid=""
    fi
    rm -f "$sock"
}
cleanup() {
    stop_server
    rm -rf "$work"
    [ -n "$diskdir" ] && rm -rf "$diskdir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Random contents, so that no server or page cache can take a shortcut on
# zeroes or holes.  The same bytes on both file systems.
if ! dd if=/dev/urandom of="$work/disk.img" bs=1M count=$img_mib status=none; then
    note nbd - "cannot write the ${img_mib} MiB image on /dev/shm"
    exit 1
fi
case " $fs_list " in
*" ext4"*)
    diskdir=$(mktemp -d /var/tmp/dataplane-bench-nbd.XXXXXX)
    cp "$work/disk.img" "$diskdir/disk.img"
    sync
    fstype=$(stat -f -c %T "$diskdir")
    [ "$fstype" = ext2/ext3 ] && fstype=ext4 # stat's name for the ext family
    [ "$fstype" = ext4 ] ||
        note nbd - "the ext4 rows run on $fstype (/var/tmp), not ext4"
    ;;
esac

# Between two servers on a disk file system: write back and drop the page
# cache (root only), then, for the page-cache rows, read the image once so
# that every server starts from the same warm cache.
prepare_cache() {
    local fs=$1
    [ "$fs" = tmpfs ] && return 0
    sync
    if ! echo 3 >/proc/sys/vm/drop_caches 2>/dev/null; then
        note nbd - "cannot drop caches (not root): servers may find the cache in different states"
    fi
    [ "$fs" = ext4 ] && cat "$img" >/dev/null
    return 0
}

uri="nbd+unix:///disk?socket=$sock"
# as_client CMD...: runs a client (fio, nbdinfo) with its TLS setup.
as_client() { "$@"; }
srv_tls=()
if [ $tls = 1 ]; then
    if ! sh tests/tls-certs.sh "$work/certs" 2>"$work/certs.err"; then
        note nbd - "tests/tls-certs.sh failed (gnutls-bin missing?): $(tr '\n' ' ' <"$work/certs.err")"
        exit 0
    fi
    uri="nbds+unix:///disk?socket=$sock"
    mkdir -p "$work/home/.pki"
    cp -r "$work/certs/client" "$work/home/.pki/libnbd"
    if [ "$(id -u)" = 0 ]; then
        # The client runs as nobody: it must reach the socket and read the
        # client key (test material made for this run).
        chmod -R a+rX "$work"
        as_client() {
            HOME="$work/home" setpriv --reuid=65534 --regid=65534 --clear-groups "$@"
        }
    else
        as_client() { HOME="$work/home" "$@"; }
    fi
    srv_tls=(--object "tls-creds-x509,id=tls0,endpoint=server,dir=$work/certs/server")
fi

# The daemon: prefer the release build bench/run makes.
dataplaned=""
for d in build-bench/daemon/dataplaned build/daemon/dataplaned; do
    if [ -x "$d" ]; then
        dataplaned=$d
        break
    fi
done

# start_server NAME FS: starts it in the background (server_pid) on $sock.
start_server() {
    local direct=0
    [ "$2" = ext4direct ] && direct=1
    case "$1" in
    dataplane | dataplane-nopoll | dataplane-2iothreads)
        # The default IOThread polls adaptively (poll-max-ns 32768);
        # dataplane-nopoll turns that off, to show what polling costs;
        # dataplane-2iothreads spreads the connections over two IOThreads.
        local poll="" cache="" threads="iothread=io0"
        [ "$1" = dataplane-nopoll ] && poll=",poll-max-ns=0"
        [ $direct = 1 ] && cache=",cache.direct=on"
        [ "$1" = dataplane-2iothreads ] && threads="iothread.0=io0,iothread.1=io1"
        "$dataplaned" "${srv_tls[@]}" \
            --blockdev "driver=file,node-name=disk0,filename=$img$cache" \
            --object "iothread,id=io0$poll" \
            --object "iothread,id=io1$poll" \
            --nbd-server "addr.type=unix,addr.path=$sock${srv_tls:+,tls-creds=tls0}" \
            --export type=nbd,id=exp0,node-name=disk0,name=disk,writable=on,$threads \
            2>"$work/server.err" &
        ;;
    nbdkit)
        local cache="" ktls=()
        [ $direct = 1 ] && cache="cache=none"
        [ $tls = 1 ] && ktls=(--tls=require "--tls-certificates=$work/certs/server" --tls-verify-peer)
        nbdkit --foreground --unix "$sock" "${ktls[@]}" file "$img" $cache 2>"$work/server.err" &
        ;;
    qemu-nbd)
        local cache=writeback
        [ $direct = 1 ] && cache=none
        qemu-nbd "${srv_tls[@]}" ${srv_tls:+--tls-creds=tls0} \
            --format=raw --aio=io_uring --cache=$cache --export-name=disk --socket="$sock" \
            --persistent --shared=8 "$img" 2>"$work/server.err" &
        ;;
    qemu-storage-daemon)
        # No iothread=: qemu-storage-daemon 7.2 (Debian 12) aborts on the
        # first client disconnect from an export in an IOThread (assertion
        # "qemu_in_main_thread() && nbd_server" in nbd_blockdev_client_closed),
        # so its export runs in the main loop, as qemu-nbd's does.
        local cache=""
        [ $direct = 1 ] && cache=",cache.direct=on"
        qemu-storage-daemon "${srv_tls[@]}" \
            --blockdev "driver=file,node-name=disk0,filename=$img,aio=io_uring$cache" \
            --nbd-server "addr.type=unix,addr.path=$sock${srv_tls:+,tls-creds=tls0}" \
            --export type=nbd,id=exp0,node-name=disk0,name=disk,writable=on \
            2>"$work/server.err" &
        ;;
    esac
    server_pid=$!
    # Ready when a client can read the export's size; bounded wait.
    local i
    for i in $(seq 100); do
        if ! kill -0 "$server_pid" 2>/dev/null; then
            break
        fi
        if [ -S "$sock" ]; then
            # A client that is not root must be able to connect.
            [ $tls = 1 ] && chmod a+rw "$sock"
            # Without nbdinfo (libnbd-bin), a listening socket has to do.
            if ! command -v nbdinfo >/dev/null ||
                as_client nbdinfo --size "$uri" >/dev/null 2>&1; then
                return 0
            fi
        fi
        sleep 0.1
    done
    note nbd "$1" "the server did not come up: $(tail -c 300 "$work/server.err" | tr '\n\t' '  ')"
    stop_server
    return 1
}

# utime + stime of every thread of pid, in clock ticks.
cpu_ticks() {
    # Field 2 (comm) may hold spaces: count the fields after its ')'.
    sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'
}

hz=$(getconf CLK_TCK)

# KiB read so far from the block device that holds file $1 (from
# /proc/diskstats), or nothing if that is not a plain device (tmpfs).
disk_read_kib() {
    local dev
    dev=$(df --output=source "$1" 2>/dev/null | tail -1)
    case "$dev" in /dev/*) ;; *) return ;; esac
    dev=$(basename "$(readlink -f "$dev")")
    awk -v d="$dev" '$3 == d { print int($6 / 2) }' /proc/diskstats
}

# run_job SERVER JOB FIO-OPTIONS...: one fio run, its BENCH lines.
run_job() {
    local server=$1 job=$2
    shift 2
    local out=$work/fio.json before after disk_before disk_kib
    if ! kill -0 "$server_pid" 2>/dev/null; then
        note "nbd-$job" "$server" "the server is no longer running: $(tail -c 300 "$work/server.err" | tr '\n\t' '  ')"
        return
    fi
    before=$(cpu_ticks "$server_pid")
    disk_before=""
    case "$job" in ext4direct-*) disk_before=$(disk_read_kib "$img") ;; esac
    : >"$out"
    [ $tls = 1 ] && chmod a+w "$out"
    if ! as_client fio --output-format=json --output="$out" --ioengine=nbd --uri="$uri" \
        --time_based --runtime="$runtime" --group_reporting "$@" >/dev/null 2>"$work/fio.err"; then
        note "nbd-$job" "$server" "fio failed: $(tail -c 300 "$work/fio.err" | tr '\n\t' '  ')"
        return
    fi
    if ! kill -0 "$server_pid" 2>/dev/null; then
        note "nbd-$job" "$server" "the server died during the job"
        return
    fi
    after=$(cpu_ticks "$server_pid")
    disk_kib=""
    [ -n "$disk_before" ] && disk_kib=$(($(disk_read_kib "$img") - disk_before))
    python3 - "$out" "$server" "$job" "$((after - before))" "$hz" "$prefix" "$disk_kib" <<'EOF'
import json, sys
path, server, job, ticks, hz, prefix, disk_kib = sys.argv[1:]
text = open(path, encoding="utf-8").read()
d = json.loads(text[text.index("{"):])  # fio may print a line before the JSON
j = d["jobs"][0]
ios = iops = 0
lat = None
for direction in ("read", "write"):
    r = j[direction]
    if r["total_ios"] > 0:
        ios += r["total_ios"]
        iops += r["iops"]
        if lat is None or r["total_ios"] > lat[2]:
            lat = (r["clat_ns"]["mean"], r["clat_ns"]["percentile"]["99.000000"], r["total_ios"])
if ios == 0:
    print(f"NOTE\t{prefix}-{job}\t{server}\tfio completed no I/O")
    sys.exit(0)
cpu_us = int(ticks) / int(hz) * 1e6
def bench(metric, value, unit, better):
    print(f"BENCH\t{prefix}-{job}-{metric}\t{server}\t{value:.6g}\t{unit}\t{better}")
bench("iops", iops, "IOPS", "higher")
bench("lat-mean", lat[0] / 1000, "us", "lower")
bench("lat-p99", lat[1] / 1000, "us", "lower")
bench("cpu-per-op", cpu_us / ios, "us", "lower")
# O_DIRECT jobs: a server that read much less from the disk than it sent
# served its reads from the page cache (nbdkit's cache=none), so its row
# is not an O_DIRECT figure.  Writes are left out (they reach the disk
# later, at writeback).
read_kib = j["read"]["io_kbytes"]
if disk_kib and read_kib > 0 and int(disk_kib) < read_kib / 2:
    print(f"NOTE\t{prefix}-{job}\t{server}\tread {int(disk_kib) / read_kib:.0%} of what it "
          f"served from the disk ({int(disk_kib) / 1024:.0f} of {read_kib / 1024:.0f} MiB): "
          f"the rest came from the page cache")
EOF
}

# run_connects SERVER: the server's CPU per connection (TLS handshake,
# option haggling, close), over connections that nbdinfo makes one after
# another; figure <prefix>-connect-cpu-per-op.
run_connects() {
    local server=$1 n=100 i before after
    [ $quick = 1 ] && n=10
    command -v nbdinfo >/dev/null || { note nbd-connect "$server" "nbdinfo is not installed"; return; }
    before=$(cpu_ticks "$server_pid")
    for i in $(seq $n); do
        if ! as_client nbdinfo --size "$uri" >/dev/null 2>"$work/nbdinfo.err"; then
            note nbd-connect "$server" "nbdinfo failed: $(tail -c 300 "$work/nbdinfo.err" | tr '\n\t' '  ')"
            return
        fi
    done
    after=$(cpu_ticks "$server_pid")
    python3 -c "import sys; t, hz, n, p, s = sys.argv[1:]; print(f'BENCH\t{p}-connect-cpu-per-op\t{s}\t{int(t) / int(hz) * 1e6 / int(n):.6g}\tus\tlower')" \
        "$((after - before))" "$hz" "$n" "$prefix" "$server"
}

run_jobs() {
    local s=$1 f=$2
    if [ $tls = 1 ]; then
        run_job "$s" 4k-randread-qd32 --name=j --rw=randread --bs=4k --iodepth=32
        run_job "$s" 256k-read-qd8 --name=j --rw=read --bs=256k --iodepth=8
        run_connects "$s"
        return
    fi
    run_job "$s" $f-4k-randread-qd1 --name=j --rw=randread --bs=4k --iodepth=1
    run_job "$s" $f-4k-randread-qd32 --name=j --rw=randread --bs=4k --iodepth=32
    run_job "$s" $f-4k-randwrite-qd32 --name=j --rw=randwrite --bs=4k --iodepth=32
    run_job "$s" $f-256k-read-qd8 --name=j --rw=read --bs=256k --iodepth=8
    run_job "$s" $f-4k-randread-qd32-2jobs --name=j --rw=randread --bs=4k --iodepth=32 --numjobs=2
}

servers=()
if [ -n "$only" ] && [ "${only#dataplane}" = "$only" ]; then
    :
elif [ -n "$dataplaned" ] && [ $tls = 1 ]; then
    servers+=(dataplane)
elif [ -n "$dataplaned" ]; then
    servers+=(dataplane dataplane-nopoll dataplane-2iothreads)
else
    note nbd dataplane "build/daemon/dataplaned does not exist yet (daemon branch not merged): not measured"
fi
for s in nbdkit qemu-nbd qemu-storage-daemon; do
    [ -n "$only" ] && [ "${s#"$only"}" = "$s" ] && continue
    if command -v "$s" >/dev/null; then
        servers+=("$s")
        [ "$s" = qemu-storage-daemon ] &&
            note nbd "$s" "export in the main loop, not an IOThread: 7.2 aborts when a client disconnects from an IOThread export"
    else
        note nbd "$s" "$s is not installed: skipped"
    fi
done

case " $fs_list " in
*" ext4direct "*)
    case " ${servers[*]} " in
    *" nbdkit "*)
        note nbd-ext4direct nbdkit "nbdkit's file plugin has no O_DIRECT: cache=none (page-cache eviction after each request)"
        ;;
    esac
    ;;
esac

for r in $(seq "$rounds"); do
    for f in $fs_list; do
        if [ "$f" = tmpfs ]; then
            img=$work/disk.img
        else
            img=$diskdir/disk.img
        fi
        for s in "${servers[@]}"; do
            echo "nbd.sh: round $r/$rounds: $f: $s" >&2
            prepare_cache "$f"
            start_server "$s" "$f" || continue
            run_jobs "$s" "$f"
            stop_server
        done
    done
done
