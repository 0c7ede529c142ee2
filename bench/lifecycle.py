"""Deploy, re-deploy and remove at the engine's pace: swarmai against the engine's commands.

One run, one small stack (Traefik, MLflow on SQLite, SeaweedFS, one FastAPI
model), each swarmai command timed beside what the engine does with the very
files swarmai rendered (its state directory), in the same run:

swarm
- unchanged `swarmai deploy`   vs `docker stack deploy --detach` of stack.yml
  (the floor: the engine takes the file and changes nothing); target 1.5x
- `swarmai rm` (volumes kept)  vs `docker stack rm` until the stack's containers
  and networks are gone (what `rm` must wait for before a redeploy); target 1.5x
- first `swarmai deploy` (the registry's data kept, nothing running) vs a
  detached `docker stack deploy` of the same file from nothing, until the
  model answers through Traefik (the model's start included); target 2x
compose
- unchanged `swarmai up`       vs `docker compose up -d --wait` of compose.yml
- `swarmai down`               vs `docker compose down`
- first `swarmai up`           vs `docker compose up -d --wait` from nothing,
  until the model answers through Traefik
gateway
- Traefik routed vs the model server straight on its container address, at
  about half the server's saturation (wrk, a fixed rate per connection):
  target at most 1 ms more p50.

Needs the engine and images of scripts/test.sh (`swarmai images build --offline`)
and wrk. `--plots DIR` writes DIR/lifecycle-timelines.png from each swarmai
command's `--verbose` timeline.

    .venv/bin/python bench/lifecycle.py [--plots bench/results] [--seconds 6]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rollout import MAKE_MODELS, PAYLOAD, docker, wait_for_version
from rollout import STACK as ROLLOUT_STACK
from server import wrk

from swarmai.lifecycle.steps import state_directory
from swarmai.spec import load_stack

NAME = "benchlife"
PORT = 18790
# rollout.py's stack with one replica: this bench times the engine, not a roll.
STACK = ROLLOUT_STACK.replace("    replicas: 2\n", "")
assert STACK != ROLLOUT_STACK
CLI = [sys.executable, "-c", "from swarmai.cli import main; main()"]
STEP = re.compile(r"^\[\s*([\d.]+)s\] (.*)$")


def swarmai(*args: str) -> tuple[float, list[tuple[float, str]]]:
    """Run one swarmai command with ``--verbose``: its seconds and its timeline."""
    started = time.monotonic()
    done = subprocess.run([*CLI, *args, "--verbose"], capture_output=True, text=True,
                          timeout=1200, check=False)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"swarmai {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    steps = [(float(m[1]), m[2]) for m in map(STEP.match, done.stderr.splitlines()) if m]
    return seconds, [(0.0, "(until its first progress line)"), *steps, (seconds, "exit")]


def timed(command: list[str]) -> float:
    started = time.monotonic()
    subprocess.run(command, capture_output=True, text=True, check=True, timeout=1200)
    return time.monotonic() - started


def until_gone(name: str) -> None:
    """What `swarmai rm` waits for too: no container and no network of the stack left."""
    label = f"com.docker.stack.namespace={name}"
    while (docker("ps", "-aq", "--filter", f"label={label}").strip()
           or docker("network", "ls", "-q", "--filter", f"label={label}").strip()):
        time.sleep(0.2)


@dataclass(frozen=True)
class Setup:
    name: str
    stack: Path
    target: str  # "swarm" or "compose"
    port: int

    @property
    def start(self) -> str:
        return "deploy" if self.target == "swarm" else "up"

    @property
    def stop(self) -> str:
        return "rm" if self.target == "swarm" else "down"


def prepare(folder: Path, target: str) -> Setup:
    """The stack written, its registry up, v1 pushed @production, the model served."""
    name = NAME if target == "swarm" else f"{NAME}c"
    setup = Setup(name, folder / f"{name}.yaml", target,
                  PORT if target == "swarm" else PORT + 1)
    setup.stack.write_text(STACK.format(name=name, port=setup.port))
    subprocess.run([*CLI, setup.start, str(setup.stack), "--offline"], capture_output=True,
                   check=False, timeout=1200)  # starts the registry; the model is not there yet
    push = [*CLI, "models", "push", str(setup.stack), "scorer", str(folder / "v1.pkl"),
            "--alias", "production", "--offline", "-t", target]
    subprocess.run(push, capture_output=True, check=True, timeout=1200)
    swarmai(setup.start, str(setup.stack), "--offline")
    wait_for_version(setup.port, "1")
    return setup


Row = dict[str, Any]


def swarm_rows(setup: Setup, timelines: dict[str, list[tuple[float, str]]]) -> list[Row]:
    files = state_directory(load_stack(setup.stack, "swarm"), "swarm")
    detached = ["docker", "stack", "deploy", "--detach=true", "--resolve-image", "never",
                "-c", str(files / "stack.yml"), setup.name]
    ours, timelines["swarmai deploy, unchanged"] = swarmai("deploy", str(setup.stack),
                                                          "--offline")
    rows = [row("swarm: deploy, unchanged", ours, "docker stack deploy --detach",
                timed(detached), 1.5)]
    ours, timelines["swarmai rm"] = swarmai("rm", str(setup.stack))
    first, timelines["swarmai deploy, first"] = swarmai("deploy", str(setup.stack), "--offline")
    wait_for_version(setup.port, "1")
    started = time.monotonic()
    docker("stack", "rm", setup.name)
    until_gone(setup.name)
    rows.append(row("swarm: rm", ours, "docker stack rm, until gone",
                    time.monotonic() - started, 1.5))
    # `--detach=false` would be the natural floor, but here it waits on past the
    # point where every task runs healthy (minutes): the floor is the detached
    # deploy until the route answers, which is when a user's deploy is done.
    started = time.monotonic()
    timed(detached)
    wait_for_version(setup.port, "1")
    rows.append(row("swarm: deploy, first", first, "detached deploy until it answers",
                    time.monotonic() - started, 2.0))
    return rows


def compose_rows(setup: Setup, timelines: dict[str, list[tuple[float, str]]]) -> list[Row]:
    files = state_directory(load_stack(setup.stack, "compose"), "compose")
    compose = ["docker", "compose", "-p", setup.name, "--project-directory", str(files),
               "-f", str(files / "compose.yml")]
    ours, timelines["swarmai up, unchanged"] = swarmai("up", str(setup.stack), "--offline")
    floor = timed([*compose, "up", "-d", "--wait"])
    rows = [row("compose: up, unchanged", ours, "docker compose up -d --wait", floor, 1.5)]
    ours, timelines["swarmai down"] = swarmai("down", str(setup.stack))
    first, timelines["swarmai up, first"] = swarmai("up", str(setup.stack), "--offline")
    wait_for_version(setup.port, "1")
    rows.append(row("compose: down", ours, "docker compose down",
                    timed([*compose, "down"]), 1.5))
    started = time.monotonic()
    timed([*compose, "up", "-d", "--wait"])
    wait_for_version(setup.port, "1")
    rows.append(row("compose: up, first", first, "compose up -d --wait until it answers",
                    time.monotonic() - started, 2.0))
    return rows


def row(what: str, ours: float, floor_name: str, floor: float, target: float) -> Row:
    return {"what": what, "swarmai_s": round(ours, 2), "floor": floor_name,
            "floor_s": round(floor, 2), "ratio": round(ours / floor, 2), "target": target}


PACED = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = {body}
function delay() return {delay_ms} end
"""


def gateway_rows(setup: Setup, folder: Path, seconds: float) -> list[Row]:
    """p50 through Traefik and straight to the server, at about half its saturation."""
    container = docker("ps", "-q", "--filter", f"label=com.docker.compose.project={setup.name}",
                       "--filter", "label=swarmai.model=scorer").split()[0]
    networks = json.loads(docker("inspect", container))[0]["NetworkSettings"]["Networks"]
    address = next(iter(networks.values()))["IPAddress"]
    direct = f"http://{address}:8000/v1/predict"
    routed = f"http://127.0.0.1:{setup.port}/scorer/v1/predict"
    body = json.dumps(json.dumps(PAYLOAD))
    flat = folder / "flat.lua"
    flat.write_text(PACED.replace("function delay() return {delay_ms} end\n", "")
                    .format(body=body))
    saturated = wrk(direct, 64, seconds, flat)
    connections = 8
    paced = folder / "paced.lua"
    delay_ms = max(1, round(connections * 1000 / (saturated.requests_s / 2)))
    paced.write_text(PACED.format(body=body, delay_ms=delay_ms))
    rows = []
    for name, url in (("straight to the server", direct), ("through Traefik", routed)):
        wrk(url, connections, 2, paced)  # warm-up
        time.sleep(1)
        result = wrk(url, connections, seconds, paced)
        rows.append({"what": name, "requests_s": round(result.requests_s),
                     "p50_ms": result.p50_ms, "p99_ms": result.p99_ms, "errors": result.errors,
                     "saturation_s": round(saturated.requests_s)})
    return rows


def report(rows: list[Row], gateway: list[Row]) -> None:
    print(f"{'operation':26} {'swarmai s':>9}  {'floor':34} {'floor s':>8} {'ratio':>6} "
          f"{'target':>6}")
    for r in rows:
        print(f"{r['what']:26} {r['swarmai_s']:9.2f}  {r['floor']:34} {r['floor_s']:8.2f} "
              f"{r['ratio']:5.2f}x {r['target']:5.1f}x")
    if gateway:
        print(f"\ngateway at ~half of saturation ({gateway[0]['saturation_s']} req/s straight "
              f"to the server at 64 connections; 8 paced connections)")
        print(f"{'':26} {'req/s':>7} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
        for r in gateway:
            print(f"{r['what']:26} {r['requests_s']:7} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} "
                  f"{r['errors']:7}")
        added = gateway[1]["p50_ms"] - gateway[0]["p50_ms"]
        print(f"{'Traefik adds (p50)':26} {'':7} {added:8.2f} ms   target at most 1 ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=6, help="each wrk run of the gateway")
    parser.add_argument("--plots", type=Path, help="write lifecycle-timelines.png here")
    parser.add_argument("--targets", nargs="+", choices=["swarm", "compose"],
                        default=["swarm", "compose"])
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="benchlife-"))
    subprocess.run([sys.executable, "-c", MAKE_MODELS, str(folder)], check=True)
    timelines: dict[str, list[tuple[float, str]]] = {}
    rows: list[Row] = []
    gateway: list[Row] = []
    for target, measure in (("swarm", swarm_rows), ("compose", compose_rows)):
        if target not in args.targets:
            continue
        setup = prepare(folder, target)
        try:
            rows += measure(setup, timelines)
            if target == "compose":
                gateway = gateway_rows(setup, folder, args.seconds)
        finally:
            subprocess.run([*CLI, setup.stop, str(setup.stack), "--volumes"],
                           capture_output=True, check=False, timeout=1200)
    report(rows, gateway)
    if args.plots:
        from plots import timelines as plot_timelines

        print(f"wrote {plot_timelines(timelines, args.plots / 'lifecycle-timelines.png')}")
        data = args.plots / "lifecycle.json"  # the figures behind the table and the plot
        data.write_text(json.dumps({"rows": rows, "gateway": gateway, "timelines": timelines},
                                   indent=1))
        print(f"wrote {data}")


if __name__ == "__main__":
    main()
