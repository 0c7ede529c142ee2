"""The one interface to a running stack, whatever runs it, and the one place that picks.

A :class:`Backend` starts a stack (``swarmai deploy`` on Swarm, ``swarmai up``
on Compose: the same :mod:`steps <swarmai.lifecycle.steps>`), restarts one of
its services, rolls a failed update back where the target keeps the previous
spec, stops it, lists its services, and writes the gateway's dynamic
configuration.  :func:`backend_for` is the only code that chooses by target;
the CLI and promotion call the interface and never ask which target it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from swarmai.engine import Engine
from swarmai.lifecycle.compose import ComposeBackend
from swarmai.lifecycle.logs import LogLines, LogOptions
from swarmai.lifecycle.plan_shapes import LiveState
from swarmai.lifecycle.rotation import RotationReport
from swarmai.lifecycle.status import ServiceStatus
from swarmai.lifecycle.steps import Progress, StartOptions, StartReport, StopReport
from swarmai.lifecycle.swarm import SwarmBackend
from swarmai.lifecycle.tasks import Task, TaskResult
from swarmai.spec import Stack, Target


class Backend(Protocol):
    """What a stack's lifecycle needs of its target (Swarm or Compose)."""

    @property
    def state_dir(self) -> Path | None:
        """The folder given for the stack's state (None: the default, state_directory)."""
        ...

    @property
    def engine(self) -> Engine:
        """The engine it drives (promotion builds a model's image there)."""
        ...

    @property
    def target(self) -> Target: ...

    def start(self, stack: Stack, stack_file: Path, options: StartOptions,
              progress: Progress) -> StartReport:
        """Start (or update) ``stack``: registry first, models checked, servers healthy,
        every route answering."""
        ...

    def restart(self, stack: Stack, service: str, *, timeout_s: float,
                progress: Progress) -> None:
        """Replace ``service``'s containers with fresh ones of the same spec; wait for them."""
        ...

    def roll_back(self, stack: Stack, service: str, *, timeout_s: float,
                  progress: Progress) -> bool:
        """Put ``service`` back on its spec before the last update, and wait: True; False
        when this target keeps no previous spec (the caller starts the old state again)."""
        ...

    def run_task(self, stack: Stack, task: Task) -> TaskResult:
        """Run ``task`` once, on this node, on the stack's registry network with its
        secrets (:mod:`.tasks`); a non-zero exit is returned, not raised."""
        ...

    def rotate_secret(self, stack: Stack, stack_file: Path, name: str, *, timeout_s: float,
                      progress: Progress) -> RotationReport:
        """Give ``name``, a secret swarmai generated for ``stack``, a new random value and
        restart the services that read it (a database password changed in the database);
        re-runnable after an interruption (:mod:`.rotation`)."""
        ...

    def stop(self, stack: Stack, *, volumes: bool, progress: Progress) -> StopReport:
        """Remove what start created; volumes and generated secrets only with ``volumes``."""
        ...

    def rows(self, stack: Stack) -> list[ServiceStatus]:
        """Each service: replicas, health, nodes, GPUs, image (no model versions)."""
        ...

    def notes(self, stack: Stack) -> list[str]:
        """What the rows do not say: where the registry's data lives, nodes that are down
        and the services waiting for them (Swarm)."""
        ...

    def live(self, stack: Stack) -> LiveState:
        """What runs now, as `swarmai plan` compares it (:mod:`.plan_shapes`): services,
        configs, secret names (never values), networks and volumes."""
        ...

    def logs(self, stack: Stack, services: Sequence[str], options: LogOptions) -> LogLines:
        """The log lines of ``services``' replicas (every node), each naming its replica
        and node: in time order, or (``options.follow``) as they come until interrupted."""
        ...

    def write_gateway_file(self, stack: Stack, name: str, text: str | None, *,
                           image: str) -> None:
        """Write (``None``: remove) ``name`` in the gateway's dynamic-config volume, with a
        one-off container of ``image``."""
        ...


def backend_for(target: Target, engine: Engine, *, state_dir: Path | None = None) -> Backend:
    """The backend that runs stacks on ``target`` with ``engine``; ``state_dir`` overrides
    where the rendered files live (default: $XDG_STATE_HOME/swarmai/<stack>-<target>)."""
    if target == "swarm":
        return SwarmBackend(engine, state_dir)
    return ComposeBackend(engine, state_dir)
