"""HTTPS at the gateway: which entry point routes use, and each router's certificate.

gateway.tls.mode picks where certificates come from: ``local`` and ``secret``
put one PEM (key and chain, see swarmai.tlsca) in a Docker secret that is
Traefik's default certificate; ``acme`` has Traefik's resolver obtain one for
each of ``tls.names``; ``off`` leaves the routes on plain HTTP.
"""

from __future__ import annotations

from typing import Any

from swarmai.render import naming
from swarmai.spec import Stack

# The entry points model routes use: HTTPS, or plain HTTP with gateway.tls.mode off.
WEB = "web"
WEBSECURE = "websecure"
# gateway.tls.mode acme: the certificate resolver, and the volume that keeps
# its account and certificates (Let's Encrypt limits how often they are issued).
ACME_RESOLVER = "acme"
ACME_VOLUME = "gateway-acme"
ACME_DIR = "/etc/traefik/acme"


def public_entrypoint(stack: Stack) -> str:
    return WEB if stack.gateway.tls.mode == "off" else WEBSECURE


def router_tls(stack: Stack) -> dict[str, Any] | None:
    """A router's ``tls`` section: None for plain HTTP; the default certificate
    (the stack's secret), or ACME's for ``tls.names``."""
    tls = stack.gateway.tls
    if tls.mode == "off":
        return None
    if tls.mode == "acme":
        return {"certResolver": ACME_RESOLVER,
                "domains": [{"main": name} for name in tls.names]}
    return {}


def with_tls(stack: Stack, router: dict[str, Any]) -> dict[str, Any]:
    """``router`` (file-provider form) with the stack's ``tls`` section, if any."""
    tls = router_tls(stack)
    return router if tls is None else {**router, "tls": tls}


def tls_labels(stack: Stack, prefix: str) -> dict[str, str]:
    """router_tls as labels of the router ``prefix``."""
    tls = router_tls(stack)
    if tls is None:
        return {}
    labels = {f"{prefix}.tls": "true"}
    if resolver := tls.get("certResolver"):
        labels[f"{prefix}.tls.certresolver"] = resolver
    for index, domain in enumerate(tls.get("domains", [])):
        labels[f"{prefix}.tls.domains[{index}].main"] = domain["main"]
    return labels


def default_certificate(stack: Stack) -> dict[str, Any] | None:
    """The file provider's ``tls`` section: the stack's secret as the default certificate."""
    tls = stack.gateway.tls
    if tls.mode not in ("local", "secret"):
        return None
    # One PEM holds the key and the chain: Traefik takes the certificates of
    # certFile and the key of keyFile.
    pem = f"{naming.SECRETS_DIR}/{tls.secret}"
    return {
        "stores": {"default": {"defaultCertificate": {"certFile": pem, "keyFile": pem}}},
        "options": {"default": {"minVersion": "VersionTLS12"}},
    }


def acme_resolvers(stack: Stack) -> dict[str, Any]:
    """The static ``certificatesResolvers``: TLS-ALPN-01 on the HTTPS port, no other port."""
    tls = stack.gateway.tls
    acme: dict[str, Any] = {"email": tls.acme_email, "storage": f"{ACME_DIR}/acme.json",
                            "tlsChallenge": {}}
    if tls.acme_ca_server is not None:
        acme["caServer"] = tls.acme_ca_server
    return {ACME_RESOLVER: {"acme": acme}}
