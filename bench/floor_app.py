"""The HTTP floor of the server bench: an ASGI app that does nothing else.

It reads the request body and answers a fixed prediction, on the same uvicorn,
event loop (uvloop) and HTTP parser (httptools) as swarmai's server.  What it
serves per second is the most any Python server on this stack can, before a
model, a parser or a metric costs anything: bench/server.py prints it beside
the servers so each ratio can be read against what is reachable at all.

    uvicorn floor_app:app --loop uvloop --http httptools --no-access-log
"""

from __future__ import annotations

from typing import Any

BODY = b'{"predictions":[0]}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
