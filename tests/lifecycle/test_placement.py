"""Placement checks from typed node and reservation data: pure logic, no engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from swarmai.engine import Reservation
from swarmai.lifecycle.placement import device_problems, state_node, wanted_devices
from swarmai.spec import Stack, load_stack

STACK = """
version: 1
name: demo
nodes:
  n1: {gpus: ["0", "1"]}
  n2: {gpus: ["0"]}
models:
  - name: torch
    runtime: fastapi
    model: models:/torch@production
    gpus: {node: n1, devices: ["1"]}
  - name: shared
    runtime: fastapi
    model: models:/shared@production
    gpus: {node: n2, devices: ["0"], share: true}
"""


@dataclass(frozen=True)
class FakeNode:
    hostname: str
    node_id: str = "id"
    state: str = "ready"
    labels: dict[str, str] = field(default_factory=dict)
    generic_resources: tuple[str, ...] = ()


def stack(tmp_path: Path, text: str = STACK) -> Stack:
    path = tmp_path / "stack.yaml"
    path.write_text(text)
    return load_stack(path, "swarm")


NODES = [FakeNode("n1", generic_resources=("swarmai-gpu-n1-0=1", "swarmai-gpu-n1-1=1")),
         FakeNode("n2", generic_resources=("swarmai-gpu-n2-0=1",))]


def test_only_exclusive_devices_are_wanted(tmp_path: Path) -> None:
    assert wanted_devices(stack(tmp_path)) == {
        "swarmai-gpu-n1-1": ("demo_model-torch", "n1", "1")}


def test_a_free_device_and_our_own_holder_are_fine(tmp_path: Path) -> None:
    ours = Reservation("demo_model-torch", "demo", ("swarmai-gpu-n1-1",))
    other = Reservation("x_y", "x", ("swarmai-gpu-n1-0",))
    assert device_problems(stack(tmp_path), [ours, other], NODES) == []


def test_a_device_held_elsewhere_names_node_device_and_holder(tmp_path: Path) -> None:
    holder = Reservation("other_torch", "other", ("swarmai-gpu-n1-1",))
    (problem,) = device_problems(stack(tmp_path), [holder], NODES)
    assert "device 1 of node n1 is held by service other_torch of stack other" in problem
    assert "demo_model-torch" in problem


def test_a_device_no_node_advertises_is_named(tmp_path: Path) -> None:
    (problem,) = device_problems(stack(tmp_path), [], [FakeNode("n1")])
    assert "device 1 of node n1" in problem and "swarmai nodes config" in problem


def test_the_state_node_is_the_labelled_one_or_registry_node(tmp_path: Path) -> None:
    labelled = FakeNode("n2", labels={"swarmai.state.demo": "true"})
    assert state_node(stack(tmp_path), [FakeNode("n1"), labelled]) is labelled
    assert state_node(stack(tmp_path), [FakeNode("n1")]) is None
    pinned = stack(tmp_path, STACK.replace("nodes:", "registry: {node: n1}\nnodes:"))
    assert state_node(pinned, [FakeNode("n1"), labelled]).hostname == "n1"  # type: ignore[union-attr]
