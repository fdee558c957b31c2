#!/usr/bin/env bash
# Starts, on loopback: the mock Entra ID, the demo application, the reference user-sync
# service, and the local runner with the filter in front of the application. Ctrl-C stops
# them all. Used by `make run` (after it builds everything) and by the browser test.
#
# Addresses: LISTEN (the filter), APP (the application), IDP (the mock), USERS (the
# user-sync service, whose SQLite database is USERS_DB). Programs come from BIN, the
# module from WASM, the plugin configuration from CONFIG.
#
# With the example configuration (authority http://127.0.0.1:9001) the mock Entra ID
# stands in for Entra. Any other CONFIG signs in with the authority it names (Entra ID,
# https://login.microsoftonline.com, when it names none): no mock is started, and the
# client secret comes from ENTRA_CLIENT_SECRET in the environment (unless the configuration
# uses client_assertion). Every ENTRA_* variable of the environment reaches the VM.
# ENTRA_COOKIE_SECRET and USER_SYNC_SECRET, when set, are used rather than fresh random
# ones, so that an Envoy started with the top-level envoy.yaml can share them.
#
# APP_KIND=django (make run-django) puts examples/django on APP instead of the demo
# application, as the application and its user-sync endpoint (no separate service), with
# its SQLite database in DJANGO_DB; the filter signs what it sends it (upstream_signature,
# ENTRA_UPSTREAM_SECRET). It needs Debian's python3-django (PYTHON names another Python).
set -euo pipefail
listen=${LISTEN:-127.0.0.1:8080}
app=${APP:-127.0.0.1:3000}
idp=${IDP:-127.0.0.1:9001}
users=${USERS:-127.0.0.1:9002}
users_db=${USERS_DB:-dist/users.db}
bin=${BIN:-bin}
wasm=${WASM:-dist/entra-auth.wasm}
app_kind=${APP_KIND:-demo}
config_file=${CONFIG:-examples/local/plugin.json}
django_db=${DJANGO_DB:-dist/django.sqlite3}
case $app_kind in
  demo) ;;
  django)
    [ -n "${CONFIG:-}" ] || config_file=examples/local/plugin-django.json
    python=${PYTHON:-}
    for candidate in /usr/bin/python3 python3; do
      [ -n "$python" ] && break
      "$candidate" -c 'import django' 2>/dev/null && python=$candidate
    done
    if [ -z "$python" ]; then
      echo "run: APP_KIND=django needs a Python with Django: apt-get install python3-django" >&2
      exit 1
    fi
    ;;
  *) echo "run: APP_KIND=$app_kind: want demo or django" >&2; exit 1 ;;
esac

# The identity provider: the mock, or the configuration's authority.
authority=$(sed -n 's/.*"authority"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' "$config_file" | head -n 1)
mock=false
if [ "$authority" = "http://127.0.0.1:9001" ]; then
  mock=true
  authority="http://$idp"
else
  authority=${authority:-https://login.microsoftonline.com}
  if [ -z "${ENTRA_CLIENT_SECRET:-}" ] && ! grep -q '"client_assertion"' "$config_file"; then
    echo "run: $config_file signs in with $authority: set ENTRA_CLIENT_SECRET to the app registration's client secret (see README, \"Against real Entra ID\")" >&2
    exit 1
  fi
fi
idp_origin=$(printf '%s' "$authority" | sed -E 's#^(https?://[^/]+).*#\1#')
graph=https://graph.microsoft.com
$mock && graph=$idp_origin # the mock answers Microsoft Graph's calls too

pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT INT TERM

# in_use ADDRESS: whether something already accepts connections there.
in_use() { (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null; }

addresses=("LISTEN=$listen" "APP=$app")
[ "$app_kind" = demo ] && addresses+=("USERS=$users")
$mock && addresses+=("IDP=$idp")
for pair in "${addresses[@]}"; do
  if in_use "${pair#*=}"; then
    echo "run: ${pair#*=} is in use by another program; choose another address, e.g. make run ${pair%%=*}=127.0.0.1:$(( ${pair##*:} + 100 ))" >&2
    exit 1
  fi
done
# The page to open is http://localhost:PORT/, and browsers try localhost's IPv6 address
# first: another program there would answer instead of the filter.
case ${listen%:*} in
  127.0.0.1|localhost)
    if in_use "::1:${listen##*:}"; then
      echo "run: another program listens on [::1]:${listen##*:}, where browsers go first for http://localhost:${listen##*:}/; stop it, or choose another port, e.g. make run LISTEN=127.0.0.1:$(( ${listen##*:} + 100 ))" >&2
      exit 1
    fi ;;
esac

# wait_for NAME PID ADDRESS: wait until ADDRESS accepts connections, or fail if PID died.
wait_for() {
  for _ in $(seq 100); do
    kill -0 "$2" 2>/dev/null || { echo "run: the $1 did not start (see above)" >&2; exit 1; }
    in_use "$3" && return 0
    sleep 0.1
  done
  echo "run: the $1 is not answering on $3" >&2
  exit 1
}

if $mock; then
  echo "run: starting the mock Entra ID on $idp"
  "$bin/mockentra" -listen "$idp" &
  pids+=($!)
  wait_for "mock Entra ID" "${pids[-1]}" "$idp"
else
  echo "run: signing in with $authority (configuration $config_file)"
fi

user_sync_secret=${USER_SYNC_SECRET:-$(head -c 24 /dev/urandom | base64)}
users_url=http://$users
if [ "$app_kind" = django ]; then
  upstream_secret=${ENTRA_UPSTREAM_SECRET:-$(head -c 32 /dev/urandom | base64)}
  tenant=$(sed -n 's/.*"tenant_id"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' "$config_file" | head -n 1)
  mkdir -p "$(dirname "$django_db")"
  django_db=$(cd "$(dirname "$django_db")" && pwd)/$(basename "$django_db")
  export DJANGO_DB=$django_db DJANGO_ALLOWED_HOSTS=127.0.0.1,localhost,django.local ENTRA_ALLOWED_TENANTS=$tenant \
    ENTRA_UPSTREAM_SECRETS=$upstream_secret
  echo "run: starting the Django project (examples/django) on $app (database $django_db)"
  (cd examples/django && USER_SYNC_SECRET=$user_sync_secret "$python" manage.py migrate --noinput >/dev/null)
  (cd examples/django && USER_SYNC_SECRET=$user_sync_secret exec "$python" manage.py runserver "$app" --noreload) &
  pids+=($!)
  wait_for "Django project" "${pids[-1]}" "$app"
  # Django loads its URLs, views and admin on the first request, which on a cold start
  # (no __pycache__ yet) or a busy machine takes seconds: make it now, not in the first
  # sign-in's user-sync call. The answer (405: a GET) does not matter.
  "$python" -c "import urllib.request, sys
try: urllib.request.urlopen('http://$app/entra/sync', timeout=60)
except Exception: pass" 
  users_url=http://$app
  export ENTRA_UPSTREAM_SECRET=$upstream_secret
else
  echo "run: starting the demo application on $app"
  "$bin/demoapp" -listen "$app" &
  pids+=($!)
  wait_for "demo application" "${pids[-1]}" "$app"

  echo "run: starting the user-sync service on $users (database $users_db)"
  mkdir -p "$(dirname "$users_db")"
  USER_SYNC_SECRET=$user_sync_secret "$bin/usersync" -listen "$users" -db "$users_db" &
  pids+=($!)
  wait_for "user-sync service" "${pids[-1]}" "$users"
fi

config=$(mktemp)
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -f "$config"' EXIT INT TERM
sed "s#http://127.0.0.1:9001#http://$idp#" "$config_file" > "$config"
cookie_secret=${ENTRA_COOKIE_SECRET:-$(head -c 32 /dev/urandom | base64)}
client_secret=demo-secret-not-for-production
$mock || client_secret=${ENTRA_CLIENT_SECRET:-}

# The secrets reach the VM from the runner's environment, not its command line.
export ENTRA_CLIENT_SECRET=$client_secret ENTRA_COOKIE_SECRET=$cookie_secret USER_SYNC_SECRET=$user_sync_secret
vm_env=(-env USER_SYNC_SECRET)
for name in $(compgen -e | grep '^ENTRA_'); do
  vm_env+=(-env "$name")
done

echo "run: starting the filter on $listen (compiling the module takes a few seconds)"
# The runner takes its address at once but serves only once the filter started (it
# refuses a bad configuration first), and then says "listening on": only then is there a
# page to open. Its output goes on to the terminal, and to a file watched for that line.
runner_out=$(mktemp)
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -f "$config" "$runner_out"' EXIT INT TERM
"$bin/wasmhost" -wasm "$wasm" -config "$config" -listen "$listen" -upstream "http://$app" \
  -cluster "entra=$idp_origin" -cluster "graph=$graph" -cluster "users=$users_url" -concurrency 2 "${vm_env[@]}" \
  > >(tee "$runner_out") &
runner=$!
pids+=($runner)
for _ in $(seq 1200); do
  grep -q "^listening on " "$runner_out" && break
  if ! kill -0 "$runner" 2>/dev/null; then
    wait "$runner" || true
    echo "run: the filter did not start (see above)" >&2
    exit 1
  fi
  sleep 0.1
done
grep -q "^listening on " "$runner_out" || { echo "run: the filter did not start within 2 minutes" >&2; exit 1; }
if $mock; then
  echo "run: open http://localhost:${listen##*:}/ and sign in as ada@contoso.example or grace@contoso.example"
else
  echo "run: open http://localhost:${listen##*:}/ and sign in with your Entra ID account"
fi
if [ "$app_kind" = django ]; then
  echo "run: the users synced so far are in Django's admin, http://localhost:${listen##*:}/admin/ ; Ctrl-C stops everything"
else
  echo "run: the users synced so far are at http://$users/ ; Ctrl-C stops everything"
fi
wait "$runner"
