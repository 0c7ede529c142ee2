"""Parse MLflow scoring payloads into model inputs the batcher can combine.

We parse ourselves instead of calling ``mlflow.pyfunc.scoring_server``: that
module pulls in MLflow's whole serving stack at import time, and we need to
know each request's row count and "shape" (columns, dtypes, params) so the
batcher only concatenates requests a single model call can take together.
Named-tensor inputs (a dict of arrays) are rejected: they cannot be batched by
rows without knowing the model's signature.
"""

from __future__ import annotations

import json
import re
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pandas as pd  # type: ignore[import-untyped, unused-ignore]

from swarmai.incontainer.server.tables import plain_table

DATA_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")
PARAMS_KEY = "params"
# orjson reads an integer beyond 64 bits as a float, where the standard library
# keeps it whole (and the parse refuses it): a body with a number this long is
# left to the standard library, so no prediction runs on a rounded value.
_LONG_NUMBER = re.compile(rb"[0-9]{20}")


class PayloadError(ValueError):
    """The request body is not a scoring payload we accept (answered with 400)."""


# The media types a body may be sent as (MLflow's ``application/json;
# format=pandas-split`` and friends carry parameters; the key inside the body
# says the format).  No CSV: its column types would be guesses.
JSON_MEDIA_TYPES = ("application/json",)


def unsupported_media_type(content_type: str | None) -> str | None:
    """``None`` when a body of ``content_type`` is acceptable, else why not.

    A missing Content-Type is read as JSON: hand-written clients often omit
    it, and the body is still parsed strictly.
    """
    if not content_type:
        return None
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type in JSON_MEDIA_TYPES:
        return None
    accepted = ", ".join(JSON_MEDIA_TYPES)
    return f"Content-Type {media_type!r} is not supported; send {accepted}"


@dataclass(frozen=True, eq=False)
class ModelInput:
    """One request's rows, ready for ``model.predict``.

    ``key`` is equal for inputs that may share one ``predict`` call: same kind,
    same columns and dtypes (or trailing shape and dtype), same params.
    """

    data: Any  # pandas.DataFrame, numpy.ndarray, or tables.TableRows (see model_data)
    rows: int
    params: dict[str, Any] | None
    key: Hashable


def parse_body(body: bytes) -> ModelInput:
    """Decode a JSON request body; see :func:`parse_payload`.

    CPU-bound on large bodies: the server runs it in a worker thread.
    """
    return parse_payload(decode_json(body))


def decode_json(body: bytes) -> object:
    """The JSON value of ``body``, read as Python's ``json`` module reads it.

    orjson reads the body when it can, several times faster; what it refuses
    (NaN and Infinity, which MLflow's clients send, numbers out of a double's
    range, malformed text) goes to the standard library, whose rules and
    error messages are the reference.
    """
    if _LONG_NUMBER.search(body) is None:
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
    # Every way json.loads can fail on hostile input is the client's mistake
    # and must not escape as a 500 (the order matters: subclasses first).
    try:
        payload: object = json.loads(body)
    except json.JSONDecodeError as error:
        raise PayloadError(f"request body is not valid JSON: {error}") from None
    except UnicodeDecodeError:
        raise PayloadError("request body is not valid JSON: it is not UTF-8 text") from None
    except RecursionError:
        raise PayloadError("request body is not valid JSON: it nests too deeply") from None
    except ValueError:  # int() refuses numbers of more than 4300 digits
        raise PayloadError("request body holds a number with too many digits") from None
    return payload


def parse_payload(payload: object) -> ModelInput:
    """Turn a decoded MLflow scoring payload into a :class:`ModelInput`."""
    if not isinstance(payload, Mapping):
        raise PayloadError(f"request body must be a JSON object with one of {_keys()}")
    present = [key for key in DATA_KEYS if key in payload]
    unknown = sorted(set(payload) - set(DATA_KEYS) - {PARAMS_KEY})
    if len(present) != 1:
        got = ", ".join(present) if present else "none"
        raise PayloadError(f"request body must have exactly one of {_keys()}; got {got}")
    if unknown:
        raise PayloadError(f"unexpected field(s) {', '.join(unknown)}; allowed: {_keys()}, params")
    params = _params(payload.get(PARAMS_KEY))
    fmt = present[0]
    value = payload[fmt]
    if fmt == "dataframe_split":
        return _split_input(value, params)
    if fmt == "dataframe_records":
        return _frame_input(_records_frame(value), params)
    return _array_input(fmt, value, params)


def _keys() -> str:
    return ", ".join(DATA_KEYS)


def _params(value: object) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise PayloadError("params must be a JSON object")
    return value


def _split_input(value: object, params: dict[str, Any] | None) -> ModelInput:
    if not isinstance(value, Mapping) or "data" not in value:
        raise PayloadError('dataframe_split must be an object with "data" (and "columns")')
    extra = sorted(set(value) - {"columns", "data", "index"})
    if extra:
        raise PayloadError(f"dataframe_split has unexpected field(s) {', '.join(extra)}")
    data, columns = value["data"], value.get("columns")
    if not isinstance(data, list) or not all(isinstance(row, list) for row in data):
        raise PayloadError("dataframe_split.data must be a list of rows (lists)")
    if columns is not None and not isinstance(columns, list):
        raise PayloadError("dataframe_split.columns must be a list")
    # "index" is accepted, as MLflow's clients send it, and ignored, as before.
    table = plain_table(columns, data) if data else None
    if table is not None:
        rows, key = table
        return ModelInput(data=rows, rows=len(data), params=params,
                          key=(key, _params_key(params)))
    try:
        frame = pd.DataFrame(data=data, columns=columns)
    except (ValueError, TypeError) as error:
        raise PayloadError(f"dataframe_split does not form a table: {error}") from None
    return _frame_input(frame, params)


def _records_frame(value: object) -> Any:
    if not isinstance(value, list) or not all(isinstance(row, dict) for row in value):
        raise PayloadError("dataframe_records must be a list of objects (one per row)")
    try:
        return pd.DataFrame.from_records(value)
    except (ValueError, TypeError) as error:
        raise PayloadError(f"dataframe_records does not form a table: {error}") from None


def _frame_input(frame: Any, params: dict[str, Any] | None) -> ModelInput:
    if len(frame) == 0:
        raise PayloadError("the request has no rows")
    columns = tuple(str(column) for column in frame.columns)
    dtypes = tuple(str(dtype) for dtype in frame.dtypes)
    key = ("dataframe", columns, dtypes, _params_key(params))
    return ModelInput(data=frame, rows=len(frame), params=params, key=key)


def _array_input(fmt: str, value: object, params: dict[str, Any] | None) -> ModelInput:
    if isinstance(value, dict) or (isinstance(value, list) and value and _all_dicts(value)):
        raise PayloadError(
            f"{fmt} with named tensors is not supported; send a list of rows, "
            "or use dataframe_records"
        )
    if not isinstance(value, list):
        raise PayloadError(f"{fmt} must be a list with one entry per row")
    try:
        array = np.asarray(value)
    except (ValueError, TypeError, OverflowError) as error:
        raise PayloadError(f"{fmt} is not a regular (non-ragged) array: {error}") from None
    if array.ndim == 0 or array.shape[0] == 0:
        raise PayloadError("the request has no rows")
    if array.dtype == object:
        raise PayloadError(
            f"{fmt} mixes value types that do not form one array "
            "(or holds integers too large for 64 bits)"
        )
    key = ("tensor", array.shape[1:], array.dtype.str, _params_key(params))
    return ModelInput(data=array, rows=int(array.shape[0]), params=params, key=key)


def _all_dicts(items: list[Any]) -> bool:
    return all(isinstance(item, dict) for item in items)


def _params_key(params: dict[str, Any] | None) -> str | None:
    # Params are JSON already, so their canonical dump is a hashable identity.
    return None if params is None else json.dumps(params, sort_keys=True)
