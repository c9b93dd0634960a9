"""The server of tests/test_recovery_memory.py: recovery on, traced memory, figures on request.

Run as `python tests/recovery_soak_app.py PORT WINDOW`.
"""

from __future__ import annotations

import gc
import sys
import tracemalloc
from typing import Any

import uvicorn

import microsockets
from microsockets.recovery import MemorySessionStore

tracemalloc.start()
app = microsockets.Application(recovery_window=float(sys.argv[2]), max_connections=None)


@app.on("join")
async def join(ws: microsockets.Socket) -> None:
    await ws.join(ws.payload)


@app.on("fill")
async def fill(ws: microsockets.Socket) -> int:
    """Broadcast `payload` frames of about 60 bytes to a room of nobody: the log fills up."""
    for number in range(ws.payload):
        await app.broadcast("news", {"n": number, "text": "x" * 30}, to="nobody")
    return int(ws.payload)


@app.on("figures")
async def figures(ws: microsockets.Socket) -> dict[str, Any]:
    """Counts, and the traced bytes after a full collection when the payload is true."""
    if ws.payload:
        gc.collect()
    store = app.session.recovery
    assert isinstance(store, MemorySessionStore)
    return {
        "bytes": tracemalloc.get_traced_memory()[0],
        "connections": len(app.connections),
        "sessions": len(store.sessions),
        "detached": store.sessions.detached,
        "log": len(store.log),
    }


if __name__ == "__main__":
    uvicorn.run(
        app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", ws_ping_interval=None
    )
