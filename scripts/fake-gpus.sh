#!/usr/bin/env bash
# Give this test host's engine fake per-device GPU resources, as `swarmai nodes
# config` prints them for a node with GPUs "0" and "1", so the real Swarm
# scheduler enforces swarmai's GPU reservations in the e2e tests.
#
# Only the scheduler side is real here (no NVIDIA runtime exists on this
# machine): ENVIRONMENT.md section 5.  Idempotent: dockerd is restarted only
# when /etc/docker/daemon.json actually changes.
set -euo pipefail
cd "$(dirname "$0")/.."

host=$(docker info --format '{{.Name}}')
stack=$(mktemp --suffix .yaml)
trap 'rm -f "$stack"' EXIT
cat > "$stack" <<YAML
version: 1
name: fakegpus
nodes: {"$host": {gpus: ["0", "1"]}}
models: [{name: probe, runtime: fastapi, model: "models:/probe@production"}]
YAML

changed=$(.venv/bin/swarmai nodes config "$stack" --output json | .venv/bin/python -c '
import json, pathlib, sys
fragment = json.load(sys.stdin)[sys.argv[1]]["daemon_json"]
path = pathlib.Path("/etc/docker/daemon.json")
config = json.loads(path.read_text()) if path.exists() else {}
wanted = {**config, "node-generic-resources": fragment["node-generic-resources"]}
if wanted != config:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(wanted, indent=2) + "\n")
    print("yes")
' "$host")

if [ "$changed" = "yes" ]; then
  echo "fake-gpus: node-generic-resources set for $host; restarting dockerd" >&2
  # This host's engine only (its pid file): scripts/cluster.sh runs more dockerds.
  pid=$(cat /var/run/docker.pid 2>/dev/null || true)
  if [ -n "$pid" ]; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
  fi
  scripts/install-engine.sh
  # Swarm services come back after a restart; wait until the node is ready again.
  for _ in $(seq 1 60); do
    [ "$(docker node ls --format '{{.Status}}' 2>/dev/null | head -n 1)" = "Ready" ] && break
    sleep 1
  done
fi
docker node inspect self --format '{{json .Description.Resources.GenericResources}}' >&2
