"""One-off tasks inside a stack's registry network, with its secrets: the same on both targets.

What backup and restore do needs what the CLI's host cannot reach: Postgres
and the S3 store are on the stack's ``registry`` network only, and their
passwords are Docker secrets.  A :class:`Task` says what to run and what it
needs (by the stack's own names); :meth:`Backend.run_task` runs it where the
CLI runs, so a host folder bind-mounted into it is the user's folder:

- Swarm: a ``replicated-job`` service pinned to this node, attached to the
  (attachable) overlay, with the Swarm secrets mounted (only services get
  secrets, never a plain container);
- Compose: a plain one-off container on the project's network, with the
  secret *files* from the state directory bind-mounted read-only where Swarm
  would put them (``/run/secrets/<name>``).

The argument building is pure (:func:`swarm_job_args`, :func:`compose_run_args`),
so both shapes are tested without an engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from swarmai.engine import BindMount, JobAccess
from swarmai.render.compose import SECRETS_DIR as SECRETS_FILES  # the state dir's folder
from swarmai.render.naming import REGISTRY_NET, SECRETS_DIR
from swarmai.spec import Stack


@dataclass(frozen=True)
class HostMount:
    """A folder of this host seen by the task at ``target``."""

    source: Path
    target: str
    read_only: bool = False


@dataclass(frozen=True)
class Task:
    """A command to run once on the stack's ``registry`` network.

    ``volumes`` maps a stack volume key (``mlflow-db``) to where the task sees it:
    the engine-level name is the stack's (``<stack>_<key>``) on both targets.
    """

    what: str  # for messages: "dumping the registry database"
    image: str
    command: tuple[str, ...]
    secrets: tuple[str, ...] = ()
    mounts: tuple[HostMount, ...] = ()
    volumes: tuple[tuple[str, str, bool], ...] = ()  # (key, target, read_only)
    user: str = "0:0"
    timeout_s: float = 1800.0


@dataclass(frozen=True)
class TaskResult:
    return_code: int
    stdout: str
    stderr: str


def registry_network(stack: Stack) -> str:
    return f"{stack.name}_{REGISTRY_NET}"


def swarm_job_args(stack: Stack, task: Task) -> tuple[list[BindMount], JobAccess]:
    """The mounts and access of ``task``'s Swarm job."""
    mounts = [BindMount(str(m.source.resolve()), m.target, m.read_only) for m in task.mounts]
    mounts += [BindMount(f"{stack.name}_{key}", target, read_only, volume=True)
               for key, target, read_only in task.volumes]
    access = JobAccess(networks=(registry_network(stack),), secrets=task.secrets,
                       user=task.user)
    return mounts, access


def compose_run_args(stack: Stack, task: Task, state_dir: Path,
                     ) -> list[tuple[str, str, str]]:
    """The ``docker run`` volumes of ``task`` on Compose: its folders, its stack volumes,
    and each secret's file from ``state_dir`` read-only at ``/run/secrets/<name>``."""
    volumes = [(str(m.source.resolve()), m.target, "ro" if m.read_only else "rw")
               for m in task.mounts]
    volumes += [(f"{stack.name}_{key}", target, "ro" if read_only else "rw")
                for key, target, read_only in task.volumes]
    volumes += [(str((state_dir / SECRETS_FILES / name).resolve()), f"{SECRETS_DIR}/{name}", "ro")
                for name in task.secrets]
    return volumes


def missing_secret_files(task: Task, state_dir: Path) -> Sequence[str]:
    """The secrets of ``task`` with no file in the Compose state directory."""
    return [name for name in task.secrets
            if not (state_dir / SECRETS_FILES / name).is_file()]
