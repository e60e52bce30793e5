#!/bin/bash
# Multiqueue scaling: one dataplaned export served from 1 IOThread and from
# 2 (a multi-threaded export: iothread.0=io0,iothread.1=io1, connections
# spread), with 2 and 4 fio jobs (one NBD connection each, 4k random reads
# at QD16 each), on three nodes: null-co (no storage: the server's own
# cost), a file on /dev/shm (tmpfs) and a file on /var/tmp (ext4 here,
# page cache warm).
#
#   bench/scaling.sh [--quick] [--rounds N] [--only IMPL]
#
# Figures (BENCH lines, bench/bench-util.h), per node and job count:
#   scaling-<node>-<N>jobs-iops        IOPS (higher is better)
#   scaling-<node>-<N>jobs-cpu-per-op  server CPU per op, us (lower)
# for "dataplane" (1 IOThread) and "dataplane-2iothreads".  Each run lasts
# 6 s (2 s with --quick, which measures null-co with 2 jobs only).  On a
# 2-vCPU machine fio needs about a core itself: read the ratio, not the
# absolute figure (docs/scaling.md models more cores).
set -u
cd "$(dirname "$0")/.."

quick=0
rounds=3
only=""
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) quick=1 ;;
    --rounds)
        [ $# -ge 2 ] || { echo "scaling.sh: --rounds needs a count" >&2; exit 2; }
        rounds=$2
        shift
        ;;
    --only)
        [ $# -ge 2 ] || { echo "scaling.sh: --only needs a name" >&2; exit 2; }
        only=$2
        shift
        ;;
    -h | --help)
        sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "scaling.sh: unknown argument '$1'" >&2
        exit 2
        ;;
    esac
    shift
done

note() {
    printf 'NOTE\t%s\t%s\t%s\n' "$1" "$2" "$3"
    echo "scaling.sh: $2: $3" >&2
}

if ! command -v fio >/dev/null || ! fio --enghelp=nbd >/dev/null 2>&1; then
    note scaling - "fio with the nbd engine is not installed: no figures"
    exit 0
fi
dataplaned=""
for d in build-bench/daemon/dataplaned build/daemon/dataplaned; do
    [ -x "$d" ] && { dataplaned=$d; break; }
done
if [ -z "$dataplaned" ]; then
    note scaling dataplane "dataplaned is not built"
    exit 0
fi

runtime=6
nodes="null tmpfs ext4"
jobs_list="2 4"
if [ $quick = 1 ]; then
    runtime=2
    nodes=null
    jobs_list=2
fi

work=$(mktemp -d /dev/shm/dataplane-bench-scaling.XXXXXX)
diskdir=""
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

img_mib=1024
case " $nodes " in
*" tmpfs "* | *" ext4 "*)
    dd if=/dev/urandom of="$work/disk.img" bs=1M count=$img_mib status=none ||
        { note scaling - "cannot write the image"; exit 1; }
    ;;
esac
case " $nodes " in
*" ext4 "*)
    diskdir=$(mktemp -d /var/tmp/dataplane-bench-scaling.XXXXXX)
    cp "$work/disk.img" "$diskdir/disk.img"
    ;;
esac

uri="nbd+unix:///disk?socket=$sock"
hz=$(getconf CLK_TCK)

cpu_ticks() {
    sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'
}

# start NODE THREADS
start_server() {
    local node=$1 threads=$2 blockdev export_threads
    case "$node" in
    null) blockdev="driver=null-co,node-name=disk0,size=1G,read-zeroes=on" ;;
    tmpfs) blockdev="driver=file,node-name=disk0,filename=$work/disk.img" ;;
    ext4)
        blockdev="driver=file,node-name=disk0,filename=$diskdir/disk.img"
        cat "$diskdir/disk.img" >/dev/null
        ;;
    esac
    if [ "$threads" = 2 ]; then
        export_threads="iothread.0=io0,iothread.1=io1"
    else
        export_threads="iothread=io0"
    fi
    "$dataplaned" --blockdev "$blockdev" \
        --object iothread,id=io0 --object iothread,id=io1 \
        --nbd-server "addr.type=unix,addr.path=$sock" \
        --export "type=nbd,id=exp0,node-name=disk0,name=disk,$export_threads" \
        2>"$work/server.err" &
    server_pid=$!
    local i
    for i in $(seq 100); do
        kill -0 "$server_pid" 2>/dev/null || break
        if [ -S "$sock" ] && nbdinfo --size "$uri" >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.1
    done
    note "scaling-$node" dataplane "the server did not come up: $(tail -c 300 "$work/server.err" | tr '\n\t' '  ')"
    stop_server
    return 1
}

run_one() {
    local node=$1 threads=$2 jobs=$3 impl=dataplane before after
    [ "$threads" = 2 ] && impl=dataplane-2iothreads
    if [ -n "$only" ] && [ "${impl#"$only"}" = "$impl" ]; then
        return
    fi
    start_server "$node" "$threads" || return
    before=$(cpu_ticks "$server_pid")
    if ! fio --output-format=json --output="$work/fio.json" --ioengine=nbd \
        --uri="$uri" --time_based --runtime="$runtime" --group_reporting \
        --name=j --rw=randread --bs=4k --iodepth=16 --numjobs="$jobs" \
        >/dev/null 2>"$work/fio.err"; then
        note "scaling-$node-${jobs}jobs" "$impl" "fio failed: $(tail -c 300 "$work/fio.err" | tr '\n\t' '  ')"
        stop_server
        return
    fi
    after=$(cpu_ticks "$server_pid")
    stop_server
    python3 - "$work/fio.json" "$impl" "scaling-$node-${jobs}jobs" \
        "$((after - before))" "$hz" <<'EOF'
import json, sys
path, impl, fig, ticks, hz = sys.argv[1:]
text = open(path, encoding="utf-8").read()
j = json.loads(text[text.index("{"):])["jobs"][0]["read"]
ios = j["total_ios"]
if ios == 0:
    print(f"NOTE\t{fig}\t{impl}\tfio completed no I/O")
    sys.exit(0)
print(f"BENCH\t{fig}-iops\t{impl}\t{j['iops']:.6g}\tIOPS\thigher")
print(f"BENCH\t{fig}-cpu-per-op\t{impl}\t{int(ticks) / int(hz) * 1e6 / ios:.6g}\tus\tlower")
EOF
}

for r in $(seq "$rounds"); do
    for node in $nodes; do
        for jobs in $jobs_list; do
            for threads in 1 2; do
                echo "scaling.sh: round $r/$rounds: $node, $jobs jobs, $threads IOThread(s)" >&2
                run_one "$node" "$threads" "$jobs"
            done
        done
    done
done
