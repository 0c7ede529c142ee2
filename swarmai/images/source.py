"""swarmai's own source, as the server and model-sync images are built from it.

Nobody publishes swarmai's images, so they are built from the code that is
running: the ``swarmai`` package next to this file and, in a source checkout
(or an editable install), the ``pyproject.toml`` beside it.  The source is
copied into the build context and installed inside the image, so the build
needs nothing from the host's Python tooling or pip configuration.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path

import swarmai
from swarmai.errors import UsageError

PACKAGE = Path(swarmai.__file__).resolve().parent
ROOT = PACKAGE.parent
# The image build contexts are not needed inside an image, and leaving them out
# keeps a Dockerfile edit from re-tagging swarmai's own images.
_EXCLUDED = ("images/contexts",)


def source_files() -> dict[str, bytes]:
    """A snapshot of every file the images install, by path relative to the source root.

    The package's files (code and package data), plus pyproject.toml when this
    is a checkout.  Caches and compiled files are left out: they do not change
    what gets installed.  One snapshot feeds both the tag and the build context,
    so an edit made while images build cannot end up under the wrong tag.
    """
    files: dict[str, bytes] = {}
    for path in sorted(PACKAGE.rglob("*")):
        relative = path.relative_to(PACKAGE).as_posix()
        if not path.is_file() or _skipped(path, relative):
            continue
        files[f"{PACKAGE.name}/{relative}"] = path.read_bytes()
    pyproject = ROOT / "pyproject.toml"
    if pyproject.is_file() and _project(pyproject.read_bytes()).get("name") == "swarmai":
        files["pyproject.toml"] = pyproject.read_bytes()
    return files


def stage(target: Path, files: Mapping[str, bytes]) -> None:
    """Write ``requirements.txt`` and ``src/`` (an installable copy of ``files``) to ``target``."""
    if "pyproject.toml" not in files:
        raise UsageError(
            f"building swarmai's own images needs a swarmai source checkout, and {ROOT} "
            "has no swarmai pyproject.toml: run `swarmai images build` from a checkout "
            "installed with `pip install -e .`"
        )
    project = _project(files["pyproject.toml"])
    dependencies = project.get("dependencies", [])
    assert isinstance(dependencies, list)
    requirements = [*map(str, dependencies), *_server_extra(project)]
    (target / "requirements.txt").write_text("\n".join(requirements) + "\n", encoding="utf-8")
    src = target / "src"
    for relative, data in files.items():
        path = src / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    readme = project.get("readme")
    name = readme.get("file") if isinstance(readme, dict) else readme
    if isinstance(name, str) and not (src / name).exists():
        # The README only feeds package metadata; a stand-in keeps it out of the tag.
        (src / name).write_text("swarmai, as installed by `swarmai images build`.\n")


def _project(pyproject: bytes) -> dict[str, object]:
    """The ``[project]`` table of a pyproject.toml (empty when it has none)."""
    project = tomllib.loads(pyproject.decode("utf-8")).get("project", {})
    return project if isinstance(project, dict) else {}


def _server_extra(project: dict[str, object]) -> list[str]:
    extras = project.get("optional-dependencies", {})
    server = extras.get("server") if isinstance(extras, dict) else None
    if not isinstance(server, list):
        raise UsageError(f"{ROOT / 'pyproject.toml'} has no `server` optional dependencies")
    return [str(requirement) for requirement in server]


def _skipped(path: Path, relative: str) -> bool:
    if "__pycache__" in path.parts or path.suffix in (".pyc", ".pyo"):
        return True
    return any(relative == e or relative.startswith(f"{e}/") for e in _EXCLUDED)
