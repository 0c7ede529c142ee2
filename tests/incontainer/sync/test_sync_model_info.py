"""The MLflow version inside each TorchServe archive, and how the handler reports it.

model-sync archives ``swarmai-model.json`` (name, version, source) beside the
model; the bundled handler sends it as ``X-Model-Version`` on every answer and
answers ``GET /predictions/<model>`` (a request without a body) with it, which
is how ``swarmai status`` learns what a TorchServe serves.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from swarmai.incontainer.sync import ArchiveSpec, command_archiver, sync_once
from swarmai.incontainer.sync.torchserve import MODEL_INFO, TorchServeLayout, archive_spec


def test_the_archive_gets_the_model_info_as_an_extra_file(
    tmp_path: Path, archiver: Any, torchscript_file: Any
) -> None:
    artifacts = tmp_path / "artifacts"
    torchscript_file(artifacts / "model.pt")
    layout = TorchServeLayout(archiver, "1.0", None)
    layout.lay_out(artifacts, tmp_path / "store", "digits", "7", "models:/digits/7")
    spec: ArchiveSpec = archiver.specs[-1]
    info = [p for p in spec.extra_files if p.name == MODEL_INFO]
    assert len(info) == 1
    assert not info[0].exists()  # a scratch file: gone with the work directory
    assert not any(p.name.startswith(".tmp-") for p in (tmp_path / "store").iterdir())


def test_the_artifacts_own_model_info_file_is_not_archived_twice(
    tmp_path: Path, torchscript_file: Any
) -> None:
    torchscript_file(tmp_path / "model.pt")
    (tmp_path / MODEL_INFO).write_text('{"version": "forged"}')
    spec = archive_spec(tmp_path, "digits", "1.0", None, "models:/digits/1")
    assert spec.extra_files == ()


class Context:
    """TorchServe's handler context, with response headers and statuses."""

    def __init__(self, model_dir: Path) -> None:
        self.system_properties = {"model_dir": str(model_dir), "gpu_id": None}
        self.manifest = json.loads((model_dir / "MAR-INF" / "MANIFEST.json").read_text())
        self.headers: dict[int, dict[str, str]] = {}
        self.statuses: dict[int, tuple[int, str]] = {}

    def set_response_header(self, idx: int, key: str, value: str) -> None:
        self.headers.setdefault(idx, {})[key] = value

    def set_response_status(self, code: int = 200, phrase: str = "", idx: int = 0) -> None:
        self.statuses[idx] = (code, phrase)


@pytest.fixture
def served(tmp_path: Path, registry: Any, settings: Any) -> Any:
    """A function: sync a TorchScript file as ``lin`` version N, load its handler."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("model_archiver")
    import importlib.util

    def serve(model: Any, version: str) -> tuple[Any, Context]:
        artifacts = tmp_path / f"artifacts-{version}"
        artifacts.mkdir()
        torch.jit.save(torch.jit.script(model), str(artifacts / "model.pt"))
        registry.add("lin", version, artifacts, alias="production")
        config = settings(layout="torchserve", model_uri="models:/lin@production",
                          model_name="lin")
        result = sync_once(registry, config, registry.download, command_archiver())
        assert result.ok, result.error
        extracted = tmp_path / f"extracted-{version}"
        with zipfile.ZipFile(Path(config.store) / "lin.mar") as archive:
            archive.extractall(extracted)
        context = Context(extracted)
        handler = extracted / context.manifest["model"]["handler"]
        spec = importlib.util.spec_from_file_location(f"handler_{version}_{id(context)}",
                                                      handler)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.handle(None, context)
        return module, context

    return serve


def _linear() -> Any:
    import torch

    model = torch.nn.Linear(2, 1)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, 2.0]]))
        model.bias.fill_(1.0)
    return model


@pytest.mark.filterwarnings(r"ignore:`torch\.jit:DeprecationWarning")
def test_every_answer_names_the_mlflow_version(served: Any) -> None:
    handler, context = served(_linear(), "3")
    responses = handler.handle([{"body": {"instances": [[1.0, 1.0]]}}, {"body": b"nope"}],
                               context)
    assert responses[0] == {"predictions": [[4.0]]}
    for index in (0, 1):
        assert context.headers[index] == {"X-Model-Name": "lin", "X-Model-Version": "3"}
    assert context.statuses[1][0] == 400


@pytest.mark.filterwarnings(r"ignore:`torch\.jit:DeprecationWarning")
def test_a_request_without_a_body_is_told_what_is_served(served: Any) -> None:
    handler, context = served(_linear(), "12")
    answers = handler.handle([{"body": b""}, {}, {"body": bytearray(b"  ")}], context)
    assert answers == [{"name": "lin", "version": "12", "source": "models:/lin/12"}] * 3
    assert context.statuses == {}


@pytest.mark.filterwarnings(r"ignore:`torch\.jit:DeprecationWarning")
def test_a_model_that_cannot_load_says_so_on_one_line(tmp_path: Path, served: Any) -> None:
    handler_module, _ = served(_linear(), "1")
    context_dir = tmp_path / "extracted-1"
    (context_dir / "model.pt").write_bytes(b"not a TorchScript archive")
    fresh = handler_module.JsonTensorHandler()
    with pytest.raises(RuntimeError) as caught:
        fresh.initialize(Context(context_dir))
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("model lin version 1 failed to load model.pt: ")
