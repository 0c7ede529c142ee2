"""Cross-field rules: what they accept, target selection, and all-at-once reporting."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from swarmai.errors import SpecError
from swarmai.spec import Stack, default_target, load_stack

Write = Callable[..., Path]

NODES = """\
version: 1
name: demo
nodes:
  gpu-a: {gpus: ["0", "1"]}
  gpu-b: {gpus: ["0"]}
models:
"""


def model(name: str, extra: str = "") -> str:
    text = f"  - name: {name}\n    runtime: torchserve\n    model: models:/{name}/1\n"
    return text + "".join(f"    {line}\n" for line in extra.splitlines())


def paths(error: pytest.ExceptionInfo[SpecError]) -> list[str]:
    return [p.path for p in error.value.problems]


# --- target selection -------------------------------------------------------


def test_default_target_is_swarm_with_nodes(write_stack: Write) -> None:
    stack = load_stack(write_stack(NODES + model("a")))
    assert default_target(stack) == "swarm"


def test_default_target_is_compose_without_nodes(write_stack: Write) -> None:
    stack = load_stack(write_stack("version: 1\nname: demo\nmodels:\n" + model("a")))
    assert default_target(stack) == "compose"


def test_auto_target_applies_swarm_rules_when_nodes_are_declared(write_stack: Write) -> None:
    # Same device id on two different nodes: fine on Swarm, a clash on one Compose host.
    path = write_stack(NODES + model("a", "gpus: {node: gpu-a, devices: ['0']}")
                       + model("b", "gpus: {node: gpu-b, devices: ['0']}"))
    load_stack(path)
    load_stack(path, "swarm")
    with pytest.raises(SpecError) as caught:
        load_stack(path, "compose")
    assert paths(caught) == ["models[1].gpus.devices"]


def test_auto_target_applies_compose_rules_without_nodes(write_stack: Write) -> None:
    # No node named: fine on Compose (node is ignored), refused on Swarm.
    path = write_stack("version: 1\nname: demo\nmodels:\n" + model("a", "gpus: {devices: ['0']}"))
    load_stack(path)
    load_stack(path, "compose")
    with pytest.raises(SpecError) as caught:
        load_stack(path, "swarm")
    assert paths(caught) == ["models[0].gpus.node"]
    assert "declare nodes:" in caught.value.problems[0].hint


def test_compose_ignores_node_inventory(write_stack: Write) -> None:
    path = write_stack(NODES + model("a", "gpus: {node: nowhere, devices: ['5']}"))
    load_stack(path, "compose")
    with pytest.raises(SpecError) as caught:
        load_stack(path, "swarm")
    assert paths(caught) == ["models[0].gpus.node"]


# --- GPU sharing --------------------------------------------------------------


@pytest.mark.parametrize("target", ["swarm", "compose"])
def test_shared_gpu_accepted_when_every_holder_shares(write_stack: Write, target: str) -> None:
    gpus = "gpus: {node: gpu-a, devices: ['0'], share: true}"
    path = write_stack(NODES + model("a", gpus) + model("b", gpus) + model("c", gpus))
    stack = load_stack(path, target)  # type: ignore[arg-type]
    assert all(m.gpus is not None and m.gpus.share for m in stack.models)


def test_shared_gpu_refused_when_one_holder_does_not_share(write_stack: Write) -> None:
    shared = "gpus: {node: gpu-a, devices: ['0'], share: true}"
    path = write_stack(NODES + model("a", shared) + model("b", shared)
                       + model("c", "gpus: {node: gpu-a, devices: ['0']}"))
    with pytest.raises(SpecError) as caught:
        load_stack(path)
    # Reported on every holder after the first.
    assert paths(caught) == ["models[1].gpus.devices", "models[2].gpus.devices"]
    assert "(a, b, c)" in caught.value.problems[0].message


def test_replicas_may_share_a_pinned_gpu(write_stack: Write) -> None:
    path = write_stack(NODES + model("a", "replicas: 3\ngpus: {node: gpu-a, devices: ['0'], "
                                          "share: true}"))
    assert load_stack(path).models[0].replicas == 3


def test_replicas_without_gpus_need_no_share(write_stack: Write) -> None:
    assert load_stack(write_stack(NODES + model("a", "replicas: 5"))).models[0].replicas == 5


def test_distinct_devices_on_one_node(write_stack: Write) -> None:
    path = write_stack(NODES + model("a", "gpus: {node: gpu-a, devices: ['0']}")
                       + model("b", "gpus: {node: gpu-a, devices: ['1']}")
                       + model("c", "gpus: {node: gpu-b, devices: ['0']}"))
    assert len(load_stack(path).models) == 3


def test_one_model_may_hold_several_devices(write_stack: Write) -> None:
    path = write_stack(NODES + model("a", "gpus: {node: gpu-a, devices: ['0', '1']}"))
    assert load_stack(path).models[0].gpus.devices == ("0", "1")  # type: ignore[union-attr]


def test_device_not_on_node_names_the_inventory(write_stack: Write) -> None:
    path = write_stack(NODES + model("a", "gpus: {node: gpu-b, devices: ['0', '3']}"))
    with pytest.raises(SpecError) as caught:
        load_stack(path)
    assert paths(caught) == ["models[0].gpus.devices[1]"]
    assert caught.value.problems[0].hint == "its GPUs are 0"


def test_node_without_gpus_says_none(write_stack: Write) -> None:
    text = NODES.replace('gpu-b: {gpus: ["0"]}', "gpu-b: {}") + model(
        "a", "gpus: {node: gpu-b, devices: ['0']}")
    with pytest.raises(SpecError) as caught:
        load_stack(write_stack(text))
    assert caught.value.problems[0].hint == "its GPUs are none"


# --- routes ---------------------------------------------------------------------


AUTH = "auth: {basic_users_secret: gateway-htpasswd}"


def test_dashboard_like_routes_are_allowed(write_stack: Write) -> None:
    # The dashboard lives on its own entrypoint (gateway.dashboard_port), so
    # /api and /dashboard on the model entrypoint never collide with it.
    on = NODES.replace("nodes:", f"gateway: {{dashboard: true, {AUTH}}}\nnodes:")
    path = write_stack(on + model("a", "route: /dashboard") + model("b", "route: /api"))
    assert load_stack(path).gateway.dashboard is True


def test_dashboard_on_allows_other_routes(write_stack: Write) -> None:
    path = write_stack(NODES.replace("nodes:", f"gateway: {{dashboard: true, {AUTH}}}\nnodes:")
                       + model("a") + model("b", "route: /predict/b"))
    assert [m.public_route for m in load_stack(path).models] == ["/models/a", "/predict/b"]


def test_a_route_login_needs_tls_like_the_stacks(write_stack: Write) -> None:
    off = NODES.replace("nodes:", "gateway: {tls: {mode: 'off'}}\nnodes:")
    path = write_stack(off + model("a") + model("b", f"gateway: {{{AUTH}}}"))
    with pytest.raises(SpecError) as caught:
        load_stack(path)
    assert paths(caught) == ["models[1].gateway.auth"]
    assert "clear text" in str(caught.value)
    on = write_stack(NODES + model("a") + model("b", f"gateway: {{{AUTH}}}"))
    assert load_stack(on).login_secrets() == {
        "gateway-htpasswd": "models[1].gateway.auth.basic_users_secret"}


def test_routes_are_compared_after_defaulting(write_stack: Write) -> None:
    path = write_stack(NODES + model("a", "route: /models/b") + model("b"))
    with pytest.raises(SpecError) as caught:
        load_stack(path)
    assert paths(caught) == ["models[1].route"]


# --- every problem at once ------------------------------------------------------


def test_three_field_errors_reported_together(write_stack: Write) -> None:
    text = """\
        version: 1
        name: Demo
        gateway: {port: 0}
        models:
          - name: a
            runtime: triton
            model: models:/a/1
    """
    with pytest.raises(SpecError) as caught:
        load_stack(write_stack(text))
    assert sorted(paths(caught)) == ["gateway.port", "models[0].runtime", "name"]
    assert str(caught.value).count("\n") == 2  # one line per problem


def test_three_cross_field_errors_reported_together(write_stack: Write) -> None:
    text = NODES.replace("nodes:", "storage: {backend: external}\nnodes:") + model(
        "a", "route: /x\nreplicas: 2\ngpus: {node: gpu-a, devices: ['0']}") + model(
        "b", "route: /x")
    with pytest.raises(SpecError) as caught:
        load_stack(write_stack(text))
    assert sorted(paths(caught)) == ["models[0].replicas", "models[1].route", "storage.endpoint"]


def test_many_errors_in_many_models(write_stack: Write) -> None:
    text = NODES + "".join(model(f"m{i}", "replicas: 0") for i in range(5))
    with pytest.raises(SpecError) as caught:
        load_stack(write_stack(text))
    assert paths(caught) == [f"models[{i}].replicas" for i in range(5)]


def test_field_errors_come_before_cross_field_rules(write_stack: Write) -> None:
    # A cross-field rule runs on a typed Stack only, so a field error stops there.
    text = NODES.replace("nodes:", "storage: {backend: external}\nnodes:") + model(
        "a", "replicas: 0")
    with pytest.raises(SpecError) as caught:
        load_stack(write_stack(text))
    assert paths(caught) == ["models[0].replicas"]


def test_returned_stack_type(write_stack: Write) -> None:
    assert isinstance(load_stack(write_stack(NODES + model("a"))), Stack)


# --- per-model server settings ----------------------------------------------


def test_every_settings_problem_is_reported_at_once(write_stack: Write) -> None:
    path = write_stack(NODES + model("a", "environment: {MODEL_URI: x, SWARMAI_X: y}\n"
                                          "volumes:\n"
                                          "  - {source: s3-data, target: /home/model-server}\n"
                                          "resources: {memory: 1G, reservations: {memory: 2G}}"))
    with pytest.raises(SpecError) as caught:
        load_stack(path)
    assert paths(caught) == [
        "models[0].environment.MODEL_URI", "models[0].environment.SWARMAI_X",
        "models[0].volumes[0].target", "models[0].volumes[0].source",
        "models[0].resources.reservations.memory",
    ]


def test_settings_within_the_rules_are_accepted(write_stack: Write) -> None:
    path = write_stack(NODES + model("a", "environment: {LOG_LEVEL: debug, MODEL_PATH: /x}\n"
                                          "volumes: [{source: /srv/a, target: /opt/a}, "
                                          "{source: /srv/a, target: /opt/b}]\n"
                                          "resources: {cpus: 1, reservations: {cpus: 1}}\n"
                                          "server: {workers: 2, max_body_mb: 8, max_queue: 4, "
                                          "timeout_s: 9}"))
    assert load_stack(path).models[0].server is not None


@pytest.mark.parametrize("runtime", ["fastapi", "tfserving"])
def test_a_timeout_is_honoured_by_every_runtime(write_stack: Write, runtime: str) -> None:
    text = f"version: 1\nname: demo\nmodels:\n{model('a', 'server: {timeout_s: 5}')}"
    assert load_stack(write_stack(text.replace("torchserve", runtime))).models[0].server
