"""Presence through a real application: join with metadata, update, leave, the size limit,
on_connect joins, counts-only rooms. The managers' contract is in test_rooms_contract.py."""

from __future__ import annotations

from typing import Any

import pytest

import microsockets
from microsockets.testing import ErrorReply, TestClient


def presence_app(**options: Any) -> microsockets.Application:
    app = microsockets.Application(**options)

    @app.on("join")
    async def join(ws: microsockets.Socket) -> str:
        await ws.join(ws.payload["room"], presence=ws.payload.get("meta"))
        return ws.id

    @app.on("update")
    async def update(ws: microsockets.Socket) -> None:
        await ws.update_presence(ws.payload["room"], ws.payload["meta"])

    @app.on("leave")
    async def leave(ws: microsockets.Socket) -> None:
        await ws.leave(ws.payload)

    return app


async def next_presence(ws: Any) -> tuple[str, Any]:
    while True:
        event, payload = await ws.receive()
        if event.startswith("ms:presence"):
            return event, payload


async def test_join_update_leave_and_disconnect_through_an_app():
    app = presence_app()
    async with TestClient(app) as client:
        async with client.connect() as ann, client.connect() as bob, client.connect() as eve:
            ann_id = await ann.request("join", {"room": "r", "meta": {"user": "ann"}})
            assert await next_presence(ann) == (
                "ms:presence_state",
                {"room": "r", "joins": {ann_id: {"user": "ann"}}, "leaves": {}},
            )
            await eve.request("join", {"room": "r"})  # plain: unseen, sees nothing
            bob_id = await bob.request("join", {"room": "r", "meta": {"user": "bob"}})
            event, state = await next_presence(bob)
            assert event == "ms:presence_state"
            assert state["joins"] == {ann_id: {"user": "ann"}, bob_id: {"user": "bob"}}
            while (await next_presence(ann))[1]["joins"].get(bob_id) is None:
                pass
            assert await app.presence("r") == {ann_id: {"user": "ann"}, bob_id: {"user": "bob"}}
            assert app.sockets()[1].presence == {"r": '{"user":"bob"}'}

            await bob.request("update", {"room": "r", "meta": {"user": "bobby"}})
            assert await next_presence(ann) == (
                "ms:presence",
                {"room": "r", "joins": {bob_id: {"user": "bobby"}}, "leaves": {}},
            )
            await bob.request("leave", "r")
            assert await next_presence(ann) == (
                "ms:presence",
                {"room": "r", "joins": {}, "leaves": {bob_id: {"user": "bobby"}}},
            )
            with pytest.raises(ErrorReply) as refused:  # a ValueError in the handler
                await bob.request("update", {"room": "r", "meta": 1})
            assert refused.value.code == "handler_error"
            await bob.request("join", {"room": "r", "meta": {"user": "bob"}})
            await bob.close()
            while not (await next_presence(ann))[1]["leaves"]:
                pass
            assert await app.presence("r") == {ann_id: {"user": "ann"}}
            await eve.send("ms:ping")
            assert await eve.receive() == ("ms:pong", "")  # eve got no presence frame
        assert await app.presence("r") == {}


async def test_metadata_past_max_presence_size_is_refused():
    app = presence_app(max_presence_size=20)
    async with TestClient(app) as client, client.connect() as ann:
        with pytest.raises(ErrorReply) as refused:
            await ann.request("join", {"room": "r", "meta": {"user": "x" * 20}})
        assert refused.value.code == "presence_too_large"
        assert await app.presence("r") == {}
        assert app.sockets()[0].rooms == {app.sockets()[0].id}  # refused before joining


async def test_a_join_with_presence_in_on_connect_counts_once_connected():
    app = presence_app()

    @app.hooks.on_connect
    async def lobby(ws: microsockets.Socket) -> None:
        await ws.join("lobby", presence={"user": ws.query_params.get("user", "")})

    async with TestClient(app) as client, client.connect("/?user=ann") as ann:
        event, state = await next_presence(ann)
        assert event == "ms:presence_state"
        assert list(state["joins"].values()) == [{"user": "ann"}]
        assert list((await app.presence("lobby")).values()) == [{"user": "ann"}]


async def test_counts_only_rooms_send_counts():
    app = presence_app(presence_counts=lambda room: room == "stage")
    async with TestClient(app) as client, client.connect() as ann, client.connect() as bob:
        await ann.request("join", {"room": "stage", "meta": {"user": "ann"}})
        assert await next_presence(ann) == ("ms:presence_state", {"room": "stage", "count": 1})
        await bob.request("join", {"room": "stage", "meta": {"user": "bob"}})
        assert await next_presence(bob) == ("ms:presence_state", {"room": "stage", "count": 2})
        while (await next_presence(ann))[1] != {"room": "stage", "count": 2}:
            pass
        assert len(await app.presence("stage")) == 2
