#!/bin/bash
# qcow2 images served over NBD: dataplaned, qemu-nbd and qemu-storage-daemon
# side by side, each serving the same qcow2 image (64 KiB clusters) over a
# unix socket, one server at a time, driven by fio's nbd engine.
#
#   bench/qcow2.sh [--quick] [--rounds N] [--only SERVER]
#
# Two places: tmpfs (/dev/shm) and ext4 (a directory on the root file
# system, checked with df -T; another file system is named in a NOTE).
# Jobs (QD32 unless said):
#   4k-randread-alloc    4k random reads of a fully allocated image
#   4k-randwrite-alloc   4k random writes into allocated clusters
#   4k-randwrite-fresh   4k random writes into an empty 16 GiB image: most
#                        allocate a cluster (the rest of it reads as zeroes)
#   64k-seqwrite-fresh   64k sequential writes (QD8) into an empty image:
#                        one new cluster each
# Every job gets a fresh copy of its image.  Figures per place, job and
# server (BENCH lines): qcow2-<place>-<job>-iops and -cpu-per-op (server CPU,
# user + system of every thread, per completed operation, us).  Each job
# runs 10 s (2 s with --quick).  Missing servers are skipped with a NOTE.
set -u
cd "$(dirname "$0")/.."

quick=0
rounds=3
only=""
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) quick=1 ;;
    --rounds)
        [ $# -ge 2 ] || { echo "qcow2.sh: --rounds needs a count" >&2; exit 2; }
        rounds=$2
        shift
        ;;
    --only)
        [ $# -ge 2 ] || { echo "qcow2.sh: --only needs a server" >&2; exit 2; }
        only=$2
        shift
        ;;
    -h | --help)
        sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "qcow2.sh: unknown argument '$1'" >&2
        exit 2
        ;;
    esac
    shift
done

runtime=10
alloc_mib=256
[ $quick = 1 ] && { runtime=2; alloc_mib=64; }

note() {
    printf 'NOTE\t%s\t%s\t%s\n' "$1" "$2" "$3"
    echo "qcow2.sh: $2: $3" >&2
}

if ! command -v fio >/dev/null || ! fio --enghelp=nbd >/dev/null 2>&1; then
    note qcow2 - "fio with the nbd engine is not installed: no figures"
    exit 0
fi
if ! command -v qemu-img >/dev/null; then
    note qcow2 - "qemu-img is not installed: no figures"
    exit 0
fi

dataplaned=""
for d in build-bench/daemon/dataplaned build/daemon/dataplaned; do
    [ -x "$d" ] && { dataplaned=$d; break; }
done

shm_dir=$(mktemp -d /dev/shm/dataplane-bench-qcow2.XXXXXX)
ext4_dir=$(mktemp -d /var/tmp/dataplane-bench-qcow2.XXXXXX)
sock=$shm_dir/nbd.sock
uri="nbd+unix:///disk?socket=$sock"
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
    rm -rf "$shm_dir" "$ext4_dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fs_type=$(df -T "$ext4_dir" | awk 'NR == 2 {print $2}')
[ "$fs_type" = ext4 ] ||
    note qcow2 - "/var/tmp is on $fs_type, not ext4: the 'ext4' figures are $fs_type's"

# The allocated image, made once per place: random data in every cluster.
make_alloc_image() {
    local dir=$1
    dd if=/dev/urandom of="$dir/src.raw" bs=1M count=$alloc_mib status=none &&
        qemu-img convert -q -f raw -O qcow2 -o cluster_size=64k \
            "$dir/src.raw" "$dir/alloc.qcow2" &&
        rm -f "$dir/src.raw"
}

# fresh_image DIR KIND: the job's own copy (KIND alloc or fresh).
fresh_image() {
    local dir=$1 kind=$2
    rm -f "$dir/job.qcow2"
    if [ "$kind" = alloc ]; then
        cp "$dir/alloc.qcow2" "$dir/job.qcow2"
    else
        qemu-img create -q -f qcow2 -o cluster_size=64k "$dir/job.qcow2" 16G
    fi
}

start_server() {
    local name=$1 img=$2
    case "$name" in
    dataplane)
        "$dataplaned" \
            --blockdev "driver=qcow2,node-name=disk0,file.driver=file,file.filename=$img" \
            --object iothread,id=io0 \
            --nbd-server "addr.type=unix,addr.path=$sock" \
            --export type=nbd,id=exp0,node-name=disk0,name=disk,writable=on,iothread=io0 \
            2>"$shm_dir/server.err" &
        ;;
    qemu-nbd)
        qemu-nbd --format=qcow2 --aio=io_uring --cache=writeback \
            --export-name=disk --socket="$sock" --persistent --shared=8 \
            "$img" 2>"$shm_dir/server.err" &
        ;;
    qemu-storage-daemon)
        # In the main loop: 7.2 aborts when a client leaves an IOThread
        # export (see bench/nbd.sh).
        qemu-storage-daemon \
            --blockdev "driver=qcow2,node-name=disk0,file.driver=file,file.filename=$img,file.aio=io_uring" \
            --nbd-server "addr.type=unix,addr.path=$sock" \
            --export type=nbd,id=exp0,node-name=disk0,name=disk,writable=on \
            2>"$shm_dir/server.err" &
        ;;
    esac
    server_pid=$!
    local i
    for i in $(seq 100); do
        kill -0 "$server_pid" 2>/dev/null || break
        if [ -S "$sock" ] && nbdinfo --size "$uri" >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.1
    done
    note qcow2 "$name" "did not come up: $(tail -c 300 "$shm_dir/server.err" | tr '\n\t' '  ')"
    stop_server
    return 1
}

cpu_ticks() {
    sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'
}
hz=$(getconf CLK_TCK)

# run_job PLACE DIR SERVER JOB KIND FIO-OPTIONS...
run_job() {
    local place=$1 dir=$2 server=$3 job=$4 kind=$5
    shift 5
    local out=$shm_dir/fio.json before after
    fresh_image "$dir" "$kind" || { note "qcow2-$place-$job" "$server" "cannot make the image"; return; }
    start_server "$server" "$dir/job.qcow2" || return
    before=$(cpu_ticks "$server_pid")
    if ! fio --output-format=json --output="$out" --ioengine=nbd --uri="$uri" \
        --time_based --runtime="$runtime" --group_reporting --name=j "$@" \
        >/dev/null 2>"$shm_dir/fio.err"; then
        note "qcow2-$place-$job" "$server" "fio failed: $(tail -c 300 "$shm_dir/fio.err" | tr '\n\t' '  ')"
        stop_server
        return
    fi
    after=$(cpu_ticks "$server_pid")
    stop_server
    python3 - "$out" "$server" "qcow2-$place-$job" "$((after - before))" "$hz" <<'EOF'
import json, sys
path, server, job, ticks, hz = sys.argv[1:]
text = open(path, encoding="utf-8").read()
j = json.loads(text[text.index("{"):])["jobs"][0]
ios = sum(j[d]["total_ios"] for d in ("read", "write"))
iops = sum(j[d]["iops"] for d in ("read", "write"))
if ios == 0:
    print(f"NOTE\t{job}\t{server}\tfio completed no I/O")
    sys.exit(0)
cpu_us = int(ticks) / int(hz) * 1e6
print(f"BENCH\t{job}-iops\t{server}\t{iops:.6g}\tIOPS\thigher")
print(f"BENCH\t{job}-cpu-per-op\t{server}\t{cpu_us / ios:.6g}\tus\tlower")
EOF
}

servers=()
for s in dataplane qemu-nbd qemu-storage-daemon; do
    [ -n "$only" ] && [ "${s#"$only"}" = "$s" ] && continue
    if [ "$s" = dataplane ]; then
        [ -n "$dataplaned" ] && servers+=(dataplane) ||
            note qcow2 dataplane "dataplaned is not built"
    elif command -v "$s" >/dev/null; then
        servers+=("$s")
    else
        note qcow2 "$s" "$s is not installed: skipped"
    fi
done

for place in tmpfs ext4; do
    dir=$shm_dir
    [ $place = ext4 ] && dir=$ext4_dir
    if ! make_alloc_image "$dir"; then
        note qcow2 - "cannot make the ${alloc_mib} MiB image in $dir"
        continue
    fi
    for r in $(seq "$rounds"); do
        for s in "${servers[@]}"; do
            echo "qcow2.sh: $place round $r/$rounds: $s" >&2
            run_job $place "$dir" "$s" 4k-randread-alloc alloc --rw=randread --bs=4k --iodepth=32
            run_job $place "$dir" "$s" 4k-randwrite-alloc alloc --rw=randwrite --bs=4k --iodepth=32
            run_job $place "$dir" "$s" 4k-randwrite-fresh fresh --rw=randwrite --bs=4k --iodepth=32
            run_job $place "$dir" "$s" 64k-seqwrite-fresh fresh --rw=write --bs=64k --iodepth=8
        done
    done
    rm -f "$dir/alloc.qcow2" "$dir/job.qcow2"
done
