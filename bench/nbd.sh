#!/bin/bash
# NBD servers side by side: dataplaned, nbdkit (file plugin), qemu-nbd
# (--aio=io_uring) and qemu-storage-daemon, each exporting the same 1 GiB
# raw image on /dev/shm over a unix socket, one server at a time, driven by
# fio's nbd engine (libnbd).
#
#   bench/nbd.sh [--quick] [--rounds N] [--servers LIST]
#
# LIST: comma-separated, of dataplane, dataplane-nopoll (its IOThread with
# poll-max-ns=0), nbdkit, qemu-nbd, qemu-storage-daemon; default all but
# dataplane-nopoll.  $DATAPLANED names the daemon binary to measure.
# Jobs: 4k random read at QD1 and QD32, 4k random write at QD32, 256k
# sequential read at QD8, and two 4k random read QD32 connections at once.
# Figures per job and server (BENCH lines, see bench/bench-util.h):
#   nbd-<job>-iops        IOPS (higher is better)
#   nbd-<job>-lat-mean    mean completion latency, us
#   nbd-<job>-lat-p99     99th percentile completion latency, us
#   nbd-<job>-cpu-per-op  server CPU (user + system of every thread, from
#                         /proc/<pid>/stat) per completed operation, us
# Each job runs 10 s (2 s with --quick); rounds interleave the servers.
# A server that is not installed (or dataplaned before it is built) is
# skipped with a NOTE line.
set -u
cd "$(dirname "$0")/.."

quick=0
rounds=3
want_servers="dataplane,nbdkit,qemu-nbd,qemu-storage-daemon"
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) quick=1 ;;
    --rounds)
        [ $# -ge 2 ] || { echo "nbd.sh: --rounds needs a count" >&2; exit 2; }
        rounds=$2
        shift
        ;;
    --servers)
        [ $# -ge 2 ] || { echo "nbd.sh: --servers needs a list" >&2; exit 2; }
        want_servers=$2
        shift
        ;;
    -h | --help)
        sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'
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

runtime=10
img_mib=1024
if [ $quick = 1 ]; then
    runtime=2
fi

note() {
    printf 'NOTE\t%s\t%s\t%s\n' "$1" "$2" "$3"
    echo "nbd.sh: $2: $3" >&2
}

if ! command -v fio >/dev/null || ! fio --enghelp=nbd >/dev/null 2>&1; then
    note nbd - "fio with the nbd engine is not installed: no NBD figures"
    exit 0
fi

work=$(mktemp -d /dev/shm/dataplane-bench-nbd.XXXXXX)
img=$work/disk.img
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
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Random contents, so that no server or page cache can take a shortcut on
# zeroes or holes.
if ! dd if=/dev/urandom of="$img" bs=1M count=$img_mib status=none; then
    note nbd - "cannot write the ${img_mib} MiB image on /dev/shm"
    exit 1
fi

uri="nbd+unix:///disk?socket=$sock"

# The daemon: prefer the release build bench/run makes.
dataplaned=""
for d in ${DATAPLANED:-} build-bench/daemon/dataplaned build/daemon/dataplaned; do
    if [ -x "$d" ]; then
        dataplaned=$d
        break
    fi
done

# start_server NAME: starts it in the background (server_pid) on $sock.
start_server() {
    case "$1" in
    dataplane | dataplane-nopoll)
        local poll=""
        [ "$1" = dataplane-nopoll ] && poll=",poll-max-ns=0"
        "$dataplaned" \
            --blockdev "driver=file,node-name=disk0,filename=$img" \
            --object "iothread,id=io0$poll" \
            --nbd-server "addr.type=unix,addr.path=$sock" \
            --export type=nbd,id=exp0,node-name=disk0,name=disk,writable=on,iothread=io0 \
            2>"$work/server.err" &
        ;;
    nbdkit)
        nbdkit --foreground --unix "$sock" file "$img" 2>"$work/server.err" &
        ;;
    qemu-nbd)
        qemu-nbd --format=raw --aio=io_uring --export-name=disk --socket="$sock" \
            --persistent --shared=8 "$img" 2>"$work/server.err" &
        ;;
    qemu-storage-daemon)
        # No iothread=: qemu-storage-daemon 7.2 (Debian 12) aborts on the
        # first client disconnect from an export in an IOThread (assertion
        # "qemu_in_main_thread() && nbd_server" in nbd_blockdev_client_closed),
        # so its export runs in the main loop, as qemu-nbd's does.
        qemu-storage-daemon \
            --blockdev "driver=file,node-name=disk0,filename=$img,aio=io_uring" \
            --nbd-server "addr.type=unix,addr.path=$sock" \
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
        if [ -S "$sock" ] && nbdinfo --size "$uri" >/dev/null 2>&1; then
            return 0
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

# run_job SERVER JOB FIO-OPTIONS...: one fio run, its BENCH lines.
run_job() {
    local server=$1 job=$2
    shift 2
    local out=$work/fio.json before after
    if ! kill -0 "$server_pid" 2>/dev/null; then
        note "nbd-$job" "$server" "the server is no longer running: $(tail -c 300 "$work/server.err" | tr '\n\t' '  ')"
        return
    fi
    before=$(cpu_ticks "$server_pid")
    if ! fio --output-format=json --output="$out" --ioengine=nbd --uri="$uri" \
        --time_based --runtime="$runtime" --group_reporting "$@" >/dev/null 2>"$work/fio.err"; then
        note "nbd-$job" "$server" "fio failed: $(tail -c 300 "$work/fio.err" | tr '\n\t' '  ')"
        return
    fi
    if ! kill -0 "$server_pid" 2>/dev/null; then
        note "nbd-$job" "$server" "the server died during the job"
        return
    fi
    after=$(cpu_ticks "$server_pid")
    python3 - "$out" "$server" "$job" "$((after - before))" "$hz" <<'EOF'
import json, sys
path, server, job, ticks, hz = sys.argv[1:]
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
    print(f"NOTE\tnbd-{job}\t{server}\tfio completed no I/O")
    sys.exit(0)
cpu_us = int(ticks) / int(hz) * 1e6
def bench(metric, value, unit, better):
    print(f"BENCH\tnbd-{job}-{metric}\t{server}\t{value:.6g}\t{unit}\t{better}")
bench("iops", iops, "IOPS", "higher")
bench("lat-mean", lat[0] / 1000, "us", "lower")
bench("lat-p99", lat[1] / 1000, "us", "lower")
bench("cpu-per-op", cpu_us / ios, "us", "lower")
EOF
}

run_jobs() {
    local s=$1
    run_job "$s" 4k-randread-qd1 --name=j --rw=randread --bs=4k --iodepth=1
    run_job "$s" 4k-randread-qd32 --name=j --rw=randread --bs=4k --iodepth=32
    run_job "$s" 4k-randwrite-qd32 --name=j --rw=randwrite --bs=4k --iodepth=32
    run_job "$s" 256k-read-qd8 --name=j --rw=read --bs=256k --iodepth=8
    run_job "$s" 4k-randread-qd32-2jobs --name=j --rw=randread --bs=4k --iodepth=32 --numjobs=2
}

servers=()
IFS=, read -r -a wanted <<<"$want_servers"
for s in "${wanted[@]}"; do
    case "$s" in
    dataplane | dataplane-nopoll)
        if [ -n "$dataplaned" ]; then
            servers+=("$s")
        else
            note nbd "$s" "build/daemon/dataplaned does not exist yet (daemon branch not merged): not measured"
        fi
        continue
        ;;
    nbdkit | qemu-nbd | qemu-storage-daemon) ;;
    *)
        echo "nbd.sh: unknown server '$s'" >&2
        exit 2
        ;;
    esac
    if command -v "$s" >/dev/null; then
        servers+=("$s")
        [ "$s" = qemu-storage-daemon ] &&
            note nbd "$s" "export in the main loop, not an IOThread: 7.2 aborts when a client disconnects from an IOThread export"
    else
        note nbd "$s" "$s is not installed: skipped"
    fi
done

for r in $(seq "$rounds"); do
    for s in "${servers[@]}"; do
        echo "nbd.sh: round $r/$rounds: $s" >&2
        start_server "$s" || continue
        run_jobs "$s"
        stop_server
    done
done
