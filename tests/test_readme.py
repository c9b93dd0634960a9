"""The README's example, exactly as users write it, in-process and over a real socket."""

from __future__ import annotations

import json

import websockets

import microsockets
from microsockets.testing import TestClient

from .conftest import serve


def make_app() -> microsockets.Application:
    app = microsockets.Application()

    @app.on("join")
    async def join(ws):
        await ws.join(ws.payload["room"])
        await ws.emit("joined")
        await ws.broadcast("user joined", {"user": ws.payload["user"]}, to=[ws.payload["room"]])

    return app


def make_seed_app() -> microsockets.Application:
    """The 1.0.0 style: the client sends JSON.stringify(...) and a hook decodes it."""
    app = microsockets.Application()

    @app.on("join")
    async def handle(ws):
        room, user = ws.payload["room"], ws.payload["user"]
        await ws.join(room)
        await ws.emit("joined")
        await ws.broadcast("user joined", json.dumps(dict(user=user)), to=[room])

    @app.hooks.before_on
    async def load_payload(ws, func):
        ws.payload = json.loads(ws.payload)
        await func(ws)

    return app


async def test_join_in_process():
    async with TestClient(make_app()) as client:
        async with client.connect() as ann, client.connect() as bob:
            await ann.send("join", {"room": "gamers", "user": "ann"})
            assert await ann.receive() == ("joined", "")
            await bob.send("join", {"room": "gamers", "user": "bob"})
            assert await bob.receive() == ("joined", "")
            assert await ann.receive() == ("user joined", {"user": "bob"})


async def test_seed_example_over_uvicorn():
    async with serve(make_seed_app()) as url:
        async with websockets.connect(url) as ann, websockets.connect(url) as bob:
            for ws, user in ((ann, "ann"), (bob, "bob")):
                payload = json.dumps({"room": "gamers", "user": user})
                await ws.send(json.dumps({"event": "join", "payload": payload}))
                assert json.loads(await ws.recv()) == {"event": "joined", "payload": ""}
            frame = json.loads(await ann.recv())
            assert frame["event"] == "user joined"
            assert json.loads(frame["payload"]) == {"user": "bob"}
