"""The server of the recovery tests: recovery on, a publisher of numbered messages, single-use
tickets, and counters the tests read (handshakes seen, sessions ended).

Run by test/python-server.ts as `python recovery_app.py` with PORT set; RECOVERY_WINDOW and
RECOVERY_MAX_MESSAGES tune recovery; with REDIS_URL set it uses RedisRoomManager there.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import uvicorn

import microsockets
from microsockets.rooms.redis import RedisRoomManager

redis_url = os.environ.get("REDIS_URL")
app = microsockets.Application(
    room_manager=None if redis_url is None else RedisRoomManager(redis_url),
    recovery_window=float(os.environ.get("RECOVERY_WINDOW", "30")),
    recovery_max_messages=int(os.environ.get("RECOVERY_MAX_MESSAGES", "1000")),
)
handshakes: list[dict[str, Any]] = []
ended: list[str] = []
spent: set[str] = set()
publishers: set[asyncio.Task[None]] = set()


@app.hooks.on_connect
async def check_ticket(ws: microsockets.Socket) -> None:
    """A `ticket` is single use, and "bad" never works; connections without one are let in."""
    ticket = ws.query_params.get("ticket")
    handshakes.append({"ticket": ticket, "resumed": ws.resumed})
    if ticket is None:
        return
    if ticket == "bad" or ticket in spent:
        raise microsockets.Reject("ticket spent or invalid: get a new one", 401)
    spent.add(ticket)


@app.hooks.on_disconnect
async def record_end(ws: microsockets.Socket) -> None:
    ended.append(ws.id)


@app.on("join")
async def join(ws: microsockets.Socket) -> list[str]:
    await ws.join(ws.payload)
    return sorted(ws.rooms - {ws.id})


@app.on("whoami")
async def whoami(ws: microsockets.Socket) -> dict[str, Any]:
    return {"id": ws.id, "rooms": sorted(ws.rooms - {ws.id}), "resumed": ws.resumed}


@app.on("publish")
async def publish(ws: microsockets.Socket) -> None:
    """`{"room", "count", "every"}`: broadcast `n` 0..count-1 to the room, one each `every` ms."""
    room, count, every = ws.payload["room"], ws.payload["count"], ws.payload["every"] / 1000

    async def run() -> None:
        for number in range(count):
            await app.broadcast("n", number, to=room)
            await asyncio.sleep(every)

    task = asyncio.get_running_loop().create_task(run())
    publishers.add(task)
    task.add_done_callback(publishers.discard)


@app.on("stats")
async def stats(ws: microsockets.Socket) -> dict[str, Any]:
    return {"handshakes": handshakes, "ended": ended, "pid": os.getpid()}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ["PORT"]), log_level="warning")
