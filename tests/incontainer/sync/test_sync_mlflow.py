"""The real MLflow path: a file-store registry, the real client and downloader.

Two versions are registered by a subprocess: 1 is a plain SavedModel artifact
(a fake saved_model.pb plus variables/, logged with log_artifacts; registered
with create_model_version, because MLflow 3's register_model refuses a runs:/
path that holds no MLmodel file), 2 an MLflow model dir of the tensorflow
flavor (MLmodel naming tf2model/).  A subprocess, so MLflow's global state never
leaks into this process.  The file store is deprecated in MLflow 3 (hence
MLFLOW_ALLOW_FILE_STORE) but needs no server.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from swarmai.incontainer.sync import MARKER, SyncSettings, sync_once
from swarmai.incontainer.sync.runner import mlflow_dependencies

REGISTER = """
import sys
from pathlib import Path
import mlflow

root = Path(sys.argv[1])
client = mlflow.MlflowClient()
client.create_registered_model("iris")


def saved_model(path, content):
    (path / "variables").mkdir(parents=True)
    (path / "saved_model.pb").write_bytes(content)
    (path / "variables" / "variables.index").write_bytes(b"index")


# Version 1: a plain SavedModel directory.
saved_model(root / "plain", b"graph v1")
with mlflow.start_run() as run:
    mlflow.log_artifacts(str(root / "plain"), artifact_path="savedmodel")
    source = mlflow.get_artifact_uri("savedmodel")
client.create_model_version("iris", source, run_id=run.info.run_id)

# Version 2: an MLflow model directory of the tensorflow flavor.
saved_model(root / "flavored" / "tf2model", b"graph v2")
(root / "flavored" / "MLmodel").write_text(
    "flavors:\\n  tensorflow:\\n    model_type: tf2-module\\n    saved_model_dir: tf2model\\n"
)
with mlflow.start_run() as run:
    mlflow.log_artifacts(str(root / "flavored"), artifact_path="model")
mlflow.register_model(f"runs:/{run.info.run_id}/model", "iris")
client.set_registered_model_alias("iris", "production", "1")
"""

FILE_STORE = {"MLFLOW_ALLOW_FILE_STORE": "true"}


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A file-store registry holding iris versions 1 (plain) and 2 (flavor), production -> 1."""
    root = tmp_path_factory.mktemp("mlflow")
    uri = (root / "mlruns").as_uri()
    env = {**os.environ, **FILE_STORE, "MLFLOW_TRACKING_URI": uri}
    subprocess.run(
        [sys.executable, "-c", textwrap.dedent(REGISTER), str(root)],
        env=env, cwd=root, check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return uri


@pytest.fixture
def file_store(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Allow the file store; undo the global tracking URI the dependencies set."""
    import mlflow

    for name, value in FILE_STORE.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    yield
    mlflow.set_tracking_uri(None)  # type: ignore[arg-type]  # None unsets; typed str upstream


def test_real_registry_alias_to_tf_serving_layout(tracking_uri: str, tmp_path: Path,
                                                  file_store: None) -> None:
    settings = SyncSettings(
        model_uri="models:/iris@production", model_name="iris", layout="tfserving",
        tracking_uri=tracking_uri, store=str(tmp_path / "store"),
        cache_dir=str(tmp_path / "cache"),
    )  # fmt: skip
    deps = mlflow_dependencies(settings)
    result = sync_once(deps.client, settings, deps.downloader)
    assert result.ok, result.error
    store = tmp_path / "store"
    assert (store / "iris" / "1" / "saved_model.pb").read_bytes() == b"graph v1"
    assert (store / "iris" / "1" / "variables" / "variables.index").is_file()
    assert (tmp_path / "cache" / "iris" / "1" / "saved_model.pb").is_file()
    assert (store / MARKER).is_file()

    deps.client.set_registered_model_alias("iris", "production", "2")
    result = sync_once(deps.client, settings, deps.downloader)
    assert (result.ok, result.version, result.changed) == (True, "2", True)
    assert (store / "iris" / "2" / "saved_model.pb").read_bytes() == b"graph v2"
    assert sorted(p.name for p in (store / "iris").iterdir()) == ["1", "2"]
    assert not (store / "iris" / "2" / "MLmodel").exists()


def test_real_registry_missing_alias(tracking_uri: str, tmp_path: Path,
                                    file_store: None) -> None:
    settings = SyncSettings(
        model_uri="models:/iris@staging", model_name="iris", layout="tfserving",
        tracking_uri=tracking_uri, store=str(tmp_path / "store"),
        cache_dir=str(tmp_path / "cache"),
    )  # fmt: skip
    deps = mlflow_dependencies(settings)
    result = sync_once(deps.client, settings, deps.downloader)
    assert not result.ok
    assert "staging" in str(result.error)
    assert "not found" in str(result.error)
    assert not (tmp_path / "store").exists()
