"""TF Serving's layout: finding the SavedModel, publishing a version, pruning."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from swarmai.incontainer.sync import LayoutError
from swarmai.incontainer.sync.tfserving import (
    SOURCE_FILE,
    TfServingLayout,
    find_saved_model,
    versions_to_prune,
)

SRC = "models:/iris/1"
TF_FLAVOR = "flavors:\n  tensorflow:\n    model_type: tf2-module\n    saved_model_dir: {}\n"

MakeSavedModel = Callable[..., Path]


@pytest.mark.parametrize("subdir", ["", "exported", "data/model"])
def test_finds_a_saved_model_at_the_root_or_below(saved_model: MakeSavedModel,
                                                  subdir: str) -> None:
    root = saved_model(subdir)
    assert find_saved_model(root, SRC) == root / subdir


def test_the_tensorflow_flavor_names_the_directory(saved_model: MakeSavedModel) -> None:
    root = saved_model("tf2model", mlmodel=TF_FLAVOR.format("tf2model"))
    # A second SavedModel at the same depth would be ambiguous without the flavor.
    (root / "other").mkdir()
    (root / "other" / "saved_model.pb").write_bytes(b"x")
    assert find_saved_model(root, SRC) == root / "tf2model"


def test_a_flavor_path_outside_the_artifacts_is_ignored(saved_model: MakeSavedModel,
                                                        tmp_path: Path) -> None:
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "saved_model.pb").write_bytes(b"x")
    root = saved_model("tf2model", mlmodel=TF_FLAVOR.format("../../../outside"))
    assert find_saved_model(root, SRC) == root / "tf2model"


def test_two_saved_models_at_one_depth_are_refused(saved_model: MakeSavedModel) -> None:
    root = saved_model("a")
    (root / "b").mkdir()
    (root / "b" / "saved_model.pb").write_bytes(b"x")
    with pytest.raises(LayoutError, match=r"several SavedModels \(a, b\)"):
        find_saved_model(root, SRC)


def test_no_saved_model_says_what_was_found(tmp_path: Path) -> None:
    root = tmp_path / "keras"
    (root / "data").mkdir(parents=True)
    (root / "data" / "model.keras").write_bytes(b"zip")
    (root / "MLmodel").write_text("flavors:\n  tensorflow:\n    model_type: keras\n")
    with pytest.raises(LayoutError) as caught:
        find_saved_model(root, SRC)
    message = str(caught.value)
    assert "models:/iris/1 has no saved_model.pb" in message
    assert "MLmodel flavors: tensorflow" in message
    assert "model.export(dir)" in message


def test_lay_out_publishes_a_numbered_version_folder(saved_model: MakeSavedModel,
                                                     tmp_path: Path) -> None:
    store = tmp_path / "store"
    root = saved_model("tf2model", mlmodel=TF_FLAVOR.format("tf2model"))
    path = TfServingLayout(2).lay_out(root, store, "iris", "1", SRC)
    assert path == store / "iris" / "1"
    assert (path / "saved_model.pb").read_bytes() == b"graph"
    assert (path / "variables" / "variables.index").is_file()
    assert not (path / "MLmodel").exists()  # only the SavedModel dir is copied
    assert (path / SOURCE_FILE).read_text() == f"{SRC}\n"
    assert sorted(p.name for p in (store / "iris").iterdir()) == ["1"]  # no .tmp-1 left


def test_a_root_saved_model_leaves_the_cache_marker_behind(saved_model: MakeSavedModel,
                                                           tmp_path: Path) -> None:
    root = saved_model()
    (root / ".swarmai-complete").write_text("models:/iris/1\n")
    path = TfServingLayout(2).lay_out(root, tmp_path / "store", "iris", "1", SRC)
    assert not (path / ".swarmai-complete").exists()


def test_the_published_tree_is_readable_by_another_user(saved_model: MakeSavedModel,
                                                        tmp_path: Path) -> None:
    root = saved_model()
    root.chmod(0o700)  # how ModelCache's mkdtemp leaves a root-level SavedModel
    (root / "variables" / "variables.index").chmod(0o600)
    path = TfServingLayout(2).lay_out(root, tmp_path / "store", "iris", "1", SRC)
    assert stat.S_IMODE(path.stat().st_mode) & 0o005 == 0o005
    assert stat.S_IMODE((path / "variables").stat().st_mode) & 0o005 == 0o005
    assert stat.S_IMODE((path / "variables" / "variables.index").stat().st_mode) & 0o004


def test_lay_out_reuses_a_folder_holding_the_same_source(saved_model: MakeSavedModel,
                                                         tmp_path: Path) -> None:
    store, layout = tmp_path / "store", TfServingLayout(2)
    layout.lay_out(saved_model(), store, "iris", "1", SRC)
    inode = (store / "iris" / "1" / "saved_model.pb").stat().st_ino
    assert layout.present(store, "iris", "1", SRC) == store / "iris" / "1"
    layout.lay_out(saved_model(content=b"other"), store, "iris", "1", SRC)
    assert (store / "iris" / "1" / "saved_model.pb").stat().st_ino == inode


def test_a_folder_from_another_registered_model_is_replaced(saved_model: MakeSavedModel,
                                                            tmp_path: Path) -> None:
    store, layout = tmp_path / "store", TfServingLayout(2)
    layout.lay_out(saved_model(content=b"old"), store, "iris", "1", "models:/old-iris/1")
    assert layout.present(store, "iris", "1", SRC) is None
    layout.lay_out(saved_model(content=b"new"), store, "iris", "1", SRC)
    assert (store / "iris" / "1" / "saved_model.pb").read_bytes() == b"new"
    assert sorted(p.name for p in (store / "iris").iterdir()) == ["1"]


def test_leftovers_of_a_killed_pass_are_removed(saved_model: MakeSavedModel,
                                                tmp_path: Path) -> None:
    store = tmp_path / "store"
    (store / "iris" / ".tmp-7" / "variables").mkdir(parents=True)
    TfServingLayout(2).lay_out(saved_model(), store, "iris", "1", SRC)
    assert sorted(p.name for p in (store / "iris").iterdir()) == ["1"]


@pytest.mark.parametrize(
    ("versions", "current", "keep", "pruned"),
    [
        ([1, 2, 3], 3, 2, [1]),
        ([1, 2, 3], 3, 1, [1, 2]),
        ([1, 2, 3], 3, 5, []),
        ([3], 3, 1, []),
        # Rolled back: a newer folder would win under TF Serving's latest policy.
        ([1, 2, 3], 2, 2, [3]),
        ([1, 2, 3, 4], 2, 3, [3, 4]),
        # The current version is kept even when it is not among the newest.
        ([5, 9], 1, 1, [5, 9]),
    ],
)
def test_prune_policy(versions: list[int], current: int, keep: int, pruned: list[int]) -> None:
    assert versions_to_prune(versions, current, keep) == pruned


def test_prune_removes_folders_and_keeps_other_entries(saved_model: MakeSavedModel,
                                                       tmp_path: Path) -> None:
    store, layout = tmp_path / "store", TfServingLayout(2)
    for version in ("1", "2", "3"):
        layout.lay_out(saved_model(), store, "iris", version, f"models:/iris/{version}")
    (store / "iris" / "notes").mkdir()
    removed = layout.prune(store, "iris", "3")
    assert removed == [store / "iris" / "1"]
    assert sorted(p.name for p in (store / "iris").iterdir()) == ["2", "3", "notes"]
