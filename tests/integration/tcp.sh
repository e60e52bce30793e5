#!/bin/sh
# TCP: one server listens on IPv4 and IPv6 (same port); clients of both
# families see the export.
. "$(dirname "$0")/lib.sh"

LISTEN=":0" start_server \
    --blockdev driver=memory,node-name=n0,size=4M \
    --export node=n0,name=disk,writable=on
port=$(sed -n 's/^port //p' "$WORK/server.out")
[ -n "$port" ] || fail "no port printed"

nbdinfo --size "nbd://127.0.0.1:$port/disk" | grep -qx 4194304 ||
    fail "IPv4 client"
if ip -6 addr show lo 2>/dev/null | grep -q "::1"; then
    nbdinfo --size "nbd://[::1]:$port/disk" | grep -qx 4194304 ||
        fail "IPv6 client"
    qemu-io -f raw -c "write -P 0x66 0 64k" "nbd://[::1]:$port/disk" \
        >/dev/null
    qemu-io -f raw -c "read -P 0x66 0 64k" "nbd://127.0.0.1:$port/disk" |
        grep -q "^read" || fail "data across families"
else
    echo "no IPv6 loopback: IPv6 part skipped"
fi
stop_server
