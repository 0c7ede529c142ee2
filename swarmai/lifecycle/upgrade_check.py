"""``swarmai upgrade-check``: what a deploy with the same flags would do to the registry's
data, said before it is run.

The same verdicts deploy's guard reaches (:mod:`.upgrades`), from the same
inputs: the images running now (the engine) and the images the deploy would
render (the stack's ``images:`` over the defaults, or over the ``--offline``
builds).  Nothing is written, nothing is started.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swarmai.lifecycle.backend import Backend
from swarmai.lifecycle.steps import with_images
from swarmai.lifecycle.upgrade_rules import Verdict
from swarmai.lifecycle.upgrades import registry_verdicts
from swarmai.spec import Stack

# The exit code of a check whose deploy would be refused (0: it would go ahead; 1: the
# check itself failed; 2: invalid input), like `swarmai plan`'s 3 for pending changes.
REFUSED_EXIT = 3


@dataclass(frozen=True)
class UpgradeCheck:
    """The registry services of one stack, each with what a deploy would do to its data."""

    stack: str
    target: str
    acknowledged: bool  # the deploy would be given --upgrade-registry
    verdicts: tuple[Verdict, ...]

    @property
    def refused(self) -> bool:
        """Whether the deploy (with the same flags) would stop before changing anything."""
        return any(v.refuses(acknowledged=self.acknowledged) for v in self.verdicts)

    def as_dict(self) -> dict[str, Any]:
        return {"stack": self.stack, "target": self.target, "refused": self.refused,
                "upgrade_registry": self.acknowledged,
                "services": [v.as_dict() for v in self.verdicts]}


def upgrade_check(backend: Backend, stack: Stack, stack_file: Path, *, offline: bool,
                  upgrade_registry: bool) -> UpgradeCheck:
    """What deploying ``stack`` on ``backend``'s target (with ``--offline`` and
    ``--upgrade-registry`` as given) would do to each registry service's data."""
    verdicts = registry_verdicts(backend.engine, backend.live(stack),
                                 with_images(stack, offline=offline), stack_file=str(stack_file))
    return UpgradeCheck(stack.name, backend.target, upgrade_registry, tuple(verdicts))


def format_check(check: UpgradeCheck) -> str:
    """One line per registry service, then what the deploy would do."""
    lines = [f"{v.service}: {v.says}" for v in check.verdicts]
    if check.refused:
        lines.append(f"a deploy of {check.stack} would be refused before changing anything")
    else:
        lines.append(f"a deploy of {check.stack} would go ahead")
    return "\n".join(lines)
