"""All three runtimes on the real engine, on Swarm and on Compose, as a user runs them.

One stack serves a TensorFlow SavedModel (TF Serving's REST API, from the
TEST-ONLY stand-in in tests/tfserving_standin: the real binary cannot be
obtained here), a TorchScript model (the real TorchServe 0.12) and a
scikit-learn model (swarmai's FastAPI server), all registered in the stack's
MLflow with ``swarmai models push``:

deploy names the missing models and exits 1 -> push -> deploy -> predictions
through Traefik equal the models run by TensorFlow / torch in a container and
by numpy / scikit-learn in this process -> status shows each served version ->
metrics and API descriptions are 404 through the gateway and answer on the
stack's network -> under 4 clients, SIGKILL of one replica and then the other
of TorchServe and of swarmai's server (two each) fails no request ->
a new TF version pushed with the alias is synced and served without restarting
the server -> a TorchScript model TorchServe cannot load makes the deploy fail
with TorchServe's error -> rm/down --volumes leaves the engine as found.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from lifecycle import IRIS_COLUMNS, IRIS_ROWS, engine_snapshot, post, swarmai, wait_until
from replica_loss import kill_replicas_under_load

from swarmai.engine import Engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tfserving_standin"))
from standin_image import ensure_standin

pytestmark = pytest.mark.e2e

ROWS = [[1.0, 2.0, 3.0], [-1.0, 0.5, 4.0], [0.25, -2.0, 0.5]]
DENSE_V1 = {"weights": [[0.5, -1.0], [0.25, 2.0], [-0.75, 0.1]], "bias": [0.1, -0.2]}
DENSE_V2 = {"weights": [[1.5, 0.5], [-0.5, 1.0], [0.75, -0.25]], "bias": [0.3, 0.4]}
LINEAR = {"weight": [[1.0, 2.0, 3.0], [-1.0, 0.5, 0.25]], "bias": [0.5, -2.0]}
# The op a "newer" TorchScript file calls and this torch does not have.
MISSING_OP = "swarmai_e2e::missing_op"

SCRIPT_LINEAR = """
import json, sys, torch
spec = json.loads(sys.argv[1])
out = sys.argv[2] if len(sys.argv) > 2 else "/out"
model = torch.nn.Linear(3, 2)
with torch.no_grad():
    model.weight.copy_(torch.tensor(spec["weight"]))
    model.bias.copy_(torch.tensor(spec["bias"]))
scripted = torch.jit.script(model)
torch.jit.save(scripted, f"{out}/linear.pt")
loaded = torch.jit.load(f"{out}/linear.pt")
print(json.dumps(loaded(torch.tensor(spec["rows"])).tolist()))
"""


@dataclass(frozen=True)
class Models:
    """The models pushed to MLflow, and what each should answer for ROWS."""

    dense_v1: Path
    dense_v2: Path
    linear: Path
    broken: Path
    iris: Path
    expected: dict[str, list[list[float]]]
    iris_model: Any


@pytest.fixture(scope="module")
def standin(docker_cli: str) -> str:
    """The TF Serving stand-in image (built once; seconds when present)."""
    return ensure_standin(Engine.from_env())


def _run(docker: str, image: str, out: Path, *args: str) -> str:
    """A one-off container of ``image`` with ``out`` at /out, as this user; its stdout."""
    done = subprocess.run(
        [docker, "run", "--rm", "--network", "none", "-u", f"{os.getuid()}:{os.getgid()}",
         "-v", f"{out}:/out", "--entrypoint", "python3", image, *args],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    return lines[-1] if lines else ""


def _dense(weights: dict[str, Any]) -> list[list[float]]:
    """The SavedModel's function in numpy: relu(x @ W + b)."""
    return np.maximum(np.array(ROWS) @ np.array(weights["weights"]) + weights["bias"],
                      0).tolist()


def _break(good: Path, broken: Path) -> None:
    """A copy of a TorchScript file whose code calls an op this torch lacks."""
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(broken, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename.endswith(".py"):
                data = data.replace(b"torch.linear(", b"ops.swarmai_e2e.missing_op(")
            target.writestr(item, data)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory, docker_cli: str, standin: str,
           offline_images: dict[str, str], example_models: dict[str, Any]) -> Models:
    """Real models, made with TensorFlow and torch in their images; expected answers."""
    out = tmp_path_factory.mktemp("runtime-models")
    os.chmod(out, 0o777)
    expected: dict[str, list[list[float]]] = {}
    for name, weights in (("dense_v1", DENSE_V1), ("dense_v2", DENSE_V2)):
        _run(docker_cli, standin, out, "/opt/standin/make_model.py", "save", f"/out/{name}",
             json.dumps(weights))
        expected[name] = json.loads(_run(docker_cli, standin, out, "/opt/standin/make_model.py",
                                         "predict", f"/out/{name}", json.dumps(ROWS)))
        np.testing.assert_allclose(expected[name], _dense(weights), rtol=1e-5, atol=1e-6)
    expected["linear"] = json.loads(_run(docker_cli, offline_images["torchserve"], out, "-c",
                                         SCRIPT_LINEAR, json.dumps({**LINEAR, "rows": ROWS})))
    np.testing.assert_allclose(
        expected["linear"],
        (np.array(ROWS) @ np.array(LINEAR["weight"]).T + LINEAR["bias"]).tolist(), rtol=1e-5)
    _break(out / "linear.pt", out / "broken.pt")
    return Models(out / "dense_v1", out / "dense_v2", out / "linear.pt", out / "broken.pt",
                  example_models["paths"]["iris"], expected, example_models["iris"])


def stack_text(name: str, port: int, standin: str, *, broken: bool = False) -> str:
    # TorchServe answers its health check within seconds here; a failure shows
    # after the start period (models[].start_period_s), so keep it short.
    extra = """\
  - name: broken
    runtime: torchserve
    model: models:/broken@production
    start_period_s: 30
""" if broken else ""
    return f"""\
version: 1
name: {name}
gateway: {{port: {port}, tls: {{mode: "off"}}}}
network: {{ipvs: auto}}
storage: {{backend: seaweedfs, bucket: models, credentials_secret: {name}-s3}}
registry: {{backend_store: sqlite}}
models:
  - name: dense
    runtime: tfserving
    model: models:/dense@production
  - name: linear
    runtime: torchserve
    model: models:/linear@production
    replicas: 2
    batching: {{max_batch_size: 4, max_delay_ms: 5}}
  - name: iris
    runtime: fastapi
    model: models:/iris@production
    replicas: 2
    server: {{docs: true}}
{extra}images:
  tfserving: {standin}
"""


@dataclass(frozen=True)
class Target:
    """What differs between Swarm and Compose in this test."""

    name: str
    port: int
    up: str  # the CLI command that starts the stack
    flags: tuple[str, ...]  # extra flags for models/status
    container_label: Callable[[str], str]  # service -> label filter of its containers


SWARM = Target("e2eswarmrt", 18500, "deploy", (),
               lambda service: f"com.docker.swarm.service.name=e2eswarmrt_{service}")
COMPOSE = Target("e2ecomposert", 18510, "up", ("-t", "compose"),
                 lambda service: f"com.docker.compose.service={service}")


def _predict(port: int, path: str, payload: dict[str, Any]) -> tuple[Any, dict[str, str]]:
    status, body, headers = post(f"http://127.0.0.1:{port}{path}", payload)
    assert status == 200
    return body, headers


def _check_predictions(target: Target, models: Models, dense: str) -> None:
    """Each runtime's answer through Traefik equals the model run outside it."""
    port = target.port
    body, _ = _predict(port, "/models/dense/v1/models/dense:predict", {"instances": ROWS})
    np.testing.assert_allclose(body["predictions"], models.expected[dense], rtol=1e-5, atol=1e-6)
    body, headers = _predict(port, "/models/linear/predictions/linear", {"instances": ROWS})
    np.testing.assert_allclose(body["predictions"], models.expected["linear"], rtol=1e-5)
    assert (headers["X-Model-Name"], headers["X-Model-Version"]) == ("linear", "1")
    body, headers = _predict(port, "/models/iris/v1/predict",
                             {"dataframe_split": {"columns": IRIS_COLUMNS, "data": IRIS_ROWS}})
    frame = pd.DataFrame(IRIS_ROWS, columns=IRIS_COLUMNS)
    assert body["predictions"] == [int(v) for v in models.iris_model.predict(frame)]


def _check_array_path(target: Target) -> None:
    """The iris model (plain scikit-learn, fitted on IRIS_COLUMNS) answered the
    prediction above on the server's array path: its load said it would."""
    api = Engine.from_env().api
    for container in _containers(target, "model-iris"):
        logs = api.logs(container).decode(errors="replace")
        assert "numeric tables of its own columns skip pandas" in logs, logs[-2000:]


def _status(stack: Path, target: Target) -> dict[str, dict[str, Any]]:
    result = swarmai("status", str(stack), *target.flags, "--output", "json")
    assert result.returncode == 0, result.stderr
    return {row["service"]: row for row in json.loads(result.stdout)}


def _versions(stack: Path, target: Target) -> dict[str, str]:
    status = _status(stack, target)
    return {name: status[f"model-{name}"]["version"] for name in ("dense", "linear", "iris")}


def _containers(target: Target, service: str) -> list[str]:
    api = Engine.from_env().api
    return sorted(c["Id"] for c in api.containers(
        filters={"label": target.container_label(service)}))


def _snapshot(target: Target) -> dict[str, set[str]]:
    """What the engine holds of this stack (other stacks may come and go meanwhile)."""
    return {kind: {name for name in names if name.lstrip("/").startswith(target.name)}
            for kind, names in engine_snapshot().items()}


def _promote(stack: Path, target: Target, state: list[str], name: str, *args: str) -> None:
    promoted = swarmai("promote", str(stack), name, *args, *target.flags, "--offline", *state,
                       "-o", "json")
    assert promoted.returncode == 0, promoted.stdout + promoted.stderr


def _push(stack: Path, target: Target, name: str, path: Path) -> None:
    pushed = swarmai("models", "push", str(stack), name, str(path), "--alias", "production",
                     *target.flags, "--offline")
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr


# Paths a model server answers on the stack's network only: through the gateway 404.
PRIVATE_PATHS = ("iris/metrics", "iris/docs", "iris/openapi.json", "iris/redoc",
                 "iris/metrics/", "iris/metrics%2Fx", "linear/metrics",
                 "dense/monitoring/prometheus/metrics")
# From inside the stack's network (a model-iris container): metrics answer, and
# the FastAPI server's docs, which iris asks for (server.docs).
IN_NETWORK = ("http://model-iris:8000/metrics", "http://model-linear:8082/metrics",
              "http://model-iris:8000/docs", "http://model-iris:8000/openapi.json")


def _check_private_paths(target: Target) -> None:
    for path in PRIVATE_PATHS:
        url = f"http://127.0.0.1:{target.port}/models/{path}"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                status = response.status
        except urllib.error.HTTPError as error:
            status = error.code
        assert status == 404, (url, status)
    container = _containers(target, "model-iris")[0]
    for url in IN_NETWORK:
        fetched = Engine.from_env().api.exec_create(container, [
            "python3", "-c",
            f"import urllib.request; print(urllib.request.urlopen({url!r}, timeout=10).status)"])
        output = Engine.from_env().api.exec_start(fetched).decode()
        assert output.strip().endswith("200"), (url, output[-500:])


def _crash_replicas(target: Target) -> None:
    """SIGKILL of one replica and then the other, for TorchServe and for swarmai's
    server, under 4 clients each: no request fails (replica_loss.py)."""
    base = f"http://127.0.0.1:{target.port}/models"
    for service, url, payload in (
            ("model-iris", f"{base}/iris/v1/predict",
             {"dataframe_split": {"columns": IRIS_COLUMNS, "data": IRIS_ROWS}}),
            ("model-linear", f"{base}/linear/predictions/linear", {"instances": ROWS})):
        summary = kill_replicas_under_load(url, payload, target.container_label(service))
        assert summary["failed"] == 0, summary
        assert summary["requests"] >= 100, summary


def _lifecycle(tmp_path: Path, target: Target, models: Models, standin: str) -> None:
    stack = tmp_path / f"{target.name}.yaml"
    stack.write_text(stack_text(target.name, target.port, standin))
    state = ["--state-dir", str(tmp_path / "state")]
    if target.up == "deploy":
        remove = ["rm", str(stack), "--volumes"]
    else:
        remove = ["down", str(stack), "--volumes", *state]
    swarmai(*remove)  # a previous run's leftovers, if any
    before = _snapshot(target)
    try:
        first = swarmai(target.up, str(stack), "--offline", *state)
        assert first.returncode == 1, first.stdout + first.stderr
        flags = " ".join((*target.flags, "--offline"))
        for name in ("dense", "linear", "iris"):
            assert f"swarmai models push {stack} {name} PATH --alias production {flags}" \
                in first.stderr

        for name, path in (("dense", models.dense_v1), ("linear", models.linear),
                           ("iris", models.iris)):
            _push(stack, target, name, path)
        started = swarmai(target.up, str(stack), "--offline", *state)
        assert started.returncode == 0, started.stdout + started.stderr
        _check_predictions(target, models, "dense_v1")
        assert _versions(stack, target) == {"dense": "1", "linear": "1", "iris": "1"}
        _check_array_path(target)
        _check_private_paths(target)
        _crash_replicas(target)

        # A new TF version behind the alias: model-sync lays it out on its next
        # poll and the server loads it from the volume, in the same container.
        server = _containers(target, "model-dense")
        assert len(server) == 1
        _push(stack, target, "dense", models.dense_v2)
        wait_until(lambda: _versions(stack, target)["dense"] == "2", 120,
                   "the new TF version to be served")
        _check_predictions(target, models, "dense_v2")
        assert _containers(target, "model-dense") == server, "the TF server was restarted"
        assert _versions(stack, target) == {"dense": "2", "linear": "1", "iris": "1"}

        # swarmai promote on the external runtimes: TF Serving goes back to v1
        # (its sync step re-run now, the server kept) and rollback returns to
        # v2; TorchServe's sync and server are restarted onto the alias's version.
        _promote(stack, target, state, "dense", "--to", "production", "--version", "1")
        _check_predictions(target, models, "dense_v1")
        assert _containers(target, "model-dense") == server, "the TF server was restarted"
        rolled = swarmai("rollback", str(stack), "dense", *target.flags, "--offline", *state,
                         "-o", "json")
        assert rolled.returncode == 0, rolled.stdout + rolled.stderr
        assert json.loads(rolled.stdout)["version"] == "2"
        _check_predictions(target, models, "dense_v2")
        torchserve = _containers(target, "model-linear")
        _promote(stack, target, state, "linear", "--to", "production", "--version", "1")
        assert _containers(target, "model-linear") != torchserve, "TorchServe was not restarted"
        _check_predictions(target, models, "dense_v2")

        # A TorchScript file this torch cannot load: TorchServe's worker keeps
        # failing, the task never becomes healthy, and the deploy says why.
        _push(stack, target, "broken", models.broken)
        broken = tmp_path / "broken" / stack.name
        broken.parent.mkdir()
        broken.write_text(stack_text(target.name, target.port, standin, broken=True))
        failed = swarmai(target.up, str(broken), "--offline", *state)
        assert failed.returncode == 1, failed.stdout + failed.stderr
        assert "model-broken" in failed.stderr, failed.stderr
        assert f"Unknown builtin op: {MISSING_OP}" in failed.stderr, failed.stderr
        assert "Traceback" not in failed.stderr.split("\n", 1)[0]
        assert not _status(broken, target)["model-broken"]["healthy"]
        _check_predictions(target, models, "dense_v2")  # the others serve on
    finally:
        removed = swarmai(*remove)
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert _snapshot(target) == before


def test_runtimes_on_swarm(tmp_path: Path, models: Models, standin: str) -> None:
    _lifecycle(tmp_path, SWARM, models, standin)


def test_runtimes_on_compose(tmp_path: Path, models: Models, standin: str) -> None:
    _lifecycle(tmp_path, COMPOSE, models, standin)
