"""`handler_timeout`: one sweeper task cancels the handlers that run past their deadline.

A session stamps its registration's deadline before each handler and clears it after, two
attribute writes per frame; asyncio.timeout around each call, or even a method call per
frame, cost far more (docs/performance.md). The sweeper wakes a few times per timeout
while connections are open.
"""

from __future__ import annotations

import asyncio

from .registry import Registry


class Watchdog:
    """Cancels the handler of each registered connection whose deadline (loop time) passed."""

    def __init__(self, timeout: float, registry: Registry) -> None:
        self.timeout = timeout
        self._registry = registry
        self._sweeper: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Make sure the sweeper runs; called as each connection opens."""
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep())

    async def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        interval = min(1.0, self.timeout / 4)
        while self._registry:
            await asyncio.sleep(interval)
            now = loop.time()
            for registration in self._registry.registrations():
                if registration.deadline <= now:
                    registration.expire()
