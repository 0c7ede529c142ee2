"""`swarmai logs` checked on a running two-replica FastAPI model (test_plan.py runs
these on the stacks it deployed, on Compose and on the one-node Swarm): both
replicas' lines, prefixed with model and replica (and node on Swarm), their
start-up line among them; --since; --follow shows the requests sent while it
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

from lifecycle import swarmai
from test_promotion import PAYLOAD


def predict(port: int, route: str, requests: int) -> None:
    for _ in range(requests):
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}{route}/v1/predict", data=json.dumps(PAYLOAD).encode(),
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200


def node_prefix(target: str) -> str:
    """``@HOSTNAME`` of this one-node swarm; "" on Compose."""
    if target == "compose":
        return ""
    from swarmai.engine import Engine

    return "@" + str(Engine.from_env().api.info()["Name"])


_WITH_CTRL_C = ("import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
                "from swarmai.cli import main; main()")


def follow(stack: Path, target: str, port: int,
           route: str) -> subprocess.CompletedProcess[str]:
    """``logs -f --tail 0`` while requests are sent, then Ctrl-C (SIGINT)."""
    # Ctrl-C as a terminal delivers it: a run started in the background by a
    # non-interactive shell inherits SIGINT ignored, and Python then keeps it ignored.
    process = subprocess.Popen(
        [sys.executable, "-c", _WITH_CTRL_C, "logs", str(stack),
         "scorer", "-t", target, "-f", "--tail", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(4)  # the streams attached
        predict(port, route, 10)
        time.sleep(2)  # the lines arrived, and their reordering window passed
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def check_logs(stack: Path, target: str, port: int, route: str, version: str) -> None:
    """``swarmai logs`` of ``stack``'s running model ``scorer`` (two replicas serving
    ``version`` on ``route``): prefixes, start-up lines, --since, --follow."""
    before_requests = time.time()
    predict(port, route, 6)
    shown = swarmai("logs", str(stack), "scorer", "-t", target)
    assert shown.returncode == 0, shown.stderr
    print(f"\n--- swarmai logs {stack.name} scorer -t {target}\n{shown.stdout}")
    node = node_prefix(target)
    loaded = re.findall(rf"^scorer/(\d+){re.escape(node)} +\| .*loaded models:/scorer\S* as "
                        rf"scorer version {version}$", shown.stdout, re.M)
    assert len(set(loaded)) == 2, f"start-up lines of two replicas: {loaded}"
    assert all(re.match(r"scorer/\d+" + re.escape(node) + r" +\| ", line)
               for line in shown.stdout.splitlines())
    assert "POST /v1/predict" in shown.stdout

    recent = swarmai("logs", str(stack), "scorer", "-t", target, "--timestamps",
                     "--since", f"{before_requests:.3f}")
    assert recent.returncode == 0, recent.stderr
    assert "loaded models:" not in recent.stdout  # written before --since
    assert re.search(r"^scorer/\d+" + re.escape(node) + r" +\| \d{4}-\d\d-\d\dT[\d:.]+Z "
                     r".*INFO swarmai\.access: POST /v1/predict 200 ", recent.stdout,
                     re.M), recent.stdout

    followed = follow(stack, target, port, route)
    print(f"--- swarmai logs {stack.name} scorer -t {target} -f --tail 0 (then Ctrl-C)\n"
          f"{followed.stdout}{followed.stderr}")
    assert followed.returncode == 130, followed.stderr
    assert "Traceback" not in followed.stderr
    posts = [line for line in followed.stdout.splitlines() if "POST /v1/predict" in line]
    assert posts and all(re.match(r"scorer/\d+" + re.escape(node) + r" +\| ", line)
                         for line in posts)
    assert "loaded models:" not in followed.stdout  # --tail 0: only what came since
