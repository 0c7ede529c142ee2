"""TorchServe's layout: choosing what to archive, and publishing the .mar.

The archiver is injected (a fake that writes a zip), except in the tests
marked "real", which run torch-model-archiver itself: in CI they must run, so
they skip only where it is not installed and CI is unset.
"""

from __future__ import annotations

import json
import os
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from swarmai.incontainer.sync import ArchiveError, ArchiveSpec, LayoutError, command_archiver
from swarmai.incontainer.sync.archiver import archiver_args
from swarmai.incontainer.sync.torchserve import (
    TorchServeLayout,
    archive_spec,
    bundled_handler,
    is_torchscript,
)

SRC = "models:/iris/1"
MakeFile = Callable[[Path], Path]


def _archiver_installed() -> bool:
    try:
        import model_archiver  # type: ignore[import-untyped]  # noqa: F401
    except ImportError:
        return False
    return True


needs_archiver = pytest.mark.skipif(
    not _archiver_installed() and not os.environ.get("CI"),
    reason="torch-model-archiver is not installed (it must be in CI)",
)


def _spec(root: Path, handler: str | None = None) -> ArchiveSpec:
    return archive_spec(root, "iris", "1.0", handler, SRC)


def test_torchscript_is_told_from_torch_save(tmp_path: Path, torchscript_file: MakeFile,
                                             state_dict_file: MakeFile) -> None:
    assert is_torchscript(torchscript_file(tmp_path / "model.pt"))
    assert not is_torchscript(state_dict_file(tmp_path / "weights.pth"))
    (tmp_path / "junk.pt").write_bytes(b"not a zip")
    assert not is_torchscript(tmp_path / "junk.pt")


def test_a_torchscript_file_with_the_bundled_handler(tmp_path: Path,
                                                     torchscript_file: MakeFile) -> None:
    model = torchscript_file(tmp_path / "model.pt")
    spec = _spec(tmp_path)
    assert spec == ArchiveSpec("iris", "1.0", model, str(bundled_handler()))
    assert bundled_handler().name == "json_tensor.py"
    assert bundled_handler().is_file()


def test_mlflows_scripted_pytorch_flavor(tmp_path: Path, torchscript_file: MakeFile) -> None:
    (tmp_path / "MLmodel").write_text("flavors:\n  pytorch:\n    model_data: data\n")
    (tmp_path / "requirements.txt").write_text("torch\n")
    (tmp_path / "data" / "pickle_module_info.txt").parent.mkdir()
    (tmp_path / "data" / "pickle_module_info.txt").write_text("mlflow.pytorch.pickle_module")
    model = torchscript_file(tmp_path / "data" / "model.pth")
    spec = _spec(tmp_path)
    assert spec.serialized_file == model
    assert spec.extra_files == ()  # MLflow's metadata is left out


def test_a_pickled_pytorch_flavor_is_refused_with_a_hint(tmp_path: Path,
                                                         state_dict_file: MakeFile) -> None:
    (tmp_path / "MLmodel").write_text("flavors:\n  pytorch:\n    model_data: data\n")
    state_dict_file(tmp_path / "data" / "model.pth")
    (tmp_path / "model.py").write_text("class Net: ...\n")  # no top-level state dict
    with pytest.raises(LayoutError) as caught:
        _spec(tmp_path)
    assert "cannot load" in str(caught.value)
    assert "torch.jit.script(model)" in str(caught.value)
    assert "data/model.pth" in str(caught.value)


def test_no_weights_at_all(tmp_path: Path) -> None:
    (tmp_path / "README").write_text("hi")
    with pytest.raises(LayoutError, match=r"no TorchScript file \(no \*\.pt/\*\.pth file"):
        _spec(tmp_path)


def test_two_torchscript_files_are_refused(tmp_path: Path, torchscript_file: MakeFile) -> None:
    torchscript_file(tmp_path / "a.pt")
    torchscript_file(tmp_path / "b.pt")
    with pytest.raises(LayoutError, match=r"several TorchScript files \(a\.pt, b\.pt\)"):
        _spec(tmp_path)


def test_eager_mode_model_file_beside_a_state_dict(tmp_path: Path,
                                                   state_dict_file: MakeFile) -> None:
    weights = state_dict_file(tmp_path / "weights.pth")
    (tmp_path / "model.py").write_text("class Net: ...\n")
    spec = _spec(tmp_path)
    assert (spec.serialized_file, spec.model_file) == (weights, tmp_path / "model.py")


def test_a_shipped_handler_and_its_extra_files(tmp_path: Path,
                                               torchscript_file: MakeFile) -> None:
    torchscript_file(tmp_path / "model.pt")
    for name in ("handler.py", "labels.json", "utils.py", "MLmodel", ".hidden"):
        (tmp_path / name).write_text("x")
    spec = _spec(tmp_path, handler="image_classifier")
    assert spec.handler == str(tmp_path / "handler.py")  # the artifacts' own wins
    assert spec.extra_files == (tmp_path / "labels.json", tmp_path / "utils.py")


def test_the_configured_handler_beats_the_bundled_one(tmp_path: Path,
                                                      torchscript_file: MakeFile) -> None:
    torchscript_file(tmp_path / "model.pt")
    assert _spec(tmp_path, handler="image_classifier").handler == "image_classifier"


def test_archiver_args_are_torch_model_archivers_flags(tmp_path: Path) -> None:
    spec = ArchiveSpec("iris", "1.0", Path("/a/model.pt"), "/h/handler.py",
                       Path("/a/model.py"), (Path("/a/x.json"), Path("/a/y.txt")))
    assert archiver_args(spec, Path("/out")) == [
        "--model-name", "iris", "--version", "1.0", "--serialized-file", "/a/model.pt",
        "--handler", "/h/handler.py", "--model-file", "/a/model.py",
        "--extra-files", "/a/x.json,/a/y.txt", "--export-path", "/out", "--force",
    ]  # fmt: skip


def test_lay_out_publishes_the_mar_and_its_version(tmp_path: Path, archiver: Any,
                                                   torchscript_file: MakeFile) -> None:
    artifacts, store = tmp_path / "artifacts", tmp_path / "store"
    torchscript_file(artifacts / "model.pt")
    layout = TorchServeLayout(archiver, "1.0", None)
    path = layout.lay_out(artifacts, store, "iris", "4", "models:/iris/4")
    assert path == store / "iris.mar"
    assert (store / "iris.version").read_text() == "4\n"
    assert sorted(p.name for p in store.iterdir()) == ["iris.mar", "iris.version"]
    assert os.stat(path).st_mode & 0o004  # TorchServe runs as another user
    assert layout.present(store, "iris", "4", "models:/iris/4") == path
    assert layout.present(store, "iris", "5", "models:/iris/5") is None
    assert archiver.specs[0].version == "1.0"  # TorchServe's, not MLflow's


def test_a_failed_archive_keeps_the_previous_mar(tmp_path: Path, archiver: Any,
                                                 torchscript_file: MakeFile) -> None:
    artifacts, store = tmp_path / "artifacts", tmp_path / "store"
    torchscript_file(artifacts / "model.pt")
    TorchServeLayout(archiver, "1.0", None).lay_out(artifacts, store, "iris", "1", SRC)
    before = (store / "iris.mar").read_bytes()

    def failing(spec: ArchiveSpec, work_dir: Path) -> Path:
        (work_dir / "partial.mar").write_bytes(b"half")
        raise ArchiveError("torch-model-archiver exited 1: boom")

    with pytest.raises(ArchiveError):
        TorchServeLayout(failing, "1.0", None).lay_out(artifacts, store, "iris", "2",
                                                       "models:/iris/2")
    assert (store / "iris.mar").read_bytes() == before
    assert (store / "iris.version").read_text() == "1\n"
    assert sorted(p.name for p in store.iterdir()) == ["iris.mar", "iris.version"]


def test_a_missing_archiver_is_an_archive_error(tmp_path: Path,
                                                torchscript_file: MakeFile) -> None:
    spec = ArchiveSpec("iris", "1.0", torchscript_file(tmp_path / "model.pt"), "h")
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(ArchiveError, match="cannot run torch-model-archiver"):
        command_archiver(["/nonexistent/torch-model-archiver"])(spec, work)


@needs_archiver
def test_real_archiver_builds_a_mar(tmp_path: Path, torchscript_file: MakeFile) -> None:
    artifacts, store = tmp_path / "artifacts", tmp_path / "store"
    torchscript_file(artifacts / "model.pt")
    (artifacts / "labels.json").write_text("{}")
    layout = TorchServeLayout(command_archiver(), "1.0", None)
    mar = layout.lay_out(artifacts, store, "iris", "3", "models:/iris/3")
    manifest = _manifest(mar)
    assert manifest["model"]["modelName"] == "iris"
    assert manifest["model"]["modelVersion"] == "1.0"
    assert manifest["model"]["serializedFile"] == "model.pt"
    assert manifest["model"]["handler"] == "json_tensor.py"
    names = zipfile.ZipFile(mar).namelist()
    assert {"model.pt", "json_tensor.py", "labels.json"} <= set(names)
    assert sorted(p.name for p in store.iterdir()) == ["iris.mar", "iris.version"]


@needs_archiver
def test_real_archiver_reports_its_error(tmp_path: Path, torchscript_file: MakeFile) -> None:
    spec = ArchiveSpec("iris", "1.0", torchscript_file(tmp_path / "model.pt"),
                       str(tmp_path / "missing_handler.py"))
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(ArchiveError, match="torch-model-archiver exited 1"):
        command_archiver([sys.executable, "-m", "model_archiver.model_packaging"])(spec, work)


def _manifest(mar: Path) -> dict[str, Any]:
    with zipfile.ZipFile(mar) as archive:
        manifest: dict[str, Any] = json.loads(archive.read("MAR-INF/MANIFEST.json"))
    return manifest
