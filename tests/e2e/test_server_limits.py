"""swarmai's server sheds overload and survives a hung model, on the one-node
Swarm (where a failing healthcheck kills the task), through the real Traefik.

One replica of a model that takes 0.2 s per prediction and hangs for 8 s on a
negative input, with `server: {max_queue: 4, timeout_s: 2}`:

overload with 24 clients (six times its queue): every answer is 200 or 503,
every run of Docker's healthcheck (on /readyz) meanwhile passed within its
timeout, and the task is the same one afterwards (never killed) -> load
drops to 2 clients: 100% 200 -> the hanging input answers 504 -> /readyz says
503 while the prediction is stuck and 200 again once it ends -> predictions
answer again; the per-model settings (environment, a read-only volume,
shm_size, reservations) are what the container and the service have ->
rm --volumes leaves the engine as found.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from lifecycle import engine_snapshot, swarmai, wait_until

from swarmai.engine import Engine

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from loadgen import Load

pytestmark = pytest.mark.e2e

NAME = "e2elimits"
PORT = 18700
BASE = f"http://127.0.0.1:{PORT}/slow"
PAYLOAD = {"dataframe_records": [{"x": 1.0}]}
HANG = {"dataframe_records": [{"x": -1.0}]}
# The rendered Docker probe gives /readyz this long (runtimes.py, urlopen timeout).
PROBE_TIMEOUT_S = 4.0
OVERLOAD_S = 20
STACK = f"""\
version: 1
name: {NAME}
gateway: {{port: {PORT}, tls: {{mode: "off"}}}}
network: {{ipvs: auto}}
storage: {{backend: seaweedfs, bucket: models, credentials_secret: {NAME}-s3}}
registry: {{backend_store: sqlite}}
models:
  - name: slow
    runtime: fastapi
    model: models:/slow@production
    route: /slow
    server: {{max_queue: 4, timeout_s: 2}}
    environment: {{E2E_MARK: hello}}
    volumes: [{{source: e2edata, target: /data}}]
    shm_size: 96M
    resources: {{memory: 1G, reservations: {{cpus: "0.1", memory: 256M}}}}
"""
# Run in the model's container: what the per-model settings made of it.
INSPECT = """
import json, os
try:
    open("/data/x", "w")
    writable = True
except OSError:
    writable = False
shm = os.statvfs("/dev/shm")
print(json.dumps({"mark": os.environ.get("E2E_MARK"), "data_writable": writable,
                  "data_mounted": os.path.ismount("/data"),
                  "shm_bytes": shm.f_blocks * shm.f_frsize}))
"""
MAKE_MODEL = """
import sys, time
import cloudpickle

def predict(frame):
    if float(frame["x"].iloc[0]) < 0:
        time.sleep(8)  # hangs on this input, shorter than the healthcheck's window
    time.sleep(0.2)
    return [1.0] * len(frame)

with open(sys.argv[1], "wb") as handle:
    cloudpickle.dump(predict, handle)
"""


def _get(url: str, timeout_s: float = 10) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def _post(payload: dict[str, object]) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(f"{BASE}/v1/predict", data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status), json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def _task_containers() -> list[str]:
    api = Engine.from_env().api
    return sorted(c["Id"] for c in api.containers(
        all=True, filters={"label": f"com.docker.swarm.service.name={NAME}_model-slow"}))


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory,
             offline_images: dict[str, str]) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("limits")
    stack = root / f"{NAME}.yaml"
    stack.write_text(STACK)
    swarmai("rm", str(stack), "--volumes")  # a previous run's leftovers, if any
    before = engine_snapshot()
    try:
        subprocess.run([sys.executable, "-c", MAKE_MODEL, str(root / "slow.pkl")], check=True)
        first = swarmai("deploy", str(stack), "--offline")  # the registry; the model missing
        assert first.returncode == 1, first.stdout + first.stderr
        pushed = swarmai("models", "push", str(stack), "slow", str(root / "slow.pkl"),
                         "--alias", "production", "--offline")
        assert pushed.returncode == 0, pushed.stdout + pushed.stderr
        started = swarmai("deploy", str(stack), "--offline")
        assert started.returncode == 0, started.stdout + started.stderr
        yield stack
    finally:
        removed = swarmai("rm", str(stack), "--volumes")
        assert removed.returncode == 0, removed.stdout + removed.stderr
        wait_until(lambda: engine_snapshot() == before, 30, "the engine as found")


def _instant(stamp: object) -> datetime:
    """Docker's RFC 3339 time with up to nanoseconds, to microseconds."""
    whole, _, fraction = str(stamp).rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{whole}.{(fraction + '000000')[:6]}")


def _probes(container: str, since: datetime) -> list[dict[str, object]]:
    """Docker's healthcheck runs of ``container`` that started after ``since``."""
    health = Engine.from_env().api.inspect_container(container)["State"]["Health"]
    return [run for run in health["Log"] if _instant(run["Start"]) > since]


def _seconds(run: dict[str, object]) -> float:
    return (_instant(run["End"]) - _instant(run["Start"])).total_seconds()


def test_overload_is_shed_and_a_hung_model_times_out(deployed: Path) -> None:
    task = _task_containers()
    assert len(task) == 1
    health = Engine.from_env().api.inspect_container(task[0])["State"]["Health"]
    since = _instant(health["Log"][-1]["End"])
    with Load(f"{BASE}/v1/predict", PAYLOAD, clients=24, timeout_s=30) as load:
        time.sleep(OVERLOAD_S)
    summary = load.summary()
    # Docker probes /readyz every 5 s and keeps the last 5 runs: those of the overload.
    probes = _probes(task[0], since)
    print(f"24 clients on a queue of 4: {summary}; Docker's probes meanwhile: "
          f"{[(run['ExitCode'], round(_seconds(run), 2)) for run in probes]}")
    statuses = {o.status for o in load.outcomes}
    assert statuses <= {200, 503}, summary
    assert {200, 503} <= statuses, summary  # it served and it shed
    assert len(probes) >= 2, probes
    assert all(run["ExitCode"] == 0 and _seconds(run) < PROBE_TIMEOUT_S for run in probes), probes
    assert _task_containers() == task, "the task was replaced under overload"
    time.sleep(2)

    with Load(f"{BASE}/v1/predict", PAYLOAD, clients=2) as calm:
        time.sleep(5)
    assert calm.summary()["failed"] == 0 and calm.summary()["requests"] >= 10, calm.summary()

    status, body = _post(HANG)
    assert status == 504, body
    assert "Traceback" not in json.dumps(body)
    wait_until(lambda: _get(f"{BASE}/readyz") == 503, 10, "/readyz to say the model is stuck")
    wait_until(lambda: _get(f"{BASE}/readyz") == 200, 30, "/readyz to recover")
    wait_until(lambda: _post(PAYLOAD)[0] == 200, 30, "predictions to answer again")
    assert _task_containers() == task, "the task was replaced while the model hung"


def test_per_model_settings_reach_the_container(deployed: Path) -> None:
    api = Engine.from_env().api
    container = next(c for c in api.containers(
        filters={"label": f"com.docker.swarm.service.name={NAME}_model-slow",
                 "status": "running"}))
    run = api.exec_create(container["Id"], ["python3", "-c", INSPECT])
    seen = json.loads(api.exec_start(run).decode().strip().splitlines()[-1])
    assert seen == {"mark": "hello", "data_writable": False, "data_mounted": True,
                    "shm_bytes": 96 * 1024 * 1024}, seen
    service = api.inspect_service(f"{NAME}_model-slow")
    reservations = service["Spec"]["TaskTemplate"]["Resources"]["Reservations"]
    assert reservations["MemoryBytes"] == 256 * 1024 * 1024, reservations
    assert reservations["NanoCPUs"] == 100_000_000, reservations
