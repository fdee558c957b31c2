#!/usr/bin/env bash
# Starts, on loopback: the mock Entra ID, the demo application, the reference user-sync
# service, and the local runner with the filter in front of the application. Ctrl-C stops
# them all. Used by `make run`; addresses come from LISTEN (the filter), APP (the
# application), IDP (the mock) and USERS (the user-sync service, whose SQLite database is
# USERS_DB).
set -euo pipefail
listen=${LISTEN:-127.0.0.1:8080}
app=${APP:-127.0.0.1:3000}
idp=${IDP:-127.0.0.1:9001}
users=${USERS:-127.0.0.1:9002}
users_db=${USERS_DB:-dist/users.db}

pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT INT TERM

# wait_for NAME PID ADDRESS: wait until ADDRESS accepts connections, or fail if PID died
# (a port in use stops the run here, with the program's own message above).
wait_for() {
  for _ in $(seq 100); do
    kill -0 "$2" 2>/dev/null || { echo "run: the $1 did not start (see above)" >&2; exit 1; }
    (exec 3<>"/dev/tcp/${3%:*}/${3##*:}") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "run: the $1 is not answering on $3" >&2
  exit 1
}

echo "run: starting the mock Entra ID on $idp"
bin/mockentra -listen "$idp" &
pids+=($!)
wait_for "mock Entra ID" "${pids[-1]}" "$idp"

echo "run: starting the demo application on $app"
bin/demoapp -listen "$app" &
pids+=($!)
wait_for "demo application" "${pids[-1]}" "$app"

echo "run: starting the user-sync service on $users (database $users_db)"
user_sync_secret=$(head -c 24 /dev/urandom | base64)
USER_SYNC_SECRET=$user_sync_secret bin/usersync -listen "$users" -db "$users_db" &
pids+=($!)
wait_for "user-sync service" "${pids[-1]}" "$users"

config=$(mktemp)
sed "s#http://127.0.0.1:9001#http://$idp#" examples/local/plugin.json > "$config"
cookie_secret=$(head -c 32 /dev/urandom | base64)

echo "run: starting the filter on $listen"
echo "run: open http://localhost:${listen##*:}/ and sign in as ada@contoso.example or grace@contoso.example;"
echo "run: the users synced so far are at http://$users/ (Ctrl-C stops)"
bin/wasmhost -wasm dist/entra-auth.wasm -config "$config" -listen "$listen" -upstream "http://$app" \
  -cluster "entra=http://$idp" -cluster "users=http://$users" -concurrency 2 \
  -env ENTRA_CLIENT_SECRET=demo-secret-not-for-production -env "ENTRA_COOKIE_SECRET=$cookie_secret" \
  -env "USER_SYNC_SECRET=$user_sync_secret"
