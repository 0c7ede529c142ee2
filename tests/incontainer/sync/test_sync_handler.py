"""The real TorchScript path: script a model, archive it, serve it with the handler.

Needs torch (the local CPU wheel; skipped without it) and torch-model-archiver
(required in CI).  TorchServe itself is not run: the handler is loaded from
the extracted .mar the way TorchServe's model loader does (a module-level
``handle(data, context)``, called once with ``None`` to initialize).
"""

from __future__ import annotations

import importlib.util
import json
import os
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from swarmai.incontainer.sync import MARKER, command_archiver, sync_once

torch = pytest.importorskip("torch")
# TorchServe 0.12 loads TorchScript, which recent torch releases mark deprecated.
pytestmark = pytest.mark.filterwarnings(r"ignore:`torch\.jit:DeprecationWarning")

needs_archiver = pytest.mark.skipif(
    importlib.util.find_spec("model_archiver") is None and not os.environ.get("CI"),
    reason="torch-model-archiver is not installed (it must be in CI)",
)

EAGER_MODEL = """
import torch


class Doubler(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(2, 1, bias=False)

    def forward(self, x):
        return self.linear(x)
"""


class Context:
    """What TorchServe hands a handler: properties, the manifest, response status."""

    def __init__(self, model_dir: Path) -> None:
        self.system_properties = {"model_dir": str(model_dir), "gpu_id": None}
        self.manifest = json.loads((model_dir / "MAR-INF" / "MANIFEST.json").read_text())
        self.statuses: dict[int, tuple[int, str]] = {}

    def set_response_status(self, code: int = 200, phrase: str = "", idx: int = 0) -> None:
        self.statuses[idx] = (code, phrase)


def _linear() -> Any:
    """y = x0 + 2*x1 + 1, as a scripted nn.Linear."""
    model = torch.nn.Linear(2, 1)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, 2.0]]))
        model.bias.fill_(1.0)
    return model


def _serve(mar: Path, tmp_path: Path) -> tuple[ModuleType, Context]:
    """Extract ``mar`` and load its handler as TorchServe would."""
    model_dir = tmp_path / "extracted"
    with zipfile.ZipFile(mar) as archive:
        archive.extractall(model_dir)
    context = Context(model_dir)
    handler = model_dir / context.manifest["model"]["handler"]
    spec = importlib.util.spec_from_file_location(f"handler_{id(context)}", handler)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.handle(None, context)
    return module, context


@needs_archiver
def test_scripted_model_through_a_sync_pass_and_the_handler(
    registry: Any, settings: Any, tmp_path: Path
) -> None:
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    torch.jit.save(torch.jit.script(_linear()), str(artifacts / "model.pt"))
    registry.add("iris", "1", artifacts, alias="production")
    config = settings(layout="torchserve")
    result = sync_once(registry, config, registry.download, command_archiver())
    assert result.ok, result.error
    mar = Path(config.store) / "iris.mar"
    assert result.path == mar
    with zipfile.ZipFile(mar) as archive:
        manifest = json.loads(archive.read("MAR-INF/MANIFEST.json"))
    assert manifest["model"]["modelName"] == "iris"
    assert manifest["model"]["serializedFile"] == "model.pt"
    assert (Path(config.store) / MARKER).is_file()

    handler, context = _serve(mar, tmp_path)
    requests = [
        {"body": {"instances": [[1.0, 1.0], [0.0, 2.0]]}},
        {"body": b'{"data": [[3, 0]]}'},
        {"data": "[[0, 0]]"},
        {"body": b"not json"},
        {"body": {"rows": []}},
    ]
    responses = handler.handle(requests, context)
    assert responses[:3] == [
        {"predictions": [[4.0], [5.0]]},
        {"predictions": [[4.0]]},
        {"predictions": [[1.0]]},
    ]
    assert context.statuses[3] == (400, "the request body is not JSON")
    assert context.statuses[4][0] == 400
    assert "instances" in responses[4]["error"]


@needs_archiver
def test_eager_model_file_with_a_state_dict(tmp_path: Path) -> None:
    from swarmai.incontainer.sync.torchserve import TorchServeLayout

    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    (artifacts / "model.py").write_text(EAGER_MODEL)
    torch.save({"linear.weight": torch.tensor([[2.0, 0.0]])}, str(artifacts / "weights.pth"))
    layout = TorchServeLayout(command_archiver(), "1.0", None)
    mar = layout.lay_out(artifacts, tmp_path / "store", "eager", "1", "models:/eager/1")
    handler, context = _serve(mar, tmp_path)
    assert context.manifest["model"]["modelFile"] == "model.py"
    assert handler.handle([{"body": [[1.5, 9.0]]}], context) == [{"predictions": [[3.0]]}]


def test_output_rows_for_tuple_and_dict_outputs() -> None:
    from swarmai.incontainer.sync.handlers.json_tensor import output_rows

    a, b = torch.tensor([[1.0], [2.0]]), torch.tensor([3, 4])
    assert output_rows((a, b), 2) == [[[1.0], 3], [[2.0], 4]]
    assert output_rows({"y": a}, 2) == [{"y": [1.0]}, {"y": [2.0]}]
    with pytest.raises(ValueError, match="for 3 input rows"):
        output_rows(a, 3)
