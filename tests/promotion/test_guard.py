"""What a promotion may change: only its model; and which images it promotes with."""

from __future__ import annotations

import pytest

from swarmai.errors import UsageError
from swarmai.lifecycle.plan import Change, FieldChange, Plan
from swarmai.lifecycle.plan_live import planned_stack
from swarmai.lifecycle.plan_shapes import LiveState, ServiceShape
from swarmai.promotion import guard
from swarmai.spec import Stack
from swarmai.spec.images import image_for

STACK = Stack.model_validate({
    "version": 1, "name": "demo",
    "models": [{"name": "iris", "runtime": "fastapi", "model": "models:/iris@production"},
               {"name": "bert", "runtime": "tfserving", "model": "models:/bert@production"}],
})
IRIS, BERT = STACK.models


def _live(gateway_image: str | None) -> LiveState:
    services = {} if gateway_image is None else {"gateway": ServiceShape(image=gateway_image)}
    return LiveState(services=services)


@pytest.mark.parametrize("offline", [True, False])
def test_the_gateway_image_tells_how_the_stack_was_deployed(offline: bool) -> None:
    image = image_for(planned_stack(STACK, "swarm", offline=offline).images, "traefik")
    assert guard.deployed_offline(STACK, "swarm", _live(image + "@sha256:" + "a" * 64)) is offline
    said: list[str] = []
    assert guard.offline_for(STACK, "swarm", _live(image), not offline, said.append) is offline
    assert said == [f"stack demo runs the {'offline' if offline else 'default'} images: "
                    f"using them (as if {'with' if offline else 'without'} --offline)"]


def test_a_stack_not_running_or_overridden_keeps_what_was_asked() -> None:
    assert guard.deployed_offline(STACK, "swarm", _live(None)) is None
    assert guard.deployed_offline(STACK, "swarm", _live("mirror.local/traefik:v3")) is None
    assert guard.offline_for(STACK, "swarm", _live(None), True, print) is True


def _change(kind: str, name: str) -> Change:
    return Change(kind, name, "change", (FieldChange("image", "a", "b", True),), True)


def test_only_the_models_own_services_and_files_may_change() -> None:
    plan = Plan("demo", "swarm", (
        _change("service", "model-iris"), _change("service", "model-iris-canary"),
        _change("service", "sync-iris"), _change("config", "runtimes/iris/models.config"),
        _change("service", "model-bert"), _change("service", "mlflow"),
        _change("config", "gateway/dynamic/routes.yml")))
    foreign = guard.foreign_changes(plan, IRIS)
    assert [c.name for c in foreign] == ["model-bert", "mlflow", "gateway/dynamic/routes.yml"]


def test_foreign_changes_refuse_with_each_difference_and_the_way_out() -> None:
    plan = Plan("demo", "swarm", (_change("service", "mlflow"),))
    with pytest.raises(UsageError) as raised:
        guard.refuse_foreign(plan, plan.changes, IRIS, "stack.yaml", offline=True)
    text = str(raised.value)
    assert text.startswith("stack.yaml: the stack differs from what runs beyond model iris")
    assert "~ service mlflow (restarts)\n    image: a -> b" in text
    assert "(`swarmai deploy stack.yaml --offline`)" in text
    assert raised.value.exit_code == 2
    guard.refuse_foreign(plan, [], IRIS, "stack.yaml", offline=True)  # nothing: no refusal
