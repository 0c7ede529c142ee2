"""Rotating a generated secret of a running stack (``swarmai secrets rotate``).

A secret's value cannot be read back (a Swarm secret is immutable and
write-only), so the new value lives in memory only until it is stored twice:
first as ``NAME.next``, which the services are moved to, then as ``NAME``
again, so the stack file still names the secret it renders and a later deploy
changes nothing.  Each step looks at what is there before it acts, so a run
that died anywhere is finished by the next one:

    1. no NAME.next             create it with a fresh value (kept in memory)
    2. database password        the database does not accept NAME.next: ALTER ROLE
                                to it, connected with NAME (both read from files
                                inside a job on the stack's registry network)
    3. services on NAME         point them at NAME.next (same target file), wait
    4. NAME stale               remove it: it holds the old value, or (the value
                                was lost with a killed run) one nobody can know;
                                for the database, "stale" is "not accepted"
    5. no NAME                  create it with the value of step 1, or a fresh one
                                when a killed run took that value with it (so the
                                password rotates once more: safe)
    6. database password        the database does not accept NAME: ALTER ROLE to it
    7. services on NAME.next    point them back at NAME, wait
    8. NAME.next                removed

Rolling a service restarts it: a database restarts in place (a few seconds in
which MLflow's queries fail), and the S3 store and MLflow change keys one
after the other (a short artifact outage).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from swarmai.errors import OperationError, UsageError
from swarmai.files import write_private
from swarmai.lifecycle.secrets import Fresh, SecretValue, fresh_secrets, user_secrets, yaml_paths
from swarmai.lifecycle.steps import Progress
from swarmai.spec import Stack

NEXT_SUFFIX = ".next"


def next_name(name: str) -> str:
    """Where a rotation keeps the new value while the services move to it."""
    return name + NEXT_SUFFIX


class Vault(Protocol):
    """What a rotation needs of the target that stores a stack's secrets."""

    def exists(self, name: str) -> bool: ...

    def create(self, name: str, value: str) -> None: ...

    def remove(self, name: str) -> None: ...

    def sources(self, target: str) -> dict[str, str]:
        """Service -> the secret it mounts at ``target`` now (empty: no service uses it)."""
        ...

    def point(self, services: Sequence[str], target: str, source: str) -> None:
        """Make ``services`` mount ``source`` at ``target``; return once they are healthy."""
        ...


class Database(Protocol):
    """The database whose password a secret holds."""

    def accepts(self, secret: str) -> bool:
        """Whether the database takes the value of ``secret`` as the password now."""
        ...

    def set_password(self, current: str, new: str) -> None:
        """ALTER the password to ``new``'s value, logged in with ``current``'s."""
        ...


@dataclass
class RotationReport:
    name: str
    services: list[str] = field(default_factory=list)  # rolled to the new value
    steps: list[str] = field(default_factory=list)  # what this run did, in order
    reveal: str | None = None  # a new login to hand over (htpasswd): never printed
    revealed: Path | None = None  # the private file it was written to


def rotate(vault: Vault, name: str, fresh: Callable[[], SecretValue],
           database: Database | None, progress: Progress) -> RotationReport:
    """Rotate secret ``name`` through ``NAME.next`` (the list in this module's docstring).

    A failed step (a service that does not get healthy: Swarm rolls it back onto
    the secret it had) says that the same command finishes the rotation.
    """
    try:
        return _rotate(vault, name, fresh, database, progress)
    except OperationError as error:
        raise OperationError(
            f"{error.message}\nthe rotation of {name} is not finished; once the cause is "
            "fixed, run the same command again: it goes on from where this one stopped",
            command=error.command, return_code=error.return_code,
            stderr=error.stderr) from None


def _rotate(vault: Vault, name: str, fresh: Callable[[], SecretValue],
            database: Database | None, progress: Progress) -> RotationReport:
    report = RotationReport(name)
    staged = next_name(name)

    def did(step: str) -> None:
        report.steps.append(step)
        progress(step)

    users = vault.sources(name)
    if not users:
        raise UsageError(f"no service of the stack mounts secret {name}: deploy the stack "
                         "first (a stopped stack's secrets are replaced by `rm --volumes` and "
                         "a new deploy)")
    report.services = sorted(users)
    value: SecretValue | None = None
    if not vault.exists(staged):
        value = fresh()
        vault.create(staged, value.content)
        did(f"created secret {staged} with a new random value")
    if database is not None and not database.accepts(staged):
        database.set_password(name, staged)
        did(f"the database password is now the value of {staged}")
    _point(vault, users, name, staged, did)
    if vault.exists(name) and (database is None or value is not None
                               or not database.accepts(name)):
        vault.remove(name)
        did(f"removed the old secret {name}")
    if not vault.exists(name):
        if value is None:  # a killed run took the value with it: one more rotation
            value = fresh()
        vault.create(name, value.content)
        report.reveal = value.reveal
        did(f"created secret {name} with the new value")
    if database is not None and not database.accepts(name):
        database.set_password(staged, name)
        did(f"the database password is now the value of {name}")
    _point(vault, vault.sources(name), name, name, did)
    vault.remove(staged)
    did(f"removed {staged}")
    return report


def _point(vault: Vault, users: dict[str, str], target: str, source: str,
           did: Callable[[str], None]) -> None:
    moving = sorted(service for service, now in users.items() if now != source)
    if moving:
        vault.point(moving, target, source)
        did(f"rolled {', '.join(moving)} onto {source}")


def require_rotatable(stack: Stack, name: str, stack_file: str) -> None:
    """Raise a UsageError unless ``name`` is a secret swarmai generates for ``stack``."""
    paths = yaml_paths(stack)
    if name not in paths:
        named = ", ".join(f"{secret} ({path})" for secret, path in sorted(paths.items()))
        raise UsageError(f"{stack_file}: stack {stack.name} uses no secret {name}; the secrets "
                         f"it names are: {named}")
    if name in user_secrets(stack):
        yours = ("the certificate you gave the gateway: swarmai did not issue it; put the new "
                 "certificate in a new secret, set gateway.tls.secret to its name"
                 if name == stack.gateway.tls.secret else
                 "the keys of your external S3 store: swarmai did not generate it and cannot "
                 "change them there; make new keys in the store, replace the secret,")
        raise UsageError(f"{stack_file}: secret {name} ({paths[name]}) holds {yours} and "
                         "redeploy")


def is_database_password(stack: Stack, name: str) -> bool:
    return (stack.registry.backend_store == "postgres"
            and name == stack.registry.db_password_secret)


def fresh_value(stack: Stack, name: str) -> Fresh:
    """A new random value for ``name``, made as deploy makes it."""
    return fresh_secrets(stack)[name]


def keep_reveal(report: RotationReport, state_dir: Path) -> RotationReport:
    """Write a new login the user must be given (htpasswd) to a private file, as deploy does."""
    if report.reveal is not None:
        report.revealed = state_dir / f"{report.name}.credentials"
        write_private(report.revealed, report.reveal)
    return report
