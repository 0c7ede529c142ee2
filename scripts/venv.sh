#!/usr/bin/env bash
# Make (or bring up to date) .venv with exactly the locked dependency set:
# requirements.lock (hashes required, nothing resolved anew) plus swarmai itself,
# editable.  Idempotent: a venv already matching the lock costs a few seconds.
#
#   scripts/venv.sh            # then: PATH="$PWD/.venv/bin:$PATH"
set -euo pipefail
cd "$(dirname "$0")/.."

# pip is pinned too: a new pip release must not change what gets installed.
PIP_VERSION=26.3
WHEELS=${SWARMAI_WHEELS:-/opt/wheels}
TORCH_WHEEL=$(sed -n 's/^torch==\([^ ]*\).*/torch-\1-/p' requirements.lock)

if ! ls "$WHEELS/$TORCH_WHEEL"*.whl >/dev/null 2>&1; then
  echo "venv.sh: the CPU torch wheel (${TORCH_WHEEL}*.whl) is not in $WHEELS;" \
       "put it there or set SWARMAI_WHEELS (PyPI's torch is a multi-GB CUDA build)" >&2
  exit 1
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
stamp=.venv/.swarmai-lock
wanted=$(cat requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" = "$wanted" ]; then
  echo "venv.sh: .venv already matches requirements.lock" >&2
  exit 0
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check "pip==$PIP_VERSION"
.venv/bin/python -m pip install --quiet --require-hashes --no-deps \
  --find-links "$WHEELS" -r requirements.lock
.venv/bin/python -m pip install --quiet --no-deps -e .
.venv/bin/python -m pip check >&2
echo "$wanted" > "$stamp"
