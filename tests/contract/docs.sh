#!/usr/bin/env bash
# Stage: the interactive documentation at /docs/ renders offline in headless Chromium (Debian's
# package, driven by playwright-core): Swagger UI shows the operations, and the page asks no host
# but the server. Screenshot: ci-artifacts/docs.png.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

contract_init
port=18614
contract_fresh_database sqlite docs
database_url=$FRESH_DATABASE_URL
contract_start_server docs "$database_url" "$port"

OPENAPI_DOCUMENT="$REPO_ROOT/openapi/openapi.json" \
    node "$CONTRACT_DIR/docs_render.mjs" "$BASE_URL" "$ARTIFACTS/docs.png"
