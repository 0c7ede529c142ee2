"""doctor's per-node checks, from fabricated node facts: no engine."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from swarmai.lifecycle.doctor import Diagnosis, _problems, format_report, node_problems
from swarmai.lifecycle.nodes import NodeFacts
from swarmai.render.naming import gpu_kind
from swarmai.spec import Stack, load_stack

IMAGE = "swarmai/server:0.1.0-abc"


def node(hostname: str, **changes: object) -> NodeFacts:
    """A healthy, probed node; ``changes`` make it less so."""
    base = NodeFacts(hostname=hostname, node_id=f"id-{hostname}", role="worker", state="ready",
                     availability="active", engine_version="26.1.5", generic_resources=(),
                     labels={}, ipvs=False, runtimes=("runc",), default_runtime="runc",
                     nvidia_swarm_resource="", pulled=True)
    return replace(base, **changes)  # type: ignore[arg-type]


def diagnosis(*nodes: NodeFacts, ipvs: bool = False, local: str = "id-swarmai-n1") -> Diagnosis:
    return Diagnosis(engine_version="26.1.5", compose_version="2.29.1", swarm_state="active",
                     swarm_manager=True, ipvs=ipvs, endpoint_mode="dnsrr", runtimes=["runc"],
                     default_runtime="runc", node_id=local, nodes=list(nodes),
                     node_resources={n.hostname: list(n.generic_resources) for n in nodes},
                     probe_image=IMAGE)


def gpu_stack(write_stack: Callable[..., Path], ipvs: str = "false") -> Stack:
    return load_stack(write_stack(f"""
        version: 1
        name: vision
        network: {{ipvs: {ipvs}}}
        nodes:
          swarmai-n2: {{gpus: ["0", "1"]}}
          swarmai-n4: {{gpus: ["0"]}}
        models:
          - name: churn
            runtime: fastapi
            model: models:/churn@production
            gpus: {{node: swarmai-n2, devices: ["0"]}}
        """), "swarm")


def test_a_healthy_cluster_has_no_problem() -> None:
    d = diagnosis(node("swarmai-n1", role="manager"), node("swarmai-n2"))
    assert _problems(d) + node_problems(d, None) == []


def test_each_problem_names_its_node() -> None:
    gpus = (f"{gpu_kind('swarmai-n2', '0')}=1",)
    d = diagnosis(
        node("swarmai-n1", role="manager"),
        node("swarmai-n2", generic_resources=gpus, nvidia_swarm_resource="DOCKER_RESOURCE_GPU"),
        node("swarmai-n3", pulled=False, runtimes=None, ipvs=None,
             probe_error="No such image: swarmai/server:0.1.0-abc"),
        node("swarmai-n4", state="down", runtimes=None, ipvs=None, pulled=None),
        node("swarmai-n5", engine_version="24.0.7"),
        node("swarmai-n6", pulled=True, runtimes=None, ipvs=None,
             probe_error="the facts job exited 1: boom"),
    )
    problems = node_problems(d, None)
    assert all(p.startswith("node swarmai-n") for p in problems), problems
    by_node = {n: [p for p in problems if p.startswith(f"node {n}: ")]
               for n in ("swarmai-n1", "swarmai-n2", "swarmai-n3", "swarmai-n4", "swarmai-n5",
                         "swarmai-n6")}
    assert by_node["swarmai-n1"] == []
    assert any("nvidia runtime is not installed" in p for p in by_node["swarmai-n2"])
    assert any("swarm-resource = 'DOCKER_RESOURCE_GPU'" in p for p in by_node["swarmai-n2"])
    assert by_node["swarmai-n3"] == [
        f"node swarmai-n3: could not start the probe image {IMAGE}: No such image: "
        "swarmai/server:0.1.0-abc (every node must be able to pull swarmai's images; "
        "`swarmai images build` builds them here)"]
    assert by_node["swarmai-n4"] == [
        "node swarmai-n4: is down: Swarm runs nothing there until it is Ready again"]
    assert ["older than 25" in p for p in by_node["swarmai-n5"]] == [True]
    assert by_node["swarmai-n6"] == ["node swarmai-n6: probe failed: the facts job exited 1: boom"]


def test_the_local_checks_give_way_to_the_probed_local_node() -> None:
    """On a one-node swarm the missing nvidia runtime is reported once, by node."""
    gpus = (f"{gpu_kind('swarmai-n1', '0')}=1",)
    probed = diagnosis(node("swarmai-n1", role="manager", generic_resources=gpus))
    problems = _problems(probed) + node_problems(probed, None)
    assert len(problems) == 1 and problems[0].startswith("node swarmai-n1: ")
    assert "nvidia runtime is not installed" in problems[0]
    unprobed = diagnosis(node("swarmai-n1", role="manager", generic_resources=gpus,
                              runtimes=None, ipvs=None, pulled=None))
    problems = _problems(unprobed) + node_problems(unprobed, None)
    assert problems == ["GPU resources are advertised but the nvidia runtime is not installed "
                        "here (see `swarmai nodes config`)"]


def test_the_stack_inventory_against_the_swarm(write_stack: Callable[..., Path]) -> None:
    stack = gpu_stack(write_stack)
    advertised = (f"{gpu_kind('swarmai-n2', '0')}=1",)
    d = diagnosis(node("swarmai-n1", role="manager"),
                  node("swarmai-n2", generic_resources=advertised, runtimes=("nvidia", "runc")))
    problems = node_problems(d, stack)
    assert problems == [
        f"node swarmai-n2: vision gives it GPU 1, but its engine does not advertise "
        f"{gpu_kind('swarmai-n2', '1')}=1 (node-generic-resources; see `swarmai nodes config`)",
        "node swarmai-n4: is in vision's nodes: but not in this swarm (join it with "
        "`docker swarm join`, or fix the hostname)",
    ]


def test_nodes_without_ipvs_when_the_stack_renders_vips(write_stack: Callable[..., Path]) -> None:
    nodes = (node("swarmai-n1", role="manager", ipvs=True), node("swarmai-n2", ipvs=False),
             node("swarmai-n3", ipvs=None, runtimes=None, pulled=None, state="down"))
    only_ipvs = [p for p in node_problems(diagnosis(*nodes, ipvs=True),
                                          gpu_stack(write_stack, "auto")) if "IPVS" in p]
    assert only_ipvs == ["node swarmai-n2: has no IPVS, yet network.ipvs: auto (which probes "
                         "only this manager, and found IPVS) renders VIPs; set network.ipvs: "
                         "false"]
    forced = node_problems(diagnosis(*nodes, ipvs=False), gpu_stack(write_stack, "true"))
    assert [p for p in forced if "IPVS" in p] == [
        "node swarmai-n2: has no IPVS, yet network.ipvs: true renders VIPs; set network.ipvs: "
        "false"]
    assert [p for p in node_problems(diagnosis(*nodes, ipvs=True),
                                     gpu_stack(write_stack, "false")) if "IPVS" in p] == []


def test_the_report_and_json_show_every_node() -> None:
    d = diagnosis(node("swarmai-n1", role="manager", generic_resources=("swarmai-gpu-x=1",),
                       runtimes=("nvidia", "runc"), ipvs=True),
                  node("swarmai-n2", state="down", runtimes=None, ipvs=None, pulled=None,
                       nvidia_swarm_resource=None, probe_error="node is down: no job sent"))
    d.problems = node_problems(d, None)
    text = format_report(d)
    assert f"nodes             2; probe image {IMAGE}" in text
    assert "node swarmai-n1: manager, ready, active, engine 26.1.5" in text
    assert ("    ipvs present; runtimes nvidia, runc (default runc); nvidia swarm-resource "
            "unset") in text
    assert "    generic resources: swarmai-gpu-x=1" in text
    assert "node swarmai-n2: worker, down, active, engine 26.1.5\n    not probed: node is down" \
        in text
    assert text.endswith("1 problem(s)")
    report = json.loads(json.dumps(d.as_dict()))
    assert [n["hostname"] for n in report["nodes"]] == ["swarmai-n1", "swarmai-n2"]
    assert report["nodes"][0]["runtimes"] == ["nvidia", "runc"]
    assert report["nodes"][1]["pulled"] is None
