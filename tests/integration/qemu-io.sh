#!/bin/sh
# qemu-io patterns: write, read back, discard, write zeroes, FUA, flush.
. "$(dirname "$0")/lib.sh"

start_server --iothread \
    --blockdev driver=memory,node-name=n0,size=16M \
    --export node=n0,name=disk,writable=on

run() {
    qemu-io -f raw "$@" "$(uri disk)" >"$WORK/qio.out" 2>&1 ||
        fail "qemu-io $*: $(cat "$WORK/qio.out")"
    if grep -qiE "fail|error|mismatch" "$WORK/qio.out"; then
        fail "qemu-io $*: $(cat "$WORK/qio.out")"
    fi
}

run -c "write -P 0xa5 0 4M" -c "write -P 0x5a 4M 4M" -c "write -P 0x11 511 1025"
run -c "read -P 0xa5 0 511" -c "read -P 0x11 511 1025" \
    -c "read -P 0xa5 1536 4192768" -c "read -P 0x5a 4M 4M"
run -c "write -z 1M 1M" -c "read -P 0 1M 1M" -c "read -P 0xa5 2M 1M"
run -c "discard 4M 2M" -c "write -z -u 6M 1M" -c "read -P 0 6M 1M" \
    -c "read -P 0x5a 7M 1M"
run -c "write -f -P 0x77 8M 64k" -c "flush" -c "read -P 0x77 8M 64k"
run -c "aio_write -P 0x31 9M 64k" -c "aio_write -P 0x32 10M 64k" \
    -c "aio_flush" -c "read -P 0x31 9M 64k" -c "read -P 0x32 10M 64k"
# A read across the end is refused; the next one works.
qemu-io -f raw -c "read 16M 512" "$(uri disk)" >"$WORK/past.out" 2>&1 || true
grep -q "read failed" "$WORK/past.out" || fail "read past the end: $(cat "$WORK/past.out")"
run -c "read -P 0x32 10M 64k"

stop_server
