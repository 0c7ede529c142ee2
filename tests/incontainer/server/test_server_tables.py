"""One DataFrame per batch is what each request's own DataFrame would have been."""

from __future__ import annotations

from typing import Any

import pandas as pd  # type: ignore[import-untyped, unused-ignore]
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmai.incontainer.server.payload import parse_payload
from swarmai.incontainer.server.tables import TableRows, model_data

CELLS = st.one_of(st.integers(-(2**64), 2**64), st.floats(allow_nan=False), st.booleans(),
                  st.none(), st.text(max_size=3))
COLUMNS = ["a", "b"]


def split(rows: list[list[Any]], columns: list[Any] | None = COLUMNS) -> Any:
    return parse_payload({"dataframe_split": {"columns": columns, "data": rows}})


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.lists(CELLS, min_size=2, max_size=2), min_size=1, max_size=4),
                min_size=2, max_size=4))
def test_a_batch_frame_equals_the_requests_frames_together(requests: list[Any]) -> None:
    items = [split(rows) for rows in requests]
    alone = [pd.DataFrame(rows, columns=COLUMNS) for rows in requests]
    for item, frame in zip(items, alone, strict=True):
        pd.testing.assert_frame_equal(model_data([item.data]), frame)
    first = items[0]
    batch = [item for item in items if item.key == first.key]
    together = model_data([item.data for item in batch])
    expected = pd.concat([f for item, f in zip(items, alone, strict=True)
                          if item.key == first.key], ignore_index=True)
    pd.testing.assert_frame_equal(together, expected)


def test_plain_tables_stay_rows_until_the_batch() -> None:
    assert isinstance(split([[1, 2.5]]).data, TableRows)


def test_ragged_rows_and_odd_column_names_get_their_own_frame() -> None:
    ragged = parse_payload({"dataframe_split": {"data": [[1, 2], [3]]}})
    assert isinstance(ragged.data, pd.DataFrame)
    assert ragged.data.shape == (2, 2)
    named_by_list = split([[1, 2]], [["a"], "b"])
    assert isinstance(named_by_list.data, pd.DataFrame)


def test_columns_named_1_and_one_in_quotes_are_not_batched_together() -> None:
    assert split([[1]], [1]).key != split([[1]], ["1"]).key


def test_int_float_and_big_int_columns_are_not_batched_together() -> None:
    keys = {split([[value, 0]]).key for value in (1, 1.0, 2**63, True, None, "1")}
    assert len(keys) == 6
