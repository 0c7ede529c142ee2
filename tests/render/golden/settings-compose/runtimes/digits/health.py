"""swarmai: does TorchServe serve model digits?  Exit 0, or say why not."""
import json
import os
import sys
import urllib.request

MODEL = 'digits'
try:
    urllib.request.urlopen('http://127.0.0.1:8080/ping', timeout=4).close()
    with urllib.request.urlopen('http://127.0.0.1:8081/models/digits', timeout=4) as answer:
        workers = [worker["status"] for worker in json.load(answer)[0]["workers"]]
except Exception as error:
    sys.exit(f"model {MODEL}: TorchServe does not answer: {error}")
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
sys.exit(f"model {MODEL}: no READY worker ({states})" + (f"; {errors[-1]}" if errors else ""))
