"""``swarmai doctor``: what this engine can do for swarmai, and what it lacks."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from swarmai import engine as docker
from swarmai.engine import Engine
from swarmai.lifecycle.ipvs import kernel_has_ipvs
from swarmai.render.nodes import NVIDIA_CONFIG_PATH

MIN_ENGINE_MAJOR = 25  # healthcheck start_interval


@dataclass
class Diagnosis:
    engine_version: str
    compose_version: str
    swarm_state: str
    swarm_manager: bool
    ipvs: bool
    endpoint_mode: str
    runtimes: list[str]
    default_runtime: str
    swarm_resource: str = ""
    node_resources: dict[str, list[str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def diagnose(engine: Engine) -> Diagnosis:
    info = docker.info(engine)
    swarm = info.get("Swarm", {})
    ipvs = kernel_has_ipvs()
    diagnosis = Diagnosis(
        engine_version=str(info.get("ServerVersion", "?")),
        compose_version=docker.compose_version(engine),
        swarm_state=str(swarm.get("LocalNodeState", "inactive")),
        swarm_manager=bool(swarm.get("ControlAvailable")),
        ipvs=ipvs,
        endpoint_mode="vip (routing mesh)" if ipvs else "dnsrr + host-mode ports",
        runtimes=sorted(info.get("Runtimes", {})),
        default_runtime=str(info.get("DefaultRuntime", "runc")),
        swarm_resource=nvidia_swarm_resource(),
    )
    if diagnosis.swarm_manager:
        diagnosis.node_resources = _node_resources(engine)
    diagnosis.problems = _problems(diagnosis)
    return diagnosis


def _node_resources(engine: Engine) -> dict[str, list[str]]:
    found = {}
    for node in docker.nodes(engine):
        resources = node["Description"].get("Resources", {}).get("GenericResources") or []
        names = []
        for resource in resources:
            spec = resource.get("DiscreteResourceSpec") or resource.get("NamedResourceSpec") or {}
            names.append(f"{spec.get('Kind')}={spec.get('Value')}")
        found[node["Description"]["Hostname"]] = sorted(names)
    return found


def _problems(d: Diagnosis) -> list[str]:
    problems = []
    major = d.engine_version.split(".")[0]
    if not major.isdigit() or int(major) < MIN_ENGINE_MAJOR:
        problems.append(f"engine {d.engine_version} is older than {MIN_ENGINE_MAJOR}: "
                        "run scripts/install-engine.sh")
    if d.compose_version == "missing":
        problems.append("Docker Compose v2 is missing (needed by `swarmai up`)")
    if d.swarm_state != "active":
        problems.append("this engine is not in a swarm (`docker swarm init` for `swarmai deploy`)")
    gpu_nodes = [n for n, r in d.node_resources.items() if r]
    if gpu_nodes and "nvidia" not in d.runtimes:
        problems.append("GPU resources are advertised but the nvidia runtime is not installed "
                        "here (see `swarmai nodes config`)")
    if d.swarm_resource:
        problems.append(f"{NVIDIA_CONFIG_PATH} sets swarm-resource = {d.swarm_resource!r}: the "
                        "NVIDIA hook would read swarmai's per-device counts as device ids; set it "
                        "to \"\" (see `swarmai nodes config`)")
    return problems


def nvidia_swarm_resource(path: Path = Path(NVIDIA_CONFIG_PATH)) -> str:
    """The NVIDIA runtime's top-level swarm-resource setting on this node ("" when unset)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return ""
    for line in text.splitlines():
        if line.strip().startswith("["):
            break  # top-level keys end at the first table
        match = re.match(r"\s*swarm-resource\s*=\s*\"([^\"]*)\"", line)
        if match:
            return match.group(1)
    return ""


def format_report(d: Diagnosis) -> str:
    lines = [
        f"engine            {d.engine_version}",
        f"compose           {d.compose_version}",
        f"swarm             {d.swarm_state}{' (manager)' if d.swarm_manager else ''}",
        f"ipvs              {'present' if d.ipvs else 'absent'} -> endpoint mode {d.endpoint_mode}",
        f"runtimes          {', '.join(d.runtimes)} (default {d.default_runtime})",
    ]
    for node, resources in d.node_resources.items():
        lines.append(f"node {node:12} generic resources: {', '.join(resources) or 'none'}")
    lines.extend(f"problem: {p}" for p in d.problems)
    lines.append("ok" if not d.problems else f"{len(d.problems)} problem(s)")
    return "\n".join(lines)
