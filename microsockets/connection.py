"""What raw and event sockets share: the handshake request and the ASGI state machine."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import secrets
from collections.abc import Iterable
from functools import cached_property
from types import SimpleNamespace

from websockets.datastructures import Headers

from .codes import REFUSED, CloseCode
from .datastructures import QueryParams
from .exceptions import WebSocketStateError, connection_closed
from .paths import route_path
from .servers import SEND_FAILED, handshake_refused, uniform_send
from .types import Message, Receive, Scope, Send

GOODBYE_WAIT = 1.0
"""Seconds `go_away` waits for the server to take the close frame."""


class Phase(enum.Enum):
    """Where a connection is in its life; some calls are only allowed in some phases.

    CONNECTING -> OPEN (accept) -> CLOSING (a close was started) -> CLOSED, or straight to
    CLOSED when the peer leaves or the handshake is refused. Only Connection's methods move it.
    """

    CONNECTING = "connecting"
    OPEN = "connected"  # the word 2.0 used
    CLOSING = "closing"
    CLOSED = "closed"


class Connection:
    """One WebSocket connection: the request that opened it and its accept/close state."""

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scope = scope
        self.id = secrets.token_hex(16)
        """Unique per connection: log lines name it; an event socket is in the room of this
        name from the start."""
        self._receive = receive
        self._send = uniform_send(send)
        self.phase = Phase.CONNECTING
        self.subprotocol: str | None = None
        """The subprotocol accepted (an on_connect hook may set it before the handshake)."""
        self.response_headers: list[tuple[str, str]] = []
        """Extra handshake response headers (an on_connect hook may append to it)."""
        self.accepted = False
        """True once the handshake was accepted; stays True after the close."""
        self.close_code: int | None = None
        """Why the connection ended: the first close started, by either side, wins."""
        self.close_reason = ""
        self.client_close_code: int | None = None
        """The close code the client sent when it closed first (None: it did not)."""

    @cached_property
    def state(self) -> SimpleNamespace:
        """Per-connection storage for the application: `ws.state.user = ...`."""
        return SimpleNamespace()

    # The handshake request.

    @property
    def path(self) -> str:
        """The request path below the application's mount point."""
        return route_path(self.scope)

    @property
    def path_params(self) -> dict[str, str]:
        """The `{name}` segments of the route pattern that matched."""
        params: dict[str, str] = self.scope.get("path_params", {})
        return params

    @property
    def query_string(self) -> str:
        """The raw query string, decoded as Latin-1."""
        raw: bytes = self.scope.get("query_string", b"")
        return raw.decode("latin-1")

    @cached_property
    def query_params(self) -> QueryParams:
        """The query string parsed: `ws.query_params["token"]`."""
        return QueryParams(self.query_string)

    @cached_property
    def headers(self) -> Headers:
        """The handshake request headers, case-insensitive: `ws.headers["origin"]`."""
        return Headers(
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in self.scope.get("headers", ())
        )

    def header(self, name: str, default: str | None = None) -> str | None:
        """One request header (the first, if repeated), or `default` when absent."""
        wanted = name.lower().encode("latin-1")
        for key, value in self.scope.get("headers", ()):
            if key.lower() == wanted:
                return str(value.decode("latin-1"))
        return default

    @property
    def subprotocols(self) -> list[str]:
        """The subprotocols the client offered, in its order of preference."""
        offered: list[str] = self.scope.get("subprotocols", [])
        return offered

    @property
    def client(self) -> tuple[str, int] | None:
        """The peer's (host, port), as the server reports it."""
        client = self.scope.get("client")
        return None if client is None else (client[0], client[1])

    @property
    def closed(self) -> bool:
        """True once the connection is over, whoever closed it."""
        return self.phase is Phase.CLOSED

    # The ASGI state machine.

    async def accept(
        self,
        subprotocol: str | None = None,
        headers: Iterable[tuple[str, str]] | None = None,
    ) -> None:
        """Complete the handshake, optionally choosing a subprotocol and adding headers."""
        if self.phase is not Phase.CONNECTING:
            raise WebSocketStateError(f"accept() on a {self.phase.value} socket: call it once")
        chosen = self.subprotocol if subprotocol is None else subprotocol
        if chosen is not None and chosen not in self.subprotocols:
            raise WebSocketStateError(
                f"subprotocol {chosen!r} was not offered by the client "
                f"(it offered {self.subprotocols!r})"
            )
        self.subprotocol = chosen
        if headers is not None:
            self.response_headers.extend(headers)
        message: Message = {"type": "websocket.accept", "subprotocol": self.subprotocol}
        if self.response_headers:
            message["headers"] = [
                (name.lower().encode("latin-1"), value.encode("latin-1"))
                for name, value in self.response_headers
            ]
        await self._send(message)
        self.phase = Phase.OPEN
        self.accepted = True

    async def reject(self, status: int = 403, reason: str = "") -> None:
        """Refuse the handshake with an HTTP status (403 where the server cannot say more)."""
        if self.phase is not Phase.CONNECTING:
            raise WebSocketStateError("reject() is only possible before accept()")
        self.phase = Phase.CLOSED
        handshake_refused.set(True)
        if "websocket.http.response" in self.scope.get("extensions", {}):
            body = (reason or "forbidden").encode()
            await self._send(
                {
                    "type": "websocket.http.response.start",
                    "status": status,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8")],
                }
            )
            await self._send({"type": "websocket.http.response.body", "body": body})
        else:
            await self._send({"type": "websocket.close", "code": 1008, "reason": reason})

    async def refuse(self, status: int, reason: str) -> None:
        """Refuse the handshake so that a browser can read why: accept, then close at once
        with 4000 + status (for clients that sent `ms_v=2`; browsers hide HTTP statuses)."""
        await self.accept()
        await self._send_close(REFUSED + status, reason[:120], GOODBYE_WAIT)

    def _start_closing(self, code: int, reason: str) -> bool:
        """Enter CLOSING with this code, unless a close already started; whether it did."""
        if self.phase is not Phase.OPEN:
            return False
        self.phase = Phase.CLOSING
        self.close_code, self.close_reason = code, reason
        return True

    async def go_away(self) -> None:
        """Close with 1001 at once, skipping anything queued: the server is dropping us.

        Waits GOODBYE_WAIT at most for a client that does not read, then yields to the loop
        twice, so a server that writes from its next loop iteration (daphne, whose reactor
        stops right after cancelling the app) sends the frame.
        """
        await self._send_close(CloseCode.GOING_AWAY, "server shutting down", GOODBYE_WAIT)
        for _ in range(2):
            await asyncio.sleep(0)

    async def _send_close(self, code: int, reason: str, timeout: float | None = None) -> None:
        """Send the close frame now, unless the connection is over; a close already started
        keeps its code. The peer may have gone first."""
        if self.phase in (Phase.CONNECTING, Phase.CLOSED):
            return
        self._start_closing(code, reason)
        self._ended()  # before the await: a second close, from any task, sends nothing
        message = {"type": "websocket.close", "code": self.close_code, "reason": self.close_reason}
        with contextlib.suppress(asyncio.TimeoutError, *SEND_FAILED):
            await asyncio.wait_for(self._send(message), timeout)

    def _ended(self, code: int = 1006, reason: str = "") -> None:
        """The connection is over: the peer left, the server dropped it, or our close went out.

        Keeps the code of a close already started.
        """
        self.phase = Phase.CLOSED
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason

    def _forget_transport(self) -> None:
        """Let go of the server's connection objects: this one is over, and a session that
        recovery keeps for a reconnect should not keep the server's buffers alive too."""
        self._receive = _no_receive
        self._send = _no_send

    def _closed_by_peer(self, message: Message) -> None:
        """Record a `websocket.disconnect` message."""
        code = message.get("code", 1005)
        if self.phase is Phase.OPEN:
            self.client_close_code = code
        self._ended(code, message.get("reason") or "")

    def _check_open(self, action: str) -> None:
        if self.phase is Phase.CONNECTING:
            raise WebSocketStateError(f"{action} before accept(): accept the connection first")
        if self.phase is not Phase.OPEN:
            raise connection_closed(self.close_code or 1006, self.close_reason)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.path!r} {self.phase.value}>"


async def _no_receive() -> Message:
    return {"type": "websocket.disconnect", "code": 1006}


async def _no_send(message: Message) -> None:
    raise OSError("the connection is over")
