"""``swarmai models push`` of a TorchScript file and of a TensorFlow SavedModel directory.

Each is pushed with the real ``python -m swarmai.incontainer.registry_ops`` into a file-store
MLflow under tmp (in a subprocess, so MLflow's global state stays out of this
process), downloaded back as model-sync downloads it, and handed to the
runtime layouts: what push logs must be what sync lays out.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from swarmai.incontainer.registry_ops.versions import SAVED_MODEL_FLAVOR, TORCHSCRIPT_FLAVOR
from swarmai.incontainer.sync.tfserving import find_saved_model
from swarmai.incontainer.sync.torchserve import archive_spec

DOWNLOAD = """
import sys
import mlflow
print(mlflow.artifacts.download_artifacts(artifact_uri=sys.argv[1], dst_path=sys.argv[2]))
"""


def _env(store: Path) -> dict[str, str]:
    return {**os.environ, "MLFLOW_ALLOW_FILE_STORE": "true", "GIT_PYTHON_REFRESH": "quiet",
            "MLFLOW_TRACKING_URI": store.as_uri()}


def _push(store: Path, name: str, path: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "swarmai.incontainer.registry_ops", "push", name, str(path),
         "--alias", "production"],
        env=_env(store), capture_output=True, text=True, timeout=300, check=False,
    )
    answer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert done.returncode == 0, (answer, done.stderr[-2000:])
    return answer


def _download(store: Path, uri: str, target: Path) -> Path:
    done = subprocess.run([sys.executable, "-c", DOWNLOAD, uri, str(target)], env=_env(store),
                          capture_output=True, text=True, timeout=300, check=True)
    return Path(done.stdout.strip().splitlines()[-1])


def _torchscript(path: Path) -> Path:
    """A file shaped like torch.jit.save's archive (code/ and constants.pkl), without torch."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("model/data.pkl", b"pickle")
        archive.writestr("model/constants.pkl", b"pickle")
        archive.writestr("model/code/__torch__/model.py", "def forward(self, x): ...")
    return path


def _saved_model(path: Path) -> Path:
    (path / "variables").mkdir(parents=True)
    (path / "saved_model.pb").write_bytes(b"\x08\x01")
    (path / "variables" / "variables.index").write_bytes(b"index")
    (path / "fingerprint.pb").write_bytes(b"fp")
    return path


@pytest.fixture
def store(tmp_path: Path) -> Path:
    pytest.importorskip("mlflow")
    return tmp_path / "mlruns"


def test_a_torchscript_file_is_registered_for_torchserve(store: Path, tmp_path: Path) -> None:
    model = _torchscript(tmp_path / "digits.pt")
    answer = _push(store, "digits", model)
    assert (answer["version"], answer["aliases"]) == ("1", ["production"])
    assert _push(store, "digits", model)["version"] == "1"  # same content: same version

    root = _download(store, "models:/digits@production", tmp_path / "download")
    assert (root / "digits.pt").read_bytes() == model.read_bytes()
    flavors = yaml.safe_load((root / "MLmodel").read_text())["flavors"]
    assert flavors == {TORCHSCRIPT_FLAVOR: {"model_file": "digits.pt"}}
    spec = archive_spec(root, "digits", "1.0", None, "models:/digits/1")
    assert spec.serialized_file == root / "digits.pt"
    assert spec.extra_files == ()


def test_a_saved_model_directory_is_registered_for_tf_serving(store: Path,
                                                               tmp_path: Path) -> None:
    model = _saved_model(tmp_path / "export")
    assert _push(store, "dense", model)["version"] == "1"
    (model / "saved_model.pb").write_bytes(b"\x08\x02")  # a new model: a new version
    assert _push(store, "dense", model)["version"] == "2"

    root = _download(store, "models:/dense/2", tmp_path / "download")
    flavors = yaml.safe_load((root / "MLmodel").read_text())["flavors"]
    assert flavors == {SAVED_MODEL_FLAVOR: {"saved_model_dir": "saved_model"}}
    found = find_saved_model(root, "models:/dense/2")
    assert found == root / "saved_model"
    assert (found / "saved_model.pb").read_bytes() == b"\x08\x02"
    assert (found / "variables" / "variables.index").is_file()


def test_a_directory_that_is_neither_is_refused(store: Path, tmp_path: Path) -> None:
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "notes.txt").write_text("x")
    done = subprocess.run(
        [sys.executable, "-m", "swarmai.incontainer.registry_ops", "push", "junk",
         str(tmp_path / "junk")],
        env=_env(store), capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 1
    assert "nor a TensorFlow SavedModel" in json.loads(done.stdout)["error"]
