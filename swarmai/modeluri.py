"""The one ``models:/`` grammar, and the names of the tags swarmai keeps in MLflow.

A stack names each model by a registry URI: ``models:/NAME@ALIAS`` (follow an
alias) or ``models:/NAME/VERSION`` (a fixed version).  The spec validates with
this module, the renderers pin with it, the host's registry client and
promotion parse with it, and the code inside containers (model server,
model-sync, registry operations) reads its ``MODEL_URI`` with it.

The registry tags swarmai keeps on a registered model are the other half of the
format both sides of the registry boundary read:

- ``swarmai.previous.<alias>``: the version the alias pointed at before the
  last move that changed it (what ``swarmai rollback`` returns to);
- ``swarmai.canary.<alias>``: ``{"percent": ..., "version": ...}`` while a
  canary of that alias runs;
- ``swarmai.pending.<alias>``: ``{"from": ..., "to": ..., "previous": ...}``
  from before a promotion moves the alias until its servers answer with the new
  version: a promotion that dies in between (killed, a crash, a lost manager)
  leaves it, and the next one finishes or undoes that promotion first.

Pure: standard library only, no I/O.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

MODEL_URI = re.compile(
    r"^models:/(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]*)"
    r"(?:@(?P<alias>[A-Za-z0-9_-]+)|/(?P<version>[1-9][0-9]*))$"
)
# MLflow accepts aliases matching [\w-]+ but reserves "latest" and "v<digits>".
ALIAS = re.compile(r"^[A-Za-z0-9_-]+$")
RESERVED_ALIAS = re.compile(r"^(?:latest|v[0-9]+)$")
GRAMMAR = "models:/NAME@ALIAS or models:/NAME/VERSION"

PREVIOUS_TAG = "swarmai.previous."
CANARY_TAG = "swarmai.canary."
PENDING_TAG = "swarmai.pending."


class ModelUriError(ValueError):
    """A string that is not a ``models:/`` URI."""


@dataclass(frozen=True)
class ModelUri:
    """A parsed ``models:/NAME@ALIAS`` (``version`` None) or ``models:/NAME/VERSION``."""

    name: str
    alias: str | None = None
    version: int | None = None

    def __str__(self) -> str:
        if self.alias is not None:
            return f"models:/{self.name}@{self.alias}"
        return version_uri(self.name, self.version)

    def pinned(self, version: int | str) -> str:
        """The URI of ``version`` of the same registered model."""
        return version_uri(self.name, version)


def match(uri: str) -> ModelUri | None:
    """``uri`` parsed, or None when it is not a ``models:/`` URI."""
    found = MODEL_URI.fullmatch(uri)
    if found is None:
        return None
    version = found["version"]
    return ModelUri(found["name"], found["alias"], None if version is None else int(version))


def parse(uri: str) -> ModelUri:
    """``uri`` parsed; :class:`ModelUriError` when it is not a ``models:/`` URI."""
    found = match(uri)
    if found is None:
        raise ModelUriError(f"{uri!r} is not a {GRAMMAR} URI")
    return found


def version_uri(name: str, version: int | str | None) -> str:
    """``models:/NAME/VERSION``."""
    return f"models:/{name}/{version}"


def pinned(uri: str, version: int | str) -> str:
    """``uri``'s registered model at ``version``: ``models:/NAME@ALIAS`` -> ``models:/NAME/V``."""
    return parse(uri).pinned(version)


def is_reserved_alias(alias: str) -> bool:
    """Whether MLflow reserves ``alias`` (``latest``, ``v1``, ...)."""
    return RESERVED_ALIAS.fullmatch(alias) is not None


def previous_tag(alias: str) -> str:
    """The tag recording where ``alias`` pointed before its last move."""
    return PREVIOUS_TAG + alias


def pending_tag(alias: str) -> str:
    """The tag recording a promotion of ``alias`` that has not finished."""
    return PENDING_TAG + alias


@dataclass(frozen=True)
class Pending:
    """A promotion under way: the alias goes from ``source`` (None: it did not exist)
    to ``target``; ``previous`` is the previous tag's value before it (None: none)."""

    source: str | None
    target: str
    previous: str | None

    def encode(self) -> str:
        return json.dumps({"from": self.source, "to": self.target, "previous": self.previous},
                          sort_keys=True)


def decode_pending(recorded: str | None) -> Pending | None:
    """The promotion a pending tag's value records; None when absent or unreadable."""
    if not recorded:
        return None
    try:
        fields = json.loads(recorded)
        source, target, previous = fields["from"], fields["to"], fields["previous"]
    except (ValueError, KeyError, TypeError):
        return None
    return Pending(None if source is None else str(source), str(target),
                   None if previous is None else str(previous))


def canary_tag(alias: str) -> str:
    """The tag recording a running canary of ``alias``."""
    return CANARY_TAG + alias


def encode_canary(version: int | str, percent: int) -> str:
    """The value of a canary tag."""
    return json.dumps({"version": str(version), "percent": percent}, sort_keys=True)


def canary_version(recorded: str | None) -> str | None:
    """The version a canary tag's value names; None when absent or unreadable."""
    if not recorded:
        return None
    try:
        return str(json.loads(recorded)["version"])
    except (ValueError, KeyError, TypeError):
        return None
