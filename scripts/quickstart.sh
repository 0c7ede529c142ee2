#!/usr/bin/env bash
# From a fresh machine to a prediction answered through the gateway, in one
# command: the Docker engine, .venv (exactly requirements.lock), every image
# (built offline from Debian and PyPI), the dev stack on Compose (stacks/dev.yaml),
# the two example models registered in its MLflow, and one real prediction.
#
#   scripts/quickstart.sh          # idempotent: a second run takes seconds
#   .venv/bin/swarmai down stacks/dev.yaml --volumes     # to remove it all again
set -euo pipefail
cd "$(dirname "$0")/.."

STACK=stacks/dev.yaml
MODELS=.swarmai-quickstart/models
log() { printf '\n== %s\n' "$*" >&2; }

log "Docker engine, Compose v2 and buildx"
scripts/install-engine.sh
log "Python environment (.venv)"
scripts/venv.sh
export PATH="$PWD/.venv/bin:$PATH"
log "images (about 6 min the first time, seconds afterwards)"
swarmai images build --offline

log "the dev stack: gateway, MLflow, SeaweedFS, two model servers"
# A registry without the models stops `up` with exit 1 after starting the
# registry, naming the missing models; anything else is a real failure.
up_log=$(mktemp)
trap 'rm -f "$up_log"' EXIT
if ! swarmai up "$STACK" --offline 2> >(tee "$up_log" >&2); then
  grep -q "not in its registry yet" "$up_log" || exit 1
  log "registering the example models (pushing the same model again reuses its version)"
  python registry/examples/make_models.py "$MODELS" >/dev/null
  for name in iris churn; do
    swarmai models push "$STACK" "$name" "$MODELS/$name.pkl" --alias production -t compose --offline
  done
  swarmai up "$STACK" --offline
fi

log "a prediction through the gateway"
request='{"dataframe_records": [{"support_calls": 3, "tenure_months": 5}]}'
# HTTPS, verified against swarmai's local CA (which issued the gateway's certificate).
ca=$(swarmai secrets ca 2>/dev/null)
curl -sS --fail-with-body --max-time 30 --cacert "$ca" https://localhost:8443/churn/v1/predict \
  -H 'Content-Type: application/json' -d "$request"
echo
cat >&2 <<HELP

Served.  Try it yourself (the gateway's certificate is from swarmai's local CA, $ca):
  curl -s --cacert $ca https://localhost:8443/churn/v1/predict \\
    -H 'Content-Type: application/json' -d '$request'
Then: .venv/bin/swarmai status $STACK -t compose, and .venv/bin/swarmai down $STACK --volumes
HELP
