"""What every command shares: error-to-exit-code mapping and options defined once."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click

from swarmai.errors import SwarmaiError

if TYPE_CHECKING:
    from swarmai.spec import Stack, Target

_T = TypeVar("_T")
Decorator = Callable[[Callable[..., None]], Callable[..., None]]

TARGETS = click.Choice(["compose", "swarm"])


def run_action(action: Callable[[], _T]) -> _T:
    """Run ``action``; turn swarmai's errors into a message on stderr and an exit code
    (2 invalid input, 1 failed operation), never a traceback."""
    try:
        return action()
    except SwarmaiError as error:
        say(f"error: {error}" if error.exit_code == 1 else str(error), err=True)
        sys.exit(error.exit_code)


@contextmanager
def stack_lock(stack: Stack, target: Target, state_dir: Path | None, command: str,
               what: str) -> Iterator[None]:
    """One deploy, up, promotion or rollback of a stack at a time on this host: the second
    exits 75 naming the first, before it reads or changes anything."""
    # Imported here: every command imports this module, and `validate` / `render`
    # must not pay for the engine clients (tests/test_fast_start.py).
    from swarmai.promotion.locking import held, this_process
    from swarmai.promotion.promote import lock_file

    with held(lock_file(stack, target, state_dir), this_process(command=command),
              what=f"{what} of stack {stack.name}"):
        yield


@contextmanager
def sigterm_as_ctrl_c() -> Iterator[None]:
    """SIGTERM (``docker stop``, systemd, ``kill``) stops the block as Ctrl-C does, so an
    operation that puts back what it changed on Ctrl-C does so on SIGTERM too."""
    def interrupt(_signal: int, _frame: object) -> None:
        raise KeyboardInterrupt

    before = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


def progress(line: str) -> None:
    say(line, err=True)


def say(text: str, *, err: bool = False) -> None:
    """``click.echo``, except that a reader gone away (the cron run that started this
    promotion was killed) does not stop the operation half-way: the lines go nowhere."""
    try:
        click.echo(text, err=err)
    except BrokenPipeError:
        # The descriptor, not just sys.stderr: buffered text is flushed there at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2 if err else 1)
        os.close(devnull)


def timeline(verbose: bool) -> Callable[[str], None]:
    """``progress``, or with ``verbose`` each line led by the seconds since now:
    where a deploy's time goes, step by step."""
    if not verbose:
        return progress
    began = time.monotonic()

    def timed(line: str) -> None:
        say(f"[{time.monotonic() - began:6.1f}s] {line}", err=True)
    return timed


def verbose_option() -> Decorator:
    return click.option("--verbose", "-v", is_flag=True,
                        help="Lead each progress line with the seconds since the command "
                             "began: a timeline of where the time goes.")


def stack_file_argument() -> Decorator:
    return click.argument("stack_file", metavar="FILE", type=click.Path(path_type=Path))


def target_option(help_text: str) -> Decorator:
    return click.option("--target", "-t", type=TARGETS, default=None, help=help_text)


def output_option() -> Decorator:
    return click.option("--output", "-o", "output_format", type=click.Choice(["text", "json"]),
                        default="text", show_default=True, help="Report format.")


def offline_option() -> Decorator:
    return click.option(
        "--offline", is_flag=True,
        help="Use the locally built equivalents of third-party images "
             "(swarmai images build --offline) instead of the official ones.")


def state_dir_option() -> Decorator:
    return click.option(
        "--state-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
        help="Where the rendered files (and Compose secrets) are kept "
             "[default: $XDG_STATE_HOME/swarmai/<stack>-<target>].")


def timeout_option(default: int) -> Decorator:
    return click.option("--timeout", "timeout_s", type=click.IntRange(1), default=default,
                        show_default=True, help="Seconds to wait for every service to be healthy.")


def volumes_option(what: str) -> Decorator:
    return click.option("--volumes", is_flag=True,
                        help=f"Also delete {what}: data is lost.")
