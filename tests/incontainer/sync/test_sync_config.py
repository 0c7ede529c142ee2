"""SyncSettings.from_env: the variables the renderer writes, and bad values."""

from __future__ import annotations

import pytest

from swarmai.incontainer.server.config import ConfigError
from swarmai.incontainer.sync import SyncSettings

RENDERED = {
    "MODEL_URI": "models:/iris@production",
    "MODEL_NAME": "iris-tf",
    "MLFLOW_TRACKING_URI": "http://mlflow:5000",
    "SWARMAI_LAYOUT": "tfserving",
    "SWARMAI_STORE": "/store",
    "SWARMAI_MODEL_CACHE": "/var/cache/swarmai/models",
    "SWARMAI_POLL_SECONDS": "30",
    "SWARMAI_ARCHIVE_VERSION": "1.0",
}


def test_reads_what_the_renderer_writes() -> None:
    settings = SyncSettings.from_env(RENDERED)
    assert settings == SyncSettings(
        model_uri="models:/iris@production", model_name="iris-tf", layout="tfserving",
        tracking_uri="http://mlflow:5000", store="/store",
        cache_dir="/var/cache/swarmai/models", poll_seconds=30.0, keep_versions=2,
        archive_version="1.0", torchserve_handler=None, log_level="info",
    )  # fmt: skip


def test_defaults_when_only_the_uri_and_layout_are_set() -> None:
    settings = SyncSettings.from_env({"MODEL_URI": "models:/iris/3",
                                      "SWARMAI_LAYOUT": "torchserve"})
    assert settings.model_name == "iris"  # the registered name
    assert (settings.store, settings.poll_seconds, settings.keep_versions) == ("/store", 30, 2)
    assert settings.tracking_uri is None


def test_optional_knobs() -> None:
    env = {**RENDERED, "SWARMAI_KEEP_VERSIONS": "5", "SWARMAI_TORCHSERVE_HANDLER":
           "image_classifier", "SWARMAI_POLL_SECONDS": "0.5", "SWARMAI_LOG_LEVEL": "DEBUG"}
    settings = SyncSettings.from_env(env)
    assert settings.keep_versions == 5
    assert settings.torchserve_handler == "image_classifier"
    assert settings.poll_seconds == 0.5
    assert settings.log_level == "debug"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("MODEL_URI", "", "MODEL_URI is not set"),
        ("MODEL_URI", "s3://bucket/model", "not a models:/NAME@ALIAS"),
        ("SWARMAI_LAYOUT", "", "SWARMAI_LAYOUT is not set"),
        ("SWARMAI_LAYOUT", "fastapi", "not one of tfserving, torchserve"),
        ("MODEL_NAME", "../etc", "MODEL_NAME='../etc'"),
        ("SWARMAI_POLL_SECONDS", "soon", "not a number"),
        ("SWARMAI_POLL_SECONDS", "0", "greater than 0"),
        ("SWARMAI_KEEP_VERSIONS", "1.5", "not a whole number"),
        ("SWARMAI_KEEP_VERSIONS", "0", "greater than 0"),
        ("SWARMAI_LOG_LEVEL", "loud", "SWARMAI_LOG_LEVEL"),
    ],
)
def test_bad_values_are_config_errors(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        SyncSettings.from_env({**RENDERED, name: value})
