"""A snapshot's ``manifest.json``: what it holds, and the checks a restore makes first.

Pure: no engine.  The manifest names the database file and every artifact
object with its size and sha256, and the registry's contents as MLflow
reported them, so a restore can refuse a corrupt or incomplete snapshot
before it changes anything, and afterwards prove it brought everything back.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from swarmai.errors import Problem, SpecError
from swarmai.lifecycle.backup_tasks import ARTIFACTS
from swarmai.registry_client import RegistrySummary, registry_summary

MANIFEST = "manifest.json"
FORMAT = 1
_CHUNK = 1 << 20


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def manifest_text(*, stack: str, created_at: str, backend_store: str,
                  postgres_major: int | None, images: Mapping[str, str], version: str,
                  database: Path, bucket: str, objects: Sequence[Mapping[str, Any]],
                  summary: RegistrySummary) -> str:
    """The manifest of a snapshot whose database file is ``database``."""
    document = {
        "format": FORMAT, "stack": stack, "created_at": created_at,
        "swarmai_version": version, "backend_store": backend_store,
        "postgres_major": postgres_major, "images": dict(images),
        "database": {"file": database.name, "size": database.stat().st_size,
                     "sha256": sha256_of(database)},
        "artifacts": {"bucket": bucket, "folder": ARTIFACTS,
                      "objects": [{"key": str(o["key"]), "size": int(o["size"]),
                                   "sha256": str(o["sha256"])} for o in objects]},
        "registry": summary.as_dict(), "counts": summary.counts(),
    }
    return json.dumps(document, indent=1, sort_keys=True) + "\n"


def read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest of snapshot ``folder``, after checking every file it names: exit 2
    naming the first wrong file, before anything is changed."""
    path = folder / MANIFEST
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _problem(path, "no manifest: not a swarmai snapshot, or an incomplete one",
                       "give the folder `swarmai backup` printed") from None
    except (OSError, ValueError) as error:
        raise _problem(path, f"unreadable: {error}") from None
    found = document.get("format") if isinstance(document, dict) else None
    if found != FORMAT:
        raise _problem(path, f"format {found} is not {FORMAT}",
                       "restore it with the swarmai that wrote it")
    try:
        database = document["database"]
        _check_file(folder / str(database["file"]), int(database["size"]), str(database["sha256"]))
        for entry in document["artifacts"]["objects"]:
            _check_file(folder / ARTIFACTS / str(entry["key"]), int(entry["size"]),
                        str(entry["sha256"]))
        registry_summary(document["registry"])
        checked: dict[str, Any] = document
    except (KeyError, TypeError, ValueError) as error:
        raise _problem(path, f"malformed: missing or wrong {error}") from None
    return checked


def _check_file(path: Path, size: int, sha256: str) -> None:
    if not path.is_file():
        raise _problem(path, "missing from the snapshot", "the snapshot is incomplete: "
                       "restore another one")
    if path.stat().st_size != size or sha256_of(path) != sha256:
        raise _problem(path, "does not match the sha256 the manifest records",
                       "the snapshot is corrupt: restore another one")


def _problem(path: Path, message: str, hint: str = "") -> SpecError:
    return SpecError([Problem(str(path), "", message, hint)])


def differences(expected: RegistrySummary, found: RegistrySummary) -> list[str]:
    """What ``found`` lacks or has otherwise than ``expected``, one line each."""
    lines = []
    for name, model in expected.models.items():
        have = found.models.get(name)
        if have is None:
            lines.append(f"model {name} is missing")
            continue
        for what, wanted, got in (("versions", model.versions, have.versions),
                                  ("aliases", model.aliases, have.aliases),
                                  ("tags", model.tags, have.tags)):
            if dict(wanted) != dict(got):
                lines.append(f"model {name}: {what} {_short(got)}, the snapshot has "
                             f"{_short(wanted)}")
    lines += [f"model {name} is not in the snapshot" for name in found.models
              if name not in expected.models]
    return lines


def _short(value: Mapping[Any, Any]) -> str:
    return json.dumps({str(k): v for k, v in value.items()}, sort_keys=True)[:200]
