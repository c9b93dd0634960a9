"""The microsockets chat example: join a room with a name, talk, see who comes, goes and is here.

    python example.py          # http://127.0.0.1:8000 (set PORT to change the port)
    uvicorn example:app --ws-max-size 65536   # the same app (the size: max_message_size)
    REDIS_URL=redis://127.0.0.1:6379/0 PORT=8001 python example.py   # one of several processes

Who is in a room comes from presence (docs/presence.md), so with REDIS_URL set any number of
processes serve one chat: each tab lists everyone, wherever it is connected. Recovery is on:
a tab that loses its connection for up to 30 s gets the same session back, with the
messages it missed (across a restart too, with Redis).

It also serves example.html and the client's browser build (js-client/dist, built by `make js`),
so a browser needs nothing else. example.html works from disk (file://) too, against this server.
Its handlers are typed (docs/typing.md), which takes msgspec: pip install 'microsockets[msgspec]'.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypedDict
from urllib.parse import urlsplit

import uvicorn

import microsockets
from microsockets.rooms import BaseRoomManager
from microsockets.types import Receive, Scope, Send

HERE = Path(__file__).resolve().parent
MAX_NAME = 32
MAX_TEXT = 500

# The only files served over HTTP: path -> (file, content type).
FILES = {
    "/": (HERE / "example.html", "text/html; charset=utf-8"),
    "/example.html": (HERE / "example.html", "text/html; charset=utf-8"),
    "/js-client/dist/microsockets.global.js": (
        HERE / "js-client" / "dist" / "microsockets.global.js",
        "text/javascript; charset=utf-8",
    ),
}


async def static_files(scope: Scope, receive: Receive, send: Send) -> None:
    """A tiny ASGI app serving exactly FILES (read on each request, so a rebuild shows at once)."""
    entry = FILES.get(scope["path"])
    headers = [(b"cache-control", b"no-cache")]
    if scope["method"] not in ("GET", "HEAD"):
        status, body, content_type = 405, b"method not allowed\n", "text/plain; charset=utf-8"
        headers.append((b"allow", b"GET, HEAD"))
    elif entry is None or not entry[0].is_file():
        hint = " (run `make js` to build the client)" if entry else ""
        status, body, content_type = 404, f"not found{hint}\n".encode(), "text/plain; charset=utf-8"
    else:
        status, body, content_type = 200, entry[0].read_bytes(), entry[1]
    headers += [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})


def local_origin(origin: str) -> bool:
    """Accept pages from this machine only, and pages opened from disk.

    A page opened from a file sends `Origin: null`. The example accepts it so that example.html
    works straight from disk, but a production app would not: every sandboxed iframe and every
    local file sends `null` too, so accepting it lets any such page connect with the user's
    cookies. A real app lists its own site, e.g. allowed_origins=["https://chat.example.com"].
    """
    if origin == "null":
        return True
    try:
        parts = urlsplit(origin)
    except ValueError:  # `http://[` and the like: not a page of this machine
        return False
    return parts.scheme in ("http", "https") and parts.hostname in ("127.0.0.1", "localhost", "::1")


class JoinRequest(TypedDict):
    """Enter a room under a name."""

    room: str
    user: str


class Say(TypedDict):
    text: str


class _Answer(TypedDict):
    ok: bool


class Answer(_Answer, total=False):
    """The reply to join, message and leave: ok, or why not."""

    error: str
    room: str
    members: list[str]


class Joined(TypedDict):
    room: str
    user: str
    members: list[str]


class Said(TypedDict):
    user: str
    text: str


def room_manager() -> BaseRoomManager | None:
    """Rooms in Redis when REDIS_URL is set (several processes, one chat), else in memory."""
    url = os.environ.get("REDIS_URL")
    if not url:
        return None
    from microsockets.rooms.redis import RedisRoomManager

    return RedisRoomManager(url, node_ttl=float(os.environ.get("NODE_TTL", "15")))


app = microsockets.Application(
    allowed_origins=local_origin,
    http_app=static_files,
    room_manager=room_manager(),
    recovery_window=30,
)
app.event("joined", Joined)
app.event("message", Said)


async def members_of(room: str) -> list[str]:
    """The names of the people in `room` on every process, sorted (from its presence)."""
    return sorted(str(meta["user"]) for meta in (await app.presence(room)).values())


def clean(value: Any, limit: int) -> str:
    """A trimmed string of at most `limit` characters; "" for anything that is not a string."""
    return value.strip()[:limit] if isinstance(value, str) else ""


@app.on("join")
async def join(ws: microsockets.Socket, data: JoinRequest) -> Answer:
    """Enter the room (leaving the previous one) under that name."""
    room, user = clean(data["room"], MAX_NAME), clean(data["user"], MAX_NAME)
    if not room or not user:
        return {"ok": False, "error": "a name and a room are needed"}
    await leave_room(ws)
    ws.state.room, ws.state.user = room, user
    # Visible in the room's presence: everyone there gets a diff (batched), the page lists names.
    await ws.join(room, presence={"user": user})
    members = await members_of(room)
    await ws.emit("joined", {"room": room, "user": user, "members": members})
    return {"ok": True, "room": room, "members": members}


@app.on("message")
async def message(ws: microsockets.Socket, data: Say) -> Answer:
    """Say something to everyone in the room, the sender included."""
    room = getattr(ws.state, "room", None)
    text = clean(data["text"], MAX_TEXT)
    if room is None:
        return {"ok": False, "error": "join a room first"}
    if not text:
        return {"ok": False, "error": "empty message"}
    await ws.broadcast("message", {"user": ws.state.user, "text": text}, to=[room], skip_self=False)
    return {"ok": True}


@app.on("leave")
async def leave(ws: microsockets.Socket) -> Answer:
    """Leave the current room."""
    await leave_room(ws)
    return {"ok": True}


async def leave_room(ws: microsockets.Socket) -> None:
    """Leave the room this connection is in, if any: its presence tells the others."""
    room = getattr(ws.state, "room", None)
    if room is None:
        return
    del ws.state.room
    await ws.leave(room)


def main() -> None:
    """Serve the example on 127.0.0.1 (PORT, 8000 by default) until Ctrl+C."""
    port = int(os.environ.get("PORT", "8000"))
    print(f"microsockets chat on http://127.0.0.1:{port}/ (open it in several tabs)", flush=True)
    # Open tabs reconnect at once when the server says goodbye; the grace period bounds how long
    # Ctrl+C waits for such connections before closing them.
    # ws_max_size: uvicorn stops inflating a message at the app's limit, not at its own 16 MiB.
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        timeout_graceful_shutdown=3,
        ws_max_size=app.protocol.max_message_size,
    )


if __name__ == "__main__":
    main()
