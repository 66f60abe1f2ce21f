#!/usr/bin/env bash
# The service as it runs in a region: three `catalogue serve` instances on one fresh PostgreSQL
# database behind nginx (their trusted proxy, 127.0.0.2), then the checks of cluster_test.py.
# Ends with `cluster: N passed, N failed`; exits non-zero on any failure.
#
#   bash tests/cluster/run.sh
#
# Environment: CATALOGUE_BIN (default target/debug/catalogue, built from the checkout first),
# TEST_DATABASE_URL (the admin database used to create and drop the run's database; default
# postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable). Installs Debian's nginx when
# `nginx` is not on PATH. Everything listens on 127.0.0.x high ports; the system nginx and its
# configuration are never touched. Logs go to ci-artifacts/cluster/.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

log() { echo "cluster: $*" >&2; }

bin="${CATALOGUE_BIN:-${CARGO_TARGET_DIR:-target}/debug/catalogue}"
case "$bin" in /*) ;; *) bin="$root/$bin" ;; esac
admin_url="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}"
artifacts="$root/ci-artifacts/cluster"

if [ -z "${CATALOGUE_BIN:-}" ]; then
    # The checkout's own binary, never a stale one (cargo does nothing when it is fresh).
    (cd "$root" && cargo build --locked -q -p api --bin catalogue)
elif [ ! -x "$bin" ]; then
    log "no binary at $bin"
    exit 1
fi
if ! command -v nginx >/dev/null 2>&1; then
    log "installing nginx from Debian's packages"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null
fi
# Debian's package may start its own nginx (on port 80); it is left alone, and this run's nginx
# uses its own prefix, configuration, pid file and port.
nginx_bin="$(command -v nginx || echo /usr/sbin/nginx)"

rm -rf "$artifacts"
mkdir -p "$artifacts"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/catalogue-cluster.XXXXXX")"

instance_pids=()
nginx_pid=""
database=""

stop_pid() {
    local pid=$1
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local status=$?
    set +e
    [ -n "$nginx_pid" ] && stop_pid "$nginx_pid"
    local pid
    for pid in "${instance_pids[@]}"; do stop_pid "$pid"; done
    if [ -n "$database" ]; then
        psql "$admin_url" -q -v ON_ERROR_STOP=1 -c "drop database if exists \"$database\" with (force)" \
            >/dev/null 2>&1 || log "could not drop database $database"
    fi
    rm -rf "$tmp"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
random_text() { # random_text N: N letters and digits
    python3 -c 'import secrets, string, sys; a = string.ascii_letters + string.digits; print("".join(secrets.choice(a) for _ in range(int(sys.argv[1]))))' "$1"
}

# A fresh database for the run, dropped on exit.
database="catalogue_cluster_$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"
psql "$admin_url" -q -v ON_ERROR_STOP=1 -c "create database \"$database\"" >/dev/null
url_base="${admin_url%%\?*}"
url_query="${admin_url#"$url_base"}"
export DATABASE_URL="${url_base%/*}/$database$url_query"
log "database $database"

# One secret for every instance; nginx (127.0.0.2) is their one trusted proxy.
export CATALOGUE_JWT_SECRET
CATALOGUE_JWT_SECRET="$(random_text 48)"
export CATALOGUE_TRUSTED_PROXIES=127.0.0.2
export CATALOGUE_LOG_FORMAT=text RUST_LOG="${CLUSTER_RUST_LOG:-info}"
export CATALOGUE_WORKERS=2 CATALOGUE_DB_CONNECTIONS=8

# The schema, the seed data and known users, made before any instance serves.
export CLUSTER_ADMIN_EMAIL=admin@cluster.test CLUSTER_OFFICER_EMAIL=officer.rr8@cluster.test
export CLUSTER_VICTIM_EMAIL=auditor@cluster.test
export CLUSTER_ADMIN_PASSWORD CLUSTER_OFFICER_PASSWORD CLUSTER_VICTIM_PASSWORD
CLUSTER_ADMIN_PASSWORD="$(random_text 24)"
CLUSTER_OFFICER_PASSWORD="$(random_text 24)"
CLUSTER_VICTIM_PASSWORD="$(random_text 24)"
{
    "$bin" migrate
    "$bin" seed
    CATALOGUE_PASSWORD="$CLUSTER_ADMIN_PASSWORD" "$bin" user add --email "$CLUSTER_ADMIN_EMAIL" --role admin --name "Cluster admin"
    CATALOGUE_PASSWORD="$CLUSTER_OFFICER_PASSWORD" "$bin" user add --email "$CLUSTER_OFFICER_EMAIL" --role officer --org RR8 --name "Cluster officer RR8"
    CATALOGUE_PASSWORD="$CLUSTER_VICTIM_PASSWORD" "$bin" user add --email "$CLUSTER_VICTIM_EMAIL" --role auditor --name "Cluster auditor"
} >"$artifacts/setup.log" 2>&1 || { log "setup failed:"; tail -n 30 "$artifacts/setup.log" >&2; exit 1; }

ports=("$(free_port)" "$(free_port)" "$(free_port)")
nginx_port="$(free_port)"

wait_ready() { # wait_ready URL PID LABEL
    local url=$1 pid=$2 label=$3
    for _ in $(seq 1 120); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url/readyz")" = 200 ] && return 0
        if ! kill -0 "$pid" 2>/dev/null; then
            log "$label exited:"; tail -n 30 "$artifacts/$label.log" >&2; return 1
        fi
        sleep 0.25
    done
    log "$label did not become ready in 30 s"; tail -n 30 "$artifacts/$label.log" >&2
    return 1
}

start_instance() { # start_instance INDEX
    local i=$1
    "$bin" serve --bind "127.0.0.1:${ports[$i]}" >"$artifacts/instance-$i.log" 2>&1 &
    instance_pids+=("$!")
}

# The first instance alone (it would migrate and seed a new database), then the other two.
start_instance 0
wait_ready "http://127.0.0.1:${ports[0]}" "${instance_pids[0]}" instance-0
start_instance 1
start_instance 2
wait_ready "http://127.0.0.1:${ports[1]}" "${instance_pids[1]}" instance-1
wait_ready "http://127.0.0.1:${ports[2]}" "${instance_pids[2]}" instance-2
log "instances on 127.0.0.1:${ports[0]}, :${ports[1]}, :${ports[2]} (pids ${instance_pids[*]})"

user_line=""
[ "$(id -u)" = 0 ] && user_line="user root;" # the workers must reach the run's own prefix
mkdir -p "$tmp/nginx"
sed -e "s|@PREFIX@|$tmp/nginx|g" -e "s|@ARTIFACTS@|$artifacts|g" -e "s|@USER_LINE@|$user_line|" \
    -e "s|@PORT_0@|${ports[0]}|" -e "s|@PORT_1@|${ports[1]}|" -e "s|@PORT_2@|${ports[2]}|" \
    -e "s|@NGINX_PORT@|$nginx_port|" "$here/nginx.conf.template" >"$tmp/nginx/nginx.conf"
cp "$tmp/nginx/nginx.conf" "$artifacts/nginx.conf"
"$nginx_bin" -p "$tmp/nginx" -e "$artifacts/nginx-error.log" -c "$tmp/nginx/nginx.conf" -t \
    >"$artifacts/nginx-test.log" 2>&1 || { log "nginx refused its configuration:"; cat "$artifacts/nginx-test.log" >&2; exit 1; }
"$nginx_bin" -p "$tmp/nginx" -e "$artifacts/nginx-error.log" -c "$tmp/nginx/nginx.conf" -g 'daemon off;' \
    >>"$artifacts/nginx-error.log" 2>&1 &
nginx_pid=$!
wait_ready "http://127.0.0.1:$nginx_port" "$nginx_pid" nginx-error
log "nginx on 127.0.0.1:$nginx_port (pid $nginx_pid)"

export CLUSTER_NGINX="127.0.0.1:$nginx_port"
export CLUSTER_INSTANCES="127.0.0.1:${ports[0]},127.0.0.1:${ports[1]},127.0.0.1:${ports[2]}"
export CLUSTER_INSTANCE_PIDS
CLUSTER_INSTANCE_PIDS="$(IFS=,; echo "${instance_pids[*]}")"
export CLUSTER_ARTIFACTS="$artifacts"

status=0
# (pipefail: the pipeline fails when the checks do.)
timeout 200 python3 "$here/cluster_test.py" 2>&1 | tee "$artifacts/result.txt" || status=$?
if grep -q ' panicked at ' "$artifacts"/instance-*.log; then
    log "an instance panicked (see ci-artifacts/cluster/instance-*.log)"
    status=1
fi
exit "$status"
