"""Bad request bodies against a real `automlops serve`: each kind gets the right 4xx with one line
naming the offending fields and rows, and fuzzing (schemathesis from the OpenAPI spec, then
hypothesis beyond it) finds no 5xx."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_serve import bundle, csv_bytes, example, running_server  # noqa: F401  (bundle, example: shared fixtures)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """A server on the bundle folder with the default settings."""
    folder = tmp_path_factory.mktemp("inputs")
    with running_server(bundle, cwd=folder, log_file=folder / "serve.log") as (client, _):
        yield client


def _without(record: dict, key: str) -> dict:
    return {k: v for k, v in record.items() if k != key}


def _json(value: object) -> tuple[str, bytes]:
    return "application/json", json.dumps(value).encode()


def _literal(records: list[dict], text: str) -> tuple[str, bytes]:
    """The records as JSON with every 0 (the cells to spoil) written as `text`: a literal json.dumps cannot write."""
    return "application/json", json.dumps(records).replace(": 0,", f": {text},").replace(": 0}", f": {text}}}").encode()


def _malformed(example: list[dict]) -> dict[str, tuple[tuple[str, bytes], int, list[str]]]:
    """case -> ((content type, body), status, words the error must contain)"""
    columns = list(example[0])
    row = example[0]
    text_in_number = [dict(record) for record in example]
    text_in_number[1]["bill_length_mm"] = "abc"
    return {
        "empty_body": (("application/json", b""), 400, ["empty"]),
        "not_json": (("application/json", b"{this is not json"), 400, ["JSON"]),
        "nested_too_deep": (("application/json", b"[" * 100_000 + b"]" * 100_000), 400, ["nested too deeply"]),
        "unknown_object": (_json({"nonsense": True}), 400, ["list of records"]),
        "empty_list": (_json([]), 400, ["empty"]),
        "not_records": (_json([[1, 2, 3]]), 400, ["record(s) 0", "JSON objects"]),
        "nested_envelopes": (_json({"records": {"dataframe_records": example}}), 400, ["list of records"]),
        "column_missing": (
            _json([_without(r, "body_mass_g") for r in example]),
            422,
            ["missing column", "body_mass_g"],
        ),
        "column_missing_in_one_record": (
            _json([_without(r, "sex") if i == 2 else r for i, r in enumerate(example)]),
            400,
            ["record 2", "sex"],
        ),
        "extra_column": (_json([{**r, "colour": "blue"} for r in example]), 422, ["unexpected column", "colour"]),
        "text_in_numeric_column": (_json(text_in_number), 422, ["bill_length_mm", "row 1", "'abc'"]),
        "numeric_text_in_numeric_column": (
            _json([row, {**row, "body_mass_g": "4000"}]),
            422,
            ["body_mass_g", "row 1", "string"],
        ),
        "boolean_in_numeric_column": (
            _json([{**row, "flipper_length_mm": True}]),
            422,
            ["flipper_length_mm", "row 0", "boolean"],
        ),
        "null_in_non_nullable_column": (
            _json([row, row, {**row, "island": None}]),
            422,
            ["island", "must not be empty", "row 2"],
        ),
        "nan_in_non_nullable_column": (
            ("application/json", json.dumps([{**row, "island": float("nan")}]).encode()),
            422,
            ["island", "row 0"],
        ),
        "infinity": (
            ("application/json", json.dumps([{**row, "bill_depth_mm": float("-inf")}]).encode()),
            422,
            ["bill_depth_mm", "row 0", "finite"],
        ),
        "number_too_large_for_a_float": (
            (
                "application/json",
                json.dumps([{**row, "body_mass_g": 0}])
                .replace('"body_mass_g": 0', '"body_mass_g": 1' + "0" * 400)
                .encode(),
            ),
            422,
            ["body_mass_g", "row 0", "too large"],
        ),
        "integer_of_5000_digits": (
            _literal([row, {**row, "body_mass_g": 0}], "1" + "0" * 5000),
            422,
            ["body_mass_g", "row 1", "finite"],
        ),
        "integer_of_5000_digits_in_a_category": (
            _literal([{**row, "island": 0}], "-1" + "0" * 5000),
            422,
            ["island", "row 0", "category"],
        ),
        "integer_of_5000_digits_in_a_nullable_category": (
            _literal([{**row, "sex": 0}], "9" * 5000),
            422,
            ["sex", "row 0", "category"],
        ),
        "infinity_in_a_category": (_literal([{**row, "sex": 0}], "Infinity"), 422, ["sex", "row 0", "category"]),
        "array_in_a_cell": (_json([row, {**row, "island": ["Dream"]}]), 422, ["island", "row 1", "array"]),
        "object_in_a_cell": (
            _json([{**row, "bill_length_mm": {"value": 40}}]),
            422,
            ["bill_length_mm", "row 0", "object"],
        ),
        "columns_of_unequal_length": (
            _json({c: [row[c]] * (2 if c == "sex" else 1) for c in columns}),
            400,
            ["one length"],
        ),
        "split_with_duplicate_column": (
            _json(
                {
                    "dataframe_split": {
                        "columns": [*columns, "island"],
                        "data": [[*(r[c] for c in columns), "Dream"] for r in example],
                    }
                }
            ),
            400,
            ["island", "more than once"],
        ),
        "split_with_a_short_row": (
            _json({"dataframe_split": {"columns": columns, "data": [list(row.values()), [1]]}}),
            400,
            ["row(s) 1"],
        ),
        "split_with_odd_column_names": (
            _json({"dataframe_split": {"columns": [[1], 10**400], "data": [[1, 2]]}}),
            400,
            ["columns", "item 0"],
        ),
        "csv_text_in_numeric_column": (
            ("text/csv", csv_bytes(text_in_number)),
            422,
            ["bill_length_mm", "row 1", "'abc'"],
        ),
        "csv_header_only": (("text/csv", csv_bytes(example).splitlines()[0] + b"\n"), 422, ["no rows"]),
        "csv_not_utf8": (("text/csv", b"island\n\xff\xfe\n"), 400, ["CSV"]),
    }


MALFORMED = [
    "empty_body",
    "not_json",
    "nested_too_deep",
    "unknown_object",
    "empty_list",
    "not_records",
    "nested_envelopes",
    "column_missing",
    "column_missing_in_one_record",
    "extra_column",
    "text_in_numeric_column",
    "numeric_text_in_numeric_column",
    "boolean_in_numeric_column",
    "null_in_non_nullable_column",
    "nan_in_non_nullable_column",
    "infinity",
    "number_too_large_for_a_float",
    "integer_of_5000_digits",
    "integer_of_5000_digits_in_a_category",
    "integer_of_5000_digits_in_a_nullable_category",
    "infinity_in_a_category",
    "array_in_a_cell",
    "object_in_a_cell",
    "columns_of_unequal_length",
    "split_with_duplicate_column",
    "split_with_a_short_row",
    "split_with_odd_column_names",
    "csv_text_in_numeric_column",
    "csv_header_only",
    "csv_not_utf8",
]


def echoed_values(message: str, example: list[dict], allowed: set[tuple[int, str]]) -> list[str]:
    """Values of the example that a message repeats, other than the offending cells'."""
    return [
        str(value)
        for i, record in enumerate(example)
        for key, value in record.items()
        if value is not None and (i, key) not in allowed and len(str(value)) > 2 and str(value) in message
    ]


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_body_is_a_4xx_naming_the_problem(server: httpx.Client, example: list[dict], case: str) -> None:
    (content_type, body), status, words = _malformed(example)[case]
    response = server.post("/predict", content=body, headers={"content-type": content_type})
    assert response.status_code == status, f"{response.status_code}: {response.text[:500]}"
    payload = response.json()
    assert set(payload) == {"detail", "request_id"} and payload["request_id"] == response.headers["x-request-id"]
    detail = payload["detail"]
    assert isinstance(detail, str) and "\n" not in detail and len(detail) < 400 and "Traceback" not in detail
    for word in words:
        assert word in detail, f"{word!r} not in {detail!r}"
    assert not echoed_values(detail, example, {(1, "bill_length_mm")}), (
        detail
    )  # names the bad cell, echoes no other row
    assert "Torgersen" not in detail, f"the error recites the schema: {detail!r}"


def test_every_offending_cell_is_named(server: httpx.Client, example: list[dict]) -> None:
    rows = [dict(r) for r in example]
    rows[0]["body_mass_g"], rows[3]["bill_depth_mm"], rows[4]["island"] = float("inf"), True, None
    detail = server.post("/predict", content=json.dumps(rows), headers={"content-type": "application/json"}).json()[
        "detail"
    ]
    for where in (
        "column 'body_mass_g' row 0",
        "column 'bill_depth_mm' row 3",
        "column 'island' must not be empty (row 4)",
    ):
        assert where in detail, detail
    assert not echoed_values(detail, example, set()), detail


@pytest.mark.parametrize(
    "body,words",
    [
        ([{"island": "Dream"}], ["exactly one of", "got a JSON array"]),
        ({"records": []}, ["exactly one of", "got keys records"]),
        ({"dataframe_records": [], "instances": []}, ["exactly one of", "dataframe_records, instances"]),
        ({"dataframe_split": {"columns": ["island"]}}, ["dataframe_split", '"data"']),
    ],
)
def test_invocations_answers_errors_as_mlflow_does(server: httpx.Client, body: object, words: list[str]) -> None:
    response = server.post("/invocations", json=body)
    assert response.status_code == 400, response.text
    payload = response.json()
    assert payload["error_code"] == "BAD_REQUEST" and payload["request_id"] == response.headers["x-request-id"]
    for word in words:
        assert word in payload["message"], payload["message"]


def test_invocations_names_the_bad_cell(server: httpx.Client, example: list[dict]) -> None:
    rows = [dict(r) for r in example]
    rows[2]["flipper_length_mm"] = "long"
    response = server.post("/invocations", json={"dataframe_records": rows})
    assert response.status_code == 422
    assert "column 'flipper_length_mm' row 2" in response.json()["message"]


FUZZ = dict(
    deadline=timedelta(seconds=10),
    database=None,
    derandomize=True,  # bounded, and the same examples on every run
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)


def assert_no_server_error(response: httpx.Response | Any, what: str) -> None:
    assert response.status_code < 500, f"{response.status_code} for {what}: {response.text[:300]}"
    assert "Traceback" not in response.text and response.headers.get("x-request-id")
    if response.status_code >= 400:
        payload = response.json()
        assert isinstance(payload.get("detail", payload.get("message")), str), payload


def test_fuzzing_the_openapi_schema_finds_no_server_error(server: httpx.Client) -> None:
    """schemathesis: bodies that fit each endpoint's schema and bodies that break it, ~100 per operation."""
    import schemathesis
    from schemathesis import GenerationMode

    base_url = str(server.base_url).rstrip("/")
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    operations = [schema[path]["POST"] for path in ("/predict", "/invocations")]
    cases = st.one_of(
        [
            op.as_strategy(generation_mode=mode)
            for op in operations
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
        ]
    )
    statuses: Counter[int] = Counter()

    @settings(max_examples=200, **FUZZ)
    @given(case=cases)
    def check(case: Any) -> None:
        response = case.call(base_url=base_url, timeout=10)
        statuses[response.status_code] += 1
        assert_no_server_error(response, f"{case.operation.path} {case.media_type} {str(case.body)[:200]}")

    check()
    assert statuses[200] and (statuses[400] or statuses[422]), statuses  # it reached the model and the validation


LITERAL = re.compile(r'"@@literal:([^@"]*)@@"')
ODD_NUMBERS = [
    "1e400",
    "-1e400",
    "1E5",
    "-0",
    "-0.0",
    "+1",
    "+0.5",
    ".5",
    "1.",
    "01",
    "0x1F",
    "1e",
    "--1",
    "NaN",
    "-NaN",
    "Infinity",
    "-Infinity",
    "inf",
    "nan",
    "5e-324",
    "1e-400",
    "1.7976931348623157e308",
    "1" + "0" * 4300,
    "1" + "0" * 4301,
]


def _literals() -> st.SearchStrategy:
    """Numbers as raw JSON text, valid or not (a leading +, a hex number, NaN), including integers past
    Python's 4,300-digit int-string limit; written into the body by _dumps."""
    texts = st.one_of(st.sampled_from(ODD_NUMBERS), st.integers(4000, 6000).map(lambda n: "-" * (n % 2) + "7" * n))
    return texts.map(lambda text: f"@@literal:{text}@@")


def _dumps(body: object) -> bytes:
    return LITERAL.sub(lambda m: m.group(1), json.dumps(body)).encode("utf-8", "surrogatepass")


def _cells() -> st.SearchStrategy:
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(10**400), max_value=10**400),
        st.floats(),
        st.text(max_size=20),
        _literals(),
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
        max_leaves=8,
    )


@st.composite
def _raw_bodies(draw: st.DrawFn, example: list[dict]) -> tuple[str, bytes]:
    """The input example's rows with cells replaced by any JSON value (huge numbers, NaN, odd unicode,
    nested lists) or dropped, in every format; or any JSON value; or any bytes."""
    columns = list(example[0])
    rows = [dict(r) for r in draw(st.lists(st.sampled_from(example), min_size=1, max_size=4))]
    for _ in range(draw(st.integers(0, 3))):
        row, key = draw(st.integers(0, len(rows) - 1)), draw(st.sampled_from([*columns, "extra", ""]))
        if draw(st.booleans()):
            rows[row][key] = draw(_cells())
        else:
            rows[row].pop(key, None)
    by_column = {c: [r.get(c) for r in rows] for c in columns}
    split = {
        "columns": draw(st.one_of(st.just(columns), _cells())),
        "data": draw(st.one_of(st.just([[r.get(c) for c in columns] for r in rows]), _cells())),
    }
    form = draw(
        st.sampled_from(
            [
                "records",
                "dataframe_records",
                "dataframe_split",
                "instances",
                "inputs",
                "columns",
                "any_json",
                "bytes",
                "csv",
            ]
        )
    )
    if form == "bytes":
        return draw(st.sampled_from(["application/json", "text/csv"])), draw(st.binary(max_size=200))
    if form == "csv":
        lines = [",".join(columns)] + [
            ",".join(draw(st.text(max_size=6)) for _ in columns) for _ in range(draw(st.integers(0, 3)))
        ]
        return "text/csv", "\n".join(lines).encode("utf-8", "surrogatepass")
    body = {
        "records": rows,
        "dataframe_records": {"dataframe_records": rows},
        "dataframe_split": {"dataframe_split": split},
        "instances": {"instances": rows},
        "inputs": {"inputs": by_column},
        "columns": by_column,
    }.get(form) or draw(_cells())
    if draw(st.integers(0, 3)) == 0:  # one envelope inside another
        body = {draw(st.sampled_from(["dataframe_split", "dataframe_records", "records", "instances", "inputs"])): body}
    return "application/json", _dumps(body)


def test_fuzzing_raw_bodies_finds_no_server_error(server: httpx.Client, example: list[dict]) -> None:
    """hypothesis, beyond the schema: wrong types in cells, huge numbers (past Python's int-string
    limit too), odd numeric literals (1e400, -0, 1E5, a leading +, NaN, Infinity), odd unicode, nested
    values, broken envelopes, random bytes."""
    statuses: Counter[int] = Counter()

    @settings(max_examples=300, **FUZZ)
    @given(body=_raw_bodies(example), endpoint=st.sampled_from(["/predict", "/invocations"]))
    def check(body: tuple[str, bytes], endpoint: str) -> None:
        content_type, content = body
        response = server.post(endpoint, content=content, headers={"content-type": content_type}, timeout=10)
        statuses[response.status_code] += 1
        assert_no_server_error(response, f"{endpoint} {content_type} {content[:200]!r}")

    check()
    assert statuses[200] and statuses[400] and statuses[422], statuses


def test_nan_is_a_missing_value_in_a_nullable_column_and_refused_elsewhere(
    server: httpx.Client, example: list[dict]
) -> None:
    """NaN is what json.dumps writes for a float NaN (a pandas user's missing value): in a column that
    had missing values in training it is scored as null is; elsewhere it is a 422 naming the cell."""
    row = example[0]
    answers = {}
    for name, value in (("null", "null"), ("NaN", "NaN")):
        body = json.dumps([{**row, "body_mass_g": 0, "sex": 0}]).replace(": 0", f": {value}")
        response = server.post("/predict?proba=1", content=body, headers={"content-type": "application/json"})
        assert response.status_code == 200, response.text
        answers[name] = response.json()
    assert answers["NaN"] == answers["null"]
    response = server.post(
        "/predict",
        content=json.dumps([{**row, "island": 0}]).replace(": 0", ": NaN"),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422 and "column 'island' must not be empty (row 0)" in response.json()["detail"]
