"""Reading a downloaded MLflow artifact directory without MLflow.

The layouts only need the ``flavors`` mapping of an ``MLmodel`` file to find
the runtime's files, and plain YAML is enough for that: no MLflow flavor
module (which would import TensorFlow or torch) is loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from swarmai.incontainer.sync.errors import LayoutError

# Files MLflow writes beside a model; never part of what a runtime loads.
MLFLOW_METADATA = frozenset({
    "MLmodel", "conda.yaml", "python_env.yaml", "requirements.txt", "registered_model_meta",
    "input_example.json", "serving_input_example.json",
})  # fmt: skip


def flavors(root: Path) -> dict[str, dict[str, Any]]:
    """``MLmodel``'s flavors by name; empty for a plain artifact directory."""
    path = root / "MLmodel"
    if not path.is_file():
        return {}
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise LayoutError(f"{path} is not readable YAML: {error}") from None
    found = document.get("flavors") if isinstance(document, dict) else None
    if not isinstance(found, dict):
        return {}
    return {str(name): conf if isinstance(conf, dict) else {} for name, conf in found.items()}


def inside(root: Path, relative: str) -> Path | None:
    """``root/relative`` if it stays inside ``root`` (MLmodel is data, not trusted paths)."""
    candidate = (root / relative).resolve()
    return candidate if candidate.is_relative_to(root.resolve()) else None


def describe(root: Path) -> str:
    """What a directory holds, for error messages: its flavors or top-level names."""
    names = sorted(flavors(root))
    if names:
        return f"MLmodel flavors: {', '.join(names)}"
    entries = sorted(p.name for p in root.iterdir() if not p.name.startswith("."))[:10]
    return f"top-level entries: {', '.join(entries) or 'none'}"
