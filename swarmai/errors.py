"""The one exception hierarchy of swarmai.

Every error a user can cause or meet derives from :class:`SwarmaiError`, so the
CLI can turn all of them into a message and an exit code without a traceback:
invalid input exits 2, an operation that failed against a real system exits 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class SwarmaiError(Exception):
    """Root of every error swarmai raises on purpose."""

    exit_code = 1


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a stack file, located by its YAML path."""

    file: str
    path: str
    message: str
    hint: str = ""

    def __str__(self) -> str:
        where = f"{self.file}: {self.path}: " if self.path else f"{self.file}: "
        hint = f" ({self.hint})" if self.hint else ""
        return f"{where}{self.message}{hint}"

    def as_dict(self) -> dict[str, str]:
        return {"file": self.file, "path": self.path, "message": self.message, "hint": self.hint}


class SpecError(SwarmaiError):
    """The stack file is invalid; carries every problem found, not just the first."""

    exit_code = 2

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class UsageError(SwarmaiError):
    """The command line asks for something that cannot be done as asked."""

    exit_code = 2


class OperationError(SwarmaiError):
    """An external system (Docker, MLflow, S3) refused or failed an operation.

    Carries the command, its exit code and its stderr, like python-on-whales'
    ``DockerException``, so the user sees what was run and what it said.
    """

    exit_code = 1

    def __init__(
        self,
        message: str,
        *,
        command: Sequence[str] = (),
        return_code: int | None = None,
        stderr: str = "",
    ) -> None:
        self.message = message
        self.command = tuple(command)
        self.return_code = return_code
        self.stderr = stderr
        super().__init__(self._describe())

    def _describe(self) -> str:
        lines = [self.message]
        if self.command:
            lines.append(f"  command: {' '.join(self.command)}")
        if self.return_code is not None:
            lines.append(f"  exit code: {self.return_code}")
        if self.stderr.strip():
            tail = self.stderr.strip().splitlines()[-15:]
            lines.append("  stderr:")
            lines.extend(f"    {line}" for line in tail)
        return "\n".join(lines)


class Interrupted(OperationError):
    """SIGINT or SIGTERM stopped an operation, which put back what it had changed."""

    exit_code = 130  # what a shell reports for a command stopped by Ctrl-C


class Busy(OperationError):
    """Another swarmai process holds the lock this operation needs; nothing was done."""

    exit_code = 75  # EX_TEMPFAIL (sysexits.h): try again later
