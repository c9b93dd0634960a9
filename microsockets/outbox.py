"""A connection's bounded outbound buffer, drained by a task that exists only while busy.

Broadcasts put frames here without awaiting, so a client that reads slowly delays nobody
else; past `limit` bytes of backlog the connection gives up on that client.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable

from .servers import SEND_FAILED
from .types import Message, Send

CLOSE_WAIT = 5.0
"""Seconds a dropped client gets to take its close frame."""


class Outbox:
    """Frames (and finally a close) waiting to be sent to one client, in order."""

    __slots__ = (
        "_busy",
        "_closer",
        "_on_overflow",
        "_pending",
        "_queue",
        "_send",
        "_task",
        "closing",
        "limit",
    )

    def __init__(self, send: Send, limit: int, on_overflow: Callable[[], None]) -> None:
        self._send = send
        self.limit = limit
        self._on_overflow = on_overflow
        self._queue: deque[Message] | None = None  # made on demand: idle connections hold none
        self._pending = 0
        self._busy = False
        self._task: asyncio.Task[None] | None = None
        self._closer: asyncio.Task[None] | None = None
        self.closing = False
        """True once a close is queued or the client is gone: nothing more will be sent."""

    @property
    def pending(self) -> int:
        """Characters of frames queued and not yet handed to the server."""
        return self._pending

    def put(self, frame: str) -> None:
        """Queue a text frame; dropped silently once the connection is closing."""
        if self.closing:
            return
        self._pending += len(frame)
        if self._pending > self.limit:
            self.abandon()
            self._on_overflow()
            return
        # _enqueue inlined: this runs once per recipient of every broadcast.
        queue = self._queue
        if queue is None:
            queue = self._queue = deque()
        queue.append({"type": "websocket.send", "text": frame})
        if not self._busy:
            self._wake()

    async def send(self, frame: str) -> None:
        """Send at once when nothing is queued before it, else queue (only from the session).

        Awaiting the server in place spares a task switch per reply, a seventh of the server's
        time per echo round trip (docs/benchmarks.md); a client that stops reading then stalls
        only its own session, while broadcasts to it still queue and evict it.
        """
        if self._busy or self.closing:
            self.put(frame)
            return
        self._busy = True
        try:
            await self._send({"type": "websocket.send", "text": frame})
        except SEND_FAILED:  # the client went away, or the server closed the connection
            self._stop()
        finally:
            self._busy = False
            if self._queue:
                self._wake()

    def close(self, code: int, reason: str, *, drop_backlog: bool = False) -> None:
        """Queue the close frame after what is already queued; later frames are dropped.

        With `drop_backlog`, the backlog is discarded and the close frame sent at once, for
        at most CLOSE_WAIT seconds: a client that stopped reading may never take it.
        """
        if self.closing:
            return
        message = {"type": "websocket.close", "code": code, "reason": reason}
        if not drop_backlog:
            self.closing = True
            self._enqueue(message)
            return
        self.abandon()
        self._closer = asyncio.get_running_loop().create_task(self._send_close(message))

    def abandon(self) -> None:
        """Drop the backlog and stop sending: the client is gone or hopeless."""
        self._stop()
        if self._task is not None:
            self._task.cancel()
            self._task = None
            self._busy = False

    def forget(self) -> None:
        """Let go of the server's send channel (after `abandon`: nothing is sent any more)."""
        self._send = _no_send
        self._queue = None

    async def _send_close(self, message: Message) -> None:
        with contextlib.suppress(Exception):  # a client that is gone or stalled: nothing to do
            await asyncio.wait_for(self._send(message), CLOSE_WAIT)

    def _stop(self) -> None:
        self.closing = True
        self._queue = None
        self._pending = 0

    def _enqueue(self, message: Message) -> None:
        if self._queue is None:
            self._queue = deque()
        self._queue.append(message)
        if not self._busy:
            self._wake()

    def _wake(self) -> None:
        self._busy = True
        self._task = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        send = self._send
        try:
            while self._queue:
                message = self._queue.popleft()
                text = message.get("text")
                if text is not None:
                    self._pending -= len(text)
                await send(message)
            self._queue = None
        except SEND_FAILED:  # the client went away, or the server closed the connection
            self._stop()
        finally:
            if self._task is asyncio.current_task():
                self._task = None
                self._busy = False


async def _no_send(message: Message) -> None:
    raise OSError("the connection is over")
