"""Abuse limits over a real uvicorn: each one's default, what a client gets past it, and that
honest heavy use stays below every default (docs/security.md has the table)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import websockets

import microsockets

from .conftest import serve
from .helpers_ws import RawClient
from .test_faults import closed_with, error_code, make_app, recv_json, request, wait_until


def test_documented_defaults():
    app = microsockets.Application()
    assert app.protocol.max_message_size == 64 * 1024
    assert app.protocol.max_event_length == 256
    assert app.limits.max_bad_frames == 10
    assert app.limits.send_queue_limit == 1024 * 1024
    assert app.limits.max_rooms_per_connection == 1000
    assert app.limits.max_connections == 20_000
    assert app.limits.rate_limit == 10_000
    assert app.limits.rate_burst == 10_000
    assert app.limits.handler_timeout == 60


# Rate limit.


async def test_excess_over_the_rate_limit_gets_rate_limited_replies_then_tokens_refill():
    app = make_app(rate_limit=5, rate_burst=5, max_bad_frames=1000)
    async with serve(app) as url, websockets.connect(url) as ws:
        for ack_id in range(1, 21):  # far faster than 5 a second
            await ws.send(json.dumps({"event": "echo", "payload": ack_id, "id": ack_id}))
        replies = [await recv_json(ws) for _ in range(20)]
        acked = [r["id"] for r in replies if r["event"] == "ms:ack"]
        limited = [r for r in replies if r["event"] == "ms:error"]
        assert {error_code(r) for r in limited} == {"rate_limited"}
        assert acked[:5] == [1, 2, 3, 4, 5]  # the burst
        assert len(limited) >= 5
        assert all("id" not in r for r in limited)  # refused before decoding: no id to answer
        assert len(acked) + len(limited) == 20  # every frame got its answer
        await asyncio.sleep(0.5)  # two tokens' worth
        assert (await request(ws, "echo", "later", ack_id=99))["payload"] == "later"


async def test_byte_rate_limit_refuses_frames_past_its_budget_before_decoding():
    app = make_app(byte_rate_limit=1000, max_bad_frames=1000)  # a second's worth at once
    async with serve(app) as url, websockets.connect(url) as ws:
        for ack_id in (1, 2):  # 630 characters each: the second one goes into debt
            await ws.send(json.dumps({"event": "echo", "payload": "x" * 600, "id": ack_id}))
        await ws.send("not json")
        replies = [await recv_json(ws) for _ in range(3)]
        assert [r.get("id") for r in replies[:2]] == [1, 2]
        assert error_code(replies[2]) == "rate_limited"  # not invalid_json: refused unread
        assert "id" not in replies[2]


async def test_persistent_excess_closes_1008():
    app = make_app(rate_limit=1, rate_burst=10)  # max_bad_frames: default 10
    async with serve(app) as url, websockets.connect(url) as ws:
        for _ in range(40):
            await ws.send(json.dumps({"event": "echo"}))
        assert await closed_with(ws) == 1008


async def test_default_rate_limit_lets_a_heavy_honest_publisher_through():
    """One client publishing 4,000 messages a second for 2.5 s: never limited by default."""
    app = make_app()
    received: list[int] = []

    @app.on("publish")
    async def publish(ws):
        received.append(ws.payload)

    per_second, seconds, batch = 4000, 2.5, 200
    total = int(per_second * seconds)
    loop = asyncio.get_running_loop()
    async with serve(app) as url, websockets.connect(url) as ws:
        start = loop.time()
        for n in range(total):
            await ws.send(json.dumps({"event": "publish", "payload": n}))
            if n % batch == batch - 1:  # pace to at most per_second on average
                ahead = start + (n + 1) / per_second - loop.time()
                if ahead > 0:
                    await asyncio.sleep(ahead)
        reply = await request(ws, "echo", "done", ack_id=1)
        assert reply["event"] == "ms:ack"  # not an error reply: nothing was rate limited
        assert received == list(range(total))


# Rooms per connection.


async def test_max_rooms_per_connection():
    app = make_app(max_rooms_per_connection=3)

    @app.on("leave")
    async def leave(ws):
        await ws.leave(ws.payload)
        return "left"

    async with serve(app) as url, websockets.connect(url) as ws:
        for n, room in enumerate(["a", "b", "c"], 1):
            assert (await request(ws, "join", room, ack_id=n))["payload"] == "joined"
        reply = await request(ws, "join", "d", ack_id=4)
        assert error_code(reply) == "too_many_rooms"
        assert reply["id"] == 4
        assert (await request(ws, "join", "a", ack_id=5))["payload"] == "joined"  # already in
        assert (await request(ws, "leave", "a", ack_id=6))["payload"] == "left"
        assert (await request(ws, "join", "d", ack_id=7))["payload"] == "joined"
        (sock,) = app.sockets()
        assert sock.rooms == {sock.id, "b", "c", "d"}
        assert await app.room_manager.members("d") == {sock.id}


# Connections per process.


async def test_max_connections_refuses_the_handshake_with_503():
    app = make_app(max_connections=3)
    async with serve(app) as url:
        clients = [await websockets.connect(url) for _ in range(3)]
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(url)
        assert refused.value.response.status_code == 503
        assert b"max_connections" in refused.value.response.body
        await clients.pop().close()
        await wait_until(lambda: len(app.connections) == 2)
        clients.append(await websockets.connect(url))  # room again
        assert (await request(clients[-1], "echo", "in"))["payload"] == "in"
        for ws in clients:
            await ws.close()


# Event names.


async def test_max_event_length():
    app = make_app(max_event_length=16)

    @app.on("e" * 16)
    async def longest(ws):
        return "ok"

    async with serve(app) as url, websockets.connect(url) as ws:
        assert (await request(ws, "e" * 16))["payload"] == "ok"
        reply = await request(ws, "e" * 17, ack_id=2)
        assert error_code(reply) == "invalid_frame"
        assert "16 characters" in reply["payload"]["message"]
        assert (await request(ws, "e" * 16, ack_id=3))["payload"] == "ok"


# Handshake timeout.


async def _idle_connection_is_closed(raw: RawClient, wait: float) -> bool:
    try:
        data = await asyncio.wait_for(raw.loop.sock_recv(raw.sock, 1024), wait)
    except asyncio.TimeoutError:
        return False
    return data == b""


@pytest.mark.parametrize(
    "sent",
    [
        pytest.param(b"", id="nothing"),
        pytest.param(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n", id="half-a-request"),
    ],
)
async def test_clients_that_never_finish_the_handshake(sent: bytes, capsys: Any):
    """What uvicorn does with TCP clients that never complete the upgrade request.

    The app cannot act: ASGI only calls it once the request is complete. uvicorn's
    timeout_keep_alive starts after a response, so it does not cover this (docs/security.md
    says what to set in the proxy). What must hold: they cost the app nothing, honest
    clients get through, and shutdown is not held up by them.
    """
    app = make_app(max_connections=5)
    async with serve(app, timeout_keep_alive=1) as url:
        idle = [await RawClient.connect(url, handshake=False) for _ in range(50)]
        for raw in idle:
            if sent:
                await raw.send(sent)
        async with websockets.connect(url) as ws:
            assert (await request(ws, "echo", "through"))["payload"] == "through"
            assert len(app.connections) == 1  # the app never saw the idle ones
        closed = await _idle_connection_is_closed(idle[0], 2.0)
        with capsys.disabled():
            print(
                f"\nTCP client that sent {sent[:20]!r} and waited 2 s past "
                f"timeout_keep_alive=1: {'closed' if closed else 'still open'} by uvicorn"
            )
    for raw in idle:  # the server stopped (serve() returned): they are closed now
        assert await asyncio.wait_for(raw.at_eof(), 10)
        raw.close()
