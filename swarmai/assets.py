"""Where swarmai's asset folders are: ``gateway/`` and ``registry/``.

They sit at the top of a source checkout, beside the ``swarmai`` package, where
people read and edit them; a wheel installs the very same files inside the
package, as ``swarmai/_assets/gateway`` and ``swarmai/_assets/registry`` (see
``[tool.setuptools.package-dir]`` in pyproject.toml).  This module is the one
place that knows both layouts: everything else asks :func:`folder`.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal

from swarmai.errors import OperationError

Folder = Literal["gateway", "registry"]
FOLDERS: tuple[Folder, ...] = ("gateway", "registry")

PACKAGE = Path(__file__).resolve().parent
# Inside an installed wheel.
INSTALLED = PACKAGE / "_assets"
# A source checkout (or an editable install of one): the folders beside the package.
CHECKOUT = PACKAGE.parent


@cache
def folder(name: Folder) -> Path:
    """The asset folder ``name``: in the installed package, else in the checkout."""
    installed = INSTALLED / name
    if installed.is_dir():
        return installed
    checkout = CHECKOUT / name
    if checkout.is_dir() and (CHECKOUT / "pyproject.toml").is_file():
        return checkout
    raise OperationError(
        f"swarmai's {name}/ assets are missing: neither {installed} (an installed wheel) "
        f"nor {checkout} (a source checkout) exists; reinstall swarmai"
    )


def path(name: Folder, relative: str) -> Path:
    """A file or folder inside asset folder ``name``, by its ``/``-separated path."""
    return folder(name).joinpath(*relative.split("/"))


def read_text(name: Folder, relative: str) -> str:
    """The text of an asset file (UTF-8)."""
    return path(name, relative).read_text(encoding="utf-8")
