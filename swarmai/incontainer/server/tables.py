"""``dataframe_split`` rows kept as parsed, made into one DataFrame per batch.

Building a DataFrame costs about as much for one row as for thirty-two, and
concatenating per-request frames costs more than the model's call on them.  So
a plain table request (scalar column names, every row as wide as the table)
keeps its rows as the JSON lists they arrived as, and the batch
builds one DataFrame from all of them at once.

The batch frame must be what each request's own frame would have been, so the
batching key holds what pandas infers a column's dtype from: the kinds of value
in each column.  Requests whose columns hold the same kinds give the same
dtypes together as apart.  Anything else (ragged rows, a column named by a
list) takes the eager path: its own DataFrame, as before.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped, unused-ignore]

_INT64 = range(-(2**63), 2**63)
_SCALARS = (str, int, float, bool)


@dataclass(frozen=True)
class TableRows:
    """The rows of one request, with the column names they were sent with."""

    columns: list[Any] | None
    data: list[list[Any]]
    # The kinds of value in each column ("int", "float", "str", ...): what pandas
    # infers the column's dtype from.
    kinds: tuple[frozenset[str], ...]


def plain_table(columns: object, data: list[list[Any]]) -> tuple[TableRows, Hashable] | None:
    """The rows and their batching key, or ``None`` when the table needs pandas' own
    reading (the caller builds a DataFrame and reports pandas' errors)."""
    width = len(data[0]) if data else 0
    if any(len(row) != width for row in data):
        return None
    if columns is not None:
        if not isinstance(columns, list) or len(columns) != width \
                or not all(isinstance(c, _SCALARS) for c in columns):
            return None
        # Typed: 1 and "1" name different columns.
        names: Hashable = tuple((type(c).__name__, c) for c in columns)
    else:
        names = width
    kinds = _column_kinds(data, width)
    return TableRows(columns, data, kinds), ("table", names, kinds)


def _column_kinds(data: list[list[Any]], width: int) -> tuple[frozenset[str], ...]:
    kinds: list[set[str]] = [set() for _ in range(width)]
    for row in data:
        for column, value in enumerate(row):
            kinds[column].add(_kind(value))
    return tuple(frozenset(k) for k in kinds)


def _kind(value: object) -> str:
    # Integers past int64 turn a column uint64 or object: a kind of their own.
    if type(value) is int and value not in _INT64:
        return "bigint"
    return type(value).__name__


def model_data(parts: list[Any]) -> Any:
    """What ``predict`` gets for a batch of compatible requests' data."""
    first = parts[0]
    if isinstance(first, TableRows):
        rows = first.data if len(parts) == 1 else [row for part in parts for row in part.data]
        return pd.DataFrame(data=rows, columns=first.columns)
    if len(parts) == 1:
        return first
    if isinstance(first, pd.DataFrame):
        return pd.concat(parts, ignore_index=True)
    return np.concatenate(parts, axis=0)
