#!/bin/sh
# nbdinfo sees the size, the flags, the export list and the block sizes.
. "$(dirname "$0")/lib.sh"

start_server --iothread \
    --blockdev driver=memory,node-name=n0,size=64M \
    --blockdev driver=memory,node-name=n1,size=1M,read-only=on \
    --export node=n0,name=disk,writable=on,description=first-disk \
    --export node=n1,name=ro

nbdinfo --json "$(uri disk)" >"$WORK/disk.json"
nbdinfo --json "$(uri ro)" >"$WORK/ro.json"
python3 - "$WORK/disk.json" "$WORK/ro.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))["exports"][0]
r = json.load(open(sys.argv[2]))["exports"][0]
def want(cond, what):
    if not cond:
        sys.exit("FAIL: " + what)
want(d["export-size"] == 64 << 20, "disk size")
want(d["description"] == "first-disk", "description")
for f in ("can_flush", "can_fua", "can_trim", "can_zero", "can_fast_zero",
          "can_cache", "can_multi_conn", "can_df"):
    want(d[f] is True, "disk " + f)
want(d["is_read_only"] is False, "disk writable")
want(d["block_size_minimum"] == 1, "minimum block size")
want(d["block_size_preferred"] == 4096, "preferred block size")
want(d["block_size_maximum"] == 32 << 20, "maximum block size")
want("base:allocation" in d["contexts"], "base:allocation context")
want(r["export-size"] == 1 << 20, "ro size")
want(r["is_read_only"] is True, "ro is read-only")
want(r["can_trim"] is False and r["can_zero"] is False, "ro cannot write")
PY

nbdinfo --list --json "$(uri "")" >"$WORK/list.json"
python3 - "$WORK/list.json" <<'PY'
import json, sys
names = sorted(e["export-name"] for e in json.load(open(sys.argv[1]))["exports"])
if names != ["disk", "ro"]:
    sys.exit("FAIL: export list %r" % names)
PY

# An unknown export is refused with a message, and the server lives on.
if nbdinfo "$(uri nosuch)" 2>"$WORK/err"; then
    fail "unknown export accepted"
fi
grep -qE "not found|No such file" "$WORK/err" ||
    fail "unexpected error for an unknown export: $(cat "$WORK/err")"
nbdinfo --size "$(uri disk)" | grep -qx 67108864 || fail "size after error"

stop_server
