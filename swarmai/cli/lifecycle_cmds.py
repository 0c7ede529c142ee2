"""Commands that run a stack: deploy/rm (Swarm), up/down (Compose), status, doctor."""

from __future__ import annotations

import json
from pathlib import Path

import click

from swarmai.cli.common import (
    TARGETS,
    offline_option,
    output_option,
    progress,
    run_action,
    stack_file_argument,
    state_dir_option,
    timeout_option,
    volumes_option,
)
from swarmai.engine import Engine
from swarmai.lifecycle.backend import backend_for
from swarmai.lifecycle.doctor import diagnose, format_report
from swarmai.lifecycle.routes import RouteCheck, prediction_url
from swarmai.lifecycle.status import ServiceStatus, format_table, stack_status
from swarmai.lifecycle.steps import StartOptions, StartReport, StopReport
from swarmai.spec import Stack, Target, load_stack


@click.command()
@stack_file_argument()
@offline_option()
@state_dir_option()
@timeout_option(600)
@click.option("--ipvs/--no-ipvs", default=None,
              help="Override network.ipvs [default: the spec; auto probes this manager].")
@click.option("--gateway-host", default="127.0.0.1", show_default=True,
              help="Host the gateway answers on, for the final route check.")
def deploy(stack_file: Path, offline: bool, state_dir: Path | None, timeout_s: int,
           ipvs: bool | None, gateway_host: str) -> None:
    """Deploy FILE to the Swarm this engine manages, and wait until it serves.

    \b
    Steps (each safe to re-run; an unchanged stack restarts nothing):
      1. render into the state directory; create missing secrets with random
         values (existing ones are never overwritten)
      2. bring the registry (MLflow, its database, the S3 store) up to date
      3. check every model URI in MLflow; name the missing ones with the
         `swarmai models push` command to run, and exit 1
      4. stack deploy --prune; wait for every service to be healthy
      5. call every model's route through Traefik; prune unused configs
    Exits 2 on an invalid stack, 1 on a failed deploy (naming the service,
    its task errors and its last log lines).

    \b
    Examples:
      swarmai images build --offline && swarmai deploy stacks/dev.yaml --offline
      swarmai deploy stacks/vision.yaml --timeout 900
    """
    def action() -> StartReport:
        stack = load_stack(stack_file, "swarm")
        options = StartOptions(offline=offline, ipvs=ipvs, timeout_s=timeout_s,
                               gateway_host=gateway_host)
        backend = backend_for("swarm", Engine.from_env(), state_dir=state_dir)
        return backend.start(stack, stack_file, options, progress)

    report = run_action(action)
    _print_served(report.prepared.stack, report.routes, report.revealed, gateway_host)
    click.echo(f"stack {report.prepared.stack.name} deployed in {report.seconds:.0f} s")


@click.command()
@stack_file_argument()
@volumes_option("the stack's volumes and the secrets swarmai generated for it")
def rm(stack_file: Path, volumes: bool) -> None:
    """Remove what `swarmai deploy FILE` created, and nothing else.

    Services, networks and configs go; volumes and generated secrets stay
    unless --volumes (a database volume is useless without its password).

    \b
    Examples:
      swarmai rm stacks/dev.yaml
      swarmai rm stacks/dev.yaml --volumes
    """
    def action() -> StopReport:
        stack = load_stack(stack_file, "swarm")
        return backend_for("swarm", Engine.from_env()).stop(stack, volumes=volumes,
                                                             progress=progress)

    report = run_action(action)
    for name in report.removed_volumes + report.removed_secrets:
        click.echo(f"removed {name}")
    kept = report.kept_volumes + report.kept_secrets
    if kept:
        click.echo(f"kept (use --volumes to delete): {', '.join(kept)}")
    click.echo("removed")


@click.command()
@stack_file_argument()
@offline_option()
@state_dir_option()
@timeout_option(600)
def up(stack_file: Path, offline: bool, state_dir: Path | None, timeout_s: int) -> None:
    """Start FILE on this host with Docker Compose, and wait until it serves.

    The same steps as deploy: registry first, models checked in MLflow (the
    missing ones named with the push command to run), then the model servers,
    then every route called through the gateway. Secrets are files in the
    state directory, created with random values when missing.

    \b
    Examples:
      swarmai images build --offline && swarmai up stacks/dev.yaml --offline
    """
    def action() -> StartReport:
        stack = load_stack(stack_file, "compose")
        backend = backend_for("compose", Engine.from_env(), state_dir=state_dir)
        return backend.start(stack, stack_file, StartOptions(offline=offline, timeout_s=timeout_s),
                             progress)

    report = run_action(action)
    _print_served(report.prepared.stack, report.routes, report.revealed, "127.0.0.1")
    click.echo(f"stack {report.prepared.stack.name} is up ({report.seconds:.0f} s)")


@click.command()
@stack_file_argument()
@state_dir_option()
@volumes_option("the stack's volumes and its generated secret files")
def down(stack_file: Path, state_dir: Path | None, volumes: bool) -> None:
    """Stop what `swarmai up FILE` started; data stays unless --volumes.

    \b
    Examples:
      swarmai down stacks/dev.yaml
      swarmai down stacks/dev.yaml --volumes
    """
    def action() -> StopReport:
        stack = load_stack(stack_file, "compose")
        backend = backend_for("compose", Engine.from_env(), state_dir=state_dir)
        return backend.stop(stack, volumes=volumes, progress=progress)

    report = run_action(action)
    if report.removed_secrets_dir is not None:
        click.echo(f"removed secrets in {report.removed_secrets_dir}")
    click.echo("down")


@click.command()
@stack_file_argument()
@click.option("--target", "-t", type=TARGETS, default="swarm", show_default=True,
              help="swarm: a deployed stack; compose: a stack started with up.")
@output_option()
@click.option("--gateway-host", default="127.0.0.1", show_default=True)
def status(stack_file: Path, target: Target, output_format: str, gateway_host: str) -> None:
    """Show each service of FILE: replicas, health, node, GPUs, served model version, URL.

    \b
    Examples:
      swarmai status stacks/dev.yaml
      swarmai status stacks/dev.yaml --target compose --output json
    """
    def action() -> list[ServiceStatus]:
        stack = load_stack(stack_file, target)
        return stack_status(backend_for(target, Engine.from_env()), stack, gateway_host)

    rows = run_action(action)
    if output_format == "json":
        click.echo(json.dumps([row.as_dict() for row in rows], indent=2))
    else:
        click.echo(format_table(rows))


@click.command()
@output_option()
def doctor(output_format: str) -> None:
    """Check what this engine can do for swarmai: versions, swarm, IPVS, GPUs.

    \b
    Examples:
      swarmai doctor
      swarmai doctor --output json
    """
    diagnosis = run_action(lambda: diagnose(Engine.from_env()))
    if output_format == "json":
        click.echo(json.dumps(diagnosis.as_dict(), indent=2))
    else:
        click.echo(format_report(diagnosis))


def _print_served(stack: Stack, routes: list[RouteCheck], revealed: list[Path],
                  host: str) -> None:
    versions = {r.model: r.version for r in routes}
    for model in stack.models:
        version = versions.get(model.name)
        click.echo(f"{model.name}: POST {prediction_url(stack, model, host)}"
                   + (f"  (version {version})" if version else ""))
    for path in revealed:
        click.echo(f"generated credentials (shown nowhere else): {path}")
