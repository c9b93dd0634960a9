"""HTTP requests, the Origin check, and mounting under Starlette, over real uvicorn."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

import microsockets

from .conftest import serve


def echo_app(**options) -> microsockets.Application:
    app = microsockets.Application(**options)

    @app.on("echo")
    async def echo(ws):
        return {"payload": ws.payload, "path": ws.path, "root": ws.scope.get("root_path")}

    return app


async def http_get(url: str, path: str) -> tuple[int, bytes]:
    host, port = url.removeprefix("ws://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"GET {path} HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    response = await reader.read()
    writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


async def request(ws, event: str, payload) -> dict:
    await ws.send(json.dumps({"event": event, "payload": payload, "id": 1}))
    return json.loads(await ws.recv())


async def test_plain_http_gets_404_without_http_app():
    async with serve(echo_app()) as url:
        assert await http_get(url, "/") == (404, b"Not Found: this is a WebSocket endpoint")


async def test_http_app_serves_plain_requests():
    async def page(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"<h1>chat</h1>"})

    async with serve(echo_app(http_app=page)) as url:
        assert await http_get(url, "/") == (200, b"<h1>chat</h1>")
        async with websockets.connect(url) as ws:
            assert (await request(ws, "echo", 1))["payload"]["payload"] == 1


async def test_mounted_under_starlette_with_its_lifespan():
    events = echo_app()
    started: list[str] = []

    @events.hooks.on_startup
    async def up():
        started.append("up")

    host = Starlette(
        routes=[
            Route("/", lambda request: PlainTextResponse("home")),
            Mount("/realtime", app=events),
        ],
        lifespan=events.lifespan,
    )
    async with serve(host) as url:
        assert await http_get(url, "/") == (200, b"home")
        async with websockets.connect(f"{url}/realtime/chat") as ws:
            reply = await request(ws, "echo", "hi")
        assert reply["payload"] == {"payload": "hi", "path": "/chat", "root": "/realtime"}
    assert started == ["up"]


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        (None, True),  # not a browser
        ("http://127.0.0.1:{port}", True),  # same host
        ("http://evil.example", False),  # Cross-Site WebSocket Hijacking
        ("null", False),  # a page opened from disk
    ],
)
async def test_default_origin_check(origin, allowed):
    async with serve(echo_app()) as url:
        port = url.rsplit(":", 1)[1]
        headers = {} if origin is None else {"Origin": origin.format(port=port)}
        connecting = websockets.connect(url, additional_headers=headers)
        if allowed:
            async with connecting as ws:
                assert (await request(ws, "echo", 1))["event"] == "ms:ack"
        else:
            with pytest.raises(websockets.InvalidStatus) as caught:
                await connecting
            assert caught.value.response.status_code == 403


async def test_listed_and_callable_origins():
    listed = echo_app(allowed_origins=["null", "https://app.example"])
    predicate = echo_app(allowed_origins=lambda origin: origin.endswith(".example"))
    for app, origin in ((listed, "null"), (predicate, "https://chat.example")):
        async with (
            serve(app) as url,
            websockets.connect(url, additional_headers={"Origin": origin}) as ws,
        ):
            assert (await request(ws, "echo", 1))["event"] == "ms:ack"
        async with serve(app) as url:
            with pytest.raises(websockets.InvalidStatus):
                await websockets.connect(url, additional_headers={"Origin": "https://evil.com"})


async def test_reject_status_reaches_a_real_client():
    app = echo_app()

    @app.hooks.on_connect
    async def closed_for_maintenance(ws):
        raise microsockets.Reject("maintenance", status=503)

    async with serve(app) as url:
        with pytest.raises(websockets.InvalidStatus) as caught:
            await websockets.connect(url)
        assert caught.value.response.status_code == 503
        assert caught.value.response.body == b"maintenance"
