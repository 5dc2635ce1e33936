#!/usr/bin/env bash
# The whole tlskit flow in a temporary home:
#   CA -> certificates -> serve in the background -> connect (echo) -> an mTLS round
#   -> a deliberate hostname mismatch, explained -> clean shutdown.
# Run by `make demo` (which puts .venv/bin first on PATH).
set -euo pipefail

export TLSKIT_HOME="$(mktemp -d "${TMPDIR:-/tmp}/tlskit-demo.XXXXXX")"
# Nothing of the user's own setup leaks in: no config file, no CA passphrase.
unset TLSKIT_CONFIG TLSKIT_CA_PASSPHRASE SSLKEYLOGFILE
export XDG_CONFIG_HOME="$TLSKIT_HOME/.config"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$TLSKIT_HOME"
}
trap cleanup EXIT
cd "$TLSKIT_HOME"

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }
fails() {
    printf '\n\033[1m$ %s\033[0m   (expected to fail)\n' "$*"
    if "$@"; then echo "demo: expected a failure" >&2; exit 1; fi
}
# Start `tlskit serve ARGS` in the background on a free port; sets $port.
start_server() {
    local log="$TLSKIT_HOME/serve-$#-$RANDOM.log"
    printf '\n\033[1m$ tlskit serve %s &\033[0m\n' "$*"
    tlskit --no-color serve --port 0 "$@" >"$log" 2>&1 &
    pids+=("$!")
    server_pid=$!
    server_log=$log
    for _ in $(seq 100); do
        port=$(grep -oE 'listening on [^ ]*127\.0\.0\.1:[0-9]+' "$log" | grep -oE '[0-9]+$' | head -1 || true)
        [ -n "$port" ] && break
        kill -0 "$server_pid" 2>/dev/null || { cat "$log"; echo "demo: the server died" >&2; exit 1; }
        sleep 0.1
    done
    [ -n "$port" ] || { cat "$log"; echo "demo: the server did not start" >&2; exit 1; }
    echo "listening on port $port (log: $log)"
}
stop_server() {
    printf '\n\033[1m$ kill -TERM %s\033[0m   (clean shutdown)\n' "$server_pid"
    kill -TERM "$server_pid"
    wait "$server_pid" || { echo "demo: serve did not exit 0" >&2; exit 1; }
    tail -n 3 "$server_log"
}

echo "tlskit demo in $TLSKIT_HOME"
step tlskit --version
step tlskit ca init --permit localhost --permit .test --permit 127.0.0.0/8 --permit ::1
step tlskit cert issue localhost 127.0.0.1 ::1
step tlskit cert issue --client alice.test
step tlskit cert list
step tlskit cert verify localhost --host 127.0.0.1
fails tlskit cert issue example.com

start_server
step tlskit connect "localhost:$port"
printf '\n\033[1m$ echo "hello, TLS" | tlskit connect localhost:%s\033[0m\n' "$port"
reply=$(echo "hello, TLS" | tlskit -q connect "localhost:$port")
echo "$reply"
[ "$reply" = "hello, TLS" ] || { echo "demo: the echo did not come back" >&2; exit 1; }
fails tlskit connect "127.0.0.1:$port" --servername api.test
stop_server

start_server --mtls
fails tlskit connect "localhost:$port"
step tlskit connect "localhost:$port" --cert alice.test --send "hello from alice"
stop_server

echo
echo "demo: ok"
