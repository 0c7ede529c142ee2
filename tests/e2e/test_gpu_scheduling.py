"""The real Swarm scheduler enforces the GPU reservations swarmai renders.

scripts/fake-gpus.sh (run by scripts/test.sh) makes this engine advertise the
per-device resources `swarmai nodes config` prints for GPUs "0" and "1".  The
model services of a rendered stack keep their GPU settings (reservations,
placement, NVIDIA_VISIBLE_DEVICES) but run a trivial command, since no NVIDIA
runtime exists here: what is checked is the scheduler, which is real.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from lifecycle import swarmai, wait_until

from swarmai.engine import Engine

pytestmark = pytest.mark.e2e

NAME = "e2egpu"


def _stack_text(host: str) -> str:
    return f"""\
version: 1
name: {NAME}
nodes: {{"{host}": {{gpus: ["0", "1"]}}}}
models:
  - {{name: a, runtime: fastapi, model: "models:/a@production",
     gpus: {{node: "{host}", devices: ["0"]}}}}
  - {{name: b, runtime: fastapi, model: "models:/b@production",
     gpus: {{node: "{host}", devices: ["1"]}}}}
"""


def _gpu_only_stack(rendered: dict[str, Any], image: str) -> dict[str, Any]:
    """The rendered model services' GPU settings on a trivial, always-healthy container."""
    services = {}
    for name, service in rendered["services"].items():
        if not name.startswith("model-"):
            continue
        deploy = copy.deepcopy(service["deploy"])
        deploy.pop("labels", None)
        services[name] = {
            "image": image,
            "command": ["sleep", "3600"],
            "environment": {"NVIDIA_VISIBLE_DEVICES":
                            service["environment"]["NVIDIA_VISIBLE_DEVICES"]},
            "deploy": deploy,
        }
    return {"version": "3.12", "services": services}


def _task_states(api: Any, service: str) -> list[tuple[str, str]]:
    return [(t["Status"]["State"], t["Status"].get("Err", ""))
            for t in api.tasks(filters={"service": service, "desired-state": "running"})]


def test_pinned_devices_are_exclusive_on_the_real_scheduler(
        tmp_path: Path, offline_images: dict[str, str]) -> None:
    engine = Engine.from_env()
    api = engine.api
    node = api.inspect_node(api.info()["Swarm"]["NodeID"])
    host = node["Description"]["Hostname"]
    resources = node["Description"]["Resources"].get("GenericResources") or []
    kinds = {r["DiscreteResourceSpec"]["Kind"] for r in resources if "DiscreteResourceSpec" in r}
    if not kinds:
        pytest.fail("this engine advertises no GPU resources: run scripts/fake-gpus.sh "
                    "(scripts/test.sh does)")

    stack = tmp_path / "gpu.yaml"
    stack.write_text(_stack_text(host))
    rendered = swarmai("render", str(stack), "-t", "swarm", "-o", str(tmp_path / "out"))
    assert rendered.returncode == 0, rendered.stderr
    document = yaml.safe_load((tmp_path / "out" / "stack.yml").read_text())
    wanted = {spec["discrete_resource_spec"]["kind"]
              for name in ("model-a", "model-b")
              for spec in document["services"][name]["deploy"]["resources"]["reservations"][
                  "generic_resources"]}
    assert wanted <= kinds, f"rendered kinds {wanted} are not what the node advertises {kinds}"

    test_stack = _gpu_only_stack(document, offline_images["fastapi"])
    test_file = tmp_path / "gpu-stack.yml"
    test_file.write_text(yaml.safe_dump(test_stack))
    try:
        engine.cli.stack.deploy(NAME, compose_files=[test_file], resolve_image="never")
        wait_until(lambda: all(s == "running" for s, _ in _task_states(api, f"{NAME}_model-a"))
                   and all(s == "running" for s, _ in _task_states(api, f"{NAME}_model-b")),
                   120, "both GPU services to run")
        for name, device in (("model-a", "0"), ("model-b", "1")):
            (container,) = api.containers(
                filters={"label": f"com.docker.swarm.service.name={NAME}_{name}"})
            env = dict(item.split("=", 1) for item in
                       api.inspect_container(container["Id"])["Config"]["Env"])
            assert env["NVIDIA_VISIBLE_DEVICES"] == device
            assert any(key.startswith("DOCKER_RESOURCE_") for key in env), env
        # A newcomer asking for a device that is already held must be refused.
        test_stack["services"]["thief"] = copy.deepcopy(test_stack["services"]["model-a"])
        test_file.write_text(yaml.safe_dump(test_stack))
        engine.cli.stack.deploy(NAME, compose_files=[test_file], resolve_image="never")
        time.sleep(5)  # give the scheduler every chance to (wrongly) place the thief
        states = _task_states(api, f"{NAME}_thief")
        assert states and all(state == "pending" for state, _ in states), states
        assert any("insufficient resources" in err for _, err in states), states
    finally:
        engine.cli.stack.remove(NAME)
        # `stack rm` returns before the stack is gone; the next run must not race it.
        wait_until(lambda: not api.containers(
            all=True, filters={"label": f"com.docker.stack.namespace={NAME}"})
            and not api.networks(names=[f"{NAME}_default"]), 60, "the GPU test stack to go")
