"""`handler_timeout`: one sweeper task cancels the handlers that run past their deadline.

A session stamps `ws._deadline` before each handler and resets it after, two attribute
writes per frame. asyncio.timeout around each call arms and cancels a timer, about 7 us, a
fifth of an echo round trip; even a method call per frame to register the handler cost a
tenth of our own time per frame (bench/inprocess.py). The sweeper wakes a few times per
timeout while connections are open.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .socket import Socket


class Watchdog:
    """Cancels the session task of each socket whose `_deadline` (loop time) has passed."""

    def __init__(self, timeout: float, sockets: Mapping[str, Socket]) -> None:
        self.timeout = timeout
        self._sockets = sockets
        self._sweeper: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Make sure the sweeper runs; called as each connection opens."""
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep())

    async def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        interval = min(1.0, self.timeout / 4)
        while self._sockets:
            await asyncio.sleep(interval)
            now = loop.time()
            for ws in list(self._sockets.values()):
                if ws._deadline <= now and ws._session is not None:
                    ws._deadline = math.inf
                    ws._timed_out = True
                    ws._session.cancel()
