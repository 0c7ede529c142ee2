"""The ``swarmai`` command line: a thin click layer over the library.

Only this package imports click.  Every command maps library errors to exit
codes in one place (:func:`swarmai.cli.common.run_action`): 2 for invalid
input, 1 for a failed operation, and never a traceback for either.

Commands are imported when they are run (click's documented lazy-group
pattern): ``swarmai validate`` and ``render`` never import the Docker clients,
MLflow or the image builder, so they answer about as fast as click, PyYAML and
pydantic import (bench/startup.py).
"""

from __future__ import annotations

import importlib

import click

from swarmai import __version__

# Command name -> "module:attribute" of its click command (--help lists them sorted).
COMMANDS: dict[str, str] = {
    "validate": "spec_cmds:validate",
    "render": "spec_cmds:render",
    "nodes": "spec_cmds:nodes",
    "deploy": "lifecycle_cmds:deploy",
    "rm": "lifecycle_cmds:rm",
    "up": "lifecycle_cmds:up",
    "down": "lifecycle_cmds:down",
    "status": "lifecycle_cmds:status",
    "plan": "plan_cmds:plan",
    "logs": "logs_cmds:logs",
    "doctor": "lifecycle_cmds:doctor",
    "models": "registry_cmds:models",
    "images": "registry_cmds:images",
    "promote": "promote_cmds:promote",
    "rollback": "promote_cmds:rollback",
    "upgrade-check": "upgrade_cmds:upgrade_check_command",
    "backup": "backup_cmds:backup",
    "restore": "backup_cmds:restore",
    "secrets": "secrets_cmds:secrets",
}


class LazyGroup(click.Group):
    """A group whose commands' modules are imported only when a command is needed."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attribute = target.split(":")
        command = getattr(importlib.import_module(f"swarmai.cli.{module}"), attribute)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=LazyGroup,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
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
      swarmai plan stacks/dev.yaml --offline        # what a deploy would change
      swarmai deploy stacks/dev.yaml --offline      # a Swarm
      swarmai models push stacks/dev.yaml iris model.pkl --alias production
      swarmai status stacks/dev.yaml
      swarmai logs stacks/dev.yaml iris --follow
      swarmai promote stacks/dev.yaml iris --to production --from staging
    """


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="swarmai")


__all__ = ["cli", "main"]
