"""Per-node engine settings for GPU scheduling on Swarm.

Each GPU node advertises one discrete generic resource per device
(``swarmai-gpu-<node>-<device>=1``), so the Swarm scheduler itself refuses to
give one device to two tasks.  The device hand-over inside the container is
then done by ``NVIDIA_VISIBLE_DEVICES``, which swarmai sets on every service:
to exactly the reserved ids, or to ``void`` for services that reserved none.

The trap this avoids: the NVIDIA runtime hook reads the device list from the
first variable named in ``swarm-resource`` that is present, and only then from
``NVIDIA_VISIBLE_DEVICES``.
- If ``swarm-resource`` names a variable Swarm never sets (the common pairing
  of kind ``NVIDIA-GPU`` with ``DOCKER_RESOURCE_GPU``), the hook falls back to
  ``NVIDIA_VISIBLE_DEVICES``, which CUDA base images set to ``all``: every GPU
  of the node is silently exposed.  swarmai's explicit value closes that.
- If it names swarmai's discrete kinds, the hook reads their *value*, the
  count ``1``, as a device id: every task would get GPU 1.  So
  ``swarm-resource`` must be empty on swarmai nodes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from swarmai.render.naming import gpu_kind
from swarmai.spec import Stack

NVIDIA_CONFIG_PATH = "/etc/nvidia-container-runtime/config.toml"


@dataclass(frozen=True)
class NodeConfig:
    hostname: str
    daemon_json: dict[str, Any]
    nvidia_toml: str


def node_configs(stack: Stack) -> list[NodeConfig]:
    """The engine settings every GPU node in ``stack.nodes`` needs."""
    return [
        NodeConfig(hostname, daemon_fragment(hostname, node.gpus), nvidia_fragment())
        for hostname, node in stack.nodes.items()
    ]


def daemon_fragment(hostname: str, devices: tuple[str, ...]) -> dict[str, Any]:
    """Keys to merge into the node's /etc/docker/daemon.json."""
    return {
        "default-runtime": "nvidia",
        "runtimes": {"nvidia": {"path": "nvidia-container-runtime", "args": []}},
        "node-generic-resources": [f"{gpu_kind(hostname, d)}=1" for d in devices],
    }


def nvidia_fragment() -> str:
    """The nvidia-container-runtime setting that must go with the daemon fragment."""
    return (
        f"# {NVIDIA_CONFIG_PATH}, top level (not under a [section]).\n"
        "# Empty: the hook must take devices from NVIDIA_VISIBLE_DEVICES, which\n"
        "# swarmai sets to exactly the reserved ids. Naming swarmai's discrete kinds\n"
        '# here would hand every task GPU "1" (the kinds\' count, read as an id).\n'
        'swarm-resource = ""\n'
    )
