"""Your own FastAPI app as a model (`runtime: app`), on the one-node Swarm, behind the
real Traefik.

The app (tests/e2e/apps/scorer) is built by this test into two images, A and B,
FROM swarmai's server image (it has Python, FastAPI and uvicorn; nothing can
be pulled here); B also starts slowly, so only the health gate keeps traffic
off it until it answers.  Two replicas of A are deployed with their own image,
port, health and ready paths, and no registry model:

A answers through its route, Docker's healthcheck on its health path passes ->
`swarmai plan` of the stack with image B shows the image change, restarting ->
under 4 clients, `swarmai deploy` of image B (the promotion): 0 failed
requests, and every answer from a few seconds after it returned comes from B
(the last old task drains meanwhile) -> `swarmai status` and `swarmai logs`
show the app -> rm --volumes leaves nothing of the stack, and the two images
are removed.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from lifecycle import engine_snapshot, post, swarmai, wait_until

from swarmai import engine as docker
from swarmai.engine import Engine

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from loadgen import Load

pytestmark = pytest.mark.e2e

NAME = "e2eapp"
PORT = 18750
BASE = f"http://127.0.0.1:{PORT}/scorer"
APP = Path(__file__).resolve().parent / "apps" / "scorer"
IMAGES = {"a": f"{NAME}/scorer:a", "b": f"{NAME}/scorer:b"}
# Image B's app binds its socket this long after it starts.
B_START_DELAY_S = 4
SERVICE = f"{NAME}_model-scorer"
# Deploy returns once the last new task is healthy; the old one it replaces is
# then told to stop, turns unready and keeps answering while the gateway drops
# it (its 1 s health check, its 2 s Swarm poll).
ROUTED_OFF_S = 3


def stack_text(image: str) -> str:
    return f"""\
version: 1
name: {NAME}
gateway: {{port: {PORT}, tls: {{mode: "off"}}}}
network: {{ipvs: auto}}
storage: {{backend: seaweedfs, bucket: models, credentials_secret: {NAME}-s3}}
models:
  - name: scorer
    runtime: app
    route: /scorer
    replicas: 2
    app: {{image: "{image}", port: 8000, health_path: /healthz, ready_path: /ready}}
    environment: {{SCORER_DEREGISTER_SECONDS: 5}}
"""


def _build(server_image: str) -> None:
    engine = Engine.from_env()
    for version, tag in IMAGES.items():
        docker.build_image(
            engine, APP, tag=tag,
            build_args={"BASE": server_image, "VERSION": version,
                        "START_DELAY": str(B_START_DELAY_S if version == "b" else 0)},
            labels={"swarmai.e2e": NAME}, progress=lambda _line: None,
            what=f"building the scorer app ({tag})")


def _ours() -> dict[str, set[str]]:
    """What of the engine this stack can leave behind (others may use the engine too)."""
    return {kind: {n for n in names if NAME in n} for kind, names in engine_snapshot().items()}


def _remove_images() -> None:
    api = Engine.from_env().api
    for tag in IMAGES.values():
        if docker.image_exists(Engine.from_env(), tag):
            api.remove_image(tag, force=True)


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory,
             offline_images: dict[str, str]) -> Iterator[Path]:
    stack = tmp_path_factory.mktemp("app") / f"{NAME}.yaml"
    stack.write_text(stack_text(IMAGES["a"]))
    swarmai("rm", str(stack), "--volumes")  # a previous run's leftovers, if any
    before = _ours()
    try:
        _build(offline_images["fastapi"])
        started = swarmai("deploy", str(stack), "--offline")
        assert started.returncode == 0, started.stdout + started.stderr
        assert f"scorer: {BASE}" in started.stdout, started.stdout
        yield stack
    finally:
        try:
            removed = swarmai("rm", str(stack), "--volumes")
            assert removed.returncode == 0, removed.stdout + removed.stderr
            wait_until(lambda: _ours() == before, 30, "the engine as found")
        finally:
            _remove_images()


def _healthy_tasks() -> list[str]:
    """The image of each running task that Docker's healthcheck calls healthy."""
    api = Engine.from_env().api
    running = api.containers(filters={"label": f"com.docker.swarm.service.name={SERVICE}",
                                      "status": "running"})
    return [str(c["Image"]) for c in running
            if api.inspect_container(c["Id"])["State"].get("Health", {}).get("Status")
            == "healthy"]


def test_an_app_is_routed_health_checked_and_promoted_by_image(deployed: Path) -> None:
    status, body, headers = post(f"{BASE}/predict", {"x": 1})
    assert (status, body, headers["X-Model-Version"]) == (200, {"version": "a", "keys": ["x"]},
                                                          "a")
    spec = Engine.from_env().api.inspect_service(SERVICE)["Spec"]["TaskTemplate"]
    assert "/healthz" in spec["ContainerSpec"]["Healthcheck"]["Test"][-1]
    assert _healthy_tasks() == [IMAGES["a"]] * 2

    deployed.write_text(stack_text(IMAGES["b"]))
    plan = swarmai("plan", str(deployed), "--offline")
    assert plan.returncode == 3, plan.stdout + plan.stderr
    assert f"~ service model-scorer (restarts)\n    image: {IMAGES['a']} -> {IMAGES['b']}" \
        in plan.stdout, plan.stdout

    with Load(f"{BASE}/predict", {"x": 1}, clients=4, timeout_s=30) as load:
        time.sleep(2)
        started = time.monotonic()
        promoted = swarmai("deploy", str(deployed), "--offline")
        done = time.monotonic()
        time.sleep(ROUTED_OFF_S + 2)
    summary, after = load.summary(), load.summary(since=done + ROUTED_OFF_S)
    print(f"promotion A -> B under 4 clients: {summary['requests']} requests, "
          f"{summary['failed']} failed, deploy {done - started:.1f} s, {summary}")
    assert promoted.returncode == 0, promoted.stdout + promoted.stderr
    assert summary["failed"] == 0, summary
    assert set(summary["versions"]) == {"a", "b"}, summary
    assert after["versions"] == {"b": after["requests"]} and after["requests"] > 0, after
    wait_until(lambda: _healthy_tasks() == [IMAGES["b"]] * 2, 30, "two tasks, both B")


def test_status_and_logs_show_the_app(deployed: Path) -> None:
    shown = swarmai("status", str(deployed), "-o", "json")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    row = next(r for r in json.loads(shown.stdout) if r["service"] == "model-scorer")
    assert (row["model"], row["running"], row["healthy"]) == ("scorer", 2, True), row
    assert row["image"].startswith(IMAGES["b"]) and row["version"] == "b", row
    logs = swarmai("logs", str(deployed), "scorer", "--tail", "5")
    assert logs.returncode == 0, logs.stdout + logs.stderr
    lines = logs.stdout.splitlines()
    assert lines and all(line.startswith("scorer/") for line in lines), lines
