"""What a registry image change does to the data: the versions read from an image, the
verdicts, and deploy's guard over a fake engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from docker.errors import ImageNotFound

from swarmai.engine import Engine
from swarmai.errors import UsageError
from swarmai.lifecycle.plan_shapes import LiveState, ServiceShape
from swarmai.lifecycle.upgrade_rules import (
    ImageFacts,
    image_facts,
    judge,
    refusal_message,
    rolls_stop_first,
)
from swarmai.lifecycle.upgrades import check_registry_images, registry_images
from swarmai.spec import load_stack

OFFLINE_PG = "swarmai/postgres:15-c218afd2e74b"
OFFLINE_MLFLOW = "swarmai/mlflow:3.17.2-7aefcc18764b"


def _inspect(image_id: str, env: dict[str, str] | None = None,
             labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"Id": image_id, "Config": {"Env": [f"{k}={v}" for k, v in (env or {}).items()],
                                       "Labels": labels}}


def _swarmai(kind: str, version: str, **env: str) -> dict[str, Any]:
    """An inspect of one of swarmai's --offline builds."""
    return _inspect(f"sha256:{kind}{version}{''.join(env.values())}", env,
                    {"swarmai.image": kind, "org.opencontainers.image.version": version})


@pytest.mark.parametrize(("kind", "reference", "inspect", "version", "source"), [
    # The official image: PG_MAJOR (its tag is not consulted when the env says it).
    ("postgres", "postgres:15.14-bookworm", _inspect("sha256:a", {"PG_MAJOR": "15"}),
     "15", "env PG_MAJOR"),
    # swarmai's offline build: POSTGRES_MAJOR, which wins over its labels.
    ("postgres", OFFLINE_PG, _swarmai("postgres", "15", POSTGRES_MAJOR="16"), "16",
     "env POSTGRES_MAJOR"),
    # An older offline build without the env: its labels.
    ("postgres", "swarmai/postgres:15-ea6a458f21e4", _swarmai("postgres", "15"), "15",
     "label org.opencontainers.image.version"),
    # Not on this engine (another node, not pulled yet): the tag.
    ("postgres", "postgres:16.4-bookworm", None, "16", "tag"),
    ("postgres", "registry.local:5000/team/postgres:latest", None, None, ""),
    ("postgres", "registry.local:5000/postgres", None, None, ""),
    ("mlflow", "ghcr.io/mlflow/mlflow:v3.17.2-full", None, "3.17.2", "tag"),
    ("mlflow", OFFLINE_MLFLOW, _swarmai("mlflow", "3.17.2"), "3.17.2",
     "label org.opencontainers.image.version"),
    # Another image's version label is not MLflow's release.
    ("mlflow", "acme/ml:stable", _inspect("sha256:b", labels={
        "org.opencontainers.image.version": "2.0"}), None, ""),
    ("mlflow", "10.0.0.1:5443/swarmai/mlflow:3.18.0-7aefcc18764b@sha256:" + "0" * 64, None,
     "3.18.0", "tag"),
    ("seaweedfs", "chrislusf/seaweedfs:4.48", None, "4.48", "tag"),
    ("minio", "minio/minio:RELEASE.2025-04-22T22-12-26Z", None,
     "RELEASE.2025-04-22T22-12-26Z", "tag"),
])
def test_versions_are_read_from_env_labels_then_tag(
        kind: str, reference: str, inspect: dict[str, Any] | None, version: str | None,
        source: str) -> None:
    facts = image_facts(kind, reference, inspect)
    assert (facts.version, facts.source) == (version, source)


def _pg(reference: str, major: str | None, image_id: str | None = None) -> ImageFacts:
    return ImageFacts("postgres", reference, image_id, major)


def _mlflow(reference: str, release: str | None) -> ImageFacts:
    return ImageFacts("mlflow", reference, None, release)


def test_the_same_image_by_reference_or_by_id_changes_nothing() -> None:
    assert judge("postgres", _pg(OFFLINE_PG, "15"), _pg(OFFLINE_PG, "15")).effect == "same"
    retagged = judge("postgres", _pg(OFFLINE_PG, "15", "sha256:x"),
                     _pg("postgres:15.14-bookworm", "15", "sha256:x"))
    assert retagged.effect == "same" and not retagged.refuses(acknowledged=False)
    assert judge("mlflow", None, _mlflow(OFFLINE_MLFLOW, "3.17.2")).effect == "new"


def test_the_same_postgres_major_keeps_the_data() -> None:
    verdict = judge("postgres", _pg(OFFLINE_PG, "15"), _pg("postgres:15.14-bookworm", "15"))
    assert verdict.effect == "kept" and not verdict.refuses(acknowledged=False)
    assert verdict.says.startswith("PostgreSQL 15 -> PostgreSQL 15 (")
    assert "data directory is kept" in verdict.says


def test_another_postgres_major_is_refused_even_when_acknowledged() -> None:
    verdict = judge("postgres", _pg(OFFLINE_PG, "15"), _pg("postgres:16.4-bookworm", "16"),
                    stack_file="stacks/dev.yaml")
    assert verdict.effect == "refused"
    assert verdict.refuses(acknowledged=False) and verdict.refuses(acknowledged=True)
    assert "PostgreSQL 15 -> PostgreSQL 16" in verdict.says
    assert "data directory is PostgreSQL 15's" in verdict.says
    assert "swarmai backup stacks/dev.yaml DIR" in verdict.says
    assert "the same images: and --offline as the last deploy" in verdict.says


def test_another_mlflow_release_needs_a_backup_and_the_flag() -> None:
    up = judge("mlflow", _mlflow(OFFLINE_MLFLOW, "3.17.2"),
               _mlflow("ghcr.io/mlflow/mlflow:v3.18.0-full", "3.18.0"), stack_file="s.yaml")
    assert up.effect == "acknowledge"
    assert up.refuses(acknowledged=False) and not up.refuses(acknowledged=True)
    assert "MLflow 3.17.2 -> MLflow 3.18.0" in up.says
    assert "schema upgrade at start" in up.says and "swarmai backup s.yaml DIR" in up.says
    assert "--upgrade-registry" in up.says
    down = judge("mlflow", _mlflow("a:3.18.0", "3.18.0"), _mlflow("a:3.9.1", "3.9.1"))
    assert "a downgrade" in down.says and down.effect == "acknowledge"
    same = judge("mlflow", _mlflow(OFFLINE_MLFLOW, "3.17.2"),
                 _mlflow("ghcr.io/mlflow/mlflow:v3.17.2-full", "3.17.2"))
    assert same.effect == "kept" and "schema is unchanged" in same.says


def test_what_needed_the_flag_rolls_stop_first_and_nothing_else_does() -> None:
    migrating = judge("mlflow", _mlflow(OFFLINE_MLFLOW, "3.17.2"),
                      _mlflow("ghcr.io/mlflow/mlflow:v3.18.0-full", "3.18.0"))
    unknown = judge("postgres", _pg(OFFLINE_PG, "15"), _pg("acme/pg:prod", None))
    kept = judge("mlflow", _mlflow(OFFLINE_MLFLOW, "3.17.2"),
                 _mlflow("ghcr.io/mlflow/mlflow:v3.17.2-full", "3.17.2"))
    new = judge("s3", None, ImageFacts("seaweedfs", "chrislusf/seaweedfs:4.48", None, "4.48"))
    assert rolls_stop_first([migrating, kept, new]) == {"mlflow"}
    assert rolls_stop_first([unknown, kept]) == {"postgres"}
    assert rolls_stop_first([kept, new]) == frozenset()


def test_an_unreadable_version_needs_the_flag() -> None:
    verdict = judge("postgres", _pg(OFFLINE_PG, "15"), _pg("acme/pg:prod", None))
    assert verdict.effect == "acknowledge" and verdict.refuses(acknowledged=False)
    assert "unknown" in verdict.says and "acme/pg:prod" in verdict.says
    assert "PostgreSQL ?" in verdict.says and "--upgrade-registry" in verdict.says


def test_the_s3_store_keeps_its_volume_across_releases_not_across_stores() -> None:
    newer = judge("s3", ImageFacts("seaweedfs", "chrislusf/seaweedfs:4.48", None, "4.48"),
                  ImageFacts("seaweedfs", "chrislusf/seaweedfs:4.49", None, "4.49"))
    assert newer.effect == "kept" and "data format compatible" in newer.says
    other = judge("s3", ImageFacts("seaweedfs", "chrislusf/seaweedfs:4.48", None, "4.48"),
                  ImageFacts("minio", "minio/minio:RELEASE.2025-04-22T22-12-26Z", None, "x"))
    assert other.effect == "acknowledge" and "another store" in other.says


def test_the_refusal_names_only_what_refuses() -> None:
    kept = judge("postgres", _pg(OFFLINE_PG, "15"), _pg("postgres:15.14-bookworm", "15"))
    mlflow = judge("mlflow", _mlflow("a:3.17.2", "3.17.2"), _mlflow("a:3.18.0", "3.18.0"))
    assert refusal_message([kept], "dev", acknowledged=False) is None
    assert refusal_message([kept, mlflow], "dev", acknowledged=True) is None
    message = refusal_message([kept, mlflow], "dev", acknowledged=False)
    assert message is not None and "nothing was changed" in message
    assert "mlflow: MLflow 3.17.2 -> MLflow 3.18.0" in message and "postgres:" not in message


# --- deploy's guard, over a fake engine ---------------------------------------------------


class FakeApi:
    def __init__(self, images: dict[str, dict[str, Any]]) -> None:
        self.images = images

    def inspect_image(self, reference: str) -> dict[str, Any]:
        if reference not in self.images:
            raise ImageNotFound(reference)
        return self.images[reference]


STACK = """\
version: 1
name: up
storage: {backend: seaweedfs, bucket: models, credentials_secret: up-s3}
registry: {backend_store: postgres, db_password_secret: up-db}
images: {postgres: %s, mlflow: %s, seaweedfs: %s}
models:
  - {name: churn, runtime: fastapi, model: "models:/churn@production"}
"""


def _guard(tmp_path: Path, postgres: str, *, acknowledged: bool = False) -> list[str]:
    path = tmp_path / "up.yaml"
    path.write_text(STACK % (postgres, OFFLINE_MLFLOW, "swarmai/seaweedfs:4.48-c0b480926fae"))
    stack = load_stack(path)
    api = FakeApi({OFFLINE_PG: _swarmai("postgres", "15", POSTGRES_MAJOR="15"),
                   OFFLINE_MLFLOW: _swarmai("mlflow", "3.17.2"),
                   "e2eup/postgres:16": _swarmai("postgres", "15", POSTGRES_MAJOR="16")})
    live = LiveState(services={
        service: ServiceShape(image=ref, environment={"SWARMAI_S3_BACKEND": "seaweedfs"})
        for service, (_kind, ref) in registry_images(stack).items()
    } | {"postgres": ServiceShape(image=OFFLINE_PG)})
    told: list[str] = []
    check_registry_images(Engine(cli=None, api=api), live, stack,  # type: ignore[arg-type]
                          stack_file=str(path), acknowledged=acknowledged, progress=told.append)
    return told


def test_the_guard_passes_the_same_major_and_says_what_changes(tmp_path: Path) -> None:
    assert _guard(tmp_path, OFFLINE_PG) == []
    told = _guard(tmp_path, "postgres:15.14-bookworm")  # not on this engine: by its tag
    assert told == [f"postgres: PostgreSQL 15 -> PostgreSQL 15 ({OFFLINE_PG} -> "
                    "postgres:15.14-bookworm): same major: the data directory is kept as it is"]


def test_the_guard_refuses_another_major_with_exit_2(tmp_path: Path) -> None:
    for acknowledged in (False, True):
        with pytest.raises(UsageError) as refused:
            _guard(tmp_path, "e2eup/postgres:16", acknowledged=acknowledged)
        assert refused.value.exit_code == 2
        message = str(refused.value)
        assert "the deploy of up would change its registry's data; nothing was changed" in message
        assert "PostgreSQL 15 -> PostgreSQL 16" in message
        assert f"swarmai backup {tmp_path / 'up.yaml'} DIR" in message
