#!/usr/bin/env bash
# Webhook deliveries with real processes: a delivery survives `kill -9` of its instance (between
# the commit and the delivery, and with the webhook in flight) on SQLite and on PostgreSQL, and
# with two instances on one PostgreSQL database each message is delivered exactly once. The checks
# are delivery_test.py's. Ends with `notify: N passed, N failed`; exits non-zero on any failure.
#
#   bash tests/notify/run.sh
#
# Environment: CATALOGUE_BIN (default ${CARGO_TARGET_DIR:-target}/debug/catalogue, built from the
# checkout first with `cargo build --locked`, as the cluster stage does), TEST_DATABASE_URL (the admin database
# used to create and drop the run's databases; default
# postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable). Needs psql. Everything listens on
# 127.0.0.1; logs go to ci-artifacts/notify/.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

log() { echo "notify: $*" >&2; }

bin="${CATALOGUE_BIN:-${CARGO_TARGET_DIR:-target}/debug/catalogue}"
case "$bin" in /*) ;; *) bin="$root/$bin" ;; esac
admin_url="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}"
artifacts="$root/ci-artifacts/notify"

if [ -z "${CATALOGUE_BIN:-}" ]; then
    # The checkout's own binary, never a stale one (cargo does nothing when it is fresh). The debug
    # build the other stages use: a release build would add a quarter of an hour to CI on two
    # cores, and what is under test is leases and locks, not speed.
    (cd "$root" && cargo build --locked -q -p api --bin catalogue)
elif [ ! -x "$bin" ]; then
    log "no binary at $bin"
    exit 1
fi
command -v psql >/dev/null 2>&1 || { log "psql is needed to create the run's databases"; exit 1; }

rm -rf "$artifacts"
mkdir -p "$artifacts"

# The checks start and stop their own instances and receivers, and drop their databases on exit
# (SIGTERM from the timeout included). (pipefail: the pipeline fails when the checks do.)
status=0
timeout 600 python3 "$here/delivery_test.py" --bin "$bin" --postgres "$admin_url" --artifacts "$artifacts" 2>&1 \
    | tee "$artifacts/result.txt" || status=$?
exit "$status"
