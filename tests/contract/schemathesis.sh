#!/usr/bin/env bash
# Stage: Schemathesis against a running server, on a fresh database of one engine.
#   usage: tests/contract/schemathesis.sh sqlite|postgres
# Every operation of the committed openapi/openapi.json, signed in as an admin, with every check
# (see schemathesis.toml and st_hooks.py). Any 5xx, any response that does not match the
# document, or any other failed check fails the stage. Output and reports (JUnit, JSON) go to
# ci-artifacts/schemathesis-ENGINE/.
#
# Settings (environment): CONTRACT_ST_MAX_EXAMPLES (default 40 per operation and phase),
# CONTRACT_ST_SEED (default 1, so that a red run can be repeated; `random` for a new one).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

engine=${1:?usage: schemathesis.sh sqlite|postgres}
case "$engine" in
    sqlite) port=18611 ;;
    postgres) port=18612 ;;
    *) log "unknown engine $engine"; exit 2 ;;
esac
max_examples=${CONTRACT_ST_MAX_EXAMPLES:-40}
seed=${CONTRACT_ST_SEED:-1}

contract_init
out="$ARTIFACTS/schemathesis-$engine"
rm -rf "$out"
mkdir -p "$out"

contract_fresh_database "$engine" "schemathesis"
database_url=$FRESH_DATABASE_URL
contract_start_server "schemathesis-$engine" "$database_url" "$port"
server_pid=${CONTRACT_PIDS[-1]}

CATALOGUE_TOKEN=$(contract_admin_token)
CATALOGUE_USER_ID=$(curl -sS --fail -H "Authorization: Bearer $CATALOGUE_TOKEN" "$BASE_URL/v1/me" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
CATALOGUE_ENGINE=$engine
CONTRACT_ST_EXCUSED="$out/excused.txt"
export CATALOGUE_TOKEN CATALOGUE_USER_ID CATALOGUE_ENGINE CONTRACT_ST_EXCUSED
export SCHEMATHESIS_HOOKS="$CONTRACT_DIR/st_hooks.py"

seed_args=()
[ "$seed" != random ] && seed_args=(--seed "$seed")

# Schemathesis keeps a cache directory in its working directory: keep it out of the repository.
mkdir -p "$CONTRACT_TMP/work"
cd "$CONTRACT_TMP/work"
status=0
timeout 1200 "$VENV/bin/schemathesis" --config-file "$CONTRACT_DIR/schemathesis.toml" run \
    "$REPO_ROOT/openapi/openapi.json" \
    --url "$BASE_URL" \
    --checks all \
    --max-examples "$max_examples" \
    "${seed_args[@]}" \
    --workers 1 \
    --request-timeout 30 \
    --no-color \
    --report junit,json \
    --report-dir "$out" \
    >"$out/output.txt" 2>&1 || status=$?
cd "$REPO_ROOT"

# The summary of the run; then each distinct failure once, with a curl reproduction
# (ci-artifacts/schemathesis-ENGINE/failures.txt; the full text is in output.txt; the
# refusals the hooks excused, each with its rule's reason, are in excused.txt).
sed -n '/^=* SUMMARY =*$/,$p' "$out/output.txt" >&2
if [ "$status" -ne 0 ]; then
    if grep -q '^=* FAILURES =*$' "$out/output.txt"; then
        "$VENV/bin/python" "$CONTRACT_DIR/st_digest.py" "$out/output.txt" "$BASE_URL" >"$out/failures.txt" || true
        cat "$out/failures.txt" >&2
    else
        tail -n 60 "$out/output.txt" >&2
    fi
fi

# The run must have been made by a working admin to the end, and the server must still be up.
if ! kill -0 "$server_pid" 2>/dev/null; then
    log "the server died during the run (log: ci-artifacts/schemathesis-$engine-server.log)"
    status=1
elif [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $CATALOGUE_TOKEN" "$BASE_URL/v1/me")" != 200 ]; then
    log "the admin's token no longer works after the run: the run may have locked itself out"
    status=1
fi
if grep -q ' panicked at ' "$ARTIFACTS/schemathesis-$engine-server.log"; then
    log "the server panicked during the run (see ci-artifacts/schemathesis-$engine-server.log)"
    status=1
fi

[ "$status" -eq 0 ] && log "schemathesis on $engine: no failures" \
    || log "schemathesis on $engine: FAILED (full output: ci-artifacts/schemathesis-$engine/output.txt)"
exit "$status"
