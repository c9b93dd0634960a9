"""Session recovery on one process: resume with the same id and rooms, the missed frames
exactly once and in order; credentials that are secret and single-use; readable refusals."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any
from urllib.parse import urlencode

import pytest
import websockets

from microsockets import Application, Reject

from .conftest import serve
from .proxy import Proxy

pytest.register_assert_rewrite("tests.redis_server")
from tests.redis_server import eventually  # noqa: E402

pytestmark = pytest.mark.anyio

WAIT = 5.0


def recovering_app(window: float = 30.0, **options: Any) -> tuple[Application, list[str]]:
    app = Application(recovery_window=window, **options)
    ended: list[str] = []

    @app.on("join")
    async def join(ws: Any) -> None:
        await ws.join(ws.payload)

    @app.on("say")
    async def say(ws: Any) -> None:
        await app.broadcast("said", ws.payload, to="news")

    @app.hooks.on_disconnect
    async def gone(ws: Any) -> None:
        ended.append(ws.id)

    return app, ended


async def session_of(client: Any) -> dict[str, Any]:
    frame = json.loads(await client.recv())
    assert frame["event"] == "ms:session"
    payload: dict[str, Any] = frame["payload"]
    return payload


def resume_url(url: str, session: dict[str, Any], offset: str) -> str:
    query = {"ms_v": "2", "ms_id": session["id"], "ms_token": session["token"]}
    return f"{url}/?{urlencode({**query, 'ms_offset': offset})}"


async def test_a_cut_client_resumes_with_its_id_rooms_and_every_missed_frame() -> None:
    app, ended = recovering_app()
    async with serve(app) as url:
        host, port = url.removeprefix("ws://").split(":")
        proxy = Proxy((host, int(port)))
        via = f"ws://127.0.0.1:{await proxy.start()}"
        client = await websockets.connect(f"{via}/?ms_v=2")
        first = await session_of(client)
        assert first["recovered"] is False
        assert len(first["token"]) >= 40
        await client.send(json.dumps({"event": "join", "payload": "news", "id": 1}))
        await client.recv()  # the ack: it is in the room
        received: list[int] = []
        offset = ""
        for number in range(5):
            await app.broadcast("n", number, to="news")
            frame = json.loads(await client.recv())
            received.append(frame["payload"])
            offset = frame["o"]
        proxy.cut()
        for number in range(5, 25):
            await app.broadcast("n", number, to="news")
        await app.broadcast("n", -1, to="elsewhere")  # not its room: not replayed
        proxy.restore()
        again = await websockets.connect(resume_url(via, first, offset))
        second = await session_of(again)
        assert second["recovered"] is True
        assert second["id"] == first["id"]
        assert second["token"] != first["token"]
        await app.broadcast("n", 25, to="news")
        while len(received) < 26:
            received.append(json.loads(await again.recv())["payload"])
        assert received == list(range(26))
        assert ended == []
        await again.close()
        await eventually(lambda: ended, WAIT)
        assert ended == [first["id"]]  # once, at the clean close
        await proxy.stop()


async def test_a_spent_guessed_or_foreign_token_starts_a_new_session() -> None:
    app, _ended = recovering_app()
    async with serve(app) as url:
        alice = await websockets.connect(f"{url}/?ms_v=2")
        bob = await websockets.connect(f"{url}/?ms_v=2")
        a, b = await session_of(alice), await session_of(bob)
        alice.transport.abort()
        bob.transport.abort()
        await eventually(lambda: not app.connections, WAIT)  # both sessions wait, detached
        attempts = [
            {**a, "token": "x" * 43},  # guessed
            {**a, "token": b["token"]},  # another client's token with alice's id
            {**b, "id": a["id"]},
        ]
        for attempt in attempts:
            client = await websockets.connect(resume_url(url, attempt, ""))
            outcome = await session_of(client)
            assert outcome["recovered"] is False
            assert outcome["id"] not in (a["id"], b["id"])
            await client.close()
        resumed = await websockets.connect(resume_url(url, a, ""))
        assert (await session_of(resumed))["recovered"] is True
        reused = await websockets.connect(resume_url(url, a, ""))  # the same token again
        assert (await session_of(reused))["recovered"] is False
        await resumed.close()
        await reused.close()


async def test_past_the_history_bound_the_session_is_not_recovered_and_ends() -> None:
    app, ended = recovering_app(recovery_max_messages=10)
    async with serve(app) as url:
        client = await websockets.connect(f"{url}/?ms_v=2")
        first = await session_of(client)
        await client.send(json.dumps({"event": "join", "payload": "news", "id": 1}))
        await client.recv()
        client.transport.abort()
        await eventually(lambda: not app.connections, WAIT)
        for number in range(11):
            await app.broadcast("n", number, to="news")
        again = await websockets.connect(resume_url(url, first, ""))
        second = await session_of(again)
        assert second["recovered"] is False
        assert second["id"] != first["id"]
        await eventually(lambda: ended, WAIT)
        assert ended == [first["id"]]
        await again.close()


async def test_past_the_window_the_session_ends_once() -> None:
    app, ended = recovering_app(window=0.2)
    async with serve(app) as url:
        client = await websockets.connect(f"{url}/?ms_v=2")
        first = await session_of(client)
        client.transport.abort()
        await eventually(lambda: ended, WAIT)
        assert ended == [first["id"]]
        again = await websockets.connect(resume_url(url, first, ""))
        assert (await session_of(again))["recovered"] is False
        await again.close()


async def test_on_connect_sees_resumed_and_a_refusal_is_a_readable_close_code() -> None:
    app, _ended = recovering_app()
    seen: list[bool] = []

    @app.hooks.on_connect
    async def auth(ws: Any) -> None:
        seen.append(ws.resumed)
        if ws.query_params.get("ticket") == "bad":
            raise Reject("ticket spent: get a new one", 401)

    async with serve(app) as url:
        client = await websockets.connect(f"{url}/?ms_v=2")
        first = await session_of(client)
        client.transport.abort()
        await eventually(lambda: not app.connections, WAIT)
        refused = await websockets.connect(resume_url(url, first, "") + "&ticket=bad")
        with pytest.raises(websockets.ConnectionClosed) as caught:
            await refused.recv()
        assert caught.value.rcvd is not None
        assert (caught.value.rcvd.code, caught.value.rcvd.reason) == (
            4401,
            "ticket spent: get a new one",
        )
        again = await websockets.connect(resume_url(url, first, ""))  # a refusal spends nothing
        assert (await session_of(again))["recovered"] is True
        assert seen == [False, True, True]
        with pytest.raises(websockets.InvalidStatus):  # without ms_v=2: the HTTP status
            await websockets.connect(f"{url}/?ticket=bad")
        await again.close()


pytest_plugins = ["tests.redis_server"]


async def test_with_redis_a_session_lost_on_one_process_resumes_on_another(
    redis_server: Any, prefix: str
) -> None:
    from microsockets.rooms.redis import RedisRoomManager

    def node() -> tuple[Application, list[str]]:
        manager = RedisRoomManager(redis_server.url, channel_prefix=prefix)
        return recovering_app(room_manager=manager)

    (first_app, ended), (second_app, _) = node(), node()
    async with serve(first_app) as first_url, serve(second_app) as second_url:
        client = await websockets.connect(f"{first_url}/?ms_v=2")
        first = await session_of(client)
        await client.send(json.dumps({"event": "join", "payload": "news", "id": 1}))
        await client.recv()
        received: list[int] = []
        offset = ""
        for number in range(3):
            await second_app.broadcast("n", number, to="news")
            frame = json.loads(await client.recv())
            received.append(frame["payload"])
            offset = frame["o"]
        client.transport.abort()
        await eventually(lambda: not first_app.connections, WAIT)
        for number in range(3, 10):
            await second_app.broadcast("n", number, to="news")
        again = await websockets.connect(resume_url(second_url, first, offset))
        second = await session_of(again)
        assert second["recovered"] is True
        assert second["id"] == first["id"]
        await first_app.broadcast("n", 10, to="news")
        while len(received) < 11:
            received.append(json.loads(await again.recv())["payload"])
        assert received == list(range(11))
        await again.close()
    assert ended == []  # the first process saw it resumed elsewhere: no on_disconnect there


async def test_a_recovered_session_keeps_its_presence_and_nobody_sees_it_leave() -> None:
    """Presence means connected now, but a session waiting to be resumed keeps its entry for
    the presence grace (docs/presence.md): the others see no leave and no join."""
    app, _ended = recovering_app()

    @app.on("show")
    async def show(ws: Any) -> None:
        await ws.join("lobby", presence={"user": ws.payload})

    async def presence_frames(client: Any, seconds: float) -> list[dict[str, Any]]:
        found = []
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                while True:
                    frame = json.loads(await client.recv())
                    if frame["event"].startswith("ms:presence"):
                        found.append(frame)
        return found

    async with serve(app) as url:
        host, port = url.removeprefix("ws://").split(":")
        proxy = Proxy((host, int(port)))
        via = f"ws://127.0.0.1:{await proxy.start()}"
        watcher = await websockets.connect(f"{url}/?ms_v=2")
        await session_of(watcher)
        await watcher.send(json.dumps({"event": "show", "payload": "ann", "id": 1}))
        client = await websockets.connect(f"{via}/?ms_v=2")
        first = await session_of(client)
        await client.send(json.dumps({"event": "show", "payload": "bob", "id": 1}))
        await presence_frames(watcher, 0.5)  # ann's state, then bob's join
        assert await app.presence("lobby") == {
            first["id"]: {"user": "bob"},
            **{ws.id: {"user": "ann"} for ws in app.sockets() if ws.id != first["id"]},
        }
        proxy.cut()
        await eventually(lambda: len(app.connections) == 1, WAIT)  # the cut session waits, detached
        proxy.restore()
        again = await websockets.connect(resume_url(via, first, ""))
        assert (await session_of(again))["recovered"] is True
        assert await presence_frames(watcher, 0.5) == []  # no leave, no join
        assert first["id"] in await app.presence("lobby")
        for socket in (watcher, again):
            await socket.close()
        await proxy.stop()
