#!/usr/bin/env bash
# Times `catalogue estate import` of a synthetic Microsoft Defender software inventory of
# 1,000,000 rows (20,000 devices x 50 programs, tests/bench/estate_defender.py) on each engine,
# with the peak resident memory of the command (GNU time). A benchmark, not a test: the targets
# are under 60 s and under 200 MB.
#
# usage: tests/bench/estate_import.sh [--no-build] [--devices N] [--programs N]
# PostgreSQL is postgres://postgres@127.0.0.1:5432 (trust on loopback); its database is dropped
# at the end.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
build=1
devices=20000
programs=50
while [ $# -gt 0 ]; do
    case "$1" in
        --no-build) build=0 ;;
        --devices) devices="$2"; shift ;;
        --programs) programs="$2"; shift ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
target="${CARGO_TARGET_DIR:-$root/target}"
if [ "$build" = 1 ]; then
    (cd "$root" && cargo build -q --release -p api --bin catalogue)
fi
work="$(mktemp -d)"
pg_database="estate_bench_$$"
cleanup() {
    psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $pg_database" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
cp "$target/release/catalogue" "$work/catalogue"
python3 "$here/estate_defender.py" "$devices" "$programs" > "$work/defender.csv"
psql -q -h 127.0.0.1 -U postgres -c "CREATE DATABASE $pg_database" >/dev/null
for url in "$work/bench.db" "postgres://postgres@127.0.0.1:5432/$pg_database"; do
    "$work/catalogue" --database-url "$url" seed >/dev/null 2>&1
    /usr/bin/time -v "$work/catalogue" --database-url "$url" estate import "$work/defender.csv" \
        --org RR8 --source defender > /dev/null 2> "$work/time.txt"
    engine=$([ "${url#postgres}" = "$url" ] && echo sqlite || echo postgres)
    summary=$(grep '^Imported' "$work/time.txt")
    peak=$(awk '/Maximum resident/ {printf "%.0f MB", $6 / 1024}' "$work/time.txt")
    echo "$engine: $summary; peak memory $peak"
done
