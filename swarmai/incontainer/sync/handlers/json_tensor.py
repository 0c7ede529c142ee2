"""swarmai's default TorchServe handler: JSON rows in, JSON predictions out.

Bundled into every ``.mar`` whose artifacts ship no ``handler.py``.  TorchServe's
built-in handlers are for images and text; a tabular or tensor model needs
this.  It runs inside TorchServe's Python worker (torch present, swarmai
absent), so it imports nothing from swarmai and keeps to Python 3.9 syntax.

One request body is one of (TF Serving's row format first)::

    {"instances": [[1.0, 2.0], ...]}   {"inputs": ...}   {"data": ...}   [[1.0, 2.0], ...]

Its rows become one float32 tensor; rows of all requests in a TorchServe batch
are run together.  The answer is ``{"predictions": [...]}``, one entry per row.
A malformed request gets a 400 of its own instead of failing its batch.

A request without a body (``GET /predictions/<model>``) is answered with what
is served: ``{"name": ..., "version": ..., "source": ...}`` from the
``swarmai-model.json`` model-sync puts into the archive.  Every response
carries ``X-Model-Name`` and ``X-Model-Version`` (the MLflow version), like
swarmai's FastAPI server.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import os
from typing import Any

# Typed as Any on purpose: swarmai's checks run where torch may be absent.
torch: Any = importlib.import_module("torch")

PAYLOAD_KEYS = ("instances", "inputs", "data")
# Written into the archive by model-sync: the MLflow version the archive holds.
MODEL_INFO = "swarmai-model.json"


class JsonTensorHandler:
    """Loads the archive's model once, then answers batches of JSON requests."""

    def __init__(self) -> None:
        self.model: Any = None
        self.device: Any = None
        self.info: dict[str, str] = {}
        self.initialized = False

    def initialize(self, context: Any) -> None:
        """Load TorchScript (or model.py plus a state dict) onto the worker's device."""
        properties = context.system_properties
        gpu = properties.get("gpu_id")
        cuda = gpu is not None and torch.cuda.is_available()
        self.device = torch.device(f"cuda:{gpu}" if cuda else "cpu")
        manifest = context.manifest["model"]
        model_dir = properties.get("model_dir")
        self.info = _model_info(model_dir, manifest)
        weights = os.path.join(model_dir, manifest["serializedFile"])
        model_file = manifest.get("modelFile")
        try:
            if model_file:
                self.model = _load_eager(os.path.join(model_dir, model_file), weights,
                                         self.device)
            else:
                self.model = torch.jit.load(weights, map_location=self.device)
        except Exception as error:
            # torch's messages run over many lines (source excerpts); TorchServe
            # logs each line apart, so the cause gets a line of its own.
            raise RuntimeError(
                f"model {self.info.get('name', '?')} version {self.info.get('version', '?')} "
                f"failed to load {manifest['serializedFile']}: {_first_line(error)}"
            ) from error
        self.model.eval()
        self.initialized = True

    def handle(self, data: list[Any], context: Any) -> list[Any]:
        """One response per request, in order; a bad request answers 400 alone."""
        responses: list[Any] = [None] * len(data)
        batch: list[tuple[int, list[Any]]] = []
        for index, request in enumerate(data):
            _set_headers(context, index, self.info)
            if _no_body(request):
                responses[index] = dict(self.info)
                continue
            try:
                batch.append((index, request_rows(request)))
            except ValueError as error:
                responses[index] = {"error": str(error)}
                _set_status(context, 400, str(error), index)
        if batch:
            self._predict(batch, responses)
        return responses

    def _predict(self, batch: list[tuple[int, list[Any]]], responses: list[Any]) -> None:
        rows = [row for _, request_rows_ in batch for row in request_rows_]
        inputs = torch.as_tensor(rows, dtype=torch.float32, device=self.device)
        with torch.inference_mode():
            outputs = output_rows(self.model(inputs), len(rows))
        start = 0
        for index, request_rows_ in batch:
            responses[index] = {"predictions": outputs[start:start + len(request_rows_)]}
            start += len(request_rows_)


def request_rows(request: Any) -> list[Any]:
    """The input rows of one TorchServe request (its "body" or "data" field)."""
    body = request.get("body", request.get("data")) if isinstance(request, dict) else request
    if isinstance(body, (bytes, bytearray)):
        body = body.decode("utf-8")
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            raise ValueError("the request body is not JSON") from None
    if isinstance(body, dict):
        key = next((k for k in PAYLOAD_KEYS if k in body), None)
        if key is None:
            raise ValueError(f"the JSON body needs one of {', '.join(PAYLOAD_KEYS)}")
        body = body[key]
    if not isinstance(body, list) or not body:
        raise ValueError("the input must be a non-empty list of rows")
    return body


def output_rows(output: Any, count: int) -> list[Any]:
    """The model's output as ``count`` JSON-ready rows (a tensor, tuple or dict of them)."""
    if isinstance(output, dict):
        columns = {k: output_rows(v, count) for k, v in output.items()}
        return [{k: column[i] for k, column in columns.items()} for i in range(count)]
    if isinstance(output, (tuple, list)):
        parts = [output_rows(part, count) for part in output]
        return [[part[i] for part in parts] for i in range(count)]
    rows = output.detach().cpu().tolist()
    if not isinstance(rows, list) or len(rows) != count:
        raise ValueError(f"the model returned {output.shape} for {count} input rows")
    return rows


def _load_eager(model_file: str, weights: str, device: Any) -> Any:
    spec = importlib.util.spec_from_file_location("swarmai_model", model_file)
    if spec is None or spec.loader is None:
        raise ValueError(f"cannot import {model_file}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    classes = [
        c for _, c in inspect.getmembers(module, inspect.isclass)
        if issubclass(c, torch.nn.Module) and c.__module__ == module.__name__
    ]  # fmt: skip
    if len(classes) != 1:
        raise ValueError(f"{model_file} must define exactly one nn.Module, found {len(classes)}")
    model: Any = classes[0]()
    model.load_state_dict(torch.load(weights, map_location=device, weights_only=True))
    return model.to(device)


def _model_info(model_dir: str, manifest: dict[str, Any]) -> dict[str, str]:
    """The archive's ``swarmai-model.json`` (name, version, source), or just its name."""
    info = {"name": str(manifest.get("modelName", ""))}
    try:
        with open(os.path.join(model_dir, MODEL_INFO), encoding="utf-8") as handle:
            found = json.load(handle)
    except (OSError, ValueError):
        return info
    if isinstance(found, dict):
        info.update({str(k): str(v) for k, v in found.items()})
    return info


def _first_line(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def _no_body(request: Any) -> bool:
    """A request with nothing in it: ``GET /predictions/<model>``."""
    body = request.get("body", request.get("data")) if isinstance(request, dict) else request
    if isinstance(body, (bytes, bytearray, str)):
        return not body.strip()
    return body is None


def _set_headers(context: Any, index: int, info: dict[str, str]) -> None:
    setter = getattr(context, "set_response_header", None)
    if setter is None:
        return
    setter(index, "X-Model-Name", info.get("name", ""))
    if info.get("version"):
        setter(index, "X-Model-Version", info["version"])


def _set_status(context: Any, code: int, message: str, index: int) -> None:
    setter = getattr(context, "set_response_status", None)
    if setter is not None:
        setter(code=code, phrase=message, idx=index)


_service = JsonTensorHandler()


def handle(data: Any, context: Any) -> Any:
    """TorchServe's module-level entry point: initialize once, then answer."""
    if not _service.initialized:
        _service.initialize(context)
    if data is None:
        return None
    return _service.handle(data, context)
