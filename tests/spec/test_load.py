"""The YAML stage of load_stack, problem locations, and format_loc."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from swarmai.errors import Problem, SpecError
from swarmai.spec import format_loc, load_stack
from swarmai.spec.suggest import did_you_mean

Write = Callable[..., Path]

MINIMAL = "version: 1\nname: demo\nmodels:\n  - {name: a, runtime: fastapi, model: models:/a/1}\n"


def problems(path: Path | str, target: str | None = None) -> tuple[Problem, ...]:
    with pytest.raises(SpecError) as caught:
        load_stack(path, target)  # type: ignore[arg-type]
    return caught.value.problems


@pytest.mark.parametrize(
    ("loc", "text"),
    [
        ((), ""),
        (("name",), "name"),
        (("gateway", "port"), "gateway.port"),
        (("models", 1, "gpus"), "models[1].gpus"),
        (("models", 0, "gpus", "devices", 2), "models[0].gpus.devices[2]"),
        (("nodes", "gpu-a", "gpus", 0), "nodes.gpu-a.gpus[0]"),
        (("models", 3), "models[3]"),
        ((0,), "[0]"),
    ],
)
def test_format_loc(loc: tuple[str | int, ...], text: str) -> None:
    assert format_loc(loc) == text


def test_problem_str_and_dict() -> None:
    located = Problem("s.yaml", "models[0].name", "is bad", "fix it")
    assert str(located) == "s.yaml: models[0].name: is bad (fix it)"
    assert str(Problem("s.yaml", "", "is empty")) == "s.yaml: is empty"
    assert located.as_dict() == {"file": "s.yaml", "path": "models[0].name",
                                 "message": "is bad", "hint": "fix it"}


def test_spec_error_lists_every_problem() -> None:
    error = SpecError([Problem("f", "a", "x"), Problem("f", "b", "y", "z")])
    assert str(error) == "f: a: x\nf: b: y (z)"
    assert error.exit_code == 2


def test_file_label_is_the_path_as_given(write_stack: Write) -> None:
    path = write_stack("version: 2\n" + MINIMAL.split("\n", 1)[1])
    assert problems(str(path))[0].file == str(path)


def test_missing_file(tmp_path: Path) -> None:
    (problem,) = problems(tmp_path / "nope.yaml")
    assert (problem.path, problem.message) == ("", "file not found")


def test_directory_is_reported_not_raised(tmp_path: Path) -> None:
    (problem,) = problems(tmp_path)
    assert problem.message.startswith("cannot be read")


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"version: 1\nname: caf\xe9\n")
    (problem,) = problems(path)
    assert problem.message.startswith("cannot be read")


@pytest.mark.parametrize(
    ("text", "kind"),
    [("", "empty"), ("# only a comment\n", "empty"), ("- a\n- b\n", "a list"),
     ("just text\n", "a string"), ("42\n", "an integer")],
)
def test_document_must_be_a_mapping(write_stack: Write, text: str, kind: str) -> None:
    (problem,) = problems(write_stack(text))
    assert problem.path == ""
    assert problem.message == f"must be a YAML mapping, but it is {kind}"


def test_syntax_error_has_line_and_column(write_stack: Write) -> None:
    (problem,) = problems(write_stack("version: 1\nname: [demo\nmodels: []\n"))
    assert problem.path == ""
    assert problem.message.startswith("YAML syntax error at line ")
    assert "column" in problem.message


def test_tab_indentation_is_a_syntax_error(write_stack: Write) -> None:
    (problem,) = problems(write_stack("version: 1\nname: demo\nmodels:\n\t- name: a\n"))
    assert "line 4, column 1" in problem.message


def test_duplicate_key_is_refused_with_its_location(write_stack: Write) -> None:
    (problem,) = problems(write_stack("version: 1\nname: demo\nname: other\nmodels: []\n"))
    assert problem.message == (
        "YAML syntax error at line 3, column 1: "
        "duplicate key 'name' (the first one would be silently lost)"
    )


def test_duplicate_key_in_nested_mapping(write_stack: Write) -> None:
    text = MINIMAL + "gateway:\n  port: 80\n  dashboard: true\n  port: 81\n"
    (problem,) = problems(write_stack(text))
    assert "line 8, column 3: duplicate key 'port'" in problem.message


def test_same_key_in_sibling_mappings_is_fine(write_stack: Write) -> None:
    text = (
        "version: 1\nname: demo\nmodels:\n"
        "  - {name: a, runtime: fastapi, model: models:/a/1}\n"
        "  - {name: b, runtime: fastapi, model: models:/b/1}\n"
    )
    assert len(load_stack(write_stack(text)).models) == 2


def test_python_tags_are_refused(write_stack: Write) -> None:
    text = MINIMAL.replace("name: demo", "name: !!python/object/apply:os.getcwd []")
    (problem,) = problems(write_stack(text))
    assert problem.message.startswith("YAML syntax error")


@pytest.mark.parametrize("text", ["? [1, 2]\n: x\n", "extra: {[1]: x}\n", "? {a: 1}\n: x\n"])
def test_unhashable_key_is_a_problem(write_stack: Write, text: str) -> None:
    (problem,) = problems(write_stack(MINIMAL + text))
    assert problem.path == ""
    assert "is not text" in problem.message
    assert "line 5" in problem.message


def test_anchors_and_aliases_are_resolved(write_stack: Write) -> None:
    text = (
        "version: 1\nname: demo\n"
        "gateway: {auth: {basic_users_secret: &secret htpasswd}}\n"
        "models:\n"
        "  - {name: a, runtime: fastapi, model: &uri models:/shared/1}\n"
        "  - {name: b, runtime: fastapi, model: *uri}\n"
    )
    stack = load_stack(write_stack(text))
    assert [m.model for m in stack.models] == ["models:/shared/1"] * 2


def test_unknown_key_hint_lists_known_keys_when_nothing_is_close(write_stack: Write) -> None:
    (problem,) = problems(write_stack(MINIMAL + "gateway: {zzzzzz: 1}\n"))
    assert problem.path == "gateway.zzzzzz"
    assert problem.hint == "known keys: port, https_port, tls, dashboard, dashboard_port, auth"


def test_unknown_image_key_hint_lists_known_keys(write_stack: Write) -> None:
    (problem,) = problems(write_stack(MINIMAL + "images: {zzzzzz: x}\n"))
    assert problem.hint.startswith("known keys: traefik, ")


def test_missing_field_hint(write_stack: Write) -> None:
    text = "version: 1\nname: demo\nmodels:\n  - {model: models:/a/1, runtime: fastapi}\n"
    (problem,) = problems(write_stack(text))
    assert (problem.path, problem.message, problem.hint) == (
        "models[0].name", "is required but missing", "add name:")


def test_missing_model_is_a_located_problem_except_for_an_app(write_stack: Write) -> None:
    # `model:` is optional in the schema (an app may load none): a check requires it.
    text = "version: 1\nname: demo\nmodels:\n  - {name: a, runtime: fastapi}\n"
    (problem,) = problems(write_stack(text))
    assert (problem.path, problem.hint) == (
        "models[0].model", "add model: models:/NAME@ALIAS (or models:/NAME/VERSION)")
    assert "model: is required" in problem.message


def test_builtin_errors_show_the_value_own_errors_quote_it_once(write_stack: Write) -> None:
    (builtin,) = problems(write_stack(MINIMAL + "gateway: {port: 70000}\n"))
    assert builtin.message.endswith("(got 70000)")
    (own,) = problems(write_stack(MINIMAL.replace("name: demo", "name: Demo")))
    assert own.message.count("'Demo'") == 1
    assert "(got" not in own.message


def test_wrong_type_for_a_section(write_stack: Write) -> None:
    (problem,) = problems(write_stack(MINIMAL + "gateway: 80\n"))
    assert problem.path == "gateway"


def test_models_as_mapping_is_a_type_error(write_stack: Write) -> None:
    text = "version: 1\nname: demo\nmodels: {a: {runtime: fastapi}}\n"
    (problem,) = problems(write_stack(text))
    assert problem.path == "models"


def test_did_you_mean() -> None:
    assert did_you_mean("gatway", ["gateway", "models"]) == "did you mean 'gateway'?"
    assert did_you_mean("zzz", ["gateway", "models"]) == ""
    assert did_you_mean("x", []) == ""
