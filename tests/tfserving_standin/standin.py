"""A TEST-ONLY STAND-IN for TensorFlow Serving's REST API, with real TensorFlow.

The ``tensorflow_model_server`` binary cannot be obtained on swarmai's CI
machines, so the e2e tests run this in its place (image
``swarmai/tfserving-standin``, built by standin_image.py beside this file).
Rendered production stacks keep the official ``tensorflow/serving`` image;
only a test points ``images: {tfserving: ...}`` here.

What it shares with TF Serving, and nothing more (the subset swarmai relies on):

* the command line swarmai renders: ``--port``, ``--rest_api_port``,
  ``--model_config_file`` (a ``ModelServerConfig`` text proto: each
  ``config { name: ... base_path: ... }`` is a model), ``--model_name`` and
  ``--model_base_path`` (ignored when a config file is given, as in TF Serving),
  ``--monitoring_config_file``, ``--file_system_poll_wait_seconds``,
  ``--enable_batching`` and ``--batching_parameters_file`` (accepted, batching
  itself is not emulated); other ``--flag=value`` options are logged and ignored;
* the layout: ``<base_path>/<integer version>/saved_model.pb`` + ``variables/``,
  polled every ``--file_system_poll_wait_seconds``; the highest version is
  loaded (the ``latest { num_versions: 1 }`` policy) with
  ``tf.saved_model.load`` and swapped in without a restart, and a version
  that fails to load leaves the one being served in place;
* REST on ``--rest_api_port``: ``GET /v1/models/<name>[/versions/<v>]`` (model
  version status, ``AVAILABLE`` once loaded), ``POST /v1/models/<name>
  [/versions/<v>]:predict`` with ``{"instances": [...]}`` (row format ->
  ``{"predictions": [...]}``) or ``{"inputs": ...}`` (columnar -> ``{"outputs": ...}``),
  optional ``signature_name`` (default ``serving_default``), errors as
  ``{"error": "..."}``; and the Prometheus path of the monitoring config.

No gRPC: ``--port`` is accepted and nothing listens there.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import signal
import sys
import threading
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

log = logging.getLogger("tfserving-standin")

DEFAULT_SIGNATURE = "serving_default"
_PATH = re.compile(
    r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>[0-9]+))?(?::(?P<verb>[a-z]+))?$"
)


# --- the command line ---------------------------------------------------------------


def _flag_bool(value: str) -> bool:
    lowered = value.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"{value!r} is not a boolean")


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """TF Serving's flags swarmai renders, plus the ones its official entrypoint adds."""
    parser = argparse.ArgumentParser(prog="tfserving-standin", allow_abbrev=False)
    parser.add_argument("--port", type=int, default=8500, help="gRPC port (not served)")
    parser.add_argument("--rest_api_port", type=int, default=8501)
    parser.add_argument("--model_name", default="")
    parser.add_argument("--model_base_path", default="")
    parser.add_argument("--model_config_file", default="")
    parser.add_argument("--monitoring_config_file", default="")
    parser.add_argument("--file_system_poll_wait_seconds", type=float, default=1.0)
    parser.add_argument("--enable_batching", type=_flag_bool, nargs="?", const=True,
                        default=False)
    parser.add_argument("--batching_parameters_file", default="")
    return parser.parse_known_args(argv)


@dataclass(frozen=True)
class ModelConfig:
    name: str
    base_path: str


_CONFIG_BLOCK = re.compile(r"\bconfig\s*\{")
_STRING_FIELD = r"\b{key}\s*:\s*(?:'([^']*)'|\"([^\"]*)\")"


def parse_model_config(text: str) -> list[ModelConfig]:
    """The ``name``/``base_path`` of each ``config { ... }`` in a ModelServerConfig text proto."""
    configs = []
    starts = [m.end() for m in _CONFIG_BLOCK.finditer(text)]
    for index, start in enumerate(starts):
        end = starts[index + 1] if index + 1 < len(starts) else len(text)
        block = text[start:end]
        name = _string_field(block, "name")
        base_path = _string_field(block, "base_path")
        if name is None or base_path is None:
            raise ValueError(f"model config block #{index + 1} lacks name or base_path")
        configs.append(ModelConfig(name, base_path))
    if not configs:
        raise ValueError("the model config file has no `config { name: ... base_path: ... }`")
    if "latest" not in text and "model_version_policy" in text:
        log.warning("only the `latest { num_versions: 1 }` version policy is emulated")
    return configs


def _string_field(block: str, key: str) -> str | None:
    match = re.search(_STRING_FIELD.format(key=key), block)
    if match is None:
        return None
    return match.group(1) if match.group(1) is not None else match.group(2)


def parse_monitoring_path(text: str) -> str | None:
    """The Prometheus path of a MonitoringConfig text proto, when it is enabled."""
    if not re.search(r"\benable\s*:\s*true\b", text):
        return None
    path = _string_field(text, "path")
    return path or "/monitoring/prometheus/metrics"


# --- models and versions ----------------------------------------------------------------


@dataclass
class VersionState:
    version: int
    state: str  # LOADING, AVAILABLE, END
    error: str = ""
    loaded: Any = None

    def status(self) -> dict[str, Any]:
        return {
            "version": str(self.version),
            "state": self.state,
            "status": {"error_code": "UNKNOWN" if self.error else "OK",
                       "error_message": self.error},
        }


@dataclass
class ServedModel:
    """One model: the version being served and what happened to the others."""

    config: ModelConfig
    lock: threading.Lock = field(default_factory=threading.Lock)
    versions: dict[int, VersionState] = field(default_factory=dict)
    current: VersionState | None = None
    requests: int = 0

    def poll(self) -> None:
        """Load the highest version on disk if it is not the one served (or a failed one)."""
        newest = newest_version(Path(self.config.base_path))
        if newest is None:
            return
        known = self.versions.get(newest)
        if known is not None and known.state in ("AVAILABLE", "LOADING"):
            return
        if known is not None and known.state == "END" and known.error:
            return  # failed before; TF Serving does not retry a failed version either
        state = VersionState(newest, "LOADING")
        with self.lock:
            self.versions[newest] = state
        log.info("Loading servable version {name: %s version: %d}", self.config.name, newest)
        try:
            state.loaded = load_saved_model(Path(self.config.base_path) / str(newest))
        except Exception as error:  # TensorFlow raises many kinds; report each
            state.state, state.error = "END", f"{type(error).__name__}: {error}"
            log.error("Loading servable version {name: %s version: %d} failed: %s",
                      self.config.name, newest, state.error)
            return
        with self.lock:
            previous, self.current = self.current, state
            state.state = "AVAILABLE"
            if previous is not None:
                previous.state, previous.loaded = "END", None
        log.info("Successfully loaded servable version {name: %s version: %d}",
                 self.config.name, newest)
        if previous is not None:
            log.info("Unloaded servable version {name: %s version: %d}", self.config.name,
                     previous.version)

    def status(self, version: int | None) -> list[dict[str, Any]]:
        with self.lock:
            states = sorted(self.versions.values(), key=lambda s: -s.version)
            if version is not None:
                states = [s for s in states if s.version == version]
            return [s.status() for s in states]

    def serving(self, version: int | None) -> VersionState | None:
        with self.lock:
            current = self.current
        if current is None or (version is not None and current.version != version):
            return None
        return current


def newest_version(base_path: Path) -> int | None:
    """The highest ``<int>/`` folder that holds a ``saved_model.pb``."""
    try:
        entries = list(base_path.iterdir())
    except OSError:
        return None
    versions = [int(e.name) for e in entries
                if e.name.isdigit() and (e / "saved_model.pb").is_file()]
    return max(versions) if versions else None


def load_saved_model(path: Path) -> Any:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    if not loaded.signatures:
        raise ValueError(f"{path} has no signatures")
    return loaded


# --- predictions ------------------------------------------------------------------------


def predict(loaded: Any, body: dict[str, Any]) -> dict[str, Any]:
    """TF Serving's ``:predict``: row (``instances``) or columnar (``inputs``) format."""
    import tensorflow as tf

    name = body.get("signature_name", DEFAULT_SIGNATURE)
    if name not in loaded.signatures:
        raise ValueError(f"Serving signature name: \"{name}\" not found in signature def")
    signature = loaded.signatures[name]
    specs = signature.structured_input_signature[1]
    if ("instances" in body) == ("inputs" in body):
        raise ValueError("Missing 'inputs' or 'instances' key")
    rows = "instances" in body
    data = body["instances"] if rows else body["inputs"]
    if len(specs) == 1:
        key = next(iter(specs))
        if rows and isinstance(data, list) and data and isinstance(data[0], dict):
            data = [row[key] for row in data]
        elif not rows and isinstance(data, dict):
            data = data[key]
        feeds = {key: data}
    elif rows:
        feeds = {key: [row[key] for row in data] for key in specs}
    else:
        feeds = {key: data[key] for key in specs}
    tensors = {key: tf.constant(value, dtype=specs[key].dtype) for key, value in feeds.items()}
    outputs = {key: value.numpy().tolist() for key, value in signature(**tensors).items()}
    if not rows:
        return {"outputs": next(iter(outputs.values())) if len(outputs) == 1 else outputs}
    if len(outputs) == 1:
        return {"predictions": next(iter(outputs.values()))}
    count = len(next(iter(outputs.values())))
    return {"predictions": [{k: v[i] for k, v in outputs.items()} for i in range(count)]}


# --- HTTP ---------------------------------------------------------------------------------


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, models: dict[str, ServedModel], metrics_path: str | None):
        super().__init__(("0.0.0.0", port), Handler)
        self.models = models
        self.metrics_path = metrics_path


class Handler(BaseHTTPRequestHandler):
    server: Server
    server_version = "tfserving-standin"

    def do_GET(self) -> None:
        if self.server.metrics_path and self.path == self.server.metrics_path:
            self._metrics()
            return
        found = self._model()
        if found is None:
            return
        model, version, verb = found
        if verb is not None:
            self._error(HTTPStatus.NOT_FOUND, f"GET has no :{verb}")
            return
        states = model.status(version)
        if not states:
            self._error(HTTPStatus.NOT_FOUND,
                        f"Could not find any versions of model {model.config.name}")
            return
        self._json(HTTPStatus.OK, {"model_version_status": states})

    def do_POST(self) -> None:
        found = self._model()
        if found is None:
            return
        model, version, verb = found
        if verb != "predict":
            self._error(HTTPStatus.NOT_FOUND, f"the stand-in serves :predict only, not :{verb}")
            return
        serving = model.serving(version)
        if serving is None:
            wanted = f"Specific({model.config.name}, {version})" if version is not None \
                else f"Latest({model.config.name})"
            self._error(HTTPStatus.NOT_FOUND, f"Servable not found for request: {wanted}")
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"null")
            if not isinstance(body, dict):
                raise ValueError("the body must be a JSON object")
            answer = predict(serving.loaded, body)
        except (ValueError, KeyError, TypeError) as error:
            self._error(HTTPStatus.BAD_REQUEST, str(error))
            return
        except Exception as error:  # TensorFlow's own errors (shapes, dtypes)
            self._error(HTTPStatus.BAD_REQUEST, f"{type(error).__name__}: {error}")
            return
        with model.lock:
            model.requests += 1
        self._json(HTTPStatus.OK, answer)

    def _model(self) -> tuple[ServedModel, int | None, str | None] | None:
        match = _PATH.match(self.path.split("?", 1)[0])
        if match is None:
            self._error(HTTPStatus.NOT_FOUND, f"Malformed request: {self.command} {self.path}")
            return None
        model = self.server.models.get(match["name"])
        if model is None:
            self._error(HTTPStatus.NOT_FOUND,
                        f"Servable not found for request: Latest({match['name']})")
            return None
        version = int(match["version"]) if match["version"] else None
        return model, version, match["verb"]

    def _metrics(self) -> None:
        lines = ["# TYPE :tensorflow:serving:request_count counter"]
        for name, model in sorted(self.server.models.items()):
            lines.append(f':tensorflow:serving:request_count{{model_name="{name}",'
                         f'status="OK"}} {model.requests}')
        data = ("\n".join(lines) + "\n").encode()
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: HTTPStatus, message: str) -> None:
        self._json(status, {"error": message})

    def _json(self, status: HTTPStatus, document: dict[str, Any]) -> None:
        data = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)


# --- main -----------------------------------------------------------------------------------


def _models(args: argparse.Namespace) -> list[ModelConfig]:
    if args.model_config_file:
        return parse_model_config(Path(args.model_config_file).read_text(encoding="utf-8"))
    if args.model_name and args.model_base_path:
        return [ModelConfig(args.model_name, args.model_base_path)]
    raise SystemExit("give --model_config_file, or --model_name and --model_base_path")


def _poll_forever(models: list[ServedModel], every: float, stop: threading.Event) -> None:
    while not stop.is_set():
        for model in models:
            try:
                model.poll()
            except Exception:  # keep polling: the next folder may be fine
                log.exception("polling %s failed", model.config.base_path)
        stop.wait(every)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=os.environ.get("STANDIN_LOG_LEVEL", "INFO"), stream=sys.stdout,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args, unknown = parse_args(sys.argv[1:] if argv is None else argv)
    for flag in unknown:
        log.warning("ignoring %s (not emulated by the stand-in)", flag)
    configs = _models(args)
    metrics = None
    if args.monitoring_config_file:
        metrics = parse_monitoring_path(Path(args.monitoring_config_file).read_text("utf-8"))
    if args.enable_batching:
        log.info("batching requested (%s): accepted, not emulated",
                 args.batching_parameters_file or "default parameters")
    log.info("TF Serving STAND-IN (test only): models %s, REST on %d, gRPC port %d not served",
             ", ".join(f"{c.name} <- {c.base_path}" for c in configs), args.rest_api_port,
             args.port)
    models = {c.name: ServedModel(c) for c in configs}
    stop = threading.Event()
    server = Server(args.rest_api_port, models, metrics)

    def shutdown(signum: int, frame: Any) -> None:
        del frame
        log.info("received %s, shutting down", signal.Signals(signum).name)
        stop.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    poller = threading.Thread(target=_poll_forever, daemon=True,
                              args=(list(models.values()), args.file_system_poll_wait_seconds,
                                    stop))
    poller.start()
    log.info("Exporting HTTP/REST API at:0.0.0.0:%d ...", args.rest_api_port)
    server.serve_forever(poll_interval=0.5)
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
