"""The MLflow side of a promotion, through the real ``python -m swarmai.incontainer.registry_ops``.

A file-store MLflow under tmp (a subprocess per call, as the one-off
container runs it): describe with run metrics, alias moves that remember the
previous version and are idempotent, swarmai's tags, and the pre-flight that
refuses what a runtime cannot load.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

LOG_WITH_METRIC = """
import sys, mlflow, cloudpickle
from mlflow.pyfunc.model import PythonModel

class Scale(PythonModel):
    def __init__(self, factor):
        self.factor = factor
    def predict(self, context, model_input, params=None):
        return model_input * self.factor

for factor, accuracy in ((1.0, 0.80), (2.0, 0.90)):
    with mlflow.start_run():
        mlflow.log_metric("accuracy", accuracy)
        info = mlflow.pyfunc.log_model(name="model", python_model=Scale(factor))
        mlflow.register_model(info.model_uri, "scaler")
"""


def _env(store: Path) -> dict[str, str]:
    return {**os.environ, "MLFLOW_ALLOW_FILE_STORE": "true", "GIT_PYTHON_REFRESH": "quiet",
            "MLFLOW_TRACKING_URI": store.as_uri()}


def _registry(store: Path, *args: str, expect: int = 0) -> Any:
    done = subprocess.run([sys.executable, "-m", "swarmai.incontainer.registry_ops", *args],
                          env=_env(store), capture_output=True, text=True, timeout=300,
                          check=False)
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert done.returncode == expect, (answer, done.stderr[-3000:])
    return answer


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # A store directory that does not exist yet: MLflow's file store creates
    # its default experiment only then.
    root = tmp_path_factory.mktemp("mlruns") / "store"
    subprocess.run([sys.executable, "-c", LOG_WITH_METRIC], env=_env(root), cwd=root.parent,
                   check=True, capture_output=True, timeout=300)
    return root


def test_describe_reports_aliases_tags_and_each_versions_metrics(store: Path) -> None:
    _registry(store, "move-alias", "scaler", "production", "1")
    described = _registry(store, "describe", "scaler", "--version", "2")
    assert described["aliases"] == {"production": "1"}
    assert described["versions"]["1"]["metrics"] == {"accuracy": 0.8}
    assert described["versions"]["2"]["metrics"] == {"accuracy": 0.9}


def test_moving_an_alias_remembers_the_previous_version_and_is_idempotent(store: Path) -> None:
    _registry(store, "move-alias", "scaler", "production", "1")
    moved = _registry(store, "move-alias", "scaler", "production", "2")
    assert moved == {"name": "scaler", "alias": "production", "version": "2",
                     "previous": "1", "changed": True}
    again = _registry(store, "move-alias", "scaler", "production", "2")
    assert again["changed"] is False
    tags = _registry(store, "describe", "scaler")["tags"]
    # The re-run did not overwrite the version to roll back to with "2".
    assert tags["swarmai.previous.production"] == "1"
    # Recorded before the alias moved; the host clears it once the servers answer.
    assert json.loads(tags["swarmai.pending.production"]) == {"from": "1", "to": "2",
                                                              "previous": None}


def test_a_missing_version_is_refused_and_nothing_moves(store: Path) -> None:
    _registry(store, "move-alias", "scaler", "production", "1")
    answer = _registry(store, "move-alias", "scaler", "production", "9", expect=1)
    assert "9" in answer["error"]
    assert _registry(store, "describe", "scaler")["aliases"]["production"] == "1"


def test_tags_outside_swarmai_are_refused_and_ours_can_be_deleted(store: Path) -> None:
    refused = _registry(store, "tag", "scaler", "owner", "me", expect=1)
    assert "swarmai" in refused["error"]
    _registry(store, "tag", "scaler", "swarmai.canary.production", '{"version": "2"}')
    assert "swarmai.canary.production" in _registry(store, "describe", "scaler")["tags"]
    _registry(store, "tag", "scaler", "swarmai.canary.production")
    assert "swarmai.canary.production" not in _registry(store, "describe", "scaler")["tags"]


def test_preflight_loads_a_pyfunc_and_refuses_what_a_runtime_cannot_load(store: Path) -> None:
    ok = _registry(store, "preflight", "scaler", "2", "--runtime", "fastapi")
    assert ok["checked"] == "loads with mlflow.pyfunc"
    refused = _registry(store, "preflight", "scaler", "2", "--runtime", "tfserving", expect=1)
    assert "models:/scaler/2 is not a tfserving model" in refused["error"]


def test_preflight_reports_a_model_that_does_not_load(store: Path, tmp_path: Path) -> None:
    # A pickle of a callable whose module does not exist where it is loaded.
    broken = tmp_path / "model"
    broken.mkdir()
    (broken / "MLmodel").write_text(
        "flavors:\n  python_function:\n    loader_module: no_such_module_anywhere\n"
        "    python_version: 3.11.0\n", encoding="utf-8")
    (broken / "data.pkl").write_bytes(pickle.dumps({"x": 1}))
    pushed = _registry(store, "push", "broken", str(broken))
    refused = _registry(store, "preflight", "broken", pushed["version"], "--runtime", "fastapi",
                        expect=1)
    assert "does not load as an MLflow pyfunc model" in refused["error"]
    assert "no_such_module_anywhere" in refused["error"]


def test_check_reads_the_requirements_it_is_asked_for_as_requirements_reads_them(
        store: Path) -> None:
    """Deploy asks once for the aliases and the served versions' requirements."""
    checked = _registry(store, "check", "models:/scaler/2", "models:/scaler/1",
                        "models:/nothing/1", "--requirements-for", "models:/scaler/2",
                        "--requirements-for", "models:/nothing/1")
    asked, plain, missing = checked
    assert asked["found"] and plain["found"] and not missing["found"]
    assert asked["requirements"] == _registry(store, "requirements", "models:/scaler/2")
    assert asked["requirements"][0]["recorded"] and asked["requirements"][0]["lines"]
    assert "requirements" not in plain and "requirements" not in missing
