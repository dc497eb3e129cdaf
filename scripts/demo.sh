#!/usr/bin/env bash
# `make demo`: serve a simulated 8-GPU host and watch it in the terminal viewer.
# Usage: demo.sh BIN_DIR PORT
set -euo pipefail
bin=${1:?usage: demo.sh BIN_DIR PORT}
port=${2:?usage: demo.sh BIN_DIR PORT}

if ! "$bin/smicast" view --help >/dev/null 2>&1 || [[ ! -t 1 ]]; then
    echo "smicast demo: serving a simulated 8-GPU host; open http://localhost:$port/ (Ctrl-C stops)" >&2
    exec "$bin/smicast" api --simulate nvidia:8 --interval 1 --processes --port "$port"
fi

log=$(mktemp "${TMPDIR:-/tmp}/smicast-demo.XXXXXX")
"$bin/smicast" api --simulate nvidia:8 --interval 1 --processes --bind 127.0.0.1 --port "$port" 2>"$log" &
api=$!
trap 'kill "$api" 2>/dev/null; wait "$api" 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 50); do
    grep -q "listening on" "$log" && break
    kill -0 "$api" 2>/dev/null || { cat "$log" >&2; exit 1; }
    sleep 0.1
done
echo "smicast demo: dashboard at http://127.0.0.1:$port/ while the viewer runs" >&2
"$bin/smicast" view --host "http://127.0.0.1:$port"
