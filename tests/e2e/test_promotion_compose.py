"""The same promotion commands on Compose: health-gated re-creation, and its gap measured.

Compose replaces a container stop-first, so requests fail while the new one
loads; this test does not pretend otherwise.  It checks what Compose can
promise (the new version serves, a version that never gets healthy puts the
alias and the servers back, rollback returns) and prints the failed-request
count so the gap is on record (bench/rollout.py --compose measures it too).
"""

from __future__ import annotations

import json
import subprocess
import sys
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
gateway: {{port: {PORT}}}
storage: {{backend: seaweedfs, bucket: models, credentials_secret: {NAME}-s3}}
registry: {{backend_store: sqlite}}
models:
  - name: scorer
    runtime: fastapi
    model: models:/scorer@production
    route: /scorer
    resources: {{memory: 700M}}
"""


def _served(requests: int) -> dict[str, Any]:
    body = json.dumps(PAYLOAD).encode()
    return summarize([send(URL, body, 30) for _ in range(requests)])


def test_promote_and_rollback_on_compose(tmp_path: Path, offline_images: dict[str, str]) -> None:
    stack = tmp_path / f"{NAME}.yaml"
    stack.write_text(STACK)
    flags = ["-t", "compose", "--offline"]
    swarmai("down", str(stack), "--volumes")
    before = engine_snapshot()
    subprocess.run([sys.executable, "-c", MAKE_MODELS, str(tmp_path), str(HOG_BYTES)],
                   check=True)
    try:
        assert swarmai("up", str(stack), "--offline").returncode == 1  # registry empty
        for name, alias in (("v1", "production"), ("v2", "staging"), ("v3", "candidate")):
            pushed = swarmai("models", "push", str(stack), "scorer", str(tmp_path / f"{name}.pkl"),
                             "--alias", alias, *flags)
            assert pushed.returncode == 0, pushed.stderr
        started = swarmai("up", str(stack), "--offline")
        assert started.returncode == 0, started.stderr
        assert _served(10)["versions"] == {"1": 10}

        with Load(URL, PAYLOAD, clients=4) as load:
            promoted = swarmai("promote", str(stack), "scorer", "--to", "production",
                               "--from", "staging", "-o", "json", *flags)
        assert promoted.returncode == 0, promoted.stderr
        assert json.loads(promoted.stdout)["action"] == "promoted"
        print(f"compose promotion under load: {load.summary()}")
        after = _served(10)
        assert (after["failed"], after["versions"]) == (0, {"2": 10}), after

        failed = swarmai("promote", str(stack), "scorer", "--to", "production", "--version", "3",
                         *flags)
        assert failed.returncode == 1, failed.stdout + failed.stderr
        assert "@production is back at version 2" in failed.stderr
        assert "Traceback" not in failed.stderr
        assert _served(10)["versions"] == {"2": 10}

        rolled = swarmai("rollback", str(stack), "scorer", "-o", "json", *flags)
        assert rolled.returncode == 0, rolled.stderr
        assert json.loads(rolled.stdout)["version"] == "1"
        assert _served(10)["versions"] == {"1": 10}
    finally:
        swarmai("down", str(stack), "--volumes")
    assert engine_snapshot() == before
