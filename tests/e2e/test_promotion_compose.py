"""The same promotion commands on Compose, with zero failed requests.

A two-replica FastAPI model behind the real Traefik, 4 clients for every
rollout (bench/loadgen.py).  swarmai rolls a Compose service start-first
(lifecycle/compose_roll.py: new containers beside the old, routed, the old
drained out of the gateway before they stop):

v1 serves -> the same `up` again restarts nothing -> promote --from staging
(v2): 0 failed -> promote v3, which never gets healthy: exit 1, the alias
and the servers back at v2, 0 failed -> rollback to v1: 0 failed -> canary
of v4 at 25%: 0 failed, its share 25% +- 7% -> --finish: 0 failed, then
only v4 -> down --volumes leaves the engine as found.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from lifecycle import engine_snapshot, swarmai
from test_promotion import HOG_BYTES, MAKE_MODELS, PAYLOAD

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from loadgen import Load, send, summarize

pytestmark = pytest.mark.e2e

NAME = "e2epromotec"
PORT = 18681
URL = f"http://127.0.0.1:{PORT}/scorer/v1/predict"
STACK = f"""\
version: 1
name: {NAME}
gateway: {{port: {PORT}, tls: {{mode: "off"}}}}
storage: {{backend: seaweedfs, bucket: models, credentials_secret: {NAME}-s3}}
registry: {{backend_store: sqlite}}
models:
  - name: scorer
    runtime: fastapi
    model: models:/scorer@production
    route: /scorer
    replicas: 2
    resources: {{memory: 700M}}
    start_period_s: 60  # v3's failure shows sooner than with the default 180
"""


def _served(requests: int) -> dict[str, Any]:
    body = json.dumps(PAYLOAD).encode()
    return summarize([send(URL, body, 30) for _ in range(requests)])


def _model_containers() -> set[str]:
    listed = subprocess.run(
        ["docker", "ps", "-q", "--filter", f"label=com.docker.compose.project={NAME}",
         "--filter", "label=com.docker.compose.service=model-scorer"],
        capture_output=True, text=True, check=True)
    return set(listed.stdout.split())


def _under_load(*args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any],
                                      dict[str, Any]]:
    """Run ``swarmai ARGS`` under 4 clients; the whole load's summary and the part
    sent after the command returned."""
    with Load(URL, PAYLOAD, clients=4) as load:
        time.sleep(1)
        result = swarmai(*args)
        done = time.monotonic()
        time.sleep(2)
    print(f"swarmai {' '.join(args[:1])} under load: {load.summary()}")
    return result, load.summary(), load.summary(since=done)


def test_promote_rollback_and_canary_on_compose_fail_no_request(
        tmp_path: Path, offline_images: dict[str, str]) -> None:
    stack = tmp_path / f"{NAME}.yaml"
    stack.write_text(STACK)
    flags = ["-t", "compose", "--offline"]
    swarmai("down", str(stack), "--volumes")
    before = engine_snapshot()
    subprocess.run([sys.executable, "-c", MAKE_MODELS, str(tmp_path), str(HOG_BYTES)],
                   check=True)
    try:
        assert swarmai("up", str(stack), "--offline").returncode == 1  # registry empty
        for name, alias in (("v1", "production"), ("v2", "staging"), ("v3", "candidate"),
                            ("v4", "challenger")):
            pushed = swarmai("models", "push", str(stack), "scorer", str(tmp_path / f"{name}.pkl"),
                             "--alias", alias, *flags)
            assert pushed.returncode == 0, pushed.stderr
        started = swarmai("up", str(stack), "--offline")
        assert started.returncode == 0, started.stderr
        assert _served(10)["versions"] == {"1": 10}
        first = _model_containers()
        assert len(first) == 2
        again = swarmai("up", str(stack), "--offline")
        assert again.returncode == 0, again.stderr
        assert "rolling" not in again.stderr
        assert _model_containers() == first  # an unchanged stack restarts nothing

        promoted, load, after = _under_load("promote", str(stack), "scorer", "--to",
                                            "production", "--from", "staging", "-o", "json",
                                            *flags)
        assert promoted.returncode == 0, promoted.stderr
        assert json.loads(promoted.stdout)["action"] == "promoted"
        assert "rolling model-scorer" in promoted.stderr
        assert load["failed"] == 0 and load["requests"] > 100, load
        assert after["versions"] == {"2": after["requests"]}, after
        assert len(_model_containers() & first) == 0 and len(_model_containers()) == 2

        failed, load, after = _under_load("promote", str(stack), "scorer", "--to", "production",
                                          "--version", "3", *flags)
        assert failed.returncode == 1, failed.stdout + failed.stderr
        assert "@production is back at version 2" in failed.stderr, failed.stderr
        assert "Traceback" not in failed.stderr
        assert load["failed"] == 0, load
        assert set(load["versions"]) == {"2"}, load
        assert len(_model_containers()) == 2

        rolled, load, after = _under_load("rollback", str(stack), "scorer", "-o", "json", *flags)
        assert rolled.returncode == 0, rolled.stderr
        assert json.loads(rolled.stdout)["version"] == "1"
        assert load["failed"] == 0, load
        assert after["versions"] == {"1": after["requests"]}, after

        canary, load, _ = _under_load("promote", str(stack), "scorer", "--to", "production",
                                      "--version", "4", "--canary", "25", "-o", "json", *flags)
        assert canary.returncode == 0, canary.stderr
        assert json.loads(canary.stdout)["action"] == "canary"
        assert load["failed"] == 0, load
        versions = _served(400)["versions"]
        assert set(versions) == {"1", "4"} and 0.18 <= versions["4"] / 400 <= 0.32, versions

        finished, load, after = _under_load("promote", str(stack), "scorer", "--to",
                                            "production", "--finish", "-o", "json", *flags)
        assert finished.returncode == 0, finished.stderr
        assert json.loads(finished.stdout)["action"] == "finished"
        assert load["failed"] == 0, load
        assert after["versions"] == {"4": after["requests"]}, after
    finally:
        swarmai("down", str(stack), "--volumes")
    assert engine_snapshot() == before
