#!/bin/sh
# fio's nbd engine, random writes verified with crc32c at queue depth 32,
# on an export that moves between the IOThread and the main loop.
. "$(dirname "$0")/lib.sh"

start_server --iothread --move-every-ms 50 \
    --blockdev driver=memory,node-name=n0,size=64M \
    --export node=n0,name=disk,writable=on

fio --name=verify --ioengine=nbd --uri="$(uri disk)" --rw=randwrite \
    --bs=4k --iodepth=32 --size=64M --verify=crc32c --do_verify=1 \
    --verify_fatal=1 --output="$WORK/fio.out" ||
    fail "fio: $(cat "$WORK/fio.out")"
grep -q "err= 0" "$WORK/fio.out" || fail "fio errors: $(cat "$WORK/fio.out")"
fio --name=mixed --ioengine=nbd --uri="$(uri disk)" --rw=randrw \
    --bsrange=512-256k --iodepth=32 --size=64M --verify=crc32c \
    --do_verify=1 --verify_fatal=1 --numjobs=1 --output="$WORK/fio2.out" ||
    fail "fio mixed: $(cat "$WORK/fio2.out")"
grep -q "err= 0" "$WORK/fio2.out" || fail "fio errors: $(cat "$WORK/fio2.out")"

stop_server
