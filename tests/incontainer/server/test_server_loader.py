"""URI resolution, the on-disk model cache and settings, with fakes for MLflow."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from swarmai.incontainer.server import ConfigError, ModelCache, Settings
from swarmai.incontainer.server.loader import COMPLETE_MARKER, load_model, parse_model_uri


class FakeClient:
    """Answers alias and version lookups the way MlflowClient does."""

    def __init__(self, aliases: dict[str, str]) -> None:
        self.aliases = aliases
        self.calls: list[tuple[str, str, str]] = []

    def get_model_version_by_alias(self, name: str, alias: str) -> Any:
        self.calls.append(("alias", name, alias))
        return SimpleNamespace(name=name, version=self.aliases[alias])

    def get_model_version(self, name: str, version: str) -> Any:
        self.calls.append(("version", name, version))
        return SimpleNamespace(name=name, version=int(version))  # file store gives ints


class FakeDownloader:
    """Writes a tiny model directory and counts how often it was asked to."""

    def __init__(self) -> None:
        self.uris: list[str] = []

    def __call__(self, artifact_uri: str, dst_path: str) -> str:
        self.uris.append(artifact_uri)
        (Path(dst_path) / "MLmodel").write_text(f"from: {artifact_uri}\n")
        return dst_path


def opener(path: str) -> Any:
    return SimpleNamespace(predict=lambda data: data, opened_from=path)


def test_alias_is_resolved_downloaded_once_and_opened(tmp_path: Path) -> None:
    client, download = FakeClient({"production": "3"}), FakeDownloader()
    ref = parse_model_uri("models:/churn@production")
    first = load_model(ref, client, ModelCache(tmp_path, download), opener)
    # A fresh cache object over the same directory: a restarted container.
    second = load_model(ref, client, ModelCache(tmp_path, download), opener)
    assert (first.registered_name, first.version) == (second.registered_name, second.version)
    assert (first.registered_name, first.version) == ("churn", "3")
    assert download.uris == ["models:/churn/3"]
    opened: Any = [first.model, second.model]
    assert [m.opened_from for m in opened] == [str(tmp_path / "churn" / "3")] * 2
    assert (tmp_path / "churn" / "3" / "MLmodel").read_text() == "from: models:/churn/3\n"
    assert (tmp_path / "churn" / "3" / COMPLETE_MARKER).is_file()
    assert [p.name for p in (tmp_path / "churn").iterdir()] == ["3"]  # no scratch left


def test_a_moved_alias_downloads_the_new_version(tmp_path: Path) -> None:
    client, download = FakeClient({"production": "3"}), FakeDownloader()
    cache = ModelCache(tmp_path, download)
    load_model(parse_model_uri("models:/churn@production"), client, cache, opener)
    client.aliases["production"] = "4"
    loaded = load_model(parse_model_uri("models:/churn@production"), client, cache, opener)
    assert loaded.version == "4"
    assert download.uris == ["models:/churn/3", "models:/churn/4"]


def test_a_pinned_version_uses_get_model_version(tmp_path: Path) -> None:
    client, download = FakeClient({}), FakeDownloader()
    loaded = load_model(
        parse_model_uri("models:/churn/12"), client, ModelCache(tmp_path, download), opener
    )
    assert loaded.version == "12"
    assert client.calls == [("version", "churn", "12")]


def test_an_incomplete_cache_directory_is_replaced(tmp_path: Path) -> None:
    stale = tmp_path / "churn" / "3"
    stale.mkdir(parents=True)
    (stale / "half-written.bin").write_text("x")
    download = FakeDownloader()
    path = ModelCache(tmp_path, download).fetch("churn", "3")
    assert download.uris == ["models:/churn/3"]
    assert sorted(p.name for p in path.iterdir()) == [COMPLETE_MARKER, "MLmodel"]


def test_a_failed_download_leaves_nothing_behind(tmp_path: Path) -> None:
    def broken(artifact_uri: str, dst_path: str) -> str:
        (Path(dst_path) / "partial").write_text("x")
        raise OSError("connection reset by peer")

    with pytest.raises(OSError, match="connection reset"):
        ModelCache(tmp_path, broken).fetch("churn", "3")
    assert list((tmp_path / "churn").iterdir()) == []


@pytest.mark.parametrize("uri", ["churn", "models:/churn", "runs:/abc/model", "models:/churn/0"])
def test_bad_model_uris_are_config_errors(uri: str) -> None:
    with pytest.raises(ConfigError, match="not a registry model URI"):
        parse_model_uri(uri)


def test_settings_from_env_with_defaults() -> None:
    settings = Settings.from_env({"MODEL_URI": "models:/churn@production"})
    assert settings.max_batch_size == 32  # batching is on unless a stack turns it off
    assert settings.access_log == 0.0
    assert settings.max_delay_ms == 0
    assert settings.port == 8000
    assert settings.cache_dir == "/var/cache/swarmai/models"
    assert settings.model_name is None
    assert settings.max_body_bytes == 16 * 1024 * 1024
    assert settings.max_queue == 64
    assert settings.predict_timeout_s == 30.0
    assert settings.docs is False


def test_settings_from_env_reads_every_variable() -> None:
    settings = Settings.from_env(
        {
            "MODEL_URI": "models:/churn/3",
            "MLFLOW_TRACKING_URI": "http://mlflow:5000",
            "MODEL_NAME": "churn",
            "SWARMAI_MAX_BATCH_SIZE": "32",
            "SWARMAI_MAX_DELAY_MS": "5",
            "SWARMAI_MODEL_CACHE": "/cache",
            "PORT": "9000",
            "SWARMAI_DRAIN_SECONDS": "15",
            "SWARMAI_MAX_BODY_BYTES": "1048576",
            "SWARMAI_MAX_QUEUE": "8",
            "SWARMAI_PREDICT_TIMEOUT_S": "2.5",
            "SWARMAI_DOCS": "1",
            "SWARMAI_WORKERS": "3",
            "SWARMAI_ACCESS_LOG": "0.25",
        }
    )
    assert settings == Settings(
        model_uri="models:/churn/3",
        tracking_uri="http://mlflow:5000",
        model_name="churn",
        max_batch_size=32,
        max_delay_ms=5.0,
        cache_dir="/cache",
        port=9000,
        drain_seconds=15,
        max_body_bytes=1048576,
        max_queue=8,
        predict_timeout_s=2.5,
        docs=True,
        workers=3,
        access_log=0.25,
    )


@pytest.mark.parametrize(("raw", "expected"), [("0", False), ("", False), ("1", True)])
def test_docs_flag(raw: str, expected: bool) -> None:
    settings = Settings.from_env({"MODEL_URI": "models:/churn@production", "SWARMAI_DOCS": raw})
    assert settings.docs is expected


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "MODEL_URI is not set"),
        ({"SWARMAI_MAX_BATCH_SIZE": "0"}, "SWARMAI_MAX_BATCH_SIZE='0' must be at least 1"),
        ({"SWARMAI_MAX_DELAY_MS": "soon"}, "not a valid float"),
        ({"PORT": "70000"}, "at most 65535"),
        ({"SWARMAI_LOG_LEVEL": "loud"}, "SWARMAI_LOG_LEVEL='loud' is not one of"),
        ({"SWARMAI_MAX_BODY_BYTES": "16M"}, "SWARMAI_MAX_BODY_BYTES='16M' is not a valid int"),
        ({"SWARMAI_MAX_QUEUE": "0"}, "SWARMAI_MAX_QUEUE='0' must be at least 1"),
        ({"SWARMAI_PREDICT_TIMEOUT_S": "0"}, "SWARMAI_PREDICT_TIMEOUT_S='0' must be at least"),
        ({"SWARMAI_DOCS": "maybe"}, "SWARMAI_DOCS='maybe' is not a flag"),
        ({"SWARMAI_WORKERS": "0"}, "SWARMAI_WORKERS='0' must be at least 1"),
        ({"SWARMAI_WORKERS": "65"}, "SWARMAI_WORKERS='65' must be at least 1 and at most 64"),
        ({"SWARMAI_ACCESS_LOG": "2"}, "SWARMAI_ACCESS_LOG='2' must be at least 0 and at most 1"),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], message: str) -> None:
    base = {"MODEL_URI": "models:/churn@production"} if env else {}
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        Settings.from_env({**base, **env})
