#!/usr/bin/env bash
# The whole tlskit flow in a temporary home: CA -> certificates -> verify.
# Run by `make demo` (which puts .venv/bin first on PATH).
set -euo pipefail

export TLSKIT_HOME="$(mktemp -d "${TMPDIR:-/tmp}/tlskit-demo.XXXXXX")"
# Nothing of the user's own setup leaks in: no config file, no CA passphrase.
unset TLSKIT_CONFIG TLSKIT_CA_PASSPHRASE
export XDG_CONFIG_HOME="$TLSKIT_HOME/.config"
cleanup() { rm -rf "$TLSKIT_HOME"; }
trap cleanup EXIT
cd "$TLSKIT_HOME"

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }
fails() { printf '\n\033[1m$ %s\033[0m   (expected to fail)\n' "$*"; if "$@"; then echo "demo: expected a failure" >&2; exit 1; fi; }

echo "tlskit demo in $TLSKIT_HOME"
step tlskit --version
step tlskit ca init --permit localhost --permit .test --permit 127.0.0.0/8 --permit ::1
step tlskit cert issue localhost 127.0.0.1 ::1
step tlskit cert issue --client alice.test
step tlskit cert list
step tlskit cert verify localhost --host 127.0.0.1
step tlskit cert verify alice.test --purpose client
fails tlskit cert verify localhost --host api.test
fails tlskit cert issue example.com
step tlskit cert show localhost --json
echo
echo "demo: ok"
