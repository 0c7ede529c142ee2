"""``load_stack``: the only way from a file to a validated :class:`Stack`.

Three stages, each turning its failures into :class:`Problem` s located by YAML
path: YAML syntax (with line and column), field validation (pydantic), then the
cross-field rules of :mod:`.checks`.  All problems of the last stage reached are
reported together.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from swarmai.errors import Problem, SpecError
from swarmai.spec.checks import Finding, Loc, check_stack
from swarmai.spec.fields import Target
from swarmai.spec.models import Stack
from swarmai.spec.suggest import did_you_mean


def load_stack(path: str | Path, target: Target | None = None) -> Stack:
    """Read, validate and return the stack in ``path``.

    ``target`` selects the GPU rules (``compose`` or ``swarm``); ``None`` picks
    Swarm when the stack declares ``nodes:`` and Compose otherwise.
    Raises :class:`SpecError` with every problem found.
    """
    label = str(path)
    document = read_yaml_mapping(Path(path), label)
    try:
        stack = Stack.model_validate(document)
    except ValidationError as error:
        raise SpecError([_problem(label, detail) for detail in error.errors()]) from None
    findings = check_stack(stack, target or default_target(stack))
    if findings:
        raise SpecError([_finding_problem(label, f) for f in findings])
    return stack


def default_target(stack: Stack) -> Target:
    """Swarm for stacks with a GPU node inventory, Compose for the rest."""
    return "swarm" if stack.nodes else "compose"


def format_loc(loc: Loc) -> str:
    """``('models', 1, 'gpus')`` -> ``models[1].gpus``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


# libyaml's parser when PyYAML was built with it: same safe semantics, faster.
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _StrictLoader(_SafeLoader):  # type: ignore[valid-type,misc]
    """SafeLoader that refuses duplicate and non-text keys instead of guessing."""


_MERGE_TAG = "tag:yaml.org,2002:merge"
# Far deeper than any stack file; shallow enough that neither libyaml's
# recursive composer nor Python's recursion limit is ever reached.
MAX_DEPTH = 64


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[str] = set()
    for key_node, _ in node.value:
        if key_node.tag == _MERGE_TAG:
            continue  # `<<: *anchor` merges; its keys may be overridden explicitly
        key = loader.construct_object(key_node)
        if not isinstance(key, str):
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} is not text (quote it)", key_node.start_mark
            )
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (the first one would be silently lost)",
                key_node.start_mark,
            )
        seen.add(key)
    mapping: dict[Any, Any] = loader.construct_mapping(node)
    return mapping


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_yaml_mapping(path: Path, label: str, example: str = "an example in stacks/") -> object:
    """The YAML mapping in ``path``, strictly read (no duplicate or non-text keys, bounded
    nesting); every failure is a SpecError naming ``label`` (and ``example`` to start from)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError([Problem(label, "", "file not found", "check the path")]) from None
    except (OSError, UnicodeDecodeError) as error:
        raise SpecError([Problem(label, "", f"cannot be read: {error}")]) from None
    try:
        _check_depth(text, label)
        document = yaml.load(text, Loader=_StrictLoader)  # a SafeLoader: builds no objects
    except yaml.MarkedYAMLError as error:
        raise SpecError([_yaml_problem(label, error)]) from None
    except (yaml.YAMLError, ValueError, RecursionError) as error:
        # PyYAML's constructors raise plain ValueError for values such as a
        # 2020-13-45 timestamp or `!!int abc`.
        raise SpecError([Problem(label, "", f"is not valid YAML: {error}")]) from None
    if not isinstance(document, dict):
        raise SpecError([Problem(label, "", f"must be a YAML mapping, but it is {_kind(document)}",
                                 f"start from {example}")])
    return document


def _check_depth(text: str, label: str) -> None:
    """Refuse absurd nesting with one pass over parser events (which do not recurse).

    The parser may refuse a deep document first: libyaml scans ahead over flow
    collections, and PyYAML 6.0.4's libyaml stops at its own depth limit, in its
    own words.  Whatever the parser says then, the nesting is measured here, so
    the problem reads the same with every PyYAML release.
    """
    depth = 0
    try:
        for event in yaml.parse(text, Loader=_SafeLoader):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    mark = event.start_mark
                    _too_deep(label, (mark.line, mark.column) if mark else None)
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.MarkedYAMLError as error:
        deep = _first_flow_too_deep(text, error.problem_mark)
        if deep is not None:
            _too_deep(label, deep)
        raise


def _too_deep(label: str, place: tuple[int, int] | None) -> NoReturn:
    """Raise the nesting problem; ``place`` is the 0-based (line, column), if known."""
    where = f" at line {place[0] + 1}, column {place[1] + 1}" if place else ""
    raise SpecError([Problem(label, "", f"nests deeper than {MAX_DEPTH} levels{where}",
                             "a stack file needs a handful of levels")])


def _first_flow_too_deep(text: str, stop: yaml.Mark | None) -> tuple[int, int] | None:
    """Where (0-based line, column) flow brackets first nest past MAX_DEPTH before ``stop``.

    Only consulted once the parser has failed, to tell nesting from other syntax
    errors; quoted scalars and comments are skipped, so their brackets do not count.
    """
    end = stop.index if stop is not None else len(text)
    depth, line, column, quote, comment = 0, 0, 0, "", False
    for index, char in enumerate(text[: end + 1]):
        if char == "\n":
            line, column, comment = line + 1, 0, False
            continue
        if comment:
            pass
        elif quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (column == 0 or text[index - 1] in " \t"):
            comment = True
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return line, column
        elif char in "]}":
            depth -= 1
        column += 1
    return None


def _kind(document: object) -> str:
    if document is None:
        return "empty"
    names = {"int": "an integer", "float": "a number", "str": "a string", "list": "a list",
             "bool": "a boolean"}
    return names.get(type(document).__name__, f"a {type(document).__name__}")


def _yaml_problem(label: str, error: yaml.MarkedYAMLError) -> Problem:
    mark = error.problem_mark or error.context_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    what = " ".join(part for part in (error.context, error.problem) if part)
    return Problem(label, "", f"YAML syntax error at {where}{what}")


def _finding_problem(label: str, finding: Finding) -> Problem:
    return Problem(label, format_loc(finding.loc), finding.message, finding.hint)


def _problem(label: str, detail: ErrorDetails) -> Problem:
    loc: Loc = tuple(detail["loc"])
    if detail["type"] == "extra_forbidden":
        return _unknown_key(label, loc)
    if loc and loc[-1] == "[key]":
        return Problem(label, format_loc(loc[:-1]), f"key {detail['input']!r}: {_message(detail)}")
    if detail["type"] == "missing":
        return Problem(label, format_loc(loc), "is required but missing", f"add {loc[-1]}:")
    got = detail["input"]
    # Our own validators quote the value already; pydantic's built-in ones do not.
    quoted = detail["type"] == "value_error" or isinstance(got, dict | list)
    suffix = "" if quoted else f" (got {got!r})"
    return Problem(label, format_loc(loc), _message(detail) + suffix)


def _message(detail: ErrorDetails) -> str:
    message = detail["msg"]
    return message.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def _unknown_key(label: str, loc: Loc) -> Problem:
    known = _fields_at(loc[:-1])
    key = str(loc[-1])
    hint = did_you_mean(key, known) or ("known keys: " + ", ".join(known) if known else "")
    return Problem(label, format_loc(loc), f"unknown key {key!r}", hint)


def _fields_at(loc: Loc) -> list[str]:
    """The keys allowed in the mapping at ``loc``, found by walking the spec types."""
    kind: Any = Stack
    for part in loc:
        kind = _unwrap(kind)
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            field = kind.model_fields.get(str(part))
            if field is None:
                return []
            kind = field.annotation
        elif typing.get_origin(kind) is tuple:
            kind = typing.get_args(kind)[0]
        elif typing.get_origin(kind) in (dict, Mapping):
            kind = typing.get_args(kind)[1]
        else:
            return []
    kind = _unwrap(kind)
    if isinstance(kind, type) and issubclass(kind, BaseModel):
        return list(kind.model_fields)
    return []


def _unwrap(kind: Any) -> Any:
    """Strip ``Annotated`` and ``X | None`` down to the type that holds fields."""
    while True:
        origin = typing.get_origin(kind)
        if origin is typing.Annotated:
            kind = typing.get_args(kind)[0]
        elif origin in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(kind) if a is not type(None)]
            kind = members[0]
        else:
            return kind
