"""Commands that run a stack: deploy/rm (Swarm), up/down (Compose), status, doctor."""

from __future__ import annotations

import json
from pathlib import Path

import click

from swarmai.cli.common import (
    TARGETS,
    offline_option,
    output_option,
    run_action,
    stack_file_argument,
    stack_lock,
    state_dir_option,
    timeline,
    timeout_option,
    verbose_option,
    volumes_option,
)
from swarmai.cli.plan_cmds import plan_option
from swarmai.cli.plan_cmds import show_plan as print_plan
from swarmai.cli.upgrade_cmds import upgrade_registry_option
from swarmai.engine import Engine
from swarmai.images import image_tags
from swarmai.lifecycle.backend import backend_for
from swarmai.lifecycle.doctor import Diagnosis, diagnose, format_report
from swarmai.lifecycle.routes import RouteCheck, prediction_url
from swarmai.lifecycle.status import ServiceStatus, format_table, stack_status
from swarmai.lifecycle.steps import StartOptions, StartReport, StopReport, registry_target
from swarmai.spec import Stack, Target, load_stack


@click.command()
@stack_file_argument()
@offline_option()
@state_dir_option()
@timeout_option(600)
@plan_option()
@click.option("--ipvs/--no-ipvs", default=None,
              help="Override network.ipvs [default: the spec; auto probes this manager].")
@click.option("--gateway-host", default="127.0.0.1", show_default=True,
              help="Host the gateway answers on, for the final route check.")
@upgrade_registry_option()
@verbose_option()
def deploy(stack_file: Path, offline: bool, state_dir: Path | None, timeout_s: int,
           show_plan: bool, ipvs: bool | None, gateway_host: str, upgrade_registry: bool,
           verbose: bool) -> None:
    """Deploy FILE to the Swarm this engine manages, and wait until it serves.

    \b
    Steps (each safe to re-run; an unchanged stack restarts nothing):
      0. refuse (exit 2, nothing changed) registry images that cannot open
         its data: another Postgres major; another MLflow release (a schema
         migration) unless --upgrade-registry (see `swarmai upgrade-check`)
      1. render into the state directory; create missing secrets with random
         values (existing ones are never overwritten)
      2. bring the registry (MLflow, its database, the S3 store) up to date
      3. check every model URI in MLflow; name the missing ones with the
         `swarmai models push` command to run, and exit 1; undo a promotion
         that died half-way (the alias back where it was; said so)
      4. stack deploy --prune; wait for every service to be healthy
      5. call every model's route through Traefik; prune unused configs
    Exits 2 on an invalid stack, 1 on a failed deploy (naming the service,
    its task errors and its last log lines), 75 while a promotion or another
    deploy of the stack runs on this host.

    \b
    Examples:
      swarmai images build --offline && swarmai deploy stacks/dev.yaml --offline
      swarmai deploy stacks/vision.yaml --timeout 900
      swarmai deploy stacks/dev.yaml --offline --plan   # what changes, then deploy
    """
    def action() -> StartReport:
        stack = load_stack(stack_file, "swarm")
        if show_plan:
            print_plan(stack, "swarm", offline=offline, state_dir=state_dir, ipvs=ipvs)
        options = StartOptions(offline=offline, ipvs=ipvs, timeout_s=timeout_s,
                               gateway_host=gateway_host, undo_interrupted=True,
                               upgrade_registry=upgrade_registry)
        backend = backend_for("swarm", Engine.from_env(), state_dir=state_dir)
        with stack_lock(stack, "swarm", state_dir, f"swarmai deploy {stack_file}",
                        "deploy or promotion"):
            return backend.start(stack, stack_file, options, timeline(verbose))

    report = run_action(action)
    _print_served(report.prepared.stack, report.routes, report.revealed, gateway_host)
    click.echo(f"stack {report.prepared.stack.name} deployed in {report.seconds:.0f} s")


@click.command()
@stack_file_argument()
@volumes_option("the stack's volumes and the secrets swarmai generated for it")
@verbose_option()
def rm(stack_file: Path, volumes: bool, verbose: bool) -> None:
    """Remove what `swarmai deploy FILE` created, and nothing else.

    Services, networks and configs go; volumes and generated secrets stay
    unless --volumes (a database volume is useless without its password).
    With --volumes on a multi-node swarm, a short job on every node removes
    the stack's volumes there too; a volume that cannot go (its node is
    down, or it is in use) is named with its node and the command to run
    there, and the command exits 1.

    \b
    Examples:
      swarmai rm stacks/dev.yaml
      swarmai rm stacks/dev.yaml --volumes
    """
    def action() -> StopReport:
        stack = load_stack(stack_file, "swarm")
        return backend_for("swarm", Engine.from_env()).stop(stack, volumes=volumes,
                                                             progress=timeline(verbose))

    report = run_action(action)
    for name in report.removed_volumes + report.removed_secrets:
        click.echo(f"removed {name}")
    kept = report.kept_volumes + report.kept_secrets
    if kept:
        click.echo(f"kept (use --volumes to delete): {', '.join(kept)}")
    if report.remaining:
        for line in report.remaining:
            click.echo(line, err=True)
        raise SystemExit(1)
    click.echo("removed")


@click.command()
@stack_file_argument()
@offline_option()
@state_dir_option()
@timeout_option(600)
@plan_option()
@upgrade_registry_option()
@verbose_option()
def up(stack_file: Path, offline: bool, state_dir: Path | None, timeout_s: int,
       show_plan: bool, upgrade_registry: bool, verbose: bool) -> None:
    """Start FILE on this host with Docker Compose, and wait until it serves.

    The same steps as deploy: registry first, models checked in MLflow (the
    missing ones named with the push command to run; a promotion that died
    half-way undone), then the model servers, then every route called
    through the gateway; exit 75 while a promotion of the stack runs.
    Secrets are files in the state directory, created with random values
    when missing. Registry images that cannot open its data are refused
    first, as deploy does.

    \b
    Examples:
      swarmai images build --offline && swarmai up stacks/dev.yaml --offline
    """
    def action() -> StartReport:
        stack = load_stack(stack_file, "compose")
        if show_plan:
            print_plan(stack, "compose", offline=offline, state_dir=state_dir)
        backend = backend_for("compose", Engine.from_env(), state_dir=state_dir)
        options = StartOptions(offline=offline, timeout_s=timeout_s, undo_interrupted=True,
                               upgrade_registry=upgrade_registry)
        with stack_lock(stack, "compose", state_dir, f"swarmai up {stack_file}",
                        "deploy or promotion"):
            return backend.start(stack, stack_file, options, timeline(verbose))

    report = run_action(action)
    _print_served(report.prepared.stack, report.routes, report.revealed, "127.0.0.1")
    click.echo(f"stack {report.prepared.stack.name} is up ({report.seconds:.0f} s)")


@click.command()
@stack_file_argument()
@state_dir_option()
@volumes_option("the stack's volumes and its generated secret files")
@verbose_option()
def down(stack_file: Path, state_dir: Path | None, volumes: bool, verbose: bool) -> None:
    """Stop what `swarmai up FILE` started; data stays unless --volumes.

    Without the state directory `up` wrote (an interrupted run, another
    --state-dir), the project is found by its Compose labels and removed all
    the same; its secret files then stay where they were.

    \b
    Examples:
      swarmai down stacks/dev.yaml
      swarmai down stacks/dev.yaml --volumes
    """
    def action() -> StopReport:
        stack = load_stack(stack_file, "compose")
        backend = backend_for("compose", Engine.from_env(), state_dir=state_dir)
        return backend.stop(stack, volumes=volumes, progress=timeline(verbose))

    report = run_action(action)
    for name in report.removed_volumes:
        click.echo(f"removed volume {name}")
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

    On Swarm it also says which node holds the registry's data, and names each
    node that is down with the services pinned to it that wait for its return.

    \b
    Examples:
      swarmai status stacks/dev.yaml
      swarmai status stacks/dev.yaml --target compose --output json
    """
    def action() -> tuple[list[ServiceStatus], list[str]]:
        stack = load_stack(stack_file, target)
        backend = backend_for(target, Engine.from_env())
        return stack_status(backend, stack, gateway_host), backend.notes(stack)

    rows, notes = run_action(action)
    if output_format == "json":
        click.echo(json.dumps([row.as_dict() for row in rows], indent=2))
    else:
        click.echo("\n".join([format_table(rows), *notes]))


@click.command()
@click.argument("stack_file", metavar="[FILE]", required=False,
                type=click.Path(path_type=Path))
@click.option("--probe/--no-probe", default=True, show_default=True,
              help="Run the node agent as a short Swarm job on each Ready node.")
@output_option()
def doctor(stack_file: Path | None, probe: bool, output_format: str) -> None:
    """Check what this engine, and every node of its swarm, can do for swarmai.

    \b
    This engine: its version, Compose v2, swarm membership, IPVS, runtimes,
    the NVIDIA hook's swarm-resource setting.
    On a swarm manager, per node: hostname, role, state, engine version and
    generic resources (from node inspect); with --probe (the default) also
    IPVS, its engine's runtimes, its NVIDIA swarm-resource setting and
    whether it could pull and start swarmai's server image: a probe job
    (swarmai's node agent, seconds long, with the node's Docker socket and
    /etc mounted read-only) runs once on each Ready node and is removed.
    With FILE: the stack's nodes: inventory against the swarm (every node
    joined, every GPU advertised as its generic resource) and its
    network.ipvs against every node's kernel.
    Every problem names its node. Exits 2 on an invalid FILE.

    \b
    Examples:
      swarmai doctor
      swarmai doctor stacks/gpu.yaml --output json
      swarmai doctor --no-probe
    """
    def action() -> Diagnosis:
        stack = load_stack(stack_file, "swarm") if stack_file is not None else None
        return diagnose(Engine.from_env(), stack=stack,
                        probe_image=_probe_image(stack) if probe else None)

    diagnosis = run_action(action)
    if output_format == "json":
        click.echo(json.dumps(diagnosis.as_dict(), indent=2))
    else:
        click.echo(format_report(diagnosis))


def _probe_image(stack: Stack | None) -> str:
    """The image the doctor's probe job runs on each node: swarmai's server image,
    which holds the node agent (``python -m swarmai.incontainer.nodeagent``).

    With the stack's ``images.registry`` every node pulls it from there (the
    probe then also proves the node can pull); else it is the tag
    ``swarmai images build`` gives it on this engine.
    """
    if stack is not None:
        return registry_target(stack, offline=False).image
    return image_tags(offline=False)["fastapi"]


def _print_served(stack: Stack, routes: list[RouteCheck], revealed: list[Path],
                  host: str) -> None:
    versions = {r.model: r.version for r in routes}
    for model in stack.models:
        version = versions.get(model.name)
        # An app's own paths are under its route; swarmai knows only the route.
        verb = "" if model.runtime == "app" else "POST "
        click.echo(f"{model.name}: {verb}{prediction_url(stack, model, host)}"
                   + (f"  (version {version})" if version else ""))
    for path in revealed:
        click.echo(f"generated credentials (shown nowhere else): {path}")
