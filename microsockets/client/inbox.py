"""The events without a handler, kept for `Socket.receive()`: bounded, the oldest dropped
with a warning, and ended when the socket closes for good."""

from __future__ import annotations

import asyncio
import logging
from collections import deque

from ..types import JSON

__all__ = ["Inbox"]

log = logging.getLogger("microsockets.client")


class Inbox:
    """At most `size` (event, payload) pairs, in arrival order."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: deque[tuple[str, JSON]] = deque()
        self._changed = asyncio.Event()
        self._closed = False

    def put(self, event: str, payload: JSON) -> None:
        if len(self._items) >= self._size:
            dropped, _ = self._items.popleft()
            log.warning("receive buffer full: dropped the oldest %r frame", dropped)
        self._items.append((event, payload))
        self._changed.set()

    def close(self) -> None:
        """No more events will come: wake the readers."""
        self._closed = True
        self._changed.set()

    async def get(self, timeout: float | None) -> tuple[str, JSON] | None:
        """The oldest pair; None once closed and empty; TimeoutError after `timeout` with
        nothing new."""
        while not self._items:
            if self._closed:
                return None
            self._changed.clear()
            await asyncio.wait_for(self._changed.wait(), timeout)
        return self._items.popleft()
