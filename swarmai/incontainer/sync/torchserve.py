"""TorchServe's layout: ``<store>/<model>.mar`` and ``<store>/<model>.version``.

TorchServe loads the ``<model>.mar`` named in ``load_models`` once, at start,
and its management API is loopback-only inside its own container: a running
TorchServe does not notice a new archive, which is served from its next start.
The archive is replaced atomically, so a (re)starting TorchServe always finds
a whole one.  What goes into the archive:

* the serialized model: the one TorchScript file (``torch.jit.save``) among
  the ``*.pt``/``*.pth`` files, found anywhere in the artifacts (MLflow's
  ``pytorch`` flavor saves a scripted model that way too, as data/model.pth);
  or, in eager mode, ``model.py`` (one nn.Module class) beside exactly one
  top-level state-dict file.  What MLflow writes for an unscripted model (a
  pt2 export, or a pickled nn.Module) TorchServe cannot load: refused with a hint;
* the handler: the artifacts' own ``handler.py``, else
  ``SWARMAI_TORCHSERVE_HANDLER``, else swarmai's JSON-tensor handler;
* every other top-level file of the artifacts, as ``--extra-files``;
* ``swarmai-model.json``: the model's name, MLflow version and source, which
  the bundled handler reports (``X-Model-Version``, ``GET /predictions/<model>``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import tempfile
import zipfile
from importlib import resources
from pathlib import Path

from swarmai.incontainer.server.loader import COMPLETE_MARKER
from swarmai.incontainer.sync import artifacts
from swarmai.incontainer.sync.archiver import Archiver, ArchiveSpec
from swarmai.incontainer.sync.errors import ArchiveError, LayoutError
from swarmai.incontainer.sync.store import TEMP_PREFIX, make_readable, remove, remove_leftovers
from swarmai.incontainer.sync.store import write_text_atomic as write_atomic

log = logging.getLogger(__name__)

WEIGHT_SUFFIXES = (".pt", ".pth")
HANDLER_FILE = "handler.py"
MODEL_FILE = "model.py"
# Archived beside the model: what it is in MLflow (read by handlers/json_tensor.py).
MODEL_INFO = "swarmai-model.json"


def bundled_handler() -> Path:
    """swarmai's default handler, shipped as package data of swarmai.incontainer.sync.handlers."""
    handlers = resources.files("swarmai.incontainer.sync.handlers")
    return Path(str(handlers.joinpath("json_tensor.py")))


class TorchServeLayout:
    """Builds ``<model>.mar`` with an injected archiver."""

    def __init__(self, archiver: Archiver, archive_version: str, handler: str | None) -> None:
        self.archiver = archiver
        self.archive_version = archive_version
        self.handler = handler

    def present(self, store: Path, name: str, version: str, source: str) -> Path | None:
        """The archive if ``<name>.version`` says it is ``version``.

        The version file carries no registered name; the core only asks when
        the marker already names ``source``.
        """
        del source
        mar = store / f"{name}.mar"
        try:
            recorded = (store / f"{name}.version").read_text(encoding="utf-8").strip()
        except OSError:
            return None
        return mar if recorded == version and mar.is_file() else None

    def lay_out(self, artifacts_dir: Path, store: Path, name: str, version: str,
                source: str) -> Path:
        """Archive the artifacts and publish ``<store>/<name>.mar``."""
        spec = archive_spec(artifacts_dir, name, self.archive_version, self.handler, source)
        log.info("archiving %s (serialized %s, handler %s)", source,
                 spec.serialized_file.relative_to(artifacts_dir), Path(spec.handler).name)
        store.mkdir(parents=True, exist_ok=True)
        remove_leftovers(store)
        work = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{name}-", dir=store))
        try:
            info = work / MODEL_INFO
            info.write_text(json.dumps({"name": name, "version": version, "source": source}),
                            encoding="utf-8")
            spec = dataclasses.replace(spec, extra_files=(*spec.extra_files, info))
            archive_dir = work / "archive"
            archive_dir.mkdir()
            built = self.archiver(spec, archive_dir)
            if not zipfile.is_zipfile(built):
                raise ArchiveError(f"the archiver's output {built.name} is not a .mar (zip)")
            make_readable(built)
            final = store / f"{name}.mar"
            os.replace(built, final)
        finally:
            remove(work)
        write_atomic(store / f"{name}.version", f"{version}\n")
        log.info("laid out %s at %s", source, final)
        return final

    def prune(self, store: Path, name: str, version: str) -> list[Path]:
        """Nothing to prune: one archive per model, replaced in place."""
        del store, name, version
        return []


def archive_spec(root: Path, name: str, archive_version: str, handler: str | None,
                 source: str) -> ArchiveSpec:
    """Choose the serialized file, model file, handler and extra files in ``root``."""
    serialized, model_file = serialized_model(root, source)
    own_handler = root / HANDLER_FILE
    chosen = str(own_handler) if own_handler.is_file() else handler or str(bundled_handler())
    used = {serialized, own_handler, root / MODEL_FILE}
    extras = tuple(
        p for p in sorted(root.iterdir())
        if p.is_file() and p not in used and _is_extra(p)
    )  # fmt: skip
    return ArchiveSpec(name, archive_version, serialized, chosen, model_file, extras)


def is_torchscript(path: Path) -> bool:
    """Whether ``path`` is a ``torch.jit.save`` archive, told without importing torch.

    Both TorchScript and ``torch.save`` write a zip with one top folder, but
    only TorchScript stores the model's code (``code/``) and ``constants.pkl``.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return False
    parts = [name.split("/", 2) for name in names]
    return any(len(p) > 1 and p[1] == "constants.pkl" for p in parts) and any(
        len(p) > 2 and p[1] == "code" for p in parts
    )


def serialized_model(root: Path, source: str) -> tuple[Path, Path | None]:
    """The serialized model under ``root``, and the model file an eager-mode one needs."""
    weights = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in WEIGHT_SUFFIXES)
    scripted = [p for p in weights if is_torchscript(p)]
    if len(scripted) == 1:
        return scripted[0], None
    if scripted:
        names = ", ".join(str(p.relative_to(root)) for p in scripted)
        raise LayoutError(f"{source} holds several TorchScript files ({names}); keep one")
    model_file = root / MODEL_FILE
    # Eager mode, top level only: MLflow's own data/model.pth is a pickle, not a state dict.
    top = [p for p in weights if p.parent == root]
    if model_file.is_file() and len(top) == 1:
        return top[0], model_file
    raise LayoutError(_no_torchscript(root, source, weights))


def _no_torchscript(root: Path, source: str, weights: list[Path]) -> str:
    found = ", ".join(str(p.relative_to(root)) for p in weights) or "no *.pt/*.pth file"
    if "pytorch" in artifacts.flavors(root):
        return (f"{source} is an MLflow pytorch model saved as a pickled nn.Module or pt2 "
                f"({found}), which TorchServe cannot load; log it scripted instead: "
                "mlflow.pytorch.log_model(torch.jit.script(model), ...), or log a "
                "torch.jit.save'd model.pt with mlflow.log_artifact")
    return (f"{source} has no TorchScript file ({found}; {artifacts.describe(root)}); log a "
            "torch.jit.save'd *.pt, or model.py with exactly one state-dict *.pt/*.pth")


def _is_extra(path: Path) -> bool:
    return not (
        path.name.startswith(".")
        or path.name in artifacts.MLFLOW_METADATA
        or path.name in (COMPLETE_MARKER, MODEL_INFO)  # swarmai writes its own
        or path.suffix in WEIGHT_SUFFIXES
        or "," in path.name  # the archiver splits --extra-files on commas
    )
