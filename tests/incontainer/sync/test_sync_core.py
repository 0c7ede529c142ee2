"""sync_once against a fake registry: alias moves, pruning, the marker, failures."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from swarmai.incontainer.sync import MARKER, SyncSettings, sync_once
from swarmai.incontainer.sync.tfserving import TfServingLayout

MakeSettings = Callable[..., SyncSettings]
MakeSavedModel = Callable[..., Path]


@pytest.fixture
def tf(registry: Any, saved_model: MakeSavedModel) -> Any:
    """iris versions 1-3 as SavedModels (content b"v1".. b"v3"), production -> 1."""
    for version in ("1", "2", "3"):
        registry.add("iris", version, saved_model("tf2model", content=f"v{version}".encode()))
    registry.aliases[("iris", "production")] = "1"
    return registry


def _pass(registry: Any, settings: SyncSettings, archiver: Any = None) -> Any:
    return sync_once(registry, settings, registry.download, archiver)


def _marker(settings: SyncSettings) -> dict[str, Any]:
    marker: dict[str, Any] = json.loads((Path(settings.store) / MARKER).read_text())
    return marker


def _versions(settings: SyncSettings) -> list[str]:
    return sorted(p.name for p in (Path(settings.store) / settings.model_name).iterdir())


def test_first_pass_lays_out_and_marks(tf: Any, settings: MakeSettings) -> None:
    config = settings()
    result = _pass(tf, config)
    assert (result.ok, result.version, result.changed) == (True, "1", True)
    store = Path(config.store)
    assert result.path == store / "iris" / "1"
    assert (store / "iris" / "1" / "saved_model.pb").read_bytes() == b"v1"
    marker = _marker(config)
    assert marker.pop("synced_at").endswith("Z")
    assert marker == {
        "uri": "models:/iris@production", "name": "iris", "version": "1",
        "layout": "tfserving", "source": "models:/iris/1", "path": "iris/1",
    }  # fmt: skip
    assert sorted(p.name for p in store.iterdir()) == [MARKER, "iris"]  # no temp files


def test_an_unchanged_alias_does_nothing(tf: Any, settings: MakeSettings) -> None:
    config = settings()
    _pass(tf, config)
    marker = (Path(config.store) / MARKER).read_text()
    result = _pass(tf, config)
    assert (result.ok, result.changed, result.version) == (True, False, "1")
    assert tf.downloads == ["models:/iris/1"]
    assert (Path(config.store) / MARKER).read_text() == marker  # synced_at unchanged


def test_moving_the_alias_lays_out_the_new_version_and_prunes_by_policy(
    tf: Any, settings: MakeSettings
) -> None:
    config = settings()
    _pass(tf, config)
    tf.aliases[("iris", "production")] = "2"
    result = _pass(tf, config)
    assert (result.version, result.changed) == ("2", True)
    assert _versions(config) == ["1", "2"]  # 1 is kept for a fast rollback
    assert _marker(config)["version"] == "2"
    tf.aliases[("iris", "production")] = "3"
    _pass(tf, config)
    assert _versions(config) == ["2", "3"]  # keep_versions=2


def test_rolling_back_removes_the_newer_folder(tf: Any, settings: MakeSettings) -> None:
    config = settings()
    for version in ("1", "2"):
        tf.aliases[("iris", "production")] = version
        _pass(tf, config)
    tf.aliases[("iris", "production")] = "1"
    result = _pass(tf, config)
    assert (result.version, result.changed) == ("1", True)
    assert _versions(config) == ["1"]  # 2 would shadow 1 under TF Serving's latest policy
    assert tf.downloads == ["models:/iris/1", "models:/iris/2"]  # 1 came from the cache
    assert _marker(config)["version"] == "1"


def test_a_version_uri_and_the_cache_survive_a_wiped_store(tf: Any,
                                                           settings: MakeSettings) -> None:
    import shutil

    config = settings(model_uri="models:/iris/3")
    _pass(tf, config)
    shutil.rmtree(config.store)
    result = _pass(tf, config)
    assert (result.version, result.changed) == ("3", True)
    assert (Path(config.store) / "iris" / "3" / "saved_model.pb").read_bytes() == b"v3"
    assert tf.downloads == ["models:/iris/3"]


def test_a_deleted_marker_is_written_again(tf: Any, settings: MakeSettings) -> None:
    config = settings()
    _pass(tf, config)
    (Path(config.store) / MARKER).unlink()
    result = _pass(tf, config)
    assert result.ok and result.changed
    assert _marker(config)["version"] == "1"


def test_mlflow_down_keeps_the_last_good_layout(tf: Any, settings: MakeSettings) -> None:
    config = settings()
    _pass(tf, config)
    marker = (Path(config.store) / MARKER).read_text()
    tf.down = True
    result = _pass(tf, config)
    assert not result.ok
    assert "Connection refused" in str(result.error)
    assert (Path(config.store) / MARKER).read_text() == marker
    assert _versions(config) == ["1"]
    tf.down = False
    assert _pass(tf, config).ok


def test_a_missing_alias_reports_mlflows_message(tf: Any, settings: MakeSettings) -> None:
    result = _pass(tf, settings(model_uri="models:/iris@staging"))
    assert not result.ok
    assert result.error == "Registered model alias staging not found."
    assert not Path(settings().store).exists()


def test_unservable_artifacts_keep_the_last_good_layout(
    tf: Any, settings: MakeSettings, tmp_path: Path
) -> None:
    config = settings()
    _pass(tf, config)
    bad = tmp_path / "bad"
    (bad / "data").mkdir(parents=True)
    (bad / "data" / "model.keras").write_bytes(b"zip")
    tf.add("iris", "4", bad, alias="production")
    result = _pass(tf, config)
    assert not result.ok
    assert "models:/iris/4 has no saved_model.pb" in str(result.error)
    assert _versions(config) == ["1"]
    assert _marker(config)["version"] == "1"


def test_a_failed_download_keeps_the_last_good_layout(tf: Any, settings: MakeSettings) -> None:
    config = settings()
    _pass(tf, config)
    tf.aliases[("iris", "production")] = "2"

    def broken(artifact_uri: str, dst_path: str) -> str:
        raise RuntimeError("RESOURCE_DOES_NOT_EXIST: artifact not found\nstack trace...")

    result = sync_once(tf, config, broken)
    assert result.error == ("download of models:/iris/2 failed: "
                            "RESOURCE_DOES_NOT_EXIST: artifact not found")
    assert _versions(config) == ["1"]
    assert _marker(config)["version"] == "1"


def test_a_version_still_registering_is_waited_for(tf: Any, settings: MakeSettings) -> None:
    tf.status = "PENDING_REGISTRATION"
    result = _pass(tf, settings())
    assert result.error == ("models:/iris@production is version 1, "
                            "still PENDING_REGISTRATION in MLflow")


def test_torchserve_pass_and_alias_move(registry: Any, archiver: Any, settings: MakeSettings,
                                        tmp_path: Path, torchscript_file: Any) -> None:
    for version in ("1", "2"):
        torchscript_file(tmp_path / f"art{version}" / "model.pt")
        registry.add("iris", version, tmp_path / f"art{version}")
    registry.aliases[("iris", "production")] = "1"
    config = settings(layout="torchserve", model_name="iris-ts")
    store = Path(config.store)
    result = _pass(registry, config, archiver)
    assert (result.ok, result.path) == (True, store / "iris-ts.mar")
    assert _marker(config)["path"] == "iris-ts.mar"
    assert _pass(registry, config, archiver).changed is False
    assert len(archiver.specs) == 1
    registry.aliases[("iris", "production")] = "2"
    assert _pass(registry, config, archiver).version == "2"
    assert (store / "iris-ts.version").read_text() == "2\n"
    assert [s.model_name for s in archiver.specs] == ["iris-ts", "iris-ts"]
    assert sorted(p.name for p in store.iterdir()) == [MARKER, "iris-ts.mar", "iris-ts.version"]


def test_switching_the_uri_to_another_registered_model(tf: Any, settings: MakeSettings,
                                                       saved_model: MakeSavedModel) -> None:
    config = settings()
    _pass(tf, config)
    tf.add("iris-v2", "1", saved_model(content=b"other model"), alias="production")
    result = _pass(tf, settings(model_uri="models:/iris-v2@production"))
    assert (result.ok, result.changed) == (True, True)
    assert (Path(config.store) / "iris" / "1" / "saved_model.pb").read_bytes() == b"other model"
    assert _marker(config)["source"] == "models:/iris-v2/1"


def test_an_unchanged_pass_still_removes_a_shadowing_folder(tf: Any,
                                                            settings: MakeSettings) -> None:
    config = settings()
    _pass(tf, config)
    # As if a pass published 2, was killed before marking it, and the alias moved back.
    TfServingLayout(2).lay_out(tf.versions[("iris", "2")], Path(config.store), "iris", "2",
                               "models:/iris/2")
    result = _pass(tf, config)
    assert (result.ok, result.changed) == (True, False)
    assert _versions(config) == ["1"]
