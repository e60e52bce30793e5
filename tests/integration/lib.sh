# Shared by the integration scripts: start nbd-test-server on a unix socket
# in a scratch directory, stop it (and check it exits cleanly) at the end.
# NBD_TEST_SERVER is set by meson to the server binary.
set -eu
: "${NBD_TEST_SERVER:?run through meson test}"

WORK=$(mktemp -d /tmp/nbd-it.XXXXXX)
SOCK="$WORK/sock"
SRV_PID=

cleanup() {
    rc=$?
    if [ -n "$SRV_PID" ] && kill -0 "$SRV_PID" 2>/dev/null; then
        kill "$SRV_PID" 2>/dev/null || true
        wait "$SRV_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
    exit $rc
}
trap cleanup EXIT INT TERM

# start_server ARGS...: starts the server with --listen $LISTEN (default
# $SOCK) and waits
# until it says "ready" (bounded: 100 x 0.1 s).
start_server() {
    "$NBD_TEST_SERVER" --listen "${LISTEN:-$SOCK}" "$@" >"$WORK/server.out" \
        2>"$WORK/server.err" &
    SRV_PID=$!
    i=0
    while ! grep -q '^ready' "$WORK/server.out" 2>/dev/null; do
        i=$((i + 1))
        if [ $i -gt 100 ] || ! kill -0 "$SRV_PID" 2>/dev/null; then
            echo "server did not start:" >&2
            cat "$WORK/server.err" >&2
            exit 1
        fi
        sleep 0.1
    done
}

# stop_server: SIGTERM, and the server must exit 0.
stop_server() {
    kill "$SRV_PID"
    if ! wait "$SRV_PID"; then
        echo "server exited with an error:" >&2
        cat "$WORK/server.err" >&2
        exit 1
    fi
    # UBSan reports without failing the process: look for them.
    if grep -q "runtime error\|Sanitizer" "$WORK/server.err"; then
        cat "$WORK/server.err" >&2
        exit 1
    fi
    SRV_PID=
}

uri() {
    echo "nbd+unix:///$1?socket=$SOCK"
}

fail() {
    echo "FAIL: $*" >&2
    exit 1
}
