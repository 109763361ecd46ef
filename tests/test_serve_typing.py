"""The server's quick path for small JSON bodies (contract.typed_records, typed in plain Python) must
accept exactly what the full path (pandas, then validate_input) accepts, and type it the same: the
same model frame, dtypes included. Anything it declines goes the full path, which names the problem."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from automlops.data.contract import CATEGORICAL, NUMERIC, ColumnSpec, typed_frame, typed_records, validate_input
from automlops.errors import InputError
from automlops.serve.bodies import read_rows

CONTRACT = [
    ColumnSpec("length", NUMERIC, "float64", nullable=False, min=0.0, max=10.0),
    ColumnSpec("count", NUMERIC, "float64", nullable=True, min=0.0, max=5.0),
    ColumnSpec("colour", CATEGORICAL, "object", nullable=False, categories=["blue", "red"]),
    ColumnSpec("size", CATEGORICAL, "object", nullable=True, categories=["7", "L", "S"]),
]
VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70), st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["red", "blue", "7", "", "42", "S"]), st.just([1]), st.just({"a": 1}),
)


def full_path(body: bytes) -> pd.DataFrame:
    rows = read_rows(body, "application/json", CONTRACT, quick=False)
    assert rows.frame is not None
    return validate_input(rows.frame, CONTRACT)


def quick_path(body: bytes) -> pd.DataFrame | None:
    typed = typed_records(json.loads(body), CONTRACT)
    return None if typed is None else typed_frame([typed], CONTRACT)


@settings(max_examples=600, deadline=None, derandomize=True, database=None)
@given(st.lists(st.fixed_dictionaries({spec.name: VALUES for spec in CONTRACT}), min_size=1, max_size=3))
def test_the_quick_path_accepts_and_types_what_the_full_path_does(records: list[dict[str, Any]]) -> None:
    body = json.dumps(records).encode()
    quick = quick_path(body)
    try:
        full = full_path(body)
    except InputError:
        assert quick is None, f"the quick path took rows the full path refuses: {records}"
        return
    assert quick is not None, f"the quick path declined rows the full path takes: {records}"
    pd.testing.assert_frame_equal(quick, full, check_exact=True)


@pytest.mark.parametrize("records", [
    [{"length": 1, "count": 2, "colour": "red", "size": "S"}, {"length": 1.5, "count": None, "colour": "blue", "size": 7}],
    [{"length": 1e300, "count": float("nan"), "colour": True, "size": None}],
])
def test_typical_rows_take_the_quick_path(records: list[dict[str, Any]]) -> None:
    body = json.dumps(records).encode()
    quick = quick_path(body)
    assert quick is not None
    pd.testing.assert_frame_equal(quick, full_path(body), check_exact=True)


@pytest.mark.parametrize("records", [
    [{"length": 1, "count": 2, "colour": "red"}],  # a column missing
    [{"length": 1, "count": 2, "colour": "red", "size": "S", "extra": 1}],  # one too many
    [{"length": "1", "count": 2, "colour": "red", "size": "S"}],  # text in a numeric column
    [{"length": None, "count": 2, "colour": "red", "size": "S"}],  # null in a column that never had one
    [{"length": 1, "count": 2, "colour": ["red"], "size": "S"}],  # an array in a cell
    [],
])
def test_rows_to_refuse_take_the_full_path(records: list[Any]) -> None:
    assert typed_records(records, CONTRACT) is None


def test_one_frame_holds_many_requests_in_order() -> None:
    first = typed_records([{"length": 1, "count": None, "colour": "red", "size": "S"}], CONTRACT)
    second = typed_records([{"length": 2, "count": 3, "colour": "blue", "size": None}] * 2, CONTRACT)
    assert first is not None and second is not None
    frame = typed_frame([first, second], CONTRACT)
    assert frame["length"].tolist() == [1.0, 2.0, 2.0] and frame["colour"].tolist() == ["red", "blue", "blue"]
    assert list(frame.index) == [0, 1, 2]
