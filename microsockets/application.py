"""The ASGI application: wires the pieces, and routes each scope to lifespan, event
connections, raw routes or HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Collection, Coroutine
from typing import TYPE_CHECKING, Any

from .codec import DEFAULT, Codec
from .codes import CloseCode
from .connection import Connection
from .contract.asyncapi import document
from .emitter import Emitter
from .events import EventRouter, F
from .exceptions import ConnectionClosed, Reject
from .hooks import Hooks
from .lifespan import ExitSignals, serve_lifespan
from .limits import Limits
from .logs import log
from .observer import NO_OBSERVER
from .origins import AllowedOrigins, origin_allowed
from .paths import PathPattern, route_path, with_params
from .protocol import Protocol, check_event_name
from .raw import RawSocket
from .registry import Registry
from .rooms import BaseRoomManager, MemoryRoomManager
from .servers import before_reactor_shutdown, quiet_server_log, uniform_send
from .session import Session
from .socket import Socket
from .types import JSON, ASGIApp, Receive, Scope, Send

if TYPE_CHECKING:
    from .metrics import Metrics

RawHandler = Callable[[RawSocket], Any]

SHUTDOWN_GRACE = 5.0
"""Seconds the lifespan shutdown waits for connections to end after saying goodbye."""

SIGNAL_GRACE = 1.0
"""Seconds a shutdown signal waits for connections to end before the server's handler runs."""


class Application(Emitter):
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
        max_message_size: int = Limits.max_message_size,
        max_event_length: int = Limits.max_event_length,
        max_bad_frames: int = Limits.max_bad_frames,
        send_queue_limit: int = Limits.send_queue_limit,
        max_rooms_per_connection: int = Limits.max_rooms_per_connection,
        max_room_length: int = Limits.max_room_length,
        max_presence_size: int = Limits.max_presence_size,
        presence_counts: bool | Callable[[str], bool] = False,
        max_broadcast_rooms: int = Limits.max_broadcast_rooms,
        max_connections: int | None = Limits.max_connections,
        rate_limit: float | None = Limits.rate_limit,
        rate_burst: float | None = None,
        byte_rate_limit: float | None = Limits.byte_rate_limit,
        handler_timeout: float | None = Limits.handler_timeout,
        recovery_window: float | None = Limits.recovery_window,
        recovery_max_messages: int = Limits.recovery_max_messages,
        codec: Codec = DEFAULT,
        metrics: bool = False,
    ) -> None:
        if isinstance(event_router, type):  # 1.0.0 took classes
            event_router = event_router()
        if isinstance(room_manager, type):
            room_manager = room_manager()
        self.router = event_router or EventRouter()
        self.room_manager: BaseRoomManager = room_manager or MemoryRoomManager()
        self.hooks = Hooks()
        if presence_counts:  # rooms whose presence sends counts, not entries (docs/presence.md)
            self.room_manager.presence_counts(
                presence_counts if callable(presence_counts) else _every_room
            )
        self.path = None if path is None else PathPattern(path)
        self.http_app = http_app
        self.allowed_origins = allowed_origins
        self.debug = debug
        self.limits = Limits(
            max_message_size=max_message_size,
            max_event_length=max_event_length,
            max_bad_frames=max_bad_frames,
            send_queue_limit=send_queue_limit,
            max_rooms_per_connection=max_rooms_per_connection,
            max_room_length=max_room_length,
            max_presence_size=max_presence_size,
            max_broadcast_rooms=max_broadcast_rooms,
            max_connections=max_connections,
            rate_limit=rate_limit,
            rate_burst=rate_burst,
            byte_rate_limit=byte_rate_limit,
            handler_timeout=handler_timeout,
            recovery_window=recovery_window,
            recovery_max_messages=recovery_max_messages,
        )
        """Every limit (docs/security.md), from the keyword arguments."""
        self.protocol = Protocol(
            max_message_size=self.limits.max_message_size,
            max_event_length=self.limits.max_event_length,
            codec=codec,
        )
        self.metrics: Metrics | None = None
        """The Prometheus metrics (docs/observability.md), with `metrics=True`; else None."""
        if metrics:
            from .metrics import Metrics  # prometheus_client: only for apps that want it

            self.metrics = Metrics(self.room_manager)
        observer = self.metrics or NO_OBSERVER
        self.connections = Registry(observer)
        """The open event connections of this process by id, and the raw ones beside them."""
        self.session = Session(
            protocol=self.protocol,
            router=self.router if self.metrics is None else self.metrics.router(self.router),
            hooks=self.hooks,
            limits=self.limits,
            rooms=self.room_manager,
            registry=self.connections,
            refusal=self.refusal,
            debug=debug,
            observer=observer,
        )
        self.closing = False
        """True from the shutdown signal on: new handshakes are refused with HTTP 503."""
        self._routes: list[tuple[PathPattern, RawHandler]] = []
        self.events: dict[str, Any] = {}
        """The declared server-to-client events and their payload types (`app.event`)."""
        self._signals = ExitSignals(self._signalled)
        self._reactor_hooked = False
        self._goodbye: asyncio.Task[None] | None = None
        quiet_server_log()

    @property
    def metrics_app(self) -> ASGIApp:
        """The ASGI app serving the metrics in the Prometheus text format (`metrics=True`):
        mount it at a path of your choosing, or pass it as `http_app`."""
        if self.metrics is None:
            raise RuntimeError("metrics are off: create the app with Application(metrics=True)")
        return self.metrics.app

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

    @property
    def max_broadcast_rooms(self) -> int:  # type: ignore[override]
        """Rooms one broadcast may name (`Limits.max_broadcast_rooms`)."""
        return self.limits.max_broadcast_rooms

    async def publish_frame(
        self, frame: str, to: Collection[str] | None = None, skip: str | None = None
    ) -> None:
        """Send an encoded frame through the room manager (`broadcast` and `emit` encode);
        with recovery on it is logged first, and carries its offset."""
        recovery = self.session.recovery
        if recovery is None:
            await self.room_manager.broadcast(frame, to, skip)
        else:
            await recovery.publish(frame, to, skip)

    async def presence(self, room: str) -> dict[str, JSON]:
        """Who is visible in a room on every process: connection id -> metadata."""
        return await self.room_manager.presence(room)

    def sockets(self) -> list[Socket]:
        """The event connections open in this process."""
        return list(self.connections.values())

    def close_all(
        self, code: int = CloseCode.GOING_AWAY, reason: str = "server shutting down"
    ) -> None:
        """Start closing every connection of this process (event ones after their queued
        frames); `await app.connections.close_all(...)` waits until each close is sent."""
        self._goodbye = asyncio.get_running_loop().create_task(
            self.connections.close_all(code, reason)
        )

    def evict(self, ws: Socket, code: int, reason: str) -> None:
        """Drop a connection at once: its backlog is discarded and its session ended."""
        self.connections.evict(ws, code, reason)

    def _going_away(self) -> None:
        self.closing = True
        self.close_all()

    async def _say_goodbye(self, grace: float) -> set[asyncio.Task[object]]:
        """Close every connection with 1001 and wait `grace` seconds at most for them to end;
        the tasks still running."""
        self.closing = True
        await self.connections.close_all(CloseCode.GOING_AWAY, "server shutting down")
        pending = [registration.task for registration in self.connections.registrations()]
        if not pending:
            return set()
        _, late = await asyncio.wait(pending, timeout=grace)
        return late

    def _signalled(self) -> Coroutine[Any, Any, object]:
        """On SIGTERM or SIGINT: the goodbyes, which the server's own shutdown should follow."""
        return self._say_goodbye(SIGNAL_GRACE)

    # Lifespan.

    async def startup(self) -> None:
        """Start the room manager and run the on_startup hooks (the lifespan does this)."""
        await self.room_manager.start()
        if self.metrics is not None:
            self.metrics.start()
        for hook in self.hooks.on_startup:
            await hook()
        self.closing = False
        self._signals.install()

    async def shutdown(self) -> None:
        """Say goodbye (1001) to every client, wait for them, then run on_shutdown hooks."""
        self._signals.uninstall()
        for task in await self._say_goodbye(SHUTDOWN_GRACE):
            task.cancel()
        if self.session.recovery is not None:  # the sessions this process keeps end with it
            await self.session.recovery.end_all()
        try:
            for hook in self.hooks.on_shutdown:
                await hook()
        finally:
            await self.room_manager.stop()
            if self.metrics is not None:
                await self.metrics.stop()

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
        if not self._reactor_hooked:  # daphne: no lifespan, so no signal hook either
            self._reactor_hooked = before_reactor_shutdown(self._signalled)
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
        if self.metrics is not None:  # uniform_send first: it must see the server's own send
            receive, send = self.metrics.instrument(receive, uniform_send(send), "event")
        ws = Socket(
            events_scope,
            receive,
            send,
            emitter=self,
            rooms=self.room_manager,
            limits=self.limits,
            on_overflow=self.connections.overflowed,
        )
        await self.session.serve(ws)

    def _events_scope(self, scope: Scope, path: str) -> Scope | None:
        """The scope of an event connection at `path` (with its path params), or None."""
        if self.path is None:
            return scope
        params = self.path.match(path)
        if params is None:
            return None
        return with_params(scope, params) if params else scope

    async def _raw(self, handler: RawHandler, scope: Scope, receive: Receive, send: Send) -> None:
        if self.metrics is not None:
            receive, send = self.metrics.instrument(receive, uniform_send(send), "raw")
        ws = RawSocket(scope, receive, send, self.protocol.codec)
        refusal = self.refusal(ws)
        if refusal is not None:
            await ws.reject(refusal.status, refusal.reason)
            return
        registration = self.connections.add(ws)
        try:
            await handler(ws)
        except asyncio.CancelledError:  # the server is dropping the connection: say goodbye
            await ws.go_away()
            raise
        except ConnectionClosed as exc:  # the connection ended: nothing went wrong here
            log(ws, logging.INFO, "raw route %r: connection closed with %d", ws.path, exc.code)
        except Exception as exc:
            code = getattr(exc, "close_code", None) or CloseCode.INTERNAL_ERROR
            level = logging.INFO if code != CloseCode.INTERNAL_ERROR else logging.ERROR
            log(ws, level, "raw route %r closed with %d", ws.path, code, exc_info=exc)
            await ws.close(code, "internal error" if code == 1011 else str(exc)[:120])
            if self.debug:
                raise
        else:
            await ws.close()
        finally:
            self.connections.remove(registration)

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

    def refusal(self, ws: Connection) -> Reject | None:
        """Why a handshake must be refused before any hook runs (logged here, once), or None."""
        origin, host = ws.header("origin"), ws.header("host")
        if not origin_allowed(self.allowed_origins, origin, host, ws.scope.get("scheme", "ws")):
            log(ws, logging.WARNING, "refused Origin %r (host %r)", origin, host)
            return Reject("origin not allowed", 403)
        limit = self.limits.max_connections
        if self.closing:
            refusal = Reject("server shutting down, try again later", 503)
        elif limit is not None and len(self.connections) > limit:  # the one asking is counted
            refusal = Reject("server at max_connections, try again later", 503)
        else:
            return None
        log(ws, logging.INFO, "refused %r: %s", ws.path, refusal.reason)
        return refusal


def _every_room(room: str) -> bool:
    return True
