"""Secret rotation on Compose: secrets are files in the state directory's ``secrets/``,
so a new value is a file renamed into place, and the services that read it are
re-created.  Each step looks before it acts, so a killed run is finished (or the
secret rotated once more, which is safe) by the next one:

    1. no NAME.next file          write it with a fresh value (whole or not at all)
    2. database password          the database does not accept NAME.next: ALTER ROLE
                                  to it, connected with NAME (a one-off container of
                                  the Postgres image on the project's registry
                                  network, both files mounted read-only:
                                  Backend.run_task)
    3. NAME.next                  renamed over NAME (atomic)
    4. the services reading NAME  re-created, waited for until healthy

A run killed between 3 and 4 leaves no NAME.next: the next run rotates again,
and its step 4 re-creates the services.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from swarmai import engine as docker
from swarmai.engine import Engine
from swarmai.errors import OperationError
from swarmai.files import create_atomically
from swarmai.lifecycle.rotation import (
    RotationReport,
    fresh_value,
    is_database_password,
    next_name,
)
from swarmai.lifecycle.rotation_db import SECRETS, TaskDatabase
from swarmai.lifecycle.steps import Progress
from swarmai.lifecycle.tasks import Task, TaskResult
from swarmai.render import naming
from swarmai.render.compose import SECRETS_DIR
from swarmai.spec import Stack, image_for


def rotate_compose(engine: Engine, stack: Stack, name: str, run: Callable[[Task], TaskResult],
                   *, compose_file: Path, timeout_s: float,
                   progress: Progress) -> RotationReport:
    """Rotate the secret file ``name`` of ``stack`` (checked to be a generated one)."""
    report = RotationReport(name)
    folder = compose_file.parent / SECRETS_DIR
    current, staged = folder / name, folder / next_name(name)
    users = _users(engine, stack.name, name)
    if not users or not current.exists():
        raise OperationError(f"no container of project {stack.name} reads secret {name}: "
                             "start the stack first (swarmai up)")
    report.services = users
    if not staged.exists():
        value = fresh_value(stack, name)()
        # Same mode as up writes it: the containers' non-root users read it.
        create_atomically(staged, value.content)
        report.reveal = value.reveal
        report.steps.append(f"wrote a new random value to {staged}")
        progress(report.steps[-1])
    if is_database_password(stack, name):
        database = TaskDatabase(run, database_image(engine, stack))
        if not database.accepts(staged.name):
            database.set_password(name, staged.name)
            report.steps.append(f"the database password is now the value of {staged.name}")
            progress(report.steps[-1])
    os.replace(staged, current)
    report.steps.append(f"{staged.name} renamed to {name}")
    progress(f"re-creating {', '.join(users)} with the new {name}")
    docker.compose_recreate(engine, stack.name, compose_file, users, timeout_s=int(timeout_s))
    report.steps.append(f"re-created {', '.join(users)}")
    return report


def _users(engine: Engine, project: str, name: str) -> list[str]:
    """The project's services whose containers mount secret file ``name``."""
    users = set()
    for container in docker.project_containers(engine, project):
        details = docker.inspect_container(engine, container["Id"])
        if any(m.get("Destination") == f"{SECRETS}/{name}" for m in details.get("Mounts") or []):
            users.add(str(container["Labels"]["com.docker.compose.service"]))
    return sorted(users)


def database_image(engine: Engine, stack: Stack) -> str:
    """The running database's own image: it has psql, and this host has it."""
    for container in docker.project_containers(engine, stack.name):
        if container["Labels"].get("com.docker.compose.service") == naming.POSTGRES:
            return str(container["Image"])
    return image_for(stack.images, "postgres")
