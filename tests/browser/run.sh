#!/usr/bin/env bash
# Browser tests of the web pages: builds the `catalogue` binary (respecting CARGO_TARGET_DIR),
# serves it on a fresh SQLite database with known users made by `catalogue user add`, runs the
# tests in headless Debian Chromium (playwright-core, with axe-core), and stops the server.
# Screenshots go to ci-artifacts/screenshots/. Needs: Debian's `chromium` and `npm ci` here.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

cargo build --locked -p api --bin catalogue
bin="${CARGO_TARGET_DIR:-$root/target}/debug/catalogue"
[ -d "$here/node_modules" ] || npm ci --prefix "$here" --no-audit --no-fund

work="$(mktemp -d)"
server_pid=""
smtp_pid=""
cleanup() {
    for pid in $server_pid $smtp_pid; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

export DATABASE_URL="$work/catalogue.db"
export CATALOGUE_JWT_SECRET="browser-tests-only-$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')"
export CATALOGUE_LOG_FORMAT=text RUST_LOG=warn
export BROWSER_PASSWORD="browser test password"
add_user() {
    CATALOGUE_PASSWORD="$BROWSER_PASSWORD" "$bin" user add --email "$1" --role "$2" ${3:+--org "$3"} >/dev/null 2>&1
}
add_user officer@rr8.test.nhs.uk officer RR8
add_user officer@rj1.test.nhs.uk officer RJ1
add_user exemplar@rm3.test.nhs.uk exemplar RM3
add_user admin@x24.test.nhs.uk admin
# Changes their password in its test, so that no other test's sign-in depends on it.
add_user password.change@x24.test.nhs.uk auditor

# Resets a forgotten password through the emailed link in its test.
add_user forgot.password@x24.test.nhs.uk auditor

free_port() {
    node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}
port="$(free_port)"

# A real SMTP server (aiosmtpd, as the Rust email tests use) keeping what it receives in a Maildir
# the tests read: the password reset email's link is followed from there.
python3 -c 'import aiosmtpd' 2>/dev/null || {
    echo "aiosmtpd is not installed (pip install aiosmtpd, or apt-get install python3-aiosmtpd)" >&2
    exit 1
}
smtp_port="$(free_port)"
export MAILDIR="$work/mail"
python3 -m aiosmtpd -n -l "127.0.0.1:$smtp_port" -c aiosmtpd.handlers.Mailbox "$MAILDIR" >"$work/smtp.log" 2>&1 &
smtp_pid=$!
for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$smtp_port") 2>/dev/null && break
    kill -0 "$smtp_pid" 2>/dev/null || { cat "$work/smtp.log" >&2; exit 1; }
    sleep 0.2
done
export CATALOGUE_SMTP_URL="smtp://127.0.0.1:$smtp_port" CATALOGUE_PUBLIC_URL="http://127.0.0.1:$port"

CATALOGUE_WORKERS=2 "$bin" serve --bind "127.0.0.1:$port" >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
    sleep 0.2
done

export CATALOGUE_URL="http://127.0.0.1:$port"
export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
export SCREENSHOTS="$root/ci-artifacts/screenshots"
mkdir -p "$SCREENSHOTS"
status=0
(cd "$here" && node --test --test-concurrency=1 pages.test.mjs) || status=$?
if [ "$status" -ne 0 ]; then
    echo "--- server log ---" >&2
    tail -n 50 "$work/server.log" >&2
fi
exit "$status"
