"""The engine proxy: the only service with the Docker socket.

Traefik's providers read services, tasks and containers through it
(gateway/engine-proxy/haproxy.cfg says which calls pass), so the internet-facing
gateway holds no socket.
"""

from __future__ import annotations

from swarmai.render import naming
from swarmai.render.common import http_probe
from swarmai.render.plan import Healthcheck, Mount, ServicePlan
from swarmai.spec import Stack, Target, image_for


def engine_proxy_service(stack: Stack, target: Target) -> ServicePlan:
    """The only service with the Docker socket: HAProxy answering read calls only.

    gateway/engine-proxy/haproxy.cfg lists what passes (what Traefik's providers
    read); everything else, container create and exec included, is a 403.  On
    the internal engine network, never published; on Swarm, on managers, where
    the Swarm API is.
    """
    return ServicePlan(
        name=naming.ENGINE_PROXY,
        image=image_for(stack.images, "engine-proxy"),
        role="gateway",
        networks=(naming.ENGINE_NET,),
        volumes=(Mount(naming.DOCKER_SOCKET, naming.DOCKER_SOCKET, read_only=True),),
        healthcheck=Healthcheck(http_probe(naming.ENGINE_PROXY_PORT, "/_ping"),
                                start_period_s=10),
        manager_only=target == "swarm",
        least_privilege=True,
        read_only_root=True,
        labels={naming.ROOT_LABEL: "opens the Docker socket, which is root's; it holds no "
                "capability, and HAProxy passes only reads"},
    )
