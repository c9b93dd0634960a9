"""The socket handed to event handlers: who sent what, and how to answer them and others."""

from __future__ import annotations

import asyncio
import math
import secrets
from collections.abc import Collection, Iterable
from contextvars import ContextVar
from typing import TYPE_CHECKING

from .connection import Connection, Phase
from .exceptions import LimitExceeded
from .outbox import Outbox
from .types import JSON, Receive, Scope, Send

if TYPE_CHECKING:
    from .application import Application

GOING_AWAY = 1001
SEND_QUEUE_FULL = 1013

current_socket: ContextVar[Socket | None] = ContextVar("microsockets_socket", default=None)
"""The socket whose session runs this task, or started it (a ContextVar: cheaper than
asyncio.current_task(), which cost 0.27 us of every reply)."""


def target_rooms(
    to: str | Iterable[str] | None, limit: int | None = None
) -> Collection[str] | None:
    """`to=` as given by users: None (everyone), one room name, or at most `limit` of them.

    Raises LimitExceeded past `limit` (max_broadcast_rooms): each target costs every node a
    lookup, and Redis the name, for every broadcast.
    """
    if isinstance(to, str):
        return (to,)
    if to is None:
        return None
    rooms = to if isinstance(to, (tuple, list, set, frozenset)) else tuple(to)
    if limit is not None and len(rooms) > limit:
        raise LimitExceeded(
            "too_many_targets",
            f"a broadcast may name at most {limit} rooms (max_broadcast_rooms)",
        )
    return rooms


class Socket(Connection):
    """An event connection. `ws.event` and `ws.payload` describe the frame being handled."""

    def __init__(self, app: Application, scope: Scope, receive: Receive, send: Send) -> None:
        super().__init__(scope, receive, send)
        self.app = app
        self.id = secrets.token_hex(16)
        """Unique per connection; the socket is in the room of this name from the start."""
        self.event = ""
        self.payload: JSON = ""
        self._joined: set[str] | None = None  # made on the first join
        self._outbox = Outbox(send, app.send_queue_limit, self._overflowed)
        self.send_frame = self._outbox.put
        """Queue an encoded frame to this client (the room managers' delivery path)."""
        self._session: asyncio.Task[None] | None = None
        """The task running this connection's handlers, while it runs."""
        self._deadline = math.inf
        """When the running handler is due to end (loop time; see watchdog.py)."""
        self._timed_out = False
        """Set by the watchdog as it cancels the handler."""

    @property
    def rooms(self) -> frozenset[str]:
        """The rooms this connection is in, the one named by its id included."""
        return frozenset((self.id, *(self._joined or ())))

    async def join(self, room: str) -> None:
        """Enter a room; broadcasts to it reach this connection from now on."""
        if not isinstance(room, str):
            raise TypeError(f"a room name is a string, not {type(room).__name__}")
        if self._joined is None:
            self._joined = set()
        if room == self.id or room in self._joined or self.phase is Phase.CLOSED:
            return
        if len(room) > self.app.max_room_length:
            raise LimitExceeded(
                "room_name_too_long",
                f"a room name is at most {self.app.max_room_length} characters",
            )
        if len(self._joined) >= self.app.max_rooms_per_connection:
            raise LimitExceeded(
                "too_many_rooms",
                f"a connection may be in at most {self.app.max_rooms_per_connection} rooms",
            )
        self._joined.add(room)
        await self.app.room_manager.join(self, room)

    async def leave(self, room: str) -> None:
        """Leave a room; leaving one the connection is not in does nothing."""
        if not self._joined or room not in self._joined:
            return
        self._joined.discard(room)
        await self.app.room_manager.leave(self, room)

    async def emit(self, event: str, payload: JSON = "") -> None:
        """Send an event to this client only."""
        frame = self.app.protocol.encode_event(event, payload)
        if current_socket.get() is self:
            await self._outbox.send(frame)  # a reply from its own handler: no queue, no task
        else:
            self._outbox.put(frame)

    async def broadcast(
        self,
        event: str,
        payload: JSON = "",
        to: str | Iterable[str] | None = None,
        skip_self: bool = True,
    ) -> None:
        """Send an event to every member of the rooms `to` (None: every connection), once each."""
        await self.app.broadcast(event, payload, to=to, skip=self.id if skip_self else None)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close after the frames already queued have been sent."""
        if self.phase is Phase.CONNECTED:
            self.close_code, self.close_reason = code, reason
            self._outbox.close(code, reason)

    def _overflowed(self) -> None:
        self.app.evict(self, SEND_QUEUE_FULL, "send queue limit exceeded")
