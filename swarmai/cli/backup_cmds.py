"""``swarmai backup`` and ``swarmai restore``: a stack's registry to a folder and back."""

from __future__ import annotations

from pathlib import Path

import click

from swarmai.cli.common import (
    TARGETS,
    offline_option,
    progress,
    run_action,
    sigterm_as_ctrl_c,
    stack_file_argument,
    stack_lock,
    state_dir_option,
    timeout_option,
)
from swarmai.engine import Engine
from swarmai.lifecycle.backend import backend_for
from swarmai.lifecycle.backup import RestoreReport
from swarmai.lifecycle.backup import backup as backup_registry
from swarmai.lifecycle.backup import restore as restore_registry
from swarmai.promotion.guard import offline_for
from swarmai.spec import Target, load_stack

_TARGET = click.option("--target", "-t", type=TARGETS, default="swarm", show_default=True,
                       help="Where the stack runs: swarm (deploy) or compose (up).")


@click.command()
@stack_file_argument()
@click.argument("destination", metavar="DIR", type=click.Path(file_okay=False, path_type=Path))
@_TARGET
@offline_option()
@state_dir_option()
def backup(stack_file: Path, destination: Path, target: Target, offline: bool,
           state_dir: Path | None) -> None:
    """Snapshot the registry of stack FILE (database + artifacts) into DIR.

    Creates DIR/<stack>-<UTC time>/ with the database dump (pg_dump, or
    SQLite's backup API), every object of the artifact bucket, and
    manifest.json (images, sha256 of every file, and every model, version,
    alias and tag). The database is dumped first, then the bucket mirrored:
    artifacts never change once written, so every artifact the dump refers
    to is in the mirror. A snapshot appears under its final name only when
    whole. Prints the snapshot's path. Run it on a manager (Swarm) or the
    Compose host; with SQLite, on the registry's data node.

    \b
    Examples:
      swarmai backup stacks/dev.yaml /var/backups/swarmai --offline
      swarmai backup stack.yaml ./backups -t compose
      # nightly at 02:30 (crontab -e):
      30 2 * * * swarmai backup /srv/stack.yaml /var/backups/swarmai >>/var/log/swarmai.log 2>&1
    """
    def action() -> Path:
        stack = load_stack(stack_file, target)
        backend = backend_for(target, Engine.from_env(), state_dir=state_dir)
        offline_as_deployed = offline_for(stack, target, backend.live(stack), offline, progress)
        with sigterm_as_ctrl_c():
            return backup_registry(backend, stack, destination, offline=offline_as_deployed,
                                   progress=progress)

    click.echo(str(run_action(action)))


@click.command()
@stack_file_argument()
@click.argument("source", metavar="SNAPSHOT",
                type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--replace", is_flag=True,
              help="Overwrite a registry that already has models (they are lost).")
@_TARGET
@offline_option()
@state_dir_option()
@timeout_option(600)
def restore(stack_file: Path, source: Path, replace: bool, target: Target, offline: bool,
            state_dir: Path | None, timeout_s: int) -> None:
    """Load a snapshot of `swarmai backup` into the registry of stack FILE.

    Every checksum is verified first; a corrupt or incomplete snapshot, a
    stack of another database kind (or Postgres major), or a registry that
    already has models (without --replace) exits 2 and changes nothing.
    Then the database is loaded, the artifacts uploaded, the registry checked
    against the manifest, and the running model servers restarted so they
    serve the restored versions. Safe to re-run.

    \b
    Examples:
      swarmai deploy stacks/dev.yaml --offline    # a fresh stack: stops at "push, then deploy"
      swarmai restore stacks/dev.yaml /var/backups/swarmai/dev-20261203T023000Z --offline
      swarmai deploy stacks/dev.yaml --offline    # the model servers start
      swarmai restore stack.yaml ./backups/dev-20261203T023000Z -t compose --replace
    """
    def action() -> RestoreReport:
        stack = load_stack(stack_file, target)
        backend = backend_for(target, Engine.from_env(), state_dir=state_dir)
        # A restore moves aliases and restarts servers: never beside a promotion or deploy.
        with stack_lock(stack, target, state_dir, f"swarmai restore {stack_file}",
                        "restore or deploy"), sigterm_as_ctrl_c():
            offline_as_deployed = offline_for(stack, target, backend.live(stack), offline,
                                              progress)
            return restore_registry(backend, stack, source, replace=replace,
                                    offline=offline_as_deployed, timeout_s=timeout_s,
                                    progress=progress)

    report = run_action(action)
    counts = report.counts
    click.echo(f"restored {counts['models']} models, {counts['versions']} versions, "
               f"{counts['aliases']} aliases, {counts['tags']} tags")
    for service in report.restarted:
        click.echo(f"restarted {service}")
    if report.not_running:
        deploy = "swarmai deploy" if target == "swarm" else "swarmai up"
        click.echo(f"not running yet: {', '.join(report.not_running)}; start them with "
                   f"`{deploy} {stack_file}`")
