"""A connection's bounded outbound buffer, drained by a task that exists only while busy.

Broadcasts put frames here without awaiting, so a client that reads slowly delays nobody
else; past `limit` bytes of backlog the connection gives up on that client.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from .types import Message, Send


class Outbox:
    """Frames (and finally a close) waiting to be sent to one client, in order."""

    __slots__ = ("_closing", "_on_overflow", "_pending", "_queue", "_send", "_task", "limit")

    def __init__(self, send: Send, limit: int, on_overflow: Callable[[], None]) -> None:
        self._send = send
        self.limit = limit
        self._on_overflow = on_overflow
        self._queue: deque[Message] = deque()
        self._pending = 0
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    @property
    def pending(self) -> int:
        """Characters of frames queued and not yet handed to the server."""
        return self._pending

    def put(self, frame: str) -> None:
        """Queue a text frame; dropped silently once the connection is closing."""
        if self._closing:
            return
        self._pending += len(frame)
        if self._pending > self.limit:
            self.abandon()
            self._on_overflow()
            return
        self._queue.append({"type": "websocket.send", "text": frame})
        self._wake()

    def close(self, code: int, reason: str) -> None:
        """Queue the close frame after what is already queued; later frames are dropped."""
        if self._closing:
            return
        self._closing = True
        self._queue.append({"type": "websocket.close", "code": code, "reason": reason})
        self._wake()

    def abandon(self) -> None:
        """Drop the backlog and stop sending: the client is gone or hopeless."""
        self._closing = True
        self._queue.clear()
        self._pending = 0
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def _wake(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        queue, send = self._queue, self._send
        try:
            while queue:
                message = queue.popleft()
                text = message.get("text")
                if text is not None:
                    self._pending -= len(text)
                await send(message)
        except OSError:  # the client went away mid-send (uvicorn: ClientDisconnected)
            queue.clear()
            self._closing = True
            self._pending = 0
        finally:
            if self._task is asyncio.current_task():
                self._task = None
