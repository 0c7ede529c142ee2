"""TF Serving's layout: ``<store>/<model>/<version>/saved_model.pb`` plus ``variables/``.

TF Serving polls ``<store>/<model>`` every second and serves the highest
numeric folder (the rendered ``latest { num_versions: 1 }`` policy), ignoring
names that are not numbers.  Hence: a version is copied into ``.tmp-<v>`` and
renamed to ``<v>`` only when complete, and a folder newer than the synced
version is removed, or moving an alias back to an older version would never
take effect.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from pathlib import Path

from swarmai.incontainer.server.loader import COMPLETE_MARKER
from swarmai.incontainer.sync import artifacts
from swarmai.incontainer.sync.errors import LayoutError
from swarmai.incontainer.sync.store import TEMP_PREFIX, make_readable, remove, remove_leftovers

log = logging.getLogger(__name__)

SAVED_MODEL = "saved_model.pb"
# Inside each version folder: the models:/NAME/VERSION it was copied from, so
# a folder left by another registered model under the same number is not reused.
SOURCE_FILE = ".swarmai-source"
# MLmodel flavors whose ``saved_model_dir`` names the SavedModel: MLflow's own,
# and the one `swarmai models push` writes (swarmai.incontainer.registry_ops.versions).
NAMING_FLAVORS = ("tensorflow", "tf_saved_model")
# How deep below the artifact root a SavedModel is looked for: MLflow's Keras
# flavor (save_format="tf") keeps it at data/model.
_SEARCH_DEPTH = 2


class TfServingLayout:
    """Lays out SavedModels by version number and prunes old ones."""

    def __init__(self, keep_versions: int) -> None:
        self.keep_versions = keep_versions

    def present(self, store: Path, name: str, version: str, source: str) -> Path | None:
        """The version folder if it holds ``source`` complete."""
        folder = store / name / str(int(version))
        return folder if _holds(folder, source) else None

    def lay_out(self, artifacts_dir: Path, store: Path, name: str, version: str,
                source: str) -> Path:
        """Publish the artifacts' SavedModel as ``<store>/<name>/<version>``."""
        model_dir = store / name
        final = model_dir / str(int(version))
        if _holds(final, source):
            log.info("%s is already laid out at %s", source, final)
            return final
        saved_model = find_saved_model(artifacts_dir, source)
        model_dir.mkdir(parents=True, exist_ok=True)
        remove_leftovers(model_dir)
        staging = model_dir / f"{TEMP_PREFIX}{final.name}"
        shutil.copytree(saved_model, staging, symlinks=False,
                        ignore=shutil.ignore_patterns(COMPLETE_MARKER))
        (staging / SOURCE_FILE).write_text(f"{source}\n", encoding="utf-8")
        make_readable(staging)
        _publish(staging, final)
        log.info("laid out %s at %s", source, final)
        return final

    def prune(self, store: Path, name: str, version: str) -> list[Path]:
        """Remove folders newer than ``version`` and all but the newest older ones."""
        folders = _version_folders(store / name)
        doomed = set(versions_to_prune(list(folders.values()), int(version), self.keep_versions))
        removed = []
        for folder, number in sorted(folders.items(), key=lambda item: item[1]):
            if number in doomed:
                # Renamed first: TF Serving must never load a half-deleted folder.
                hidden = folder.with_name(f"{TEMP_PREFIX}old-{folder.name}-{uuid.uuid4().hex[:8]}")
                os.rename(folder, hidden)
                remove(hidden)
                log.info("pruned version folder %s", folder)
                removed.append(folder)
        return removed


def versions_to_prune(versions: list[int], current: int, keep: int) -> list[int]:
    """The policy: keep ``current`` and the ``keep - 1`` newest versions below it.

    A version above ``current`` goes: under the latest-version policy it would
    be served instead of the version the URI points at.
    """
    older = sorted(v for v in versions if v < current)
    kept = set(older[-(keep - 1):]) if keep > 1 else set()
    return sorted(v for v in versions if v != current and v not in kept)


def find_saved_model(root: Path, source: str) -> Path:
    """The SavedModel directory in a downloaded artifact tree.

    MLflow's ``tensorflow`` flavor names it in ``saved_model_dir``, as does the
    ``tf_saved_model`` flavor ``swarmai models push`` writes for a plain
    SavedModel directory; otherwise
    the shallowest directory (root, or up to two levels down) holding a
    ``saved_model.pb`` is it, provided it is the only one at that depth.
    """
    flavors = artifacts.flavors(root)
    for name in NAMING_FLAVORS:
        named = flavors.get(name, {}).get("saved_model_dir")
        if isinstance(named, str):
            candidate = artifacts.inside(root, named)
            if candidate is not None and (candidate / SAVED_MODEL).is_file():
                return candidate
    level = [root]
    for _ in range(_SEARCH_DEPTH + 1):
        found = [d for d in level if (d / SAVED_MODEL).is_file()]
        if len(found) > 1:
            names = ", ".join(str(d.relative_to(root)) for d in found)
            raise LayoutError(f"{source} holds several SavedModels ({names}); keep one")
        if found:
            return found[0]
        level = sorted(c for d in level for c in d.iterdir() if c.is_dir() and not c.is_symlink())
    raise LayoutError(_not_found(root, source))


def _not_found(root: Path, source: str) -> str:
    hint = ("log a TensorFlow SavedModel (tf.saved_model.save, or mlflow.tensorflow.log_model "
            "of a tf.Module); Keras 3 .keras files are not SavedModels: use model.export(dir)")
    return (f"{source} has no {SAVED_MODEL} at its root or up to {_SEARCH_DEPTH} levels down "
            f"({artifacts.describe(root)}); {hint}")


def _holds(folder: Path, source: str) -> bool:
    try:
        recorded = (folder / SOURCE_FILE).read_text(encoding="utf-8").strip()
    except OSError:
        return False
    return recorded == source and (folder / SAVED_MODEL).is_file()


def _version_folders(model_dir: Path) -> dict[Path, int]:
    """Every folder TF Serving would read as a version, with its number."""
    if not model_dir.is_dir():
        return {}
    return {p: int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit()}


def _publish(staging: Path, final: Path) -> None:
    """Rename ``staging`` to ``final``; a foreign folder there is swapped out first."""
    if final.exists():
        # Left by another registered model under the same number, or damaged.
        # The swap is two renames: TF Serving may miss the version for one poll.
        hidden = final.parent / f"{TEMP_PREFIX}old-{final.name}-{uuid.uuid4().hex[:8]}"
        os.rename(final, hidden)
        os.rename(staging, final)
        remove(hidden)
    else:
        os.rename(staging, final)
