"""Running torch-model-archiver, behind a one-call interface tests can replace.

The archiver is a separate tool (``torch-model-archiver==0.12.0`` in the
model-sync image), so the core receives an :data:`Archiver` and never spawns
it directly; :func:`command_archiver` is the real one.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from swarmai.incontainer.sync.errors import ArchiveError

# The archiver's own module entry point: works whether or not the console
# script is on PATH, and always in this interpreter's environment.
DEFAULT_COMMAND: tuple[str, ...] = (sys.executable, "-m", "model_archiver.model_packaging")
# Generous: archiving copies and zips the whole model (several GB for some).
_TIMEOUT_S = 1800


@dataclass(frozen=True)
class ArchiveSpec:
    """The inputs of one ``.mar``; the flags are torch-model-archiver's own."""

    model_name: str
    version: str
    serialized_file: Path
    # A path to a handler .py, or the name of a TorchServe built-in handler.
    handler: str
    model_file: Path | None = None
    extra_files: tuple[Path, ...] = ()


# (spec, empty work dir) -> the .mar it wrote, somewhere under the work dir.
Archiver = Callable[[ArchiveSpec, Path], Path]


def archiver_args(spec: ArchiveSpec, export_path: Path) -> list[str]:
    """The command-line arguments that build ``<export_path>/<model_name>.mar``."""
    args = [
        "--model-name", spec.model_name,
        "--version", spec.version,
        "--serialized-file", str(spec.serialized_file),
        "--handler", spec.handler,
    ]  # fmt: skip
    if spec.model_file is not None:
        args += ["--model-file", str(spec.model_file)]
    if spec.extra_files:
        args += ["--extra-files", ",".join(str(p) for p in spec.extra_files)]
    return [*args, "--export-path", str(export_path), "--force"]


def command_archiver(command: Sequence[str] = DEFAULT_COMMAND) -> Archiver:
    """An :data:`Archiver` that runs ``command`` (torch-model-archiver) in a subprocess."""

    def archive(spec: ArchiveSpec, work_dir: Path) -> Path:
        export, scratch = work_dir / "export", work_dir / "scratch"
        export.mkdir()
        scratch.mkdir()
        # The archiver stages files in $TMPDIR/<model-name>: a private TMPDIR
        # keeps two archivers (or a stale run) from sharing that folder.
        env = {**os.environ, "TMPDIR": str(scratch)}
        _run([*command, *archiver_args(spec, export)], env)
        mar = export / f"{spec.model_name}.mar"
        if not mar.is_file():
            raise ArchiveError(f"torch-model-archiver exited 0 but wrote no {mar.name}")
        return mar

    return archive


def _run(argv: list[str], env: dict[str, str]) -> None:
    try:
        done = subprocess.run(argv, env=env, capture_output=True, text=True,
                              timeout=_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise ArchiveError(f"cannot run torch-model-archiver ({argv[0]}): {error}") from None
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        detail = lines[-1] if lines else "no output"
        raise ArchiveError(f"torch-model-archiver exited {done.returncode}: {detail}")
