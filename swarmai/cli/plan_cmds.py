"""`swarmai plan`: what a deploy would change, against what runs now."""

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
    progress,
    run_action,
    stack_file_argument,
    state_dir_option,
)
from swarmai.engine import Engine
from swarmai.lifecycle.backend import backend_for
from swarmai.lifecycle.plan import CHANGES_PENDING_EXIT, Plan, format_text
from swarmai.lifecycle.plan_live import make_plan
from swarmai.spec import Stack, Target, load_stack


@click.command()
@stack_file_argument()
@click.option("--target", "-t", type=TARGETS, default="swarm", show_default=True,
              help="swarm: against the stack `swarmai deploy` runs; compose: against the "
                   "project `swarmai up` runs.")
@offline_option()
@state_dir_option()
@output_option()
@click.option("--ipvs/--no-ipvs", default=None,
              help="As deploy's: override network.ipvs [default: the spec; auto probes "
                   "this machine].")
def plan(stack_file: Path, target: Target, offline: bool, state_dir: Path | None,
         output_format: str, ipvs: bool | None) -> None:
    """Show what deploying FILE would change, against what runs now; change nothing.

    \b
    Compared with the live engine (Swarm services of the stack, or the Compose
    project's containers), after rendering FILE as deploy would:
      services   created, removed, or changed field by field: image, model
                 version, replicas, resources, placement, ports, env, labels
                 (routes), mounted configs; each change says whether it
                 restarts the service's tasks (Swarm) or containers (Compose)
      configs    by content hash; secrets, networks, volumes: the ones to create
                 (secrets by name: a secret's value is never read or shown)
      models     each model URI: the version its alias resolves to in MLflow
                 now, and the version that runs
    Use the same --offline (and --state-dir) as the deploy it predicts.

    \b
    Which changes restart: on Swarm every change to the task template does,
    replicas only scale, and the service's own labels (where Traefik's routes
    live) change in place. On Compose any container change re-creates the
    containers (a route or a mounted file's content too), replicas only
    scale. The changed fields are the same on both.

    \b
    Exit codes (like `terraform plan -detailed-exitcode`, so CI can gate on it):
      0  no changes
      3  changes pending (2 is every swarmai command's code for invalid input)
      1  the plan failed (engine or registry error)
      2  invalid input (a bad FILE or command line)

    \b
    Examples:
      swarmai plan stacks/dev.yaml --offline
      swarmai plan stacks/dev.yaml -t compose -o json
      swarmai plan stacks/dev.yaml; [ $? -eq 3 ] && swarmai deploy stacks/dev.yaml
      swarmai deploy stacks/dev.yaml --plan       # print the plan, then deploy
    """
    def action() -> Plan:
        stack = load_stack(stack_file, target)
        return plan_for(stack, target, offline=offline, state_dir=state_dir, ipvs=ipvs)

    result = run_action(action)
    data = result.as_dict()
    click.echo(json.dumps(data, indent=2) if output_format == "json" else format_text(data))
    sys.exit(CHANGES_PENDING_EXIT if result.pending else 0)


def plan_for(stack: Stack, target: Target, *, offline: bool, state_dir: Path | None,
             ipvs: bool | None = None) -> Plan:
    """The plan of deploying (swarm) or starting (compose) ``stack`` now."""
    engine = Engine.from_env()
    backend = backend_for(target, engine, state_dir=state_dir)
    return make_plan(engine, stack, target, backend.live(stack), offline=offline, ipvs=ipvs)


def plan_option() -> Decorator:
    return click.option("--plan", "show_plan", is_flag=True,
                        help="First print what the deploy will change (`swarmai plan`), on "
                             "stderr, then deploy.")


def show_plan(stack: Stack, target: Target, *, offline: bool, state_dir: Path | None,
              ipvs: bool | None = None) -> None:
    """Print the plan on stderr, with the deploy's progress (`deploy/up --plan`)."""
    progress(format_text(plan_for(stack, target, offline=offline, state_dir=state_dir,
                                  ipvs=ipvs).as_dict()))
