"""Any MLflow model: a PyTorch and a LightGBM model get their own server images
(issue 16, part 3), on Compose, through the real Traefik, MLflow and S3 store.

The models are logged on the host with MLflow's own flavors
(``mlflow.pytorch``, ``mlflow.lightgbm``), so their ``requirements.txt`` is
what MLflow inferred: ``torch==2.13.0+cpu`` (the CPU wheel of the host's wheel
folder) and ``lightgbm==4.6.0`` (from PyPI), neither in swarmai's server image.

push both -> ``up`` builds one image per model, each on the server image, and
both answer with the predictions the host computes -> a second ``up`` builds
nothing -> a new version of the torch model with the same requirements
rolls in: nothing is built, the same image serves it -> a LightGBM version
recorded as needing another LightGBM is promoted: its image is built before
the alias moves, and serves it -> rm --volumes leaves the engine as found
(the images stay: a cache, reused by the next run, but for the LightGBM 4.5.0
one, removed before the promotion that must be seen building it).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lifecycle import engine_snapshot, swarmai, wait_until

from swarmai.engine import Engine

pytestmark = pytest.mark.e2e

NAME = "e2emodelimg"
PORT = 18760
STACK = f"""\
version: 1
name: {NAME}
gateway: {{port: {PORT}, tls: {{mode: "off"}}}}
storage: {{backend: seaweedfs, bucket: models, credentials_secret: {NAME}-s3}}
registry: {{backend_store: sqlite}}
models:
  - name: torchlin
    runtime: fastapi
    model: models:/torchlin@production
  - name: boost
    runtime: fastapi
    model: models:/boost@production
"""
ROWS = [[1.0, 1.0, 1.0], [0.0, 1.0, 2.0], [-1.0, 0.5, 0.25]]
FRAME = {"dataframe_split": {"columns": ["a", "b", "c"], "data": ROWS}}
# A linear layer with known weights (v1, v2), and a LightGBM classifier; the
# host's predictions of the latter are the reference.
MAKE_MODELS = """
import json, sys
import lightgbm, mlflow.lightgbm, mlflow.pytorch, numpy, pandas, torch

out, rows = sys.argv[1], json.loads(sys.argv[2])
for version, bias in (("v1", 0.5), ("v2", -2.0)):
    net = torch.nn.Linear(3, 1)
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[1.0, 2.0, 3.0]]))
        net.bias.fill_(bias)
    # Pickled, without a signature: MLflow's pytorch pyfunc then takes a
    # DataFrame as float32 (its default traced format pins a float32 tensor).
    mlflow.pytorch.save_model(net, f"{out}/torchlin-{version}", serialization_format="pickle")
rng = numpy.random.default_rng(0)
x = pandas.DataFrame(rng.normal(size=(300, 3)), columns=["a", "b", "c"])
booster = lightgbm.train({"objective": "binary", "verbose": -1},
                         lightgbm.Dataset(x, (x["a"] + x["b"] > 0).astype(int)), 20)
mlflow.lightgbm.save_model(booster, f"{out}/boost", input_example=x.head(2))
frame = pandas.DataFrame(rows, columns=["a", "b", "c"])
print(json.dumps(booster.predict(frame).tolist()))
"""


def _post(path: str, payload: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(f"http://127.0.0.1:{PORT}{path}",
                                     json.dumps(payload).encode(),
                                     {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        answer: dict[str, Any] = json.load(response)
    return answer


def _linear(bias: float) -> list[float]:
    return [row[0] + 2 * row[1] + 3 * row[2] + bias for row in ROWS]


def _flat(predictions: Any) -> list[float]:
    """A column of predictions, however the flavor shapes it ([[x]], [x], {"0": x}...)."""
    values = predictions
    if isinstance(values, dict):
        values = next(iter(values.values()))
    return [float(v[0] if isinstance(v, list) else next(iter(v.values())) if isinstance(v, dict)
                  else v) for v in values]


def _served_image(model: str) -> str:
    api = Engine.from_env().api
    (container,) = api.containers(filters={
        "label": [f"com.docker.compose.project={NAME}",
                  f"com.docker.compose.service=model-{model}"]})
    return str(container["Image"])


OLDER_LIGHTGBM = "lightgbm==4.5.0"


def _forget_images(requirements: str) -> None:
    """Remove the model images built for ``requirements`` (none is in use here)."""
    api = Engine.from_env().api
    for image in api.images(filters={"label": f"swarmai.requirements={requirements}"}):
        api.remove_image(image["Id"], force=True)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory,
          offline_images: dict[str, str]) -> Iterator[tuple[Path, list[float]]]:
    root = tmp_path_factory.mktemp("modelimg")
    path = root / f"{NAME}.yaml"
    path.write_text(STACK)
    state = ["--state-dir", str(root / "state")]
    swarmai("down", str(path), "--volumes", *state)  # a previous run's leftovers, if any
    before = engine_snapshot()
    made = subprocess.run([sys.executable, "-c", MAKE_MODELS, str(root), json.dumps(ROWS)],
                          check=True, capture_output=True, text=True)
    boost = json.loads(made.stdout.strip().splitlines()[-1])
    try:
        first = swarmai("up", str(path), "--offline", *state)  # starts the registry; no models
        assert first.returncode == 1, first.stdout + first.stderr
        for name, model in (("torchlin", "torchlin-v1"), ("boost", "boost")):
            pushed = swarmai("models", "push", str(path), name, str(root / model),
                             "--alias", "production", "-t", "compose", "--offline")
            assert pushed.returncode == 0, pushed.stdout + pushed.stderr
        yield path, boost
    finally:
        removed = swarmai("down", str(path), "--volumes", *state)
        assert removed.returncode == 0, removed.stdout + removed.stderr
        wait_until(lambda: engine_snapshot() == before, 30, "the engine as found")


def test_each_model_gets_its_requirements_and_a_rerun_builds_nothing(
        stack: tuple[Path, list[float]], offline_images: dict[str, str]) -> None:
    path, boost = stack
    state = ["--state-dir", str(path.parent / "state")]
    up = swarmai("up", str(path), "--offline", *state)
    assert up.returncode == 0, up.stdout + up.stderr
    print(up.stderr[-2000:])
    server = offline_images["fastapi"]
    images = {model: _served_image(model) for model in ("torchlin", "boost")}
    assert len(set(images.values())) == 2 and server not in images.values(), images
    labels = {m: Engine.from_env().api.inspect_image(i)["Config"]["Labels"]
              for m, i in images.items()}
    assert labels["torchlin"]["swarmai.requirements"] == "torch==2.13.0+cpu", labels
    assert labels["boost"]["swarmai.requirements"] == "lightgbm==4.6.0", labels

    body = _post("/models/torchlin/v1/predict", FRAME)
    assert _flat(body["predictions"]) == pytest.approx(_linear(0.5), rel=1e-5), body
    body = _post("/models/boost/v1/predict", FRAME)
    assert _flat(body["predictions"]) == pytest.approx(boost, rel=1e-6), body

    since = int(time.time()) - 1
    again = swarmai("up", str(path), "--offline", *state)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "building" not in again.stderr, again.stderr
    assert {m: _served_image(m) for m in images} == images
    # The models run their own images, so every container of the server image this
    # up started asked the registry: one, resolving the aliases and reading the
    # served versions' requirements together.
    started = list(Engine.from_env().api.events(
        since=since, until=int(time.time()) + 1, decode=True,
        filters={"type": "container", "event": "start", "image": server}))
    assert len(started) == 1, started


def test_a_version_with_the_same_requirements_reuses_the_image(
        stack: tuple[Path, list[float]]) -> None:
    path, _ = stack
    state = ["--state-dir", str(path.parent / "state")]
    image = _served_image("torchlin")
    # The alias moved by the push itself; the next up rolls the server to version 2.
    pushed = swarmai("models", "push", str(path), "torchlin", str(path.parent / "torchlin-v2"),
                     "--alias", "production", "-t", "compose", "--offline")
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    rolled = swarmai("up", str(path), "--offline", *state)
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert "building" not in rolled.stderr, rolled.stderr
    body = _post("/models/torchlin/v1/predict", FRAME)
    assert _flat(body["predictions"]) == pytest.approx(_linear(-2.0), rel=1e-5), body
    assert _served_image("torchlin") == image


def test_a_version_with_new_requirements_is_built_before_anything_rolls(
        stack: tuple[Path, list[float]]) -> None:
    path, boost = stack
    state = ["--state-dir", str(path.parent / "state")]
    before = _served_image("boost")
    # The same booster, recorded as needing LightGBM 4.5.0: a new set of requirements.
    older = path.parent / "boost-4.5"
    shutil.copytree(path.parent / "boost", older)
    (older / "requirements.txt").write_text(
        (older / "requirements.txt").read_text().replace("lightgbm==4.6.0", OLDER_LIGHTGBM))
    pushed = swarmai("models", "push", str(path), "boost", str(older), "-t", "compose",
                     "--offline")
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    _forget_images(OLDER_LIGHTGBM)  # an earlier run's, kept as a cache: this one must build
    promoted = swarmai("promote", str(path), "boost", "--to", "production", "--version", "2",
                       "-t", "compose", "--offline", *state)
    assert promoted.returncode == 0, promoted.stdout + promoted.stderr
    log = promoted.stderr
    assert "building swarmai/model-server:" in log, log
    assert log.index("building swarmai/model-server:") < log.index("boost@production: version"), log
    after = _served_image("boost")
    assert after != before
    labels = Engine.from_env().api.inspect_image(after)["Config"]["Labels"]
    assert labels["swarmai.requirements"] == OLDER_LIGHTGBM, labels
    body = _post("/models/boost/v1/predict", FRAME)
    assert _flat(body["predictions"]) == pytest.approx(boost, rel=1e-6), body
