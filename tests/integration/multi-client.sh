#!/bin/sh
# Several clients at once, each on its own region, all verified.
. "$(dirname "$0")/lib.sh"

start_server --iothread \
    --blockdev driver=memory,node-name=n0,size=64M \
    --export node=n0,name=disk,writable=on

head -c 8M /dev/urandom >"$WORK/part.img"
pids=
for i in 0 1 2 3 4 5 6 7; do
    (
        qemu-io -f raw -c "write -s $WORK/part.img $((i * 8))M 8M" \
            -c "read -v $((i * 8))M 16" "$(uri disk)" >"$WORK/c$i.out" 2>&1
    ) &
    pids="$pids $!"
done
for p in $pids; do
    wait "$p" || fail "a client failed"
done
for i in 0 1 2 3 4 5 6 7; do
    qemu-img convert -O raw --image-opts \
        "driver=raw,offset=$((i * 8 * 1048576)),size=8388608,file.driver=nbd,file.server.type=unix,file.server.path=$SOCK,file.export=disk" \
        "$WORK/back$i.img"
    cmp "$WORK/part.img" "$WORK/back$i.img" || fail "region $i"
done

stop_server
