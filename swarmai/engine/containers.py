"""One-off containers: a command on a stack's network, a file into a volume."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from python_on_whales.exceptions import DockerException

from swarmai.engine.core import (
    Engine,
)
from swarmai.errors import OperationError

# --- one-off containers ---------------------------------------------------------

_WRITE_FILE = """
import os, sys
folder, name, text = sys.argv[1:4]
path = os.path.join(folder, name)
if text:
    # Written aside, then renamed: a file watcher never reads half a file.
    temporary = os.path.join(folder, "." + name + ".tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(temporary, 0o644)
    os.replace(temporary, path)
elif os.path.exists(path):
    os.remove(path)
"""


def write_volume_file(engine: Engine, volume: str, name: str, text: str | None, *,
                      image: str) -> None:
    """Write (``None``: remove) file ``name`` at the top of volume ``volume`` on this node."""
    result = run_oneoff(
        engine, image, ["python3", "-c", _WRITE_FILE, "/volume", name, text or ""],
        network="none", volumes=[(volume, "/volume", "rw")], user="0:0",
        what=f"writing {name} into volume {volume}",
    )
    if result.return_code != 0:
        raise OperationError(f"writing {name} into volume {volume} failed",
                             return_code=result.return_code, stderr=result.stderr)


@dataclass(frozen=True)
class OneoffResult:
    return_code: int
    stdout: str
    stderr: str


def run_oneoff(
    engine: Engine,
    image: str,
    command: Sequence[str],
    *,
    network: str,
    volumes: Sequence[tuple[str, str, str]] = (),
    envs: Mapping[str, str] | None = None,
    user: str | None = None,
    what: str,
) -> OneoffResult:
    """Run ``command`` in a throwaway container on ``network`` and return what it said.

    This is how swarmai reaches services (MLflow) that are not published to the
    world: from inside the stack's own network.  A non-zero exit of the command
    is returned, not raised; failing to start the container (exit 125-127) raises.
    """
    try:
        output = engine.cli.run(
            image, list(command), remove=True, networks=[network], volumes=list(volumes),
            envs=dict(envs or {}), user=user, pull="missing",
        )
    except DockerException as error:
        if error.return_code >= 125:
            raise OperationError(
                f"{what} failed: could not run a container of {image}",
                command=[str(part) for part in error.docker_command],
                return_code=error.return_code, stderr=error.stderr or "",
            ) from None
        return OneoffResult(error.return_code, error.stdout or "", error.stderr or "")
    return OneoffResult(0, str(output), "")
