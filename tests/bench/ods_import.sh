#!/usr/bin/env bash
# Times `catalogue ods import` of all four ODS file kinds (and the trusts' etr) at national size:
# about 8,000 organisations (42 ICBs, 106 sub-ICB locations, 250 trusts, 7,600 GP practices) and
# 400 successions, in synthetic files in the published layouts (tests/bench/ods_national.py).
# A benchmark, not a test: it prints seconds, and the target is under 10 s for the four kinds.
#
# usage: tests/bench/ods_import.sh [--no-build] [--engine sqlite|postgres|both]
# Each engine gets a fresh database, seeded with the embedded default (`catalogue seed`, not
# timed); then the first import of each file, and an import of the next month's files (2% renamed,
# 2% re-parented, 1% closed), each timed on its own. PostgreSQL is postgres://postgres@127.0.0.1:5432
# (trust on loopback); its database is dropped at the end.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
build=1
engine=both
while [ $# -gt 0 ]; do
    case "$1" in
        --no-build) build=0 ;;
        --engine) engine="$2"; shift ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

target="${CARGO_TARGET_DIR:-$root/target}"
if [ "$build" = 1 ]; then
    (cd "$root" && cargo build -q --release -p api --bin catalogue)
fi
work="$(mktemp -d)"
pg_database="ods_bench_$$"
cleanup() {
    if [ "$engine" != sqlite ]; then
        psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $pg_database" >/dev/null 2>&1 || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
# A copy of the binary, so that a concurrent build cannot swap it mid-run.
cp "$target/release/catalogue" "$work/catalogue"
python3 "$here/ods_national.py" "$work/files"
python3 "$here/ods_national.py" "$work/changed" --changed

run() {  # engine url
    local name="$1" url="$2" total=0 start end took
    echo "== $name"
    DATABASE_URL="$url" "$work/catalogue" seed >/dev/null 2>&1
    for pass in files changed; do
        for kind in icb subicb etr epraccur succ; do
            file="$work/$pass/$kind.csv"
            [ "$kind" = subicb ] && file="$work/$pass/eccg.csv"
            start=$(date +%s.%N)
            DATABASE_URL="$url" "$work/catalogue" ods import "$file" --kind "$kind" >/dev/null 2>"$work/err"
            end=$(date +%s.%N)
            took=$(echo "$end - $start" | bc)
            printf '%-8s %-9s %6.2f s\n         %s\n' "$pass" "$kind" "$took" "$(tail -1 "$work/err")"
            total=$(echo "$total + $took" | bc)
        done
        printf '%-8s %-9s %6.2f s   (target: under 10 s)\n' "$pass" "all" "$total"
        total=0
    done
}

if [ "$engine" != postgres ]; then
    run sqlite "$work/catalogue.db"
fi
if [ "$engine" != sqlite ]; then
    psql -q -h 127.0.0.1 -U postgres -c "CREATE DATABASE $pg_database" >/dev/null
    run postgres "postgres://postgres@127.0.0.1:5432/$pg_database?sslmode=disable"
fi
