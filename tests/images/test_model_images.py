"""A model's own server image: which requirements it adds, and its content tag (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from swarmai.errors import OperationError
from swarmai.images.model_images import (
    REPOSITORY,
    extra_requirements,
    model_image,
    server_packages,
)
from swarmai.lifecycle.model_images import requirement_uris, requirements_of, served_versions
from swarmai.registry_client import ModelRequirements
from swarmai.render import Serving
from swarmai.spec import load_stack

SERVER = "swarmai/server:0.1.0-abcdef012345"
PROVIDED = {"numpy": "2.4.6", "pandas": "3.1.1", "scikit-learn": "1.9.1", "cloudpickle": "3.1.3"}


def test_what_the_server_has_is_not_installed_again() -> None:
    lines = ["mlflow==3.17.2", "cloudpickle==3.1.3", "numpy>=2", "pandas==3.1.1",
             "scikit-learn==1.9.1"]
    assert extra_requirements(lines, PROVIDED, "models:/iris/1") == ()


def test_what_it_lacks_or_pins_elsewhere_is_added_sorted_and_normalised() -> None:
    lines = ["# written by MLflow", "torch==2.13.0+cpu", "", "numpy==1.26.4",
             "LightGBM == 4.6.0", "pandas[performance]==3.1.1", "lightgbm==4.6.0"]
    assert extra_requirements(lines, PROVIDED, "models:/m/1") == (
        "lightgbm==4.6.0", "numpy==1.26.4", "pandas[performance]==3.1.1",
        "torch==2.13.0+cpu")


def test_a_requirement_for_another_platform_adds_nothing() -> None:
    assert extra_requirements(['pywin32==306; sys_platform == "win32"'], {}, "m") == ()


@pytest.mark.parametrize("line", ["-c constraints.txt", "--index-url https://x/simple",
                                  "not a requirement!"])
def test_options_and_garbage_are_refused_naming_the_version(line: str) -> None:
    with pytest.raises(OperationError, match=r"models:/m/3: requirements.txt line"):
        extra_requirements([line], PROVIDED, "models:/m/3")


def test_the_tag_is_a_function_of_the_server_and_the_requirements() -> None:
    one = model_image(SERVER, ("lightgbm==4.6.0",))
    assert one.tag.startswith(f"{REPOSITORY}:") and one.extras == ("lightgbm==4.6.0",)
    assert model_image(SERVER, ("lightgbm==4.6.0",)) == one
    assert model_image(SERVER, ("lightgbm==4.5.0",)).tag != one.tag
    assert model_image("swarmai/server:0.1.0-000000000000", ("lightgbm==4.6.0",)).tag != one.tag


def test_nothing_to_add_means_the_server_image_itself() -> None:
    assert model_image(SERVER, ()).tag == SERVER


def test_the_server_lock_is_what_it_provides() -> None:
    provided = server_packages()
    assert "fastapi" in provided and "scikit-learn" in provided and "torch" not in provided


def test_served_versions_are_the_pinned_fixed_and_canary_versions_of_fastapi_models(
        tmp_path: Path) -> None:
    path = tmp_path / "stack.yaml"
    path.write_text("""\
version: 1
name: demo
models:
  - {name: a, runtime: fastapi, model: "models:/a@production"}
  - {name: b, runtime: fastapi, model: "models:/b/4"}
  - {name: c, runtime: torchserve, model: "models:/c@production"}
""")
    stack = load_stack(path)
    serving = Serving(pinned={"a": "7", "c": "2"}, canaries={"a": "8"})
    assert served_versions(stack, serving) == ["models:/a/7", "models:/a/8", "models:/b/4"]
    # What deploy's registry check reads the requirements for: the same models.
    assert requirement_uris(stack) == ["models:/a@production", "models:/b/4"]
    own = stack.model_copy(update={"images": {"fastapi": "me/server:1"}})
    assert requirement_uris(own) == []


def test_requirements_the_check_read_are_not_asked_for_again() -> None:
    def needs(uri: str) -> ModelRequirements:
        return ModelRequirements(uri, ("torch==2.13.0",), recorded=True)

    class Registry:
        def __init__(self) -> None:
            self.asked: list[list[str]] = []

        def requirements(self, uris: list[str]) -> list[ModelRequirements]:
            self.asked.append(list(uris))
            return [needs(uri) for uri in uris]

    registry = Registry()
    known = [needs("models:/a/7"), needs("models:/a/6")]  # 6: a version since undone
    found = requirements_of(registry, ["models:/b/4", "models:/a/7"], known)  # type: ignore[arg-type]
    assert [r.uri for r in found] == ["models:/b/4", "models:/a/7"]
    assert registry.asked == [["models:/b/4"]]
    requirements_of(registry, ["models:/a/7"], known)  # type: ignore[arg-type]
    assert registry.asked == [["models:/b/4"], []]
