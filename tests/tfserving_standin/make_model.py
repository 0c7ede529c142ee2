"""Make, and run, the small SavedModels the e2e tests serve, with real TensorFlow.

Runs inside the stand-in image (TensorFlow is not in swarmai's venv)::

    python make_model.py save OUT_DIR '{"weights": [[...], ...], "bias": [...]}'
    python make_model.py predict MODEL_DIR '[[1.0, 2.0, 3.0], ...]'

The model is ``y = relu(x @ weights + bias)``: a ``tf.Module`` whose
``serving_default`` signature takes ``x`` (float32, ``[None, inputs]``) and
returns ``y``.  ``predict`` loads a SavedModel back with ``tf.saved_model.load``
and prints its predictions as JSON, the reference the tests compare the
served answers with.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def save(out: str, params: dict[str, Any]) -> None:
    import tensorflow as tf

    weights = tf.constant(params["weights"], dtype=tf.float32)
    bias = tf.constant(params["bias"], dtype=tf.float32)

    class Dense(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weights = tf.Variable(weights, name="weights")
            self.bias = tf.Variable(bias, name="bias")

        @tf.function(input_signature=[
            tf.TensorSpec([None, int(weights.shape[0])], tf.float32, name="x")])
        def serve(self, x: Any) -> dict[str, Any]:
            return {"y": tf.nn.relu(tf.matmul(x, self.weights) + self.bias)}

    module = Dense()
    tf.saved_model.save(module, out, signatures={"serving_default": module.serve})


def predict(model_dir: str, rows: list[list[float]]) -> list[Any]:
    import tensorflow as tf

    signature = tf.saved_model.load(model_dir).signatures["serving_default"]
    result: list[Any] = signature(x=tf.constant(rows, dtype=tf.float32))["y"].numpy().tolist()
    return result


def main(argv: list[str]) -> int:
    command, path, argument = argv
    if command == "save":
        save(path, json.loads(argument))
        return 0
    if command == "predict":
        print(json.dumps(predict(path, json.loads(argument))))
        return 0
    raise SystemExit(f"unknown command {command!r} (save or predict)")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
