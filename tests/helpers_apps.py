"""Apps that tests serve in a uvicorn subprocess (`python -m uvicorn tests.helpers_apps:...`).

A subprocess is needed when the test sends signals, or when the server needs its own file
descriptors (10,000 connections). The app reports what it saw through the file named by the
environment variable MS_REPORT, one line per event, so the test can count after exit.
"""

from __future__ import annotations

import asyncio
import gc
import os
import resource
import sys
import tracemalloc
from pathlib import Path

import microsockets

REPORT = os.environ.get("MS_REPORT", "")
if os.environ.get("MS_TRACEMALLOC"):
    tracemalloc.start()


def _report(line: str) -> None:
    if REPORT:
        with open(REPORT, "a") as file:
            file.write(line + "\n")


def _rss() -> int:
    """This process's resident memory now, in bytes (Linux)."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * resource.getpagesize()


def make_app() -> microsockets.Application:
    app = microsockets.Application(max_connections=None)

    @app.on("join")
    async def join(ws: microsockets.Socket) -> str:
        await ws.join(str(ws.payload))
        return "ok"

    @app.on("leave")
    async def leave(ws: microsockets.Socket) -> str:
        await ws.leave(str(ws.payload))
        return "ok"

    @app.on("say")
    async def say(ws: microsockets.Socket) -> None:
        await ws.broadcast("said", ws.payload, to=["lobby"], skip_self=False)

    @app.on("say to")
    async def say_to(ws: microsockets.Socket) -> None:
        room, text = ws.payload["room"], ws.payload["text"]  # type: ignore[index]
        await ws.broadcast("said", text, to=[room])

    @app.on("stats")
    async def stats(ws: microsockets.Socket) -> dict[str, int]:
        members = await app.room_manager.members("lobby")
        return {"connections": len(app.connections), "lobby": len(members)}

    @app.on("index")
    async def index(ws: microsockets.Socket) -> dict[str, int]:
        """The room index and the memory figures, after a full garbage collection."""
        gc.collect()
        index = app.room_manager.index  # type: ignore[attr-defined]
        traced = tracemalloc.get_traced_memory()[0] if tracemalloc.is_tracing() else -1
        rss = _rss()
        return {
            "connections": len(app.connections),
            "sockets": len(app.sockets()),
            "rooms": index.room_count,
            "memberships": index.connection_count,
            "tasks": len(asyncio.all_tasks()),
            "traced": traced,
            "blocks": sys.getallocatedblocks(),
            "rss": rss,
        }

    @app.on("small blocks")
    async def small_blocks(ws: microsockets.Socket) -> int:
        """Traced bytes in blocks under 64 KiB, after a full collection. The larger blocks are
        the tables of the dicts and sets that held 10,000 entries; how big a table stays after
        churn depends on how many deleted slots it held at its last resize (up to 1 MiB)."""
        gc.collect()
        traces = tracemalloc.take_snapshot().traces
        return sum(trace.size for trace in traces if trace.size < 64 * 1024)

    @app.hooks.on_startup
    async def started() -> None:
        _report("startup")

    @app.hooks.on_disconnect
    async def gone(ws: microsockets.Socket) -> None:
        _report(f"disconnect {ws.close_code}")

    @app.hooks.on_shutdown
    async def stopped() -> None:
        _report(f"shutdown {len(app.connections)}")

    return app


app = make_app()
