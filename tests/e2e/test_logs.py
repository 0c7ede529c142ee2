"""`swarmai logs` on the real engine: a two-replica FastAPI model on Compose and on the
one-node Swarm; both replicas' lines, prefixed with model and replica (and node on
Swarm), their start-up line among them; --follow shows the requests sent while it
runs, and Ctrl-C ends it with 130 and no traceback."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from lifecycle import swarmai
from test_promotion import HOG_BYTES, MAKE_MODELS, PAYLOAD

pytestmark = pytest.mark.e2e

TARGETS = {"compose": ("e2elogsc", 18696), "swarm": ("e2elogss", 18697)}


def stack_text(name: str, port: int) -> str:
    return f"""\
version: 1
name: {name}
gateway: {{port: {port}}}
storage: {{backend: seaweedfs, bucket: models, credentials_secret: {name}-s3}}
registry: {{backend_store: sqlite}}
models:
  - name: scorer
    runtime: fastapi
    model: models:/scorer@production
    route: /scorer
    replicas: 2
"""


def predict(port: int, requests: int) -> None:
    for _ in range(requests):
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/scorer/v1/predict", data=json.dumps(PAYLOAD).encode(),
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200


def node_prefix(target: str) -> str:
    """``@HOSTNAME`` of this one-node swarm; "" on Compose."""
    if target == "compose":
        return ""
    from swarmai.engine import Engine

    return "@" + str(Engine.from_env().api.info()["Name"])


def start(target: str, stack: Path, root: Path) -> None:
    """Start the stack: the first start fails on the empty registry (but starts it);
    push v1 @production; start again."""
    starting = ("up",) if target == "compose" else ("deploy",)
    first = swarmai(*starting, str(stack), "--offline")
    assert first.returncode == 1, first.stdout + first.stderr
    pushed = swarmai("models", "push", str(stack), "scorer", str(root / "v1.pkl"),
                     "--alias", "production", "-t", target, "--offline")
    assert pushed.returncode == 0, pushed.stderr
    started = swarmai(*starting, str(stack), "--offline")
    assert started.returncode == 0, started.stderr


def follow(stack: Path, target: str, port: int) -> subprocess.CompletedProcess[str]:
    """``logs -f --tail 0`` while requests are sent, then Ctrl-C (SIGINT)."""
    process = subprocess.Popen(
        [sys.executable, "-c", "from swarmai.cli import main; main()", "logs", str(stack),
         "scorer", "-t", target, "-f", "--tail", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(4)  # the streams attached
        predict(port, 10)
        time.sleep(2)  # the lines arrived, and their reordering window passed
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_logs_name_model_replica_and_node(target: str, tmp_path: Path,
                                          offline_images: dict[str, str]) -> None:
    name, port = TARGETS[target]
    stack = tmp_path / f"{name}.yaml"
    stack.write_text(stack_text(name, port))
    stop = ("down",) if target == "compose" else ("rm",)
    swarmai(*stop, str(stack), "--volumes")  # a previous run's leftovers, if any
    subprocess.run([sys.executable, "-c", MAKE_MODELS, str(tmp_path), str(HOG_BYTES)],
                   check=True)
    try:
        start(target, stack, tmp_path)
        before_requests = time.time()
        predict(port, 6)
        shown = swarmai("logs", str(stack), "scorer", "-t", target)
        assert shown.returncode == 0, shown.stderr
        print(f"\n--- swarmai logs {stack.name} scorer -t {target}\n{shown.stdout}")
        node = node_prefix(target)
        for replica in (1, 2):
            prefix = re.escape(f"scorer/{replica}{node}")
            assert re.search(rf"^{prefix} +\| .*loaded models:/scorer\S* as scorer version 1$",
                             shown.stdout, re.M), f"no start-up line of replica {replica}"
        assert all(re.match(r"scorer/[12]" + re.escape(node) + r" +\| ", line)
                   for line in shown.stdout.splitlines())
        assert "POST /v1/predict" in shown.stdout

        recent = swarmai("logs", str(stack), "scorer", "-t", target, "--timestamps",
                         "--since", f"{before_requests:.3f}")
        assert recent.returncode == 0, recent.stderr
        assert "loaded models:" not in recent.stdout  # written before --since
        assert re.search(r"^scorer/[12]" + re.escape(node) + r" +\| \d{4}-\d\d-\d\dT[\d:.]+Z "
                         r"INFO: .*POST /v1/predict", recent.stdout, re.M), recent.stdout

        followed = follow(stack, target, port)
        print(f"--- swarmai logs {stack.name} scorer -t {target} -f --tail 0 (then Ctrl-C)\n"
              f"{followed.stdout}{followed.stderr}")
        assert followed.returncode == 130, followed.stderr
        assert "Traceback" not in followed.stderr
        posts = [line for line in followed.stdout.splitlines() if "POST /v1/predict" in line]
        assert posts and all(re.match(r"scorer/[12]" + re.escape(node) + r" +\| ", line)
                             for line in posts)
        assert "loaded models:" not in followed.stdout  # --tail 0: only what came since
    finally:
        swarmai(*stop, str(stack), "--volumes")
