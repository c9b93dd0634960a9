"""Sockets of raw routes (`@app.websocket("/path")`): the handler owns the connection."""

from __future__ import annotations

from collections.abc import AsyncIterator

from .codec import DEFAULT, Codec
from .codes import CloseCode
from .connection import Connection, Phase
from .exceptions import ConnectionClosed, ConnectionClosedOK, ProtocolError
from .servers import SEND_FAILED
from .types import JSON, Message, Receive, Scope, Send

UNSUPPORTED_DATA = 1003
INVALID_PAYLOAD = 1007


class RawSocket(Connection):
    """A Starlette-style WebSocket: accept, receive and send frames, close."""

    def __init__(self, scope: Scope, receive: Receive, send: Send, codec: Codec = DEFAULT) -> None:
        super().__init__(scope, receive, send)
        self._codec = codec

    async def receive(self) -> Message:
        """The next ASGI message; raises ConnectionClosed once the peer has gone."""
        self._check_open("receive()")
        message = await self._receive()
        if message["type"] == "websocket.disconnect":
            self._closed_by_peer(message)
            self._check_open("receive()")
        return message

    async def receive_text(self) -> str:
        """The next text frame; a binary frame raises ProtocolError (closes with 1003)."""
        text: str | None = (await self.receive()).get("text")
        if text is None:
            raise ProtocolError(
                "binary_frame", "expected a text frame", close_code=UNSUPPORTED_DATA
            )
        return text

    async def receive_bytes(self) -> bytes:
        """The next binary frame; a text frame raises ProtocolError (closes with 1003)."""
        data: bytes | None = (await self.receive()).get("bytes")
        if data is None:
            raise ProtocolError(
                "text_frame", "expected a binary frame", close_code=UNSUPPORTED_DATA
            )
        return data

    async def receive_json(self) -> JSON:
        """The next text frame decoded as JSON; bad JSON raises ProtocolError (closes 1007)."""
        text = await self.receive_text()
        try:
            return self._codec.loads(text)
        except ValueError as exc:
            raise ProtocolError("invalid_json", str(exc), close_code=INVALID_PAYLOAD) from None

    async def __aiter__(self) -> AsyncIterator[str | bytes]:
        """Each frame's text or bytes, until a normal close or one the server started (1012);
        an abnormal one raises."""
        while True:
            try:
                message = await self.receive()
            except ConnectionClosed as exc:
                if isinstance(exc, ConnectionClosedOK) or exc.code == CloseCode.SERVICE_RESTART:
                    return
                raise
            text = message.get("text")
            yield message["bytes"] if text is None else text

    async def send_text(self, text: str) -> None:
        await self._send_message({"type": "websocket.send", "text": text})

    async def send_bytes(self, data: bytes) -> None:
        await self._send_message({"type": "websocket.send", "bytes": data})

    async def send_json(self, value: JSON) -> None:
        await self.send_text(self._codec.dumps(value))

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Start the closing handshake; closing a closed socket does nothing."""
        if self.phase is Phase.CONNECTING:
            await self.reject(403, reason)
            return
        await self._send_close(code, reason)

    async def _send_message(self, message: Message) -> None:
        self._check_open("send")
        try:
            await self._send(message)
        except SEND_FAILED:
            self._ended()
            self._check_open("send")
