"""What a registry holds, as a backup records it and a restore checks it.

Every registered model with its versions (and their tags), aliases and tags:
all of them, not only swarmai's, since a restore must bring back everything.
"""

from __future__ import annotations

from typing import Any


def summary(client: Any) -> dict[str, Any]:
    """``{"models": {name: {"versions": {v: {"tags": ...}}, "aliases": ..., "tags": ...}}}``."""
    models: dict[str, Any] = {}
    for model in _all(client.search_registered_models):
        versions = _all(client.search_model_versions, f"name='{model.name}'")
        models[str(model.name)] = {
            "versions": {str(v.version): {"tags": _strings(getattr(v, "tags", None))}
                         for v in sorted(versions, key=lambda v: int(v.version))},
            "aliases": _strings(getattr(model, "aliases", None)),
            "tags": _strings(getattr(model, "tags", None)),
        }
    return {"models": dict(sorted(models.items()))}


def _all(search: Any, *args: Any) -> list[Any]:
    """Every page of an MLflow search: a backup that stopped at the first page (100
    models) would look whole and miss the rest."""
    found: list[Any] = []
    token = None
    while True:
        page = search(*args, page_token=token) if token else search(*args)
        found.extend(page)
        token = getattr(page, "token", None)
        if not token:
            return found


def _strings(found: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in sorted((found or {}).items())}
