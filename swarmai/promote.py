"""``swarmai promote`` and ``swarmai rollback``: move an MLflow alias, roll the servers, verify.

A promotion is: resolve the version, pre-flight it (its artifacts download
and load in the runtime's image), move the alias (remembering where it
pointed, as a tag in MLflow), bring the stack in line with the registry
(the same deploy / up a user runs: FastAPI servers are pinned to the version
their alias resolves to, so the new version arrives as a health-gated,
start-first rolling update), then ask the model through the gateway until
every answer comes from the new version.  Any failure restores the alias,
lets Swarm roll back (or re-creates the previous servers on Compose), and
exits 1.

A canary is a one-replica service pinned to the new version, and a file in
the gateway's dynamic-config volume that splits the model's route by weight
(labels cannot express weights).  Both come from MLflow's
``swarmai.canary.<alias>`` tag, so a re-deploy keeps a running canary.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from swarmai import engine as docker
from swarmai.compose_ops import up
from swarmai.converge import wait_rolled_back
from swarmai.deploy import DeployOptions, deploy
from swarmai.engine import Engine
from swarmai.errors import OperationError, UsageError
from swarmai.promote_verify import restart_runtime, wait_for_version
from swarmai.registry.models import parse_uri
from swarmai.registry.promotion import canary_tag, encode_canary, previous_tag
from swarmai.registry_ops import (
    RegistryTarget,
    describe_model,
    move_alias,
    preflight,
    set_model_tag,
)
from swarmai.render import naming
from swarmai.render.bundle import dump_yaml
from swarmai.render.gateway import DYNAMIC_VOLUME, canary_config, canary_file
from swarmai.spec import Model, Stack, Target

Progress = Callable[[str], None]
Action = Literal["promoted", "unchanged", "canary", "finished", "rolled-back", "canary-removed"]
# Traefik's file provider reloads on the file event; this covers the reload
# and the requests already routed by the old configuration.
_FILE_RELOAD_S = 3.0


@dataclass(frozen=True)
class Promotion:
    """What the user asked: MODEL --to ALIAS, [--version N | --from ALIAS], [--canary PCT]."""

    model: str
    alias: str
    version: str | None = None
    from_alias: str | None = None
    canary_percent: int | None = None
    finish: bool = False


@dataclass
class PromotionReport:
    model: str
    registered_name: str
    alias: str
    action: Action
    version: str
    previous: str | None
    changed: bool
    canary_percent: int | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Context:
    """Everything a promotion step needs to reach the engine, the registry and the stack."""

    engine: Engine
    stack: Stack
    stack_file: Path
    target: Target
    options: DeployOptions
    progress: Progress
    model: Model
    registered: str  # the MLflow registered model name
    served_alias: str | None  # the alias the stack's URI serves (None: a pinned version)

    @property
    def registry(self) -> RegistryTarget:
        return RegistryTarget.of(self.stack, offline=self.options.offline)

    def apply(self) -> None:
        """Bring the stack in line with the registry: the deploy (or up) a user runs."""
        if self.target == "swarm":
            deploy(self.engine, self.stack, self.stack_file, self.options, self.progress)
        else:
            up(self.engine, self.stack, self.stack_file, offline=self.options.offline,
               state_dir=self.options.state_dir, timeout_s=int(self.options.timeout_s),
               progress=self.progress)


def context(engine: Engine, stack: Stack, stack_file: Path, target: Target,
            options: DeployOptions, progress: Progress, model_name: str) -> Context:
    """Find ``model_name`` in the stack; refuse what promotion cannot act on."""
    found = {m.name: m for m in stack.models}
    if model_name not in found:
        raise UsageError(f"{stack_file}: models: no model named {model_name!r} "
                         f"(the stack has {', '.join(sorted(found))})")
    model = found[model_name]
    registered, alias, _version = parse_uri(model.model)
    return Context(engine, stack, stack_file, target, options, progress, model, registered,
                   alias)


def promote(ctx: Context, request: Promotion) -> PromotionReport:
    """Move ``request.alias`` to the requested version and roll what serves it."""
    started = time.monotonic()
    described = describe_model(ctx.engine, ctx.registry, ctx.registered)
    if request.finish:
        report = _finish_canary(ctx, request, described)
    else:
        version = _requested_version(ctx, request, described)
        if request.canary_percent is not None:
            report = _start_canary(ctx, request, described, version)
        else:
            report = _promote(ctx, request.alias, version, described)
    report.seconds = round(time.monotonic() - started, 1)
    return report


def rollback(ctx: Context, alias: str) -> PromotionReport:
    """Stop a running canary; else move ``alias`` back to the version it had before."""
    started = time.monotonic()
    described = describe_model(ctx.engine, ctx.registry, ctx.registered)
    current = described["aliases"].get(alias)
    if canary_tag(alias) in described["tags"]:
        canary = json.loads(described["tags"][canary_tag(alias)])
        _stop_canary(ctx, alias)
        ctx.apply()
        report = PromotionReport(ctx.model.name, ctx.registered, alias, "canary-removed",
                                 str(current), str(canary["version"]), changed=True)
    else:
        previous = described["tags"].get(previous_tag(alias))
        if previous is None:
            raise UsageError(f"{ctx.registered}@{alias}: swarmai has no earlier version on "
                             f"record (no {previous_tag(alias)} tag): promote the version you "
                             f"want with `swarmai promote {ctx.stack_file} {ctx.model.name} "
                             f"--to {alias} --version N`")
        report = _promote(ctx, alias, previous, described, skip_preflight=True)
        report.action = "rolled-back"
    report.seconds = round(time.monotonic() - started, 1)
    return report


def _requested_version(ctx: Context, request: Promotion, described: dict[str, Any]) -> str:
    if request.version is not None:
        return request.version
    if request.from_alias is None:
        raise UsageError("say which version to promote: --version N or --from ALIAS")
    version = described["aliases"].get(request.from_alias)
    if version is None:
        known = ", ".join(f"@{a}" for a in sorted(described["aliases"])) or "none"
        raise UsageError(f"{ctx.registered}@{request.from_alias} does not exist in MLflow "
                         f"(aliases: {known})")
    return str(version)


def _promote(ctx: Context, alias: str, version: str, described: dict[str, Any], *,
             skip_preflight: bool = False) -> PromotionReport:
    if not skip_preflight:
        ctx.progress(f"pre-flight: downloading models:/{ctx.registered}/{version} and loading "
                     f"it for {ctx.model.runtime}")
        preflight(ctx.engine, ctx.registry, ctx.registered, version, ctx.model.runtime)
    moved = move_alias(ctx.engine, ctx.registry, ctx.registered, alias, version)
    previous = moved["previous"] if moved["changed"] else _remembered(described, alias)
    ctx.progress(f"{ctx.registered}@{alias}: version {moved['previous'] or '-'} -> {version}")
    report = PromotionReport(ctx.model.name, ctx.registered, alias,
                             "promoted" if moved["changed"] else "unchanged", version,
                             previous, bool(moved["changed"]))
    if alias != ctx.served_alias:
        ctx.progress(f"the stack serves {ctx.model.model}: nothing to roll")
        return report
    try:
        _roll(ctx)
        wait_for_version(ctx.stack, ctx.model, version, ctx.options.gateway_host,
                         progress=ctx.progress)
    except OperationError as error:
        if not moved["changed"] or moved["previous"] is None:
            raise
        try:
            _restore(ctx, alias, str(moved["previous"]), described)
        except OperationError as second:
            raise OperationError(
                f"promoting {ctx.registered} version {version} to @{alias} failed, and so did "
                f"putting version {moved['previous']} back:\n{second}\n\nthe promotion's "
                f"failure:\n{error}") from None
        raise OperationError(
            f"promoting {ctx.registered} version {version} to @{alias} failed, so "
            f"@{alias} is back at version {moved['previous']} and its servers are rolled "
            f"back:\n{error}") from None
    return report


def _roll(ctx: Context) -> None:
    """Make the servers serve what the alias points at now."""
    ctx.apply()
    if ctx.model.runtime != "fastapi":
        # TF Serving and TorchServe read a store their sync step fills; sync
        # now instead of at its next poll (TorchServe then reloads its archive).
        restart_runtime(ctx.engine, ctx.stack, ctx.target, ctx.model, ctx.options.timeout_s,
                        ctx.progress, ctx.options.state_dir)


def _restore(ctx: Context, alias: str, previous: str, described: dict[str, Any]) -> None:
    """After a failed roll: the alias and its remembered version as they were, servers too."""
    ctx.progress(f"restoring {ctx.registered}@{alias} to version {previous}")
    move_alias(ctx.engine, ctx.registry, ctx.registered, alias, previous, remember=False)
    set_model_tag(ctx.engine, ctx.registry, ctx.registered, previous_tag(alias),
                  described["tags"].get(previous_tag(alias)))
    if ctx.target == "swarm" and ctx.model.runtime == "fastapi":
        _await_swarm_rollback(ctx)
    else:
        _roll(ctx)


def _await_swarm_rollback(ctx: Context) -> None:
    """Swarm rolls a failed update back to the previous (pinned) spec by itself; wait for it."""
    service = naming.model_service(ctx.model)
    state, _message = docker.service_update_state(ctx.engine, f"{ctx.stack.name}_{service}")
    if state in ("updating", "paused", "completed"):
        # It did not fail by itself (a timeout, or the gateway check failed).
        docker.rollback_service(ctx.engine, f"{ctx.stack.name}_{service}")
    wait_rolled_back(ctx.engine, ctx.stack.name, service, timeout_s=ctx.options.timeout_s,
                     progress=ctx.progress)


def _remembered(described: dict[str, Any], alias: str) -> str | None:
    found = described["tags"].get(previous_tag(alias))
    return None if found is None else str(found)


def _start_canary(ctx: Context, request: Promotion, described: dict[str, Any],
                  version: str) -> PromotionReport:
    percent = request.canary_percent
    assert percent is not None
    _require_canary_support(ctx, request.alias)
    current = described["aliases"].get(request.alias)
    if current == version:
        raise UsageError(f"{ctx.registered}@{request.alias} is already version {version}: "
                         "a canary needs another version (--version N or --from ALIAS)")
    ctx.progress(f"pre-flight: downloading models:/{ctx.registered}/{version} and loading it")
    preflight(ctx.engine, ctx.registry, ctx.registered, version, ctx.model.runtime)
    set_model_tag(ctx.engine, ctx.registry, ctx.registered, canary_tag(request.alias),
                  encode_canary(version, percent))
    try:
        ctx.apply()  # starts the canary service, healthy before anything routes to it
        _write_canary_file(ctx, percent)
        wait_for_version(ctx.stack, ctx.model, version, ctx.options.gateway_host,
                         progress=ctx.progress, share=True)
    except OperationError as error:
        _stop_canary(ctx, request.alias)
        ctx.apply()
        raise OperationError(f"the canary of {ctx.registered} version {version} failed and "
                             f"was removed; @{request.alias} still serves version "
                             f"{current}:\n{error}") from None
    ctx.progress(f"canary: {percent}% of {ctx.model.public_route} -> version {version}, "
                 f"{100 - percent}% -> version {current}")
    return PromotionReport(ctx.model.name, ctx.registered, request.alias, "canary", version,
                           None if current is None else str(current), changed=True,
                           canary_percent=percent)


def _finish_canary(ctx: Context, request: Promotion,
                   described: dict[str, Any]) -> PromotionReport:
    recorded = described["tags"].get(canary_tag(request.alias))
    if recorded is None:
        raise UsageError(f"{ctx.registered}@{request.alias} has no canary running; start one "
                         f"with `swarmai promote {ctx.stack_file} {ctx.model.name} --to "
                         f"{request.alias} --version N --canary 10`")
    version = str(json.loads(recorded)["version"])
    _stop_canary(ctx, request.alias)
    report = _promote(ctx, request.alias, version, described, skip_preflight=True)
    report.action = "finished"
    return report


def _stop_canary(ctx: Context, alias: str) -> None:
    """Route everything to the model's own service again, and forget the canary."""
    _write_canary_file(ctx, None)
    time.sleep(_FILE_RELOAD_S)
    set_model_tag(ctx.engine, ctx.registry, ctx.registered, canary_tag(alias), None)


def _write_canary_file(ctx: Context, percent: int | None) -> None:
    volume = f"{ctx.stack.name}_{DYNAMIC_VOLUME}"
    if not docker.volume_exists(ctx.engine, volume):
        raise OperationError(f"volume {volume} (the gateway's dynamic configuration) is not on "
                             "this node: run the command on the node that runs the gateway")
    text = None
    if percent is not None:
        text = dump_yaml(canary_config(ctx.stack, ctx.model, percent, ctx.target))
    docker.write_volume_file(ctx.engine, volume, canary_file(ctx.model), text,
                             image=ctx.registry.image)


def _require_canary_support(ctx: Context, alias: str) -> None:
    if ctx.model.runtime != "fastapi":
        raise UsageError(f"{ctx.stack_file}: model {ctx.model.name} runs {ctx.model.runtime}; "
                         "canaries are for fastapi models (TF Serving and TorchServe read a "
                         "store that holds one version)")
    if alias != ctx.served_alias:
        raise UsageError(f"{ctx.stack_file}: model {ctx.model.name} serves {ctx.model.model}; "
                         f"a canary of @{alias} would receive no traffic")
