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

log "Python environment (.venv, exactly requirements.lock)"
scripts/venv.sh
export PATH="$PWD/.venv/bin:$PATH"

log "fake per-device GPU resources for the Swarm scheduler tests"
scripts/fake-gpus.sh

log "images (offline: built from Debian and PyPI; seconds when present)"
swarmai images build --offline

log "three-node swarm (one engine per network namespace) and a TLS registry"
scripts/cluster.sh up

log "ruff and mypy --strict"
ruff check swarmai tests bench scripts registry
mypy --strict swarmai

log "pytest"
# Unbuffered: if CI's clock runs out, its log still shows how far the run got.
export PYTHONUNBUFFERED=1
# Every test must run: a skipped one fails the run (tests/conftest.py).
# Two workers: the host engine's e2e tests, in file order, on one; the cluster's
# e2e tests and the unit tests on the other (the scheduler: tests/conftest.py).
SWARMAI_NO_SKIPS=1 pytest -q -p no:cacheprovider --durations=40 -n 2 "$@"
