"""`runtime: app`: what a model running its own image may and must say.

The refusals (one rule per file) are in the invalid corpus, tests/spec/invalid/app-*.yaml.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from swarmai.errors import SpecError
from swarmai.spec import load_stack

Write = Callable[..., Path]

HEAD = "version: 1\nname: demo\nmodels:\n"


def test_an_app_needs_only_its_image(write_stack: Write) -> None:
    stack = load_stack(write_stack(HEAD + "  - {name: s, runtime: app, app: {image: 'me/s:1'}}\n"))
    (model,) = stack.models
    assert model.app is not None
    assert (model.app.port, model.app.health_path, model.app.readiness_path) == (
        8000, "/healthz", "/healthz")
    assert (model.model, model.registered_name, model.pinned_by_deploy) == (None, None, False)
    assert model.app.command is None


def test_an_app_may_name_its_port_paths_command_and_a_registry_model(write_stack: Write) -> None:
    stack = load_stack(write_stack(HEAD + """\
  - name: ranker
    runtime: app
    model: models:/ranker@production
    app:
      image: registry.local:5000/team/ranker@sha256:0123abcd
      port: 9000
      health_path: /health/live
      ready_path: /health/ready/
      command: [uvicorn, "ranker.main:app", --port, 9000]
    environment: {LOG_LEVEL: info}
    volumes: [{source: vocab, target: /opt/vocab}]
    gpus: {devices: ["0"]}
    idempotent: false
"""))
    (model,) = stack.models
    assert model.app is not None
    assert model.app.readiness_path == "/health/ready/"
    assert model.app.command == ("uvicorn", "ranker.main:app", "--port", "9000")
    assert (model.registered_name, model.pinned_by_deploy) == ("ranker", True)


def test_an_app_pinned_to_a_version_is_not_pinned_again(write_stack: Write) -> None:
    stack = load_stack(write_stack(
        HEAD + "  - {name: s, runtime: app, model: models:/s/3, app: {image: 'me/s:1'}}\n"))
    assert stack.models[0].pinned_by_deploy is False


def test_an_app_reserves_none_of_swarmais_mount_points(write_stack: Write) -> None:
    # The FastAPI server's model cache is its own; an app may mount something there.
    load_stack(write_stack(HEAD + """\
  - name: s
    runtime: app
    app: {image: 'me/s:1'}
    volumes: [{source: cache, target: /var/cache/swarmai/models}]
"""))


@pytest.mark.parametrize("path", ["/", "/healthz", "/v1/health", "/.well-known/ready"])
def test_health_paths_that_are_urls_are_accepted(write_stack: Write, path: str) -> None:
    load_stack(write_stack(
        HEAD + f"  - {{name: s, runtime: app, app: {{image: 'me/s:1', health_path: '{path}'}}}}\n"))


@pytest.mark.parametrize("path", ["healthz", "//x", "/a/../b", "/x?y=1", "/a b", "/${X}"])
def test_health_paths_that_are_not_plain_url_paths_are_refused(write_stack: Write,
                                                               path: str) -> None:
    app = f"{{image: 'me/s:1', ready_path: '{path}'}}"
    with pytest.raises(SpecError) as caught:
        load_stack(write_stack(HEAD + f"  - {{name: s, runtime: app, app: {app}}}\n"))
    assert [p.path for p in caught.value.problems] == ["models[0].app.ready_path"]


def test_every_app_rule_is_reported_at_once(write_stack: Write) -> None:
    with pytest.raises(SpecError) as caught:
        load_stack(write_stack(HEAD + """\
  - {name: a, runtime: app, batching: {max_batch_size: 2, max_delay_ms: 1}, server: {workers: 2}}
  - {name: b, runtime: torchserve, app: {image: 'me/b:1'}}
"""))
    assert [p.path for p in caught.value.problems] == [
        "models[0].app", "models[0].batching", "models[0].server",
        "models[1].model", "models[1].app"]
