"""The TorchServe container's healthcheck script (rendered per model)."""

from __future__ import annotations

from swarmai.render import naming
from swarmai.spec import Model


def torchserve_health_check(model: Model) -> str:
    """The TorchServe container's healthcheck: is the model loaded?  If not, why not.

    ``/ping`` says Healthy even when the model failed to load (pytorch/serve#2099),
    so a READY worker is required too.  Without one it prints, on one line, the
    workers' states and the last error the Python worker logged (TorchServe's
    model_log.log), which `docker inspect` shows, and which the container logs
    too when it is stopped unhealthy (see the entrypoint), for swarmai's
    failure report.  Runs with the image's python3 (stdlib only).
    """
    inference = f"http://127.0.0.1:{naming.TORCHSERVE_INFERENCE_PORT}"
    management = f"http://127.0.0.1:{naming.TORCHSERVE_MANAGEMENT_PORT}"
    return f'''"""swarmai: does TorchServe serve model {model.name}?  Exit 0, or say why not."""
import json
import os
import sys
import urllib.request

MODEL = {model.name!r}
try:
    urllib.request.urlopen({inference + "/ping"!r}, timeout=4).close()
    with urllib.request.urlopen({management + "/models/" + model.name!r}, timeout=4) as answer:
        workers = [worker["status"] for worker in json.load(answer)[0]["workers"]]
except Exception as error:
    sys.exit(f"model {{MODEL}}: TorchServe does not answer: {{error}}")
if "READY" in workers:
    sys.exit(0)
log = os.path.join(os.environ.get("LOG_LOCATION", "logs"), "model_log.log")
try:
    with open(log, "rb") as handle:
        handle.seek(max(os.path.getsize(log) - 65536, 0))
        lines = handle.read().decode("utf-8", "replace").splitlines()
except OSError:
    lines = []
# The worker's own exception lines; TorchServe's generic wrapper says nothing.
errors = [line.split(" - ", 1)[-1] for line in lines
          if "Error: " in line and "Unknown exception" not in line]
states = ", ".join(workers) or "none"
sys.exit(f"model {{MODEL}}: no READY worker ({{states}})" + (f"; {{errors[-1]}}" if errors else ""))
'''
