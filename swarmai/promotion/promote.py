"""``swarmai promote`` and ``swarmai rollback``: move an MLflow alias, roll the servers, verify.

A promotion is: resolve the version, pre-flight it (its artifacts download
and load in the runtime's image), move the alias (remembering where it
pointed, as a tag in MLflow), bring the stack in line with the registry
(the same deploy / up a user runs: FastAPI servers are pinned to the version
their alias resolves to, so the new version arrives as a health-gated,
start-first rolling update), then ask the model through the gateway until
every answer comes from the new version.  Any failure restores the alias,
lets Swarm roll back (or re-creates the previous servers on Compose), and
exits 1; so does SIGINT or SIGTERM (exit 130).

A promotion that dies anyway (kill -9, a crash, a lost manager) leaves the
``swarmai.pending.<alias>`` tag it wrote before moving the alias.  The next
promote or rollback of that alias finds it first: if the alias moved, the
promotion is finished (rolled and verified) or, when that fails, undone;
if it had not, its records are undone.  The report says which (``resumed``).

A canary is a one-replica service pinned to the new version, and a file in
the gateway's dynamic-config volume that splits the model's route by weight
(labels cannot express weights).  Both come from MLflow's
``swarmai.canary.<alias>`` tag, so a re-deploy keeps a running canary.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from swarmai import modeluri
from swarmai.errors import Interrupted, OperationError, UsageError
from swarmai.lifecycle.backend import Backend
from swarmai.lifecycle.interrupted import put_back_records
from swarmai.lifecycle.model_images import model_image_of
from swarmai.lifecycle.steps import StartOptions, state_directory
from swarmai.modeluri import Pending, canary_tag, encode_canary, pending_tag, previous_tag
from swarmai.promotion.verify import restart_runtime, wait_for_version
from swarmai.registry_client import ModelDescription, ModelRegistry
from swarmai.render import naming
from swarmai.render.bundle import dump_yaml
from swarmai.render.gateway import canary_config, canary_file
from swarmai.spec import Model, Stack, Target

Progress = Callable[[str], None]
Action = Literal["promoted", "unchanged", "canary", "finished", "rolled-back", "canary-removed"]
# What became of an interrupted promotion found on the way in.
Resumed = Literal["finished", "undone"]
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
    resume: bool = False  # only finish or undo an interrupted promotion


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
    resumed: Resumed | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Context:
    """Everything a promotion step needs: the stack's backend, its registry, the model."""

    backend: Backend
    registry: ModelRegistry
    stack: Stack
    stack_file: Path
    options: StartOptions
    progress: Progress
    model: Model
    registered: str  # the MLflow registered model name
    served_alias: str | None  # the alias the stack's URI serves (None: a pinned version)

    def apply(self) -> None:
        """Bring the stack in line with the registry: the deploy (or up) a user runs."""
        self.backend.start(self.stack, self.stack_file, self.options, self.progress)

    def preflight(self, version: str) -> None:
        """Download ``version`` and load it as its server will: a FastAPI version in its
        own image, built (and pushed) now when its requirements are new, so a version
        whose packages do not install fails here, before anything rolls."""
        image = None
        if self.model.runtime == "fastapi":
            image = model_image_of(self.backend.engine, self.stack, self.registry,
                                   modeluri.version_uri(self.registered, version),
                                   self.progress)
        self.registry.preflight(self.registered, version, self.model.runtime, image=image)


def lock_file(stack: Stack, target: Target, state_dir: Path | None) -> Path:
    """The file whose lock a promotion or rollback of the stack holds (on this host)."""
    return state_directory(stack, target, state_dir) / "promote.lock"


def context(backend: Backend, registry: ModelRegistry, stack: Stack, stack_file: Path,
            options: StartOptions, progress: Progress, model_name: str) -> Context:
    """Find ``model_name`` in the stack; refuse what promotion cannot act on."""
    found = {m.name: m for m in stack.models}
    if model_name not in found:
        raise UsageError(f"{stack_file}: models: no model named {model_name!r} "
                         f"(the stack has {', '.join(sorted(found))})")
    model = found[model_name]
    if model.model is None:
        image = model.app.image if model.app is not None else "its image"
        raise UsageError(f"{stack_file}: model {model_name} is an app ({image}) that loads no "
                         "registry model, so there is no alias to move: promote it by changing "
                         f"app.image in {stack_file} and running `swarmai deploy {stack_file}` "
                         "(or `swarmai up`) again")
    uri = modeluri.parse(model.model)
    return Context(backend, registry, stack, stack_file, options, progress, model, uri.name,
                   uri.alias)


def promote(ctx: Context, request: Promotion) -> PromotionReport:
    """Move ``request.alias`` to the requested version and roll what serves it."""
    started = time.monotonic()
    resumed, described = _resume(ctx, request.alias, ctx.registry.describe(ctx.registered))
    if request.resume:
        current = described.aliases.get(request.alias)
        report = PromotionReport(ctx.model.name, ctx.registered, request.alias, "unchanged",
                                 str(current), None, changed=resumed is not None)
    elif request.finish:
        report = _finish_canary(ctx, request, described)
    else:
        version = _requested_version(ctx, request, described)
        if request.canary_percent is not None:
            report = _start_canary(ctx, request, described, version)
        else:
            report = _promote(ctx, request.alias, version, described)
    report.seconds = round(time.monotonic() - started, 1)
    report.resumed = resumed
    return report


def rollback(ctx: Context, alias: str) -> PromotionReport:
    """Undo an interrupted promotion; else stop a running canary; else move ``alias``
    back to the version it had before."""
    started = time.monotonic()
    described = ctx.registry.describe(ctx.registered)
    current = described.aliases.get(alias)
    pending = described.pending(alias)
    if pending is not None:
        report = _roll_back_pending(ctx, alias, pending, current)
    elif canary_tag(alias) in described.tags:
        canary = described.canary(alias)
        _stop_canary(ctx, alias)
        ctx.apply()
        report = PromotionReport(ctx.model.name, ctx.registered, alias, "canary-removed",
                                 str(current), str(canary), changed=True)
    else:
        previous = described.previous(alias)
        if previous is None:
            raise UsageError(f"{ctx.registered}@{alias}: swarmai has no earlier version on "
                             f"record (no {previous_tag(alias)} tag): promote the version you "
                             f"want with `swarmai promote {ctx.stack_file} {ctx.model.name} "
                             f"--to {alias} --version N`")
        report = _promote(ctx, alias, str(previous), described, skip_preflight=True)
        report.action = "rolled-back"
    report.seconds = round(time.monotonic() - started, 1)
    return report


def _requested_version(ctx: Context, request: Promotion, described: ModelDescription) -> str:
    if request.version is not None:
        return request.version
    if request.from_alias is None:
        raise UsageError("say which version to promote: --version N or --from ALIAS")
    version = described.aliases.get(request.from_alias)
    if version is None:
        known = ", ".join(f"@{a}" for a in sorted(described.aliases)) or "none"
        raise UsageError(f"{ctx.registered}@{request.from_alias} does not exist in MLflow "
                         f"(aliases: {known})")
    return str(version)


def _promote(ctx: Context, alias: str, version: str, described: ModelDescription, *,
             skip_preflight: bool = False) -> PromotionReport:
    if not skip_preflight:
        ctx.progress(f"pre-flight: downloading {modeluri.version_uri(ctx.registered, version)} "
                     f"and loading it for {ctx.model.runtime}")
        ctx.preflight(version)
    moved = ctx.registry.move_alias(ctx.registered, alias, version)
    previous = moved.previous if moved.changed else described.previous(alias)
    ctx.progress(f"{ctx.registered}@{alias}: version {moved.previous or '-'} -> {version}")
    report = PromotionReport(ctx.model.name, ctx.registered, alias,
                             "promoted" if moved.changed else "unchanged", version,
                             None if previous is None else str(previous), moved.changed)
    if alias != ctx.served_alias:
        ctx.progress(f"the stack serves {ctx.model.model}: nothing to roll")
        _settle(ctx, alias, moved.changed)
        return report
    try:
        _roll_and_verify(ctx, version)
    except (OperationError, KeyboardInterrupt) as error:
        if not moved.changed or moved.previous is None:
            _settle(ctx, alias, moved.changed)  # no version to go back to
            raise
        _put_back_after(ctx, alias, version, moved.previous,
                        described.tags.get(previous_tag(alias)), error)
    _settle(ctx, alias, moved.changed)
    return report


def _roll_and_verify(ctx: Context, version: str) -> None:
    _roll(ctx)
    wait_for_version(ctx.stack, ctx.model, version, ctx.options.gateway_host,
                     progress=ctx.progress)


def _settle(ctx: Context, alias: str, moved: bool) -> None:
    """The promotion is over: forget its pending record (written only by a move)."""
    if moved:
        ctx.registry.set_tag(ctx.registered, pending_tag(alias), None)


def _put_back_after(ctx: Context, alias: str, version: str, previous: int,
                    previous_record: str | None, error: BaseException) -> None:
    """``error`` stopped the promotion to ``version``: restore ``previous`` and raise."""
    interrupted = isinstance(error, KeyboardInterrupt)
    why = "was interrupted" if interrupted else "failed"
    try:
        # An interrupt may have come before the roll began: Swarm's rollback would
        # then return to an older spec than the one serving.
        _restore(ctx, alias, previous, previous_record, this_run_rolled=not interrupted)
    except OperationError as second:
        raise OperationError(
            f"promoting {ctx.registered} version {version} to @{alias} {why}, and so did "
            f"putting version {previous} back (the next promote or rollback of @{alias} "
            f"finishes it):\n{second}\n\nthe promotion's failure:\n{error}") from None
    kind = Interrupted if interrupted else OperationError
    raise kind(f"promoting {ctx.registered} version {version} to @{alias} {why}, so "
               f"@{alias} is back at version {previous} and its servers are rolled "
               f"back:\n{error or 'SIGINT/SIGTERM'}") from None


def _resume(ctx: Context, alias: str,
            described: ModelDescription) -> tuple[Resumed | None, ModelDescription]:
    """Finish or undo an interrupted promotion of ``alias`` before anything else; the
    outcome, and the registry as it is then."""
    pending = described.pending(alias)
    if pending is None:
        return None, described
    current = described.aliases.get(alias)
    what = (f"an interrupted promotion of {ctx.registered}@{alias} (version "
            f"{pending.source or '-'} -> {pending.target})")
    if current is None or str(current) != pending.target:
        ctx.progress(f"{what} had not moved the alias: undoing its records")
        put_back_records(ctx.registry, ctx.registered, alias, pending)
        return "undone", ctx.registry.describe(ctx.registered)
    ctx.progress(f"{what} moved the alias: finishing it first")
    if alias == ctx.served_alias:
        try:
            _roll_and_verify(ctx, pending.target)
        except OperationError as error:
            if pending.source is None:
                _settle(ctx, alias, True)
                raise
            ctx.progress(f"finishing it failed, so version {pending.source} is put back: "
                         f"{str(error).splitlines()[0]}")
            _restore(ctx, alias, int(pending.source), pending.previous,
                     this_run_rolled=False)
            return "undone", ctx.registry.describe(ctx.registered)
    _settle(ctx, alias, True)
    return "finished", ctx.registry.describe(ctx.registered)


def _roll_back_pending(ctx: Context, alias: str, pending: Pending,
                       current: int | None) -> PromotionReport:
    """``rollback`` while a promotion is unfinished: undo that promotion."""
    if pending.source is None:
        raise UsageError(f"{ctx.registered}@{alias}: the interrupted promotion to version "
                         f"{pending.target} created the alias, so there is no version to go "
                         f"back to: promote the version you want with `swarmai promote "
                         f"{ctx.stack_file} {ctx.model.name} --to {alias} --version N`")
    ctx.progress(f"an interrupted promotion of {ctx.registered}@{alias} (version "
                 f"{pending.source} -> {pending.target}) is undone")
    if current is not None and str(current) == pending.target:
        _restore(ctx, alias, int(pending.source), pending.previous, this_run_rolled=False)
    else:
        ctx.registry.set_tag(ctx.registered, previous_tag(alias), pending.previous)
        _settle(ctx, alias, True)
    return PromotionReport(ctx.model.name, ctx.registered, alias, "rolled-back",
                           pending.source, pending.target, changed=True, resumed="undone")


def _roll(ctx: Context) -> None:
    """Make the servers serve what the alias points at now."""
    ctx.apply()
    if ctx.model.runtime in ("tfserving", "torchserve"):
        # TF Serving and TorchServe read a store their sync step fills; sync
        # now instead of at its next poll (TorchServe then reloads its archive).
        restart_runtime(ctx.backend, ctx.stack, ctx.model, ctx.options.timeout_s, ctx.progress)


def _restore(ctx: Context, alias: str, previous: int, previous_record: str | None, *,
             this_run_rolled: bool = True) -> None:
    """After a failed roll: the alias and its remembered version (``previous_record``, the
    previous tag's value before the promotion) as they were, servers too.

    Only a roll this process started may be undone by Swarm's rollback (to the
    service's previous spec); after an interrupted run the servers are brought
    in line with the restored alias instead, whatever they run."""
    ctx.progress(f"restoring {ctx.registered}@{alias} to version {previous}")
    ctx.registry.move_alias(ctx.registered, alias, previous, remember=False)
    ctx.registry.set_tag(ctx.registered, previous_tag(alias), previous_record)
    # A FastAPI server (or an app) is pinned to its version: where the target keeps
    # the previous spec (Swarm), rolling back is the way back; else start it again.
    rolled_back = this_run_rolled and ctx.model.pinned_by_deploy and ctx.backend.roll_back(
        ctx.stack, naming.model_service(ctx.model), timeout_s=ctx.options.timeout_s,
        progress=ctx.progress)
    if not rolled_back:
        _roll(ctx)
    _settle(ctx, alias, True)  # last: a restore cut short is found and done again


def _start_canary(ctx: Context, request: Promotion, described: ModelDescription,
                  version: str) -> PromotionReport:
    percent = request.canary_percent
    assert percent is not None
    _require_canary_support(ctx, request.alias)
    current = described.aliases.get(request.alias)
    if current is not None and str(current) == version:
        raise UsageError(f"{ctx.registered}@{request.alias} is already version {version}: "
                         "a canary needs another version (--version N or --from ALIAS)")
    ctx.progress(f"pre-flight: downloading {modeluri.version_uri(ctx.registered, version)} "
                 "and loading it")
    ctx.preflight(version)
    ctx.registry.set_tag(ctx.registered, canary_tag(request.alias),
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
                   described: ModelDescription) -> PromotionReport:
    version = described.canary(request.alias)
    if version is None:
        raise UsageError(f"{ctx.registered}@{request.alias} has no canary running; start one "
                         f"with `swarmai promote {ctx.stack_file} {ctx.model.name} --to "
                         f"{request.alias} --version N --canary 10`")
    _stop_canary(ctx, request.alias)
    report = _promote(ctx, request.alias, str(version), described, skip_preflight=True)
    report.action = "finished"
    return report


def _stop_canary(ctx: Context, alias: str) -> None:
    """Route everything to the model's own service again, and forget the canary."""
    _write_canary_file(ctx, None)
    time.sleep(_FILE_RELOAD_S)
    ctx.registry.set_tag(ctx.registered, canary_tag(alias), None)


def _write_canary_file(ctx: Context, percent: int | None) -> None:
    text = None
    if percent is not None:
        text = dump_yaml(canary_config(ctx.stack, ctx.model, percent, ctx.backend.target))
    ctx.backend.write_gateway_file(ctx.stack, canary_file(ctx.model), text,
                                   image=ctx.registry.target.image)


def _require_canary_support(ctx: Context, alias: str) -> None:
    if ctx.model.runtime != "fastapi":
        why = ("swarmai renders no second service of an app" if ctx.model.runtime == "app"
               else "TF Serving and TorchServe read a store that holds one version")
        raise UsageError(f"{ctx.stack_file}: model {ctx.model.name} runs {ctx.model.runtime}; "
                         f"canaries are for fastapi models ({why})")
    if alias != ctx.served_alias:
        raise UsageError(f"{ctx.stack_file}: model {ctx.model.name} serves {ctx.model.model}; "
                         f"a canary of @{alias} would receive no traffic")
