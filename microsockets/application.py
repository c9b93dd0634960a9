"""The ASGI application: routes each scope to lifespan, event connections, raw routes or HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

from . import session
from .codec import DEFAULT, Codec
from .contract.asyncapi import document
from .exceptions import Reject
from .hooks import Hooks
from .lifespan import ExitSignals, serve_lifespan
from .origins import AllowedOrigins, origin_allowed
from .protocol import Protocol, check_event_name
from .raw import RawSocket
from .rooms import BaseRoomManager, MemoryRoomManager
from .router import EventRouter, F
from .routing import PathPattern, route_path, with_params
from .socket import GOING_AWAY, Socket, target_rooms
from .types import JSON, ASGIApp, Receive, Scope, Send
from .watchdog import Watchdog

logger = logging.getLogger("microsockets")

RawHandler = Callable[[RawSocket], Any]

SHUTDOWN_GRACE = 5.0
"""Seconds the lifespan shutdown waits for connections to end after saying goodbye."""


class Application:
    """An ASGI app serving events over WebSocket. Every limit is a keyword argument here."""

    def __init__(
        self,
        *,
        event_router: EventRouter | type[EventRouter] | None = None,
        room_manager: BaseRoomManager | type[BaseRoomManager] | None = None,
        path: str | None = None,
        http_app: ASGIApp | None = None,
        allowed_origins: AllowedOrigins = None,
        debug: bool = False,
        max_message_size: int = 1024 * 1024,
        max_event_length: int = 256,
        max_bad_frames: int = 10,
        send_queue_limit: int = 1024 * 1024,
        max_rooms_per_connection: int = 1000,
        max_connections: int | None = 20_000,
        rate_limit: float | None = 10_000.0,
        rate_burst: float | None = None,
        handler_timeout: float | None = 60.0,
        codec: Codec = DEFAULT,
    ) -> None:
        if isinstance(event_router, type):  # 1.0.0 took classes
            event_router = event_router()
        if isinstance(room_manager, type):
            room_manager = room_manager()
        self.router = event_router or EventRouter()
        self.room_manager: BaseRoomManager = room_manager or MemoryRoomManager()
        self.hooks = Hooks()
        self.path = None if path is None else PathPattern(path)
        self.http_app = http_app
        self.allowed_origins = allowed_origins
        self.debug = debug
        self.protocol = Protocol(
            max_message_size=max_message_size, max_event_length=max_event_length, codec=codec
        )
        self.max_bad_frames = max_bad_frames
        self.send_queue_limit = send_queue_limit
        self.max_rooms_per_connection = max_rooms_per_connection
        self.max_connections = max_connections
        self.rate_limit = rate_limit
        self.rate_burst = rate_burst if rate_burst is not None else rate_limit
        self.handler_timeout = handler_timeout
        self._sockets: dict[str, Socket] = {}
        self.watchdog = (
            None if handler_timeout is None else Watchdog(handler_timeout, self._sockets)
        )
        self.connections: dict[str, asyncio.Task[Any]] = {}
        """The session task of each open event connection, by connection id."""
        self.evicted: set[str] = set()
        self._routes: list[tuple[PathPattern, RawHandler]] = []
        self.events: dict[str, Any] = {}
        """The declared server-to-client events and their payload types (`app.event`)."""
        self._signals = ExitSignals(self._going_away)
        self._background: set[asyncio.Task[Any]] = set()
        self.closing = False
        """True from the shutdown signal on: new handshakes are refused with HTTP 503."""

    # Registration.

    def on(self, event: str) -> Callable[[F], F]:
        """Decorator: `@app.on("join")` routes the event "join" to the function.

        `async def join(ws)` reads `ws.payload` as sent; `async def join(ws, data: Join)`
        gets it validated as a Join (docs/typing.md).
        """
        return self.router.on(event)

    def event(self, event: str, payload: Any = Any) -> None:
        """Declare an event this app sends and its payload type, for `asyncapi()` and TypeScript.

        Declaring is for the contract only: `emit` and `broadcast` do not check payloads.
        """
        check_event_name(event)
        self.events[event] = payload

    def asyncapi(self, *, title: str, version: str) -> dict[str, Any]:
        """This app's AsyncAPI 3.0 document: its events, their payloads and replies, as JSON."""
        return document(self, title=title, version=version)

    def websocket(self, path: str) -> Callable[[RawHandler], RawHandler]:
        """Decorator: a raw route whose handler owns the connection (`await ws.accept()`)."""
        pattern = PathPattern(path)

        def decorator(func: RawHandler) -> RawHandler:
            self._routes.append((pattern, func))
            return func

        return decorator

    # Sending from anywhere.

    async def broadcast(
        self,
        event: str,
        payload: JSON = "",
        to: str | Iterable[str] | None = None,
        skip: str | None = None,
    ) -> None:
        """Send an event to every member of the rooms `to` (None: everyone) but `skip`."""
        frame = self.protocol.encode_event(event, payload)
        await self.room_manager.broadcast(frame, target_rooms(to), skip)

    async def emit(self, event: str, payload: JSON = "", *, to: str) -> None:
        """Send an event to the one connection whose id is `to`."""
        await self.broadcast(event, payload, to=(to,))

    def sockets(self) -> list[Socket]:
        """The event connections open in this process."""
        return list(self._sockets.values())

    def close_all(self, code: int = GOING_AWAY, reason: str = "server shutting down") -> None:
        """Start closing every event connection of this process (after its queued frames)."""
        for ws in list(self._sockets.values()):
            ws._outbox.close(code, reason)
            if ws.close_code is None:
                ws.close_code, ws.close_reason = code, reason

    def _going_away(self) -> None:
        self.closing = True
        self.close_all()

    def evict(self, ws: Socket, code: int, reason: str) -> None:
        """Drop a connection at once: its backlog is discarded and its session ended."""
        if ws.id in self.evicted:
            return
        logger.warning("disconnecting %s %s with %d: %s", ws.id, ws.client, code, reason)
        ws.close_code, ws.close_reason = code, reason
        self.evicted.add(ws.id)
        self._spawn(_close_soon(ws, code, reason))
        task = self.connections.get(ws.id)
        if task is not None:
            task.cancel()

    # Lifespan.

    async def startup(self) -> None:
        """Start the room manager and run the on_startup hooks (the lifespan does this)."""
        await self.room_manager.start()
        for hook in self.hooks.on_startup:
            await hook()
        self.closing = False
        self._signals.install()

    async def shutdown(self) -> None:
        """Say goodbye (1001) to every client, wait for them, then run on_shutdown hooks."""
        self._signals.uninstall()
        self._going_away()
        pending = list(self.connections.values())
        if pending:
            _, late = await asyncio.wait(pending, timeout=SHUTDOWN_GRACE)
            for task in late:
                task.cancel()
        try:
            for hook in self.hooks.on_shutdown:
                await hook()
        finally:
            await self.room_manager.stop()

    @contextlib.asynccontextmanager
    async def lifespan(self, _host: object = None) -> AsyncIterator[None]:
        """For a host app that does not forward lifespan: `Starlette(lifespan=app.lifespan)`."""
        await self.startup()
        try:
            yield
        finally:
            await self.shutdown()

    # ASGI.

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "websocket":
            await self._websocket(scope, receive, send)
        elif kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await serve_lifespan(self.startup, self.shutdown, receive, send)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (await receive())["type"] != "websocket.connect":
            return  # the client left before its handshake reached us
        path = route_path(scope)
        for pattern, handler in self._routes:
            params = pattern.match(path)
            if params is not None:
                await self._raw(handler, with_params(scope, params), receive, send)
                return
        events_scope = self._events_scope(scope, path)
        if events_scope is None:
            await RawSocket(scope, receive, send).reject(404, "no WebSocket route here")
            return
        ws = Socket(self, events_scope, receive, send)
        self._sockets[ws.id] = ws
        try:
            await session.serve(self, ws)
        finally:
            del self._sockets[ws.id]

    def _events_scope(self, scope: Scope, path: str) -> Scope | None:
        """The scope of an event connection at `path` (with its path params), or None."""
        if self.path is None:
            return scope
        params = self.path.match(path)
        if params is None:
            return None
        return with_params(scope, params) if params else scope

    async def _raw(self, handler: RawHandler, scope: Scope, receive: Receive, send: Send) -> None:
        ws = RawSocket(scope, receive, send, self.protocol.codec)
        refusal = self.refusal(ws)
        if refusal is not None:
            await ws.reject(refusal.status, refusal.reason)
            return
        try:
            await handler(ws)
        except Exception as exc:
            code = getattr(exc, "close_code", None) or 1011
            logger.log(
                logging.INFO if code != 1011 else logging.ERROR,
                "raw route %s closed with %d",
                ws.path,
                code,
                exc_info=exc,
            )
            await ws.close(code, "internal error" if code == 1011 else str(exc)[:120])
            if self.debug:
                raise
        else:
            await ws.close()

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.http_app is not None:
            await self.http_app(scope, receive, send)
            return
        body = b"Not Found: this is a WebSocket endpoint"
        await send(
            {
                "type": "http.response.start",
                "status": 404,
                "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def refusal(self, ws: RawSocket | Socket) -> Reject | None:
        """Why a handshake must be refused before any hook runs, or None."""
        if not origin_allowed(self.allowed_origins, ws.header("origin"), ws.header("host")):
            logger.warning("refused Origin %r (host %r)", ws.header("origin"), ws.header("host"))
            return Reject("origin not allowed", 403)
        if self.closing:
            return Reject("server shutting down, try again later", 503)
        if self.max_connections is not None and len(self._sockets) > self.max_connections:
            return Reject("server at max_connections, try again later", 503)
        return None

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)


CLOSE_WAIT = 5.0


async def _close_soon(ws: Socket, code: int, reason: str) -> None:
    """Try to tell an evicted client why; give up after CLOSE_WAIT if it does not read."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(
            ws._send({"type": "websocket.close", "code": code, "reason": reason}), CLOSE_WAIT
        )
