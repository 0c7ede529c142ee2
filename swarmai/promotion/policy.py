"""Promotion policies: which alias moves to which version, judged by which metric.

A policy file (YAML) names a stack and, for some of its models, a source alias
(the candidate, e.g. ``staging``), a target alias (e.g. ``production``) and an
MLflow run metric the candidate must pass: an absolute threshold (``min`` /
``max``) and/or beating the version the target alias points at now
(``compare``).  :func:`load_policy` validates it the way
:func:`swarmai.spec.load_stack` validates a stack (every problem at once,
located by YAML path, with a hint); :func:`decide` is the pure rule that
``scripts/promote_models.py`` applies to what ``swarmai models describe`` reports.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, ValidationError
from pydantic_core import ErrorDetails

from swarmai import modeluri
from swarmai.errors import Problem, SpecError
from swarmai.spec import Stack, Target, format_loc, load_stack
from swarmai.spec.load import read_yaml_mapping
from swarmai.spec.suggest import did_you_mean

Loc = tuple[str | int, ...]
Compare = Literal["higher", "lower", "none"]
DecisionKind = Literal["promote", "up-to-date", "rejected", "skipped"]

def _alias(value: str) -> str:
    if not modeluri.ALIAS.fullmatch(value):
        raise ValueError(f"{value!r} is not an MLflow alias (letters, digits, _ and -)")
    if modeluri.is_reserved_alias(value):
        raise ValueError(f"alias {value!r} is reserved by MLflow (use another alias name)")
    return value


def _text(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


def _non_empty(items: tuple[Any, ...]) -> tuple[Any, ...]:
    if not items:
        raise ValueError("must list at least one entry")
    return items


Alias = Annotated[str, AfterValidator(_alias)]
Text = Annotated[str, AfterValidator(_text)]
Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]


class _Policy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Rule(_Policy):
    """One ``models[]`` entry: promote ``source``'s version to ``target`` when it qualifies."""

    model: Text
    source: Alias = Field(alias="from")
    target: Alias = Field(alias="to")
    metric: Text
    compare: Compare
    minimum: Number | None = Field(default=None, alias="min")
    maximum: Number | None = Field(default=None, alias="max")
    margin: Number = Field(default=0.0, ge=0)


class Policy(_Policy):
    version: Literal[1]
    stack: Text
    target: Target = "swarm"
    offline: StrictBool = False
    state_dir: Text | None = None  # swarmai promote --state-dir, when deploy/up used one
    audit_log: Text | None = None
    lock_file: Text | None = None
    models: Annotated[tuple[Rule, ...], AfterValidator(_non_empty)]


@dataclass(frozen=True)
class LoadedPolicy:
    """A valid policy with its paths resolved (relative ones against the policy's folder)."""

    path: Path
    label: str  # the policy path as the user wrote it, for messages
    policy: Policy
    stack_path: Path
    audit_log: Path
    lock_file: Path
    state_dir: Path | None
    registered: Mapping[str, str]  # stack model name -> registered MLflow model name
    warnings: tuple[str, ...]


def load_policy(path: str | Path) -> LoadedPolicy:
    """Read and validate the policy in ``path`` and the stack it names.

    Raises :class:`SpecError` with every problem found, each located by YAML path.
    """
    label = str(path)
    document = _read_yaml(Path(path), label)
    try:
        policy = Policy.model_validate(document)
    except ValidationError as error:
        raise SpecError([_problem(label, detail) for detail in error.errors()]) from None
    folder = Path(path).resolve().parent
    stack_path = (folder / policy.stack).resolve()
    stack = _load_stack(label, stack_path, policy)
    problems = [Problem(label, format_loc(f.loc), f.message, f.hint)
                for f in _check_rules(policy, stack)]
    if problems:
        raise SpecError(problems)
    # Made absolute without resolving links: a link in the file's own place must
    # reach the no-follow open and be refused there, not be silently followed.
    audit_log = _absolute(folder / (policy.audit_log or f"{Path(path).stem}.audit.jsonl"))
    lock_file = (_absolute(folder / policy.lock_file) if policy.lock_file
                 else Path(f"{audit_log}.lock"))
    served = {m.name: m for m in stack.models}
    return LoadedPolicy(
        path=Path(path).resolve(), label=label, policy=policy, stack_path=stack_path,
        audit_log=audit_log, lock_file=lock_file,
        state_dir=(folder / policy.state_dir).resolve() if policy.state_dir else None,
        # Every rule's model has a registered name: _check_rules refused those without.
        registered={r.model: name for r in policy.models
                    if (name := served[r.model].registered_name) is not None},
        warnings=tuple(_warnings(label, policy, stack)),
    )


def _load_stack(label: str, stack_path: Path, policy: Policy) -> Stack:
    if not stack_path.is_file():
        raise SpecError([Problem(label, "stack", f"stack file {str(stack_path)!r} not found",
                                 "a relative path is read from the policy file's folder")])
    try:
        return load_stack(stack_path, policy.target)
    except SpecError as error:
        head = Problem(label, "stack", f"{policy.stack!r} is not a valid {policy.target} stack",
                       f"swarmai validate {stack_path} --target {policy.target}")
        raise SpecError([head, *error.problems]) from None


@dataclass(frozen=True)
class _Finding:
    loc: Loc
    message: str
    hint: str = ""


def _check_rules(policy: Policy, stack: Stack) -> Iterator[_Finding]:
    names = [m.name for m in stack.models]
    registered = {m.name: m.registered_name for m in stack.models}
    first_seen: dict[tuple[str, str], int] = {}
    for index, rule in enumerate(policy.models):
        yield from _check_rule(index, rule)
        if rule.model not in registered:
            hint = did_you_mean(rule.model, names) or "models in the stack: " + ", ".join(names)
            yield _Finding(("models", index, "model"),
                           f"{rule.model!r} is not a model of stack {policy.stack!r}", hint)
            continue
        name = registered[rule.model]
        if name is None:
            yield _Finding(("models", index, "model"),
                           f"stack model {rule.model!r} is an app that loads no registry model: "
                           "there is no alias to promote",
                           "promote an app by changing its app.image and deploying again")
            continue
        key = (name, rule.target)
        if key in first_seen:
            yield _Finding(("models", index, "to"),
                           f"{key[0]}@{key[1]} is already promoted by models[{first_seen[key]}]",
                           "one rule per registered model and target alias")
        else:
            first_seen[key] = index


def _check_rule(index: int, rule: Rule) -> Iterator[_Finding]:
    if rule.source == rule.target:
        yield _Finding(("models", index, "to"), f"is the same alias as from ({rule.source!r})",
                       "promote from a candidate alias such as staging")
    if rule.compare == "none" and rule.minimum is None and rule.maximum is None:
        yield _Finding(("models", index, "compare"),
                       "'none' without min or max would promote every candidate",
                       "add min: or max:, or compare: higher / lower")
    if rule.compare == "none" and rule.margin:
        yield _Finding(("models", index, "margin"), "only applies with compare: higher or lower")
    if rule.minimum is not None and rule.maximum is not None and rule.minimum > rule.maximum:
        yield _Finding(("models", index, "max"),
                       f"{rule.maximum:g} is below min ({rule.minimum:g})",
                       "no value could pass both")


def _warnings(label: str, policy: Policy, stack: Stack) -> Iterator[str]:
    served = {m.name: m.model for m in stack.models if m.model is not None}
    for index, rule in enumerate(policy.models):
        uri = served[rule.model]
        if not uri.endswith(f"@{rule.target}"):
            yield (f"{label}: models[{index}].to: stack model {rule.model!r} serves {uri}; "
                   f"moving alias {rule.target!r} does not change what it serves")


# --- the decision -----------------------------------------------------------


class VersionFacts(BaseModel):
    model_config = ConfigDict(frozen=True, coerce_numbers_to_str=True)

    version: str
    run_id: str | None = None
    metrics: dict[str, float] = {}


class Described(BaseModel):
    """What ``swarmai models describe ... --output json`` prints (fields we read)."""

    model_config = ConfigDict(frozen=True, coerce_numbers_to_str=True)

    name: str
    aliases: dict[str, str]
    tags: dict[str, str] = {}
    versions: dict[str, VersionFacts]


@dataclass(frozen=True)
class Decision:
    kind: DecisionKind
    reason: str
    candidate: str | None = None
    current: str | None = None
    candidate_value: float | None = None
    current_value: float | None = None


def decide(rule: Rule, described: Described) -> Decision:
    """Whether ``rule``'s candidate version should become its target alias's version.

    - the source alias is missing, or the candidate (or, when comparing, the
      current version) lacks a finite value of the metric: ``skipped``;
    - the target alias already points at the candidate: ``up-to-date``;
    - the metric is outside ``min``/``max`` (inclusive), or does not beat the
      current version's by more than ``margin``: ``rejected``;
    - otherwise ``promote``.  A missing target alias counts as nothing to beat.
    """
    candidate = described.aliases.get(rule.source)
    current = described.aliases.get(rule.target)
    if candidate is None:
        return Decision("skipped", f"alias {rule.source!r} does not exist (no candidate)",
                        current=current)
    if candidate == current:
        return Decision("up-to-date", f"{rule.target} already points at version {candidate} "
                        f"({rule.source}'s version)", candidate, current)
    value, missing = _metric(described, candidate, rule)
    if value is None:
        return Decision("skipped", missing, candidate, current)
    found = Decision("rejected", "", candidate, current, candidate_value=value)
    below = _threshold_failure(rule, candidate, value)
    if below:
        return _with(found, reason=below)
    what, bounds = f"{rule.metric} {value:g} of version {candidate}", _bounds(rule)
    if rule.compare == "none" or current is None:
        passed = f"{what} is {bounds}" if bounds else what
        first = f"{rule.target} does not exist yet; " if current is None else ""
        return _with(found, kind="promote", reason=first + passed)
    current_value, missing = _metric(described, current, rule)
    if current_value is None:
        return _with(found, kind="skipped", reason=f"{missing}: nothing to compare with")
    passed = f"{what} ({bounds})" if bounds else what
    return _compare(rule, _with(found, current_value=current_value), passed)


def _compare(rule: Rule, found: Decision, passed: str) -> Decision:
    value, current_value = found.candidate_value, found.current_value
    assert value is not None and current_value is not None
    if rule.compare == "higher":
        beats = value > current_value + rule.margin
    else:
        beats = value < current_value - rule.margin
    by = f" by more than {rule.margin:g}" if rule.margin else ""
    against = f"{current_value:g} of version {found.current} ({rule.target})"
    if not beats:
        return _with(found, reason=f"{passed} is not {rule.compare} than {against}{by}")
    return _with(found, kind="promote", reason=f"{passed} beats {against}{by}")


def _with(decision: Decision, **changes: Any) -> Decision:
    return replace(decision, **changes)


def _metric(described: Described, version: str, rule: Rule) -> tuple[float | None, str]:
    facts = described.versions.get(version)
    if facts is None:
        return None, f"version {version} is not in swarmai's description of {described.name}"
    value = facts.metrics.get(rule.metric)
    if value is None:
        return None, f"version {version} has no metric {rule.metric!r}"
    if not math.isfinite(value):
        return None, f"metric {rule.metric!r} of version {version} is {value}"
    return value, ""


def _threshold_failure(rule: Rule, version: str, value: float) -> str:
    what = f"{rule.metric} {value:g} of version {version}"
    if rule.minimum is not None and value < rule.minimum:
        return f"{what} is below min {rule.minimum:g}"
    if rule.maximum is not None and value > rule.maximum:
        return f"{what} is above max {rule.maximum:g}"
    return ""


def _bounds(rule: Rule) -> str:
    bounds = [f">= min {rule.minimum:g}" if rule.minimum is not None else "",
              f"<= max {rule.maximum:g}" if rule.maximum is not None else ""]
    return " and ".join(b for b in bounds if b)


# --- reading the file ---------------------------------------------------------


def _read_yaml(path: Path, label: str) -> object:
    return read_yaml_mapping(path, label, "registry/examples/policy.example.yaml")


def _problem(label: str, detail: ErrorDetails) -> Problem:
    loc: Loc = tuple(detail["loc"])
    if detail["type"] == "extra_forbidden":
        known = _known_keys(loc[:-1])
        key = str(loc[-1])
        hint = did_you_mean(key, known) or "known keys: " + ", ".join(known)
        return Problem(label, format_loc(loc), f"unknown key {key!r}", hint)
    if detail["type"] == "missing":
        return Problem(label, format_loc(loc), "is required but missing", f"add {loc[-1]}:")
    message = detail["msg"].removeprefix("Value error, ")
    got = detail["input"]
    quoted = detail["type"] == "value_error" or isinstance(got, dict | list)
    return Problem(label, format_loc(loc), message + ("" if quoted else f" (got {got!r})"))


def _known_keys(loc: Loc) -> list[str]:
    kind = Rule if loc[:1] == ("models",) else Policy
    return [field.alias or name for name, field in kind.model_fields.items()]


def _absolute(path: Path) -> Path:
    """``path`` absolute and without ``..``, its last part never resolved."""
    return path.parent.resolve() / path.name
