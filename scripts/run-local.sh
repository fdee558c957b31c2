#!/usr/bin/env bash
# Starts, on loopback, the demo application and the local runner with the filter in front
# of it; Ctrl-C stops both. Used by `make run`; addresses come from LISTEN and APP.
set -euo pipefail
listen=${LISTEN:-127.0.0.1:8080}
app=${APP:-127.0.0.1:3000}

bin/demoapp -listen "$app" &
app_pid=$!
trap 'kill "$app_pid" 2>/dev/null || true' EXIT INT TERM
for _ in $(seq 50); do  # wait for the app, so that a port in use stops us here
  kill -0 "$app_pid" 2>/dev/null || { echo "the demo app did not start (see above)" >&2; exit 1; }
  (exec 3<>"/dev/tcp/${app%:*}/${app##*:}") 2>/dev/null && break
  sleep 0.1
done

echo "open http://$listen/ (stop with Ctrl-C)"
bin/wasmhost -wasm dist/entra-auth.wasm -config examples/local/plugin.json \
  -listen "$listen" -upstream "http://$app" -concurrency 2
