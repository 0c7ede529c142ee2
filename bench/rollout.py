"""Failed requests and p99 latency while a model version rolls out, under steady load.

One run, one Swarm stack (a two-replica FastAPI model behind Traefik), 4
clients POSTing predictions through the gateway for the whole of each rollout:

1. swarmai: `swarmai promote --from staging` (start-first, health-gated,
   Traefik refreshing every 2 s, servers that keep answering while Traefik
   deregisters them);
2. naive, the baseline: the alias moved, then `docker service update
   --update-order stop-first` of the model service with Traefik's Swarm
   provider back at its default 15 s refresh;
3. with --compose: `swarmai promote -t compose` on the same model under
   Docker Compose (new containers beside the old, routed, the old drained out
   of the gateway before they stop: swarmai/lifecycle/compose_roll.py), and
   its baseline, what `docker compose up` does with a changed service
   (re-created stop-first).

Prints one row per rollout and each one's ratios against the naive baseline.
Needs the engine and images of scripts/test.sh (`swarmai images build --offline`).

    .venv/bin/python bench/rollout.py [--compose] [--clients 4]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from loadgen import Load, send

NAME = "benchroll"
PORT = 18780
STACK = """\
version: 1
name: {name}
gateway: {{port: {port}, tls: {{mode: "off"}}}}
storage: {{backend: seaweedfs, bucket: models, credentials_secret: {name}-s3}}
registry: {{backend_store: sqlite}}
models:
  - name: scorer
    runtime: fastapi
    model: models:/scorer@production
    route: /scorer
    replicas: 2
"""
MAKE_MODELS = """
import sys, cloudpickle
def constant(value):
    def predict(frame):
        return [value] * len(frame)
    return predict
for version in (1, 2, 3):
    with open(f"{sys.argv[1]}/v{version}.pkl", "wb") as handle:
        cloudpickle.dump(constant(float(version)), handle)
"""
PAYLOAD = {"dataframe_records": [{"x": 1.0}]}


def swarmai(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-c", "from swarmai.cli import main; main()", *args],
                          capture_output=True, text=True, timeout=1200, check=False)
    if check and done.returncode != 0:
        raise SystemExit(f"swarmai {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True,
                          timeout=600).stdout


def start(folder: Path, name: str, port: int, target: str) -> Path:
    """Write, register and start the stack: v1 @production, v2 @staging, v3 @next."""
    stack = folder / f"{name}.yaml"
    stack.write_text(STACK.format(name=name, port=port))
    command = "deploy" if target == "swarm" else "up"
    flags = ["--offline"] if target == "swarm" else ["--offline", "-t", "compose"]
    swarmai(command, str(stack), "--offline", check=False)  # starts the registry; models missing
    for version, alias in ((1, "production"), (2, "staging"), (3, "next")):
        swarmai("models", "push", str(stack), "scorer", str(folder / f"v{version}.pkl"),
                "--alias", alias, *flags)
    swarmai(command, str(stack), "--offline")
    return stack


def measure(label: str, port: int, clients: int, rollout: Any) -> dict[str, Any]:
    url = f"http://127.0.0.1:{port}/scorer/v1/predict"
    with Load(url, PAYLOAD, clients=clients) as load:
        time.sleep(3)
        started = time.monotonic()
        rollout()
        seconds = time.monotonic() - started
        time.sleep(3)
    return {"rollout": label, "seconds": round(seconds, 1), **load.summary()}


def naive_rollout(port: int) -> None:
    """What a user without swarmai does: update the service the default way (stop-first)."""
    docker("service", "update", "--detach", "--quiet", "--update-order", "stop-first",
           "--env-add", "MODEL_URI=models:/scorer/3", f"{NAME}_model-scorer")
    wait_for_version(port, "3")


def naive_compose_rollout(stack_name: str, port: int) -> None:
    """What `docker compose up` does with a changed model service: re-create it stop-first."""
    base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    state = base / "swarmai" / f"{stack_name}-compose"  # where `swarmai up` renders it
    document = yaml.safe_load((state / "compose.yml").read_text())
    document["services"]["model-scorer"]["environment"]["MODEL_URI"] = "models:/scorer/3"
    (state / "naive.yml").write_text(yaml.safe_dump(document))
    docker("compose", "-p", stack_name, "--project-directory", str(state), "-f",
           str(state / "naive.yml"), "up", "-d", "--wait", "model-scorer")
    wait_for_version(port, "3")


def wait_for_version(port: int, version: str, timeout_s: float = 300) -> None:
    """Until 10 answers in a row come from ``version`` (the end of a rollout, as clients see it)."""
    url = f"http://127.0.0.1:{port}/scorer/v1/predict"
    body = json.dumps(PAYLOAD).encode()
    deadline, streak = time.monotonic() + timeout_s, 0
    while streak < 10:
        if time.monotonic() > deadline:
            raise SystemExit(f"version {version} never answered on {url}")
        streak = streak + 1 if send(url, body, 10).version == version else 0
        time.sleep(0.1)


def default_refresh(state: Path) -> None:
    """Put Traefik's Swarm provider back at its default 15 s poll (outside the measurement)."""
    gateway = f"{NAME}_gateway"
    spec = json.loads(docker("service", "inspect", gateway))[0]["Spec"]
    configs = spec["TaskTemplate"]["ContainerSpec"]["Configs"]
    static = next(c for c in configs if c["File"]["Name"] == "/etc/traefik/traefik.yml")
    current = json.loads(docker("config", "inspect", static["ConfigName"]))[0]
    import base64

    document = yaml.safe_load(base64.b64decode(current["Spec"]["Data"]))
    document["providers"]["swarm"].pop("refreshSeconds", None)
    path = state / "traefik.yml"
    path.write_text(yaml.safe_dump(document))
    name = f"{NAME}_naive-traefik-{int(time.time())}"
    docker("config", "create", name, str(path))
    docker("service", "update", "--quiet", "--config-rm", static["ConfigName"],
           "--config-add", f"source={name},target=/etc/traefik/traefik.yml", gateway)
    wait_for_version(PORT, "2")  # the gateway is back


def report(rows: list[dict[str, Any]]) -> None:
    """Each row against the naive rollout on its own target (Swarm or Compose)."""
    print(f"{'rollout':44} {'requests':>8} {'failed':>7} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'seconds':>8}  vs naive: failed, p99")
    for row in rows:
        compose = "compose" in row["rollout"]
        baseline = next(r for r in rows if r["rollout"].startswith("naive")
                        and ("compose" in r["rollout"]) == compose)
        failed_ratio = row["failed"] / baseline["failed"] if baseline["failed"] else float("nan")
        p99_ratio = row["p99_ms"] / baseline["p99_ms"] if baseline["p99_ms"] else float("nan")
        print(f"{row['rollout']:44} {row['requests']:>8} {row['failed']:>7} "
              f"{row['p50_ms']:>8} {row['p99_ms']:>8} {row['seconds']:>8}  "
              f"{failed_ratio:.2f}x, {p99_ratio:.2f}x")
        if row["failures"]:
            print(f"{'':44} failures: {row['failures']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--compose", action="store_true", help="also measure Compose")
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="benchroll-"))
    subprocess.run([sys.executable, "-c", MAKE_MODELS, str(folder)], check=True)
    rows = []
    stack = start(folder, NAME, PORT, "swarm")
    try:
        rows.append(measure("swarmai promote (swarm)", PORT, args.clients, lambda: swarmai(
            "promote", str(stack), "scorer", "--to", "production", "--from", "staging",
            "--offline")))
        default_refresh(folder)
        rows.append(measure("naive service update (stop-first, 15 s poll)", PORT,
                            args.clients, lambda: naive_rollout(PORT)))
    finally:
        swarmai("rm", str(stack), "--volumes", check=False)
    if args.compose:
        compose = start(folder, f"{NAME}c", PORT + 1, "compose")
        try:
            rows.append(measure("swarmai promote -t compose", PORT + 1, args.clients,
                                lambda: swarmai("promote", str(compose), "scorer", "--to",
                                                "production", "--from", "staging",
                                                "--offline", "-t", "compose")))
            rows.append(measure("naive docker compose up (stop-first)", PORT + 1,
                                args.clients, lambda: naive_compose_rollout(f"{NAME}c",
                                                                            PORT + 1)))
        finally:
            swarmai("down", str(compose), "--volumes", check=False)
    report(rows)


if __name__ == "__main__":
    main()
