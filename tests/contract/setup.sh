#!/usr/bin/env bash
# Installs every tool the contract stages use, from the package registries only, at pinned
# versions; quick when they are already there:
#   - Debian's chromium (headless browser for the /docs check),
#   - a Python venv at .venv with tests/contract/requirements.txt (pinned by constraints.txt),
#   - the npm packages of tests/contract (package-lock.json): Redocly CLI and playwright-core,
#   - the catalogue binary (cargo build).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

apt_updated=false
apt_install() {
    if [ "$apt_updated" = false ]; then
        apt-get update -qq
        apt_updated=true
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if [ ! -x /usr/bin/chromium ]; then
    log "installing Debian's chromium"
    apt_install chromium
fi
for tool in curl psql; do
    command -v "$tool" >/dev/null || { log "installing $tool"; apt_install "${tool/psql/postgresql-client}"; }
done

if [ ! -x "$VENV/bin/python" ]; then
    log "creating the Python venv $VENV"
    if ! python3 -m venv "$VENV" 2>/dev/null; then
        rm -rf "$VENV"
        apt_install python3-venv
        python3 -m venv "$VENV"
    fi
fi
"$VENV/bin/python" -m pip install -q --disable-pip-version-check \
    -r "$CONTRACT_DIR/requirements.txt" -c "$CONTRACT_DIR/constraints.txt"

(cd "$CONTRACT_DIR" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)

contract_build
log "tools ready: $(/usr/bin/chromium --version 2>/dev/null | head -n 1); $("$VENV/bin/schemathesis" --version); openapi-python-client $("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("openapi-python-client"))'); node $(node --version)"
