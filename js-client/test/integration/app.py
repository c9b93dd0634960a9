"""The server the Node integration tests talk to: one handler per client feature under test.

Run by test/python-server.ts as `python app.py` with PORT set; serves on 127.0.0.1:PORT.
"""

from __future__ import annotations

import os
from typing import Any

import uvicorn

import microsockets

app = microsockets.Application()


@app.on("echo")
async def echo(ws: microsockets.Socket) -> Any:
    """Send the payload back as an `echo` event, and as the ack."""
    await ws.emit("echo", ws.payload)
    return ws.payload


@app.on("add")
async def add(ws: microsockets.Socket) -> int:
    """The ack is the sum of the numbers in the payload."""
    return sum(ws.payload)


@app.on("fail")
async def fail(ws: microsockets.Socket) -> None:
    """A handler that raises: a request gets `handler_error`."""
    raise RuntimeError("this handler fails on purpose")


@app.on("join")
async def join(ws: microsockets.Socket) -> list[str]:
    """Join the room named by the payload; the ack lists this connection's rooms."""
    await ws.join(ws.payload)
    return sorted(ws.rooms - {ws.id})


@app.on("rooms")
async def rooms(ws: microsockets.Socket) -> list[str]:
    """The rooms this connection is in, its own room left out."""
    return sorted(ws.rooms - {ws.id})


@app.on("shout")
async def shout(ws: microsockets.Socket) -> None:
    """`{"room": ..., "text": ...}`: a `shout` event to everyone in the room, sender included."""
    await ws.broadcast("shout", ws.payload["text"], to=[ws.payload["room"]], skip_self=False)


@app.on("close me")
async def close_me(ws: microsockets.Socket) -> None:
    """Close this connection with the code in the payload."""
    await ws.close(ws.payload, "asked to")


if __name__ == "__main__":
    # A client may reconnect while the server shuts down; the grace period bounds how long
    # uvicorn waits for such late connections before closing them.
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(os.environ["PORT"]),
        log_level="warning",
        timeout_graceful_shutdown=3,
    )
