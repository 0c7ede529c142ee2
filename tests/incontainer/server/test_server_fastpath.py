"""The array path (fastpath.py) answers exactly what pandas and MLflow answer.

Real scikit-learn models, saved with MLflow's sklearn flavor and opened with
``mlflow.pyfunc.load_model`` as the server opens them; each is served twice in
process, with the array path and without, and every payload format must get
the same status and body from both.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped, unused-ignore]
import pytest

from swarmai.incontainer.server import LoadedModel
from swarmai.incontainer.server.fastpath import ArrayPath, array_path
from swarmai.incontainer.server.tables import plain_table

COLUMNS = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.1, 4.4, 1.4], [6.3, 3.3, 6.0, 2.5]]
WHOLE = [[5, 3, 1, 0], [7, 3, 4, 1], [6, 3, 6, 2]]
MIXED = [[5.1, 3, 1.4, 0], [7, 3.1, 4, 1.4]]

PAYLOADS: dict[str, Any] = {
    "split, fractions": {"dataframe_split": {"columns": COLUMNS, "data": ROWS}},
    "split, whole numbers": {"dataframe_split": {"columns": COLUMNS, "data": WHOLE}},
    "split, both in a column": {"dataframe_split": {"columns": COLUMNS, "data": MIXED}},
    "split, one row with index": {"dataframe_split": {"columns": COLUMNS, "data": ROWS[:1],
                                                      "index": [9]}},
    "split, columns reordered": {"dataframe_split": {"columns": COLUMNS[::-1], "data": ROWS}},
    "split, no columns": {"dataframe_split": {"data": ROWS}},
    "split, booleans": {"dataframe_split": {"columns": COLUMNS,
                                            "data": [[True, 3.5, 1.4, 0.2]]}},
    "split, text": {"dataframe_split": {"columns": COLUMNS, "data": [["5.1", 3.5, 1.4, 0.2]]}},
    "split, params": {"dataframe_split": {"columns": COLUMNS, "data": ROWS}, "params": {}},
    "records": {"dataframe_records": [dict(zip(COLUMNS, row, strict=True)) for row in ROWS]},
    "inputs": {"inputs": ROWS},
    "instances": {"instances": ROWS},
}


def _iris() -> tuple[pd.DataFrame, Any]:
    from sklearn.datasets import load_iris

    data = load_iris(as_frame=True)
    return data.data, data.target


def _save(path: Path, estimator: Any, **options: Any) -> Any:
    import mlflow.pyfunc
    import mlflow.sklearn

    mlflow.sklearn.save_model(estimator, str(path), serialization_format="cloudpickle",
                              **options)
    return mlflow.pyfunc.load_model(str(path))


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Pyfunc models as the server opens them, by what they exercise."""
    from mlflow.models import infer_signature
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import BaggingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame, target = _iris()
    root = tmp_path_factory.mktemp("fastpath")
    linear = LogisticRegression(max_iter=500).fit(frame, target)
    forest = RandomForestClassifier(n_estimators=5, random_state=0).fit(frame, target)
    selecting = make_pipeline(
        ColumnTransformer([("kept", StandardScaler(), COLUMNS[:2])]),
        LogisticRegression(max_iter=500)).fit(frame, target)
    return {
        "linear": _save(root / "linear", linear),
        "forest": _save(root / "forest", forest),
        "proba": _save(root / "proba", linear, pyfunc_predict_fn="predict_proba"),
        "signed": _save(root / "signed", linear,
                        signature=infer_signature(frame, linear.predict(frame))),
        "pipeline": _save(root / "pipeline", selecting),
        "wrapping": _save(root / "wrapping", BaggingClassifier(
            LogisticRegression(max_iter=500), n_estimators=2, random_state=0).fit(frame, target)),
        "unnamed": _save(root / "unnamed", LogisticRegression(max_iter=500).fit(
            frame.to_numpy(), target)),
    }


@dataclasses.dataclass
class Served:
    """A ready in-process server around one pyfunc model."""

    client: Any
    taken: list[int]  # the row count of each batch its array path took

    def post(self, payload: Any) -> tuple[int, Any]:
        response = self.client.post("/v1/predict", json=payload)
        return response.status_code, response.json()


@pytest.fixture
def serve(start: Any) -> Callable[..., Served]:
    """``serve(model, fast=..., **settings)``: the model served with its array path
    (``fast=True``, where it has one) or without."""

    def _serve(model: Any, *, fast: bool, **settings: Any) -> Served:
        taken: list[int] = []
        path = array_path(model) if fast else None
        if path is not None:
            call = path.call

            def counted(rows: Any) -> Any:
                taken.append(len(rows))
                return call(rows)

            path = dataclasses.replace(path, call=counted)
        loaded = LoadedModel(model=model, registered_name="iris", version="1", array_path=path)
        _, client = start(lambda: loaded, **settings)
        return Served(client, taken)

    return _serve


@pytest.mark.parametrize("name", ["linear", "forest", "proba", "signed"])
def test_every_payload_gets_the_same_answer_with_and_without_the_array_path(
        models: dict[str, Any], serve: Callable[..., Served], name: str) -> None:
    fast, slow = serve(models[name], fast=True), serve(models[name], fast=False)
    answers = {label: (fast.post(payload), slow.post(payload))
               for label, payload in PAYLOADS.items()}
    for label, (with_path, without) in answers.items():
        assert with_path == without, label
    assert answers["split, fractions"][0][0] == 200
    # A signature of doubles refuses whole numbers (MLflow will not turn int64 into
    # double): the array path must not answer what MLflow refuses.
    assert answers["split, whole numbers"][0][0] == (422 if name == "signed" else 200)
    # fractions, one row with index, both kinds, and whole numbers where allowed
    assert (len(fast.taken), slow.taken) == (3 if name == "signed" else 4, [])


def test_a_batch_of_requests_takes_the_array_path_once_and_answers_each(
        models: dict[str, Any], serve: Callable[..., Served], fakes: Any) -> None:
    # Compared batch with batch: a model's floating-point answer for a row may
    # differ in the last digit between a batch of one and a batch of three.
    fast, slow = (serve(models["proba"], fast=fast, max_batch_size=8, max_delay_ms=200)
                  for fast in (True, False))

    async def together(http: Any) -> list[Any]:
        responses = await asyncio.gather(*(
            http.post("/v1/predict", json={"dataframe_split": {"columns": COLUMNS,
                                                               "data": [row]}})
            for row in ROWS))
        return [response.json() for response in responses]

    answers = fakes.in_app_loop(fast.client, together)
    assert answers == fakes.in_app_loop(slow.client, together)
    assert len(answers) == 3 and fast.taken == [3]


@pytest.mark.parametrize("name", ["pipeline", "wrapping", "unnamed"])
def test_models_that_may_read_columns_by_name_or_were_fitted_unnamed_have_no_array_path(
        models: dict[str, Any], name: str) -> None:
    assert array_path(models[name]) is None


def test_a_model_other_than_scikit_learn_s_flavor_has_no_array_path() -> None:
    class Doubler:
        def predict(self, data: Any) -> Any:
            return data * 2

    assert array_path(Doubler()) is None


def test_a_model_whose_objects_fail_when_asked_loads_without_the_array_path(
        caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        metadata = type("Metadata", (), {
            "flavors": {"python_function": {"loader_module": "mlflow.sklearn"}}})()

        def get_raw_model(self) -> Any:
            raise RuntimeError("not this one")

    assert array_path(Broken()) is None
    assert "no array path: deciding it failed" in caplog.text
    assert "not this one" in caplog.text


def test_only_numeric_tables_of_the_model_s_own_columns_take_the_array_path() -> None:
    path = ArrayPath(tuple(COLUMNS), call=len, floats_only=False)
    signed = dataclasses.replace(path, floats_only=True)

    def rows(columns: Any, data: list[list[Any]], on: ArrayPath = path) -> Any:
        table = plain_table(columns, data)
        assert table is not None
        prepared = on.rows([table[0]])
        return None if prepared is None else prepared.array

    np.testing.assert_array_equal(rows(COLUMNS, ROWS), np.array(ROWS))
    assert rows(COLUMNS, ROWS).dtype == np.float64
    assert rows(COLUMNS, WHOLE) is not None and rows(COLUMNS, WHOLE, signed) is None
    assert rows(COLUMNS, MIXED, signed) is not None
    assert rows(COLUMNS[::-1], ROWS) is None
    assert rows(None, ROWS) is None
    assert rows(COLUMNS, [[True, 1.0, 1.0, 1.0]]) is None
    assert rows(COLUMNS, [[2**64, 1.0, 1.0, 1.0]]) is None
    assert rows(COLUMNS, [["1", 1.0, 1.0, 1.0]]) is None
