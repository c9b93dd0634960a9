"""The registry: every open connection of this process, event and raw, with its task.

Shutdown, eviction and the handler watchdog go through it; nothing else keeps a list of
connections.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Iterator, Mapping

from .codes import CloseCode
from .connection import Connection
from .logs import log
from .observer import NO_OBSERVER, Observer
from .outbox import CLOSE_WAIT
from .raw import RawSocket
from .socket import Socket


class Registration:
    """One connection's entry: the task serving it, and the running handler's deadline.

    The session that holds it writes `deadline` around each handler; the watchdog calls
    `expire`; `evict` marks it evicted. Each field has that one writer.
    """

    __slots__ = ("connection", "deadline", "evicted", "task", "timed_out")

    def __init__(self, connection: Connection, task: asyncio.Task[object]) -> None:
        self.connection = connection
        self.task = task
        self.deadline = math.inf
        """Loop time by which the running handler must end (inf: none running)."""
        self.timed_out = False
        self.evicted = False

    def expire(self) -> None:
        """Cancel the running handler, which ran past its deadline (once per handler)."""
        if not self.timed_out:
            self.timed_out = True
            self.task.cancel()

    def handled(self) -> bool:
        """A handler ended: clear its deadline; whether the watchdog had cancelled it."""
        self.deadline = math.inf
        timed_out, self.timed_out = self.timed_out, False
        return timed_out


class Registry(Mapping[str, Socket]):
    """The open event connections by id (a read-only mapping), and the raw ones beside them."""

    def __init__(self, observer: Observer = NO_OBSERVER) -> None:
        self._events: dict[str, Registration] = {}
        self._raw: dict[int, Registration] = {}
        self._observer = observer

    def add(self, connection: Connection) -> Registration:
        """Register a connection served by the current task."""
        task = asyncio.current_task()
        assert task is not None, "connections are served by a task"
        registration = Registration(connection, task)
        if isinstance(connection, Socket):
            self._events[connection.id] = registration
        else:
            self._raw[id(connection)] = registration
        return registration

    def renamed(self, registration: Registration, previous_id: str) -> None:
        """An event connection took another id (it resumed a session): file it under that."""
        if self._events.get(previous_id) is registration:
            del self._events[previous_id]
        connection = registration.connection
        assert isinstance(connection, Socket)
        self._events[connection.id] = registration

    def registration(self, connection_id: str) -> Registration | None:
        """The entry of an open event connection, or None."""
        return self._events.get(connection_id)

    def remove(self, registration: Registration) -> None:
        connection = registration.connection
        if isinstance(connection, Socket):
            removed = (
                self._events.pop(connection.id)
                if self._events.get(connection.id) is registration
                else None
            )
        else:
            removed = self._raw.pop(id(connection), None)
        if removed is not None and connection.accepted:
            kind = "event" if isinstance(connection, Socket) else "raw"
            self._observer.disconnected(kind, connection.close_code or 1006)

    # Reading.

    def __getitem__(self, connection_id: str) -> Socket:
        connection = self._events[connection_id].connection
        assert isinstance(connection, Socket)
        return connection

    def __iter__(self) -> Iterator[str]:
        return iter(self._events)

    def __len__(self) -> int:
        return len(self._events)

    @property
    def raw_count(self) -> int:
        """Open connections of raw routes."""
        return len(self._raw)

    def registrations(self) -> list[Registration]:
        """Every entry, event and raw."""
        return [*self._events.values(), *self._raw.values()]

    # Acting on connections.

    def evict(self, ws: Socket, code: int, reason: str, *, cause: str = "app") -> None:
        """Drop an event connection at once: its backlog is discarded, its session ended.

        `cause` is one of observer.EVICTION_REASONS (a metric label, unlike `reason`).
        """
        registration = self._events.get(ws.id)
        if registration is None or registration.evicted:
            return
        log(ws, logging.WARNING, "evicted with %d: %s", code, reason)
        registration.evicted = True
        self._observer.evicted(cause)
        ws.start_close(code, reason, drop_backlog=True)
        registration.task.cancel()

    def overflowed(self, ws: Socket) -> None:
        """A client fell more than send_queue_limit behind: drop it (1013)."""
        self.evict(
            ws, CloseCode.TRY_AGAIN_LATER, "send queue limit exceeded", cause="slow_consumer"
        )

    async def close_all(self, code: int, reason: str) -> None:
        """Start closing every connection: event ones after their queued frames."""
        raw = []
        for registration in self.registrations():
            connection = registration.connection
            if isinstance(connection, Socket):
                connection.start_close(code, reason)
            elif isinstance(connection, RawSocket) and connection.accepted:
                raw.append(asyncio.wait_for(connection.close(code, reason), CLOSE_WAIT))
        await asyncio.gather(*raw, return_exceptions=True)  # a client that left or stalled
