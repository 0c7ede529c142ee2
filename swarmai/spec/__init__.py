"""The stack spec: typed, immutable models and the one way to load them."""

from swarmai.spec.images import DEFAULT_IMAGES, image_for
from swarmai.spec.load import default_target, format_loc, load_stack
from swarmai.spec.models import (
    Batching,
    Gateway,
    GatewayAuth,
    Gpus,
    Model,
    Network,
    Node,
    Registry,
    Resources,
    Runtime,
    Stack,
    Storage,
    Target,
)

__all__ = [
    "DEFAULT_IMAGES",
    "Batching",
    "Gateway",
    "GatewayAuth",
    "Gpus",
    "Model",
    "Network",
    "Node",
    "Registry",
    "Resources",
    "Runtime",
    "Stack",
    "Storage",
    "Target",
    "default_target",
    "format_loc",
    "image_for",
    "load_stack",
]
