"""The ``swarmai`` command line: a thin click layer over the library.

Only this package imports click.  Every command maps library errors to exit
codes in one place (:func:`swarmai.cli.common.run_action`): 2 for invalid
input, 1 for a failed operation, and never a traceback for either.
"""

from __future__ import annotations

import click

from swarmai import __version__
from swarmai.cli import lifecycle_cmds, promote_cmds, registry_cmds, spec_cmds


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="swarmai")
def cli() -> None:
    """Serve ML models on Docker Swarm or Compose, GPU by GPU, behind one Traefik gateway.

    One declarative stack.yaml describes the gateway, the model registry (MLflow
    with artifacts on S3-compatible storage) and the models; swarmai validates
    it, renders every Compose or Swarm file, deploys it and checks every route.

    \b
    Examples:
      swarmai validate stacks/vision.yaml
      swarmai render stacks/vision.yaml --target swarm -o out/vision
      swarmai images build --offline
      swarmai up stacks/dev.yaml --offline          # one host, Compose
      swarmai deploy stacks/dev.yaml --offline      # a Swarm
      swarmai models push stacks/dev.yaml iris model.pkl --alias production
      swarmai status stacks/dev.yaml
      swarmai promote stacks/dev.yaml iris --to production --from staging
    """


for command in (
    spec_cmds.validate, spec_cmds.render, spec_cmds.nodes,
    lifecycle_cmds.deploy, lifecycle_cmds.rm, lifecycle_cmds.up, lifecycle_cmds.down,
    lifecycle_cmds.status, lifecycle_cmds.doctor,
    registry_cmds.models, registry_cmds.images,
    promote_cmds.promote, promote_cmds.rollback,
):
    cli.add_command(command)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="swarmai")


__all__ = ["cli", "main"]
