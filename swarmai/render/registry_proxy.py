"""The registry proxy: MLflow, read-only, for model servers, sync steps and apps.

MLflow is on the registry network only; what runs on the models network reads
it through this HAProxy (registry/registry-proxy/haproxy.cfg), which passes
GET and HEAD of MLflow's API and artifact downloads and refuses every write
with a 403.  So a compromised model container can read models but cannot move
an alias or register a version (code execution in every server that loads
it).  swarmai's own registry jobs join the registry network and write MLflow
directly.  The image is the engine proxy's (Debian's HAProxy); the config is a
rendered file, so a change rolls the service.
"""

from __future__ import annotations

from swarmai import assets
from swarmai.render import naming
from swarmai.render.common import http_probe
from swarmai.render.plan import Healthcheck, RenderedFile, ServicePlan
from swarmai.spec import Stack, image_for

CONFIG_ASSET = "registry-proxy/haproxy.cfg"
CONFIG_PATH = "registry/registry-proxy.cfg"
_CONFIG_TARGET = "/etc/swarmai/registry-proxy.cfg"
# HAProxy needs no user of its own: nobody, without a capability or a writable root.
_NOBODY = "65534:65534"


def registry_proxy_config() -> str:
    return assets.read_text("registry", CONFIG_ASSET)


def registry_proxy_service(stack: Stack) -> ServicePlan:
    return ServicePlan(
        name=naming.REGISTRY_PROXY,
        image=image_for(stack.images, "engine-proxy"),
        role="registry",
        entrypoint=("haproxy", "-W", "-db", "-f", _CONFIG_TARGET),
        networks=(naming.MODELS_NET, naming.REGISTRY_NET),
        files=(RenderedFile("registry-proxy", CONFIG_PATH, _CONFIG_TARGET),),
        # /health passes through to MLflow: healthy when models can be read.
        healthcheck=Healthcheck(http_probe(naming.MLFLOW_PORT, "/health"), start_period_s=60),
        depends_on=(naming.MLFLOW,),
        user=_NOBODY,
        least_privilege=True,
        read_only_root=True,
    )
