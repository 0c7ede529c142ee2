"""The one models:/ grammar, and the registry tags both sides of the boundary read."""

from __future__ import annotations

import pytest

from swarmai import modeluri
from swarmai.modeluri import ModelUri


@pytest.mark.parametrize(("uri", "parsed"), [
    ("models:/churn@production", ModelUri("churn", alias="production")),
    ("models:/churn/12", ModelUri("churn", version=12)),
    ("models:/my.model-v2_x@stag-ing_2", ModelUri("my.model-v2_x", alias="stag-ing_2")),
])
def test_uris_parse_and_print_back(uri: str, parsed: ModelUri) -> None:
    assert modeluri.parse(uri) == modeluri.match(uri) == parsed
    assert str(parsed) == uri


@pytest.mark.parametrize("uri", [
    "churn", "models:/churn", "models:/churn/0", "models:/churn/01", "runs:/abc/model",
    "models:/churn@", "models:/-churn@production", "models:/churn@prod/1",
    "models:/churn@production\n", " models:/churn/1",
])
def test_anything_else_is_refused(uri: str) -> None:
    assert modeluri.match(uri) is None
    with pytest.raises(modeluri.ModelUriError, match="models:/NAME@ALIAS or models:/NAME/VER"):
        modeluri.parse(uri)


def test_pinning_keeps_the_registered_name() -> None:
    assert modeluri.pinned("models:/churn@production", 7) == "models:/churn/7"
    assert modeluri.pinned("models:/churn/3", "8") == "models:/churn/8"
    assert modeluri.version_uri("churn", 4) == "models:/churn/4"


def test_mlflow_reserves_latest_and_v_numbers() -> None:
    assert modeluri.is_reserved_alias("latest") and modeluri.is_reserved_alias("v3")
    assert not modeluri.is_reserved_alias("v3a") and not modeluri.is_reserved_alias("prod")


def test_the_tags_swarmai_keeps() -> None:
    assert modeluri.previous_tag("production") == "swarmai.previous.production"
    assert modeluri.canary_tag("production") == "swarmai.canary.production"
    recorded = modeluri.encode_canary(8, 25)
    assert recorded == '{"percent": 25, "version": "8"}'
    assert modeluri.canary_version(recorded) == "8"
    assert modeluri.canary_version(None) is None and modeluri.canary_version("junk") is None
