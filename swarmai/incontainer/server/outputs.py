"""Model outputs: split a batch's predictions per request, and make them JSON.

Models return lists, numpy arrays, pandas Series or DataFrames, or dicts of
those (multi-output).  The JSON shapes follow MLflow's scoring server: a
DataFrame becomes a list of records, arrays become nested lists.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped, unused-ignore]


class OutputError(RuntimeError):
    """The model's output cannot be mapped back to the requests of a batch."""


def split_predictions(output: Any, sizes: Sequence[int]) -> list[Any]:
    """Cut ``output`` (one entry per input row) into consecutive ``sizes`` slices."""
    total = sum(sizes)
    if isinstance(output, dict):
        parts = {key: split_predictions(value, sizes) for key, value in output.items()}
        return [{key: part[i] for key, part in parts.items()} for i in range(len(sizes))]
    count = _length(output)
    if count != total:
        raise OutputError(f"model returned {count} predictions for a batch of {total} rows")
    bounds = np.cumsum([0, *sizes]).tolist()
    if isinstance(output, pd.DataFrame | pd.Series):
        return [output.iloc[a:b] for a, b in itertools.pairwise(bounds)]
    return [output[a:b] for a, b in itertools.pairwise(bounds)]


def _length(output: Any) -> int:
    if isinstance(output, np.ndarray) and output.ndim == 0:
        raise OutputError("model returned a scalar; cannot split it across a batch")
    if isinstance(output, list | tuple | np.ndarray | pd.DataFrame | pd.Series):
        return len(output)
    raise OutputError(f"cannot split a model output of type {type(output).__name__} by rows")


def to_jsonable(value: Any) -> Any:
    """Convert a model output to plain JSON types (NaN and infinities become null)."""
    if isinstance(value, pd.DataFrame):
        return to_jsonable(value.to_dict(orient="records"))
    if isinstance(value, pd.Series | np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        return to_jsonable(value.item())
    if isinstance(value, dict):
        return {str(key): to_jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)  # timestamps, decimals...: their text beats a 500
