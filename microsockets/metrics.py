"""Prometheus metrics, on with `Application(metrics=True)` (the `metrics` extra).

Nothing here runs unless metrics are on: the application then wraps each connection's ASGI
`receive` and `send` and the session's router (counting.py), and hands `Metrics` to
the registry and the session as their observer. What happens once per frame is added up in
plain integers (a prometheus_client update costs several times a whole frame's work) and
handed to prometheus_client by `flush`: before each scrape, and every FLUSH_INTERVAL seconds
in each worker under multiprocess mode. docs/observability.md lists every metric.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Sequence
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    make_asgi_app,
    multiprocess,
)

from .codes import CloseCode
from .counting import Tally, Traffic, instrument, timed
from .events import Router
from .observer import EVICTION_REASONS, Observer
from .rooms import BaseRoomManager, ClusterRoomManager, Transport
from .rooms.tracking import TrackingManager
from .types import ASGIApp, Receive, Send

FLUSH_INTERVAL = 1.0
"""Seconds between flushes of a worker's counts under multiprocess mode."""

HANDLER_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                   2.5, 5.0, 10.0, 30.0, 60.0)  # fmt: skip
RECIPIENT_BUCKETS = (0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)

ERROR_CODES = frozenset((
    "invalid_json", "invalid_frame", "binary_frame", "unknown_event", "rate_limited",
    "message_too_big", "invalid_payload", "handler_error", "handler_timeout", "too_many_rooms",
    "room_name_too_long", "too_many_targets",
))  # fmt: skip
"""The `ms:error` codes of docs/protocol.md; any other (a handler's own LimitExceeded code)
is counted as "other", so that labels stay a bounded set."""

DISCONNECT_CODES = frozenset((*map(int, CloseCode), 1002, 1003, 1005, 1006, 1007, 1010, 1014))
"""The close codes of RFC 6455 that a label may name; a client's 3000-4999 are "other"."""

OTHER = "other"


def multiprocess_dir() -> str | None:
    """prometheus_client's multiprocess directory, when the environment sets one (its old
    lowercase name is deprecated and not read here)."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class _Histogram(Histogram):
    """A histogram that also takes counts added up elsewhere, bucket by bucket."""

    def add(self, taken: tuple[Sequence[int], float] | None) -> None:
        """Add a Tally's counts per bucket and their sum (None: nothing to add)."""
        if taken is None:
            return
        counts, total = taken
        for value, count in zip(self._buckets, counts, strict=True):
            if count:
                value.inc(count)
        self._sum.inc(total)


class Metrics(Observer):
    """Every metric of one application, and the observer that feeds them."""

    def __init__(self, rooms: BaseRoomManager) -> None:
        self.multiprocess = multiprocess_dir() is not None
        self.registry = CollectorRegistry()
        """This application's metrics (in multiprocess mode, the files hold the values)."""
        self._rooms = rooms
        self.traffic = Traffic()
        self._handlers: dict[str, Tally] = {}
        self._recipients = Tally(RECIPIENT_BUCKETS)
        self._task: asyncio.Task[None] | None = None
        reg = self.registry
        self.connections = Gauge(
            "microsockets_connections",
            "Open WebSocket connections.",
            ["kind"],
            registry=reg,
            multiprocess_mode="livesum",
        )
        self.opened = Counter(
            "microsockets_connections_opened",
            "WebSocket connections accepted.",
            ["kind"],
            registry=reg,
        )
        self.disconnects = Counter(
            "microsockets_disconnects",
            "Connections ended, by close code.",
            ["code"],
            registry=reg,
        )
        self.frames_received = Counter(
            "microsockets_frames_received", "Frames received.", registry=reg
        )
        self.frames_sent = Counter("microsockets_frames_sent", "Frames sent.", registry=reg)
        self.bytes_received = Counter(
            "microsockets_bytes_received", "Bytes of frame data received.", registry=reg
        )
        self.bytes_sent = Counter(
            "microsockets_bytes_sent", "Bytes of frame data sent.", registry=reg
        )
        self.errors = Counter(
            "microsockets_errors",
            "Frames refused and handlers failed, by ms:error code.",
            ["code"],
            registry=reg,
        )
        self.handler_seconds = _Histogram(
            "microsockets_handler_seconds",
            "Handler run time, by event.",
            ["event"],
            buckets=HANDLER_BUCKETS,
            registry=reg,
        )
        self.broadcast_recipients = _Histogram(
            "microsockets_broadcast_recipients",
            "Local connections each broadcast was delivered to.",
            buckets=RECIPIENT_BUCKETS,
            registry=reg,
        )
        self.evictions = Counter(
            "microsockets_evictions",
            "Connections evicted, by reason.",
            ["reason"],
            registry=reg,
        )
        self.rooms = Gauge(
            "microsockets_rooms",
            "Rooms with a member in this process (own-id rooms aside).",
            registry=reg,
            multiprocess_mode="livesum",
        )
        self._redis = _RedisMetrics(reg) if isinstance(rooms, ClusterRoomManager) else None
        self.sessions_recovered = Counter(
            "microsockets_sessions_recovered",
            "Sessions recovered on reconnection.",
            registry=reg,
        )
        self.sessions_not_recovered = Counter(
            "microsockets_sessions_not_recovered",
            "Reconnections whose session could not be recovered.",
            registry=reg,
        )
        self.presence = Gauge(
            "microsockets_presence_entries",
            "Presence entries held by this process.",
            registry=reg,
            multiprocess_mode="livesum",
        )
        for kind in ("event", "raw"):  # every series of a bounded set exists from the start
            self.connections.labels(kind)
            self.opened.labels(kind)
        for reason in EVICTION_REASONS:
            self.evictions.labels(reason)
        if isinstance(rooms, TrackingManager):
            rooms.index.observe(self._recipients.observe)
        self.app: ASGIApp = self._app()
        """The ASGI app serving the metrics in the Prometheus text format."""

    # The per-connection wrappers.

    def instrument(self, receive: Receive, send: Send, kind: str) -> tuple[Receive, Send]:
        """The connection's `receive` and `send`, counting its frames, bytes and accept.

        `send` must be the server's send as the connection will use it (servers.uniform_send).
        """
        return instrument(receive, send, self.traffic, lambda: self._opened(kind))

    def router(self, router: Router) -> Router:
        """The router as the session sees it with metrics on: each handler timed."""
        return timed(router, self.handler_tally)

    def handler_tally(self, event: str) -> Tally:
        tally = self._handlers.get(event)
        if tally is None:
            tally = self._handlers[event] = Tally(HANDLER_BUCKETS)
        return tally

    def _opened(self, kind: str) -> None:
        self.opened.labels(kind).inc()
        self.connections.labels(kind).inc()

    # The observer.

    def disconnected(self, kind: str, code: int) -> None:
        self.connections.labels(kind).dec()
        self.disconnects.labels(str(code) if code in DISCONNECT_CODES else OTHER).inc()

    def evicted(self, reason: str) -> None:
        self.evictions.labels(reason if reason in EVICTION_REASONS else OTHER).inc()

    def refused(self, code: str) -> None:
        self.errors.labels(code if code in ERROR_CODES else OTHER).inc()

    def session_recovered(self) -> None:
        self.sessions_recovered.inc()

    def session_not_recovered(self) -> None:
        self.sessions_not_recovered.inc()

    # Flushing.

    def flush(self) -> None:
        """Hand what was added up since the last flush to prometheus_client; read the gauges."""
        traffic = self.traffic
        for counter, name in (
            (self.frames_received, "frames_received"),
            (self.bytes_received, "bytes_received"),
            (self.frames_sent, "frames_sent"),
            (self.bytes_sent, "bytes_sent"),
        ):
            count = getattr(traffic, name)
            if count:
                setattr(traffic, name, 0)
                counter.inc(count)
        for event, tally in self._handlers.items():
            self.handler_seconds.labels(event).add(tally.take())
        self.broadcast_recipients.add(self._recipients.take())
        rooms = self._rooms
        if isinstance(rooms, TrackingManager):  # every manager shipped: read the owners
            index, book = rooms.index, rooms.presence_book
            self.rooms.set(index.room_count - index.connection_count)
            self.presence.set(sum(len(entries) for entries in book.entries.values()))
        if self._redis is not None and isinstance(self._rooms, ClusterRoomManager):
            self._redis.read(self._rooms.transport)

    def start(self) -> None:
        """At startup: in multiprocess mode, flush every FLUSH_INTERVAL seconds."""
        if self.multiprocess and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._flush_often())

    async def stop(self) -> None:
        """At shutdown: a last flush; this process's live gauges leave the aggregate."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.flush()
        if self.multiprocess:
            multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]

    async def _flush_often(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL)
            self.flush()

    def _app(self) -> ASGIApp:
        if self.multiprocess:
            source = CollectorRegistry()
            multiprocess.MultiProcessCollector(source)  # type: ignore[no-untyped-call]
        else:
            source = self.registry
        serve = make_asgi_app(source)

        async def metrics_app(scope: Any, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                return
            self.flush()
            await serve(scope, receive, send)

        return metrics_app


class _RedisMetrics:
    """The state of a cluster room manager's transport (Redis, the one shipped)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.up = Gauge(
            "microsockets_redis_up",
            "1 while both links to Redis work, else 0.",
            registry=registry,
            multiprocess_mode="livemin",
        )
        self.publish_queue = Gauge(
            "microsockets_redis_publish_queue",
            "Publications waiting for Redis.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.dropped = Counter(
            "microsockets_redis_dropped", "Publications Redis never got.", registry=registry
        )
        self._dropped_seen = 0

    def read(self, transport: Transport) -> None:
        self.up.set(1 if transport.available else 0)
        self.publish_queue.set(transport.pending)
        dropped = transport.dropped
        if dropped > self._dropped_seen:
            self.dropped.inc(dropped - self._dropped_seen)
        self._dropped_seen = dropped
