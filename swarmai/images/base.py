"""The one base image: a Debian root file system made by debootstrap and imported.

No container registry is reachable on air-gapped or filtered hosts, so not even
``debian:bookworm`` can be pulled; every image swarmai builds is ``FROM`` this
one instead, which needs only a Debian mirror.  debootstrap runs as root on the
host (it is a Debian package; swarmai installs it with apt-get when missing).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

from swarmai import engine as docker
from swarmai.engine import Engine
from swarmai.errors import OperationError
from swarmai.images import catalog
from swarmai.images.catalog import BASE_RECIPE

MIRROR = "http://deb.debian.org/debian"
_CHANGES = (
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    "LABEL swarmai.image=base",
    'CMD ["/bin/bash"]',
)
# Installed into the rootfs: apt sources (with security updates), and apt/dpkg
# settings that keep later layers small.
_FILES = {
    "sources.list": "etc/apt/sources.list",
    "dpkg-nodoc": "etc/dpkg/dpkg.cfg.d/swarmai-nodoc",
    "apt-slim": "etc/apt/apt.conf.d/90swarmai-slim",
}
# Left in the rootfs by debootstrap, useless (or host-specific) in an image.
# Directories stay (apt expects them); the files in them go.
_EMPTIED = ("var/lib/apt/lists", "var/cache/apt", "var/log")
_CLEARED = ("etc/resolv.conf", "etc/hostname")


def build(engine: Engine, tag: str, progress: Callable[[str], None]) -> None:
    """Debootstrap a minimal bookworm into a temporary directory and import it as ``tag``."""
    debootstrap = _debootstrap(progress)
    with tempfile.TemporaryDirectory(prefix="swarmai-base-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        progress(f"  debootstrap {BASE_RECIPE['SUITE']} from {MIRROR} (about a minute)")
        run([
            debootstrap, f"--variant={BASE_RECIPE['VARIANT']}",
            f"--include={BASE_RECIPE['INCLUDE']}", BASE_RECIPE["SUITE"], str(rootfs), MIRROR,
        ], progress)
        _tidy(rootfs)
        tarball = Path(tmp) / "rootfs.tar"
        run(["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(tarball), "."], progress)
        docker.import_rootfs(engine, tarball, tag, _CHANGES)


def run(command: Sequence[str], progress: Callable[[str], None]) -> None:
    """Run a host command, streaming its output; fail with its last lines."""
    tail: deque[str] = deque(maxlen=40)
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"},
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            tail.append(line.rstrip())
            progress(f"    {line.rstrip()}")
    if process.returncode != 0:
        raise OperationError(
            f"building the base image: {Path(command[0]).name} failed",
            command=command, return_code=process.returncode, stderr="\n".join(tail),
        )


def _debootstrap(progress: Callable[[str], None]) -> str:
    """The debootstrap executable, installed from Debian when missing (root only)."""
    if os.geteuid() != 0:
        raise OperationError(
            "building the base image runs debootstrap, which needs root: "
            "run `swarmai images build` as root (or with sudo)"
        )
    found = _which("debootstrap")
    if found is None:
        if _which("apt-get") is None:
            raise OperationError("debootstrap is not installed and there is no apt-get to "
                                 "install it: install debootstrap, then run this again")
        progress("  installing debootstrap (apt-get)")
        run(["apt-get", "update", "-qq"], progress)
        run(["apt-get", "install", "-y", "-qq", "debootstrap"], progress)
        found = _which("debootstrap")
    if found is None:
        raise OperationError("apt-get installed debootstrap, but it is not on PATH")
    return found


def _which(program: str) -> str | None:
    """``shutil.which``, also looking in the sbin directories a user's PATH may lack."""
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    return shutil.which(program, path=path)


def _tidy(rootfs: Path) -> None:
    """Install swarmai's apt/dpkg settings and drop caches, logs and host files."""
    for name, target in _FILES.items():
        destination = rootfs / target
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(catalog.context_dir("base") / name, destination)
    for directory in _EMPTIED:
        for entry in (rootfs / directory).rglob("*"):
            if entry.is_file() or entry.is_symlink():
                entry.unlink()
    for name in _CLEARED:
        (rootfs / name).write_text("")
    # The container engine provides /dev; debootstrap's device nodes are dead weight.
    for entry in (rootfs / "dev").iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
