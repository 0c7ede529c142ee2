"""``swarmai promote`` and ``swarmai rollback``: a new model version, with zero failed requests."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from swarmai.cli.common import (
    TARGETS,
    offline_option,
    output_option,
    progress,
    run_action,
    say,
    sigterm_as_ctrl_c,
    stack_file_argument,
    stack_lock,
    state_dir_option,
    timeout_option,
)
from swarmai.engine import Engine
from swarmai.errors import UsageError
from swarmai.lifecycle.backend import backend_for
from swarmai.lifecycle.steps import StartOptions, registry_target
from swarmai.promotion import guard
from swarmai.promotion import promote as promotion
from swarmai.registry_client import RegistryClient
from swarmai.spec import Stack, Target, load_stack


def _lifecycle_options(function: Callable[..., None]) -> Callable[..., None]:
    """The options promote and rollback share with deploy / up."""
    for option in reversed((
        click.option("--target", "-t", type=TARGETS, default="swarm", show_default=True,
                     help="Where the stack runs: swarm (deploy) or compose (up)."),
        offline_option(),
        state_dir_option(),
        timeout_option(600),
        click.option("--gateway-host", default="127.0.0.1", show_default=True,
                     help="Host the gateway answers on, to check the served version."),
        output_option(),
    )):
        function = option(function)
    return function


@click.command()
@stack_file_argument()
@click.argument("model")
@click.option("--to", "to_alias", required=True, metavar="ALIAS",
              help="The alias to move (the one the stack serves, e.g. production).")
@click.option("--version", "version", metavar="N", help="Promote this registered version.")
@click.option("--from", "from_alias", metavar="ALIAS",
              help="Promote the version this alias points at (e.g. staging).")
@click.option("--canary", "canary", type=click.IntRange(1, 99), metavar="PCT",
              help="Serve the version to PCT percent of requests beside the current one; "
                   "the alias does not move until --finish.")
@click.option("--finish", is_flag=True,
              help="End the running canary: move the alias to its version, roll, retire it.")
@click.option("--resume", is_flag=True,
              help="Only finish (or, when that fails, undo) an interrupted promotion of "
                   "--to; every promote does this first anyway.")
@_lifecycle_options
def promote(stack_file: Path, model: str, to_alias: str, version: str | None,
            from_alias: str | None, canary: int | None, finish: bool, resume: bool,
            target: Target, offline: bool, state_dir: Path | None, timeout_s: int,
            gateway_host: str, output_format: str) -> None:
    """Move MLflow alias --to of MODEL (a models[].name of FILE) and roll its servers.

    \b
    Steps (safe to re-run: an alias already there and servers already on the
    version change nothing):
      1. resolve the version (--version N, or --from ALIAS) and pre-flight it:
         its artifacts download, and a FastAPI model loads in the server
         image (TF Serving / TorchServe: the SavedModel / TorchScript is there)
      2. record the promotion as pending (tag swarmai.pending.ALIAS) and the
         old version (tag swarmai.previous.ALIAS), then move the alias
      3. roll the model's servers: start-first and health-gated on Swarm
         (the deploy you know), re-created on Compose
      4. ask the model through the gateway until every answer comes from the
         new version; clear the pending record
    Any failure, Ctrl-C or SIGTERM puts the alias back, rolls the servers
    back, and exits 1 (130 when interrupted). A promotion killed outright
    leaves its pending record: the next promote or rollback of the alias
    finishes it (or undoes it) first. One promotion or rollback of a stack at
    a time on this host: another one waits for nothing and exits 75.
    Exit 2: invalid input. Rolling back later: `swarmai rollback FILE MODEL`.

    \b
    Examples:
      swarmai promote stacks/dev.yaml iris --to production --from staging --offline
      swarmai promote stacks/dev.yaml iris --to production --version 7
      swarmai promote stacks/dev.yaml iris --to production --version 8 --canary 25
      swarmai promote stacks/dev.yaml iris --to production --finish
    """
    if (finish or resume) and (canary is not None or version or from_alias):
        raise click.UsageError("--finish and --resume take no --canary, --version or --from")
    if finish and resume:
        raise click.UsageError("give --finish or --resume, not both")
    if version and from_alias:
        raise click.UsageError("give --version or --from, not both")
    request = promotion.Promotion(model, to_alias, version, from_alias, canary, finish, resume)

    def action() -> promotion.PromotionReport:
        stack = load_stack(stack_file, target)
        with _exclusively(stack, target, state_dir, f"swarmai promote {stack_file} {model}"):
            ctx = _context(stack, stack_file, model, target, offline, state_dir, timeout_s,
                           gateway_host)
            return promotion.promote(ctx, request)

    _print(run_action(action), output_format)


@click.command()
@stack_file_argument()
@click.argument("model")
@click.option("--alias", metavar="ALIAS", default=None,
              help="The alias to roll back [default: the one the stack serves].")
@_lifecycle_options
def rollback(stack_file: Path, model: str, alias: str | None, target: Target, offline: bool,
             state_dir: Path | None, timeout_s: int, gateway_host: str,
             output_format: str) -> None:
    """End MODEL's running canary, or move its alias back to the version before the last promote.

    The version to return to is the one MLflow remembers in the tag
    swarmai.previous.ALIAS. Rolling back twice returns to where you started.

    \b
    Examples:
      swarmai rollback stacks/dev.yaml iris
      swarmai rollback stacks/dev.yaml iris -t compose --offline
    """
    def action() -> promotion.PromotionReport:
        stack = load_stack(stack_file, target)
        with _exclusively(stack, target, state_dir, f"swarmai rollback {stack_file} {model}"):
            ctx = _context(stack, stack_file, model, target, offline, state_dir, timeout_s,
                           gateway_host)
            wanted = alias or ctx.served_alias
            if wanted is None:
                raise UsageError(f"{stack_file}: model {model} serves {ctx.model.model}, a "
                                 "fixed version: there is no alias to roll back (use --alias)")
            return promotion.rollback(ctx, wanted)

    _print(run_action(action), output_format)


@contextmanager
def _exclusively(stack: Stack, target: Target, state_dir: Path | None,
                 command: str) -> Iterator[None]:
    """One promotion or rollback of a stack at a time on this host, whoever starts it
    (a person, cron), from before it reads anything; SIGTERM puts the old version back
    as Ctrl-C does."""
    with stack_lock(stack, target, state_dir, command, "promotion"), sigterm_as_ctrl_c():
        yield


def _context(stack: Stack, stack_file: Path, model: str, target: Target, offline: bool,
             state_dir: Path | None, timeout_s: int, gateway_host: str) -> promotion.Context:
    """The promotion's context, with --offline as the running stack was deployed; refused
    (exit 2) when a deploy now would change more than ``model`` (promotion/guard.py)."""
    engine = Engine.from_env()
    backend = backend_for(target, engine, state_dir=state_dir)
    live = backend.live(stack)
    offline = guard.offline_for(stack, target, live, offline, progress)
    options = StartOptions(offline=offline, timeout_s=timeout_s, gateway_host=gateway_host)
    registry = RegistryClient(engine, registry_target(stack, offline=offline))
    ctx = promotion.context(backend, registry, stack, stack_file, options, progress, model)
    guard.check_only_the_model(engine, stack, target, live, ctx.model, stack_file,
                               offline=offline)
    return ctx


def _print(report: promotion.PromotionReport, output_format: str) -> None:
    if output_format == "json":
        say(json.dumps(report.as_dict()))
        return
    what = {
        "promoted": f"now serves version {report.version} (was {report.previous})",
        "unchanged": f"already served version {report.version}",
        "canary": f"canary: version {report.version} gets {report.canary_percent}% "
                  f"(version {report.previous} the rest)",
        "finished": f"canary finished: version {report.version} serves everything",
        "rolled-back": f"rolled back to version {report.version} (from {report.previous})",
        "canary-removed": f"canary of version {report.previous} removed; version "
                          f"{report.version} serves everything",
    }[report.action]
    say(f"{report.model} @{report.alias}: {what} ({report.seconds:.0f} s)")
