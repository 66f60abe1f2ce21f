#!/usr/bin/env bash
# Stage: lint openapi/openapi.json with Redocly CLI (pinned in package.json) and redocly.yaml.
# Any error fails the stage; the report is also kept in ci-artifacts/openapi-lint.txt.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
mkdir -p "$ARTIFACTS"

# No telemetry, no update check: nothing leaves the machine.
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true NO_COLOR=1

cd "$CONTRACT_DIR"
status=0
./node_modules/.bin/redocly lint --config redocly.yaml --max-problems 1000 \
    ../../openapi/openapi.json >"$ARTIFACTS/openapi-lint.txt" 2>&1 || status=$?
# Drop the Node.js version banner; keep the findings.
grep -v '[║╔╚═]' "$ARTIFACTS/openapi-lint.txt" | sed '/^\s*$/N;/^\s*\n$/D' >&2 || true
if [ "$status" -ne 0 ]; then
    log "openapi.json has lint errors (rules: tests/contract/redocly.yaml)"
fi
exit "$status"
