"""`swarmai upgrade-check`: what a deploy would do to the registry's data; and the
`--upgrade-registry` flag deploy and up share."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from swarmai.cli.common import (
    TARGETS,
    Decorator,
    offline_option,
    output_option,
    run_action,
    stack_file_argument,
    state_dir_option,
)
from swarmai.engine import Engine
from swarmai.lifecycle.backend import backend_for
from swarmai.lifecycle.upgrade_check import REFUSED_EXIT, UpgradeCheck, format_check, upgrade_check
from swarmai.spec import Target, load_stack


def upgrade_registry_option() -> Decorator:
    return click.option(
        "--upgrade-registry", is_flag=True,
        help="Go ahead when the registry's MLflow release changes (its schema is migrated "
             "at start, with no way back but a backup: run `swarmai backup FILE DIR` "
             "first) or a registry image's version cannot be read. Never overrides "
             "another Postgres major.")


@click.command("upgrade-check")
@stack_file_argument()
@click.option("--target", "-t", type=TARGETS, default="swarm", show_default=True,
              help="swarm: against the stack `swarmai deploy` runs; compose: against the "
                   "project `swarmai up` runs.")
@offline_option()
@upgrade_registry_option()
@state_dir_option()
@output_option()
def upgrade_check_command(stack_file: Path, target: Target, offline: bool,
                          upgrade_registry: bool, state_dir: Path | None,
                          output_format: str) -> None:
    """Say what deploying FILE with these flags would do to the registry's data.

    \b
    For each registry service (mlflow, postgres, s3), the image running now is
    compared with the one the deploy would start, and the change is named:
      same image                 nothing
      PostgreSQL 15 -> 15        the data directory is kept
      PostgreSQL 15 -> 16        refused: the data directory is 15's; keep the
                                 images it runs, or dump and restore (the
                                 message says how); no flag overrides it
      MLflow 3.17.2 -> 3.18.0    schema upgrade at start: take a backup
                                 (swarmai backup FILE DIR), then deploy with
                                 --upgrade-registry
      SeaweedFS 4.48 -> 4.49     data format compatible, the volume is kept
      unknown                    a version not in the image's tag, labels or
                                 environment: check it, then --upgrade-registry
    Versions are read from the image (env PG_MAJOR / POSTGRES_MAJOR, swarmai's
    labels) or its tag; nothing is started. deploy and up refuse exactly
    what this refuses, with exit 2, before they change anything.

    \b
    Exit codes:
      0  a deploy with these flags would go ahead
      3  it would be refused
      1  the check failed (engine error); 2  invalid input

    \b
    Examples:
      swarmai upgrade-check stacks/dev.yaml              # switching to the defaults
      swarmai upgrade-check stacks/dev.yaml --offline    # to the offline builds
      swarmai upgrade-check stacks/dev.yaml -t compose -o json
      swarmai upgrade-check stacks/dev.yaml && swarmai deploy stacks/dev.yaml
    """
    def action() -> UpgradeCheck:
        stack = load_stack(stack_file, target)
        backend = backend_for(target, Engine.from_env(), state_dir=state_dir)
        return upgrade_check(backend, stack, stack_file, offline=offline,
                             upgrade_registry=upgrade_registry)

    check = run_action(action)
    click.echo(json.dumps(check.as_dict(), indent=2) if output_format == "json"
               else format_check(check))
    sys.exit(REFUSED_EXIT if check.refused else 0)
