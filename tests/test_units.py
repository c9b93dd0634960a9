"""Small pieces on their own: request views, path patterns, state errors, hook failures."""

from __future__ import annotations

import asyncio
import logging

import pytest

import microsockets
from microsockets.datastructures import QueryParams
from microsockets.paths import PathPattern
from microsockets.ratelimit import RateLimit
from microsockets.testing import HandshakeRejected, TestClient


def test_query_params_is_a_mapping_of_last_values():
    params = QueryParams("a=1&b=&a=2")
    assert (len(params), dict(params), params.getlist("a")) == (2, {"a": "2", "b": ""}, ["1", "2"])
    assert repr(params) == "QueryParams([('a', '1'), ('b', ''), ('a', '2')])"


def test_path_patterns():
    pattern = PathPattern("/rooms/{room}/users/{user}")
    assert pattern.match("/rooms/a/users/b") == {"room": "a", "user": "b"}
    assert pattern.match("/rooms/a/users/b/extra") is None
    assert repr(pattern) == "PathPattern('/rooms/{room}/users/{user}')"
    with pytest.raises(ValueError, match="starts with '/'"):
        PathPattern("rooms")


async def test_socket_argument_errors_and_no_ops():
    app = microsockets.Application()
    seen = []

    @app.on("try")
    async def attempt(ws):
        with pytest.raises(TypeError, match="room name is a string"):
            await ws.join(42)
        await ws.leave("never joined")
        await ws.leave(ws.id)
        await ws.broadcast("to generator", "x", to=(room for room in [ws.id]), skip_self=False)
        seen.append(repr(ws))

    async with TestClient(app) as client, client.connect("/p") as ws:
        await ws.request("try")
        assert await ws.receive() == ("to generator", "x")
    assert seen == ["<Socket '/p' connected>"]


async def test_emit_from_another_task_is_queued_in_order():
    app = microsockets.Application()
    sockets = []

    @app.on("hold")
    async def hold(ws):
        sockets.append(ws)

    async with TestClient(app) as client, client.connect() as ws:
        await ws.request("hold")
        await asyncio.gather(*(sockets[0].emit("n", n) for n in range(3)))
        assert [await ws.receive() for _ in range(3)] == [("n", 0), ("n", 1), ("n", 2)]


async def test_replies_and_the_handler_timeout_start_no_task_per_frame():
    app = microsockets.Application(handler_timeout=60)

    @app.on("echo")
    async def echo(ws):
        await ws.emit("echo", ws.payload)

    loop = asyncio.get_running_loop()
    started: list[str] = []

    def factory(loop, coro, **kwargs):
        started.append(coro.__qualname__)
        return asyncio.Task(coro, loop=loop, **kwargs)

    async with TestClient(app) as client, client.connect() as ws:
        loop.set_task_factory(factory)
        try:
            for n in range(50):
                await ws.send("echo", n)
                assert await ws.receive() == ("echo", n)
        finally:
            loop.set_task_factory(None)
    ours = [name for name in started if name.startswith(("Watchdog.", "Outbox."))]
    assert len(ours) <= 1


def test_rate_limit_allows_the_burst_then_the_rate():
    limit = RateLimit(rate=10, burst=3, now=100.0)
    assert [limit.allow(100.0) for _ in range(4)] == [True, True, True, False]
    assert limit.allow(100.05) is False
    assert limit.allow(100.1) is True
    assert [limit.allow(200.0) for _ in range(4)] == [True, True, True, False]


async def test_accept_and_reject_in_the_wrong_state():
    app = microsockets.Application()
    errors = []

    @app.websocket("/raw")
    async def raw(ws):
        with pytest.raises(microsockets.WebSocketStateError, match="was not offered"):
            await ws.accept(subprotocol="nope")
        await ws.accept()
        with pytest.raises(microsockets.WebSocketStateError, match="only possible before"):
            await ws.reject()
        errors.append(await ws.receive_bytes())

    async with TestClient(app) as client, client.connect("/raw") as ws:
        await ws.send_text("text, not bytes")
        assert await ws.wait_closed() == 1003
    assert errors == []


async def test_refusal_without_the_http_response_extension_closes_before_accept():
    app = microsockets.Application()
    sent = []
    incoming = asyncio.Queue()
    await incoming.put({"type": "websocket.connect"})

    async def send(message):
        sent.append(message)

    scope = {"type": "websocket", "path": "/", "headers": [(b"origin", b"http://evil.example")]}
    await app(scope, incoming.get, send)
    assert [m["type"] for m in sent] == ["websocket.close"]


async def test_a_failing_startup_hook_fails_the_lifespan(caplog):
    app = microsockets.Application()

    @app.hooks.on_startup
    async def broken():
        raise RuntimeError("no database")

    with (
        caplog.at_level(logging.ERROR, "microsockets"),
        pytest.raises(RuntimeError, match="no database"),
    ):
        async with TestClient(app):
            pass


async def test_a_failing_on_disconnect_hook_is_logged_and_the_others_run(caplog):
    app = microsockets.Application()
    ran = []

    @app.hooks.on_disconnect
    async def broken(ws):
        raise RuntimeError("hook bug")

    @app.hooks.on_disconnect
    async def fine(ws):
        ran.append(ws.id)

    async with TestClient(app) as client:
        with caplog.at_level(logging.ERROR, "microsockets"):
            async with client.connect():
                pass
    assert len(ran) == 1
    assert "hook bug" in caplog.text


async def test_shutting_down_refuses_new_handshakes_with_503():
    app = microsockets.Application()
    async with TestClient(app) as client:
        app._going_away()
        with pytest.raises(HandshakeRejected) as caught:
            async with client.connect():
                pass
    assert caught.value.status == 503


async def test_the_servers_signal_handler_runs_after_the_goodbye_was_answered():
    """uvicorn closes every WebSocket with 1012 once its handler ran: ExitSignals runs it only
    after the goodbye (on_exit's wait) is over, and a second signal cuts that wait short."""
    import os
    import signal

    from microsockets.lifespan import ExitSignals

    class UserSignals(ExitSignals):
        SIGNALS = (signal.SIGUSR1,)

    order: list[str] = []
    answered = asyncio.Event()

    def on_exit():
        order.append("goodbye")

        async def wait() -> None:
            await answered.wait()
            order.append("answered")

        return wait()

    original = signal.signal(signal.SIGUSR1, lambda signum, frame: order.append("server"))
    signals = UserSignals(on_exit)
    try:
        signals.install()
        os.kill(os.getpid(), signal.SIGUSR1)
        for _ in range(5):
            await asyncio.sleep(0.01)
        assert order == ["goodbye"]
        answered.set()
        for _ in range(5):
            await asyncio.sleep(0.01)
        assert order == ["goodbye", "answered", "server"]
        os.kill(os.getpid(), signal.SIGUSR1)  # later signals go straight to the server
        for _ in range(5):
            await asyncio.sleep(0.01)
        assert order == ["goodbye", "answered", "server", "server"]
    finally:
        signals.uninstall()
        signal.signal(signal.SIGUSR1, original)
