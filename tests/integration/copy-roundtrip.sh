#!/bin/sh
# A random 64 MiB image round-trips through nbdcopy and qemu-img, and a
# sparse one keeps its holes (block status).
. "$(dirname "$0")/lib.sh"

start_server --iothread \
    --blockdev driver=memory,node-name=n0,size=64M \
    --export node=n0,name=disk,writable=on

head -c 64M /dev/urandom >"$WORK/rand.img"

nbdcopy "$WORK/rand.img" "$(uri disk)"
nbdcopy "$(uri disk)" "$WORK/back.img"
cmp "$WORK/rand.img" "$WORK/back.img" || fail "nbdcopy round trip"
nbdcopy --connections=4 --requests=32 "$(uri disk)" "$WORK/back4.img"
cmp "$WORK/rand.img" "$WORK/back4.img" || fail "nbdcopy multi-conn"

qemu-img convert -n -f raw -O raw "$WORK/rand.img" "$(uri disk)"
qemu-img compare -f raw -F raw "$WORK/rand.img" "$(uri disk)" ||
    fail "qemu-img compare after convert"
qemu-img convert -f raw -O raw "$(uri disk)" "$WORK/back2.img"
cmp "$WORK/rand.img" "$WORK/back2.img" || fail "qemu-img convert out"

# Sparse: 8 MiB of data, then zeroes.  After the copy the zero part reads
# as zero and block status reports it as zero (so copies skip it).
truncate -s 64M "$WORK/sparse.img"
dd if="$WORK/rand.img" of="$WORK/sparse.img" bs=1M count=8 conv=notrunc \
    status=none
qemu-img convert -n -f raw -O raw "$WORK/sparse.img" "$(uri disk)"
qemu-img compare -f raw -F raw "$WORK/sparse.img" "$(uri disk)" ||
    fail "sparse compare"
nbdinfo --map --json "$(uri disk)" >"$WORK/map.json"
python3 - "$WORK/map.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
zero = sum(e["length"] for e in m if e["type"] & 2)
if zero < 56 << 20:
    sys.exit("FAIL: only %d zero bytes reported: %r" % (zero, m))
PY
nbdcopy "$(uri disk)" "$WORK/sparse-back.img"
cmp "$WORK/sparse.img" "$WORK/sparse-back.img" || fail "sparse nbdcopy"

stop_server
