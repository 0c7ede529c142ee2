"""Bad input is the client's mistake: a 4xx with a JSON reason, never a traceback.

Each case here was a 500 with a traceback once.  ``no_tracebacks`` fails a
test that logs one; the model rejections run against a real scikit-learn
model, whose messages are what a client would see.
"""

from __future__ import annotations

import warnings
from typing import Any

import pandas as pd  # type: ignore[import-untyped, unused-ignore]
import pytest

JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def churn_model() -> Any:
    """Logistic regression over two numeric columns, fitted with their names."""
    from sklearn.linear_model import LogisticRegression

    frame = pd.DataFrame({"tenure": [1.0, 2.0, 30.0, 40.0], "calls": [5.0, 4.0, 0.0, 1.0]})
    return LogisticRegression().fit(frame, [1, 1, 0, 0])


@pytest.fixture
def churn(churn_model: Any, start: Any, fakes: Any) -> Any:
    _, client = start(fakes.loader_for(churn_model))
    return client


def assert_error(response: Any, status: int, message: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    error: str = response.json()["error"]
    assert message in error
    assert "Traceback" not in error and "\n" not in error
    return error


def test_the_real_model_answers_good_input(churn: Any) -> None:
    records = [{"tenure": 2.0, "calls": 5.0}, {"tenure": 40.0, "calls": 0.0}]
    response = churn.post("/v1/predict", json={"dataframe_records": records})
    assert response.json() == {"predictions": [1, 0]}


def test_deep_nesting_is_400(client: Any, no_tracebacks: Any) -> None:
    response = client.post("/v1/predict", content=b"[" * 100_000, headers=JSON)
    assert_error(response, 400, "nests too deeply")


def test_a_5000_digit_integer_is_400(client: Any, no_tracebacks: Any) -> None:
    body = b'{"instances": [' + b"1" * 5000 + b"]}"
    assert_error(client.post("/v1/predict", content=body, headers=JSON), 400, "too many digits")


def test_an_integer_beyond_64_bits_is_400(client: Any, no_tracebacks: Any) -> None:
    body = b'{"instances": [1, ' + b"9" * 30 + b"]}"
    assert_error(client.post("/v1/predict", content=body, headers=JSON), 400, "64 bits")


@pytest.mark.parametrize(
    "body", [b"not json", b'{"instances": [1,', b"\xff\xfe\x00garbage", b""]
)
def test_malformed_json_is_400(client: Any, no_tracebacks: Any, body: bytes) -> None:
    assert_error(client.post("/v1/predict", content=body, headers=JSON), 400, "not valid JSON")


def test_a_string_in_a_numeric_column_is_422_with_the_models_reason(
    churn: Any, no_tracebacks: Any
) -> None:
    payload = {"dataframe_records": [{"tenure": "long", "calls": 1.0}]}
    error = assert_error(churn.post("/v1/predict", json=payload), 422, "rejected the input")
    assert "could not convert string to float: 'long'" in error


def test_a_wrong_feature_count_is_422_with_the_models_reason(
    churn: Any, no_tracebacks: Any
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn: "X does not have valid feature names"
        response = churn.post("/v1/predict", json={"instances": [[1.0, 2.0, 3.0]]})
    error = assert_error(response, 422, "rejected the input: ValueError")
    assert "X has 3 features, but LogisticRegression is expecting 2" in error


def test_a_missing_column_is_422_in_one_line(churn: Any, no_tracebacks: Any) -> None:
    # sklearn's message spans several lines; a client gets one.
    response = churn.post("/v1/predict", json={"dataframe_records": [{"tenure": 1.0}]})
    assert "yet now missing: - calls" in assert_error(response, 422, "feature names should match")


def test_a_custom_model_missing_a_column_is_422(client: Any, no_tracebacks: Any) -> None:
    # DoublingModel reads data["x"]: pandas raises KeyError for a frame without it.
    response = client.post("/v1/predict", json={"dataframe_records": [{"y": 1}]})
    assert_error(response, 422, "rejected the input: KeyError")


def test_mlflows_schema_error_is_422(start: Any, fakes: Any, no_tracebacks: Any) -> None:
    from mlflow.exceptions import MlflowException

    class Enforcing:
        def predict(self, data: Any) -> Any:
            raise MlflowException.invalid_parameter_value(
                "Failed to enforce schema of data: Model is missing inputs ['tenure']."
            )

    _, client = start(fakes.loader_for(Enforcing()))
    response = client.post("/v1/predict", json={"dataframe_records": [{"calls": 1}]})
    assert_error(response, 422, "Model is missing inputs ['tenure']")


@pytest.mark.parametrize(
    "content_type",
    ["text/csv", "text/plain", "application/x-www-form-urlencoded", "application/xml"],
)
def test_a_wrong_content_type_is_415_naming_the_accepted_ones(
    client: Any, model: Any, no_tracebacks: Any, content_type: str
) -> None:
    response = client.post(
        "/v1/predict", content=b'{"instances": [1]}', headers={"Content-Type": content_type}
    )
    assert_error(response, 415, "send application/json")
    assert model.batches == []


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/json; format=pandas-split",
    ],
)
def test_json_content_types_are_accepted(client: Any, content_type: str) -> None:
    response = client.post(
        "/v1/predict", content=b'{"instances": [1]}', headers={"Content-Type": content_type}
    )
    assert response.json() == {"predictions": [2]}


def test_a_missing_content_type_is_read_as_json(client: Any) -> None:
    response = client.post("/v1/predict", content=b'{"instances": [1]}')
    assert response.request.headers.get("Content-Type") is None
    assert response.json() == {"predictions": [2]}


def test_rejections_are_counted_by_reason(client: Any) -> None:
    client.post("/v1/predict", content=b"{", headers=JSON)
    client.post("/v1/predict", content=b"a,b", headers={"Content-Type": "text/csv"})
    client.post("/v1/predict", json={"dataframe_records": [{"y": 1}]})
    text = client.get("/metrics").text
    assert 'swarmai_requests_rejected_total{reason="malformed"} 1.0' in text
    assert 'swarmai_requests_rejected_total{reason="content_type"} 1.0' in text
    assert 'swarmai_requests_rejected_total{reason="model_rejected"} 1.0' in text
    assert 'swarmai_requests_total{status="422"} 1.0' in text
