"""Pieces of a service definition that Compose and Swarm spell the same way."""

from __future__ import annotations

from typing import Any

from swarmai.render.plan import Healthcheck, Mount, ServicePlan
from swarmai.spec import Resources

# Without an explicit value, CUDA base images set NVIDIA_VISIBLE_DEVICES=all,
# and on a node whose default runtime is nvidia every GPU would be exposed to a
# service that reserved none.  "void" exposes no device.
NO_GPUS = "void"
# How long a probe waits for an answer; Docker's own timeout (plan.Healthcheck,
# 5 s) is above it, so a slow server fails with the probe's message, not Docker's.
_PROBE_TIMEOUT_S = 4


def base_service(plan: ServicePlan) -> dict[str, Any]:
    service: dict[str, Any] = {"image": plan.image}
    if plan.entrypoint is not None:
        service["entrypoint"] = list(plan.entrypoint)
    if plan.command is not None:
        service["command"] = list(plan.command)
    service["environment"] = dict(plan.environment)
    if plan.gpus is None:
        service["environment"]["NVIDIA_VISIBLE_DEVICES"] = NO_GPUS
    service["networks"] = list(plan.networks)
    volumes = [volume(m) for m in plan.volumes]
    volumes += [{"type": "tmpfs", "target": target} for target in plan.tmpfs]
    if volumes:
        service["volumes"] = volumes
    if plan.secrets:
        service["secrets"] = [{"source": s, "target": s} for s in plan.secrets]
    if plan.healthcheck is not None:
        service["healthcheck"] = healthcheck(plan.healthcheck)
    service["stop_grace_period"] = f"{plan.stop_grace_s}s"
    if plan.user is not None:
        service["user"] = plan.user
    if plan.least_privilege:
        service["cap_drop"] = ["ALL"]
    if plan.read_only_root:
        service["read_only"] = True
    return service


def volume(mount: Mount) -> dict[str, Any]:
    kind = "bind" if mount.source.startswith("/") else "volume"
    spec: dict[str, Any] = {"type": kind, "source": mount.source, "target": mount.target}
    if mount.read_only:
        spec["read_only"] = True
    if mount.nocopy and kind == "volume":
        spec["volume"] = {"nocopy": True}
    return spec


def healthcheck(check: Healthcheck) -> dict[str, Any]:
    return {
        "test": list(check.test),
        "interval": f"{check.interval_s}s",
        "timeout": f"{check.timeout_s}s",
        "retries": check.retries,
        "start_period": f"{check.start_period_s}s",
        "start_interval": f"{check.start_interval_s}s",
    }


def limits(resources: Resources | None) -> dict[str, Any]:
    if resources is None:
        return {}
    return _cpus_memory(resources.cpus, resources.memory)


def reservations(resources: Resources | None) -> dict[str, Any]:
    """``resources.reservations`` (cpus, memory), as both targets spell them."""
    if resources is None or resources.reservations is None:
        return {}
    return _cpus_memory(resources.reservations.cpus, resources.reservations.memory)


def _cpus_memory(cpus: str | None, memory: str | None) -> dict[str, Any]:
    found: dict[str, Any] = {}
    if cpus is not None:
        found["cpus"] = cpus
    if memory is not None:
        found["memory"] = memory
    return found


def volume_keys(plans: list[ServicePlan]) -> list[str]:
    """Named volumes used by the plans, in first-use order."""
    keys = (m.source for p in plans for m in p.volumes if not m.source.startswith("/"))
    return list(dict.fromkeys(keys))


def escape_interpolation(value: Any) -> Any:
    """Double every ``$`` so Compose and ``stack deploy`` pass strings through verbatim."""
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, dict):
        return {k: escape_interpolation(v) for k, v in value.items()}
    if isinstance(value, list):
        return [escape_interpolation(v) for v in value]
    return value


def http_probe(port: int, path: str) -> tuple[str, ...]:
    """Docker's healthcheck: GET ``path`` inside the container, healthy on 2xx/3xx.

    swarmai's server probes ``/readyz`` with it, an app its ``health_path``.
    An exec form with python3 (which a FastAPI image has; curl or wget it may
    not), no shell.  On failure it prints one line, the status and the start of
    the body, or why nothing answered: `docker inspect` and swarmai's failure
    report show it.
    """
    url = f"http://127.0.0.1:{port}{path}"
    code = (
        "import sys, urllib.error, urllib.request\n"
        f"try: urllib.request.urlopen({url!r}, timeout={_PROBE_TIMEOUT_S})\n"
        "except urllib.error.HTTPError as e: "
        f"sys.exit(f'HTTP {{e.code}} on {path}: ' + e.read().decode(errors='replace')[:400])\n"
        f"except OSError as e: sys.exit(f'no answer on {path}: {{e}}')"
    )
    return ("CMD", "python3", "-c", code)
