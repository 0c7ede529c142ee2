"""The default images and the --offline builds of the stateful services agree.

Switching a stack between them (deploying once with --offline, once without)
must never start another Postgres major over the registry's database (it
refuses to start), nor another MLflow release over its schema (MLflow refuses
an out-of-date schema, and a newer schema cannot go back).
"""

from __future__ import annotations

import re

from swarmai.images.catalog import CATALOG, ImageDef, locked_version
from swarmai.spec.images import DEFAULT_IMAGES


def _offline(key: str) -> ImageDef:
    return next(image for image in CATALOG if image.key == key)


def test_postgres_is_one_major_version_either_way() -> None:
    tag = DEFAULT_IMAGES["postgres"].rpartition(":")[2]  # 15.14-bookworm
    major = re.match(r"(\d+)", tag)
    assert major is not None, tag
    assert major.group(1) == _offline("postgres").pins["POSTGRES_MAJOR"]


def test_mlflow_is_one_release_either_way() -> None:
    tag = DEFAULT_IMAGES["mlflow"].rpartition(":")[2]  # v3.17.2-full
    release = re.fullmatch(r"v(\d+\.\d+\.\d+)(?:-full)?", tag)
    assert release is not None, tag
    assert release.group(1) == locked_version(_offline("mlflow"), "mlflow")
