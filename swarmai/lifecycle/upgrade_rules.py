"""What changing a registry service's image does to its data: pure rules, no engine.

A registry keeps state that outlives its images: Postgres' data directory is
readable by one major version only, MLflow migrates its schema forward at
start (``mlflow db upgrade`` in its entrypoint) and cannot go back, and the S3
store keeps its volume.  So, per registry service, the image running now is
compared with the one a deploy would start:

- Postgres, another major: **refused**; no flag overrides it, since the new
  server cannot open the data directory (the offline image's entrypoint
  refuses it, the official one fails) and the way out is a dump and restore.
- MLflow, another release: a schema migration that has no way back but a
  backup, so it needs ``--upgrade-registry``, given once a backup is taken.
- A version that cannot be read from the image (a custom tag): **unknown**,
  which also needs ``--upgrade-registry``: the user acknowledges what swarmai
  could not check.

Versions are read, most trusted first, from the image's environment (the
official Postgres image sets ``PG_MAJOR``, swarmai's offline build
``POSTGRES_MAJOR``; both are what its server runs), from swarmai's own labels
(``swarmai.image`` naming the kind, with ``org.opencontainers.image.version``),
then from the tag (``postgres:15.14-bookworm``, ``mlflow:v3.17.2-full``).
Nothing is run in the image: reading a version must not start anything.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

# What a change does; "acknowledge": refused unless --upgrade-registry.
Effect = Literal["new", "same", "kept", "acknowledge", "refused"]

KIND_NAMES: Mapping[str, str] = {"postgres": "PostgreSQL", "mlflow": "MLflow",
                                 "seaweedfs": "SeaweedFS", "minio": "MinIO"}
_VERSION_LABEL = "org.opencontainers.image.version"
_KIND_LABEL = "swarmai.image"
_MAJOR_ENV = ("PG_MAJOR", "POSTGRES_MAJOR")
# The part of a tag that is the version, per kind (the rest is a variant: -full, -bookworm).
_TAG_VERSION: Mapping[str, re.Pattern[str]] = {
    "postgres": re.compile(r"^(\d+)(?:\.\d+)*(?:-.*)?$"),
    "mlflow": re.compile(r"^v?(\d+\.\d+\.\d+)(?:-.*)?$"),
    "seaweedfs": re.compile(r"^(\d+\.\d+(?:\.\d+)?)(?:-.*)?$"),
    "minio": re.compile(r"^(RELEASE\.[0-9TZ:-]+)$"),
}


@dataclass(frozen=True)
class ImageFacts:
    """One registry image as far as its data is concerned."""

    kind: str  # postgres, mlflow, seaweedfs, minio
    reference: str
    image_id: str | None = None  # None: not in this engine's image store
    version: str | None = None  # Postgres: the major; others: the release; None: unknown
    source: str = ""  # where the version was read: "env PG_MAJOR", "label", "tag"

    def describe(self) -> str:
        return f"{KIND_NAMES.get(self.kind, self.kind)} {self.version or '?'}"


@dataclass(frozen=True)
class Verdict:
    """What a deploy would do to one registry service's data, and whether it may."""

    service: str
    effect: Effect
    says: str
    planned: ImageFacts
    running: ImageFacts | None = None

    def refuses(self, *, acknowledged: bool) -> bool:
        """Whether a deploy stops here (``acknowledged``: with --upgrade-registry)."""
        return self.effect == "refused" or (self.effect == "acknowledge" and not acknowledged)

    def as_dict(self) -> dict[str, Any]:
        def facts(f: ImageFacts | None) -> dict[str, Any] | None:
            return None if f is None else {"image": f.reference, "version": f.version,
                                           "read_from": f.source}
        return {"service": self.service, "effect": self.effect, "says": self.says,
                "running": facts(self.running), "planned": facts(self.planned)}


def image_facts(kind: str, reference: str, inspect: Mapping[str, Any] | None) -> ImageFacts:
    """``reference``'s facts from its ``docker image inspect`` (None: not here: tag only)."""
    config = (inspect or {}).get("Config") or {}
    env = dict(item.partition("=")[::2] for item in config.get("Env") or [])
    labels = config.get("Labels") or {}
    image_id = None if inspect is None else str(inspect.get("Id", "")) or None
    if kind == "postgres":
        for name in _MAJOR_ENV:
            if env.get(name, "").isdigit():
                return ImageFacts(kind, reference, image_id, env[name], f"env {name}")
    if labels.get(_KIND_LABEL) == kind and labels.get(_VERSION_LABEL):
        version = str(labels[_VERSION_LABEL])
        if kind == "postgres":
            version = version.split(".")[0]
        return ImageFacts(kind, reference, image_id, version, f"label {_VERSION_LABEL}")
    match = _TAG_VERSION[kind].match(tag_of(reference)) if kind in _TAG_VERSION else None
    if match:
        return ImageFacts(kind, reference, image_id, match.group(1), "tag")
    return ImageFacts(kind, reference, image_id)


def tag_of(reference: str) -> str:
    """The tag of an image reference ("" when it has none): the part after the last
    ``:`` of the last path component, without any ``@digest``."""
    name = reference.split("@")[0].rsplit("/", 1)[-1]
    return name.partition(":")[2]


def judge(service: str, running: ImageFacts | None, planned: ImageFacts,
          *, stack_file: str = "FILE") -> Verdict:
    """What switching ``service`` from ``running`` (None: not running) to ``planned`` does."""
    if running is None:
        return Verdict(service, "new", f"not running yet: starts {planned.reference}", planned)
    if running.reference == planned.reference or (
            running.image_id is not None and running.image_id == planned.image_id):
        return Verdict(service, "same", f"same image ({planned.reference}): nothing",
                       planned, running)
    change = f"{running.describe()} -> {planned.describe()} " \
             f"({running.reference} -> {planned.reference})"
    if running.kind != planned.kind:
        effect, says = _other_store(running, planned)
    elif running.version is None or planned.version is None:
        effect, says = _unknown(running, planned)
    elif planned.kind == "postgres":
        effect, says = _postgres(running, planned, service, stack_file)
    elif planned.kind == "mlflow":
        effect, says = _mlflow(running, planned, stack_file)
    else:
        effect, says = "kept", (
            "same release: the data volume is kept" if running.version == planned.version else
            f"data format compatible: {KIND_NAMES[planned.kind]} keeps its volume format "
            "across releases; the data volume is kept")
    return Verdict(service, effect, f"{change}: {says}", planned, running)


def _postgres(running: ImageFacts, planned: ImageFacts, service: str,
              stack_file: str) -> tuple[Effect, str]:
    if running.version == planned.version:
        return "kept", "same major: the data directory is kept as it is"
    old, new = running.version, planned.version
    return "refused", (
        f"refused: the data directory is PostgreSQL {old}'s and PostgreSQL {new} cannot open "
        f"it. Either deploy with the images it runs now (the same images: and --offline as "
        f"the last deploy), or move the data: `swarmai backup {stack_file} DIR` (a pg_dump by "
        f"the running {old} server), then remove the {service} data volume, deploy with "
        f"PostgreSQL {new} and restore the dump into it")


def _mlflow(running: ImageFacts, planned: ImageFacts, stack_file: str) -> tuple[Effect, str]:
    if running.version == planned.version:
        return "kept", "same release: the schema is unchanged"
    backup = (f"take a backup first (`swarmai backup {stack_file} DIR`), then deploy with "
              "--upgrade-registry")
    if _release(planned.version) < _release(running.version):
        return "acknowledge", (
            "a downgrade: an older MLflow cannot open a schema a newer one migrated (only the "
            f"backup taken before that upgrade goes back); {backup}")
    return "acknowledge", f"schema upgrade at start (mlflow db upgrade): {backup}"


def _unknown(running: ImageFacts, planned: ImageFacts) -> tuple[Effect, str]:
    which = " and ".join(f.reference for f in (running, planned) if f.version is None)
    what = {"postgres": "major version", "mlflow": "release"}.get(planned.kind, "release")
    return "acknowledge", (
        f"unknown: the {what} of {which} is not in its tag, labels or environment; if it "
        f"differs, the data may not open. Check it, then deploy with --upgrade-registry to "
        "acknowledge it")


def _other_store(running: ImageFacts, planned: ImageFacts) -> tuple[Effect, str]:
    return "acknowledge", (
        f"another store: {KIND_NAMES.get(planned.kind, planned.kind)} does not read the data "
        f"{KIND_NAMES.get(running.kind, running.kind)} left in the volume (the artifacts are "
        "not carried over); copy them first, then deploy with --upgrade-registry")


def _release(version: str | None) -> tuple[int, ...]:
    """``3.17.2`` as (3, 17, 2) for ordering; non-numeric parts count as 0."""
    return tuple(int(p) if p.isdigit() else 0 for p in (version or "").split("."))


def refusal_message(verdicts: Sequence[Verdict], stack_name: str, *,
                    acknowledged: bool) -> str | None:
    """None when nothing refuses; else why, service by service, and the way out."""
    lines = [f"{v.service}: {v.says}" for v in verdicts if v.refuses(acknowledged=acknowledged)]
    if not lines:
        return None
    return "\n".join([f"the deploy of {stack_name} would change its registry's data; "
                      "nothing was changed:", *(f"  {line}" for line in lines)])


def rolls_stop_first(verdicts: Sequence[Verdict]) -> frozenset[str]:
    """The registry services a deploy rolls stop-first: those whose change needed
    --upgrade-registry (a schema migration, or a version swarmai could not read).
    MLflow on Postgres otherwise rolls start-first; here the old release would go on
    writing, meanwhile, to the schema the new one migrated."""
    return frozenset(v.service for v in verdicts if v.effect == "acknowledge")
