"""Names and numbers every renderer must agree on.

Service names, ports, network and volume names, generic-resource kinds and
content-hashed config names are derived here and nowhere else.
"""

from __future__ import annotations

import hashlib
import re

from swarmai.spec import Model, Stack, Target

# Container paths of swarmai's own mounts: defined beside the rules that keep a
# stack file's volumes off them.
from swarmai.spec.reserved import CONF_DIR as CONF_DIR
from swarmai.spec.reserved import MODEL_CACHE as MODEL_CACHE
from swarmai.spec.reserved import SECRETS_DIR as SECRETS_DIR
from swarmai.spec.reserved import SHM as SHM
from swarmai.spec.reserved import TFSERVING_MODELS as TFSERVING_MODELS
from swarmai.spec.reserved import TORCHSERVE_STORE as TORCHSERVE_STORE

# Networks: the gateway, model servers and the registry proxy share "models";
# MLflow and the stores it writes to sit on "registry", which no model server
# can reach (they read MLflow through the registry proxy).
MODELS_NET = "models"
REGISTRY_NET = "registry"
# Internal (no way out, nothing attaches): the gateway and the engine proxy only.
ENGINE_NET = "engine"

GATEWAY = "gateway"
# On a service that runs as root: why (`docker inspect` and the render say it).
ROOT_LABEL = "swarmai.runs-as-root"
# The users swarmai's runtimes run as: the ``swarmai`` user of its server and
# model-sync images (both write the node's model cache), and TorchServe's
# ``model-server``.  TF Serving runs as swarmai's: it only reads its store.
SWARMAI_USER = "10001:10001"
TORCHSERVE_USER = "1000:1000"
# The read-only Docker API the gateway's providers read (gateway/engine-proxy).
ENGINE_PROXY = "engine-proxy"
MLFLOW = "mlflow"
# MLflow, read-only, on the models network (registry/registry-proxy/haproxy.cfg).
REGISTRY_PROXY = "registry-proxy"
POSTGRES = "postgres"
S3 = "s3"

GATEWAY_WEB_PORT = 80  # inside the Traefik container
GATEWAY_TLS_PORT = 443  # inside the Traefik container
GATEWAY_ADMIN_PORT = 8080  # ping, metrics, dashboard; published only when asked
ENGINE_PROXY_PORT = 2375  # on the engine network only, never published
# The engine's socket on every node: only the engine proxy and swarmai's
# seconds-long node jobs mount it.
DOCKER_SOCKET = "/var/run/docker.sock"
MLFLOW_PORT = 5000
SEAWEEDFS_S3_PORT = 8333
MINIO_PORT = 9000
POSTGRES_PORT = 5432
FASTAPI_PORT = 8000
TFSERVING_REST_PORT = 8501
TORCHSERVE_INFERENCE_PORT = 8080
TORCHSERVE_MANAGEMENT_PORT = 8081
TORCHSERVE_METRICS_PORT = 8082



# MLflow 3.17 advertises presigned S3 URLs to clients of a proxied server, so a
# client would fetch artifacts from the store directly: the store is on the
# registry network only (and its name does not resolve elsewhere).  Clients
# opt out and stream through MLflow, which is what proxied mode is for.
MLFLOW_CLIENT_ENV = {
    "MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD": "false",
    "MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD": "false",
}


def model_service(model: Model) -> str:
    return f"model-{model.name}"


def canary_service(model: Model) -> str:
    """The one-replica service that serves a canary version beside the model's own."""
    return f"model-{model.name}-canary"


def sync_service(model: Model) -> str:
    return f"sync-{model.name}"


def store_volume(model: Model) -> str:
    """The volume a model-sync step fills and the runtime reads."""
    return f"store-{model.name}"


def network_name(stack: Stack, key: str, target: Target) -> str:
    """The engine-level network name: Swarm prefixes ``<stack>_``, Compose too."""
    del target  # both targets prefix with the stack / project name
    return f"{stack.name}_{key}"


def mlflow_url() -> str:
    """MLflow itself, for swarmai's registry jobs on the registry network."""
    return f"http://{MLFLOW}:{MLFLOW_PORT}"


def registry_read_url() -> str:
    """MLflow through the registry proxy, for what runs on the models network."""
    return f"http://{REGISTRY_PROXY}:{MLFLOW_PORT}"


def s3_endpoint(stack: Stack) -> str:
    storage = stack.storage
    if storage.backend == "external":
        assert storage.endpoint is not None  # guaranteed by the spec checks
        return storage.endpoint.rstrip("/")
    port = SEAWEEDFS_S3_PORT if storage.backend == "seaweedfs" else MINIO_PORT
    return f"http://{S3}:{port}"


def router_name(stack: Stack, model: Model) -> str:
    return f"{stack.name}-{model.name}"


def gpu_kind(node: str, device: str) -> str:
    """The discrete generic-resource kind of one (node, device) pair on Swarm.

    One kind per device, advertised with value 1, lets the Swarm scheduler
    itself refuse to hand one GPU to two tasks.
    """
    slug = re.sub(r"[^a-z0-9]+", "-", f"{node}-{device}".lower()).strip("-")
    return f"swarmai-gpu-{slug}"


def state_label(stack: Stack) -> str:
    """The node label that marks where ``stack``'s registry data lives on Swarm."""
    return f"swarmai.state.{stack.name}"


def state_constraint(stack: Stack) -> str:
    """The placement constraint that keeps the registry's services on their data's node.

    Swarm volumes are node-local: a database rescheduled elsewhere would start
    on an empty volume.  ``registry.node`` names the node; else the stack's
    state label does (set once by deploy on the manager it runs on).
    """
    if stack.registry.node is not None:
        return f"node.hostname == {stack.registry.node}"
    return f"node.labels.{state_label(stack)} == true"


def state_location(stack: Stack) -> str:
    """Where the registry's data lives, in words (validate, status)."""
    if stack.registry.node is not None:
        return f"node {stack.registry.node} (registry.node)"
    return (f"the node labelled {state_label(stack)}=true (deploy labels the manager it "
            "runs on the first time; set registry.node to choose)")


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def config_name(stack: Stack, key: str, content: str) -> str:
    """A Swarm config name that changes whenever the content does.

    Configs are immutable: a new name is what makes ``stack deploy`` roll the
    services that mount it, and the old one can be pruned after success.
    """
    return f"{stack.name}_{key}_{content_hash(content)}"
