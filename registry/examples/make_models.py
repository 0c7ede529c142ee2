"""Make two small, real models to push into a stack's registry.

    python registry/examples/make_models.py OUT_DIR

writes OUT_DIR/iris.pkl (a scikit-learn logistic regression trained on the
iris data set that scikit-learn ships) and OUT_DIR/churn.pkl (a plain Python
callable, wrapped as an MLflow pyfunc when pushed).  Both are then pushed with
``swarmai models push STACK NAME OUT_DIR/NAME.pkl --alias production``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import cloudpickle  # type: ignore[import-untyped]


def iris_model() -> Any:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    data = load_iris(as_frame=True)
    return LogisticRegression(max_iter=500).fit(data.data, data.target)


def churn_score(frame: Any) -> list[float]:
    """A hand-written churn score: 0.1 per support call, minus 0.02 per month of tenure."""
    calls = frame["support_calls"].astype(float)
    tenure = frame["tenure_months"].astype(float)
    return [round(float(v), 6) for v in (0.1 * calls - 0.02 * tenure).clip(0, 1)]


def write_models(out: Path) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {"iris": out / "iris.pkl", "churn": out / "churn.pkl"}
    paths["iris"].write_bytes(cloudpickle.dumps(iris_model()))
    # By value: the registry container has no copy of this script to import.
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    paths["churn"].write_bytes(cloudpickle.dumps(churn_score))
    return paths


if __name__ == "__main__":
    for name, path in write_models(Path(sys.argv[1] if len(sys.argv) > 1 else ".")).items():
        print(f"{name}: {path}")
