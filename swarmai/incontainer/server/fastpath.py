"""Numeric tables straight into a scikit-learn model, without pandas or MLflow's checks.

For a one-row request most of a scikit-learn model's time is pandas: building
the DataFrame, then scikit-learn's checks of its columns and dtypes (about
0.95 ms on the iris model, against 0.25 ms for the same row as a numpy array).
So where the answer is provably the same, the server hands the model a float64
array instead.  Whether it is the same is decided once, when the model loads,
and is narrow on purpose:

- the model is scikit-learn's own flavor (``loader_module: mlflow.sklearn``),
  and the estimator is one plain estimator of a family that reads its input as
  a float array and nothing else: no pipeline, no column transformer, no
  estimator wrapping another (those can select or transform columns by name);
- it was fitted on named columns (``feature_names_in_``), and a request takes
  this path only when its columns are exactly those names, in that order, and
  every value is a JSON number: pandas would have built float64 or int64
  columns, and the estimator converts both to the float64 given here;
- MLflow's signature, where there is one, names the same columns, in that
  order, all ``double``, and each column of the request holds a fraction
  somewhere (a column of whole numbers is int64 to pandas, and MLflow refuses
  to convert int64 to double: that request goes the slow way, to be refused);
- the request has no params (scikit-learn's pyfunc takes none).

Everything else (other columns, strings, booleans, params, other formats)
goes through pandas and MLflow as before.  The function MLflow's pyfunc calls
(``predict``, or the ``pyfunc_predict_fn`` the model was logged with) is the
one called here, on the same estimator.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from swarmai.incontainer.server.tables import TableRows

log = logging.getLogger(__name__)

# Estimator families that validate their input with check_array into floats and
# never look at column names; a class elsewhere (or of a user) is not assumed to.
_ARRAY_FAMILIES = (
    "sklearn.linear_model.",
    "sklearn.tree.",
    "sklearn.ensemble.",
    "sklearn.svm.",
    "sklearn.neighbors.",
    "sklearn.naive_bayes.",
    "sklearn.discriminant_analysis.",
)
# What scikit-learn says when it gets an array where it was fitted on a frame:
# here the array's columns were checked against those names already.
_NAMES_WARNING = "X does not have valid feature names"
_NUMBERS = frozenset({"int", "float"})


@dataclass(frozen=True)
class ArrayRows:
    """A batch bound for the array path: its rows, and the function to call on them."""

    array: Any
    call: Callable[[Any], Any]


@dataclass(frozen=True)
class ArrayPath:
    """The model's predict function on a float64 array, for tables of ``columns``."""

    columns: tuple[str, ...]
    call: Callable[[Any], Any]
    # Under a signature: only columns that pandas makes float64 pass MLflow's checks.
    floats_only: bool

    def rows(self, parts: Sequence[Any]) -> ArrayRows | None:
        """A batch's rows as one float64 array, or ``None`` when it must go through pandas.

        The parts of a batch share their batching key (column names and the
        kinds of value in each column), so the first part speaks for all."""
        first = parts[0]
        if not isinstance(first, TableRows) or first.columns is None \
                or tuple(first.columns) != self.columns or not self._numeric(first.kinds):
            return None
        rows = first.data if len(parts) == 1 else [row for part in parts for row in part.data]
        return ArrayRows(np.array(rows, dtype=np.float64), self.call)

    def _numeric(self, kinds: tuple[frozenset[str], ...]) -> bool:
        # "bool" and "bigint" are kinds of their own: neither is taken here.
        return all(kind <= _NUMBERS and (not self.floats_only or "float" in kind)
                   for kind in kinds)


def array_path(model: Any) -> ArrayPath | None:
    """The fast path for a loaded pyfunc model, or ``None`` where it might answer differently
    (or where deciding it failed: the slow path is always correct, so a model whose
    objects do not answer as expected loads and serves all the same)."""
    try:
        return _decide(model)
    except Exception:  # any failure to decide means "no fast path"
        log.warning("no array path: deciding it failed", exc_info=True)
        return None


def _decide(model: Any) -> ArrayPath | None:
    pyfunc = _pyfunc_flavor(model)
    if pyfunc is None or pyfunc.get("loader_module") != "mlflow.sklearn":
        return None
    estimator = model.get_raw_model()
    names = getattr(estimator, "feature_names_in_", None)
    if not _plain_estimator(estimator) or names is None:
        return None
    columns = tuple(str(name) for name in names)
    if not all(isinstance(name, str) for name in names) or len(set(columns)) != len(columns):
        return None
    schema = model.metadata.get_input_schema()
    if schema is not None and not _schema_allows(schema, columns):
        return None
    call = getattr(estimator, str(pyfunc.get("predict_fn", "predict")), None)
    if not callable(call):
        return None
    warnings.filterwarnings("ignore", message=_NAMES_WARNING, category=UserWarning)
    return ArrayPath(columns, call, floats_only=schema is not None)


def _pyfunc_flavor(model: Any) -> dict[str, Any] | None:
    metadata = getattr(model, "metadata", None)
    flavors = getattr(metadata, "flavors", None)
    flavor = flavors.get("python_function") if isinstance(flavors, dict) else None
    return flavor if isinstance(flavor, dict) else None


def _plain_estimator(estimator: Any) -> bool:
    """One estimator of an array-reading family, wrapping no other estimator."""
    if not type(estimator).__module__.startswith(_ARRAY_FAMILIES):
        return False
    params = estimator.get_params(deep=False).values()
    return not any(_is_estimator(value) for value in params)


def _is_estimator(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return any(_is_estimator(item) for item in value)
    return hasattr(value, "fit")


def _schema_allows(schema: Any, columns: tuple[str, ...]) -> bool:
    """Whether MLflow's input schema passes a float64 table of ``columns`` untouched:
    the same names in the same order, all required ``double``."""
    if schema.is_tensor_spec() or tuple(schema.input_names()) != columns:
        return False
    return all(getattr(spec.type, "name", None) == "double" and spec.required
               for spec in schema.inputs)
