#!/usr/bin/env bash
# Stage: Schemathesis against a running server, on a fresh database of one engine.
#   usage: tests/contract/schemathesis.sh sqlite|postgres [admin|officer]
# Every operation of the committed openapi/openapi.json, signed in as an admin (the default) or
# as a procurement officer of one trust (RJ1), with every check (see schemathesis.toml and
# st_hooks.py). An officer is refused most operations (403 for the role, 404 for another
# organisation's data): the document lists those answers too, so the run checks them. Any 5xx,
# any response that does not match the document, or any other failed check fails the stage.
# Output and reports (JUnit, JSON) go to ci-artifacts/schemathesis-ENGINE[-officer]/.
#
# Settings (environment): CONTRACT_ST_MAX_EXAMPLES (default 40 per operation and phase; 25 for
# the officer), CONTRACT_ST_SEED (default 1, so that a red run can be repeated; `random` for a new
# one).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

engine=${1:?usage: schemathesis.sh sqlite|postgres [admin|officer]}
role=${2:-admin}
case "$engine" in
    sqlite) port=18611 ;;
    postgres) port=18612 ;;
    *) log "unknown engine $engine"; exit 2 ;;
esac
case "$role" in
    admin) name=$engine ;;
    officer) name=$engine-officer; port=$((port + 4)) ;;
    *) log "unknown role $role"; exit 2 ;;
esac
# The officer's run is slower per example (half its organisation codes are its own, which reach
# the writes): fewer examples keep it about as long as the admin's (about 70 s on SQLite).
default_examples=40
[ "$role" = officer ] && default_examples=25
max_examples=${CONTRACT_ST_MAX_EXAMPLES:-$default_examples}
seed=${CONTRACT_ST_SEED:-1}

contract_init
out="$ARTIFACTS/schemathesis-$name"
rm -rf "$out"
mkdir -p "$out"

contract_fresh_database "$engine" "schemathesis"
database_url=$FRESH_DATABASE_URL
contract_start_server "schemathesis-$name" "$database_url" "$port"
server_pid=${CONTRACT_PIDS[-1]}

CATALOGUE_TOKEN=$(contract_admin_token)
config="$CONTRACT_DIR/schemathesis.toml"
own=""
if [ "$role" = officer ]; then
    own=RJ1
    CATALOGUE_TOKEN=$(contract_user_token "$CATALOGUE_TOKEN" officer "$own")
    # Half of the organisation codes drawn are the officer's own, so that the run reaches what an
    # officer may do (claims, purchases, risk acceptances, advisory responses, their reports),
    # not only the 404s for everyone else's organisations.
    config="$CONTRACT_TMP/schemathesis-officer.toml"
    cat "$CONTRACT_DIR/schemathesis.toml" - >"$config" <<EOF

[dictionaries.own-organisation]
values = ["$own"]

[parameters]
"path.code" = { dictionary = "own-organisation", probability = 0.5 }
"query.organisation" = { dictionary = "own-organisation", probability = 0.5 }
"body.organisation" = { dictionary = "own-organisation", probability = 0.5 }
EOF
fi
CATALOGUE_USER_ID=$(curl -sS --fail -H "Authorization: Bearer $CATALOGUE_TOKEN" "$BASE_URL/v1/me" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
CATALOGUE_ENGINE=$engine
CATALOGUE_ROLE=$role
CATALOGUE_ORGANISATION=$own
CONTRACT_ST_EXCUSED="$out/excused.txt"
export CATALOGUE_TOKEN CATALOGUE_USER_ID CATALOGUE_ENGINE CATALOGUE_ROLE CATALOGUE_ORGANISATION CONTRACT_ST_EXCUSED
export SCHEMATHESIS_HOOKS="$CONTRACT_DIR/st_hooks.py"

seed_args=()
[ "$seed" != random ] && seed_args=(--seed "$seed")

# Schemathesis keeps a cache directory in its working directory: keep it out of the repository.
mkdir -p "$CONTRACT_TMP/work"
cd "$CONTRACT_TMP/work"
status=0
timeout 1200 "$VENV/bin/schemathesis" --config-file "$config" run \
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
# (ci-artifacts/schemathesis-ENGINE[-officer]/failures.txt; the full text is in output.txt; the
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

# The run must have been made by a working user to the end, and the server must still be up.
if ! kill -0 "$server_pid" 2>/dev/null; then
    log "the server died during the run (log: ci-artifacts/schemathesis-$name-server.log)"
    status=1
elif [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $CATALOGUE_TOKEN" "$BASE_URL/v1/me")" != 200 ]; then
    log "the $role's token no longer works after the run: the run may have locked itself out"
    status=1
fi
if grep -q ' panicked at ' "$ARTIFACTS/schemathesis-$name-server.log"; then
    log "the server panicked during the run (see ci-artifacts/schemathesis-$name-server.log)"
    status=1
fi

[ "$status" -eq 0 ] && log "schemathesis on $engine as $role: no failures" \
    || log "schemathesis on $engine as $role: FAILED (full output: ci-artifacts/schemathesis-$name/output.txt)"
exit "$status"
