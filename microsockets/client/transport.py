"""The one connection a Socket drives at a time: the part of a WebSocket it uses, and the
default opener on the asyncio client of `websockets`. Tests pass a fake opener instead."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.typing import Subprotocol

from ..exceptions import ConnectionClosed, connection_closed

__all__ = ["Opener", "Transport", "WebSocketTransport", "open_websocket"]


class Transport(Protocol):
    """One WebSocket connection: text frames in and out, a close code at the end."""

    async def send(self, text: str) -> None:
        """Send one text frame; ConnectionClosed once the connection has gone."""

    async def recv(self) -> str:
        """The next text frame; ConnectionClosed with the close code at the end."""

    async def close(self, code: int, reason: str) -> None:
        """Close with a closing handshake."""

    def abort(self) -> None:
        """Drop the connection at once, without a closing handshake (a dead peer)."""


Opener = Callable[[str, Sequence[str]], Awaitable[Transport]]
"""`opener(url, subprotocols)`: an open Transport; ConnectionClosed(4000 + status) for a
refused handshake, OSError or TimeoutError for a failed one."""


class WebSocketTransport:
    """A `websockets` client connection as a Transport."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection

    async def send(self, text: str) -> None:
        try:
            await self.connection.send(text)
        except websockets.ConnectionClosed as exc:
            raise _closed(exc) from None

    async def recv(self) -> str:
        while True:
            try:
                message = await self.connection.recv()
            except websockets.ConnectionClosed as exc:
                raise _closed(exc) from None
            if isinstance(message, str):
                return message  # binary frames are not part of the protocol: skipped

    async def close(self, code: int, reason: str) -> None:
        await self.connection.close(code, reason)

    def abort(self) -> None:
        self.connection.transport.abort()


def _closed(exc: websockets.ConnectionClosed) -> ConnectionClosed:
    """Our ConnectionClosed for a `websockets` one: the code the server sent, else 1006."""
    if exc.rcvd is not None:
        return connection_closed(exc.rcvd.code, exc.rcvd.reason)
    return connection_closed(1006, "connection lost")


async def open_websocket(
    url: str, subprotocols: Sequence[str], *, max_size: int | None = 2**20
) -> Transport:
    """Open a WebSocket with `websockets`; an HTTP refusal reads as close 4000 + status,
    the code a server speaking protocol 2 closes with (docs/protocol.md)."""
    try:
        connection = await websockets.connect(
            url,
            subprotocols=[Subprotocol(s) for s in subprotocols] or None,
            open_timeout=None,  # the Socket's connect_timeout bounds the attempt
            ping_interval=None,  # the ms:ping heartbeat does this job
            max_size=max_size,
            close_timeout=2,
        )
    except websockets.InvalidStatus as exc:
        status = exc.response.status_code
        body = exc.response.body.decode("utf-8", "replace") if exc.response.body else ""
        raise connection_closed(4000 + status, body.strip()[:123]) from None
    except websockets.InvalidHandshake as exc:
        raise OSError(f"WebSocket handshake failed: {exc}") from None
    return WebSocketTransport(connection)
