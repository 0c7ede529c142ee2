"""Registry operations from the host: push, list and check models in a stack's MLflow.

MLflow is not published to the world, so the operations run in a one-off
container of swarmai's server image attached to the stack's ``models`` network
(``python -m swarmai.registry``), and answer in JSON.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swarmai.engine import Engine, missing_images, run_oneoff
from swarmai.errors import OperationError, UsageError
from swarmai.prepare import Prepared, with_images
from swarmai.registry.models import parse_uri
from swarmai.render import Serving
from swarmai.render.naming import MLFLOW_CLIENT_ENV, MODELS_NET, mlflow_url
from swarmai.spec import Stack, image_for

_INPUT = "/input"


@dataclass(frozen=True)
class RegistryTarget:
    """Where a stack's MLflow is reached from: its network, with swarmai's server image."""

    stack_name: str
    network: str
    image: str

    @classmethod
    def of(cls, stack: Stack, *, offline: bool) -> RegistryTarget:
        images = with_images(stack, offline=offline).images
        return cls(stack.name, f"{stack.name}_{MODELS_NET}", image_for(images, "fastapi"))


def check_models(engine: Engine, target: RegistryTarget, stack: Stack) -> list[dict[str, Any]]:
    """Resolve every model URI of ``stack`` in its MLflow."""
    uris = list(dict.fromkeys(m.model for m in stack.models))
    result = _registry(engine, target, ["check", *uris], what="checking models in MLflow")
    return list(result)


def push_model(
    engine: Engine, target: RegistryTarget, name: str, path: Path, alias: str | None,
    metrics: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """Register the model at ``path`` as ``name``, with evaluation ``metrics`` on its run."""
    if not path.exists():
        raise UsageError(f"{path}: no such file or directory")
    source = path.resolve()
    mount = (str(source), f"{_INPUT}/{source.name}", "ro")
    command = ["push", name, f"{_INPUT}/{source.name}"]
    if alias:
        command += ["--alias", alias]
    for key, value in (metrics or {}).items():
        command += ["--metric", f"{key}={value!r}"]
    result: dict[str, Any] = _registry(engine, target, command, volumes=[mount],
                                       what=f"pushing {path} as {name}")
    return result


def list_models(engine: Engine, target: RegistryTarget) -> list[dict[str, Any]]:
    return list(_registry(engine, target, ["list"], what="listing models in MLflow"))


def describe_model(engine: Engine, target: RegistryTarget, name: str,
                   versions: list[str] | None = None) -> dict[str, Any]:
    """``name``'s aliases, swarmai tags, and the run metrics of ``versions`` and of each alias's."""
    command = ["describe", name, *(arg for v in versions or [] for arg in ("--version", v))]
    result: dict[str, Any] = _registry(engine, target, command, what=f"describing {name}")
    return result


def move_alias(engine: Engine, target: RegistryTarget, name: str, alias: str, version: str,
               *, remember: bool = True) -> dict[str, Any]:
    """Point ``alias`` at ``version``; the answer says where it pointed before."""
    command = ["move-alias", name, alias, version, *([] if remember else ["--forget"])]
    result: dict[str, Any] = _registry(engine, target, command,
                                       what=f"moving {name}@{alias} to version {version}")
    return result


def set_model_tag(engine: Engine, target: RegistryTarget, name: str, key: str,
                  value: str | None) -> None:
    """Set (``None``: delete) one of swarmai's ``swarmai.*`` tags on registered model ``name``."""
    _registry(engine, target, ["tag", name, key, *([] if value is None else [value])],
              what=f"tagging {name}")


def preflight(engine: Engine, target: RegistryTarget, name: str, version: str,
              runtime: str) -> dict[str, Any]:
    """Download version ``version`` of ``name`` and check ``runtime`` can load it."""
    result: dict[str, Any] = _registry(
        engine, target, ["preflight", name, version, "--runtime", runtime],
        what=f"pre-flight of models:/{name}/{version}")
    return result


def missing_models_message(stack: Stack, results: list[dict[str, Any]], stack_file: Path,
                           push_flags: str = "") -> str | None:
    """None when every model resolves; else what is missing and the commands to fix it.

    ``push_flags`` are the options the push must repeat (``-t compose``, ``--offline``).
    """
    missing = [r for r in results if not r["found"]]
    if not missing:
        return None
    lines = [f"{len(missing)} model(s) of stack {stack.name} are not in its registry yet:"]
    for result in missing:
        name, alias, version = parse_uri(result["uri"])
        lines.append(f"  {result['uri']}: MLflow says: {result['error']}")
        if version is None:
            lines.append(f"    swarmai models push {stack_file} {name} PATH --alias {alias}"
                         + (f" {push_flags}" if push_flags else ""))
        else:
            lines.append(f"    (version {version} must exist: push the model, then point the "
                         f"stack at the version it gets, or use an alias)")
    lines.append("PATH: an MLflow model directory, a TensorFlow SavedModel directory (tfserving), "
                 "a TorchScript file (torchserve), or a pickled scikit-learn model or callable.")
    lines.append("Then run the same deploy again.")
    return "\n".join(lines)


def require_models(engine: Engine, prepared: Prepared, stack_file: Path,
                   push_flags: str) -> Serving:
    """What each model's URI resolves to now; raise, naming each missing model and the
    push that fixes it, unless all resolve."""
    target = RegistryTarget(prepared.stack.name, prepared.models_network, prepared.server_image)
    results = check_models(engine, target, prepared.stack)
    missing = missing_models_message(prepared.stack, results, stack_file, push_flags)
    if missing:
        raise OperationError(missing)
    return serving_from(prepared.stack, results)


def serving_from(stack: Stack, results: list[dict[str, Any]]) -> Serving:
    """FastAPI models pinned to the versions their aliases resolved to, and their canaries."""
    by_uri = {r["uri"]: r for r in results if r.get("found")}
    pinned: dict[str, str] = {}
    canaries: dict[str, str] = {}
    for model in stack.models:
        found = by_uri.get(model.model)
        if model.runtime != "fastapi" or found is None or "@" not in model.model:
            continue
        pinned[model.name] = str(found["version"])
        if found.get("canary"):
            canaries[model.name] = str(found["canary"])
    return Serving(pinned=pinned, canaries=canaries)


def _registry(engine: Engine, target: RegistryTarget, command: list[str], *,
              what: str, volumes: list[tuple[str, str, str]] | None = None) -> Any:
    if missing_images(engine, [target.image]):
        raise OperationError(f"{what}: image {target.image} is not built yet; run "
                             "`swarmai images build` (with --offline if you deploy with it)")
    result = run_oneoff(
        engine,
        target.image,
        ["python", "-m", "swarmai.registry", "--tracking-uri", mlflow_url(), *command],
        network=target.network,
        volumes=volumes or [],
        envs={"HOME": "/tmp", "GIT_PYTHON_REFRESH": "quiet", **MLFLOW_CLIENT_ENV},
        user=f"{os.getuid()}:{os.getgid()}" if volumes else None,
        what=what,
    )
    lines = result.stdout.strip().splitlines()
    try:
        answer = json.loads(lines[-1]) if lines else None
    except ValueError:
        answer = None
    if isinstance(answer, dict) and "error" in answer:
        raise OperationError(f"{what}: {answer['error']}")
    if result.return_code != 0 or answer is None:
        raise OperationError(f"{what}: the registry container failed",
                             return_code=result.return_code,
                             stderr=result.stderr or result.stdout)
    return answer
