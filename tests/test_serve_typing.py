"""The server's quick path for small JSON bodies (contract.typed_records, typed in plain Python) must
accept exactly what the full path (pandas, then enforce_contract) accepts, and type it the same: the
same model frame, dtypes included. Anything it declines goes the full path, which names the problem."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from automlops.data.contract import CATEGORICAL, NUMERIC, ColumnSpec, enforce_contract, typed_frame, typed_records
from automlops.errors import InputError
from automlops.serve.bodies import read_rows

CONTRACT = [
    ColumnSpec("length", NUMERIC, "float64", nullable=False, min=0.0, max=10.0),
    ColumnSpec("count", NUMERIC, "float64", nullable=True, min=0.0, max=5.0),
    ColumnSpec("colour", CATEGORICAL, "object", nullable=False, categories=["blue", "red"]),
    ColumnSpec("size", CATEGORICAL, "object", nullable=True, categories=["7", "L", "S"]),
]


class Literal(str):
    """A number written into the body as this JSON text: literals that json.dumps cannot write (an
    integer past Python's 4,300-digit int-string limit) or writes another way (1E5, -0, 1e400)."""


LITERALS = st.one_of(
    st.sampled_from(
        [
            "1e400",
            "-1e400",
            "1E5",
            "-0",
            "-0.0",
            "0e0",
            "1e-400",
            "5e-324",
            "1.7976931348623157e308",
            "1.8e308",
            "NaN",
            "Infinity",
            "-Infinity",
            "123456789012345678901234567890",
        ]
    ),
    st.integers(300, 6000).map(lambda n: "9" * n),
    st.integers(4290, 4310).map(lambda n: "-1" + "0" * n),
).map(Literal)
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["red", "blue", "7", "", "42", "S"]),
    st.just([1]),
    st.just({"a": 1}),
    LITERALS,
)


def dumps(records: list[dict[str, Any]]) -> bytes:
    """json.dumps, with each Literal written as its text."""

    def value(v: Any) -> str:
        return str(v) if isinstance(v, Literal) else json.dumps(v)

    return (
        "["
        + ", ".join("{" + ", ".join(f"{json.dumps(k)}: {value(v)}" for k, v in r.items()) + "}" for r in records)
        + "]"
    ).encode()


def full_path(body: bytes) -> pd.DataFrame:
    rows = read_rows(body, "application/json", CONTRACT, quick=False)
    assert rows.frame is not None
    return enforce_contract(rows.frame, CONTRACT)


def quick_path(body: bytes) -> pd.DataFrame | None:
    """The server's own choice: typed in plain Python, or None where it declines (to the full path)."""
    try:
        typed = read_rows(body, "application/json", CONTRACT, quick=True).typed
    except InputError:
        return None
    return None if typed is None else typed_frame([typed], CONTRACT)


@settings(max_examples=600, deadline=None, derandomize=True, database=None)
@given(st.lists(st.fixed_dictionaries({spec.name: VALUES for spec in CONTRACT}), min_size=1, max_size=3))
def test_the_quick_path_accepts_and_types_what_the_full_path_does(records: list[dict[str, Any]]) -> None:
    body = dumps(records)
    quick = quick_path(body)
    try:
        full = full_path(body)
    except InputError:
        assert quick is None, f"the quick path took rows the full path refuses: {records}"
        return
    assert quick is not None, f"the quick path declined rows the full path takes: {records}"
    pd.testing.assert_frame_equal(quick, full, check_exact=True)


@pytest.mark.parametrize(
    "records",
    [
        [
            {"length": 1, "count": 2, "colour": "red", "size": "S"},
            {"length": 1.5, "count": None, "colour": "blue", "size": 7},
        ],
        [{"length": 1e300, "count": float("nan"), "colour": True, "size": None}],
    ],
)
def test_typical_rows_take_the_quick_path(records: list[dict[str, Any]]) -> None:
    body = json.dumps(records).encode()
    quick = quick_path(body)
    assert quick is not None
    pd.testing.assert_frame_equal(quick, full_path(body), check_exact=True)


@pytest.mark.parametrize(
    "records",
    [
        [{"length": 1, "count": 2, "colour": "red"}],  # a column missing
        [{"length": 1, "count": 2, "colour": "red", "size": "S", "extra": 1}],  # one too many
        [{"length": "1", "count": 2, "colour": "red", "size": "S"}],  # text in a numeric column
        [{"length": None, "count": 2, "colour": "red", "size": "S"}],  # null in a column that never had one
        [{"length": 1, "count": 2, "colour": ["red"], "size": "S"}],  # an array in a cell
        [],
    ],
)
def test_rows_to_refuse_take_the_full_path(records: list[Any]) -> None:
    assert typed_records(records, CONTRACT) is None


def test_one_frame_holds_many_requests_in_order() -> None:
    first = typed_records([{"length": 1, "count": None, "colour": "red", "size": "S"}], CONTRACT)
    second = typed_records([{"length": 2, "count": 3, "colour": "blue", "size": None}] * 2, CONTRACT)
    assert first is not None and second is not None
    frame = typed_frame([first, second], CONTRACT)
    assert frame["length"].tolist() == [1.0, 2.0, 2.0] and frame["colour"].tolist() == ["red", "blue", "blue"]
    assert list(frame.index) == [0, 1, 2]


@pytest.mark.parametrize(
    ("column", "literal", "words"),
    [
        ("length", "1" + "0" * 5000, ["column 'length' row 0", "finite number", "beyond float range"]),
        ("count", "-" + "9" * 4301, ["column 'count' row 0", "finite number"]),
        ("colour", "1" + "0" * 5000, ["column 'colour' row 0", "expected a category", "beyond float range"]),
        ("size", "1" + "0" * 400, ["column 'size' row 0", "too large for a float"]),
        ("size", "1e400", ["column 'size' row 0", "expected a category"]),
        ("size", "-Infinity", ["column 'size' row 0", "expected a category"]),
    ],
)
def test_numbers_beyond_float_range_are_refused_in_every_column_naming_it(
    column: str, literal: str, words: list[str]
) -> None:
    """Python's json.loads refuses an integer of more than 4,300 digits with a ValueError that names
    no field (the server answered 500); a category sent as such a number, or as Infinity, was typed
    as the text "inf" or its digits."""
    body = dumps([{"length": 1, "count": 2, "colour": "red", "size": "S", column: Literal(literal)}])
    assert quick_path(body) is None
    with pytest.raises(InputError) as caught:
        full_path(body)
    for word in words:
        assert word in str(caught.value), str(caught.value)
    assert len(str(caught.value)) < 300


@pytest.mark.parametrize(
    ("literal", "expected"), [("NaN", None), ("null", None), ("-0", 0.0), ("1E5", 100000.0), ("5e-324", 5e-324)]
)
def test_odd_numeric_literals_read_as_their_value_and_nan_as_missing(literal: str, expected: float | None) -> None:
    """NaN (what json.dumps writes for a float NaN) is a missing value, as null is, in a nullable column."""
    frame = full_path(dumps([{"length": 1, "count": Literal(literal), "colour": "red", "size": Literal(literal)}]))
    count, size = frame.at[0, "count"], frame.at[0, "size"]
    assert (
        (pd.isna(count) and pd.isna(size))
        if expected is None
        else (count == expected and size == str(json.loads(literal)))
    )
