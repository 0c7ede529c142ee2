"""``swarmai logs``: what the replicas of a stack's services wrote, one prefixed line each."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import click

from swarmai.cli.common import run_action, stack_file_argument, target_option
from swarmai.engine import Engine
from swarmai.errors import UsageError
from swarmai.lifecycle.backend import backend_for
from swarmai.lifecycle.logs import (
    DEFAULT_TAIL,
    LogLine,
    LogOptions,
    format_line,
    parse_since,
    select_services,
)
from swarmai.spec import Target, load_stack

# The status a shell gives a command stopped by Ctrl-C (128 + SIGINT).
_INTERRUPTED = 130


def _tail(_ctx: click.Context, _param: click.Parameter, value: str) -> int | None:
    if value == "all":
        return None
    if value.isdigit():
        return int(value)
    raise click.BadParameter(f"{value!r}: expected a number of lines or 'all'")


def _since(_ctx: click.Context, _param: click.Parameter, value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return parse_since(value, datetime.now(UTC))
    except UsageError as error:
        raise click.BadParameter(str(error).removeprefix(f"--since {value!r}: ")) from None


@click.command()
@stack_file_argument()
@click.argument("model", required=False)
@target_option("swarm: a deployed stack; compose: a stack started with up [default: swarm].")
@click.option("--service", "services", multiple=True, metavar="NAME",
              help="Also (without MODEL: only) this service, named as `swarmai status` names "
                   "it: gateway, mlflow, s3, postgres, sync-MODEL... Repeatable.")
@click.option("--follow", "-f", is_flag=True,
              help="Keep printing new lines as they come, until Ctrl-C.")
@click.option("--tail", default=str(DEFAULT_TAIL), show_default=True, metavar="N|all",
              callback=_tail, help="Start from the last N lines of each replica.")
@click.option("--since", metavar="WHEN", callback=_since,
              help="Only lines since WHEN: a duration (90s, 10m, 1h30m), an RFC 3339 time "
                   "(2026-05-01T10:00:00Z; no zone: local time) or a Unix timestamp.")
@click.option("--timestamps", is_flag=True,
              help="Show each line's time (UTC, as the engine recorded it).")
def logs(stack_file: Path, model: str | None, target: Target | None, services: tuple[str, ...],
         follow: bool, tail: int | None, since: float | None, timestamps: bool) -> None:
    """Show what the replicas of FILE's model servers wrote, merged in time order.

    Without MODEL: every model's servers; with MODEL: that model's (and its
    canary's, while one runs). Each line starts with who wrote it,
    SOURCE/REPLICA@NODE, then " | " and the line:

    \b
      iris/2@gpu-a | ...        model iris, replica 2, on node gpu-a (Swarm)
      iris/2 | ...              the same on Compose (one host, no node)
      iris-canary/1@gpu-a | ... the canary of iris (swarmai promote --canary)
      gateway/1@gpu-a | ...     a service named with --service
      sync-iris@gpu-b | ...     one task per node: no replica number

    On Swarm the manager gathers the lines of every node, those of replaced
    tasks included (a new task keeps the slot, so the replica number, of the
    one it replaced: a rolling update shows both under one prefix). With
    --follow, lines are printed as they arrive (held back 0.3 s to keep
    their order), and on Compose only the containers running when the
    command started are followed. Ctrl-C stops it (exit status 130).

    \b
    Examples:
      swarmai logs stacks/dev.yaml -t compose
      swarmai logs stacks/dev.yaml iris --since 10m -t compose
      swarmai logs stacks/vision.yaml resnet --follow --tail 20
      swarmai logs stacks/vision.yaml --service gateway --service mlflow --timestamps
    """
    def action() -> None:
        chosen: Target = target or "swarm"
        stack = load_stack(stack_file, chosen)
        selected = select_services(stack, stack_file, chosen, model, services)
        options = LogOptions(follow=follow, tail=tail, since=since)
        lines = backend_for(chosen, Engine.from_env()).logs(stack, selected, options)
        if follow:
            _print_as_they_come(lines, timestamps)
        else:
            _print_all(list(lines), timestamps)

    try:
        run_action(action)
    except KeyboardInterrupt:
        sys.exit(_INTERRUPTED)
    except BrokenPipeError:
        # The reader left (`swarmai logs ... | head`): stop quietly; stdout goes to
        # /dev/null so that the interpreter's last flush does not fail on the pipe too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)


def _print_all(lines: list[LogLine], timestamps: bool) -> None:
    width = max((len(line.prefix) for line in lines), default=0)
    if lines:
        click.echo("\n".join(format_line(line, width=width, timestamps=timestamps)
                             for line in lines))


def _print_as_they_come(lines: Iterable[LogLine], timestamps: bool) -> None:
    """One line at a time (click.echo flushes: a pipe sees each at once), the prefixes
    aligned to the longest seen so far."""
    width = 0
    for line in lines:
        width = max(width, len(line.prefix))
        click.echo(format_line(line, width=width, timestamps=timestamps))
