# Helpers shared by the contract stages (sourced, not run). Each stage script starts its own
# servers on a fresh database, and `contract_cleanup` (installed as an EXIT trap by
# `contract_init`) stops every server it started, by process id, and drops every PostgreSQL
# database it created.

CONTRACT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$CONTRACT_DIR/../.." && pwd)"
ARTIFACTS="${CI_ARTIFACTS:-$REPO_ROOT/ci-artifacts}"
VENV="${CONTRACT_VENV:-$REPO_ROOT/.venv}"
CARGO_TARGET="${CARGO_TARGET_DIR:-target}"
case "$CARGO_TARGET" in /*) ;; *) CARGO_TARGET="$REPO_ROOT/$CARGO_TARGET" ;; esac
CATALOGUE_BIN="${CATALOGUE_BIN:-$CARGO_TARGET/debug/catalogue}"
PG_ADMIN_URL="${CONTRACT_PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}"
ADMIN_EMAIL="admin@ci.nhs.uk"

CONTRACT_PIDS=()
CONTRACT_DATABASES=()
CONTRACT_TMP=""

log() { echo "contract: $*" >&2; }

contract_init() {
    mkdir -p "$ARTIFACTS"
    CONTRACT_TMP="$(mktemp -d "${TMPDIR:-/tmp}/catalogue-contract.XXXXXX")"
    trap contract_cleanup EXIT
    trap 'exit 130' INT TERM
}

contract_cleanup() {
    local status=$?
    local pid
    for pid in "${CONTRACT_PIDS[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -9 "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
    done
    local name
    for name in "${CONTRACT_DATABASES[@]}"; do
        psql "$PG_ADMIN_URL" -q -v ON_ERROR_STOP=1 -c "drop database if exists \"$name\" with (force)" \
            >/dev/null 2>&1 || log "could not drop database $name"
    done
    [ -n "$CONTRACT_TMP" ] && rm -rf "$CONTRACT_TMP"
    return "$status"
}

# The server binary (cargo's lock makes concurrent builds wait for each other). Built for the
# whole workspace so that its dependencies have the features `cargo test --workspace` gave them
# and are reused; `-p api` alone would rebuild most of them with fewer features (minutes in CI).
contract_build() {
    (cd "$REPO_ROOT" && cargo build --locked -q --workspace --bins)
}

random_hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }

# contract_fresh_database ENGINE LABEL: sets FRESH_DATABASE_URL to a new, empty database of
# ENGINE (sqlite or postgres). PostgreSQL databases are dropped on exit. (Not for use in $(...):
# the database must be recorded in this shell for the cleanup to drop it.)
contract_fresh_database() {
    local engine=$1 label=$2
    case "$engine" in
        sqlite) FRESH_DATABASE_URL="$CONTRACT_TMP/$label.db" ;;
        postgres)
            local name="catalogue_contract_${label//-/_}_$(random_hex 4)"
            psql "$PG_ADMIN_URL" -q -v ON_ERROR_STOP=1 -c "create database \"$name\"" >/dev/null
            CONTRACT_DATABASES+=("$name")
            FRESH_DATABASE_URL="postgres://postgres@127.0.0.1:5432/$name?sslmode=disable"
            ;;
        *) log "unknown engine $engine"; return 1 ;;
    esac
}

# contract_start_server LABEL DATABASE_URL PORT
# Creates the admin (which also migrates and seeds the database), starts `catalogue serve` on
# 127.0.0.1:PORT and waits until /readyz answers 200. Sets BASE_URL and ADMIN_PASSWORD.
# The server's log goes to ci-artifacts/LABEL-server.log.
contract_start_server() {
    local label=$1 database_url=$2 port=$3
    local server_log="$ARTIFACTS/$label-server.log"
    BASE_URL="http://127.0.0.1:$port"
    ADMIN_PASSWORD="$(random_hex 24)"
    export CATALOGUE_JWT_SECRET
    CATALOGUE_JWT_SECRET="$(random_hex 32)$(random_hex 32)"
    if curl -s -o /dev/null --max-time 2 "$BASE_URL/healthz"; then
        log "port $port is already taken: something else serves $BASE_URL"
        return 1
    fi
    CATALOGUE_PASSWORD="$ADMIN_PASSWORD" DATABASE_URL="$database_url" \
        "$CATALOGUE_BIN" user add --email "$ADMIN_EMAIL" --role admin --name "CI admin" \
        >"$server_log" 2>&1 || { log "catalogue user add failed:"; cat "$server_log" >&2; return 1; }
    DATABASE_URL="$database_url" RUST_LOG="${CONTRACT_RUST_LOG:-warn}" CATALOGUE_WORKERS=2 \
        "$CATALOGUE_BIN" serve --bind "127.0.0.1:$port" >>"$server_log" 2>&1 &
    CONTRACT_PIDS+=("$!")
    local pid=$!
    for _ in $(seq 1 120); do
        if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$BASE_URL/readyz")" = 200 ]; then
            log "$label: serving on $BASE_URL (log: ${server_log#"$REPO_ROOT"/})"
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            log "$label: the server exited:"; tail -n 30 "$server_log" >&2; return 1
        fi
        sleep 0.5
    done
    log "$label: the server did not become ready in 60 s"; tail -n 30 "$server_log" >&2
    return 1
}

# A fresh admin access token (prints it). Tokens last 15 minutes: fetch one per run.
contract_admin_token() {
    local body
    body=$(curl -sS --fail-with-body -X POST "$BASE_URL/v1/auth/token" \
        -H 'content-type: application/json' \
        --data "{\"email\":\"$ADMIN_EMAIL\",\"password\":\"$ADMIN_PASSWORD\"}") \
        || { log "sign-in failed: $body"; return 1; }
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])' <<<"$body"
}

# contract_user_token ADMIN_TOKEN ROLE ORGANISATION: creates a user of ROLE for ORGANISATION through
# the API (as the admin whose token is given, the way a national team would) and prints a fresh
# access token of that user.
contract_user_token() {
    local admin_token=$1 role=$2 organisation=$3
    local email="$role.$(random_hex 4)@ci.nhs.uk" password body
    password="$(random_hex 24)"
    body=$(curl -sS --fail-with-body -X POST "$BASE_URL/v1/users" \
        -H "Authorization: Bearer $admin_token" -H 'content-type: application/json' \
        --data "{\"email\":\"$email\",\"display_name\":\"CI $role\",\"role\":\"$role\",\"organisation_code\":\"$organisation\",\"password\":\"$password\"}") \
        || { log "creating the $role failed: $body"; return 1; }
    body=$(curl -sS --fail-with-body -X POST "$BASE_URL/v1/auth/token" \
        -H 'content-type: application/json' \
        --data "{\"email\":\"$email\",\"password\":\"$password\"}") \
        || { log "the $role's sign-in failed: $body"; return 1; }
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])' <<<"$body"
}
