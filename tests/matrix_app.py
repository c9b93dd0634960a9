"""The app tests/test_servers.py serves on uvicorn, hypercorn, granian and daphne (`module:app`).

It reports what it saw through the file named by MS_REPORT, one line per event, so the test
can count after the server exits.
"""

from __future__ import annotations

import os

import microsockets

REPORT = os.environ.get("MS_REPORT", "")


def _report(line: str) -> None:
    if REPORT:
        with open(REPORT, "a") as file:
            file.write(line + "\n")


app = microsockets.Application(max_message_size=64 * 1024, max_bad_frames=3)


@app.hooks.on_connect
async def admit(ws: microsockets.Connection) -> None:
    if ws.query_params.get("token") == "bad":
        raise microsockets.Reject("bad token", 403)
    if isinstance(ws, microsockets.Socket):
        await ws.join("own")
        await ws.emit("welcome", ws.id)


@app.on("echo")
async def echo(ws: microsockets.Socket) -> object:
    return ws.payload


@app.on("members")
async def members(ws: microsockets.Socket) -> list[str]:
    return sorted(await app.room_manager.members(str(ws.payload)))


@app.on("to own")
async def to_own(ws: microsockets.Socket) -> None:
    await app.broadcast("own said", ws.payload, to="own")


@app.websocket("/raw/{name}")
async def raw(ws: microsockets.RawSocket) -> None:
    await ws.accept()
    await ws.send_text(f"hello {ws.path_params['name']}")
    async for message in ws:
        await ws.send_text(f"echo {message!r}")
    _report(f"raw ended {ws.close_code}")


@app.hooks.on_disconnect
async def gone(ws: microsockets.Socket) -> None:
    _report(f"disconnect {ws.close_code}")
