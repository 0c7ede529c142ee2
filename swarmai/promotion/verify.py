"""The last steps of a promotion: make external runtimes pick up a version, and check it.

Both are about what clients see: the answer is asked for through the gateway,
as a client would, not read from the engine.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from swarmai.errors import OperationError
from swarmai.lifecycle.backend import Backend
from swarmai.lifecycle.routes import gateway_refusals
from swarmai.lifecycle.status import served_version
from swarmai.render import naming
from swarmai.spec import Model, Stack

Progress = Callable[[str], None]
# Consecutive answers from the new version that count as "every response
# comes from it" (Traefik round-robins over the replicas).
_CONSECUTIVE = 10
_CANARY_PROBES = 200


def wait_for_version(stack: Stack, model: Model, version: str, host: str, *,
                     progress: Progress, share: bool = False, timeout_s: float = 90.0) -> None:
    """Ask the model through the gateway until the answers come from ``version``.

    ``share``: a canary; one answer in ``_CANARY_PROBES`` from ``version``
    proves the weighted route reaches it.
    """
    if refusals := gateway_refusals(stack, model):
        progress(f"{'; '.join(refusals.values())}: the served version is not checked")
        return
    # A rate-limited route: probe no faster than it allows, or its 429s break the streak.
    limit = model.gateway.rate_limit if model.gateway is not None else None
    pause = 0.0 if limit is None else 1 / limit.average
    deadline = time.monotonic() + timeout_s
    streak, last = 0, "?"
    probes = 0
    while time.monotonic() < deadline:
        time.sleep(pause)
        last = served_version(stack, model, host)
        probes += 1
        if last == "" and model.runtime == "app":
            progress(f"{model.public_route}: the app sends no X-Model-Version on its ready "
                     "path, so the version it serves is not checked (its roll was health-gated)")
            return
        if last == version:
            streak += 1
            if share or streak >= _CONSECUTIVE:
                progress(f"{model.public_route} answers with version {version}")
                return
        else:
            streak = 0
            if share and probes >= _CANARY_PROBES:
                break
            time.sleep(0.2)
    raise OperationError(f"{model.public_route} did not answer with version {version} within "
                         f"{timeout_s:.0f} s (last answer: version {last})")


def restart_runtime(backend: Backend, stack: Stack, model: Model, timeout_s: float,
                    progress: Progress) -> None:
    """Sync the store now (TF Serving then loads the new version folder by itself);
    TorchServe reads its archive once, so its server restarts after the sync."""
    services = [naming.sync_service(model)]
    if model.runtime == "torchserve":
        services.append(naming.model_service(model))
    for service in services:
        progress(f"restarting {service} so it picks up the new version")
        backend.restart(stack, service, timeout_s=timeout_s, progress=progress)
