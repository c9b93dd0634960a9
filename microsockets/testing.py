"""An in-process client for testing microsockets apps: no network, real ASGI messages.

async with TestClient(app) as client:
    async with client.connect("/") as ws:
        await ws.send("join", {"room": "r"})
        assert await ws.receive() == ("joined", "")
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from .codec import DEFAULT
from .exceptions import ErrorReply, MicrosocketsError, connection_closed
from .protocol import ACK, ERROR, Frame, Protocol
from .types import JSON, ASGIApp, Message

__all__ = ["ErrorReply", "HandshakeRejected", "TestClient", "TestSocket"]

DEFAULT_TIMEOUT = 5.0


class HandshakeRejected(MicrosocketsError):
    """The app refused the handshake; `status` is the HTTP status the client would see."""

    def __init__(self, status: int, body: bytes = b"") -> None:
        super().__init__(f"handshake rejected with HTTP {status}")
        self.status = status
        self.body = body


class TestClient:
    """Runs an app's lifespan around the block and opens in-process connections to it."""

    __test__ = False

    def __init__(self, app: ASGIApp, *, lifespan: bool = True) -> None:
        self.app = app
        self._lifespan = lifespan
        self._to_app: asyncio.Queue[Message] = asyncio.Queue()
        self._from_app: asyncio.Queue[Message] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> TestClient:
        if self._lifespan:
            scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
            self._task = asyncio.create_task(
                self.app(scope, self._to_app.get, self._from_app.put)  # type: ignore[arg-type]
            )
            await self._lifespan_step("startup")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._task is not None:
            await self._lifespan_step("shutdown")
            await self._task

    async def _lifespan_step(self, step: str) -> None:
        await self._to_app.put({"type": f"lifespan.{step}"})
        reply = await asyncio.wait_for(self._from_app.get(), DEFAULT_TIMEOUT)
        if reply["type"] != f"lifespan.{step}.complete":
            raise RuntimeError(f"lifespan {step} failed: {reply.get('message')}")

    def connect(
        self,
        path: str = "/",
        *,
        headers: dict[str, str] | Iterable[tuple[str, str]] | None = None,
        subprotocols: list[str] | None = None,
        client: tuple[str, int] = ("127.0.0.1", 50000),
    ) -> TestSocket:
        """A connection to `path` (with an optional query string); use it with `async with`."""
        url = urlsplit(path)
        pairs = list(headers.items() if isinstance(headers, dict) else headers or [])
        if not any(name.lower() == "host" for name, _ in pairs):
            pairs.insert(0, ("host", "testserver"))
        scope = {
            "type": "websocket",
            "asgi": {"version": "3.0"},
            "scheme": "ws",
            "http_version": "1.1",
            "path": url.path or "/",
            "raw_path": (url.path or "/").encode(),
            "root_path": "",
            "query_string": url.query.encode(),
            "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in pairs],
            "subprotocols": subprotocols or [],
            "client": client,
            "server": ("testserver", 80),
            "extensions": {"websocket.http.response": {}},
            "state": {},
        }
        return TestSocket(self.app, scope)


class TestSocket:
    """One in-process WebSocket connection, speaking the microsockets protocol."""

    __test__ = False

    def __init__(self, app: ASGIApp, scope: dict[str, Any]) -> None:
        self._app = app
        self._scope = scope
        self._to_app: asyncio.Queue[Message] = asyncio.Queue()
        self._from_app: asyncio.Queue[Message] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._protocol = Protocol(codec=DEFAULT, max_message_size=2**62)
        self._next_id = 0
        self._early: list[Frame] = []
        self.subprotocol: str | None = None
        self.response_headers: list[tuple[bytes, bytes]] = []
        self.close_code: int | None = None
        self.close_reason = ""

    async def __aenter__(self) -> TestSocket:
        self._task = asyncio.create_task(self._run())
        await self._to_app.put({"type": "websocket.connect"})
        reply = await self._next_message(DEFAULT_TIMEOUT)
        if reply["type"] == "websocket.accept":
            self.subprotocol = reply.get("subprotocol")
            self.response_headers = list(reply.get("headers", []))
            return self
        if reply["type"] == "websocket.http.response.start":
            body = await self._next_message(DEFAULT_TIMEOUT)
            await self._finish()
            raise HandshakeRejected(reply["status"], body.get("body", b""))
        await self._finish()
        raise HandshakeRejected(403)

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _run(self) -> None:
        await self._app(self._scope, self._to_app.get, self._send_from_app)

    async def _send_from_app(self, message: Message) -> None:
        if message["type"] == "websocket.close":
            await self._to_app.put(
                {"type": "websocket.disconnect", "code": message.get("code", 1000)}
            )
        await self._from_app.put(message)

    async def _next_message(self, timeout: float | None) -> Message:
        getter = asyncio.ensure_future(self._from_app.get())
        assert self._task is not None
        done, _ = await asyncio.wait(
            {getter, self._task}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if getter in done:
            return getter.result()
        getter.cancel()
        if self._task in done:
            self._task.result()  # re-raise what the app raised
            return {"type": "websocket.close", "code": 1006}
        raise TimeoutError(f"the app sent nothing within {timeout}s")

    # Sending.

    async def send(self, event: str, payload: JSON = "", *, id: int | None = None) -> None:
        """Send one event frame (with `id`, it asks for an acknowledgement)."""
        await self.send_text(self._protocol.encode(event, payload, id))

    async def send_text(self, text: str) -> None:
        """Send a raw text frame, valid or not."""
        await self._to_app.put({"type": "websocket.receive", "text": text})

    async def send_bytes(self, data: bytes) -> None:
        """Send a raw binary frame."""
        await self._to_app.put({"type": "websocket.receive", "bytes": data})

    async def request(
        self, event: str, payload: JSON = "", *, timeout: float = DEFAULT_TIMEOUT
    ) -> JSON:
        """Send an event asking for an ack and return its payload; an error reply raises."""
        self._next_id += 1
        ack_id = self._next_id
        await self.send(event, payload, id=ack_id)
        while True:
            frame = await self.receive_frame(timeout=timeout, keep_others=True)
            if frame.id == ack_id and frame.event == ACK:
                return frame.payload
            if frame.id == ack_id and frame.event == ERROR:
                raise ErrorReply(frame.payload["code"], frame.payload["message"])

    # Receiving.

    async def receive_text(self, timeout: float | None = DEFAULT_TIMEOUT) -> str:
        """The next text frame; ConnectionClosed if the app closed the connection."""
        message = await self._next_message(timeout)
        if message["type"] == "websocket.close":
            self.close_code = message.get("code", 1000)
            self.close_reason = message.get("reason") or ""
            raise connection_closed(self.close_code or 1000, self.close_reason)
        text: str = message["text"]
        return text

    async def receive_frame(
        self, timeout: float | None = DEFAULT_TIMEOUT, *, keep_others: bool = False
    ) -> Frame:
        """The next frame as (event, payload, id)."""
        if self._early and not keep_others:
            return self._early.pop(0)
        frame = self._protocol.decode(await self.receive_text(timeout))
        if keep_others and frame.id is None:
            self._early.append(frame)
        return frame

    async def receive(self, timeout: float | None = DEFAULT_TIMEOUT) -> tuple[str, JSON]:
        """The next frame as (event, payload)."""
        frame = await self.receive_frame(timeout)
        return frame.event, frame.payload

    async def wait_closed(self, timeout: float | None = DEFAULT_TIMEOUT) -> int:
        """Read until the app closes the connection; the close code."""
        while self.close_code is None:
            with contextlib.suppress(MicrosocketsError):
                await self.receive_text(timeout)
        return self.close_code

    async def close(self, code: int = 1000) -> None:
        """Close from the client side and wait for the app to finish with the connection;
        `close_code` is then the app's close code, or `code`."""
        if self._task is None:
            return
        if self.close_code is None:
            self.close_code = code
        if not self._task.done():
            await self._to_app.put({"type": "websocket.disconnect", "code": code})
        await self._finish()

    async def _finish(self) -> None:
        assert self._task is not None
        try:
            await asyncio.wait_for(asyncio.shield(self._task), DEFAULT_TIMEOUT)
        finally:
            self._task = None
