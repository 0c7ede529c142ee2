"""Render a whole stack: every file a deploy needs, as text, by relative path.

Rendering is pure (``Stack -> Bundle``); writing the bundle to disk is the
caller's business (:mod:`swarmai.writer`), so the same bundle can be written,
diffed, or compared with what is deployed.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import yaml

from swarmai import __version__, modeluri
from swarmai.render import engine_proxy, gateway, registry, registry_proxy, runtimes
from swarmai.render.common import escape_interpolation
from swarmai.render.compose import compose_document
from swarmai.render.plan import ServicePlan
from swarmai.render.scripts import script
from swarmai.render.swarm import swarm_document
from swarmai.spec import Stack, Target

COMPOSE_FILE = "compose.yml"
SWARM_FILE = "stack.yml"


@dataclass(frozen=True)
class Bundle:
    """Every rendered file by path relative to the output directory."""

    target: Target
    main: str  # the Compose or stack file's path
    files: Mapping[str, str]


@dataclass(frozen=True)
class Serving:
    """What the registry said when deploying: the version behind each FastAPI
    model's (and app's) alias, and the canaries that run (model name -> version).

    Pinning a FastAPI server to the version its alias resolved to is what
    makes a promotion a Swarm rolling update (with its health gate and its
    automatic rollback to the previous spec), and keeps every replica of a
    model on one version whatever happens to the alias between restarts.
    """

    pinned: Mapping[str, str] = field(default_factory=dict)
    canaries: Mapping[str, str] = field(default_factory=dict)
    # A FastAPI model version's own server image (its recorded requirements on
    # top of swarmai's server), by ``models:/NAME/VERSION``; see
    # swarmai.lifecycle.model_images.  Versions not listed run the server image.
    images: Mapping[str, str] = field(default_factory=dict)


def render_bundle(stack: Stack, target: Target, *, ipvs: bool = True,
                  serving: Serving | None = None,
                  stop_first: frozenset[str] = frozenset()) -> Bundle:
    """Render ``stack`` for ``target``.

    ``ipvs`` says whether the Swarm's kernels have IPVS; without it services use
    ``dnsrr`` and host-mode ports (it has no effect on Compose).  ``serving``
    pins FastAPI models to versions and adds canary services.  The services
    named in ``stop_first`` roll stop-first this time, whatever their own order
    (a registry service whose next image migrates its data: the old one must
    not write to what the new one migrated).
    """
    serving = serving or Serving()
    stack = _pinned(stack, serving.pinned)
    plans = service_plans(stack, target, host_ports=target == "swarm" and not ipvs,
                          model_images=serving.images)
    plans = [replace(plan, start_first=False) if plan.name in stop_first else plan
             for plan in plans]
    plans += [runtimes.canary_service(stack, model, serving.canaries[model.name], serving.images)
              for model in stack.models if model.name in serving.canaries]
    files = _support_files(stack, target)
    if target == "compose":
        document = compose_document(stack, plans, files)
        main = COMPOSE_FILE
    else:
        document = swarm_document(stack, plans, files, ipvs=ipvs)
        main = SWARM_FILE
    header = f"# Rendered by swarmai {__version__} from stack {stack.name!r}; do not edit.\n"
    files[main] = header + dump_yaml(escape_interpolation(document))
    return Bundle(target=target, main=main, files=dict(sorted(files.items())))


def _pinned(stack: Stack, versions: Mapping[str, str]) -> Stack:
    """``stack`` with the ``models:/NAME@ALIAS`` of each model that loads from MLflow
    itself (FastAPI, an app with ``model:``) replaced by its version."""
    models = []
    for model in stack.models:
        if model.pinned_by_deploy and model.name in versions:
            model = model.model_copy(
                update={"model": modeluri.pinned(model.uri, versions[model.name])})
        models.append(model)
    return stack.model_copy(update={"models": tuple(models)})


def service_plans(stack: Stack, target: Target, *, host_ports: bool,
                  model_images: Mapping[str, str] | None = None) -> list[ServicePlan]:
    plans = [gateway.gateway_service(stack, target, host_ports=host_ports),
             engine_proxy.engine_proxy_service(stack, target)]
    plans += registry.registry_services(stack)
    plans.append(registry_proxy.registry_proxy_service(stack))
    for model in stack.models:
        plans += runtimes.model_services(stack, model, model_images)
    return plans


def _support_files(stack: Stack, target: Target) -> dict[str, str]:
    files = {
        gateway.STATIC_PATH: dump_yaml(gateway.static_config(stack, target)),
        gateway.DYNAMIC_PATH: dump_yaml(gateway.dynamic_config(stack)),
        registry.MLFLOW_ENTRYPOINT: script("mlflow-entrypoint.sh"),
        registry_proxy.CONFIG_PATH: registry_proxy.registry_proxy_config(),
    }
    if stack.storage.backend != "external":
        files[registry.S3_ENTRYPOINT] = script("s3-entrypoint.sh")
    for model in stack.models:
        files.update(runtimes.runtime_files(model))
    return files


def dump_yaml(data: Any) -> str:
    """YAML as people write it: keys in the order built, block style, no wrapping."""
    with _collector_paused():
        return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                         width=10_000)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection for the block.

    PyYAML builds a node per value (a quarter of a million for 1,000 models), and
    each full collection on the way walks every object of the process: a third
    of a big render's time, growing faster than the stack. The nodes form no
    cycles, so reference counting frees them all the same.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


_BaseDumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _Dumper(_BaseDumper):  # type: ignore[valid-type,misc]
    """libyaml's emitter (~20x faster than pure Python on big stacks), and no
    anchors: a value used twice is written twice, as a person would."""

    def ignore_aliases(self, data: Any) -> bool:
        return True
