"""``swarmai secrets rotate``: a new value for a secret swarmai generated."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import click

from swarmai import tlsca
from swarmai.cli.common import (
    TARGETS,
    output_option,
    run_action,
    stack_file_argument,
    stack_lock,
    state_dir_option,
    timeline,
    timeout_option,
    verbose_option,
)
from swarmai.engine import Engine
from swarmai.lifecycle.backend import backend_for
from swarmai.lifecycle.rotation import RotationReport
from swarmai.spec import Target, load_stack


@click.group()
def secrets() -> None:
    """The secrets swarmai generated for a stack."""


@secrets.command("rotate")
@stack_file_argument()
@click.argument("name")
@click.option("--target", "-t", type=TARGETS, default="swarm", show_default=True,
              help="Where the stack runs: swarm (deploy) or compose (up).")
@state_dir_option()
@timeout_option(600)
@output_option()
@verbose_option()
def rotate(stack_file: Path, name: str, target: Target, state_dir: Path | None,
           timeout_s: int, output_format: str, verbose: bool) -> None:
    """Give secret NAME of the running stack FILE a new random value, and restart the
    services that read it.

    NAME is a secret swarmai generated for the stack: registry.db_password_secret
    (the database password: changed in Postgres with ALTER ROLE, the data stays),
    storage.credentials_secret (the S3 store's keys, unless storage is external),
    gateway.auth.basic_users_secret or a route's
    models[].gateway.auth.basic_users_secret (the new login is written to
    NAME.credentials in the state directory, never printed), or gateway.tls.secret
    with tls.mode local (a new certificate from swarmai's local CA).  Secrets you
    created yourself are refused (exit 2).

    \b
    How (Swarm): the new value goes into secret NAME.next, the services are moved
    onto it (same file in /run/secrets), NAME is re-created with it, the services
    move back, NAME.next is removed; the stack file is unchanged, so a later
    deploy restarts nothing.  Compose: secrets/NAME.next is written, renamed over
    NAME, and the services are re-created.  Safe to re-run: an interrupted
    rotation is finished (or the value rotated once more) by the next run.

    \b
    Each roll restarts the services: expect a few seconds in which MLflow cannot
    reach its database, and, for the S3 keys, a short artifact outage while the
    store and MLflow change keys one after the other.  Model servers keep serving.

    \b
    Examples:
      swarmai secrets rotate stacks/dev.yaml mlflow-db-password
      swarmai secrets rotate stacks/dev.yaml s3-creds
      swarmai secrets rotate stacks/dev.yaml mlflow-db-password -t compose
    """
    def action() -> RotationReport:
        stack = load_stack(stack_file, target)
        backend = backend_for(target, Engine.from_env(), state_dir=state_dir)
        # A deploy beside a rotation would re-point the services at the old secret.
        with stack_lock(stack, target, state_dir, f"swarmai secrets rotate {stack_file} {name}",
                        "rotation or deploy"):
            return backend.rotate_secret(stack, stack_file, name, timeout_s=timeout_s,
                                         progress=timeline(verbose))

    report = run_action(action)
    if output_format == "json":
        shown = dataclasses.asdict(report) | {"reveal": None}
        shown["revealed"] = str(report.revealed) if report.revealed else None
        click.echo(json.dumps(shown, indent=2))
        return
    if report.revealed is not None:
        click.echo(f"the new login is in {report.revealed} (readable by you only)")
    click.echo(f"rotated {name}; restarted: {', '.join(report.services) or 'nothing'}")


@secrets.command("ca")
def ca() -> None:
    """Print the path of swarmai's local CA certificate, creating the CA if there is none.

    A stack with gateway.tls.mode local (the default) serves HTTPS with a
    certificate this CA issued.  Clients trust the CA, not each certificate:
    the path goes to stdout for scripts, how to trust it to stderr.  The CA
    lives in $SWARMAI_CA_DIR, or $XDG_DATA_HOME/swarmai/ca (its key readable
    by you only).

    \b
    Examples:
      curl --cacert "$(swarmai secrets ca)" https://127.0.0.1/churn/v1/predict ...
      SWARMAI_CA_DIR=/srv/swarmai-ca swarmai secrets ca
    """
    local_ca = run_action(tlsca.ensure_ca)
    click.echo(str(local_ca.cert))
    click.echo(("created swarmai's local CA; " if local_ca.created else "")
               + tlsca.trust_hint(local_ca), err=True)
