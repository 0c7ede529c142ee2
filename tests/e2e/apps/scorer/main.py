"""A user's own FastAPI app, as tests/e2e/test_app_runtime.py deploys it (`runtime: app`).

It knows nothing of swarmai.  Its version is baked into its image (the build
argument VERSION); every answer names it, in the body and in X-Model-Version
(which `swarmai status` and the load generator read).  Its paths: POST /predict,
GET /healthz (alive: Docker's healthcheck), GET /ready (taking requests: the
gateway's health check).

What makes a roll cost no request is the drain on SIGTERM, as swarmai's own
server does it: /ready turns 503 at once, requests are still answered for
SCORER_DEREGISTER_SECONDS (the gateway polls Swarm every 2 s, so it may send a
few more meanwhile), then uvicorn's graceful shutdown stops accepting and
finishes the requests in flight.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import FrameType
from typing import Any

import uvicorn
from fastapi import FastAPI, Response

VERSION = os.environ.get("SCORER_VERSION", "?")
PORT = int(os.environ.get("PORT", "8000"))
DEREGISTER_S = float(os.environ.get("SCORER_DEREGISTER_SECONDS", "5"))
# A slow start (image B's): what the health gate must wait for.
START_DELAY_S = float(os.environ.get("SCORER_START_DELAY", "0"))
draining = threading.Event()


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    await asyncio.sleep(START_DELAY_S)  # uvicorn binds its socket only after this
    yield


app = FastAPI(lifespan=lifespan)


@app.post("/predict")
def predict(payload: dict[str, Any], response: Response) -> dict[str, Any]:
    response.headers["X-Model-Version"] = VERSION
    return {"version": VERSION, "keys": sorted(payload)}


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "alive", "version": VERSION}


@app.get("/ready")
def ready(response: Response) -> dict[str, str]:
    response.headers["X-Model-Version"] = VERSION
    if draining.is_set():
        response.status_code = 503
        return {"status": "draining"}
    return {"status": "ready"}


class DrainingServer(uvicorn.Server):
    """uvicorn, turning unready on SIGTERM and stopping DEREGISTER_S later."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if draining.is_set() or DEREGISTER_S <= 0:
            super().handle_exit(sig, frame)  # a second signal: stop now
            return
        draining.set()
        timer = threading.Timer(DEREGISTER_S, super().handle_exit, (sig, frame))
        timer.daemon = True
        timer.start()


def main() -> None:
    config = uvicorn.Config(app, host="0.0.0.0", port=PORT, timeout_graceful_shutdown=10)
    # uvicorn re-raises the caught signal after its graceful shutdown: exit 0 then.
    signal.signal(signal.SIGTERM, lambda *_: None)
    DrainingServer(config).run()


if __name__ == "__main__":
    main()
