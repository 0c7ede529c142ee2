#!/usr/bin/env bash
# The one test command: install everything a fresh machine lacks, then run
# every check CI runs.  Safe to re-run: each step skips what is already done.
#
#   scripts/test.sh              # everything
#   scripts/test.sh tests/spec   # extra arguments go to pytest
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*" >&2; }

log "Docker engine, Compose v2, buildx and a one-node swarm"
scripts/install-engine.sh

log "Python environment (.venv)"
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test,server]'
export PATH="$PWD/.venv/bin:$PATH"

log "ruff and mypy --strict"
ruff check swarmai tests bench scripts
mypy --strict swarmai

log "pytest"
pytest -q -p no:cacheprovider "$@"
