"""The stack spec: typed, immutable models and the one way to load them."""

from swarmai.spec.fields import Runtime, Target, size_bytes
from swarmai.spec.images import DEFAULT_IMAGES, image_for
from swarmai.spec.load import default_target, format_loc, load_stack
from swarmai.spec.models import (
    App,
    Batching,
    Gateway,
    GatewayAuth,
    GatewayTls,
    Gpus,
    Model,
    Network,
    Node,
    RateLimit,
    Registry,
    Reservations,
    Resources,
    RouteRules,
    Server,
    Stack,
    Storage,
    Volume,
)

__all__ = [
    "DEFAULT_IMAGES",
    "App",
    "Batching",
    "Gateway",
    "GatewayAuth",
    "GatewayTls",
    "Gpus",
    "Model",
    "Network",
    "Node",
    "RateLimit",
    "Registry",
    "Reservations",
    "Resources",
    "RouteRules",
    "Runtime",
    "Server",
    "Stack",
    "Storage",
    "Target",
    "Volume",
    "default_target",
    "format_loc",
    "image_for",
    "load_stack",
    "size_bytes",
]
