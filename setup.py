"""The packages setuptools installs (everything else is in pyproject.toml).

swarmai's own, found, and the top-level asset folders gateway/ and registry/
with their subfolders, installed inside it as swarmai._assets.gateway and
swarmai._assets.registry (pyproject.toml's package-dir maps them; the code finds
them through swarmai/assets.py).  pyproject.toml alone cannot list found
packages beside mapped ones.
"""

from setuptools import find_namespace_packages, setup

ASSETS = ("gateway", "registry")
CACHES = ["__pycache__", "*.__pycache__"]


def asset_packages(folder: str) -> list[str]:
    found = find_namespace_packages(where=folder, exclude=CACHES)
    return [f"swarmai._assets.{folder}", *(f"swarmai._assets.{folder}.{p}" for p in found)]


setup(packages=[
    *find_namespace_packages(include=["swarmai", "swarmai.*"], exclude=CACHES),
    *(package for folder in ASSETS for package in asset_packages(folder)),
])
