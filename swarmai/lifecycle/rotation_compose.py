"""Secret rotation on Compose: secrets are files in the state directory's ``secrets/``,
so a new value is a file renamed into place, and the services that read it are
re-created.  Each step looks before it acts, so a killed run is finished (or the
secret rotated once more, which is safe) by the next one:

    1. no NAME.next file          write it with a fresh value (whole or not at all)
    2. database password          the database does not accept NAME.next: ALTER ROLE
                                  to it, connected with NAME (a one-off container of
                                  the Postgres image on the project's registry
                                  network, both files mounted read-only)
    3. NAME.next                  renamed over NAME (atomic)
    4. the services reading NAME  re-created, waited for until healthy

A run killed between 3 and 4 leaves no NAME.next: the next run rotates again,
and its step 4 re-creates the services.
"""

from __future__ import annotations

import os
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
from swarmai.lifecycle.rotation_db import ALTER_SCRIPT, PROBE_SCRIPT, SECRETS, parse_probe
from swarmai.lifecycle.steps import Progress
from swarmai.render import naming
from swarmai.render.compose import SECRETS_DIR
from swarmai.spec import Stack, image_for


def rotate_compose(engine: Engine, stack: Stack, name: str, *, compose_file: Path,
                   timeout_s: float, progress: Progress) -> RotationReport:
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
        database = _ComposeDatabase(engine, stack, folder)
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


class _ComposeDatabase:
    """The project's Postgres, asked through one-off containers of its image."""

    def __init__(self, engine: Engine, stack: Stack, folder: Path) -> None:
        self.engine, self.folder = engine, folder
        self.network = f"{stack.name}_{naming.REGISTRY_NET}"
        self.image = image_for(stack.images, "postgres")
        for container in docker.project_containers(engine, stack.name):
            if container["Labels"].get("com.docker.compose.service") == naming.POSTGRES:
                self.image = str(container["Image"])  # the running one's: this host has it

    def accepts(self, secret: str) -> bool:
        result = self._run(PROBE_SCRIPT, [secret], f"checking the password of {secret}")
        return parse_probe(result.stdout, secret)

    def set_password(self, current: str, new: str) -> None:
        self._run(ALTER_SCRIPT, [current, new], f"changing the database password to {new}")

    def _run(self, script: str, secrets: list[str], what: str) -> docker.OneoffResult:
        mounts = [(str(self.folder / s), f"{SECRETS}/{s}", "ro") for s in secrets]
        result = docker.run_oneoff(self.engine, self.image, ["sh", "-c", script, "sh", *secrets],
                                   network=self.network, volumes=mounts, user="0:0", what=what)
        if result.return_code != 0:
            raise OperationError(f"{what} failed", return_code=result.return_code,
                                 stderr=result.stderr)
        return result
