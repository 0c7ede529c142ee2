"""A crashed replica costs no request (test_runtimes.py runs this on its stacks, on
the one-node Swarm and on Compose, for the FastAPI server and for TorchServe).

Under 4 clients through Traefik, the process of one replica of a two-replica
model is killed with SIGKILL from the host, as a crash or the kernel's OOM
killer would (not `docker kill`, which the engine counts as a deliberate
stop).  Twice: the first replica, then, once the model has two routed
replicas again, the other.  The gateway retries a prediction whose replica
died under it on the other one (gateway/middlewares.yml: predictions are
idempotent) and stops routing to the dead one within its active health check.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from lifecycle import wait_until

from swarmai.engine import Engine

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from loadgen import Load

# How long the load runs after each kill: past the gateway's health check and
# the orchestrator's restart, so requests to the restarted replica count too.
AFTER_KILL_S = 12.0
ROUTED_AFTER_S = 4.0


def _running(label: str) -> list[dict[str, Any]]:
    """The running containers carrying ``label``, oldest first."""
    api = Engine.from_env().api
    found = api.containers(filters={"label": label, "status": "running"})
    return sorted(found, key=lambda c: c["Created"])


def _healthy(label: str) -> list[str]:
    api = Engine.from_env().api
    ids = [str(c["Id"]) for c in _running(label)]
    return [i for i in ids
            if api.inspect_container(i)["State"].get("Health", {}).get("Status") == "healthy"]


def _crash(container: str) -> None:
    """SIGKILL the container's main process from the host."""
    pid = int(Engine.from_env().api.inspect_container(container)["State"]["Pid"])
    os.kill(pid, signal.SIGKILL)


def _two_routed(label: str) -> None:
    """Wait for two healthy replicas, then for the gateway to route to both: its
    Docker provider at once, its Swarm provider within a 2 s poll."""
    wait_until(lambda: len(_healthy(label)) == 2, 180, f"two healthy replicas ({label})")
    time.sleep(ROUTED_AFTER_S)


def kill_replicas_under_load(url: str, payload: dict[str, Any], label: str) -> dict[str, Any]:
    """Crash one replica, then the other, while 4 clients POST ``payload`` to
    ``url``; the load's summary.  ``label`` filters the model's containers."""
    _two_routed(label)
    crashed: set[str] = set()
    with Load(url, payload, clients=4) as load:
        time.sleep(2)
        for _ in range(2):
            # Compose restarts the same container; Swarm starts a new task.
            victim = next(str(c["Id"]) for c in _running(label) if c["Id"] not in crashed)
            _crash(victim)
            crashed.add(victim)
            time.sleep(AFTER_KILL_S)
            _two_routed(label)
    summary = load.summary()
    print(f"two replica crashes under load, {label}: {summary}")
    return summary
