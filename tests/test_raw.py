"""Raw routes: handlers that own their connection, as in Starlette or MicroPie."""

from __future__ import annotations

import logging

import pytest
import websockets

import microsockets
from microsockets.testing import HandshakeRejected, TestClient

from .conftest import serve


def raw_app(**options) -> microsockets.Application:
    app = microsockets.Application(**options)

    @app.websocket("/echo/{name}")
    async def echo(ws):
        await ws.accept(subprotocol="echo" if "echo" in ws.subprotocols else None)
        await ws.send_text(f"hello {ws.path_params['name']}")
        async for message in ws:
            if isinstance(message, bytes):
                await ws.send_bytes(message[::-1])
            else:
                await ws.send_json({"echo": message})

    @app.websocket("/json")
    async def json_route(ws):
        await ws.accept(headers=[("x-route", "json")])
        await ws.send_json(await ws.receive_json())
        await ws.close(4001, "done")

    @app.websocket("/crash")
    async def crash(ws):
        await ws.accept()
        await ws.receive_text()
        raise RuntimeError("bug in a raw route")

    @app.websocket("/refuse")
    async def refuse(ws):
        await ws.close()

    return app


async def test_raw_route_over_uvicorn():
    async with serve(raw_app()) as url:
        async with websockets.connect(f"{url}/echo/ann", subprotocols=["echo"]) as ws:
            assert ws.subprotocol == "echo"
            assert await ws.recv() == "hello ann"
            await ws.send("hi")
            assert await ws.recv() == '{"echo":"hi"}'
            await ws.send(b"abc")
            assert await ws.recv() == b"cba"


async def test_raw_route_json_and_close_code():
    async with serve(raw_app()) as url:
        async with websockets.connect(f"{url}/json") as ws:
            assert ws.response.headers["x-route"] == "json"
            await ws.send('{"a": [1]}')
            assert await ws.recv() == '{"a":[1]}'
            with pytest.raises(websockets.ConnectionClosed):
                await ws.recv()
            assert (ws.close_code, ws.close_reason) == (4001, "done")


async def test_invalid_json_on_a_raw_route_closes_with_1007():
    async with TestClient(raw_app()) as client, client.connect("/json") as ws:
        await ws.send_text("{nope")
        assert await ws.wait_closed() == 1007


async def test_binary_where_text_is_expected_closes_with_1003():
    async with TestClient(raw_app()) as client, client.connect("/json") as ws:
        await ws.send_bytes(b"{}")
        assert await ws.wait_closed() == 1003


async def test_a_raw_route_that_raises_closes_with_1011_and_logs(caplog):
    async with TestClient(raw_app()) as client, client.connect("/crash") as ws:
        with caplog.at_level(logging.ERROR, "microsockets"):
            await ws.send_text("go")
            assert await ws.wait_closed() == 1011
    assert "bug in a raw route" in caplog.text


async def test_debug_mode_reraises_raw_route_errors():
    async with TestClient(raw_app(debug=True)) as client:
        ws = await client.connect("/crash").__aenter__()
        await ws.send_text("go")
        assert await ws.wait_closed() == 1011
        with pytest.raises(RuntimeError, match="bug in a raw route"):
            await ws.close()


async def test_closing_before_accept_refuses_the_handshake():
    async with TestClient(raw_app()) as client:
        with pytest.raises(HandshakeRejected) as caught:
            async with client.connect("/refuse"):
                pass
        assert caught.value.status == 403


async def test_wrong_state_raises_precise_errors():
    app = microsockets.Application()
    errors: list[str] = []

    @app.websocket("/states")
    async def states(ws):
        for call in (ws.send_text("too early"), ws.receive_text()):
            try:
                await call
            except microsockets.WebSocketStateError as exc:
                errors.append(str(exc))
        await ws.accept()
        try:
            await ws.accept()
        except microsockets.WebSocketStateError as exc:
            errors.append(str(exc))
        try:
            await ws.receive_text()
        except microsockets.ConnectionClosedError as exc:
            errors.append(f"closed {exc.code}")
        try:
            await ws.send_text("too late")
        except microsockets.ConnectionClosed as exc:
            errors.append(f"closed {exc.code}")

    async with TestClient(app) as client, client.connect("/states") as ws:
        await ws.close(1006)
    assert errors == [
        "send before accept(): accept the connection first",
        "receive() before accept(): accept the connection first",
        "accept() on a connected socket: call it once",
        "closed 1006",
        "closed 1006",
    ]


async def test_normal_close_ends_iteration_and_event_routes_coexist():
    app = raw_app()

    @app.on("hello")
    async def hello(ws):
        return "events still work on other paths"

    async with TestClient(app) as client:
        async with client.connect("/echo/bob") as raw:
            assert await raw.receive_text() == "hello bob"
        async with client.connect("/anything/else") as ws:
            assert await ws.request("hello") == "events still work on other paths"


async def test_raw_routes_check_the_origin_too():
    async with TestClient(raw_app()) as client:
        with pytest.raises(HandshakeRejected) as caught:
            async with client.connect("/json", headers={"origin": "https://evil.example"}):
                pass
        assert caught.value.status == 403
