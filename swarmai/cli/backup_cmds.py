"""``swarmai backup`` and ``swarmai restore``: a stack's registry to a folder (or an S3
bucket) and back."""

from __future__ import annotations

import tempfile
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
from swarmai.errors import UsageError
from swarmai.lifecycle import backup_remote
from swarmai.lifecycle.backend import backend_for
from swarmai.lifecycle.backup import RestoreReport
from swarmai.lifecycle.backup import backup as backup_registry
from swarmai.lifecycle.backup import restore as restore_registry
from swarmai.promotion.guard import offline_for
from swarmai.spec import Target, load_stack

_TARGET = click.option("--target", "-t", type=TARGETS, default="swarm", show_default=True,
                       help="Where the stack runs: swarm (deploy) or compose (up).")
_S3_ENDPOINT = click.option(
    "--s3-endpoint", metavar="URL",
    help="The S3 server of an s3:// location, e.g. https://minio.example.com:9000.")
_S3_CREDENTIALS = click.option(
    "--s3-credentials", type=click.Path(dir_okay=False, exists=True, path_type=Path),
    metavar="FILE", help="Keys for an s3:// location: an AWS credentials file ([default]); "
    "else AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.")


def _remote(location: str, endpoint: str | None,
            credentials: Path | None) -> tuple[backup_remote.S3Location, object] | None:
    """The S3 location and a client for it, or None for a local folder."""
    where = backup_remote.parse_location(location)
    if where is None:
        return None
    return where, backup_remote.client(backup_remote.access(endpoint, credentials))


@click.command()
@stack_file_argument()
@click.argument("destination", metavar="DIR|s3://BUCKET/PREFIX")
@_TARGET
@offline_option()
@state_dir_option()
@_S3_ENDPOINT
@_S3_CREDENTIALS
def backup(stack_file: Path, destination: str, target: Target, offline: bool,
           state_dir: Path | None, s3_endpoint: str | None,
           s3_credentials: Path | None) -> None:
    """Snapshot the registry of stack FILE (database + artifacts) into DIR,
    or into an S3 bucket.

    Creates DIR/<stack>-<UTC time>/ with the database dump (pg_dump, or
    SQLite's backup API), every object of the artifact bucket, and
    manifest.json (images, sha256 of every file, and every model, version,
    alias and tag). The database is dumped first, then the bucket mirrored:
    artifacts never change once written, so every artifact the dump refers
    to is in the mirror. A snapshot appears under its final name only when
    whole. Prints the snapshot's path. Run it on a manager (Swarm) or the
    Compose host; with SQLite, on the registry's data node.

    To s3://BUCKET/PREFIX (another S3 server, given by --s3-endpoint): the
    snapshot is made in a temporary folder, then uploaded with the minio
    client to PREFIX/<stack>-<UTC time>/, manifest.json last, so a copy cut
    short is never taken for a snapshot. Prints its s3:// URI.

    \b
    Examples:
      swarmai backup stacks/dev.yaml /var/backups/swarmai --offline
      swarmai backup stack.yaml ./backups -t compose
      swarmai backup stack.yaml s3://backups/swarmai --s3-endpoint https://s3.example.com \\
        --s3-credentials /root/.aws/credentials
      # nightly at 02:30 (crontab -e):
      30 2 * * * swarmai backup /srv/stack.yaml /var/backups/swarmai >>/var/log/swarmai.log 2>&1
    """
    def action() -> str:
        stack = load_stack(stack_file, target)
        remote = _remote(destination, s3_endpoint, s3_credentials)
        backend = backend_for(target, Engine.from_env(), state_dir=state_dir)
        offline_as_deployed = offline_for(stack, target, backend.live(stack), offline, progress)
        with sigterm_as_ctrl_c():
            if remote is None:
                return str(backup_registry(backend, stack, Path(destination),
                                           offline=offline_as_deployed, progress=progress))
            location, s3 = remote
            with tempfile.TemporaryDirectory(prefix="swarmai-backup-") as work:
                made = backup_registry(backend, stack, Path(work), offline=offline_as_deployed,
                                       progress=progress)
                progress(f"uploading {made.name} to {location.uri()}")
                return backup_remote.upload_snapshot(s3, made, location)

    click.echo(run_action(action))


@click.command()
@stack_file_argument()
@click.argument("source", metavar="SNAPSHOT")
@click.option("--replace", is_flag=True,
              help="Overwrite a registry that already has models (they are lost).")
@_TARGET
@offline_option()
@state_dir_option()
@timeout_option(600)
@_S3_ENDPOINT
@_S3_CREDENTIALS
def restore(stack_file: Path, source: str, replace: bool, target: Target, offline: bool,
            state_dir: Path | None, timeout_s: int, s3_endpoint: str | None,
            s3_credentials: Path | None) -> None:
    """Load a snapshot of `swarmai backup` (a folder, or s3://BUCKET/PREFIX/<stack>-<time>
    with --s3-endpoint) into the registry of stack FILE.

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
      swarmai restore stack.yaml s3://backups/swarmai/dev-20261203T023000Z \\
        --s3-endpoint https://s3.example.com --s3-credentials /root/.aws/credentials
    """
    def action() -> RestoreReport:
        stack = load_stack(stack_file, target)
        remote = _remote(source, s3_endpoint, s3_credentials)
        if remote is None and not Path(source).is_dir():
            raise UsageError(f"{source}: no such snapshot folder")
        backend = backend_for(target, Engine.from_env(), state_dir=state_dir)
        # A restore moves aliases and restarts servers: never beside a promotion or deploy.
        with stack_lock(stack, target, state_dir, f"swarmai restore {stack_file}",
                        "restore or deploy"), sigterm_as_ctrl_c(), \
                tempfile.TemporaryDirectory(prefix="swarmai-restore-") as work:
            folder = Path(source)
            if remote is not None:
                location, s3 = remote
                progress(f"downloading {location.uri()}")
                folder = backup_remote.download_snapshot(s3, location, Path(work))
            offline_as_deployed = offline_for(stack, target, backend.live(stack), offline,
                                              progress)
            return restore_registry(backend, stack, folder, replace=replace,
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
