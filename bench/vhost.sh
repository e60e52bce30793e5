#!/bin/bash
# vhost-user-blk exports side by side: dataplaned and qemu-storage-daemon,
# each serving the same disk from one IOThread (adaptive polling, both at
# their default poll-max-ns of 32768), driven by the project's own
# front-end (tests/vhost-user-load: one thread, polling the used rings),
# one server at a time.
#
#   bench/vhost.sh [--quick] [--rounds N] [--only SERVER]
#
# Disks: null-co (1 GiB), a 1 GiB file on tmpfs (/dev/shm, page cache) and
# a 1 GiB file on ext4 (/var/tmp, O_DIRECT), both aio=io_uring.
# Jobs on each: 4k random read and 4k random write, at QD 1, 32 and 128
# per queue, with 1 and 2 queues; 4 s each (1 s with --quick, which runs
# null-co and QD 1 and 32 with one queue only).  With 2 queues, dataplane
# also runs with the queues spread over two IOThreads (iothread.0=io0,
# iothread.1=io1: jobs named -q2-t2); qemu-storage-daemon takes an
# iothread list from 10.1 on, and is run that way when it does.  The
# server stays pinned to one CPU, so on this 2-vCPU machine the -t2 rows
# show what spreading costs, not what it gains (that needs idle cores).  The server is pinned to
# CPU 0 and the client to CPU 1 (taskset), so each has a core of this
# 2-vCPU machine.
# Figures per job and server (BENCH lines, see bench/bench-util.h):
#   vhost-<disk>-<rw>-qd<N>-q<Q>-iops        IOPS (higher is better)
#   vhost-<disk>-<rw>-qd<N>-q<Q>-lat-mean    mean latency, us
#   vhost-<disk>-<rw>-qd<N>-q<Q>-lat-p99     99th percentile latency, us
#   vhost-<disk>-<rw>-qd<N>-q<Q>-cpu-per-op  server CPU (user + system of
#                                            every thread, /proc/PID/stat)
#                                            per completed request, us
# A server that is not installed is skipped with a NOTE line.
set -u
cd "$(dirname "$0")/.."

quick=0
rounds=3
only=""
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) quick=1 ;;
    --rounds)
        [ $# -ge 2 ] || { echo "vhost.sh: --rounds needs a count" >&2; exit 2; }
        rounds=$2
        shift
        ;;
    --only)
        [ $# -ge 2 ] || { echo "vhost.sh: --only needs a server name" >&2; exit 2; }
        only=$2
        shift
        ;;
    -h | --help)
        sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "vhost.sh: unknown argument '$1'" >&2
        exit 2
        ;;
    esac
    shift
done

runtime=4
disks="null tmpfs ext4"
qds="1 32 128"
queues="1 2"
if [ $quick = 1 ]; then
    runtime=1
    disks="null"
    qds="1 32"
    queues="1"
fi

note() {
    printf 'NOTE\t%s\t%s\t%s\n' "$1" "$2" "$3"
    echo "vhost.sh: $2: $3" >&2
}

# The programs: prefer the release build bench/run makes.
dataplaned=""
load=""
for b in build-bench build; do
    if [ -z "$dataplaned" ] && [ -x "$b/daemon/dataplaned" ]; then
        dataplaned=$b/daemon/dataplaned
    fi
    if [ -z "$load" ] && [ -x "$b/tests/vhost-user-load" ]; then
        load=$b/tests/vhost-user-load
    fi
done
if [ -z "$load" ]; then
    note vhost - "tests/vhost-user-load is not built: no vhost-user-blk figures"
    exit 0
fi

work=$(mktemp -d /tmp/dataplane-bench-vhost.XXXXXX)
shm=$(mktemp -d /dev/shm/dataplane-bench-vhost.XXXXXX)
ext4=$(mktemp -d /var/tmp/dataplane-bench-vhost.XXXXXX)
sock=$work/vhost.sock
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
    rm -rf "$work" "$shm" "$ext4"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Random contents, so that nothing can take a shortcut on zeroes or holes.
for d in $disks; do
    case $d in
    tmpfs) dd if=/dev/urandom of="$shm/disk.img" bs=1M count=1024 status=none ||
        { note vhost - "cannot write the image on /dev/shm"; exit 1; } ;;
    ext4) dd if=/dev/urandom of="$ext4/disk.img" bs=1M count=1024 status=none conv=fsync ||
        { note vhost - "cannot write the image on /var/tmp"; exit 1; } ;;
    esac
done
if [ "$(stat -f -c %T /var/tmp)" != ext2/ext3 ]; then
    note vhost - "/var/tmp is $(stat -f -c %T /var/tmp), not ext4: the 'ext4' rows are on that"
fi

# The node's options for a disk, in each server's spelling.
blockdev() {
    local server=$1 disk=$2
    case $disk in
    null)
        echo "driver=null-co,node-name=disk0,size=1073741824"
        ;;
    tmpfs)
        echo "driver=file,node-name=disk0,filename=$shm/disk.img,aio=io_uring"
        ;;
    ext4)
        echo "driver=file,node-name=disk0,filename=$ext4/disk.img,aio=io_uring,cache.direct=on"
        ;;
    esac
}

# start_server NAME DISK QUEUES [THREADS]: in the background (server_pid)
# on $sock; THREADS 2 spreads the queues over io0 and io1.
start_server() {
    local server=$1 disk=$2 nq=$3 threads=${4:-1}
    local export="type=vhost-user-blk,id=exp0,node-name=disk0,addr.type=unix,addr.path=$sock,writable=on,num-queues=$nq,iothread=io0"
    if [ "$threads" = 2 ]; then
        export="type=vhost-user-blk,id=exp0,node-name=disk0,addr.type=unix,addr.path=$sock,writable=on,num-queues=$nq,iothread.0=io0,iothread.1=io1"
    fi
    case $server in
    dataplane)
        taskset -c 0 "$dataplaned" --object iothread,id=io0 \
            --object iothread,id=io1 \
            --blockdev "$(blockdev "$server" "$disk")" --export "$export" \
            2>"$work/server.err" &
        ;;
    qemu-storage-daemon)
        taskset -c 0 qemu-storage-daemon --object iothread,id=io0 \
            --object iothread,id=io1 \
            --blockdev "$(blockdev "$server" "$disk")" --export "$export" \
            2>"$work/server.err" &
        ;;
    esac
    server_pid=$!
    local i
    for i in $(seq 100); do
        kill -0 "$server_pid" 2>/dev/null || break
        [ -S "$sock" ] && return 0
        sleep 0.1
    done
    note vhost "$server" "the server did not come up: $(tail -c 300 "$work/server.err" | tr '\n\t' '  ')"
    stop_server
    return 1
}

# utime + stime of every thread of pid, in clock ticks.
cpu_ticks() {
    sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'
}

hz=$(getconf CLK_TCK)

# run_job SERVER NAME LOAD-OPTIONS...: one run, its BENCH lines.
run_job() {
    local server=$1 job=$2 before after out
    shift 2
    if ! kill -0 "$server_pid" 2>/dev/null; then
        note "vhost-$job" "$server" "the server is no longer running: $(tail -c 300 "$work/server.err" | tr '\n\t' '  ')"
        return
    fi
    before=$(cpu_ticks "$server_pid")
    if ! out=$(taskset -c 1 "$load" --socket "$sock" --time "$runtime" "$@" 2>"$work/load.err"); then
        note "vhost-$job" "$server" "vhost-user-load failed: $(tail -c 300 "$work/load.err" | tr '\n\t' '  ')"
        return
    fi
    after=$(cpu_ticks "$server_pid")
    python3 - "$server" "$job" "$((after - before))" "$hz" "$out" <<'EOF'
import sys
server, job, ticks, hz, out = sys.argv[1:]
r = dict(kv.split("=") for kv in out.split())
ops = int(r["ops"])
if ops == 0:
    print(f"NOTE\tvhost-{job}\t{server}\tno request completed")
    sys.exit(0)
def bench(metric, value, unit, better):
    print(f"BENCH\tvhost-{job}-{metric}\t{server}\t{value:.6g}\t{unit}\t{better}")
bench("iops", float(r["iops"]), "IOPS", "higher")
bench("lat-mean", float(r["lat_mean_us"]), "us", "lower")
bench("lat-p99", float(r["lat_p99_us"]), "us", "lower")
bench("cpu-per-op", int(ticks) / int(hz) * 1e6 / ops, "us", "lower")
EOF
}

servers=()
if [ -z "$only" ] || [ "${only#dataplane}" != "$only" ]; then
    if [ -n "$dataplaned" ]; then
        servers+=(dataplane)
    else
        note vhost dataplane "dataplaned is not built: not measured"
    fi
fi
if [ -z "$only" ] || [ "${only#qemu}" != "$only" ]; then
    if command -v qemu-storage-daemon >/dev/null; then
        servers+=(qemu-storage-daemon)
    else
        note vhost qemu-storage-daemon "qemu-storage-daemon is not installed (qemu-system-common): skipped"
    fi
fi

# Whether qemu-storage-daemon takes an iothread list (QEMU 10.1).
qsd_lists=0
if command -v qemu-storage-daemon >/dev/null; then
    qsd_version=$(qemu-storage-daemon --version | sed -n 's/.*version \([0-9]*\)\.\([0-9]*\).*/\1 \2/p')
    set -- $qsd_version
    if [ "${1:-0}" -gt 10 ] || { [ "${1:-0}" = 10 ] && [ "${2:-0}" -ge 1 ]; }; then
        qsd_lists=1
    fi
fi

for r in $(seq "$rounds"); do
    for disk in $disks; do
        for nq in $queues; do
            threads_list="1"
            [ "$nq" -ge 2 ] && threads_list="1 2"
            for threads in $threads_list; do
                suffix=""
                [ "$threads" = 2 ] && suffix="-t2"
                for s in "${servers[@]}"; do
                    if [ "$threads" = 2 ] && [ "$s" = qemu-storage-daemon ] &&
                        [ "$qsd_lists" = 0 ]; then
                        [ "$r" = 1 ] && note "vhost-$disk-q$nq$suffix" "$s" "takes no iothread list before QEMU 10.1: not measured"
                        continue
                    fi
                    echo "vhost.sh: round $r/$rounds: $s, $disk, $nq queue(s), $threads IOThread(s)" >&2
                    start_server "$s" "$disk" "$nq" "$threads" || continue
                    for rw in randread randwrite; do
                        for qd in $qds; do
                            run_job "$s" "$disk-$rw-qd$qd-q$nq$suffix" \
                                --rw "$rw" --qd "$qd" --queues "$nq" --bs 4096
                        done
                    done
                    stop_server
                done
            done
        done
    done
done
