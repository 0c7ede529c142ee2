"""The images a stack runs, pinned, and overridable per stack with ``images:``.

Tags are pinned so a redeploy never rolls a service because a mutable tag moved
upstream.  The stateful ones match what ``--offline`` builds (the same Postgres
major, the same MLflow release): switching between the two must never put
another Postgres major, or another MLflow schema, over a registry's data
(tests/spec/test_images_agree.py keeps it so).  Air-gapped sites point any key
at their own registry in the stack's ``images:`` map; ``swarmai images build
--offline`` builds local equivalents.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from swarmai import __version__

DEFAULT_IMAGES: Mapping[str, str] = MappingProxyType(
    {
        "traefik": "traefik:v3.7.15",
        "seaweedfs": "chrislusf/seaweedfs:4.48",
        "minio": "minio/minio:RELEASE.2025-04-22T22-12-26Z",
        "mlflow": "ghcr.io/mlflow/mlflow:v3.17.2-full",
        "postgres": "postgres:15.14-bookworm",
        "tfserving": "tensorflow/serving:2.18.0",
        "tfserving-gpu": "tensorflow/serving:2.18.0-gpu",
        "torchserve": "pytorch/torchserve:0.12.0-cpu",
        "torchserve-gpu": "pytorch/torchserve:0.12.0-gpu",
        "fastapi": f"swarmai/server:{__version__}",
        "model-sync": f"swarmai/model-sync:{__version__}",
        "engine-proxy": f"swarmai/engine-proxy:{__version__}",
    }
)


def image_for(images: Mapping[str, str], key: str) -> str:
    """The image for ``key``: the stack's override if it has one, else the pinned default."""
    return images.get(key, DEFAULT_IMAGES[key])
