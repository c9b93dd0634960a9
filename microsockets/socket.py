"""The socket handed to event handlers: who sent what, and how to answer them and others."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextvars import ContextVar
from types import SimpleNamespace

from .codes import CloseCode
from .connection import Connection, Phase
from .emitter import Emitter
from .exceptions import LimitExceeded
from .limits import Limits
from .outbox import Outbox
from .rooms import BaseRoomManager
from .rooms.presence import encode_meta
from .types import JSON, Receive, Scope, Send

current_socket: ContextVar[Socket | None] = ContextVar("microsockets_socket", default=None)
"""The socket whose session runs this task, or started it (a ContextVar: cheaper than
asyncio.current_task(); docs/performance.md)."""


class Socket(Connection):
    """An event connection. `ws.event` and `ws.payload` describe the frame being handled."""

    def __init__(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        *,
        emitter: Emitter,
        rooms: BaseRoomManager,
        limits: Limits,
        on_overflow: Callable[[Socket], None],
    ) -> None:
        super().__init__(scope, receive, send)
        self.event = ""
        self.payload: JSON = ""
        self.resumed = False
        """True when this connection continues a session whose connection was lost (recovery)."""
        self.ended_by_app = False
        """True once `close()` was called: the session ends with the connection, no resume."""
        self._emitter = emitter
        self._protocol = emitter.protocol
        self._room_manager = rooms
        self._limits = limits
        self._on_overflow = on_overflow
        self._joined: set[str] | None = None  # made on the first join
        self._presence: dict[str, str] | None = None  # room -> encoded metadata, when visible
        self.outbox = Outbox(self._send, limits.send_queue_limit, self._overflowed)
        """What is queued to this client; `send_frame` and the session's replies go through it."""
        self.send_frame: Callable[[str], None] = self.outbox.put
        """Queue an encoded frame to this client (the room managers' delivery path)."""

    @property
    def rooms(self) -> frozenset[str]:
        """The rooms this connection is in, the one named by its id included."""
        return frozenset((self.id, *(self._joined or ())))

    @property
    def buffered_amount(self) -> int:
        """Characters queued to this client and not yet handed to the server (as in the
        browser's WebSocket.bufferedAmount); past `send_queue_limit` it is dropped."""
        return self.outbox.pending

    @property
    def presence(self) -> dict[str, str]:
        """The rooms where this connection is visible, with its metadata as encoded JSON."""
        return dict(self._presence or {})

    async def join(self, room: str, presence: JSON | None = None) -> None:
        """Enter a room; broadcasts to it reach this connection from now on.

        With `presence`, any JSON value, it appears in the room's presence with it, and gets
        the room's presence state then its diffs (docs/presence.md); without, it stays unseen.
        """
        if presence is not None:
            meta = self._presence_meta(presence)
            await self._join(room)
            await self._track(room, meta)
        else:
            await self._join(room)

    async def update_presence(self, room: str, presence: JSON) -> None:
        """Change this connection's metadata in a room's presence (making it visible there)."""
        meta = self._presence_meta(presence)
        if room not in (self._joined or ()):
            raise ValueError(f"join the room {room!r} before updating its presence")
        await self._track(room, meta)

    async def _track(self, room: str, meta: str) -> None:
        if self.phase is Phase.CLOSED:
            return
        if self._presence is None:
            self._presence = {}
        self._presence[room] = meta
        await self._room_manager.track(self, room, meta)

    def _presence_meta(self, presence: JSON) -> str:
        meta = encode_meta(presence)
        limit = self._limits.max_presence_size
        if len(meta) > limit:
            raise LimitExceeded(
                "presence_too_large", f"presence metadata is at most {limit} characters of JSON"
            )
        return meta

    async def _join(self, room: str) -> None:
        if not isinstance(room, str):
            raise TypeError(f"a room name is a string, not {type(room).__name__}")
        if self._joined is None:
            self._joined = set()
        if room == self.id or room in self._joined or self.phase is Phase.CLOSED:
            return
        limits = self._limits
        if len(room) > limits.max_room_length:
            raise LimitExceeded(
                "room_name_too_long",
                f"a room name is at most {limits.max_room_length} characters",
            )
        if len(self._joined) >= limits.max_rooms_per_connection:
            raise LimitExceeded(
                "too_many_rooms",
                f"a connection may be in at most {limits.max_rooms_per_connection} rooms",
            )
        self._joined.add(room)
        await self._room_manager.join(self, room)

    async def leave(self, room: str) -> None:
        """Leave a room; leaving one the connection is not in does nothing."""
        if not self._joined or room not in self._joined:
            return
        self._joined.discard(room)
        if self._presence:
            self._presence.pop(room, None)
        await self._room_manager.leave(self, room)

    async def emit(self, event: str, payload: JSON = "") -> None:
        """Send an event to this client only."""
        frame = self._protocol.encode_event(event, payload)
        if current_socket.get() is self:
            await self.outbox.send(frame)  # a reply from its own handler: no queue, no task
        else:
            self.outbox.put(frame)

    async def broadcast(
        self,
        event: str,
        payload: JSON = "",
        to: str | Iterable[str] | None = None,
        skip_self: bool = True,
    ) -> None:
        """Send an event to every member of the rooms `to` (None: every connection), once each."""
        await self._emitter.broadcast(event, payload, to=to, skip=self.id if skip_self else None)

    async def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Close after the frames already queued have been sent; the session ends for good."""
        self.ended_by_app = True
        self.start_close(code, reason)

    @property
    def ended_cleanly(self) -> bool:
        """Whether the session ends with this connection: closed by `ws.close()`, or by the
        client on purpose (1000: `socket.close()`; 1001: the page went away)."""
        return self.ended_by_app or self.client_close_code in (1000, 1001)

    def hold(self) -> list[str]:
        """Keep the frames delivered to this connection aside, until `release` (a resumed
        session sends what it missed first)."""
        held: list[str] = []
        self.send_frame = held.append
        return held

    def release(self) -> None:
        """Queue frames to the client again (after `hold`)."""
        self.send_frame = self.outbox.put

    def restore(self, session_id: str, rooms: Iterable[str], state: SimpleNamespace) -> None:
        """Continue the session of a lost connection: take its id, rooms and state."""
        self.id = session_id
        self._joined = set(rooms) - {session_id}
        self.state = state
        self.resumed = True

    def start_close(self, code: int, reason: str, *, drop_backlog: bool = False) -> bool:
        """Start closing, unless a close already started: after the queued frames, or at
        once with `drop_backlog` (a client being dropped). Whether this call started it."""
        if not self._start_closing(code, reason):
            return False
        self.outbox.close(code, reason, drop_backlog=drop_backlog)
        return True

    def finish(self) -> None:
        """The session is over: drop whatever is still queued, stop sending."""
        self.outbox.abandon()
        self._ended()
        self.outbox.forget()
        self.send_frame = _drop
        self._forget_transport()

    async def go_away(self) -> None:
        self.outbox.abandon()
        await super().go_away()

    def _overflowed(self) -> None:
        self._on_overflow(self)


def _drop(frame: str) -> None:
    """Where frames to a connection that is over go."""
