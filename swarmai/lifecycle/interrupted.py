"""Promotions that died half-way, as ``deploy`` and ``up`` find them.

A promotion writes ``swarmai.pending.<alias>`` before it moves the alias and
clears it once the servers answer with the new version (promotion/promote.py).
A deploy that found such a record and rolled the servers to whatever the alias
says would serve a version nobody verified.  A deploy cannot verify (that is
promote's work, with the gateway watched), so it undoes the promotion, in the
order a promotion's own restore uses, so that an undo cut short is found and
done again: the alias back to the version it came from, the previous tag back
to what it was, the record last.  The message says so and names the promote to
run again.  An alias the promotion created has no version to go back to: the
deploy stops and names ``swarmai promote --resume``, which finishes it verified.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from swarmai import modeluri
from swarmai.errors import OperationError
from swarmai.modeluri import Pending
from swarmai.registry_client import CheckResult, ModelRegistry
from swarmai.spec import Stack

Progress = Callable[[str], None]


def undo_interrupted(registry: ModelRegistry, stack: Stack, stack_file: Path,
                     results: Sequence[CheckResult], progress: Progress) -> list[CheckResult]:
    """``results`` as they are once every unfinished promotion they show is undone."""
    return [_undo(registry, stack, stack_file, result, result.pending, progress)
            if result.pending is not None and result.found else result
            for result in results]


def _undo(registry: ModelRegistry, stack: Stack, stack_file: Path, result: CheckResult,
          pending: Pending, progress: Progress) -> CheckResult:
    uri = modeluri.parse(result.uri)
    alias = uri.alias
    assert alias is not None  # only an alias has a pending record
    model = next(m.name for m in stack.models if m.model == result.uri)
    what = (f"an interrupted promotion of {uri.name}@{alias} (version "
            f"{pending.source or '-'} -> {pending.target})")
    moved = result.version is not None and str(result.version) == pending.target
    if moved and pending.source is None:
        raise OperationError(
            f"{what} created @{alias}, so there is no version to go back to, and a deploy "
            f"does not verify one: finish it with `swarmai promote {stack_file} {model} "
            f"--to {alias} --resume`, then run this command again")
    back = int(pending.source) if moved and pending.source is not None else None
    if back is not None:
        registry.move_alias(uri.name, alias, back, remember=False)
    put_back_records(registry, uri.name, alias, pending)
    if back is None:
        progress(f"{what} had not moved the alias: its records are removed")
        return replace(result, pending=None)
    progress(f"{what} was undone: @{alias} is back at version {back}; promote it again "
             f"with `swarmai promote {stack_file} {model} --to {alias} --version "
             f"{pending.target}`")
    return replace(result, version=back, pending=None)


def put_back_records(registry: ModelRegistry, name: str, alias: str, pending: Pending) -> None:
    """The previous tag as it was before the promotion, then its pending record gone:
    last, so that a run cut short between the two is found and done again."""
    registry.set_tag(name, modeluri.previous_tag(alias), pending.previous)
    registry.set_tag(name, modeluri.pending_tag(alias), None)
